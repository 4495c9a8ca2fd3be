/* Part 10 file meta group reader (part10_meta.h): group 0002 only, bounded, incremental. */
#include "part10_meta.h"

#include <string.h>

#include "common.h"

#define PREAMBLE 128u
#define HEAD     (PREAMBLE + 4u + 12u) /* preamble, "DICM", (0002,0000) UL 4 value */

enum { R_HEAD = 0, R_GROUP = 1, R_DONE = 2, R_FAILED = 3 };

static uint16_t u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* A UID value: one trailing NUL or space of padding, then 1..64 of digits and dots with no
 * empty component. */
static int take_uid(const uint8_t *v, size_t n, char out[AGORA__P10META_UID_MAX + 1])
{
    if (n > 0 && (v[n - 1] == 0 || v[n - 1] == ' '))
        n--;
    if (n == 0 || n > AGORA__P10META_UID_MAX || v[0] == '.' || v[n - 1] == '.')
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '.') {
            if (v[i - 1] == '.')
                return -1;
        } else if (v[i] < '0' || v[i] > '9') {
            return -1;
        }
    }
    memcpy(out, v, n);
    out[n] = 0;
    return 0;
}

/* VRs with a 2-byte reserved field and a 4-byte length in Explicit VR (PS3.5 7.1.2). */
static int long_vr(const uint8_t *vr)
{
    static const char *const l[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                    "SV", "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (vr[0] == (uint8_t)l[i][0] && vr[1] == (uint8_t)l[i][1])
            return 1;
    return 0;
}

static int bad(agora__error *err, const char *what)
{
    return agora__error_set(err, AGORA__EPROTO, "the part's file meta group %s", what);
}

/* The elements of group 0002 after its group length: p[0..n). */
static int parse_group(const uint8_t *p, size_t n, agora__p10meta *out, agora__error *err)
{
    size_t at = 0;
    int seen_class = 0, seen_inst = 0, seen_ts = 0;
    while (at < n) {
        if (n - at < 8)
            return bad(err, "ends inside an element header");
        uint16_t group = u16(p + at), elem = u16(p + at + 2);
        if (group != 0x0002)
            return bad(err, "holds an element outside group 0002");
        if (p[at + 4] < 'A' || p[at + 4] > 'Z' || p[at + 5] < 'A' || p[at + 5] > 'Z')
            return bad(err, "is not Explicit VR Little Endian");
        size_t len, hdr;
        if (long_vr(p + at + 4)) {
            if (n - at < 12)
                return bad(err, "ends inside an element header");
            uint32_t l = u32(p + at + 8);
            if (l == 0xFFFFFFFFu)
                return bad(err, "has an undefined length");
            len = l;
            hdr = 12;
        } else {
            len = u16(p + at + 6);
            hdr = 8;
        }
        if (len > n - at - hdr)
            return bad(err, "has an element longer than the group");
        const uint8_t *v = p + at + hdr;
        char *dst = NULL;
        int *seen = NULL;
        if (elem == 0x0002) {
            dst = out->sop_class;
            seen = &seen_class;
        } else if (elem == 0x0003) {
            dst = out->sop_instance;
            seen = &seen_inst;
        } else if (elem == 0x0010) {
            dst = out->transfer_syntax;
            seen = &seen_ts;
        } else if (elem == 0x0000) {
            return bad(err, "has a second group length");
        }
        if (dst != NULL) {
            if (*seen)
                return bad(err, "repeats an element");
            if (p[at + 4] != 'U' || p[at + 5] != 'I' || take_uid(v, len, dst) != 0)
                return bad(err, "has a malformed UID");
            *seen = 1;
        }
        at += hdr + len;
    }
    if (!seen_class)
        return bad(err, "has no Media Storage SOP Class UID (0002,0002)");
    if (!seen_inst)
        return bad(err, "has no Media Storage SOP Instance UID (0002,0003)");
    if (!seen_ts)
        return bad(err, "has no Transfer Syntax UID (0002,0010)");
    return 0;
}

/* The head: preamble, DICM, and the group length element. The meta's total size, or 0. */
static size_t head_len(const uint8_t *p, agora__error *err)
{
    if (memcmp(p + PREAMBLE, "DICM", 4) != 0) {
        bad(err, "is missing: not a DICOM Part 10 file (no DICM prefix)");
        return 0;
    }
    const uint8_t *e = p + PREAMBLE + 4;
    if (u16(e) != 0x0002 || u16(e + 2) != 0x0000 || e[4] != 'U' || e[5] != 'L' || u16(e + 6) != 4) {
        bad(err, "does not begin with its group length (0002,0000) UL");
        return 0;
    }
    uint32_t g = u32(e + 8);
    if (g > AGORA__P10META_MAX - HEAD) {
        bad(err, "is larger than 16 KiB");
        return 0;
    }
    return HEAD + g;
}

void agora__p10meta_init(agora__p10meta_reader *r)
{
    r->have = 0;
    r->need = HEAD;
    r->state = R_HEAD;
}

int agora__p10meta_feed(agora__p10meta_reader *r, const uint8_t *p, size_t n, size_t *used,
                        agora__p10meta *out, agora__error *err)
{
    *used = 0;
    if (r->state == R_FAILED)
        return bad(err, "was refused");
    if (r->state == R_DONE)
        return AGORA__P10META_DONE;
    for (;;) {
        if (r->have < r->need) {
            if (n == 0)
                return AGORA__P10META_MORE;
            size_t take = r->need - r->have;
            if (take > n)
                take = n;
            memcpy(r->buf + r->have, p, take);
            r->have += take;
            *used += take;
            p += take;
            n -= take;
            continue;
        }
        if (r->state == R_HEAD) {
            size_t total = head_len(r->buf, err);
            if (total == 0) {
                r->state = R_FAILED;
                return AGORA__EPROTO;
            }
            r->need = total;
            r->state = R_GROUP;
            continue;
        }
        memset(out, 0, sizeof *out);
        if (parse_group(r->buf + HEAD, r->need - HEAD, out, err) != 0) {
            r->state = R_FAILED;
            return AGORA__EPROTO;
        }
        out->meta_len = r->need;
        r->state = R_DONE;
        return AGORA__P10META_DONE;
    }
}

int agora__p10meta_parse(const uint8_t *p, size_t n, agora__p10meta *out, agora__error *err)
{
    if (n < HEAD)
        return bad(err, "is truncated");
    size_t total = head_len(p, err);
    if (total == 0)
        return AGORA__EPROTO;
    if (n < total)
        return bad(err, "is truncated");
    memset(out, 0, sizeof *out);
    int rc = parse_group(p + HEAD, total - HEAD, out, err);
    if (rc == 0)
        out->meta_len = total;
    return rc;
}
