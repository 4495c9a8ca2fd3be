/* The Part 10 file meta group reader (filemeta.h): group 0002 only, bounded, incremental; the
 * whole-buffer and file entry points drive the same state machine. */
#include "filemeta.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* A UID value: one trailing NUL or space of padding, then a valid UID (pdu.h). */
static int take_uid(const uint8_t *v, size_t n, char out[AGORA__PDU_UID_MAX + 1])
{
    if (n > 0 && (v[n - 1] == 0 || v[n - 1] == ' '))
        n--;
    if (!agora__uid_valid((const char *)v, n))
        return -1;
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
    return agora__error_set(err, AGORA_EINVAL, "the file meta group (0002) %s", what);
}

/* The elements of group 0002 after its group length: p[0..n). */
static int parse_group(const uint8_t *p, size_t n, agora__filemeta *out, agora__error *err)
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
            dst = out->ts;
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
        agora__error_set(err, AGORA_EINVAL,
                         "not a DICOM Part 10 file (no 128-byte preamble and \"DICM\")");
        return 0;
    }
    const uint8_t *e = p + PREAMBLE + 4;
    if (u16(e) != 0x0002 || u16(e + 2) != 0x0000 || e[4] != 'U' || e[5] != 'L' || u16(e + 6) != 4) {
        bad(err, "does not begin with its group length (0002,0000) UL");
        return 0;
    }
    uint32_t g = u32(e + 8);
    if (g > AGORA__FILEMETA_MAX - HEAD) {
        bad(err, "is larger than 16 KiB");
        return 0;
    }
    return HEAD + g;
}

void agora__filemeta_init(agora__filemeta_reader *r)
{
    r->have = 0;
    r->need = HEAD;
    r->state = R_HEAD;
}

int agora__filemeta_feed(agora__filemeta_reader *r, const uint8_t *p, size_t n, size_t *used,
                         agora__filemeta *out, agora__error *err)
{
    *used = 0;
    if (r->state == R_FAILED)
        return bad(err, "was refused");
    if (r->state == R_DONE)
        return AGORA__FILEMETA_DONE;
    for (;;) {
        if (r->have < r->need) {
            if (n == 0)
                return AGORA__FILEMETA_MORE;
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
                return AGORA_EINVAL;
            }
            r->need = total;
            r->state = R_GROUP;
            continue;
        }
        memset(out, 0, sizeof *out);
        if (parse_group(r->buf + HEAD, r->need - HEAD, out, err) != 0) {
            r->state = R_FAILED;
            return AGORA_EINVAL;
        }
        out->data_offset = r->need;
        r->state = R_DONE;
        return AGORA__FILEMETA_DONE;
    }
}

/* Files on disk written without the (Type 1) group length (some older writers do so): the extent
 * of group 0002 found by stepping over its element headers, bounded like the group length. The
 * elements are then checked by parse_group as any other meta. 0 when the group is cut off. */
static size_t walk_extent(const uint8_t *p, size_t n)
{
    size_t at = PREAMBLE + 4u;
    while (n - at >= 2 && u16(p + at) == 0x0002) {
        if (n - at < 8)
            return 0;
        size_t hdr = long_vr(p + at + 4) ? 12u : 8u;
        if (n - at < hdr)
            return 0;
        size_t len = hdr == 12u ? u32(p + at + 8) : u16(p + at + 6);
        if (len > AGORA__FILEMETA_MAX || len > n - at - hdr || at + hdr + len > AGORA__FILEMETA_MAX)
            return 0;
        at += hdr + len;
    }
    return at;
}

int agora__filemeta_parse(const uint8_t *p, size_t n, agora__filemeta *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (n < PREAMBLE + 4u || memcmp(p + PREAMBLE, "DICM", 4) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "not a DICOM Part 10 file (no 128-byte preamble and \"DICM\")");
    const uint8_t *e = p + PREAMBLE + 4u;
    if (n >= PREAMBLE + 8u && u16(e) == 0x0002 && u16(e + 2) != 0x0000) {
        size_t end = walk_extent(p, n);
        if (end == 0)
            return bad(err, "is truncated, or longer than 16 KiB");
        int rc = parse_group(e, end - (PREAMBLE + 4u), out, err);
        if (rc == 0)
            out->data_offset = end;
        return rc;
    }
    if (n < HEAD)
        return bad(err, "is truncated");
    size_t total = head_len(p, err);
    if (total == 0)
        return AGORA_EINVAL;
    if (n < total)
        return bad(err, "is truncated");
    int rc = parse_group(p + HEAD, total - HEAD, out, err);
    if (rc == 0)
        out->data_offset = total;
    return rc;
}

int agora__filemeta_read(const char *path, agora__filemeta *out, agora__error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return agora__error_set(err, AGORA__ERR(e), "cannot open a DICOM file: %s", strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return agora__error_set(err, AGORA_EINVAL, "a DICOM file to read is not a regular file");
    }
    /* The head only: the meta is at most AGORA__FILEMETA_MAX bytes. */
    uint8_t *buf = malloc(AGORA__FILEMETA_MAX);
    if (buf == NULL) {
        close(fd);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    size_t len = 0;
    int rc = 0;
    while (len < AGORA__FILEMETA_MAX) {
        ssize_t got = read(fd, buf + len, AGORA__FILEMETA_MAX - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            int e = errno;
            rc = agora__error_set(err, AGORA__ERR(e), "cannot read a DICOM file: %s", strerror(e));
            break;
        }
        if (got == 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    if (rc == 0)
        rc = agora__filemeta_parse(buf, len, out, err);
    free(buf);
    if (rc != 0)
        return rc;
    out->file_size = (uint64_t)st.st_size;
    return 0;
}
