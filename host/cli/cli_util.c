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
