/*
 * The certification report as bytes: canonical JSON (sorted keys, 2-space indent, final LF, the
 * same form as catalog.json), written with a detached Ed25519 signature by the operator's key in
 * REPORT.sig (the catalog.sig line format).
 */
#include "certify.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int agora__cert_report_serialize(const json_t *report, char **out, size_t *len, agora__error *err)
{
    *out = NULL;
    *len = 0;
    char *s = json_dumps(report, JSON_SORT_KEYS | JSON_INDENT(2) | JSON_ENSURE_ASCII);
    if (s == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory serializing the report");
    size_t n = strlen(s);
    if (n + 1 > AGORA__CERT_REPORT_MAX) {
        free(s);
        return agora__error_set(err, AGORA_ELIMIT, "the report is larger than %zu bytes",
                                AGORA__CERT_REPORT_MAX);
    }
    char *b = realloc(s, n + 2);
    if (b == NULL) {
        free(s);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory serializing the report");
    }
    b[n] = '\n';
    b[n + 1] = '\0';
    *out = b;
    *len = n + 1;
    return 0;
}

int agora__cert_report_write(const char *path, const char *bytes, size_t len,
                             const agora__seckey *key, agora__error *err)
{
    char sig_path[4096];
    int rc = agora__path(sig_path, sizeof sig_path, err, "%s.sig", path);
    if (rc == 0)
        rc = agora__write_file_atomic(path, bytes, len, 0644, err);
    if (rc != 0 || key == NULL)
        return rc;
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    uint8_t sig[64];
    char line[AGORA__SIG_TEXT_MAX];
    crypto_sign_detached(sig, NULL, (const uint8_t *)bytes, len, key->sk);
    agora__sig_format(&key->pub, sig, line, sizeof line);
    return agora__write_file_atomic(sig_path, line, strlen(line), 0644, err);
}
