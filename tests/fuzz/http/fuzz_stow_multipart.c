/* libFuzzer: a STOW-RS request body through the multipart/related parser (host/http) and each
 * part's first bytes through the Part 10 meta reader, as stow.c chains them. The input is
 * a first byte that picks the read sizes, then, when the rest begins with 'm' or 'M', a
 * "Content-Type\n" line (else a fixed boundary), then the body. The same body fed whole and in
 * pieces must give the same events (a digest of them), and the callbacks check the parser's
 * promises: data only inside a part, one end per begin, no callback after the parser stopped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "multipart.h"
#include "filemeta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
    int in_part, stopped;
    uint64_t digest;
    agora__filemeta_reader reader;
    int meta_state;   /* 0 reading, 1 done, 2 refused */
    unsigned stop_at; /* part index whose begin returns an error (0: never) */
} fz;

static void mix(fz *f, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        f->digest = (f->digest ^ b[i]) * 1099511628211ull;
}

static int on_begin(void *arg, const agora__multipart_part *part)
{
    fz *f = arg;
    if (f->in_part || f->stopped)
        abort();
    f->in_part = 1;
    mix(f, "B", 1);
    mix(f, part->content_type, strlen(part->content_type));
    agora__filemeta_init(&f->reader);
    f->meta_state = 0;
    if (f->stop_at && part->index + 1 == f->stop_at) {
        f->stopped = 1;
        f->in_part = 0; /* a stopped parser ends nothing */
        return AGORA_ECANCELLED;
    }
    return 0;
}

static int on_data(void *arg, const uint8_t *p, size_t n)
{
    fz *f = arg;
    if (!f->in_part || f->stopped || n == 0)
        abort();
    mix(f, p, n);
    if (f->meta_state == 0) {
        size_t used = 0;
        agora__filemeta m;
        agora__error err = {0};
        int rc = agora__filemeta_feed(&f->reader, p, n, &used, &m, &err);
        if (used > n)
            abort();
        if (rc == AGORA__FILEMETA_DONE) {
            if (m.data_offset > AGORA__FILEMETA_MAX || m.sop_instance[0] == 0 ||
                strlen(m.sop_class) > AGORA__PDU_UID_MAX)
                abort();
            f->meta_state = 1;
        } else if (rc != AGORA__FILEMETA_MORE) {
            f->meta_state = 2;
        }
    }
    return 0;
}

static int on_end(void *arg, int complete)
{
    fz *f = arg;
    if (!f->in_part || f->stopped)
        abort();
    f->in_part = 0;
    mix(f, complete ? "E" : "e", 1);
    return 0;
}

static const agora__multipart_cb cb = {on_begin, on_data, on_end};

static uint64_t run(const char *boundary, const uint8_t *p, size_t n, size_t step, unsigned stop_at,
                    int *rc_out)
{
    fz f = {0};
    f.digest = 1469598103934665603ull;
    f.stop_at = stop_at;
    agora__multipart_limits lim = {64, 2048, 16, 1u << 20};
    agora__multipart *m = NULL;
    agora__error err = {0};
    if (agora__multipart_create(boundary, &lim, &cb, &f, &m, &err) != 0)
        abort(); /* the boundary came from agora__multipart_boundary or is fixed */
    int rc = 0;
    size_t at = 0;
    while (rc == 0 && at < n) {
        size_t k = step == 0 || step > n - at ? n - at : step;
        rc = agora__multipart_feed(m, p + at, k, &err);
        at += k;
    }
    int fin = agora__multipart_finish(m, &err);
    if (rc != 0 && fin != rc)
        abort(); /* a stop is sticky */
    if (f.in_part)
        abort(); /* finish ends an open part */
    if (fin == 0 && agora__multipart_failure(m) != AGORA__MULTIPART_OK)
        abort();
    mix(&f, &fin, sizeof fin);
    agora__multipart_destroy(m);
    *rc_out = fin;
    return f.digest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = 1 + data[0] % 17;
    unsigned stop_at = (data[0] >> 5) & 3u;
    data++;
    size--;
    char boundary[AGORA__MULTIPART_BOUNDARY_MAX + 1] = "agoraFuzzB";
    const uint8_t *nl = size > 0 && (data[0] == 'm' || data[0] == 'M')
                            ? memchr(data, '\n', size < 256 ? size : 256)
                            : NULL;
    if (nl != NULL) {
        char ct[257];
        size_t n = (size_t)(nl - data);
        memcpy(ct, data, n);
        ct[n] = 0;
        int type_ok;
        agora__error err = {0};
        if (agora__multipart_boundary(ct, boundary, &type_ok, &err) != 0)
            return 0;
        size -= n + 1;
        data = nl + 1;
    }
    int rc_whole, rc_steps;
    uint64_t a = run(boundary, data, size, 0, stop_at, &rc_whole);
    uint64_t b = run(boundary, data, size, step, stop_at, &rc_steps);
    if (a != b || rc_whole != rc_steps)
        abort(); /* chunking changed what the parser saw */
    return 0;
}
