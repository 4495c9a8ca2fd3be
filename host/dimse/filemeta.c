/* Part 10 file meta group reader (filemeta.h): explicit VR little endian elements of group 0002
 * after the 128-byte preamble and "DICM"; the walk stops at the first element of another group,
 * which is where the data set starts. */
#include "filemeta.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

#define PREAMBLE 132u

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* VRs with a reserved field and a 4-byte length (PS3.5 7.1.2). */
static int long_vr(const uint8_t vr[2])
{
    static const char *const l[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ",
                                    "SV", "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof l / sizeof l[0]; i++)
        if (vr[0] == (uint8_t)l[i][0] && vr[1] == (uint8_t)l[i][1])
            return 1;
    return 0;
}

static int get_uid(const uint8_t *v, size_t n, char out[AGORA__PDU_UID_MAX + 1], const char *what,
                   agora__error *err)
{
    while (n > 0 && (v[n - 1] == 0 || v[n - 1] == ' '))
        n--;
    if (!agora__uid_valid((const char *)v, n))
        return agora__error_set(err, AGORA_EINVAL,
                                "the file meta %s is not a valid UID; the file cannot be sent as "
                                "it is (re-export it)",
                                what);
    memcpy(out, v, n);
    out[n] = 0;
    return 0;
}

int agora__filemeta_parse(const uint8_t *buf, size_t len, agora__filemeta *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (len < PREAMBLE || memcmp(buf + 128, "DICM", 4) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "not a DICOM Part 10 file (no 128-byte preamble and \"DICM\"); "
                                "send files written by `agora results export` or a PACS");
    size_t off = PREAMBLE;
    unsigned count = 0;
    unsigned seen = 0;
    for (;;) {
        if (len - off < 2 || le16(buf + off) != 0x0002)
            break; /* end of the buffer or of group 0002 */
        if (off - PREAMBLE >= AGORA__FILEMETA_MAX || ++count > AGORA__FILEMETA_MAX_ELEMENTS)
            return agora__error_set(err, AGORA_EINVAL,
                                    "the file meta group is longer than %u bytes or %u elements",
                                    AGORA__FILEMETA_MAX, AGORA__FILEMETA_MAX_ELEMENTS);
        if (len - off < 8)
            return agora__error_set(err, AGORA_EINVAL, "the file meta group is truncated");
        uint16_t elem = le16(buf + off + 2);
        const uint8_t *vr = buf + off + 4;
        size_t hdr, n;
        if (vr[0] < 'A' || vr[0] > 'Z' || vr[1] < 'A' || vr[1] > 'Z')
            return agora__error_set(err, AGORA_EINVAL,
                                    "file meta element (0002,%04x) has no explicit VR", elem);
        if (long_vr(vr)) {
            if (len - off < 12)
                return agora__error_set(err, AGORA_EINVAL, "the file meta group is truncated");
            hdr = 12;
            n = le32(buf + off + 8);
        } else {
            hdr = 8;
            n = le16(buf + off + 6);
        }
        if (n > AGORA__FILEMETA_MAX || n > len - off - hdr)
            return agora__error_set(err, AGORA_EINVAL,
                                    "file meta element (0002,%04x) runs past the group", elem);
        const uint8_t *v = buf + off + hdr;
        int rc = 0;
        if (elem == 0x0002) {
            rc = get_uid(v, n, out->sop_class, "SOP class", err);
            seen |= 1;
        } else if (elem == 0x0003) {
            rc = get_uid(v, n, out->sop_instance, "SOP instance", err);
            seen |= 2;
        } else if (elem == 0x0010) {
            rc = get_uid(v, n, out->ts, "transfer syntax", err);
            seen |= 4;
        }
        if (rc != 0)
            return rc;
        off += hdr + n;
    }
    if (seen != 7)
        return agora__error_set(err, AGORA_EINVAL,
                                "the file meta group lacks its %s; the file cannot be sent "
                                "(re-export it)",
                                !(seen & 1)   ? "Media Storage SOP Class UID (0002,0002)"
                                : !(seen & 2) ? "Media Storage SOP Instance UID (0002,0003)"
                                              : "Transfer Syntax UID (0002,0010)");
    out->data_offset = off;
    return 0;
}

int agora__filemeta_read(const char *path, agora__filemeta *out, agora__error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return agora__error_set(err, AGORA__ERR(e), "cannot open a file to send: %s", strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return agora__error_set(err, AGORA_EINVAL, "a file to send is not a regular file");
    }
    size_t cap = PREAMBLE + AGORA__FILEMETA_MAX + 16;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    size_t len = 0;
    int rc = 0;
    while (len < cap) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            rc =
                agora__error_set(err, AGORA__ERR(e), "cannot read a file to send: %s", strerror(e));
            break;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (rc == 0)
        rc = agora__filemeta_parse(buf, len, out, err);
    free(buf);
    if (rc == 0) {
        out->file_size = (uint64_t)st.st_size;
        if (out->data_offset > out->file_size)
            rc = agora__error_set(err, AGORA_EINVAL, "the file meta group is truncated");
    }
    return rc;
}
