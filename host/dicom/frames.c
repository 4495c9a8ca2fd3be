/* Frames to fragments of encapsulated Pixel Data (PS3.5 A.4 and the Extended Offset Table). */
#include <string.h>

#include "pixels.h"

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Fragment whose item tag is `rel` bytes after the first fragment's item tag, or -1. */
static int64_t fragment_at(const agora__dicom_element *pd, uint64_t rel)
{
    uint64_t base = pd->fragments[0].offset;
    uint32_t lo = 0, hi = pd->n_fragments;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t o = pd->fragments[mid].offset - base;
        if (o == rel)
            return mid;
        if (o < rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int starts_frame(const agora__dicom_fragment *fr)
{
    const uint8_t *d = fr->data;
    if (fr->length >= 2 && d[0] == 0xFF && d[1] == 0xD8)
        return 1; /* JPEG / JPEG-LS SOI */
    if (fr->length >= 4 && d[0] == 0xFF && d[1] == 0x4F && d[2] == 0xFF && d[3] == 0x51)
        return 1; /* JPEG 2000 SOC + SIZ */
    return 0;
}

/* Map offsets (relative to the first fragment item) of frame and frame+1 to fragments. */
static int by_offsets(const agora__dicom_element *pd, uint64_t off, int has_next, uint64_t next,
                      uint32_t *first, uint32_t *count, agora__error *err, const char *table)
{
    int64_t a = fragment_at(pd, off);
    int64_t b = has_next ? fragment_at(pd, next) : (int64_t)pd->n_fragments;
    if (a < 0 || b < 0 || b <= a)
        return agora__error_set(err, AGORA_EINPUT,
                                "the %s does not point at fragment boundaries; the file is "
                                "damaged",
                                table);
    *first = (uint32_t)a;
    *count = (uint32_t)(b - a);
    return 0;
}

int agora__dicom_frame_fragments(const agora__dicom_file *f, const agora__dicom_element *pd,
                                 uint32_t n_frames, uint32_t frame, uint32_t *first,
                                 uint32_t *count, agora__error *err)
{
    if (!pd || !(pd->flags & AGORA__DICOM_EL_ENCAPSULATED) || pd->n_fragments == 0)
        return agora__error_set(err, AGORA_EINPUT,
                                "pixel data has no fragments; the file is damaged");
    if (n_frames == 0 || frame >= n_frames)
        return agora__error_set(err, AGORA_EINVAL, "frame %u out of range (%u frames)", frame,
                                n_frames);
    if (n_frames > pd->n_fragments)
        return agora__error_set(err, AGORA_EINPUT,
                                "%u frames but only %u fragments; the file is damaged", n_frames,
                                pd->n_fragments);
    /* Extended Offset Table: 64-bit offsets, authoritative when present. */
    const agora__dicom_element *eot =
        f ? agora__dicom_find(&f->dataset, AGORA__DICOM_T_EXT_OFFSET_TABLE) : NULL;
    if (eot && eot->value && eot->value_len >= 8) {
        if (eot->value_len / 8 != n_frames || (eot->flags & AGORA__DICOM_EL_BIG_ENDIAN))
            return agora__error_set(err, AGORA_EINPUT,
                                    "extended offset table has %llu entries for %u frames; the "
                                    "file is damaged",
                                    (unsigned long long)(eot->value_len / 8), n_frames);
        uint64_t off = le64(eot->value + (size_t)frame * 8);
        uint64_t next = frame + 1 < n_frames ? le64(eot->value + (size_t)(frame + 1) * 8) : 0;
        return by_offsets(pd, off, frame + 1 < n_frames, next, first, count, err,
                          "extended offset table");
    }
    if (n_frames == 1) {
        *first = 0;
        *count = pd->n_fragments;
        return 0;
    }
    if (n_frames == pd->n_fragments) {
        *first = frame;
        *count = 1;
        return 0;
    }
    if (pd->bot_len >= 4) {
        if (pd->bot_len / 4 != n_frames)
            return agora__error_set(err, AGORA_EINPUT,
                                    "basic offset table has %u entries for %u frames; the file "
                                    "is damaged",
                                    pd->bot_len / 4, n_frames);
        uint64_t off = le32(pd->bot + (size_t)frame * 4);
        uint64_t next = frame + 1 < n_frames ? le32(pd->bot + (size_t)(frame + 1) * 4) : 0;
        return by_offsets(pd, off, frame + 1 < n_frames, next, first, count, err,
                          "basic offset table");
    }
    /* No table: a frame starts at each fragment that begins with a start-of-image marker. */
    uint32_t seen = 0;
    int64_t start = -1;
    for (uint32_t i = 0; i < pd->n_fragments; i++) {
        if (!starts_frame(&pd->fragments[i]))
            continue;
        if (i == 0 || seen > 0) {
            if (seen == frame)
                start = i;
            else if (seen == frame + 1) {
                *first = (uint32_t)start;
                *count = i - (uint32_t)start;
                return 0;
            }
            seen++;
        }
    }
    if (start >= 0 && seen == n_frames) {
        *first = (uint32_t)start;
        *count = pd->n_fragments - (uint32_t)start;
        return 0;
    }
    return agora__error_set(err, AGORA_EINPUT,
                            "cannot tell which fragments hold frame %u: no offset table and %u "
                            "start markers for %u frames; the file is damaged",
                            frame, seen, n_frames);
}
