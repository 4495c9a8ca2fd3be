/* Result validation: a good result passes and produces the documented JSON; each rule of
 * DESIGN §2 has a case that breaks it and must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "worker_internal.h"

/* A mutable good result: 2 regions (polygon id 1, mask id 2), 1 finding, 1 measurement. */
typedef struct fixture {
    Agora__Ipc__Result r;
    Agora__Ipc__Code code, mcode;
    Agora__Ipc__Finding f;
    Agora__Ipc__Finding *fp[1];
    Agora__Ipc__Measurement m;
    Agora__Ipc__Measurement *mp[1];
    Agora__Ipc__Region poly, mask;
    Agora__Ipc__Region *rp[2];
    double pts[6];
    agora__result_geom g;
    int out_fd;
} fixture;

static void build(fixture *x)
{
    memset(x, 0, sizeof *x);
    agora__ipc__result__init(&x->r);
    agora__ipc__code__init(&x->code);
    x->code.scheme = "SCT";
    x->code.code = "126713003";
    x->code.meaning = "Mass of lung";
    agora__ipc__code__init(&x->mcode);
    x->mcode.scheme = "LN";
    x->mcode.code = "1234-5";
    x->mcode.meaning = "Volume";
    agora__ipc__finding__init(&x->f);
    x->f.code = &x->code;
    x->f.confidence = 0.9;
    x->f.frame = 0;
    x->f.region = 1;
    x->fp[0] = &x->f;
    agora__ipc__measurement__init(&x->m);
    x->m.name = "volume";
    x->m.value = 1.5;
    x->m.unit = "mL";
    x->m.frame = AGORA_NONE;
    x->m.region = 2;
    x->m.code = &x->mcode;
    x->mp[0] = &x->m;
    agora__ipc__region__init(&x->poly);
    x->poly.id = 1;
    x->poly.kind = AGORA_REGION_POLYGON;
    x->poly.frame = 1;
    double pts[6] = {0, 0, 3, 0, 3, 2};
    memcpy(x->pts, pts, sizeof pts);
    x->poly.points = x->pts;
    x->poly.n_points = 6;
    x->poly.label = "outline";
    agora__ipc__region__init(&x->mask);
    x->mask.id = 2;
    x->mask.kind = AGORA__REGION_MASK;
    x->mask.frame = 1;
    x->mask.mask_frames = 2;
    x->mask.mask_bits = 8;
    x->mask.mask_offset = 16;
    x->mask.mask_length = 2 * 4 * 3; /* frames*rows*cols */
    x->rp[0] = &x->poly;
    x->rp[1] = &x->mask;
    x->r.status = AGORA__IPC__JOB_STATUS__JOB_OK;
    x->r.n_findings = 1;
    x->r.findings = x->fp;
    x->r.n_measurements = 1;
    x->r.measurements = x->mp;
    x->r.n_regions = 2;
    x->r.regions = x->rp;
    x->r.summary = "all fine";
    x->g.rows = 3;
    x->g.columns = 4;
    x->g.frames = 3;
    x->g.output_bytes = 64;
    x->g.max_items = 100;
}

static int setup(void **state)
{
    static fixture x;
    build(&x);
    x.out_fd = memfd_create("out", MFD_CLOEXEC);
    if (x.out_fd < 0 || ftruncate(x.out_fd, 64) < 0)
        return -1;
    uint8_t bytes[64];
    for (int i = 0; i < 64; i++)
        bytes[i] = (uint8_t)i;
    if (pwrite(x.out_fd, bytes, 64, 0) != 64)
        return -1;
    *state = &x;
    return 0;
}

static int teardown(void **state)
{
    fixture *x = *state;
    close(x->out_fd);
    return 0;
}

static int run(fixture *x, agora__validated *v, agora__error *err)
{
    return agora__result_validate(&x->r, &x->g, x->out_fd, v, err);
}

static void expect_fail(fixture *x, const char *needle)
{
    agora__validated v;
    agora__error err = {0};
    int rc = run(x, &v, &err);
    if (rc == 0)
        fail_msg("accepted a result that breaks: %s", needle);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("expected an error mentioning \"%s\", got \"%s\"", needle, err.msg);
    assert_null(v.findings);
    assert_null(v.masks);
    int fd = x->out_fd;
    build(x);
    x->out_fd = fd;
}

static void test_good_result(void **state)
{
    fixture *x = *state;
    agora__validated v;
    agora__error err = {0};
    assert_int_equal(run(x, &v, &err), 0);
    assert_int_equal(v.n_masks, 1);
    assert_int_equal(v.masks_len, 24);
    assert_int_equal(v.masks[0], 16); /* copied from offset 16 */
    assert_int_equal(v.mask_index[0].region_id, 2);
    agora__result_metrics m = {12, 345, 678};
    json_t *doc = agora__result_doc("com.example.x", "1.0.0", 9, AGORA__JOB_OK, "", &v, &m);
    assert_non_null(doc);
    char *s = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(strstr(s, "\"schema\":\"agora.result/1\""));
    assert_non_null(strstr(s, "\"status\":\"ok\""));
    assert_null(strstr(s, "\"error\""));
    assert_non_null(strstr(s, "\"job_id\":9"));
    assert_non_null(strstr(s, "\"confidence\":0.9"));
    assert_non_null(strstr(s, "\"frame\":null"));
    assert_non_null(strstr(s, "\"kind\":\"polygon\""));
    assert_non_null(strstr(s, "\"kind\":\"mask\""));
    assert_non_null(strstr(s, "\"points\":[[0.0,0.0],[3.0,0.0],[3.0,2.0]]"));
    assert_non_null(strstr(s, "\"summary\":\"all fine\""));
    assert_non_null(strstr(s, "\"metrics\":{\"cpu_us\":345,\"peak_rss_kb\":678,\"wall_ms\":12}"));
    /* sha256 of bytes 16..39 */
    uint8_t expect[24], d[32];
    char hex[65];
    for (int i = 0; i < 24; i++)
        expect[i] = (uint8_t)(16 + i);
    agora__sha256(expect, 24, d);
    agora__hex(d, 32, hex);
    assert_non_null(strstr(s, hex));
    free(s);
    json_decref(doc);
    agora__validated_free(&v);

    json_t *failed =
        agora__result_doc("com.example.x", "1.0.0", 10, AGORA__JOB_TIMEOUT, "too slow", NULL, &m);
    s = json_dumps(failed, JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(strstr(s, "\"status\":\"timeout\""));
    assert_non_null(strstr(s, "\"error\":\"too slow\""));
    assert_non_null(strstr(s, "\"findings\":[]"));
    free(s);
    json_decref(failed);
}

static void test_strings(void **state)
{
    fixture *x = *state;
    x->code.meaning = "bad \xc3\x28 utf8";
    expect_fail(x, "not valid UTF-8");
    x->m.unit = "m\x01L"; /* control character */
    expect_fail(x, "not valid UTF-8");
    x->poly.label = "\xff";
    expect_fail(x, "not valid UTF-8");
    x->r.summary = "\xed\xa0\x80"; /* surrogate */
    expect_fail(x, "not valid UTF-8");
    char longs[AGORA__MAX_NAME_LEN + 2];
    memset(longs, 'n', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    x->m.name = longs;
    expect_fail(x, "longer than");
    x->code.scheme = "";
    expect_fail(x, "is empty");
    x->mcode.code = "";
    expect_fail(x, "is empty");
    char longcode[AGORA__MAX_CODE_LEN + 2];
    memset(longcode, '7', sizeof longcode - 1);
    longcode[sizeof longcode - 1] = '\0';
    x->code.code = longcode;
    expect_fail(x, "longer than");
    /* A measurement code without a meaning is fine (the runner accepts it too). */
    x->mcode.meaning = "";
    agora__validated v;
    agora__error err;
    assert_int_equal(run(x, &v, &err), 0);
    agora__validated_free(&v);
    int fd = x->out_fd;
    build(x);
    x->out_fd = fd;
    x->f.code = NULL;
    expect_fail(x, "has no code");
}

static void test_numbers(void **state)
{
    fixture *x = *state;
    x->m.value = NAN;
    expect_fail(x, "finite");
    x->m.value = INFINITY;
    expect_fail(x, "finite");
    x->f.confidence = 1.01;
    expect_fail(x, "confidence");
    x->f.confidence = -0.1;
    expect_fail(x, "confidence");
    x->f.confidence = NAN;
    expect_fail(x, "confidence");
    x->pts[2] = NAN;
    expect_fail(x, "outside the image");
    x->pts[2] = 3.6; /* columns - 0.5 = 3.5 */
    expect_fail(x, "outside the image");
    x->pts[5] = -0.6;
    expect_fail(x, "outside the image");
}

static void test_references(void **state)
{
    fixture *x = *state;
    x->f.frame = 3; /* frames = 3 */
    expect_fail(x, "references frame");
    x->m.frame = -2;
    expect_fail(x, "references frame");
    x->f.region = 7;
    expect_fail(x, "unknown region");
    x->m.region = -5;
    expect_fail(x, "unknown region");
    x->poly.frame = 3;
    expect_fail(x, "is on frame");
    x->mask.id = 1;
    expect_fail(x, "used twice");
    x->poly.id = -3;
    expect_fail(x, "negative id");
}

static void test_region_shapes(void **state)
{
    fixture *x = *state;
    x->poly.n_points = 4; /* 2 points for a polygon */
    expect_fail(x, "polygon region");
    x->poly.n_points = 5;
    expect_fail(x, "odd coordinate");
    x->poly.kind = AGORA_REGION_POINT;
    expect_fail(x, "point region");
    x->poly.kind = AGORA_REGION_BOX;
    x->poly.n_points = 4;
    x->pts[0] = 3;
    x->pts[2] = 1;
    expect_fail(x, "top-left");
    x->poly.kind = 9;
    expect_fail(x, "unknown kind");
}

static void test_masks(void **state)
{
    fixture *x = *state;
    x->mask.mask_length = 23;
    expect_fail(x, "expected 24");
    x->mask.mask_bits = 16; /* length must double */
    expect_fail(x, "expected 48");
    x->mask.mask_bits = 12;
    expect_fail(x, "bits");
    x->mask.mask_offset = 41; /* 41 + 24 > 64 */
    expect_fail(x, "outside the");
    x->mask.mask_offset = UINT64_MAX - 8; /* overflow attempt */
    expect_fail(x, "outside the");
    x->mask.mask_frames = 3; /* frames 1..3 of 3 */
    x->mask.mask_length = 36;
    expect_fail(x, "spans frames");
    x->mask.mask_frames = 0;
    expect_fail(x, "spans frames");
    x->mask.n_points = 2;
    x->mask.points = x->pts;
    expect_fail(x, "carries points");
    /* The output area is shorter than the worker claims (a shrunk memfd): refused on read. */
    x->g.output_bytes = 1 << 20;
    x->mask.mask_offset = 100;
    expect_fail(x, "could not be read");
}

static void test_counts(void **state)
{
    fixture *x = *state;
    x->g.max_items = 3; /* 1 + 1 + 2 */
    expect_fail(x, "items");
    /* The mask total cannot exceed the output area even when masks overlap. */
    Agora__Ipc__Region m2 = x->mask;
    m2.id = 3;
    Agora__Ipc__Region *rp[3] = {&x->poly, &x->mask, &m2};
    x->r.regions = rp;
    x->r.n_regions = 3;
    x->g.output_bytes = 40;
    expect_fail(x, "exceed the output area");
}

static void test_sanitize_message(void **state)
{
    (void)state;
    char out[64];
    agora__sanitize_message("line1\nline2\tx", out, sizeof out);
    assert_string_equal(out, "line1 line2 x");
    agora__sanitize_message("\xff\xfe", out, sizeof out);
    assert_non_null(strstr(out, "not valid UTF-8"));
    /* Cutting never splits a multi-byte character. */
    char many[200];
    for (int i = 0; i < 99; i++) {
        many[2 * i] = (char)0xc3;
        many[2 * i + 1] = (char)0xa9;
    }
    many[198] = '\0';
    agora__sanitize_message(many, out, 10);
    assert_true(agora__utf8_valid(out, strlen(out)));
    assert_int_equal(strlen(out) % 2, 0);
    agora__sanitize_message(NULL, out, sizeof out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_references, setup, teardown),
        cmocka_unit_test_setup_teardown(test_region_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
        cmocka_unit_test(test_sanitize_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
