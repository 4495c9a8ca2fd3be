/* Output helpers for the trust commands (their options are parsed by opt.c). */
#include "cli_util.h"

#include <stdlib.h>
#include <string.h>

int agora__fail(const char *cmd, const agora__error *err)
{
    fprintf(stderr, "agora %s: %s\n", cmd, err->msg[0] ? err->msg : "failed");
    return 1;
}

void agora__json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int agora__load_seckey(const char *key_path, const char *pass_path, agora__seckey *key,
                       agora__error *err)
{
    char pass[1025];
    size_t len = 0;
    if (pass_path != NULL) {
        int rc = agora__passphrase_read(pass_path, pass, sizeof pass, &len, err);
        if (rc != 0)
            return rc;
    }
    int rc = agora__seckey_read(key_path, pass_path != NULL ? pass : NULL, len, key, err);
    explicit_bzero(pass, sizeof pass);
    return rc;
}

int agora__cli_option_word(const char *w)
{
    uint32_t bit;
    return agora__trust_option_parse(w, &bit) == 0;
}

int agora__cli_option_bits(const char *cmd, const char *what, const char **vals, size_t n,
                           uint32_t *bits)
{
    *bits = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[512];
        agora__strlcpy(buf, vals[i], sizeof buf);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
            uint32_t bit;
            if (agora__trust_option_parse(t, &bit) != 0) {
                fprintf(stderr,
                        "agora %s: '%.60s' is not %s; use rtnPatCharsOpt rtnDevIdOpt "
                        "rtnInstIdOpt rtnLongFullDatesOpt rtnLongModifDatesOpt\n",
                        cmd, t, what);
                return 2;
            }
            const char *why = agora__trust_option_refusal(bit);
            if (why != NULL) {
                fprintf(stderr, "agora %s: %s cannot be given to a plugin: %s\n", cmd, t, why);
                return 2;
            }
            *bits |= bit;
        }
    }
    return 0;
}
