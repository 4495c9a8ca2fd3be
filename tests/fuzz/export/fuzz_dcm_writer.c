/*
 * libFuzzer target for the new-object DICOM writer (host/export/dcm_writer): the input is a
 * program that builds a dataset tree through the writer API (text of every checked VR, US/UL/FD
 * values, OB bytes, nested sequences, replacements of a tag, forbidden tags, an output cap)
 * while a model records what each dataset must hold after encoding (values padded per VR,
 * elements sorted by tag). Properties checked on every input:
 *   - a call the model knows is invalid makes the writer's sticky status non-zero, and encode
 *     then fails; a program of valid calls encodes (or fails only with AGORA_ELIMIT past the cap);
 *   - the bytes read back with our reader (no warnings, Explicit VR LE) hold exactly the model:
 *     tags, VRs, values, item counts, defined lengths, recursively;
 *   - encoding again gives the same bytes; the output never exceeds the cap.
 * A violated property aborts (libFuzzer reports it with the input).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dcm_writer.h"
#include "dicom.h"

#define V AGORA__DCMW_VR
#define T AGORA__DCMW_TAG

#define MAX_ELS   12 /* elements per dataset in the model */
#define MAX_ITEMS 3  /* items added per sequence op */
#define MAX_NODES 400
#define MAX_VAL   1100

typedef struct mds mds;
typedef struct mel {
    uint32_t tag;
    uint16_t vr;
    uint8_t *val; /* padded as encoded */
    size_t len;
    mds **items;
    size_t n_items, cap_items;
} mel;
struct mds {
    mel els[MAX_ELS];
    size_t n;
};

typedef struct input {
    const uint8_t *p;
    size_t left;
    size_t nodes; /* elements and items created so far (bounds the work per input) */
    int invalid;  /* the model issued a call the writer must refuse */
    int capped;   /* a valid call reached the output cap (AGORA_ELIMIT) */
    size_t cap;   /* the writer's max_bytes (0: its default) */
} input;

static uint8_t take(input *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_dcm_writer: property violated: %s\n", what);
        abort();
    }
}

static void free_ds(mds *m);

static void clear_el(mel *e)
{
    free(e->val);
    for (size_t i = 0; i < e->n_items; i++) {
        free_ds(e->items[i]);
        free(e->items[i]);
    }
    free(e->items);
    memset(e, 0, sizeof *e);
}

static void free_ds(mds *m)
{
    for (size_t i = 0; i < m->n; i++)
        clear_el(&m->els[i]);
}

/* The model's element for tag: the existing one (emptied unless keep_seq and it is a
 * sequence), else a new one; NULL when the model dataset is full. */
static mel *model_slot(mds *m, uint32_t tag, int keep_seq)
{
    for (size_t i = 0; i < m->n; i++) {
        if (m->els[i].tag != tag)
            continue;
        if (!(keep_seq && m->els[i].vr == V('S', 'Q')))
            clear_el(&m->els[i]);
        m->els[i].tag = tag;
        return &m->els[i];
    }
    if (m->n == MAX_ELS)
        return NULL;
    mel *e = &m->els[m->n++];
    memset(e, 0, sizeof *e);
    e->tag = tag;
    return e;
}

static void set_val(mel *e, uint16_t vr, const void *v, size_t len, uint8_t pad)
{
    e->vr = vr;
    e->len = len + (len & 1);
    e->val = malloc(e->len ? e->len : 1);
    check(e->val != NULL, "out of memory in the model");
    if (len)
        memcpy(e->val, v, len);
    if (len & 1)
        e->val[len] = pad;
}

/* Text of n bytes over an alphabet; '\\' splits values where the VR is multi-valued. */
static size_t text(input *in, char *s, size_t n, const char *alphabet)
{
    size_t k = strlen(alphabet);
    for (size_t i = 0; i < n; i++)
        s[i] = alphabet[take(in) % k];
    s[n] = '\0';
    return n;
}

/* Longest value between backslashes. */
static size_t longest_value(const char *s)
{
    size_t best = 0, cur = 0;
    for (; *s; s++) {
        cur = *s == '\\' ? 0 : cur + 1;
        if (cur > best)
            best = cur;
    }
    return best;
}

static void gen(agora__dcmw *w, agora__dcmw_ds *ds, mds *m, uint32_t depth, input *in)
{
    size_t n = 1 + take(in) % 10;
    for (size_t k = 0;
         k < n && in->left > 0 && !in->invalid && !in->capped && in->nodes < MAX_NODES; k++) {
        in->nodes++;
        uint32_t tag = T(0x0009 + 2 * (take(in) % 8), 0x1000 + take(in));
        uint8_t op = take(in) % 11;
        char s[MAX_VAL + 1];
        uint8_t b[MAX_VAL];
        if (op == 10) { /* a tag the writer must refuse in a dataset */
            static const uint32_t bad[] = {T(0x0002, 0x0010), T(0x0009, 0x0000), T(0xFFFE, 0xE000)};
            agora__dcmw_str(ds, bad[take(in) % 3], V('L', 'O'), "x");
            in->invalid = 1;
            break;
        }
        mel *e = model_slot(m, tag, op == 8);
        if (e == NULL)
            break;
        switch (op) {
        case 0: { /* LO: multi-valued, 64 bytes per value */
            size_t len = take(in) % 140;
            text(in, s, len, "abcXYZ019 .-^_\\");
            agora__dcmw_str(ds, tag, V('L', 'O'), s);
            if (longest_value(s) > 64)
                in->invalid = 1;
            set_val(e, V('L', 'O'), s, len, ' ');
            break;
        }
        case 1: { /* CS: upper case, digits, space, underscore; 16 bytes per value */
            size_t len = take(in) % 24;
            text(in, s, len, "ABZ09 _\\ABCDEFGHIJKLMNOPQRSTUVWXYZa");
            agora__dcmw_str(ds, tag, V('C', 'S'), s);
            if (longest_value(s) > 16 || strchr(s, 'a') != NULL)
                in->invalid = 1;
            set_val(e, V('C', 'S'), s, len, ' ');
            break;
        }
        case 2: { /* UI: 2.25.<digits>; more than 64 bytes or a letter is refused */
            size_t len = 5 + take(in) % 66;
            memcpy(s, "2.25.", 5);
            s[5] = (char)('1' + take(in) % 9);
            for (size_t i = 6; i < len; i++)
                s[i] = "0123456789"[take(in) % 10];
            s[len] = '\0';
            if (len == 5)
                s[len++] = '7', s[len] = '\0';
            if (take(in) % 16 == 0) {
                s[len - 1] = 'x';
                in->invalid = 1;
            }
            if (len > 64)
                in->invalid = 1;
            agora__dcmw_str(ds, tag, V('U', 'I'), s);
            set_val(e, V('U', 'I'), s, len, '\0');
            break;
        }
        case 3:
        case 4:
        case 5: { /* US, UL, FD: 1..4 values, little-endian bytes (FD: any bit pattern) */
            size_t size = op == 3 ? 2 : op == 4 ? 4 : 8, c = 1 + take(in) % 4;
            uint16_t us[4];
            uint32_t ul[4];
            double fd[4];
            for (size_t i = 0; i < c * size; i++)
                b[i] = take(in);
            for (size_t i = 0; i < c; i++) {
                us[i] = (uint16_t)(b[2 * i] | b[2 * i + 1] << 8);
                ul[i] = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                        (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
                uint64_t x = 0;
                for (size_t j = 0; j < 8; j++)
                    x |= (uint64_t)b[8 * i + j] << (8 * j);
                memcpy(&fd[i], &x, 8);
            }
            if (op == 3)
                agora__dcmw_us(ds, tag, us, c);
            else if (op == 4)
                agora__dcmw_ul(ds, tag, ul, c);
            else
                agora__dcmw_fd(ds, tag, fd, c);
            set_val(e, op == 3 ? V('U', 'S') : op == 4 ? V('U', 'L') : V('F', 'D'), b, c * size, 0);
            break;
        }
        case 6: { /* OB: raw bytes, odd lengths padded with NUL */
            size_t len = take(in) % 200;
            for (size_t i = 0; i < len; i++)
                b[i] = take(in);
            agora__dcmw_put(ds, tag, V('O', 'B'), b, len);
            set_val(e, V('O', 'B'), b, len, 0);
            break;
        }
        case 7: { /* IS from a signed 32-bit integer (at most 11 characters) */
            int32_t v = (int32_t)((uint32_t)take(in) | (uint32_t)take(in) << 8 |
                                  (uint32_t)take(in) << 16 | (uint32_t)take(in) << 24);
            agora__dcmw_is(ds, tag, v);
            int len = snprintf(s, sizeof s, "%ld", (long)v);
            set_val(e, V('I', 'S'), s, (size_t)len, ' ');
            break;
        }
        case 8: { /* SQ: append 0..3 items (to the existing sequence of this tag, if any) */
            e->vr = V('S', 'Q');
            if (depth + 1 >= 16) { /* the writer's MAX_DEPTH */
                agora__dcmw_seq(ds, tag);
                in->invalid = 1;
                break;
            }
            agora__dcmw_seq(ds, tag);
            size_t c = take(in) % (MAX_ITEMS + 1);
            for (size_t i = 0; i < c && !in->invalid && !in->capped && in->nodes < MAX_NODES; i++) {
                in->nodes++;
                if (e->n_items == e->cap_items) {
                    size_t cap = e->cap_items ? 2 * e->cap_items : 4;
                    mds **grown = realloc(e->items, cap * sizeof *grown);
                    check(grown != NULL, "out of memory in the model");
                    e->items = grown;
                    e->cap_items = cap;
                }
                mds *item = calloc(1, sizeof *item);
                check(item != NULL, "out of memory in the model");
                e->items[e->n_items++] = item;
                agora__dcmw_ds *it = agora__dcmw_item(ds, tag);
                check(it != NULL || in->cap != 0, "item() refused a valid sequence");
                if (it != NULL)
                    gen(w, it, item, depth + 1, in);
            }
            break;
        }
        default: { /* ST: single-valued (backslash is a character), 1024 bytes */
            size_t len = (size_t)take(in) * 5 % (MAX_VAL - 1);
            text(in, s, len, "Text with \\ and spaces.");
            agora__dcmw_str(ds, tag, V('S', 'T'), s);
            if (len > 1024)
                in->invalid = 1;
            set_val(e, V('S', 'T'), s, len, ' ');
            break;
        }
        }
        int st = agora__dcmw_status(w, NULL);
        if (in->invalid) {
            check(st != 0, "an invalid call left the writer ok");
        } else if (st != 0) { /* only a value larger than a small output cap may fail */
            check(st == AGORA_ELIMIT && in->cap != 0, "a valid call failed the writer");
            in->capped = 1;
        }
    }
}

static int mel_cmp(const void *a, const void *b)
{
    uint32_t x = ((const mel *)a)->tag, y = ((const mel *)b)->tag;
    return (x > y) - (x < y);
}

static void compare(const mds *m, const agora__dicom_dataset *ds, uint32_t extra)
{
    mel sorted[MAX_ELS];
    memcpy(sorted, m->els, m->n * sizeof *sorted);
    qsort(sorted, m->n, sizeof *sorted, mel_cmp);
    check(ds->n_elements == m->n + extra, "element count");
    for (size_t i = 0; i < m->n; i++) {
        const mel *e = &sorted[i];
        const agora__dicom_element *g = agora__dicom_find(ds, e->tag);
        check(g != NULL, "an element is missing");
        check(g->vr == e->vr, "VR");
        if (e->vr == V('S', 'Q')) {
            check(g->n_items == e->n_items, "item count");
            check(g->length != AGORA__DICOM_UNDEFINED_LENGTH, "sequence of undefined length");
            for (size_t k = 0; k < e->n_items; k++) {
                check(g->items[k].length != AGORA__DICOM_UNDEFINED_LENGTH,
                      "item of undefined length");
                compare(e->items[k], &g->items[k], 0);
            }
        } else {
            check(g->value_len == e->len && g->value_len % 2 == 0, "value length");
            check(e->len == 0 || memcmp(g->value, e->val, e->len) == 0, "value bytes");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size, 0, 0, 0, 0};
    /* The output cap: usually the default, sometimes small enough to be reached. */
    uint8_t c = take(&in);
    size_t cap = c < 200 ? 0 : (size_t)(c - 199) * 64;
    in.cap = cap;
    agora__dcmw *w = agora__dcmw_new(cap);
    if (w == NULL)
        return 0;
    mds *m = calloc(1, sizeof *m);
    check(m != NULL, "out of memory in the model");
    gen(w, agora__dcmw_root(w), m, 0, &in);
    uint8_t *buf = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    agora__error err = {0};
    int rc = agora__dcmw_encode(w, "1.2.840.10008.5.1.4.1.1.66.4", "2.25.42", &buf, &len, &err);
    if (in.invalid) {
        check(rc != 0, "encode succeeded after an invalid call");
    } else if (rc != 0 || in.capped) {
        check(rc == AGORA_ELIMIT && cap != 0, "encode of valid calls failed below the cap");
    } else {
        check(cap == 0 || len <= cap, "the output exceeds the cap");
        agora__dicom_file *f = NULL;
        check(agora__dicom_read(buf, len, NULL, &f, &err) == 0, "our reader refused the output");
        check(f->warnings == 0, "our reader warned");
        check(strcmp(f->transfer_syntax, AGORA__DICOM_TS_EXPLICIT_LE) == 0, "transfer syntax");
        compare(m, &f->dataset, 2); /* + SOPClassUID and SOPInstanceUID */
        agora__dicom_file_free(f);
        check(agora__dcmw_encode(w, "1.2.840.10008.5.1.4.1.1.66.4", "2.25.42", &again, &len2,
                                 &err) == 0 &&
                  len2 == len && memcmp(buf, again, len) == 0,
              "a second encode differs");
    }
    free(buf);
    free(again);
    agora__dcmw_free(w);
    free_ds(m);
    free(m);
    return 0;
}
