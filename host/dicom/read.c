/*
 * The Part 10 reader: preamble, meta group, then the dataset in the encoding the transfer syntax
 * names (PS3.5 section 7, PS3.10 section 7). Pure: memory in, tree out, no I/O, no globals.
 *
 * Every read is checked against the end of the enclosing value (item, sequence or stream) with
 * 64-bit arithmetic before it happens; counts and depth are capped by agora__dicom_limits; the
 * number of elements is also bounded by the input size (each costs at least 8 bytes), so memory
 * stays proportional to the input.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "arena.h"
#include "dicom.h"

typedef struct parser {
    const uint8_t *buf; /* the stream being parsed (input, or the inflated copy) */
    uint64_t len;
    uint64_t pos;
    int big;      /* big-endian stream */
    int explicit; /* explicit VR */
    const agora__dicom_limits *lim;
    uint64_t n_nodes;
    uint64_t n_fragments;
    agora__dicom_file *file;
    agora__error *err;
    int stopped; /* STOP_AT_PIXELS reached */
} parser;

/* A growable array of elements, freed on every path (its content is copied into the arena). */
typedef struct el_vec {
    agora__dicom_element *v;
    size_t n, cap;
} el_vec;

static int vec_push(el_vec *vec, const agora__dicom_element *e)
{
    if (vec->n == vec->cap) {
        size_t cap = vec->cap ? vec->cap * 2 : 16;
        agora__dicom_element *nv = realloc(vec->v, cap * sizeof *nv);
        if (!nv)
            return -1;
        vec->v = nv;
        vec->cap = cap;
    }
    vec->v[vec->n++] = *e;
    return 0;
}

static uint16_t rd16(const parser *p, uint64_t at)
{
    const uint8_t *b = p->buf + at;
    return p->big ? (uint16_t)(b[0] << 8 | b[1]) : (uint16_t)(b[1] << 8 | b[0]);
}

static uint32_t rd32(const parser *p, uint64_t at)
{
    const uint8_t *b = p->buf + at;
    if (p->big)
        return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
}

static uint32_t rd_tag(const parser *p, uint64_t at)
{
    return (uint32_t)rd16(p, at) << 16 | rd16(p, at + 2);
}

static int is_upper(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

/* VRs with the 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2). */
static int vr_has_long_length(uint16_t vr)
{
    switch (vr) {
    case AGORA__DICOM_VR('O', 'B'):
    case AGORA__DICOM_VR('O', 'D'):
    case AGORA__DICOM_VR('O', 'F'):
    case AGORA__DICOM_VR('O', 'L'):
    case AGORA__DICOM_VR('O', 'V'):
    case AGORA__DICOM_VR('O', 'W'):
    case AGORA__DICOM_VR('S', 'Q'):
    case AGORA__DICOM_VR('U', 'C'):
    case AGORA__DICOM_VR('U', 'N'):
    case AGORA__DICOM_VR('U', 'R'):
    case AGORA__DICOM_VR('U', 'T'):
    case AGORA__DICOM_VR('S', 'V'):
    case AGORA__DICOM_VR('U', 'V'):
        return 1;
    default:
        return 0;
    }
}

/* The VR an implicit-VR element gets: the dictionary's first VR, with the PS3.5 defaults for
 * alternatives (OB or OW -> OW in implicit VR; US or SS -> US), UN when unknown. */
static uint16_t implicit_vr(uint32_t tag)
{
    const agora__dicom_dict_entry *d = agora__dicom_dict_lookup(tag);
    if (!d || !d->vr)
        return AGORA__DICOM_VR_UN;
    if (d->vr == AGORA__DICOM_VR('O', 'B') && d->vr2 == AGORA__DICOM_VR('O', 'W'))
        return AGORA__DICOM_VR('O', 'W');
    return d->vr;
}

static int fail_at(parser *p, int code, uint64_t at, const char *what)
{
    return agora__error_set(p->err, code,
                            "%s at byte offset %llu; the file is damaged or not "
                            "DICOM",
                            what, (unsigned long long)at);
}

static int count_node(parser *p)
{
    if (++p->n_nodes > p->lim->max_elements)
        return agora__error_set(p->err, AGORA_ELIMIT,
                                "more than %llu elements; raise the element limit only for "
                                "trusted input",
                                (unsigned long long)p->lim->max_elements);
    return 0;
}

static int parse_dataset(parser *p, uint64_t end, int undefined, uint32_t depth,
                         agora__dicom_dataset *out);

static int cmp_el(const void *a, const void *b)
{
    const agora__dicom_element *x = a, *y = b;
    if (x->tag != y->tag)
        return x->tag < y->tag ? -1 : 1;
    /* Offsets are unique and increasing in file order: makes qsort stable. */
    return x->offset < y->offset ? -1 : (x->offset > y->offset);
}

/* Copy the collected elements into the arena, sorting when the file was out of order. */
static int finish_dataset(parser *p, el_vec *vec, agora__dicom_dataset *out)
{
    int sorted = 1;
    for (size_t i = 1; i < vec->n; i++) {
        if (vec->v[i].tag < vec->v[i - 1].tag)
            sorted = 0;
        else if (vec->v[i].tag == vec->v[i - 1].tag)
            p->file->warnings |= AGORA__DICOM_W_DUPLICATE_TAG;
    }
    if (!sorted) {
        p->file->warnings |= AGORA__DICOM_W_OUT_OF_ORDER;
        qsort(vec->v, vec->n, sizeof *vec->v, cmp_el);
        for (size_t i = 1; i < vec->n; i++)
            if (vec->v[i].tag == vec->v[i - 1].tag)
                p->file->warnings |= AGORA__DICOM_W_DUPLICATE_TAG;
    }
    out->n_elements = (uint32_t)vec->n;
    out->elements = NULL;
    if (vec->n) {
        out->elements = agora__dicom_arena_dup(p->file->arena, vec->v, vec->n, sizeof *vec->v);
        if (!out->elements)
            return agora__error_set(p->err, AGORA_ENOMEM, "out of memory reading a dataset");
    }
    return 0;
}

/* Items of a sequence: [pos, end) when defined, else until the Sequence Delimitation Item. */
static int parse_sequence(parser *p, agora__dicom_element *el, uint64_t end, int undefined,
                          uint32_t depth)
{
    if (depth >= p->lim->max_depth)
        return agora__error_set(p->err, AGORA_ELIMIT,
                                "sequences nested deeper than %u at byte offset %llu; the file "
                                "is damaged or hostile",
                                p->lim->max_depth, (unsigned long long)el->offset);
    agora__dicom_dataset *items = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (!undefined && p->pos >= end)
            break;
        if (p->pos > end || end - p->pos < 8) {
            rc = fail_at(p, AGORA_EINPUT, p->pos, "sequence truncated");
            goto out;
        }
        uint64_t at = p->pos;
        uint32_t tag = rd_tag(p, at);
        uint32_t len = rd32(p, at + 4);
        p->pos += 8;
        if (tag == AGORA__DICOM_T_SEQ_END) {
            if (!undefined) {
                rc = fail_at(p, AGORA_EINPUT, at,
                             "sequence delimiter in a defined-length "
                             "sequence");
                goto out;
            }
            break;
        }
        if (tag != AGORA__DICOM_T_ITEM) {
            rc = fail_at(p, AGORA_EINPUT, at, "expected an item in a sequence");
            goto out;
        }
        if ((rc = count_node(p)))
            goto out;
        uint64_t item_end = end;
        int item_undef = len == AGORA__DICOM_UNDEFINED_LENGTH;
        if (!item_undef) {
            if ((uint64_t)len > end - p->pos) {
                rc = fail_at(p, AGORA_EINPUT, at,
                             "item length runs past the end of its "
                             "sequence");
                goto out;
            }
            item_end = p->pos + len;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4;
            agora__dicom_dataset *ni = realloc(items, ncap * sizeof *ni);
            if (!ni) {
                rc = agora__error_set(p->err, AGORA_ENOMEM, "out of memory reading a sequence");
                goto out;
            }
            items = ni;
            cap = ncap;
        }
        agora__dicom_dataset *it = &items[n];
        memset(it, 0, sizeof *it);
        it->offset = at;
        it->length = len;
        if ((rc = parse_dataset(p, item_end, item_undef, depth + 1, it)))
            goto out;
        n++;
    }
    el->n_items = (uint32_t)n;
    if (n) {
        el->items = agora__dicom_arena_dup(p->file->arena, items, n, sizeof *items);
        if (!el->items)
            rc = agora__error_set(p->err, AGORA_ENOMEM, "out of memory reading a sequence");
    }
out:
    free(items);
    return rc;
}

/* Encapsulated Pixel Data (PS3.5 A.4): Basic Offset Table item, fragment items, delimiter. */
static int parse_encapsulated(parser *p, agora__dicom_element *el, uint64_t end)
{
    agora__dicom_fragment *fr = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, first = 1;
    for (;;) {
        if (p->pos > end || end - p->pos < 8) {
            rc = fail_at(p, AGORA_EINPUT, p->pos, "encapsulated pixel data truncated");
            goto out;
        }
        uint64_t at = p->pos;
        uint32_t tag = rd_tag(p, at);
        uint32_t len = rd32(p, at + 4);
        p->pos += 8;
        if (tag == AGORA__DICOM_T_SEQ_END)
            break;
        if (tag != AGORA__DICOM_T_ITEM || len == AGORA__DICOM_UNDEFINED_LENGTH) {
            rc = fail_at(p, AGORA_EINPUT, at,
                         "expected a defined-length fragment item in pixel "
                         "data");
            goto out;
        }
        if ((uint64_t)len > end - p->pos) {
            rc = fail_at(p, AGORA_EINPUT, at, "fragment length runs past the end of the file");
            goto out;
        }
        if (first) {
            el->bot = len ? p->buf + p->pos : NULL;
            el->bot_len = len;
            first = 0;
        } else {
            if (++p->n_fragments > p->lim->max_fragments) {
                rc = agora__error_set(p->err, AGORA_ELIMIT,
                                      "more than %llu pixel data fragments; the file is damaged "
                                      "or hostile",
                                      (unsigned long long)p->lim->max_fragments);
                goto out;
            }
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                agora__dicom_fragment *nf = realloc(fr, ncap * sizeof *nf);
                if (!nf) {
                    rc = agora__error_set(p->err, AGORA_ENOMEM,
                                          "out of memory reading "
                                          "fragments");
                    goto out;
                }
                fr = nf;
                cap = ncap;
            }
            fr[n].data = p->buf + p->pos;
            fr[n].length = len;
            fr[n].offset = at;
            n++;
        }
        p->pos += len;
    }
    el->n_fragments = (uint32_t)n;
    if (n) {
        el->fragments = agora__dicom_arena_dup(p->file->arena, fr, n, sizeof *fr);
        if (!el->fragments)
            rc = agora__error_set(p->err, AGORA_ENOMEM, "out of memory reading fragments");
    }
out:
    free(fr);
    return rc;
}

/* One element at p->pos (which is < end). Fills *el; *done = 1 when an Item Delimitation Item
 * ended an undefined-length item. */
static int parse_element(parser *p, uint64_t end, int undefined, uint32_t depth,
                         agora__dicom_element *el, int *done)
{
    uint64_t at = p->pos;
    if (end - at < 8)
        return fail_at(p, AGORA_EINPUT, at, "element header truncated");
    memset(el, 0, sizeof *el);
    el->offset = at;
    el->tag = rd_tag(p, at);
    if (AGORA__DICOM_GROUP(el->tag) == 0xFFFE) {
        uint32_t len = rd32(p, at + 4);
        p->pos += 8;
        if (el->tag == AGORA__DICOM_T_ITEM_END && undefined) {
            *done = 1;
            return 0;
        }
        if (el->tag == AGORA__DICOM_T_ITEM_END && len == 0 && depth == 0) {
            /* A stray delimiter at top level (seen in the wild); nothing to keep. */
            el->tag = 0;
            return 0;
        }
        return fail_at(p, AGORA_EINPUT, at, "unexpected item or delimiter tag");
    }
    uint32_t len;
    const uint8_t *vb = p->buf + at + 4;
    if (p->explicit && is_upper(vb[0]) && is_upper(vb[1])) {
        el->vr = AGORA__DICOM_VR(vb[0], vb[1]);
        if (vr_has_long_length(el->vr)) {
            if (end - at < 12)
                return fail_at(p, AGORA_EINPUT, at, "element header truncated");
            len = rd32(p, at + 8);
            p->pos = at + 12;
        } else {
            len = rd16(p, at + 6);
            p->pos = at + 8;
        }
    } else {
        /* Implicit VR, or an explicit stream with a missing VR (DCMTK tolerates this too). */
        el->vr = implicit_vr(el->tag);
        el->flags |= AGORA__DICOM_EL_VR_IMPLICIT;
        len = rd32(p, at + 4);
        p->pos = at + 8;
    }
    if (p->big)
        el->flags |= AGORA__DICOM_EL_BIG_ENDIAN;
    el->length = len;
    int rc;
    if (len == AGORA__DICOM_UNDEFINED_LENGTH) {
        el->flags |= AGORA__DICOM_EL_UNDEF_LENGTH;
        if (el->tag == AGORA__DICOM_T_PIXEL_DATA) {
            el->flags |= AGORA__DICOM_EL_ENCAPSULATED;
            el->flags &= (uint16_t)~AGORA__DICOM_EL_BIG_ENDIAN;
            if (p->big)
                return fail_at(p, AGORA_EINPUT, at,
                               "encapsulated pixel data in a big-endian "
                               "stream");
            return parse_encapsulated(p, el, end);
        }
        if (el->vr == AGORA__DICOM_VR_UN || el->vr != AGORA__DICOM_VR_SQ) {
            if (el->vr != AGORA__DICOM_VR_UN && !(el->flags & AGORA__DICOM_EL_VR_IMPLICIT))
                return fail_at(p, AGORA_EINPUT, at,
                               "undefined length on a VR that cannot have "
                               "one");
            /* UN (or unknown implicit) of undefined length: a sequence in Implicit VR LE
             * (PS3.5 6.2.2 note). Parse it so, then restore the stream's encoding. */
            int ob = p->big, oe = p->explicit;
            if (el->vr == AGORA__DICOM_VR_UN) {
                p->big = 0;
                p->explicit = 0;
                el->flags |= AGORA__DICOM_EL_UN_AS_SQ;
                el->flags &= (uint16_t)~AGORA__DICOM_EL_BIG_ENDIAN;
            }
            el->vr = AGORA__DICOM_VR_UN == el->vr ? AGORA__DICOM_VR_UN : AGORA__DICOM_VR_SQ;
            rc = parse_sequence(p, el, end, 1, depth);
            p->big = ob;
            p->explicit = oe;
            return rc;
        }
        return parse_sequence(p, el, end, 1, depth);
    }
    if ((uint64_t)len > end - p->pos)
        return fail_at(p, AGORA_EINPUT, at, "element length runs past the end of its container");
    if (len & 1u)
        p->file->warnings |= AGORA__DICOM_W_ODD_LENGTH;
    if (el->vr == AGORA__DICOM_VR_SQ) {
        uint64_t send = p->pos + len;
        rc = parse_sequence(p, el, send, 0, depth);
        if (rc == 0 && p->pos != send)
            return fail_at(p, AGORA_EINPUT, p->pos, "sequence content shorter than its length");
        return rc;
    }
    el->value = len ? p->buf + p->pos : NULL;
    el->value_len = len;
    p->pos += len;
    return 0;
}

static int parse_dataset(parser *p, uint64_t end, int undefined, uint32_t depth,
                         agora__dicom_dataset *out)
{
    el_vec vec = {0};
    int rc = 0;
    for (;;) {
        if (p->pos >= end) {
            if (undefined) {
                rc = fail_at(p, AGORA_EINPUT, p->pos, "item without its delimiter (truncated)");
                goto out;
            }
            break;
        }
        if (depth == 0 && end - p->pos < 8) {
            p->file->warnings |= AGORA__DICOM_W_TRAILING_BYTES;
            p->pos = end;
            break;
        }
        if (depth == 0 && (p->lim->flags & AGORA__DICOM_READ_STOP_AT_PIXELS) && end - p->pos >= 4 &&
            rd_tag(p, p->pos) == AGORA__DICOM_T_PIXEL_DATA) {
            p->stopped = 1;
            break;
        }
        agora__dicom_element el;
        int done = 0;
        if ((rc = count_node(p)))
            goto out;
        if ((rc = parse_element(p, end, undefined, depth, &el, &done)))
            goto out;
        if (done)
            break;
        if (el.tag == 0 && el.vr == 0)
            continue;
        if (vec_push(&vec, &el)) {
            rc = agora__error_set(p->err, AGORA_ENOMEM, "out of memory reading a dataset");
            goto out;
        }
    }
    rc = finish_dataset(p, &vec, out);
out:
    free(vec.v);
    return rc;
}

void agora__dicom_limits_default(agora__dicom_limits *l)
{
    l->max_depth = 16;
    l->max_elements = 4000000;
    l->max_fragments = 1000000;
    l->max_inflated_bytes = (uint64_t)1 << 30;
    l->max_inflate_ratio = 64;
    l->flags = 0;
}

/* Does an element header that looks valid in this encoding start at buf? */
static int plausible_explicit(const uint8_t *b, size_t n)
{
    return n >= 8 && is_upper(b[4]) && is_upper(b[5]);
}

int agora__dicom_sniff(const uint8_t *buf, size_t len)
{
    if (!buf)
        return 0;
    if (len >= 132 && memcmp(buf + 128, "DICM", 4) == 0)
        return 1;
    if (len < 8)
        return 0;
    uint16_t gle = (uint16_t)(buf[1] << 8 | buf[0]);
    uint16_t gbe = (uint16_t)(buf[0] << 8 | buf[1]);
    uint16_t ele = (uint16_t)(buf[3] << 8 | buf[2]);
    if ((gle == 0x0002 || gle == 0x0008) && ele < 0x0100)
        return 1;
    if (gbe == 0x0008 && plausible_explicit(buf, len))
        return 1;
    return 0;
}

/* Inflate the raw-deflate stream in[0..n) into an arena-owned buffer, capped. */
static int inflate_stream(parser *p, const uint8_t *in, size_t n, uint8_t **out, uint64_t *olen)
{
    uint64_t cap = p->lim->max_inflated_bytes;
    uint64_t ratio_cap = (uint64_t)n * p->lim->max_inflate_ratio + 4096;
    if (ratio_cap < cap)
        cap = ratio_cap;
    for (int attempt = 0; attempt < 2; attempt++) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        /* PS3.5 A.5 says raw deflate; a few writers emit a zlib header: try that second. */
        if (inflateInit2(&zs, attempt == 0 ? -15 : 15) != Z_OK)
            return agora__error_set(p->err, AGORA_ENOMEM, "cannot initialise zlib");
        size_t size = n * 4 + 4096;
        if (size > cap)
            size = (size_t)cap;
        uint8_t *b = malloc(size ? size : 1);
        if (!b) {
            inflateEnd(&zs);
            return agora__error_set(p->err, AGORA_ENOMEM, "out of memory inflating");
        }
        zs.next_in = (Bytef *)(uintptr_t)in;
        uint64_t left_in = n;
        uint64_t used = 0;
        int zr = Z_OK;
        while (zr != Z_STREAM_END) {
            if (used == size) {
                if (size >= cap)
                    break;
                size_t ns = size * 2 > cap ? (size_t)cap : size * 2;
                uint8_t *nb = realloc(b, ns);
                if (!nb) {
                    free(b);
                    inflateEnd(&zs);
                    return agora__error_set(p->err, AGORA_ENOMEM, "out of memory inflating");
                }
                b = nb;
                size = ns;
            }
            uInt chunk_in = left_in > (1u << 30) ? (1u << 30) : (uInt)left_in;
            uInt chunk_out = size - used > (1u << 30) ? (1u << 30) : (uInt)(size - used);
            zs.avail_in = chunk_in;
            zs.next_out = b + used;
            zs.avail_out = chunk_out;
            zr = inflate(&zs, Z_NO_FLUSH);
            left_in -= chunk_in - zs.avail_in;
            used += chunk_out - zs.avail_out;
            if (zr == Z_BUF_ERROR && left_in == 0)
                break;
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                break;
        }
        inflateEnd(&zs);
        if (zr == Z_STREAM_END) {
            if (agora__dicom_arena_adopt(p->file->arena, b)) {
                free(b);
                return agora__error_set(p->err, AGORA_ENOMEM, "out of memory inflating");
            }
            *out = b;
            *olen = used;
            return 0;
        }
        free(b);
        if (used >= cap && cap > 0)
            return agora__error_set(p->err, AGORA_ELIMIT,
                                    "deflated dataset inflates beyond %llu bytes; the file is "
                                    "damaged or a decompression bomb",
                                    (unsigned long long)cap);
    }
    return agora__error_set(p->err, AGORA_EINPUT,
                            "deflated dataset is not a valid deflate stream; the file is damaged");
}

static void trim_uid(const agora__dicom_element *e, char out[65])
{
    size_t n = e && e->value ? (size_t)e->value_len : 0;
    if (n > 64)
        n = 64;
    memcpy(out, n ? (const char *)e->value : "", n);
    while (n && (out[n - 1] == 0 || out[n - 1] == ' '))
        n--;
    out[n] = 0;
}

int agora__dicom_read(const uint8_t *buf, size_t len, const agora__dicom_limits *limits,
                      agora__dicom_file **out, agora__error *err)
{
    agora__dicom_limits defl;
    if (!out || (!buf && len))
        return agora__error_set(err, AGORA_EINVAL, "agora__dicom_read: NULL argument");
    *out = NULL;
    if (!limits) {
        agora__dicom_limits_default(&defl);
        limits = &defl;
    }
    agora__dicom_file *f = calloc(1, sizeof *f);
    if (!f)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    f->arena = agora__dicom_arena_new();
    if (!f->arena) {
        free(f);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    parser p = {.buf = buf, .len = len, .lim = limits, .file = f, .err = err};
    int rc = 0;
    uint64_t pos = 0;
    if (len >= 132 && memcmp(buf + 128, "DICM", 4) == 0) {
        pos = 132;
    } else {
        f->warnings |= AGORA__DICOM_W_NO_PREAMBLE;
        if (len >= 4 && memcmp(buf, "DICM", 4) == 0)
            pos = 4;
    }
    /* Meta group: Explicit VR LE, as long as the tags are in group 0002. */
    p.pos = pos;
    p.explicit = 1;
    p.big = 0;
    if (len - pos >= 8 && buf[pos] == 0x02 && buf[pos + 1] == 0x00) {
        el_vec vec = {0};
        while (p.pos < len && len - p.pos >= 8 && rd16(&p, p.pos) == 0x0002) {
            agora__dicom_element el;
            int done = 0;
            if ((rc = count_node(&p)) || (rc = parse_element(&p, len, 0, 1, &el, &done)))
                break;
            if (vec_push(&vec, &el)) {
                rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
                break;
            }
        }
        if (rc == 0)
            rc = finish_dataset(&p, &vec, &f->meta);
        free(vec.v);
        if (rc)
            goto fail;
    } else {
        f->warnings |= AGORA__DICOM_W_NO_META;
        if (!agora__dicom_sniff(buf + pos, (size_t)(len - pos))) {
            rc = agora__error_set(err, AGORA_EINPUT,
                                  "not a DICOM file: no \"DICM\" marker and no recognizable "
                                  "dataset start");
            goto fail;
        }
    }
    f->dataset_offset = p.pos;
    const agora__dicom_element *ts = agora__dicom_find(&f->meta, AGORA__DICOM_T_TRANSFER_SYNTAX);
    trim_uid(ts, f->transfer_syntax);
    f->encoding = agora__dicom_ts_encoding(f->transfer_syntax);
    /* Check the declared encoding against the first element; guess when there is no meta. */
    const uint8_t *d = buf + p.pos;
    size_t left = (size_t)(len - p.pos);
    if (f->encoding != AGORA__DICOM_DEFLATED_LE && left >= 8) {
        agora__dicom_encoding guess;
        if (d[0] == 0 && d[1] != 0 && plausible_explicit(d, left))
            guess = AGORA__DICOM_EXPLICIT_BE;
        else if (plausible_explicit(d, left))
            guess = AGORA__DICOM_EXPLICIT_LE;
        else
            guess = AGORA__DICOM_IMPLICIT_LE;
        if (f->encoding == 0) {
            f->encoding = guess;
            agora__strlcpy(f->transfer_syntax,
                           guess == AGORA__DICOM_IMPLICIT_LE   ? AGORA__DICOM_TS_IMPLICIT_LE
                           : guess == AGORA__DICOM_EXPLICIT_BE ? AGORA__DICOM_TS_EXPLICIT_BE
                                                               : AGORA__DICOM_TS_EXPLICIT_LE,
                           sizeof f->transfer_syntax);
        } else if (guess != f->encoding) {
            f->warnings |= AGORA__DICOM_W_META_SYNTAX_GUESS;
            f->encoding = guess;
        }
    }
    if (f->encoding == 0)
        f->encoding = AGORA__DICOM_EXPLICIT_LE;
    if (f->encoding == AGORA__DICOM_DEFLATED_LE) {
        uint8_t *inf = NULL;
        uint64_t ilen = 0;
        if ((rc = inflate_stream(&p, d, left, &inf, &ilen)))
            goto fail;
        p.buf = inf;
        p.len = ilen;
        p.pos = 0;
    }
    p.big = f->encoding == AGORA__DICOM_EXPLICIT_BE;
    p.explicit = f->encoding != AGORA__DICOM_IMPLICIT_LE;
    rc = parse_dataset(&p, p.len, 0, 0, &f->dataset);
    if (rc)
        goto fail;
    *out = f;
    return 0;
fail:
    agora__dicom_file_free(f);
    return rc;
}

void agora__dicom_file_free(agora__dicom_file *file)
{
    if (!file)
        return;
    agora__dicom_arena_free(file->arena);
    free(file);
}
