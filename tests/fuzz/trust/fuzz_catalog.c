/* libFuzzer target: the catalog parser, signature lines and key files on arbitrary bytes.
 * The catalog is only parsed after its signature verified, but the parser is kept safe on any
 * input anyway. */
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
    return 0;
}
