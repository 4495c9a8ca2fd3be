/* Rendering plugin results for a terminal (see render.h). */
#include "render.h"

#include <math.h>
#include <string.h>

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* Plugin text on a terminal: C0 controls, DEL and C1 controls (U+0080..U+009F; U+009B is a
 * CSI that starts an escape sequence on many terminals) are printed escaped, as \u{XX}, and a
 * backslash as "\\". The worker's result was validated as UTF-8, so only these need care. */
void agora__render_text(FILE *to, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(to, "\\u{%02x}", *p);
        } else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            fprintf(to, "\\u{%02x}", p[1]);
            p++;
        } else if (*p == '\\') {
            fputs("\\\\", to);
        } else {
            fputc(*p, to);
        }
    }
}

static void put_q(FILE *to, const char *pre, const char *s, const char *post)
{
    fputs(pre, to);
    agora__render_text(to, s);
    fputs(post, to);
}

static void print_frame_region(FILE *to, const json_t *item)
{
    const json_t *fr = json_object_get(item, "frame");
    const json_t *rg = json_object_get(item, "region");
    if (json_is_integer(fr))
        fprintf(to, " frame %lld", (long long)json_integer_value(fr));
    if (json_is_integer(rg))
        fprintf(to, " region %lld", (long long)json_integer_value(rg));
}

void agora__render_result(FILE *to, const json_t *doc)
{
    size_t i;
    const json_t *it;
    json_array_foreach(json_object_get(doc, "findings"), i, it)
    {
        const json_t *code = json_object_get(it, "code");
        put_q(to, "    finding     ", jstr(code, "scheme"), " ");
        put_q(to, "", jstr(code, "code"), " \"");
        put_q(to, "", jstr(code, "meaning"), "\"");
        fprintf(to, " confidence %.2f", json_number_value(json_object_get(it, "confidence")));
        print_frame_region(to, it);
        fputc('\n', to);
    }
    json_array_foreach(json_object_get(doc, "measurements"), i, it)
    {
        put_q(to, "    measurement ", jstr(it, "name"), "");
        fprintf(to, " = %.6g ", json_number_value(json_object_get(it, "value")));
        agora__render_text(to, jstr(it, "unit"));
        print_frame_region(to, it);
        fputc('\n', to);
    }
    json_array_foreach(json_object_get(doc, "regions"), i, it)
    {
        const json_t *mask = json_object_get(it, "mask");
        fprintf(to, "    region %lld   ", (long long)json_integer_value(json_object_get(it, "id")));
        agora__render_text(to, jstr(it, "kind"));
        fprintf(to, " on frame %lld", (long long)json_integer_value(json_object_get(it, "frame")));
        if (mask != NULL)
            fprintf(to, " (%lld frames, %lld-bit labels)",
                    (long long)json_integer_value(json_object_get(mask, "frames")),
                    (long long)json_integer_value(json_object_get(mask, "bits")));
        else
            fprintf(to, " (%zu points)", json_array_size(json_object_get(it, "points")));
        const char *label = jstr(it, "label");
        if (label[0])
            put_q(to, " \"", label, "\"");
        fputc('\n', to);
    }
    const char *summary = jstr(doc, "summary");
    if (summary[0])
        put_q(to, "    summary     ", summary, "\n");
}


void agora__render_scan_notes(FILE *to, const agora__dicom_scan *scan)
{
    for (size_t i = 0; i < scan->n_notes; i++)
        fprintf(to, "skipped %s: %s\n", scan->notes[i].path, scan->notes[i].reason);
    for (size_t i = 0; i < scan->n_series; i++)
        for (uint32_t w = 0; w < scan->series[i].n_warnings; w++)
            fprintf(to, "series %zu: %s\n", i + 1, scan->series[i].warnings[w].message);
}
