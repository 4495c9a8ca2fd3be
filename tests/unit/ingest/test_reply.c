/* Validation of IngestReply messages as a compromised worker could send them. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dicom.h"
#include "ingest_internal.h"

typedef struct fixture {
    Agora__Ipc__IngestReply r;
    Agora__Ipc__IngestMetadata m;
    Agora__Ipc__IngestPixelFormat f;
    Agora__Ipc__IngestElement el[3];
    Agora__Ipc__IngestElement *elp[3];
    double pos[3], ori[6], sp[2];
    double fpos[6];
    uint8_t us[2];
} fixture;

static fixture fx;

/* A valid METADATA reply for request 7 with three elements. */
static void valid_meta(void)
{
    memset(&fx, 0, sizeof fx);
    agora__ipc__ingest_reply__init(&fx.r);
    agora__ipc__ingest_metadata__init(&fx.m);
    fx.r.request_id = 7;
    fx.r.status = AGORA__IPC__INGEST_STATUS__INGEST_OK;
    fx.r.metadata = &fx.m;
    fx.m.transfer_syntax = (char *)"1.2.840.10008.1.2.1";
    fx.m.study_uid = (char *)"1.2.3";
    fx.m.series_uid = (char *)"1.2.3.4";
    fx.m.sop_instance_uid = (char *)"1.2.3.4.5";
    fx.m.sop_class_uid = (char *)"1.2.840.10008.5.1.4.1.1.2";
    fx.m.modality = (char *)"CT";
    fx.m.photometric = (char *)"MONOCHROME2";
    fx.m.frames = 1;
    fx.m.rows = 128;
    fx.m.columns = 128;
    fx.m.samples_per_pixel = 1;
    fx.m.bits_allocated = 16;
    fx.m.bits_stored = 12;
    fx.m.high_bit = 11;
    fx.m.has_instance_number = 1;
    fx.m.instance_number = 3;
    fx.pos[2] = -12.5;
    fx.m.position = fx.pos;
    fx.m.n_position = 3;
    fx.ori[0] = fx.ori[4] = 1;
    fx.m.orientation = fx.ori;
    fx.m.n_orientation = 6;
    fx.sp[0] = fx.sp[1] = 0.5;
    fx.m.pixel_spacing = fx.sp;
    fx.m.n_pixel_spacing = 2;
    static const uint32_t tags[3] = {AGORA__DICOM_TAG(0x0008, 0x0060),
                                     AGORA__DICOM_TAG(0x0010, 0x0010),
                                     AGORA__DICOM_TAG(0x0028, 0x0010)};
    static const uint16_t vrs[3] = {AGORA__DICOM_VR('C', 'S'), AGORA__DICOM_VR('P', 'N'),
                                    AGORA__DICOM_VR('U', 'S')};
    static uint8_t ct[] = "CT", pn[] = "Doe^J";
    fx.us[0] = 128;
    for (int i = 0; i < 3; i++) {
        agora__ipc__ingest_element__init(&fx.el[i]);
        fx.el[i].tag = tags[i];
        fx.el[i].vr = vrs[i];
        fx.elp[i] = &fx.el[i];
    }
    fx.el[0].value.data = ct;
    fx.el[0].value.len = 2;
    fx.el[1].value.data = pn;
    fx.el[1].value.len = 5;
    fx.el[2].value.data = fx.us;
    fx.el[2].value.len = 2;
    fx.m.elements = fx.elp;
    fx.m.n_elements = 3;
}

static int check_meta(agora__ingest_meta *out, int *code, agora__error *e)
{
    return agora__ingest_check_reply(&fx.r, 7, AGORA__IPC__INGEST_OP__INGEST_METADATA, 0, 0, out,
                                     NULL, code, e);
}

static void expect_hostile(const char *why_substr)
{
    agora__ingest_meta out;
    agora__error e = {0};
    int code = 0;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_HOSTILE);
    if (why_substr)
        assert_non_null(strstr(e.msg, why_substr));
}

static void test_valid(void **state)
{
    (void)state;
    valid_meta();
    agora__ingest_meta out;
    agora__error e = {0};
    int code = -1;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_OK);
    assert_string_equal(out.sop_uid, "1.2.3.4.5");
    assert_string_equal(out.modality, "CT");
    assert_int_equal(out.rows, 128);
    assert_int_equal(out.instance_number, 3);
    assert_true(out.has_position && out.has_orientation && out.has_spacing);
    assert_int_equal(out.n_elements, 3);
    assert_int_equal(out.elements[1].length, 5);
    assert_memory_equal(out.elements[1].value, "Doe^J", 5);
    /* the copy does not alias the message */
    assert_ptr_not_equal(out.elements[1].value, fx.el[1].value.data);
    agora__ingest_meta_free(&out);
    fx.m.has_instance_number = 0;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_OK);
    assert_true(out.instance_number == INT64_MIN);
    agora__ingest_meta_free(&out);
}

static void test_request_id_and_status(void **state)
{
    (void)state;
    valid_meta();
    fx.r.request_id = 8;
    expect_hostile("expected 7");
    valid_meta();
    fx.r.status = 99;
    expect_hostile("unknown status");
    valid_meta();
    fx.r.metadata = NULL;
    expect_hostile("without metadata");
}

static void test_strings(void **state)
{
    (void)state;
    valid_meta();
    fx.m.sop_instance_uid = (char *)"1.2.3.SMITH";
    expect_hostile("UID");
    valid_meta();
    static char long_uid[80];
    memset(long_uid, '1', sizeof long_uid - 1);
    fx.m.study_uid = long_uid;
    expect_hostile("UID");
    valid_meta();
    fx.m.modality = (char *)"ct\n";
    expect_hostile("modality");
    valid_meta();
    fx.m.photometric = (char *)"MONOCHROME2_WITH_A_LONG_TAIL";
    expect_hostile("photometric");
    valid_meta();
    fx.m.body_part = (char *)"chest";
    expect_hostile("body part");
}

/* The routing attributes of issue 12: body part and slice thickness, checked and copied. */
static void test_route_attrs(void **state)
{
    (void)state;
    valid_meta();
    fx.m.body_part = (char *)"CHEST";
    fx.m.has_slice_thickness = 1;
    fx.m.slice_thickness = 1.25;
    agora__ingest_meta out;
    agora__error e = {0};
    int code = -1;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_OK);
    assert_string_equal(out.body_part, "CHEST");
    assert_true(out.has_slice_thickness);
    assert_true(out.slice_thickness == 1.25);
    agora__ingest_meta_free(&out);
    fx.m.has_slice_thickness = 0;
    fx.m.body_part = NULL; /* an older runner: both absent */
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_OK);
    assert_string_equal(out.body_part, "");
    assert_false(out.has_slice_thickness);
    agora__ingest_meta_free(&out);
    const double bad[] = {-1.0, 10001.0, NAN, INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        valid_meta();
        fx.m.has_slice_thickness = 1;
        fx.m.slice_thickness = bad[i];
        expect_hostile("slice thickness");
    }
}

static void test_numbers(void **state)
{
    (void)state;
    valid_meta();
    fx.m.frames = 0;
    expect_hostile("out of range");
    valid_meta();
    fx.m.rows = 70000;
    expect_hostile("out of range");
    valid_meta();
    fx.pos[1] = NAN;
    expect_hostile("non-finite");
    valid_meta();
    fx.ori[3] = INFINITY;
    expect_hostile("non-finite");
    valid_meta();
    fx.m.n_position = 2;
    expect_hostile("wrong count");
    valid_meta();
    fx.m.frames = 2;
    fx.m.frame_positions = fx.fpos;
    fx.m.n_frame_positions = 3; /* 2 frames need 6 */
    expect_hostile("per-frame");
    valid_meta();
    fx.m.frames = 2;
    fx.m.frame_positions = fx.fpos;
    fx.m.n_frame_positions = 6;
    agora__ingest_meta out;
    agora__error e = {0};
    int code;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_OK);
    assert_non_null(out.frame_positions);
    agora__ingest_meta_free(&out);
}

static void test_elements(void **state)
{
    (void)state;
    valid_meta();
    fx.el[1].tag = fx.el[0].tag; /* not strictly ascending */
    expect_hostile("ascending");
    valid_meta();
    fx.el[0].tag = AGORA__DICOM_TAG(0x0002, 0x0010);
    expect_hostile("group");
    valid_meta();
    fx.el[1].vr = AGORA__DICOM_VR('O', 'B');
    expect_hostile("VR");
    valid_meta();
    fx.el[2].value.len = 3; /* US must be a multiple of 2 */
    expect_hostile("length");
    valid_meta();
    static uint8_t big[AGORA__INGEST_MAX_VALUE + 2];
    fx.el[1].value.data = big;
    fx.el[1].value.len = sizeof big;
    expect_hostile("length");
    valid_meta();
    fx.el[1].value.data = NULL;
    expect_hostile("length");
    valid_meta();
    fx.m.n_elements = AGORA__INGEST_MAX_ELEMENTS + 1;
    expect_hostile("elements");
}

static void test_file_error(void **state)
{
    (void)state;
    valid_meta();
    fx.r.status = AGORA__IPC__INGEST_STATUS__INGEST_FILE_ERROR;
    fx.r.code = AGORA_ELIMIT;
    fx.r.error = (char *)"nesting deeper than 16\x1b[31m\nlevels";
    agora__ingest_meta out;
    agora__error e = {0};
    int code = 0;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_FILE);
    assert_int_equal(code, AGORA_ELIMIT);
    assert_null(strchr(e.msg, '\n'));
    assert_null(strchr(e.msg, '\x1b'));
    assert_non_null(strstr(e.msg, "nesting deeper than 16"));
    /* the worker's out-of-memory is this file's limit, not the host's */
    fx.r.code = AGORA_ENOMEM;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_FILE);
    assert_int_equal(code, AGORA_ELIMIT);
    /* codes outside the parser's set are reported as bad input */
    fx.r.code = 12345;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_FILE);
    assert_int_equal(code, AGORA_EINPUT);
    fx.r.status = AGORA__IPC__INGEST_STATUS__INGEST_REQUEST_ERROR;
    fx.r.error = NULL;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_FILE);
    assert_int_equal(code, AGORA_EINTERNAL);
    assert_non_null(strstr(e.msg, "no reason given"));
}

static void valid_decode(void)
{
    valid_meta();
    fx.m.n_elements = 0;
    agora__ipc__ingest_pixel_format__init(&fx.f);
    fx.f.pixel_type = AGORA_PIXEL_I16;
    fx.f.samples_per_pixel = 1;
    fx.f.bytes_per_sample = 2;
    fx.f.photometric = AGORA_PHOTOMETRIC_MONOCHROME2;
    fx.f.photometric_name = (char *)"MONOCHROME2";
    fx.f.frame_bytes = 128 * 128 * 2;
    fx.r.format = &fx.f;
    fx.r.frames_decoded = 2;
}

static int check_decode(uint64_t out_len, agora__dicom_pixel_format *fmt, agora__ingest_meta *m)
{
    agora__error e = {0};
    int code;
    int rc = agora__ingest_check_reply(&fx.r, 7, AGORA__IPC__INGEST_OP__INGEST_DECODE, 2, out_len,
                                       m, fmt, &code, &e);
    if (m != NULL && rc == AGORA__INGEST_REPLY_OK)
        agora__ingest_meta_free(m);
    return rc;
}

static void test_decode(void **state)
{
    (void)state;
    agora__dicom_pixel_format fmt;
    agora__ingest_meta m;
    valid_decode();
    assert_int_equal(check_decode(2 * 128 * 128 * 2, &fmt, &m), AGORA__INGEST_REPLY_OK);
    assert_int_equal(fmt.frame_bytes, 128 * 128 * 2);
    assert_string_equal(fmt.photometric_name, "MONOCHROME2");
    /* two frames do not fit a window one byte short */
    assert_int_equal(check_decode(2 * 128 * 128 * 2 - 1, &fmt, NULL), AGORA__INGEST_REPLY_HOSTILE);
    /* a frame size that would overflow when multiplied */
    valid_decode();
    fx.f.frame_bytes = UINT64_MAX / 2 + 1;
    assert_int_equal(check_decode(UINT64_MAX, &fmt, NULL), AGORA__INGEST_REPLY_HOSTILE);
    valid_decode();
    fx.r.frames_decoded = 1;
    assert_int_equal(check_decode(1 << 20, &fmt, NULL), AGORA__INGEST_REPLY_HOSTILE);
    valid_decode();
    fx.f.pixel_type = 42;
    assert_int_equal(check_decode(1 << 20, &fmt, NULL), AGORA__INGEST_REPLY_HOSTILE);
    valid_decode();
    fx.f.samples_per_pixel = 2;
    assert_int_equal(check_decode(1 << 20, &fmt, NULL), AGORA__INGEST_REPLY_HOSTILE);
    valid_decode();
    fx.r.format = NULL;
    assert_int_equal(check_decode(1 << 20, &fmt, NULL), AGORA__INGEST_REPLY_HOSTILE);
    /* a decode reply must not smuggle elements */
    valid_decode();
    fx.m.n_elements = 3;
    assert_int_equal(check_decode(1 << 20, &fmt, &m), AGORA__INGEST_REPLY_HOSTILE);
}

static void test_meta_to_instance(void **state)
{
    (void)state;
    valid_meta();
    fx.m.frames = 2;
    fx.m.frame_positions = fx.fpos;
    fx.m.n_frame_positions = 6;
    agora__ingest_meta m;
    agora__error e = {0};
    int code;
    assert_int_equal(check_meta(&m, &code, &e), AGORA__INGEST_REPLY_OK);
    agora__dicom_instance in;
    char study[65], series[65], modality[17];
    assert_int_equal(
        agora__ingest_meta_to_instance(&m, "/x/y.dcm", &in, study, series, modality, &e), 0);
    assert_string_equal(in.path, "/x/y.dcm");
    assert_string_equal(series, "1.2.3.4");
    assert_string_equal(modality, "CT");
    assert_int_equal(in.frames, 2);
    assert_non_null(in.frame_positions);
    assert_null(m.frame_positions); /* ownership moved */
    free(in.path);
    free(in.frame_positions);
    agora__ingest_meta_free(&m);
    m.rows = 0;
    assert_int_equal(agora__ingest_meta_to_instance(&m, "/x", &in, study, series, modality, &e),
                     AGORA_EINPUT);
}

/* Two frames with per-frame functional groups (what a worker reports for an enhanced object). */
static double g_resc[4], g_win[4], g_ori[12];
static uint32_t g_vol[2], g_stack[2], g_in[2], g_time[2];

static void valid_frame_groups(void)
{
    valid_meta();
    fx.m.frames = 2;
    fx.m.frame_positions = fx.fpos;
    fx.m.n_frame_positions = 6;
    fx.fpos[5] = 2.5;
    double r[4] = {1, -1024, 2, -1000};
    memcpy(g_resc, r, sizeof r);
    g_win[0] = 40;
    g_win[1] = 400;
    g_win[2] = g_win[3] = NAN;
    for (int f = 0; f < 2; f++) {
        memset(&g_ori[f * 6], 0, 6 * sizeof(double));
        g_ori[f * 6 + 0] = g_ori[f * 6 + 4] = 1;
        g_vol[f] = (uint32_t)f;
        g_stack[f] = (uint32_t)f + 1;
        g_in[f] = 1;
        g_time[f] = 0;
    }
    fx.m.has_rescale = 1;
    fx.m.rescale_slope = 1;
    fx.m.rescale_intercept = -1024;
    fx.m.rescale_type = (char *)"HU";
    fx.m.frame_rescale = g_resc;
    fx.m.n_frame_rescale = 4;
    fx.m.frame_window = g_win;
    fx.m.n_frame_window = 4;
    fx.m.frame_orientations = g_ori;
    fx.m.n_frame_orientations = 12;
    fx.m.frame_volume = g_vol;
    fx.m.n_frame_volume = 2;
    fx.m.frame_stack = g_stack;
    fx.m.n_frame_stack = 2;
    fx.m.frame_in_stack = g_in;
    fx.m.n_frame_in_stack = 2;
    fx.m.frame_temporal = g_time;
    fx.m.n_frame_temporal = 2;
}

static void test_frame_groups(void **state)
{
    (void)state;
    valid_frame_groups();
    agora__ingest_meta out;
    agora__error e = {0};
    int code;
    assert_int_equal(check_meta(&out, &code, &e), AGORA__INGEST_REPLY_OK);
    assert_non_null(out.frame_meta);
    assert_int_equal(out.has_rescale, 1);
    assert_true(out.rescale[1] == -1024);
    assert_string_equal(out.rescale_type, "HU");
    assert_int_equal(out.n_volumes, 2);
    assert_true(out.frame_meta[1].rescale[0] == 2 && out.frame_meta[1].rescale[1] == -1000);
    assert_true(out.frame_meta[0].has_window && !out.frame_meta[1].has_window);
    assert_true(out.frame_meta[1].has_position && out.frame_meta[1].position[2] == 2.5);
    assert_int_equal(out.frame_meta[1].stack, 2);
    /* meta_to_instance moves the per-frame values with the rest */
    agora__dicom_instance in;
    char study[65], series[65], modality[17];
    assert_int_equal(
        agora__ingest_meta_to_instance(&out, "/x/e.dcm", &in, study, series, modality, &e), 0);
    assert_non_null(in.frame_meta);
    assert_null(out.frame_meta);
    assert_true(in.rescale[1] == -1024);
    free(in.path);
    free(in.frame_positions);
    free(in.frame_meta);
    agora__ingest_meta_free(&out);

    valid_frame_groups();
    fx.m.n_frame_rescale = 2; /* one pair for two frames */
    expect_hostile("frame count");
    valid_frame_groups();
    fx.m.n_frame_temporal = 0; /* every per-frame index array or none */
    expect_hostile("frame count");
    valid_frame_groups();
    g_resc[2] = 0; /* a zero slope */
    expect_hostile("zero slope");
    valid_frame_groups();
    g_resc[3] = NAN;
    expect_hostile("rescale of frame 1");
    valid_frame_groups();
    fx.m.rescale_slope = INFINITY;
    expect_hostile("rescale");
    valid_frame_groups();
    g_win[2] = 5; /* half a window */
    expect_hostile("window of frame 1");
    valid_frame_groups();
    g_ori[7] = INFINITY;
    expect_hostile("not finite");
    valid_frame_groups();
    g_vol[1] = 2; /* a volume index must be below the frame count */
    expect_hostile("beyond the frame count");
    valid_frame_groups();
    g_stack[0] = 3;
    expect_hostile("beyond the frame count");
    valid_frame_groups();
    fx.m.rescale_type = (char *)"H\nU";
    expect_hostile("not printable");
    valid_frame_groups();
    fx.m.rescale_type = (char *)"ABCDEFGHIJKLMNOPQ"; /* 17 bytes */
    expect_hostile("longer than 16");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),    cmocka_unit_test(test_request_id_and_status),
        cmocka_unit_test(test_strings),  cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_elements), cmocka_unit_test(test_file_error),
        cmocka_unit_test(test_decode),   cmocka_unit_test(test_meta_to_instance),
        cmocka_unit_test(test_frame_groups), cmocka_unit_test(test_route_attrs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
