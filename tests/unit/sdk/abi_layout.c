/*
 * ABI layout test: pins the size and the offset of every field of every struct that crosses the
 * plugin boundary (x86_64 / LP64). A change that moves a field breaks every plugin in the field;
 * if this test fails, the change is wrong — append new fields at the end instead (docs/abi.md).
 * Offsets were recorded from ABI 1.0 and must never change within major version 1; fields of a
 * later minor are pinned where they were appended (marked with the minor).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "agora/agora.h"

typedef struct pin {
    const char *field;
    size_t actual;
    size_t pinned;
} pin;

static const pin pins[] = {
    {"agora_frame.struct_size", offsetof(agora_frame, struct_size), 0},
    {"agora_frame.index", offsetof(agora_frame, index), 4},
    {"agora_frame.data", offsetof(agora_frame, data), 8},
    {"agora_frame.size_bytes", offsetof(agora_frame, size_bytes), 16},
    {"agora_frame.position", offsetof(agora_frame, position), 24},
    {"agora_frame.orientation", offsetof(agora_frame, orientation), 48},
    {"agora_frame.sop_instance_uid", offsetof(agora_frame, sop_instance_uid), 96},
    {"agora_frame.rescale_slope (1.1)", offsetof(agora_frame, rescale_slope), 104},
    {"agora_frame.rescale_intercept (1.1)", offsetof(agora_frame, rescale_intercept), 112},
    {"agora_image.struct_size", offsetof(agora_image, struct_size), 0},
    {"agora_image.rows", offsetof(agora_image, rows), 4},
    {"agora_image.columns", offsetof(agora_image, columns), 8},
    {"agora_image.frames", offsetof(agora_image, frames), 12},
    {"agora_image.samples_per_pixel", offsetof(agora_image, samples_per_pixel), 16},
    {"agora_image.pixel_type", offsetof(agora_image, pixel_type), 20},
    {"agora_image.bits_stored", offsetof(agora_image, bits_stored), 24},
    {"agora_image.photometric", offsetof(agora_image, photometric), 28},
    {"agora_image.pixel_spacing", offsetof(agora_image, pixel_spacing), 32},
    {"agora_image.slice_thickness", offsetof(agora_image, slice_thickness), 48},
    {"agora_image.spacing_between_slices", offsetof(agora_image, spacing_between_slices), 56},
    {"agora_image.rescale_slope", offsetof(agora_image, rescale_slope), 64},
    {"agora_image.rescale_intercept", offsetof(agora_image, rescale_intercept), 72},
    {"agora_image.rescale_type", offsetof(agora_image, rescale_type), 80},
    {"agora_image.modality", offsetof(agora_image, modality), 88},
    {"agora_image.study_uid", offsetof(agora_image, study_uid), 96},
    {"agora_image.series_uid", offsetof(agora_image, series_uid), 104},
    {"agora_finding.struct_size", offsetof(agora_finding, struct_size), 0},
    {"agora_finding.scheme", offsetof(agora_finding, scheme), 8},
    {"agora_finding.code", offsetof(agora_finding, code), 16},
    {"agora_finding.meaning", offsetof(agora_finding, meaning), 24},
    {"agora_finding.confidence", offsetof(agora_finding, confidence), 32},
    {"agora_finding.frame", offsetof(agora_finding, frame), 40},
    {"agora_finding.region", offsetof(agora_finding, region), 44},
    {"agora_measurement.struct_size", offsetof(agora_measurement, struct_size), 0},
    {"agora_measurement.name", offsetof(agora_measurement, name), 8},
    {"agora_measurement.value", offsetof(agora_measurement, value), 16},
    {"agora_measurement.unit", offsetof(agora_measurement, unit), 24},
    {"agora_measurement.frame", offsetof(agora_measurement, frame), 32},
    {"agora_measurement.region", offsetof(agora_measurement, region), 36},
    {"agora_measurement.code_scheme", offsetof(agora_measurement, code_scheme), 40},
    {"agora_measurement.code", offsetof(agora_measurement, code), 48},
    {"agora_measurement.code_meaning", offsetof(agora_measurement, code_meaning), 56},
    {"agora_region.struct_size", offsetof(agora_region, struct_size), 0},
    {"agora_region.kind", offsetof(agora_region, kind), 4},
    {"agora_region.frame", offsetof(agora_region, frame), 8},
    {"agora_region.points", offsetof(agora_region, points), 16},
    {"agora_region.n_points", offsetof(agora_region, n_points), 24},
    {"agora_region.label", offsetof(agora_region, label), 32},
    {"agora_mask.struct_size", offsetof(agora_mask, struct_size), 0},
    {"agora_mask.first_frame", offsetof(agora_mask, first_frame), 4},
    {"agora_mask.n_frames", offsetof(agora_mask, n_frames), 8},
    {"agora_mask.rows", offsetof(agora_mask, rows), 12},
    {"agora_mask.columns", offsetof(agora_mask, columns), 16},
    {"agora_mask.bits", offsetof(agora_mask, bits), 20},
    {"agora_mask.labels", offsetof(agora_mask, labels), 24},
    {"agora_mask.label", offsetof(agora_mask, label), 32},
    {"agora_host.struct_size", offsetof(agora_host, struct_size), 0},
    {"agora_host.abi_version", offsetof(agora_host, abi_version), 4},
    {"agora_host.log", offsetof(agora_host, log), 8},
    {"agora_host.get_extension", offsetof(agora_host, get_extension), 16},
    {"agora_host.frame", offsetof(agora_host, frame), 24},
    {"agora_host.attr_count", offsetof(agora_host, attr_count), 32},
    {"agora_host.attr_at", offsetof(agora_host, attr_at), 40},
    {"agora_host.attr_get", offsetof(agora_host, attr_get), 48},
    {"agora_host.add_finding", offsetof(agora_host, add_finding), 56},
    {"agora_host.add_measurement", offsetof(agora_host, add_measurement), 64},
    {"agora_host.add_region", offsetof(agora_host, add_region), 72},
    {"agora_host.add_mask", offsetof(agora_host, add_mask), 80},
    {"agora_host.set_summary", offsetof(agora_host, set_summary), 88},
    {"agora_host.set_error", offsetof(agora_host, set_error), 96},
    {"agora_host.progress", offsetof(agora_host, progress), 104},
    {"agora_host.cancelled", offsetof(agora_host, cancelled), 112},
    {"agora_plugin.struct_size", offsetof(agora_plugin, struct_size), 0},
    {"agora_plugin.abi_version", offsetof(agora_plugin, abi_version), 4},
    {"agora_plugin.id", offsetof(agora_plugin, id), 8},
    {"agora_plugin.version", offsetof(agora_plugin, version), 16},
    {"agora_plugin.init", offsetof(agora_plugin, init), 24},
    {"agora_plugin.process", offsetof(agora_plugin, process), 32},
    {"agora_plugin.fini", offsetof(agora_plugin, fini), 40},
    {"agora_plugin.get_extension", offsetof(agora_plugin, get_extension), 48},
    /* extension org.agora.triage/1 (1.1): a published revision never changes */
    {"agora_triage_ext.struct_size (1.1)", offsetof(agora_triage_ext, struct_size), 0},
    {"agora_triage_ext.set_urgent (1.1)", offsetof(agora_triage_ext, set_urgent), 8},
};

static void test_offsets(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof pins / sizeof pins[0]; i++) {
        if (pins[i].actual != pins[i].pinned)
            print_error("%s moved: offset %zu, pinned %zu\n", pins[i].field, pins[i].actual,
                        pins[i].pinned);
        assert_int_equal(pins[i].actual, pins[i].pinned);
    }
}

/* Sizes may only grow (a new minor appends fields); v1.0 sizes are the floor. */
static void test_sizes_only_grow(void **state)
{
    (void)state;
    assert_true(sizeof(agora_frame) >= 104);
    assert_true(sizeof(agora_image) >= 112);
    assert_true(sizeof(agora_finding) >= 48);
    assert_true(sizeof(agora_measurement) >= 64);
    assert_true(sizeof(agora_region) >= 40);
    assert_true(sizeof(agora_mask) >= 40);
    assert_true(sizeof(agora_host) >= 120);
    assert_true(sizeof(agora_plugin) >= 56);
    assert_int_equal(sizeof(agora_triage_ext), 16);
}

/* Error codes and enumeration values are part of the ABI. */
static void test_constants(void **state)
{
    (void)state;
    assert_int_equal(AGORA_ABI_VERSION_MAJOR, 1);
    assert_int_equal(AGORA_ABI_VERSION_MINOR, 1);
    assert_int_equal(AGORA_ABI_VERSION, 0x00010001u);
    assert_int_equal(AGORA_ABI_MAJOR(AGORA_ABI_VERSION), 1);
    assert_int_equal(AGORA_ABI_MINOR(0x00010002u), 2);
    assert_int_equal(AGORA_EINVAL, -1);
    assert_int_equal(AGORA_ENOMEM, -2);
    assert_int_equal(AGORA_ELIMIT, -3);
    assert_int_equal(AGORA_EUNSUPPORTED, -4);
    assert_int_equal(AGORA_ECANCELLED, -5);
    assert_int_equal(AGORA_EINPUT, -6);
    assert_int_equal(AGORA_EVERSION, -7);
    assert_int_equal(AGORA_EINTERNAL, -8);
    assert_int_equal(AGORA_ESTATE, -9);
    assert_int_equal(AGORA_PIXEL_U8, 1);
    assert_int_equal(AGORA_PIXEL_F64, 8);
    assert_int_equal(AGORA_PHOTOMETRIC_RGB, 3);
    assert_int_equal(AGORA_REGION_POLYGON, 3);
    assert_int_equal(AGORA_NONE, -1);
    assert_string_equal(AGORA_PLUGIN_ENTRY_SYMBOL, "agora_plugin_entry");
}

/* AGORA_HAS must say no for a field beyond what an older writer's struct_size covers. */
static void test_has_macro(void **state)
{
    (void)state;
    agora_host h;
    memset(&h, 0, sizeof h);
    h.struct_size = (uint32_t)offsetof(agora_host, progress);
    assert_true(AGORA_HAS(&h, agora_host, set_error));
    assert_false(AGORA_HAS(&h, agora_host, progress));
    h.struct_size = sizeof h;
    assert_true(AGORA_HAS(&h, agora_host, cancelled));
    const agora_host *none = NULL;
    assert_false(AGORA_HAS(none, agora_host, log));
    /* A frame handed to a 1.0 plugin reports the 1.0 size: the 1.1 rescale is not there. */
    agora_frame f;
    memset(&f, 0, sizeof f);
    f.struct_size = 104;
    assert_true(AGORA_HAS(&f, agora_frame, sop_instance_uid));
    assert_false(AGORA_HAS(&f, agora_frame, rescale_slope));
    f.struct_size = sizeof f;
    assert_true(AGORA_HAS(&f, agora_frame, rescale_intercept));
}

/* 1.1 sizes exactly (a later minor may grow them; then update these with the new pins). */
static void test_sizes_1_1(void **state)
{
    (void)state;
    assert_int_equal(sizeof(agora_frame), 120);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offsets),   cmocka_unit_test(test_sizes_only_grow),
        cmocka_unit_test(test_constants), cmocka_unit_test(test_has_macro),
        cmocka_unit_test(test_sizes_1_1),
    };
    return cmocka_run_group_tests_name("abi_layout", tests, NULL, NULL);
}
