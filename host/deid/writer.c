/* Part 10 writer: Explicit VR Little Endian encoding (see writer.h). */
#include "writer.h"

#include <stdlib.h>
#include <string.h>

#define VR(a, b)  AGORA__DICOM_VR(a, b)
#define MAX_DEPTH 64

void agora__deid_buf_init(agora__deid_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void agora__deid_buf_reset(agora__deid_buf *b, size_t max)
{
    b->len = 0;
    b->max = max;
    b->rc = 0;
    b->seq_depth = 0;
    b->n_refs = 0;
    b->ref_bytes = 0;
}

void agora__deid_buf_free(agora__deid_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

size_t agora__deid_buf_size(const agora__deid_buf *b)
{
    return b->len + b->ref_bytes;
}

static int reserve(agora__deid_buf *b, size_t n)
{
    if (b->rc != 0)
        return -1;
    size_t used = b->len + b->ref_bytes;
    if (n > b->max || used > b->max - n) {
        b->rc = AGORA_ELIMIT;
        return -1;
    }
    size_t need = b->len + n;
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > b->max)
        ncap = b->max;
    uint8_t *p = realloc(b->data, ncap);
    if (p == NULL) {
        b->rc = AGORA_ENOMEM;
        return -1;
    }
    b->data = p;
    b->cap = ncap;
    return 0;
}

void agora__deid_buf_put(agora__deid_buf *b, const void *p, size_t n)
{
    if (n == 0 || reserve(b, n) != 0)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void agora__deid_buf_put_ref(agora__deid_buf *b, const void *p, size_t n)
{
    if (!b->refs_allowed || b->seq_depth > 0 || n < AGORA__DEID_REF_MIN ||
        b->n_refs >= AGORA__DEID_MAX_REFS) {
        agora__deid_buf_put(b, p, n);
        return;
    }
    if (b->rc != 0)
        return;
    size_t used = b->len + b->ref_bytes;
    if (n > b->max || used > b->max - n) {
        b->rc = AGORA_ELIMIT;
        return;
    }
    b->refs[b->n_refs++] = (agora__deid_ref){b->len, p, n};
    b->ref_bytes += n;
}

static void put_u16(agora__deid_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    agora__deid_buf_put(b, x, 2);
}

static void put_u32(agora__deid_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    agora__deid_buf_put(b, x, 4);
}

static void patch_u32(agora__deid_buf *b, size_t at, uint32_t v)
{
    if (b->rc != 0 || at + 4 > b->len)
        return;
    b->data[at] = (uint8_t)v;
    b->data[at + 1] = (uint8_t)(v >> 8);
    b->data[at + 2] = (uint8_t)(v >> 16);
    b->data[at + 3] = (uint8_t)(v >> 24);
}

static void put_tag(agora__deid_buf *b, uint32_t tag)
{
    put_u16(b, (uint16_t)(tag >> 16));
    put_u16(b, (uint16_t)tag);
}

int agora__deid_vr_long(uint16_t vr)
{
    switch (vr) {
    case VR('O', 'B'):
    case VR('O', 'D'):
    case VR('O', 'F'):
    case VR('O', 'L'):
    case VR('O', 'V'):
    case VR('O', 'W'):
    case VR('S', 'Q'):
    case VR('S', 'V'):
    case VR('U', 'C'):
    case VR('U', 'N'):
    case VR('U', 'R'):
    case VR('U', 'T'):
    case VR('U', 'V'):
        return 1;
    default:
        return 0;
    }
}

uint8_t agora__deid_vr_pad(uint16_t vr)
{
    switch (vr) {
    case VR('A', 'E'):
    case VR('A', 'S'):
    case VR('C', 'S'):
    case VR('D', 'A'):
    case VR('D', 'S'):
    case VR('D', 'T'):
    case VR('I', 'S'):
    case VR('L', 'O'):
    case VR('L', 'T'):
    case VR('P', 'N'):
    case VR('S', 'H'):
    case VR('S', 'T'):
    case VR('T', 'M'):
    case VR('U', 'C'):
    case VR('U', 'R'):
    case VR('U', 'T'):
        return ' ';
    default:
        return 0; /* UI and binary VRs */
    }
}

/* Size of the unit that big-endian input must be swapped by, or 1 for byte data and text. */
static size_t swap_unit(uint16_t vr)
{
    switch (vr) {
    case VR('U', 'S'):
    case VR('S', 'S'):
    case VR('O', 'W'):
    case VR('A', 'T'):
        return 2;
    case VR('U', 'L'):
    case VR('S', 'L'):
    case VR('F', 'L'):
    case VR('O', 'F'):
    case VR('O', 'L'):
        return 4;
    case VR('F', 'D'):
    case VR('O', 'D'):
    case VR('S', 'V'):
    case VR('U', 'V'):
    case VR('O', 'V'):
        return 8;
    default:
        return 1;
    }
}

static void put_header(agora__deid_buf *b, uint32_t tag, uint16_t vr, uint32_t len)
{
    put_tag(b, tag);
    uint8_t v[2] = {(uint8_t)(vr >> 8), (uint8_t)vr};
    agora__deid_buf_put(b, v, 2);
    if (agora__deid_vr_long(vr)) {
        put_u16(b, 0);
        put_u32(b, len);
    } else {
        put_u16(b, (uint16_t)len);
    }
}

/* Header for a value of `len` bytes, padded to even; fails for lengths the VR cannot carry. */
static int value_header(agora__deid_buf *b, uint32_t tag, uint16_t vr, size_t len, size_t *padded)
{
    if (b->rc != 0)
        return -1;
    size_t p = len + (len & 1u);
    if (p < len || p > (agora__deid_vr_long(vr) ? 0xFFFFFFFEu : 0xFFFEu)) {
        b->rc = AGORA_ELIMIT;
        return -1;
    }
    put_header(b, tag, vr, (uint32_t)p);
    *padded = p;
    return 0;
}

void agora__deid_put_element(agora__deid_buf *b, uint32_t tag, uint16_t vr, const void *value,
                             size_t len)
{
    size_t padded;
    if (value_header(b, tag, vr, len, &padded) != 0)
        return;
    agora__deid_buf_put_ref(b, value, len);
    if (padded != len) {
        uint8_t pad = agora__deid_vr_pad(vr);
        agora__deid_buf_put(b, &pad, 1);
    }
}

size_t agora__deid_put_seq_begin(agora__deid_buf *b, uint32_t tag, uint16_t vr, uint32_t flags)
{
    (void)flags; /* both forms start alike: undefined length, patched later when defined */
    put_header(b, tag, vr, AGORA__DICOM_UNDEFINED_LENGTH);
    b->seq_depth++; /* no references inside a sequence (see writer.h) */
    return b->len;  /* the length field ends here; defined lengths are patched at the end */
}

void agora__deid_put_seq_end(agora__deid_buf *b, size_t mark, uint32_t flags)
{
    if (b->seq_depth > 0)
        b->seq_depth--;
    if (flags & AGORA__DEID_W_DEFINED_LENGTHS) {
        if (b->rc == 0 && b->len - mark >= AGORA__DICOM_UNDEFINED_LENGTH)
            b->rc = AGORA_ELIMIT;
        patch_u32(b, mark - 4, (uint32_t)(b->len - mark));
        return;
    }
    put_tag(b, AGORA__DICOM_T_SEQ_END);
    put_u32(b, 0);
}

size_t agora__deid_put_item_begin(agora__deid_buf *b, uint32_t flags)
{
    (void)flags;
    put_tag(b, AGORA__DICOM_T_ITEM);
    put_u32(b, AGORA__DICOM_UNDEFINED_LENGTH);
    return b->len;
}

void agora__deid_put_item_end(agora__deid_buf *b, size_t mark, uint32_t flags)
{
    if (flags & AGORA__DEID_W_DEFINED_LENGTHS) {
        if (b->rc == 0 && b->len - mark >= AGORA__DICOM_UNDEFINED_LENGTH)
            b->rc = AGORA_ELIMIT;
        patch_u32(b, mark - 4, (uint32_t)(b->len - mark));
        return;
    }
    put_tag(b, AGORA__DICOM_T_ITEM_END);
    put_u32(b, 0);
}

static void put_fragment(agora__deid_buf *b, const uint8_t *data, uint32_t len)
{
    /* Fragments must have even length (PS3.5 A.4); an odd one is padded with a zero byte. */
    uint32_t padded = len + (len & 1u);
    if (padded < len) {
        b->rc = b->rc ? b->rc : AGORA_ELIMIT;
        return;
    }
    put_tag(b, AGORA__DICOM_T_ITEM);
    put_u32(b, padded);
    agora__deid_buf_put_ref(b, data, len);
    if (padded != len) {
        uint8_t z = 0;
        agora__deid_buf_put(b, &z, 1);
    }
}

void agora__deid_put_copy(agora__deid_buf *b, const agora__dicom_element *e,
                          unsigned bits_allocated)
{
    uint16_t vr = e->vr;
    if (e->flags & AGORA__DICOM_EL_ENCAPSULATED) {
        put_header(b, e->tag, VR('O', 'B'), AGORA__DICOM_UNDEFINED_LENGTH);
        put_fragment(b, e->bot, e->bot_len);
        for (uint32_t i = 0; i < e->n_fragments; i++)
            put_fragment(b, e->fragments[i].data, e->fragments[i].length);
        put_tag(b, AGORA__DICOM_T_SEQ_END);
        put_u32(b, 0);
        return;
    }
    if (e->tag == AGORA__DICOM_T_PIXEL_DATA && (e->flags & AGORA__DICOM_EL_VR_IMPLICIT))
        vr = bits_allocated > 8 ? VR('O', 'W') : VR('O', 'B');
    if (vr == 0 || vr == AGORA__DICOM_VR_SQ)
        vr = AGORA__DICOM_VR_UN; /* a non-sequence element claiming SQ carries raw bytes */
    size_t unit = swap_unit(vr);
    if (!(e->flags & AGORA__DICOM_EL_BIG_ENDIAN) || unit == 1 || e->value_len == 0) {
        agora__deid_put_element(b, e->tag, vr, e->value, (size_t)e->value_len);
        return;
    }
    size_t padded;
    if (value_header(b, e->tag, vr, (size_t)e->value_len, &padded) != 0)
        return;
    if (reserve(b, padded) != 0)
        return;
    uint8_t *dst = b->data + b->len;
    size_t whole = (size_t)e->value_len - (size_t)e->value_len % unit;
    for (size_t i = 0; i < whole; i += unit)
        for (size_t k = 0; k < unit; k++)
            dst[i + k] = e->value[i + unit - 1 - k];
    memcpy(dst + whole, e->value + whole, (size_t)e->value_len - whole);
    if (padded != e->value_len)
        dst[padded - 1] = 0;
    b->len += padded;
}

void agora__deid_put_dataset(agora__deid_buf *b, const agora__dicom_dataset *ds,
                             unsigned bits_allocated, uint32_t flags, uint32_t depth)
{
    if (depth > MAX_DEPTH) {
        b->rc = b->rc ? b->rc : AGORA_ELIMIT;
        return;
    }
    for (uint32_t i = 0; i < ds->n_elements && b->rc == 0; i++) {
        const agora__dicom_element *e = &ds->elements[i];
        if ((e->tag & 0xFFFFu) == 0 || (e->tag >> 16) == 0x0002)
            continue; /* group lengths are optional and stale after any edit; meta is rebuilt */
        if (e->vr == AGORA__DICOM_VR_SQ || e->items != NULL) {
            size_t m = agora__deid_put_seq_begin(b, e->tag, AGORA__DICOM_VR_SQ, flags);
            for (uint32_t k = 0; k < e->n_items; k++) {
                size_t im = agora__deid_put_item_begin(b, flags);
                agora__deid_put_dataset(b, &e->items[k], bits_allocated, flags, depth + 1);
                agora__deid_put_item_end(b, im, flags);
            }
            agora__deid_put_seq_end(b, m, flags);
        } else {
            agora__deid_put_copy(b, e, bits_allocated);
        }
    }
}

static void put_ui(agora__deid_buf *b, uint32_t tag, const char *uid)
{
    agora__deid_put_element(b, tag, VR('U', 'I'), uid, strlen(uid));
}

void agora__deid_put_meta(agora__deid_buf *b, const char *sop_class, const char *sop_instance,
                          const char *transfer_syntax)
{
    size_t lc = strlen(sop_class), li = strlen(sop_instance), lt = strlen(transfer_syntax);
    if (lc == 0 || lc > 64 || li == 0 || li > 64 || lt == 0 || lt > 64) {
        b->rc = b->rc ? b->rc : AGORA_EINVAL;
        return;
    }
    static const uint8_t zeros[128];
    agora__deid_buf_put(b, zeros, sizeof zeros);
    agora__deid_buf_put(b, "DICM", 4);
    put_header(b, AGORA__DICOM_TAG(0x0002, 0x0000), VR('U', 'L'), 4);
    size_t len_at = b->len;
    put_u32(b, 0);
    size_t start = b->len;
    static const uint8_t version[2] = {0x00, 0x01};
    agora__deid_put_element(b, AGORA__DICOM_TAG(0x0002, 0x0001), VR('O', 'B'), version, 2);
    put_ui(b, AGORA__DICOM_TAG(0x0002, 0x0002), sop_class);
    put_ui(b, AGORA__DICOM_TAG(0x0002, 0x0003), sop_instance);
    put_ui(b, AGORA__DICOM_TAG(0x0002, 0x0010), transfer_syntax);
    put_ui(b, AGORA__DICOM_TAG(0x0002, 0x0012), AGORA__DEID_IMPL_CLASS_UID);
    agora__deid_put_element(b, AGORA__DICOM_TAG(0x0002, 0x0013), VR('S', 'H'),
                            AGORA__DEID_IMPL_VERSION, strlen(AGORA__DEID_IMPL_VERSION));
    patch_u32(b, len_at, (uint32_t)(b->len - start));
}

int agora__deid_write_part10(agora__deid_buf *b, const agora__dicom_dataset *ds,
                             const char *sop_class, const char *sop_instance,
                             const char *transfer_syntax, uint32_t flags, agora__error *err)
{
    unsigned bits = 0;
    for (uint32_t i = 0; i < ds->n_elements; i++) {
        const agora__dicom_element *e = &ds->elements[i];
        if (e->tag == AGORA__DICOM_TAG(0x0028, 0x0100) && e->value_len >= 2)
            bits = (e->flags & AGORA__DICOM_EL_BIG_ENDIAN)
                       ? ((unsigned)e->value[0] << 8 | e->value[1])
                       : ((unsigned)e->value[1] << 8 | e->value[0]);
    }
    agora__deid_put_meta(b, sop_class, sop_instance, transfer_syntax);
    agora__deid_put_dataset(b, ds, bits, flags, 0);
    if (b->rc != 0)
        return agora__error_set(err, b->rc,
                                b->rc == AGORA_ELIMIT
                                    ? "writing DICOM: output too large or a value too long for "
                                      "its VR"
                                : b->rc == AGORA_ENOMEM ? "writing DICOM: out of memory"
                                                        : "writing DICOM: invalid UIDs for the "
                                                          "file meta group");
    return 0;
}
