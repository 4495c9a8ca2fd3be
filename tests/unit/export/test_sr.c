/*
 * Unit tests of the TID 1500 SR builder (host/export/sr.c) and the re-identification of plugin
 * text (reident.c): SCOORD conversion from Agora's pixel-centre coordinates to DICOM's
 * pixel-corner ones for each region kind; pseudonyms replaced by whole UID runs only; an SR
 * built over a fake two-instance source (no sandbox needed) holds the real UIDs, the
 * converted coordinates as FL bytes, the triage code, ASCII-only text for a source without a
 * UTF-8 character set, no pseudonym, is byte-identical when built twice; and refuses a result
 * whose region names a frame the source lacks or whose code holds a backslash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "deid.h"
#include "export.h"

static void scoord_point_polygon_box(void **state)
{
    (void)state;
    float g[16];
    size_t n = 0;
    const char *gt = NULL;
    const double pt[2] = {0, 0};
    assert_int_equal(agora__export_sr_scoord("point", pt, 1, g, &n, &gt), 0);
    assert_string_equal(gt, "POINT");
    assert_int_equal(n, 2);
    assert_true(g[0] == 0.5f && g[1] == 0.5f); /* centre of the top-left pixel */

    const double poly[6] = {1, 2, 10, 2, 5, 7};
    assert_int_equal(agora__export_sr_scoord("polygon", poly, 3, g, &n, &gt), 0);
    assert_string_equal(gt, "POLYLINE");
    assert_int_equal(n, 8); /* closed: the first point repeated */
    const float wp[8] = {1.5f, 2.5f, 10.5f, 2.5f, 5.5f, 7.5f, 1.5f, 2.5f};
    assert_memory_equal(g, wp, sizeof wp);

    /* Pixels 1..4 inclusive in x and y: the outline from the left edge of pixel 1 (1.0) to
     * the right edge of pixel 4 (5.0); corners given in any order. */
    const double box[4] = {4, 4, 1, 1};
    assert_int_equal(agora__export_sr_scoord("box", box, 2, g, &n, &gt), 0);
    assert_string_equal(gt, "POLYLINE");
    assert_int_equal(n, 10);
    const float wb[10] = {1, 1, 5, 1, 5, 5, 1, 5, 1, 1};
    assert_memory_equal(g, wb, sizeof wb);

    assert_int_equal(agora__export_sr_scoord("point", box, 2, g, &n, &gt), AGORA_EINVAL);
    assert_int_equal(agora__export_sr_scoord("polygon", poly, 2, g, &n, &gt), AGORA_EINVAL);
    assert_int_equal(agora__export_sr_scoord("box", box, 1, g, &n, &gt), AGORA_EINVAL);
    assert_int_equal(agora__export_sr_scoord("mask", box, 2, g, &n, &gt), AGORA_EINVAL);
}

/* A fake source series: two single-frame CT instances, no SpecificCharacterSet. */
static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
#define STUDY  "1.2.826.0.1.3680043.9.7.1"
#define SERIES "1.2.826.0.1.3680043.9.7.1.2"
#define SOP0   "1.2.826.0.1.3680043.9.7.1.2.3"
#define SOP1   "1.2.826.0.1.3680043.9.7.1.2.4"
#define CT     "1.2.840.10008.5.1.4.1.1.2"

typedef struct fake {
    agora__dicom_instance inst[2];
    agora__dicom_series_frame fr[2];
    agora__dicom_series series;
    char *classes[2];
    agora__export_source src;
    agora__export_uidmap uids;
} fake;

static void fake_init(fake *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 2; i++) {
        snprintf(f->inst[i].sop_uid, sizeof f->inst[i].sop_uid, "%s", i ? SOP1 : SOP0);
        f->inst[i].frames = 1;
        f->inst[i].rows = f->inst[i].columns = 16;
        f->fr[i].instance = (uint32_t)i;
        f->classes[i] = (char *)CT;
    }
    snprintf(f->series.study_uid, sizeof f->series.study_uid, "%s", STUDY);
    snprintf(f->series.series_uid, sizeof f->series.series_uid, "%s", SERIES);
    f->series.instances = f->inst;
    f->series.n_instances = 2;
    f->series.frames = f->fr;
    f->series.n_frames = 2;
    f->src.series = &f->series;
    f->src.sop_classes = f->classes;
    snprintf(f->src.meta.study_uid, sizeof f->src.meta.study_uid, "%s", STUDY);
    snprintf(f->src.meta.modality, sizeof f->src.meta.modality, "CT");
    agora__error err = {0};
    assert_int_equal(agora__export_uidmap_build(&f->src, key, &f->uids, &err), 0);
}

static void reident_whole_runs_only(void **state)
{
    (void)state;
    fake f;
    fake_init(&f);
    char p0[65], p1[65], ps[65];
    agora__error err = {0};
    assert_int_equal(agora__deid_uid(key, SOP0, p0, &err), 0);
    assert_int_equal(agora__deid_uid(key, SOP1, p1, &err), 0);
    assert_int_equal(agora__deid_uid(key, STUDY, ps, &err), 0);
    char in[400], want[400];
    snprintf(in, sizeof in, "%s, study %s; not %s9 nor 1%s.", p0, ps, p1, p1);
    snprintf(want, sizeof want, "%s, study %s; not %s9 nor 1%s.", SOP0, STUDY, p1, p1);
    char *out = agora__export_reident(&f.uids, in);
    assert_non_null(out);
    assert_string_equal(out, want);
    free(out);
    out = agora__export_reident(&f.uids, p1);
    assert_string_equal(out, SOP1);
    free(out);
    out = agora__export_reident(NULL, in);
    assert_string_equal(out, in);
    free(out);
    agora__export_uidmap_free(&f.uids);
}

static char tmpdir[64];

static json_t *result_json(const char *finding_code, int region_frame)
{
    char p0[65];
    agora__error err = {0};
    assert_int_equal(agora__deid_uid(key, SOP0, p0, &err), 0);
    json_t *r = json_pack(
        "{s:s, s:{s:s,s:s}, s:i, s:s, s:s, s:s, s:s, s:s, s:[{s:i,s:s,s:i},{s:i,s:s,s:i}],"
        " s:[{s:i,s:s,s:i,s:[[f,f]],s:s},{s:i,s:s,s:i,s:[[f,f],[f,f]]}],"
        " s:[{s:{s:s,s:s,s:s},s:f,s:i},{s:{s:s,s:s,s:s},s:f}],"
        " s:[{s:s,s:f,s:s,s:i}], s:s, s:{s:b,s:s}}",
        "schema", "agora.result/1", "plugin", "id", "org.example.p", "version", "2.0", "job_id", 1,
        "status", "ok", "invocation_id", "00112233445566778899aabbccddeeff", "study_uid", STUDY,
        "series_uid", SERIES, "created", "2026-11-15T12:00:00.000Z", "frames", "frame", 0,
        "sop_instance_uid", SOP0, "frame_number", 1, "frame", 1, "sop_instance_uid", SOP1,
        "frame_number", 1, "regions", "id", 1, "kind", "point", "frame", region_frame, "points",
        2.0, 3.0, "label", "caf\xc3\xa9", "id", 2, "kind", "box", "frame", 1, "points", 1.0, 1.0,
        4.0, 4.0, "findings", "code", "scheme", "SCT", "code", finding_code, "meaning", "Lesion",
        "confidence", 0.5, "region", 2, "code", "scheme", "99X", "code", "seen", "meaning", p0,
        "confidence", 1.0, "measurements", "name", "box area", "value", 16.0, "unit", "mm2",
        "region", 2, "summary", "two regions", "triage", "urgent", 1, "reason", "big one");
    assert_non_null(r);
    return r;
}

static uint8_t *build(fake *f, const json_t *r, size_t *len, int *rc)
{
    agora__export_ctx ctx = {.src = &f->src, .vendor = "Example", .uids = &f->uids};
    char path[4096];
    agora__error err = {0};
    *rc = agora__export_sr(&ctx, tmpdir, r, tmpdir, path, sizeof path, &err);
    if (*rc != 0)
        return NULL;
    uint8_t *buf = NULL;
    assert_int_equal(agora__read_file(path, 1 << 20, &buf, len, &err), 0);
    unlink(path);
    return buf;
}

static int has(const uint8_t *b, size_t n, const void *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(b + i, needle, k) == 0)
            return 1;
    return 0;
}
#define HAS(b, n, s) has(b, n, s, strlen(s))

static void sr_over_fake_source(void **state)
{
    (void)state;
    fake f;
    fake_init(&f);
    json_t *r = result_json("52988006", 0);
    size_t n = 0, n2 = 0;
    int rc = -1;
    uint8_t *a = build(&f, r, &n, &rc);
    assert_int_equal(rc, 0);
    uint8_t *b = build(&f, r, &n2, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(n, n2);
    assert_memory_equal(a, b, n); /* deterministic */
    assert_true(HAS(a, n, STUDY) && HAS(a, n, SERIES) && HAS(a, n, SOP0) && HAS(a, n, SOP1));
    assert_true(HAS(a, n, "1.2.840.10008.5.1.4.1.1.88.34"));
    assert_true(HAS(a, n, "126000") && HAS(a, n, "1500") && HAS(a, n, "1410"));
    assert_true(HAS(a, n, "103391001") && HAS(a, n, "big one") && HAS(a, n, "two regions"));
    assert_true(HAS(a, n, "111012") && HAS(a, n, "25045-6"));    /* confidence; CT procedure */
    assert_true(HAS(a, n, "caf?") && !HAS(a, n, "caf\xc3\xa9")); /* no UTF-8 charset */
    char p0[65];
    agora__error err = {0};
    assert_int_equal(agora__deid_uid(key, SOP0, p0, &err), 0);
    assert_false(HAS(a, n, p0)); /* the echoed pseudonym became the real UID */
    const float box[10] = {1, 1, 5, 1, 5, 5, 1, 5, 1, 1};
    uint8_t le[40];
    for (int i = 0; i < 10; i++) {
        uint32_t u;
        memcpy(&u, &box[i], 4);
        for (int k = 0; k < 4; k++)
            le[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    assert_true(has(a, n, le, sizeof le)); /* GraphicData of the box, FL little-endian */
    free(a);
    free(b);
    json_decref(r);

    r = result_json("52988006", 7); /* a region on a frame the result does not list */
    assert_null(build(&f, r, &n, &rc));
    assert_int_equal(rc, AGORA_EINVAL);
    json_decref(r);
    r = result_json("a\\b", 0);
    assert_null(build(&f, r, &n, &rc));
    assert_int_equal(rc, AGORA_EINVAL);
    json_decref(r);
    agora__export_uidmap_free(&f.uids);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/agora-test-sr.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scoord_point_polygon_box),
        cmocka_unit_test(reident_whole_runs_only),
        cmocka_unit_test(sr_over_fake_source),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(tmpdir);
    return rc;
}
