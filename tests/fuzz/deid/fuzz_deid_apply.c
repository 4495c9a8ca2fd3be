/* libFuzzer: parse arbitrary bytes with the dicom reader, then de-identify them (the first byte
 * chooses options and flags). Must never crash, leak, or write outside its buffer; when the
 * writer succeeds its output must parse again. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "dicom.h"
#include "profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint8_t secret[32] = {1, 2, 3};
    uint8_t sel = data[0];
    data++;
    size--;
    agora__dicom_file *f = NULL;
    if (agora__dicom_read(data, size, NULL, &f, NULL) != 0)
        return 0;
    agora__deid_profile prof = {secret, (uint32_t)(sel & 0x3Fu) * 0x11u & 0x3FFu,
                                (sel & 0x40u) ? AGORA__DEID_ALLOW_BURNED_IN : 0u,
                                (sel & 0x80u) ? AGORA__DEID_W_DEFINED_LENGTHS : 0u};
    agora__deid_buf out;
    agora__deid_buf_init(&out, 6 * size + (1u << 20));
    out.refs_allowed = 0; /* contiguous output, so that it can be parsed again below */
    agora__deid_stats stats = {0};
    char sop[65];
    if (agora__deid_apply(f, &prof, &out, &stats, sop, NULL) == 0) {
        agora__dicom_file *again = NULL;
        if (agora__dicom_read(out.data, out.len, NULL, &again, NULL) != 0)
            abort(); /* the writer produced something its own reader refuses */
        agora__dicom_file_free(again);
    }
    agora__deid_buf_free(&out);
    agora__dicom_file_free(f);
    return 0;
}
