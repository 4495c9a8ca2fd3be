/* libFuzzer target: the catalog parser, signature lines, key files, and root documents (the
 * signed-file splitter, signature counting and the root parser) on arbitrary bytes. Catalogs
 * and roots are only parsed after their signatures verified, but the parsers are kept safe on
 * any input anyway. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "trust_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agora__catalog c;
    agora__error err;
    if (agora__catalog_parse(data, size, &c, &err) == 0) {
        char *text;
        size_t len;
        if (agora__catalog_serialize(&c, &text, &len, &err) == 0)
            free(text);
        agora__catalog_free(&c);
    }
    char key_id[AGORA__KEY_ID_HEX];
    uint8_t sig[64];
    (void)agora__sig_parse(data, size, key_id, sig, &err);
    agora__pubkey pk;
    (void)agora__pubkey_parse(data, size, &pk, &err);
    agora__root r;
    if (agora__root_parse(data, size, &r, &err) == 0) {
        char *text;
        size_t len;
        if (agora__root_serialize(&r, &text, &len, &err) == 0)
            free(text);
        /* Whatever keys it names: count their signatures over itself (none verify). */
        (void)agora__root_signers(data, size, r.root_keys, r.n_root, &err);
    }
    (void)agora__root_verify_self(data, size, &r, &err);
    agora__root v0;
    agora__root_implicit(&pk, 1, &v0);
    (void)agora__root_verify_next(&v0, data, size, &r, &err);
    return 0;
}
