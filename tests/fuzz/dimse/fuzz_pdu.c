/* libFuzzer: a peer's byte stream into the SCP association state machine (host/dimse), cut
 * into reads at points taken from the input, plus the A-ASSOCIATE-RQ/AC parsers on the raw
 * input. The fake spool checks the machine's promises: data only between begin and end, one
 * end per begin. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "assoc.h"
#include "common.h"
#include "pdu.h"

typedef struct fz {
    int open;
    size_t data;
    int handle;
} fz;

static int f_send(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx;
    if (n < 6 || p[0] < 1 || p[0] > 7)
        abort(); /* the machine only ever sends whole, known PDUs */
    return 0;
}

static int f_admit(void *ctx)
{
    (void)ctx;
    return 0;
}

static uint16_t f_begin(void *ctx, const agora__store_info *info, void **h)
{
    fz *f = ctx;
    if (f->open || !agora__uid_valid(info->sop_instance, strlen(info->sop_instance)))
        abort();
    f->open = 1;
    *h = &f->handle;
    return 0;
}

static int f_data(void *ctx, void *h, const uint8_t *p, size_t n)
{
    fz *f = ctx;
    (void)p;
    if (!f->open || h != &f->handle)
        abort();
    f->data += n;
    return 0;
}

static uint16_t f_end(void *ctx, void *h, int complete)
{
    fz *f = ctx;
    (void)complete;
    if (!f->open || h != &f->handle)
        abort();
    f->open = 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static agora__pdu_assoc_rq rq;
    static agora__pdu_assoc_ac ac;
    agora__error err = {0};
    (void)agora__pdu_parse_assoc_rq(data, size, &rq, &err);
    (void)agora__pdu_parse_assoc_ac(data, size, &ac, &err);
    if (size < 1)
        return 0;
    static const char *const allow[] = {"PYTEST", "MODALITY"};
    fz f = {0};
    agora__assoc_config cfg = {"AGORA", allow, (data[0] & 1) ? 2 : 0, 4096 + (data[0] & 0xF0) * 64u};
    agora__assoc_ops ops = {&f, f_send, f_admit, f_begin, f_data, f_end};
    agora__assoc *a = agora__assoc_new(&cfg, &ops);
    if (a == NULL)
        return 0;
    /* Read sizes from the first byte: 1..16 bytes per read when its low bits say so, else
     * the rest at once. */
    size_t step = (data[0] & 0x0E) ? (size_t)((data[0] >> 1) & 0x07) + 1 : size;
    for (size_t off = 1; off < size;) {
        size_t k = size - off < step ? size - off : step;
        agora__assoc_feed(a, data + off, k);
        off += k;
    }
    agora__assoc_free(a);
    if (f.open)
        abort(); /* free must end an open store */
    return 0;
}
