/* libFuzzer: the Part 10 file meta reader of STOW-RS parts (host/http/part10_meta.c), whole and
 * fed in pieces (sizes from the first byte): both must agree on the outcome, the UIDs and the
 * meta length, and never claim more bytes than were fed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "part10_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 64;
    data++;
    size--;
    agora__p10meta whole, fed;
    agora__error err = {0};
    int rc = agora__p10meta_parse(data, size, &whole, &err);
    agora__p10meta_reader *r = malloc(sizeof *r);
    if (r == NULL)
        return 0;
    agora__p10meta_init(r);
    int frc = AGORA__P10META_MORE;
    size_t at = 0;
    while (frc == AGORA__P10META_MORE && at < size) {
        size_t k = step > size - at ? size - at : step, used = 0;
        frc = agora__p10meta_feed(r, data + at, k, &used, &fed, &err);
        if (used > k || (frc == AGORA__P10META_MORE && used != k))
            abort();
        at += used;
    }
    free(r);
    if (rc == 0) {
        if (frc != AGORA__P10META_DONE || fed.meta_len != whole.meta_len || at != whole.meta_len ||
            strcmp(fed.sop_class, whole.sop_class) != 0 ||
            strcmp(fed.sop_instance, whole.sop_instance) != 0 ||
            strcmp(fed.transfer_syntax, whole.transfer_syntax) != 0 || whole.meta_len > size)
            abort();
    } else if (frc == AGORA__P10META_DONE) {
        abort(); /* the reader took what the parser refused */
    }
    return 0;
}
