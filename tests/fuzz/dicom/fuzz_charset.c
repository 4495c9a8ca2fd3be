/* libFuzzer target: the Specific Character Set decoder (host/dicom/charset.c) on arbitrary bytes.
 * Input: byte 0 picks the (0008,0005) value (one of the defined-term combinations below, or, for
 * 0xFF, the bytes up to the first NUL as a raw value to parse); byte 1 picks the VR; the rest is
 * the element value. Every output must be valid UTF-8, NUL-terminated, within the documented
 * bound, and decoding it again as UTF-8 must give it back unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "charset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const sets[] = {
    "",
    "ISO_IR 100",
    "ISO_IR 144",
    "ISO_IR 13",
    "ISO_IR 166",
    "ISO 2022 IR 100\\ISO 2022 IR 126",
    "\\ISO 2022 IR 87",
    "ISO 2022 IR 13\\ISO 2022 IR 87",
    "\\ISO 2022 IR 87\\ISO 2022 IR 159",
    "\\ISO 2022 IR 149",
    "\\ISO 2022 IR 58",
    "ISO_IR 192",
    "GB18030",
    "GBK",
};

static const uint16_t vrs[] = {
    AGORA__DICOM_VR('P', 'N'), AGORA__DICOM_VR('L', 'O'), AGORA__DICOM_VR('S', 'H'),
    AGORA__DICOM_VR('S', 'T'), AGORA__DICOM_VR('L', 'T'), AGORA__DICOM_VR('U', 'T'),
    AGORA__DICOM_VR('U', 'C'),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    agora__dicom_charset cs;
    const uint8_t *v = data + 2;
    size_t n = size - 2;
    if (data[0] == 0xFF) {
        const uint8_t *z = memchr(v, 0, n);
        size_t l = z ? (size_t)(z - v) : n;
        agora__dicom_charset_parse(v, l, &cs);
        v += z ? l + 1 : l;
        n -= z ? l + 1 : l;
    } else {
        const char *s = sets[data[0] % (sizeof sets / sizeof sets[0])];
        agora__dicom_charset_parse((const uint8_t *)s, strlen(s), &cs);
    }
    uint16_t vr = vrs[data[1] % (sizeof vrs / sizeof vrs[0])];
    size_t cap = AGORA__DICOM_DECODE_MAX(n);
    char *out = malloc(cap);
    if (out == NULL)
        return 0;
    size_t len = agora__dicom_decode_text(&cs, vr, v, n, out, cap, NULL);
    if (len >= cap || out[len] != '\0' || strlen(out) != len)
        abort();
    agora__dicom_charset u;
    agora__dicom_charset_parse((const uint8_t *)"ISO_IR 192", 10, &u);
    char *again = malloc(AGORA__DICOM_DECODE_MAX(len));
    if (again != NULL) {
        size_t rep = 0;
        size_t l2 = agora__dicom_decode_text(&u, AGORA__DICOM_VR('U', 'T'), (const uint8_t *)out,
                                             len, again, AGORA__DICOM_DECODE_MAX(len), &rep);
        if (rep != 0 || l2 != len || memcmp(again, out, len) != 0)
            abort(); /* the output was not valid, control-free UTF-8 */
        free(again);
    }
    free(out);
    return 0;
}
