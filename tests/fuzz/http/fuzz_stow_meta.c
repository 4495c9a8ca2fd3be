/* libFuzzer: the Part 10 file meta reader as STOW-RS parts use it (host/dimse/filemeta.c, the
 * one reader the senders share), whole and fed in pieces (sizes from the first byte): both must
 * agree on the outcome, the UIDs and the meta length when the group length comes first (else the
 * reader refuses), and never claim more bytes than were fed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "filemeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 64;
    data++;
    size--;
    agora__filemeta whole, fed;
    agora__error err = {0};
    int rc = agora__filemeta_parse(data, size, &whole, &err);
    agora__filemeta_reader *r = malloc(sizeof *r);
    if (r == NULL)
        return 0;
    agora__filemeta_init(r);
    int frc = AGORA__FILEMETA_MORE;
    size_t at = 0;
    while (frc == AGORA__FILEMETA_MORE && at < size) {
        size_t k = step > size - at ? size - at : step, used = 0;
        frc = agora__filemeta_feed(r, data + at, k, &used, &fed, &err);
        if (used > k || (frc == AGORA__FILEMETA_MORE && used != k))
            abort();
        at += used;
    }
    free(r);
    /* Without (0002,0000) first, only the whole-file parse may accept (its leniency for files on
     * disk); the incremental reader (STOW-RS parts) must refuse. */
    int group_length_first =
        size >= 136 && data[132] == 2 && data[133] == 0 && data[134] == 0 && data[135] == 0;
    if (!group_length_first) {
        if (frc == AGORA__FILEMETA_DONE)
            abort();
        return 0;
    }
    if (rc == 0) {
        if (frc != AGORA__FILEMETA_DONE || fed.data_offset != whole.data_offset ||
            at != whole.data_offset || strcmp(fed.sop_class, whole.sop_class) != 0 ||
            strcmp(fed.sop_instance, whole.sop_instance) != 0 || strcmp(fed.ts, whole.ts) != 0 ||
            whole.data_offset > size)
            abort();
    } else if (frc == AGORA__FILEMETA_DONE) {
        abort(); /* the reader took what the parser refused */
    }
    return 0;
}
