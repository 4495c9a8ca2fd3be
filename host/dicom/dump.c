/* Rendering of a parsed dataset for `agora dicom dump`: text close to dcmdump, or JSON. */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "charset.h"
#include "dump.h"

#define MAX_BINARY_SHOWN 16 /* values of OB/OW/UN... printed (dcmdump shows a prefix too) */

static int is_text(uint16_t vr)
{
    static const char text[] = "AEASCSDADSDTISLOLTPNSHSTTMUCUIURUT";
    char s[3];
    agora__dicom_vr_str(vr, s);
    for (size_t i = 0; i + 1 < sizeof text; i += 2)
        if (text[i] == s[0] && text[i + 1] == s[1])
            return 1;
    return 0;
}

static int is_number_list(uint16_t vr)
{
    return vr == AGORA__DICOM_VR('U', 'S') || vr == AGORA__DICOM_VR('S', 'S') ||
           vr == AGORA__DICOM_VR('U', 'L') || vr == AGORA__DICOM_VR('S', 'L') ||
           vr == AGORA__DICOM_VR('F', 'L') || vr == AGORA__DICOM_VR('F', 'D') ||
           vr == AGORA__DICOM_VR('U', 'V') || vr == AGORA__DICOM_VR('S', 'V');
}

static const char *keyword(uint32_t tag)
{
    const agora__dicom_dict_entry *d = agora__dicom_dict_lookup(tag);
    return d ? d->keyword : (AGORA__DICOM_GROUP(tag) & 1) ? "PrivateTag" : "Unknown";
}

/* Bytes as UTF-8 text: valid UTF-8 passes; otherwise bytes >= 0x80 are taken as Latin-1 (the
 * default repertoire of most legacy files) and control characters become '.'. Caller frees. */
static char *to_utf8(const uint8_t *b, size_t n)
{
    char *s = malloc(n * 2 + 1);
    if (!s)
        return NULL;
    if (agora__utf8_valid((const char *)b, n)) {
        memcpy(s, b, n);
        s[n] = 0;
        return s;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        if (c >= 0x80) {
            s[o++] = (char)(0xC0 | (c >> 6));
            s[o++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            s[o++] = '.';
        } else {
            s[o++] = (char)c;
        }
    }
    s[o] = 0;
    return s;
}

/* The value of a VR that (0008,0005) governs, decoded to UTF-8 with padding trimmed (the whole
 * value: all its values with their backslash delimiters). Caller frees; NULL when out of memory. */
static char *decoded(const agora__dicom_element *e, const agora__dicom_charset *cs, size_t *len)
{
    size_t n = e->value ? (size_t)e->value_len : 0;
    while (n && (e->value[n - 1] == ' ' || e->value[n - 1] == 0))
        n--;
    char *s = malloc(AGORA__DICOM_DECODE_MAX(n));
    if (!s)
        return NULL;
    *len = agora__dicom_decode_text(cs, e->vr, e->value, n, s, AGORA__DICOM_DECODE_MAX(n), NULL);
    return s;
}

static int single_valued(uint16_t vr)
{
    return vr == AGORA__DICOM_VR('L', 'T') || vr == AGORA__DICOM_VR('S', 'T') ||
           vr == AGORA__DICOM_VR('U', 'T') || vr == AGORA__DICOM_VR('U', 'R');
}

/* VM of a decoded value: its backslash count + 1 (a raw count would split GBK and JIS characters
 * whose second byte is 0x5C). */
static size_t decoded_vm(uint16_t vr, const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (single_valued(vr))
        return 1;
    size_t vm = 1;
    for (size_t i = 0; i < len; i++)
        vm += s[i] == '\\';
    return vm;
}

/* ---- text ------------------------------------------------------------------------------------ */

static void text_value(const agora__dicom_element *e, const agora__dicom_charset *cs, FILE *out)
{
    if (agora__dicom_charset_vr(e->vr)) {
        size_t len = 0;
        char *s = decoded(e, cs, &len);
        if (!s)
            return;
        if (len)
            fprintf(out, "[%s]", s);
        else
            fputs("(no value available)", out);
        free(s);
        return;
    }
    if (is_text(e->vr)) {
        char *s;
        size_t n = e->value ? (size_t)e->value_len : 0;
        while (n && (e->value[n - 1] == ' ' || e->value[n - 1] == 0))
            n--;
        s = to_utf8(e->value ? e->value : (const uint8_t *)"", n);
        if (!s)
            return;
        if (n)
            fprintf(out, "[%s]", s);
        else
            fputs("(no value available)", out);
        free(s);
        return;
    }
    size_t vm = agora__dicom_vm(e);
    if (vm == 0) {
        fputs("(no value available)", out);
        return;
    }
    if (is_number_list(e->vr) || e->vr == AGORA__DICOM_VR('A', 'T')) {
        for (size_t i = 0; i < vm && i < 64; i++) {
            if (i)
                fputc('\\', out);
            if (e->vr == AGORA__DICOM_VR('A', 'T')) {
                int64_t t = 0;
                agora__dicom_el_int(e, i, &t);
                fprintf(out, "(%04x,%04x)", (unsigned)(t >> 16), (unsigned)(t & 0xFFFF));
            } else if (e->vr == AGORA__DICOM_VR('F', 'L') || e->vr == AGORA__DICOM_VR('F', 'D')) {
                double v = 0;
                if (agora__dicom_el_double(e, i, &v) == 0)
                    fprintf(out, "%.17g", v);
                else
                    fputs("nan", out);
            } else {
                int64_t v = 0;
                agora__dicom_el_int(e, i, &v);
                fprintf(out, "%" PRId64, v);
            }
        }
        if (vm > 64)
            fputs("...", out);
        return;
    }
    /* Other binary (OB, OW, UN...): hex of the first bytes. */
    size_t n = e->value_len < MAX_BINARY_SHOWN ? (size_t)e->value_len : MAX_BINARY_SHOWN;
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%02x", i ? "\\" : "", e->value[i]);
    if (e->value_len > n)
        fputs("...", out);
}

static void text_dataset(const agora__dicom_dataset *ds, const agora__dicom_charset *cs, int depth,
                         FILE *out);

static void text_element(const agora__dicom_element *e, const agora__dicom_charset *cs, int depth,
                         FILE *out)
{
    char vr[3];
    agora__dicom_vr_str(e->vr, vr);
    fprintf(out, "%*s(%04x,%04x) %s ", depth * 2, "", AGORA__DICOM_GROUP(e->tag),
            AGORA__DICOM_ELEM(e->tag), vr);
    if (e->flags & AGORA__DICOM_EL_ENCAPSULATED) {
        fprintf(out, "(PixelSequence #=%u)  # u/l, 1 %s\n", e->n_fragments + 1, keyword(e->tag));
        fprintf(out, "%*s  (fffe,e000) pi offset table  # %u\n", depth * 2, "", e->bot_len);
        for (uint32_t i = 0; i < e->n_fragments; i++)
            fprintf(out, "%*s  (fffe,e000) pi fragment  # %u\n", depth * 2, "",
                    e->fragments[i].length);
        return;
    }
    if (e->vr == AGORA__DICOM_VR_SQ || (e->flags & AGORA__DICOM_EL_UN_AS_SQ)) {
        if (e->flags & AGORA__DICOM_EL_UNDEF_LENGTH)
            fprintf(out, "(Sequence with undefined length #=%u)  # u/l, 1 %s\n", e->n_items,
                    keyword(e->tag));
        else
            fprintf(out, "(Sequence with explicit length #=%u)  # %u, 1 %s\n", e->n_items,
                    e->length, keyword(e->tag));
        for (uint32_t i = 0; i < e->n_items; i++) {
            fprintf(out, "%*s  (fffe,e000) na (Item #=%u)\n", depth * 2, "",
                    e->items[i].n_elements);
            text_dataset(&e->items[i], cs, depth + 2, out);
        }
        return;
    }
    text_value(e, cs, out);
    size_t vm = agora__dicom_vm(e);
    if (agora__dicom_charset_vr(e->vr)) {
        size_t len = 0;
        char *s = decoded(e, cs, &len);
        if (s)
            vm = decoded_vm(e->vr, s, len);
        free(s);
    }
    fprintf(out, "  # %llu, %zu %s\n", (unsigned long long)e->value_len, vm, keyword(e->tag));
}

/* inherited: the character set of the enclosing dataset (NULL at the top); an item may declare
 * its own (PS3.5 7.5.3). */
static void text_dataset(const agora__dicom_dataset *ds, const agora__dicom_charset *inherited,
                         int depth, FILE *out)
{
    agora__dicom_charset cs;
    agora__dicom_charset_of(ds, inherited, &cs);
    for (uint32_t i = 0; i < ds->n_elements; i++)
        text_element(&ds->elements[i], &cs, depth, out);
}

void agora__dicom_dump_text(const agora__dicom_file *f, FILE *out)
{
    const char *name = agora__dicom_ts_name(f->transfer_syntax);
    fprintf(out, "# Transfer syntax: %s (%s)\n", f->transfer_syntax, name ? name : "unknown");
    fputs("# Meta information\n", out);
    text_dataset(&f->meta, NULL, 0, out);
    fputs("# Dataset\n", out);
    text_dataset(&f->dataset, NULL, 0, out);
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static json_t *json_dataset(const agora__dicom_dataset *ds, const agora__dicom_charset *inherited);

static json_t *text_json(const agora__dicom_element *e, size_t i)
{
    const uint8_t *b = e->value;
    const uint8_t *end = b + e->value_len;
    int split = !(e->vr == AGORA__DICOM_VR('L', 'T') || e->vr == AGORA__DICOM_VR('S', 'T') ||
                  e->vr == AGORA__DICOM_VR('U', 'T') || e->vr == AGORA__DICOM_VR('U', 'R'));
    if (split) {
        for (size_t k = 0; k < i; k++) {
            const uint8_t *s = memchr(b, '\\', (size_t)(end - b));
            b = s ? s + 1 : end;
        }
        const uint8_t *s = memchr(b, '\\', (size_t)(end - b));
        if (s)
            end = s;
        while (b < end && *b == ' ')
            b++;
    }
    while (end > b && (end[-1] == ' ' || end[-1] == 0))
        end--;
    if (e->vr == AGORA__DICOM_VR('I', 'S') || e->vr == AGORA__DICOM_VR('D', 'S')) {
        double v;
        if (agora__dicom_el_double(e, i, &v) == 0) {
            if (e->vr == AGORA__DICOM_VR('I', 'S'))
                return json_integer((json_int_t)v);
            return json_real(v);
        }
    }
    char *s = to_utf8(b, (size_t)(end - b));
    json_t *j = s ? json_string(s) : NULL;
    free(s);
    return j ? j : json_null();
}

/* Values of a charset-governed VR: decoded, then split at backslashes (values keep no leading or
 * trailing spaces, except the leading spaces of ST/LT/UT, which are significant). */
static json_t *decoded_json(const agora__dicom_element *e, const agora__dicom_charset *cs)
{
    size_t len = 0;
    char *s = decoded(e, cs, &len);
    if (!s)
        return json_null();
    size_t vm = decoded_vm(e->vr, s, len);
    json_t *arr = vm ? json_array() : NULL;
    char *p = s, *end = s + len;
    for (size_t i = 0; i < vm && arr; i++) {
        char *q = single_valued(e->vr) ? end : memchr(p, '\\', (size_t)(end - p));
        if (!q)
            q = end;
        char *a = p, *b = q;
        if (!single_valued(e->vr))
            while (a < b && *a == ' ')
                a++;
        while (b > a && b[-1] == ' ')
            b--;
        json_array_append_new(arr, json_stringn(a, (size_t)(b - a)));
        p = q < end ? q + 1 : end;
    }
    free(s);
    if (!arr)
        return json_null();
    if (json_array_size(arr) == 1) {
        json_t *one = json_incref(json_array_get(arr, 0));
        json_decref(arr);
        return one;
    }
    return arr;
}

static json_t *value_json(const agora__dicom_element *e, const agora__dicom_charset *cs)
{
    if (agora__dicom_charset_vr(e->vr))
        return decoded_json(e, cs);
    size_t vm = agora__dicom_vm(e);
    if (vm == 0)
        return json_null();
    if (is_text(e->vr) || is_number_list(e->vr) || e->vr == AGORA__DICOM_VR('A', 'T')) {
        json_t *arr = json_array();
        for (size_t i = 0; i < vm && arr; i++) {
            json_t *v;
            if (is_text(e->vr)) {
                v = text_json(e, i);
            } else if (e->vr == AGORA__DICOM_VR('A', 'T')) {
                int64_t t = 0;
                char buf[16];
                agora__dicom_el_int(e, i, &t);
                snprintf(buf, sizeof buf, "(%04x,%04x)", (unsigned)(t >> 16),
                         (unsigned)(t & 0xFFFF));
                v = json_string(buf);
            } else if (e->vr == AGORA__DICOM_VR('F', 'L') || e->vr == AGORA__DICOM_VR('F', 'D')) {
                double d;
                v = agora__dicom_el_double(e, i, &d) == 0 ? json_real(d) : json_null();
            } else {
                int64_t x = 0;
                v = agora__dicom_el_int(e, i, &x) == 0 ? json_integer(x) : json_null();
            }
            json_array_append_new(arr, v);
        }
        if (arr && json_array_size(arr) == 1) {
            json_t *one = json_incref(json_array_get(arr, 0));
            json_decref(arr);
            return one;
        }
        return arr ? arr : json_null();
    }
    /* Binary: hex of the first bytes; the full length is in "length". */
    size_t n = e->value_len < MAX_BINARY_SHOWN ? (size_t)e->value_len : MAX_BINARY_SHOWN;
    char hex[MAX_BINARY_SHOWN * 2 + 1];
    agora__hex(e->value, n, hex);
    return json_pack("{s:s,s:b}", "hex_prefix", hex, "truncated", e->value_len > n);
}

static json_t *json_element(const agora__dicom_element *e, const agora__dicom_charset *cs)
{
    char tag[16], vr[3];
    snprintf(tag, sizeof tag, "(%04x,%04x)", AGORA__DICOM_GROUP(e->tag), AGORA__DICOM_ELEM(e->tag));
    agora__dicom_vr_str(e->vr, vr);
    json_t *j = json_pack("{s:s,s:s,s:s}", "tag", tag, "keyword", keyword(e->tag), "vr", vr);
    if (!j)
        return NULL;
    if (e->flags & AGORA__DICOM_EL_UNDEF_LENGTH)
        json_object_set_new(j, "length", json_string("undefined"));
    else
        json_object_set_new(j, "length", json_integer((json_int_t)e->length));
    if (e->flags & AGORA__DICOM_EL_ENCAPSULATED) {
        json_t *fr = json_array();
        for (uint32_t i = 0; i < e->n_fragments; i++)
            json_array_append_new(fr, json_integer(e->fragments[i].length));
        json_object_set_new(j, "offset_table_length", json_integer(e->bot_len));
        json_object_set_new(j, "fragments", fr);
    } else if (e->vr == AGORA__DICOM_VR_SQ || (e->flags & AGORA__DICOM_EL_UN_AS_SQ)) {
        json_t *items = json_array();
        for (uint32_t i = 0; i < e->n_items; i++)
            json_array_append_new(items, json_dataset(&e->items[i], cs));
        json_object_set_new(j, "items", items);
    } else {
        json_object_set_new(j, "value", value_json(e, cs));
    }
    return j;
}

static json_t *json_dataset(const agora__dicom_dataset *ds, const agora__dicom_charset *inherited)
{
    agora__dicom_charset cs;
    agora__dicom_charset_of(ds, inherited, &cs);
    json_t *arr = json_array();
    for (uint32_t i = 0; arr && i < ds->n_elements; i++)
        json_array_append_new(arr, json_element(&ds->elements[i], &cs));
    return arr;
}

json_t *agora__dicom_dump_json(const agora__dicom_file *f)
{
    json_t *warn = json_array();
    static const char *names[] = {"no_preamble",         "no_meta",    "out_of_order",
                                  "duplicate_tag",       "odd_length", "trailing_bytes",
                                  "meta_syntax_mismatch"};
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (f->warnings & (1u << i))
            json_array_append_new(warn, json_string(names[i]));
    const char *name = agora__dicom_ts_name(f->transfer_syntax);
    return json_pack("{s:s,s:s?,s:o,s:o,s:o}", "transfer_syntax", f->transfer_syntax,
                     "transfer_syntax_name", name, "warnings", warn, "meta",
                     json_dataset(&f->meta, NULL), "dataset", json_dataset(&f->dataset, NULL));
}
