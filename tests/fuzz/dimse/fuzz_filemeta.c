/* libFuzzer: the Part 10 file meta reader the SCU and the STOW-RS client run on the files they
 * send (host/dimse/filemeta.c, the same reader STOW-RS receive feeds). A file comes from the
 * clinic's own export, but the reader is bounded as if it were hostile: whatever it accepts must
 * name UIDs that are valid and a data set offset inside the input and the group bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "filemeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agora__filemeta m;
    agora__error err;
    if (agora__filemeta_parse(data, size, &m, &err) != 0)
        return 0;
    if (m.data_offset < 132 || m.data_offset > size || m.data_offset > AGORA__FILEMETA_MAX)
        abort();
    if (!agora__uid_valid(m.sop_class, strlen(m.sop_class)) ||
        !agora__uid_valid(m.sop_instance, strlen(m.sop_instance)) ||
        !agora__uid_valid(m.ts, strlen(m.ts)))
        abort();
    return 0;
}
