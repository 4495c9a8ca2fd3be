/* Study assembly: grouping, ordering along the slice normal (not by instance number or file
 * name), gaps, duplicates, inconsistent geometry, skipped files, and decoding a series into one
 * caller buffer. Files are written under a private temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "builder.h"
#include "dicom.h"
#include "study.h"

static char dir[64];

static void write_file(const char *name, const void *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* One 4x4 16-bit slice whose pixels all equal `marker`. Orientation tilted about x so the
 * normal is (0, -sin, cos): positions must be projected, not compared by z. */
static void slice(const char *name, const char *series, const char *sop, int inst, double d,
                  uint16_t marker, uint16_t cols)
{
    const double c = 0.8, s = 0.6; /* row (1,0,0), column (0,c,s): normal (0,-s,c) */
    tbuf t = {.explicit = 1};
    tb_meta(&t, AGORA__DICOM_TS_EXPLICIT_LE);
    tb_str(&t, 0x0008, 0x0018, "UI", sop);
    tb_str(&t, 0x0008, 0x0060, "CS", "CT");
    tb_str(&t, 0x0020, 0x000D, "UI", "1.2.3");
    tb_str(&t, 0x0020, 0x000E, "UI", series);
    char buf[128];
    snprintf(buf, sizeof buf, "%d", inst);
    tb_str(&t, 0x0020, 0x0013, "IS", buf);
    /* position = origin + d * normal, plus an in-plane shift that must not matter */
    snprintf(buf, sizeof buf, "%.4f\\%.4f\\%.4f", 5.0, 3.0 * c - d * s, 3.0 * s + d * c);
    tb_str(&t, 0x0020, 0x0032, "DS", buf);
    snprintf(buf, sizeof buf, "1\\0\\0\\0\\%.4f\\%.4f", c, s);
    tb_str(&t, 0x0020, 0x0037, "DS", buf);
    tb_us(&t, 0x0028, 0x0002, 1);
    tb_str(&t, 0x0028, 0x0004, "CS", "MONOCHROME2");
    tb_us(&t, 0x0028, 0x0010, 4);
    tb_us(&t, 0x0028, 0x0011, cols);
    tb_str(&t, 0x0028, 0x0030, "DS", "0.5\\0.5");
    tb_us(&t, 0x0028, 0x0100, 16);
    tb_us(&t, 0x0028, 0x0101, 16);
    tb_us(&t, 0x0028, 0x0102, 15);
    tb_us(&t, 0x0028, 0x0103, 0);
    tb_hdr(&t, 0x7FE0, 0x0010, "OW", (uint32_t)(4 * cols * 2));
    for (int i = 0; i < 4 * cols; i++)
        tb_u16(&t, marker);
    write_file(name, t.b, t.n);
    free(t.b);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/agora-dicom-study-XXXXXX");
    assert_non_null(mkdtemp(dir));
    /* Series A: slices at 0, 2, 4, 8 (gap) written in scrambled name/instance order. */
    slice("c.dcm", "1.2.3.1", "1.2.3.1.1", 4, 4.0, 400, 4);
    slice("a.dcm", "1.2.3.1", "1.2.3.1.2", 1, 8.0, 800, 4);
    slice("d.dcm", "1.2.3.1", "1.2.3.1.3", 3, 0.0, 0, 4);
    slice("b.dcm", "1.2.3.1", "1.2.3.1.4", 2, 2.0, 200, 4);
    slice("e.dcm", "1.2.3.1", "1.2.3.1.4", 9, 2.0, 200, 4); /* same SOP as b.dcm */
    /* Series B: two slices at the same position, one with different columns. */
    char sub[96];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    slice("sub/x.dcm", "1.2.3.2", "1.2.3.2.1", 1, 1.0, 7, 4);
    slice("sub/y.dcm", "1.2.3.2", "1.2.3.2.2", 2, 1.0, 8, 6);
    write_file("notes.txt", "not dicom at all, just text\n", 28);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"a.dcm", "b.dcm",     "c.dcm",     "d.dcm",
                           "e.dcm", "sub/x.dcm", "sub/y.dcm", "notes.txt"};
    char path[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
    return 0;
}

static int has_warning(const agora__dicom_series *s, agora__dicom_warning_code code)
{
    for (uint32_t i = 0; i < s->n_warnings; i++)
        if (s->warnings[i].code == code)
            return 1;
    return 0;
}

static void test_scan_and_order(void **state)
{
    (void)state;
    const char *paths[1] = {dir};
    agora__dicom_scan *scan = NULL;
    agora__error err = {0};
    assert_int_equal(agora__dicom_scan_paths(paths, 1, NULL, &scan, &err), 0);
    assert_int_equal(scan->n_series, 2);
    assert_int_equal(scan->n_notes, 1); /* notes.txt */
    assert_non_null(strstr(scan->notes[0].path, "notes.txt"));
    assert_string_equal(scan->notes[0].reason, "not DICOM");
    const agora__dicom_series *a = &scan->series[0];
    assert_string_equal(a->series_uid, "1.2.3.1");
    assert_string_equal(a->modality, "CT");
    assert_int_equal(a->n_instances, 4); /* duplicate SOP dropped */
    assert_int_equal(a->n_frames, 4);
    assert_true(has_warning(a, AGORA__DICOM_WARN_DUPLICATE_SOP));
    assert_true(has_warning(a, AGORA__DICOM_WARN_GAP));
    assert_false(has_warning(a, AGORA__DICOM_WARN_DUPLICATE_POSITION));
    assert_true(a->decodable);
    assert_true(fabs(a->normal[1] + 0.6) < 1e-9 && fabs(a->normal[2] - 0.8) < 1e-9);
    double want[4] = {0, 2, 4, 8};
    for (int i = 0; i < 4; i++)
        assert_true(fabs(a->frames[i].distance - want[i]) < 1e-3);
    assert_true(fabs(a->median_spacing - 2.0) < 1e-3);
    for (uint32_t i = 0; i < a->n_warnings; i++)
        if (a->warnings[i].code == AGORA__DICOM_WARN_GAP) {
            assert_int_equal(a->warnings[i].frame_a, 2);
            assert_int_equal(a->warnings[i].frame_b, 3);
            assert_true(fabs(a->warnings[i].value - 4.0) < 1e-3);
        }
    /* Decode into one buffer: frames come out in position order. */
    agora__dicom_pixel_format fmt;
    assert_int_equal(agora__dicom_series_format(a, AGORA__DICOM_DECODE_NORMALIZED, &fmt, &err), 0);
    assert_int_equal(fmt.frame_bytes, 32);
    uint16_t *vol = malloc(4 * 32);
    assert_int_equal(agora__dicom_series_decode(a, AGORA__DICOM_DECODE_NORMALIZED, (uint8_t *)vol,
                                                4 * 32 - 1, NULL, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__dicom_series_decode(a, AGORA__DICOM_DECODE_NORMALIZED, (uint8_t *)vol,
                                                4 * 32, NULL, &err),
                     0);
    uint16_t markers[4] = {0, 200, 400, 800};
    for (int f = 0; f < 4; f++)
        for (int i = 0; i < 16; i++)
            assert_int_equal(vol[f * 16 + i], markers[f]);
    free(vol);
    /* Series B: same position twice and a different size: warned, not decodable. */
    const agora__dicom_series *b = &scan->series[1];
    assert_int_equal(b->n_frames, 2);
    assert_true(has_warning(b, AGORA__DICOM_WARN_DUPLICATE_POSITION));
    assert_true(has_warning(b, AGORA__DICOM_WARN_INCONSISTENT_GEOMETRY));
    assert_true(has_warning(b, AGORA__DICOM_WARN_INCONSISTENT_PIXELS));
    assert_false(b->decodable);
    uint8_t small[64];
    assert_int_equal(agora__dicom_series_decode(b, AGORA__DICOM_DECODE_NORMALIZED, small,
                                                sizeof small, NULL, &err),
                     AGORA_EINPUT);
    agora__dicom_scan_free(scan);
}

static void test_scan_limits(void **state)
{
    (void)state;
    agora__dicom_scan_options opt;
    agora__dicom_scan_options_default(&opt);
    opt.max_files = 3;
    const char *paths[1] = {dir};
    agora__dicom_scan *scan = NULL;
    agora__error err = {0};
    assert_int_equal(agora__dicom_scan_paths(paths, 1, &opt, &scan, &err), AGORA_ELIMIT);
    assert_null(scan);
    agora__dicom_scan_options_default(&opt);
    opt.max_depth = 1; /* the top folder only: sub/ is noted, not scanned */
    assert_int_equal(agora__dicom_scan_paths(paths, 1, &opt, &scan, &err), 0);
    assert_int_equal(scan->n_series, 1);
    agora__dicom_scan_free(scan);
    const char *missing[1] = {"/nonexistent/agora/path"};
    assert_int_equal(agora__dicom_scan_paths(missing, 1, NULL, &scan, &err), AGORA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_and_order),
        cmocka_unit_test(test_scan_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
