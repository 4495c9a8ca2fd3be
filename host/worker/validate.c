/* Result validation: a Result from a worker is hostile input. Every string, number, count,
 * reference and mask range is checked before any of it reaches a result document. */
#include "worker_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int str_ok(const char *s, size_t max, int required, const char *what, size_t idx,
                  agora__error *err)
{
    if (s == NULL)
        s = "";
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return agora__error_set(err, AGORA_EINVAL, "%s of item %zu is longer than %zu bytes", what,
                                idx, max);
    if (required && n == 0)
        return agora__error_set(err, AGORA_EINVAL, "%s of item %zu is empty", what, idx);
    if (!agora__utf8_valid(s, n))
        return agora__error_set(err, AGORA_EINVAL, "%s of item %zu is not valid UTF-8", what, idx);
    return 0;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int region_exists(const int32_t *sorted, size_t n, int32_t id)
{
    return bsearch(&id, sorted, n, sizeof id, cmp_i32) != NULL;
}

/* frame: AGORA_NONE or < frames; NULL JSON for none. */
static int ref_frame(int32_t f, uint32_t frames, const char *what, size_t idx, json_t **out,
                     agora__error *err)
{
    if (f == AGORA_NONE) {
        *out = json_null();
        return 0;
    }
    if (f < 0 || (uint32_t)f >= frames)
        return agora__error_set(err, AGORA_EINVAL, "%s %zu references frame %d of %u", what, idx,
                                (int)f, frames);
    *out = json_integer(f);
    return 0;
}

static int ref_region(int32_t r, const int32_t *ids, size_t n_ids, const char *what, size_t idx,
                      json_t **out, agora__error *err)
{
    if (r == AGORA_NONE) {
        *out = json_null();
        return 0;
    }
    if (r < 0 || !region_exists(ids, n_ids, r))
        return agora__error_set(err, AGORA_EINVAL, "%s %zu references unknown region %d", what, idx,
                                (int)r);
    *out = json_integer(r);
    return 0;
}

static json_t *code_json(const Agora__Ipc__Code *c)
{
    return json_pack("{s:s, s:s, s:s}", "scheme", c->scheme, "code", c->code, "meaning",
                     c->meaning);
}

/* Scheme and code are always required; the meaning is optional for a measurement's code. */
static int code_ok(const Agora__Ipc__Code *c, int meaning_required, const char *what, size_t idx,
                   agora__error *err)
{
    int rc;
    if ((rc = str_ok(c->scheme, AGORA__MAX_SCHEME_LEN, 1, what, idx, err)) < 0 ||
        (rc = str_ok(c->code, AGORA__MAX_CODE_LEN, 1, what, idx, err)) < 0 ||
        (rc = str_ok(c->meaning, AGORA__MAX_MEANING_LEN, meaning_required, what, idx, err)) < 0)
        return rc;
    return 0;
}

void agora__validated_free(agora__validated *v)
{
    json_decref(v->findings);
    json_decref(v->measurements);
    json_decref(v->regions);
    free(v->summary);
    free(v->urgent_reason);
    free(v->masks);
    free(v->mask_index);
    memset(v, 0, sizeof *v);
}

static int oom(agora__error *err)
{
    return agora__error_set(err, AGORA_ENOMEM, "out of memory building a result");
}

void agora__result_geom_at(const agora__result_geom *g, uint32_t frame, uint32_t *rows,
                           uint32_t *columns, uint32_t *end)
{
    *rows = g->rows;
    *columns = g->columns;
    *end = g->frames;
    for (uint32_t s = 0; s < g->n_series; s++) {
        if (frame >= g->series[s].first && frame - g->series[s].first < g->series[s].frames) {
            *rows = g->series[s].rows;
            *columns = g->series[s].columns;
            *end = g->series[s].first + g->series[s].frames;
            return;
        }
    }
}

static int check_regions(const Agora__Ipc__Result *r, const agora__result_geom *g, int out_fd,
                         int32_t *ids, agora__validated *v, agora__error *err)
{
    uint64_t total_pairs = 0, masks_len = 0;
    uint32_t n_masks = 0;
    /* Pass 1: numbers and ranges, no memory touched yet. */
    for (size_t i = 0; i < r->n_regions; i++) {
        const Agora__Ipc__Region *rg = r->regions[i];
        if (rg == NULL)
            return agora__error_set(err, AGORA_EINVAL, "region %zu is missing", i);
        if (rg->id < 0)
            return agora__error_set(err, AGORA_EINVAL, "region %zu has negative id %d", i,
                                    (int)rg->id);
        if (rg->frame >= g->frames)
            return agora__error_set(err, AGORA_EINVAL, "region %zu is on frame %u of %u", i,
                                    rg->frame, g->frames);
        uint32_t rows, columns, end; /* of the series the region's frame belongs to */
        agora__result_geom_at(g, rg->frame, &rows, &columns, &end);
        int rc = str_ok(rg->label, AGORA__MAX_LABEL_LEN, 0, "region label", i, err);
        if (rc < 0)
            return rc;
        if (rg->n_points % 2 != 0)
            return agora__error_set(err, AGORA_EINVAL, "region %zu has an odd coordinate count", i);
        size_t pairs = rg->n_points / 2;
        switch (rg->kind) {
        case AGORA_REGION_POINT:
            if (pairs != 1)
                return agora__error_set(err, AGORA_EINVAL, "point region %zu has %zu points", i,
                                        pairs);
            break;
        case AGORA_REGION_BOX:
            if (pairs != 2)
                return agora__error_set(err, AGORA_EINVAL, "box region %zu has %zu points", i,
                                        pairs);
            break;
        case AGORA_REGION_POLYGON:
            if (pairs < 3 || pairs > AGORA__MAX_POINTS_PER_REGION)
                return agora__error_set(err, AGORA_EINVAL,
                                        "polygon region %zu has %zu points (3..%d allowed)", i,
                                        pairs, AGORA__MAX_POINTS_PER_REGION);
            break;
        case AGORA__REGION_MASK: {
            if (pairs != 0)
                return agora__error_set(err, AGORA_EINVAL, "mask region %zu carries points", i);
            if (!AGORA__RESULT_MASK_BITS_OK(rg->mask_bits))
                return agora__error_set(err, AGORA_EINVAL, "mask region %zu has %u bits (%s)", i,
                                        rg->mask_bits, AGORA__RESULT_MASK_BITS_TEXT);
            if (rg->mask_frames == 0 || rg->mask_frames > end - rg->frame)
                return agora__error_set(
                    err, AGORA_EINVAL, "mask region %zu spans frames %u+%u of %u%s", i, rg->frame,
                    rg->mask_frames, end, g->n_series ? " (a mask lies within one series)" : "");
            /* frames*rows*cols*bytes fits in 64 bits: each factor < 2^32, bytes <= 2, and
             * frames <= 2^32 bounded by the pixel buffer cap upstream; check anyway. */
            uint64_t plane = (uint64_t)rows * columns;
            uint64_t bytes = rg->mask_bits / 8;
            if (plane != 0 && rg->mask_frames > UINT64_MAX / plane / bytes)
                return agora__error_set(err, AGORA_EINVAL, "mask region %zu size overflows", i);
            uint64_t want = plane * rg->mask_frames * bytes;
            if (want > AGORA__RESULT_MASK_BYTES_MAX)
                return agora__error_set(
                    err, AGORA_ELIMIT, "mask region %zu has %llu bytes, more than %llu", i,
                    (unsigned long long)want, (unsigned long long)AGORA__RESULT_MASK_BYTES_MAX);
            if (rg->mask_length != want)
                return agora__error_set(err, AGORA_EINVAL,
                                        "mask region %zu has length %llu, expected %llu "
                                        "(frames*rows*columns*bits/8)",
                                        i, (unsigned long long)rg->mask_length,
                                        (unsigned long long)want);
            if (rg->mask_offset > g->output_bytes ||
                rg->mask_length > g->output_bytes - rg->mask_offset)
                return agora__error_set(err, AGORA_EINVAL,
                                        "mask region %zu lies outside the %llu-byte output area", i,
                                        (unsigned long long)g->output_bytes);
            masks_len += rg->mask_length; /* <= n * output_bytes: no overflow at our caps */
            n_masks++;
            break;
        }
        default:
            return agora__error_set(err, AGORA_EINVAL, "region %zu has unknown kind %d", i,
                                    (int)rg->kind);
        }
        total_pairs += pairs;
        if (total_pairs > AGORA__MAX_POINTS_TOTAL)
            return agora__error_set(err, AGORA_EINVAL, "result carries more than %d points",
                                    AGORA__MAX_POINTS_TOTAL);
        for (size_t k = 0; k < rg->n_points; k++) {
            double c = rg->points[k];
            double hi = (k % 2 == 0 ? (double)columns : (double)rows) - 0.5;
            if (!isfinite(c) || c < -0.5 || c > hi)
                return agora__error_set(err, AGORA_EINVAL,
                                        "region %zu has a coordinate outside the image", i);
        }
        if (rg->kind == AGORA_REGION_BOX &&
            (rg->points[0] > rg->points[2] || rg->points[1] > rg->points[3]))
            return agora__error_set(
                err, AGORA_EINVAL, "box region %zu: top-left is not above-left of bottom-right", i);
        ids[i] = rg->id;
    }
    qsort(ids, r->n_regions, sizeof *ids, cmp_i32);
    for (size_t i = 1; i < r->n_regions; i++)
        if (ids[i] == ids[i - 1])
            return agora__error_set(err, AGORA_EINVAL, "region id %d is used twice", (int)ids[i]);
    if (masks_len > g->output_bytes && n_masks > 0)
        return agora__error_set(err, AGORA_EINVAL, "masks exceed the output area");

    /* Pass 2: copy mask bytes out of the output memfd, then build the JSON from the copy. */
    if (n_masks > 0) {
        v->masks = malloc(masks_len ? masks_len : 1);
        v->mask_index = calloc(n_masks, sizeof *v->mask_index);
        if (v->masks == NULL || v->mask_index == NULL)
            return oom(err);
    }
    v->regions = json_array();
    if (v->regions == NULL)
        return oom(err);
    uint64_t off = 0;
    for (size_t i = 0; i < r->n_regions; i++) {
        const Agora__Ipc__Region *rg = r->regions[i];
        static const char *const kinds[] = {"", "point", "box", "polygon", "mask"};
        json_t *o = json_pack("{s:i, s:s, s:i}", "id", (json_int_t)rg->id, "kind", kinds[rg->kind],
                              "frame", (json_int_t)rg->frame);
        if (o == NULL || json_array_append_new(v->regions, o) < 0)
            return oom(err);
        if (rg->label != NULL && rg->label[0] != '\0' &&
            json_object_set_new(o, "label", json_string(rg->label)) < 0)
            return oom(err);
        if (rg->kind != AGORA__REGION_MASK) {
            json_t *pts = json_array();
            if (pts == NULL || json_object_set_new(o, "points", pts) < 0)
                return oom(err);
            for (size_t k = 0; k + 1 < rg->n_points; k += 2) {
                json_t *p = json_pack("[f, f]", rg->points[k], rg->points[k + 1]);
                if (p == NULL || json_array_append_new(pts, p) < 0)
                    return oom(err);
            }
            continue;
        }
        uint8_t *dst = v->masks + off;
        uint64_t done = 0;
        while (done < rg->mask_length) {
            size_t chunk = (size_t)(rg->mask_length - done);
            ssize_t n = pread(out_fd, dst + done, chunk, (off_t)(rg->mask_offset + done));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return agora__error_set(
                    err, AGORA_EINVAL, "mask region %zu could not be read from the output area", i);
            done += (uint64_t)n;
        }
        uint8_t digest[32];
        char hex[65];
        agora__sha256(dst, (size_t)rg->mask_length, digest);
        agora__hex(digest, 32, hex);
        json_t *points = json_array();
        uint32_t rows, columns, end;
        agora__result_geom_at(g, rg->frame, &rows, &columns, &end);
        json_t *m =
            json_pack("{s:i, s:i, s:i, s:i, s:i, s:s}", "first_frame", (json_int_t)rg->frame,
                      "frames", (json_int_t)rg->mask_frames, "rows", (json_int_t)rows, "columns",
                      (json_int_t)columns, "bits", (json_int_t)rg->mask_bits, "sha256", hex);
        if (points == NULL || m == NULL || json_object_set_new(o, "points", points) < 0 ||
            json_object_set_new(o, "mask", m) < 0) {
            json_decref(m);
            return oom(err);
        }
        v->mask_index[v->n_masks].region_id = rg->id;
        v->mask_index[v->n_masks].offset = off;
        v->mask_index[v->n_masks].length = rg->mask_length;
        v->n_masks++;
        off += rg->mask_length;
    }
    v->masks_len = off;
    return 0;
}

int agora__result_validate(const Agora__Ipc__Result *r, const agora__result_geom *g, int out_fd,
                           agora__validated *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    int rc = 0;
    size_t items = r->n_findings + r->n_measurements + r->n_regions;
    if (items > g->max_items)
        return agora__error_set(err, AGORA_ELIMIT, "result carries %zu items; the cap is %u", items,
                                g->max_items);
    int32_t *ids = malloc((r->n_regions ? r->n_regions : 1) * sizeof *ids);
    if (ids == NULL)
        return oom(err);
    agora__validated v = {0};
    if ((rc = check_regions(r, g, out_fd, ids, &v, err)) < 0)
        goto fail;

    v.findings = json_array();
    v.measurements = json_array();
    if (v.findings == NULL || v.measurements == NULL) {
        rc = oom(err);
        goto fail;
    }
    for (size_t i = 0; i < r->n_findings; i++) {
        const Agora__Ipc__Finding *f = r->findings[i];
        json_t *jf = NULL, *jr = NULL;
        if (f == NULL || f->code == NULL) {
            rc = agora__error_set(err, AGORA_EINVAL, "finding %zu has no code", i);
            goto fail;
        }
        if ((rc = code_ok(f->code, 1, "finding code", i, err)) < 0)
            goto fail;
        if (!isfinite(f->confidence) || f->confidence < 0.0 || f->confidence > 1.0) {
            rc = agora__error_set(err, AGORA_EINVAL, "finding %zu has confidence outside [0,1]", i);
            goto fail;
        }
        if ((rc = ref_frame(f->frame, g->frames, "finding", i, &jf, err)) < 0)
            goto fail;
        if ((rc = ref_region(f->region, ids, r->n_regions, "finding", i, &jr, err)) < 0) {
            json_decref(jf);
            goto fail;
        }
        json_t *o = json_pack("{s:o, s:f, s:o, s:o}", "code", code_json(f->code), "confidence",
                              f->confidence, "frame", jf, "region", jr);
        if (o == NULL || json_array_append_new(v.findings, o) < 0) {
            rc = oom(err);
            goto fail;
        }
    }
    for (size_t i = 0; i < r->n_measurements; i++) {
        const Agora__Ipc__Measurement *m = r->measurements[i];
        json_t *jf = NULL, *jr = NULL;
        if (m == NULL) {
            rc = agora__error_set(err, AGORA_EINVAL, "measurement %zu is missing", i);
            goto fail;
        }
        if ((rc = str_ok(m->name, AGORA__MAX_NAME_LEN, 1, "measurement name", i, err)) < 0 ||
            (rc = str_ok(m->unit, AGORA__MAX_UNIT_LEN, 1, "measurement unit", i, err)) < 0)
            goto fail;
        if (!isfinite(m->value) || fabs(m->value) > AGORA__RESULT_VALUE_MAX) {
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "measurement %zu is not a finite number within +-%g", i,
                                  AGORA__RESULT_VALUE_MAX);
            goto fail;
        }
        if (m->code != NULL && (rc = code_ok(m->code, 0, "measurement code", i, err)) < 0)
            goto fail;
        if ((rc = ref_frame(m->frame, g->frames, "measurement", i, &jf, err)) < 0)
            goto fail;
        if ((rc = ref_region(m->region, ids, r->n_regions, "measurement", i, &jr, err)) < 0) {
            json_decref(jf);
            goto fail;
        }
        json_t *o = json_pack("{s:s, s:f, s:s, s:o, s:o}", "name", m->name, "value", m->value,
                              "unit", m->unit, "frame", jf, "region", jr);
        if (o == NULL || json_array_append_new(v.measurements, o) < 0 ||
            (m->code != NULL && json_object_set_new(o, "code", code_json(m->code)) < 0)) {
            rc = oom(err);
            goto fail;
        }
    }
    if (r->summary != NULL && r->summary[0] != '\0') {
        if ((rc = str_ok(r->summary, AGORA__MAX_SUMMARY_LEN, 0, "summary", 0, err)) < 0)
            goto fail;
        v.summary = strdup(r->summary);
        if (v.summary == NULL) {
            rc = oom(err);
            goto fail;
        }
    }
    if (r->urgent_reason != NULL && r->urgent_reason[0] != '\0') {
        if (!agora__triage_reason_valid(r->urgent_reason,
                                        strnlen(r->urgent_reason, AGORA__MAX_URGENT_REASON_LEN + 1),
                                        AGORA__MAX_URGENT_REASON_LEN)) {
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "urgent reason is longer than %d bytes, not UTF-8 or has a "
                                  "control character",
                                  AGORA__MAX_URGENT_REASON_LEN);
            goto fail;
        }
        if ((v.urgent_reason = strdup(r->urgent_reason)) == NULL) {
            rc = oom(err);
            goto fail;
        }
    }
    free(ids);
    *out = v;
    return 0;
fail:
    free(ids);
    agora__validated_free(&v);
    return rc;
}

void agora__sanitize_message(const char *src, char *dst, size_t dst_size)
{
    if (dst_size == 0)
        return;
    if (src == NULL)
        src = "";
    size_t max = dst_size - 1 < AGORA__MAX_ERROR_LEN ? dst_size - 1 : AGORA__MAX_ERROR_LEN;
    size_t n = strnlen(src, max + 1);
    if (n > max) {
        n = max;
        /* Back off to a character boundary (never split a multi-byte sequence). */
        while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
            n--;
    }
    char tmp[AGORA__MAX_ERROR_LEN + 1];
    memcpy(tmp, src, n);
    tmp[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tmp[i];
        if (c < 0x20 || c == 0x7f) {
            tmp[i] = ' ';
        } else if (c == 0xc2 && i + 1 < n && (unsigned char)tmp[i + 1] >= 0x80 &&
                   (unsigned char)tmp[i + 1] <= 0x9f) {
            /* C1 controls (U+0080..U+009F): U+009B is a terminal's CSI. */
            tmp[i] = ' ';
            tmp[i + 1] = ' ';
            i++;
        }
    }
    if (!agora__utf8_valid(tmp, n)) {
        agora__strlcpy(dst, "(the worker's message was not valid UTF-8)", dst_size);
        return;
    }
    agora__strlcpy(dst, tmp, dst_size);
}
