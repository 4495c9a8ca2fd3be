/* Loading the per-clinic secret and parsing option names. */
#include "deid.h"
#include "rules.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int agora__deid_secret_load(const char *path, uint8_t secret[32], agora__error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return agora__error_set(err, AGORA_EINVAL, "cannot read the secret %s; pass --secret FILE",
                                path);
    if (st.st_mode & 077)
        return agora__error_set(err, AGORA_EINVAL, "secret %s is readable by others; chmod 600 it",
                                path);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = agora__read_file(path, 256, &buf, &len, err);
    if (rc != 0)
        return rc;
    rc = 0;
    if (len == 32) {
        memcpy(secret, buf, 32);
    } else {
        size_t n = len;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        char hex[65];
        if (n != 64) {
            rc = AGORA_EINVAL;
        } else {
            memcpy(hex, buf, 64);
            hex[64] = '\0';
            rc = agora__unhex(hex, secret, 32) == 0 ? 0 : AGORA_EINVAL;
            sodium_memzero(hex, sizeof hex);
        }
        if (rc != 0)
            agora__error_set(err, rc,
                             "secret %s must hold 32 raw bytes or 64 hex digits; make one with "
                             "`head -c 32 /dev/urandom > FILE`",
                             path);
    }
    sodium_memzero(buf, len);
    free(buf);
    return rc;
}

int agora__deid_options_parse(const char *const *names, size_t count, uint32_t *mask,
                              agora__error *err)
{
    *mask = 0;
    for (size_t i = 0; i < count; i++) {
        int o = agora__deid_option_from_name(names[i]);
        if (o < 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "unknown option '%.64s'; use a PS3.15 option name such as "
                                    "rtnPatCharsOpt",
                                    names[i]);
        const char *why = agora__deid_option_refusal(o);
        if (why != NULL)
            return agora__error_set(err, AGORA_EUNSUPPORTED, "%s", why);
        *mask |= 1u << o;
    }
    return 0;
}
