/* libFuzzer target: the Part 10 reader, the dataset getters, the enhanced multi-frame
 * functional groups (fgroups.c), frame/fragment mapping and the native pixel decoder on arbitrary
 * bytes. Compressed frames are not decoded here (the codec
 * module has its own targets); their fragment mapping is. */
#include <stdint.h>
#include <stdlib.h>

#include "dicom.h"
#include "fgroups.h"
#include "pixels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int visit(const agora__dicom_element *e, uint32_t depth, void *ctx)
{
    char s[80];
    int64_t i;
    double d;
    (void)depth;
    size_t vm = agora__dicom_vm(e);
    for (size_t k = 0; k < vm && k < 4; k++) {
        agora__dicom_el_string(e, k, s, sizeof s);
        agora__dicom_el_int(e, k, &i);
        agora__dicom_el_double(e, k, &d);
    }
    agora__dicom_el_string_all(e, s, sizeof s);
    (*(size_t *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agora__dicom_limits lim;
    agora__dicom_limits_default(&lim);
    lim.max_inflated_bytes = (uint64_t)64 << 20; /* keep the fuzzer's RSS low */
    agora__dicom_file *f = NULL;
    agora__error err = {0};
    if (agora__dicom_read(data, size, &lim, &f, &err) != 0)
        return 0;
    size_t n = 0;
    agora__dicom_walk(&f->dataset, visit, &n);
    int64_t nf; /* NumberOfFrames clamped as the scanner and the ingest worker do */
    if (agora__dicom_get_int(&f->dataset, AGORA__DICOM_TAG(0x0028, 0x0008), 0, &nf) != 0 ||
        nf < 1 || nf > 1000000)
        nf = 1;
    agora__dicom_fg fg;
    if (agora__dicom_fg_read(&f->dataset, (uint32_t)nf, &fg) == 0)
        agora__dicom_fg_free(&fg);
    agora__dicom_pixel_desc d;
    if (agora__dicom_pixel_describe(f, &d, &err) == 0) {
        for (int mode = 0; mode < 2; mode++) {
            agora__dicom_pixel_format fmt;
            if (agora__dicom_pixel_format_for(f, &d, mode, &fmt, &err) != 0)
                continue;
            if (fmt.frame_bytes == 0 || fmt.frame_bytes > ((uint64_t)16 << 20))
                continue;
            uint8_t *out = malloc((size_t)fmt.frame_bytes);
            if (!out)
                continue;
            for (uint32_t fr = 0; fr < d.frames && fr < 3; fr++) {
                if (d.encapsulated) {
                    uint32_t first, count;
                    agora__dicom_frame_fragments(f, d.pixel_data, d.frames, fr, &first, &count,
                                                 &err);
                } else {
                    agora__dicom_decode_frame(f, &d, fr, mode, out, (size_t)fmt.frame_bytes, &err);
                }
            }
            free(out);
        }
    }
    agora__dicom_file_free(f);
    return 0;
}
