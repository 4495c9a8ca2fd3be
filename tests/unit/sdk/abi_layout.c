/*
 * ABI layout test: pins the size and the offset of every field of every struct that crosses the
 * plugin boundary (x86_64 / LP64). A change that moves a field breaks every plugin in the field;
 * if this test fails, the change is wrong — append new fields at the end instead (docs/abi.md).
 * Offsets were recorded from ABI 1.0 and must never change within major version 1; fields of a
 * later minor are pinned where they were appended (marked with the minor). The pins are one list,
 * sdk/abi_pins.h, which sdk/abi_layout_check.c also turns into _Static_asserts that fail the
 * build; this test prints which field moved and checks the AGORA_HAS macro at run time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "abi_pins.h"
#include "agora/agora.h"

typedef struct pin {
    const char *field;
    size_t actual;
    size_t pinned;
} pin;

#define PIN(s, f, off) {#s "." #f, offsetof(s, f), off},
static const pin pins[] = {AGORA__ABI_PINS(PIN)};

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
#define FLOOR(s, size) assert_true(sizeof(s) >= (size));
    AGORA__ABI_SIZE_FLOORS(FLOOR)
}

/* Error codes and enumeration values are part of the ABI. */
static void test_constants(void **state)
{
    (void)state;
    assert_int_equal(AGORA_ABI_VERSION_MAJOR, 1);
    assert_int_equal(AGORA_ABI_VERSION_MINOR, 1);
    assert_int_equal(AGORA_ABI_VERSION, 0x00010001u);
    assert_int_equal(AGORA_ABI_MAJOR(AGORA_ABI_VERSION), 1);
    /* A published extension id and its bound never change (org.agora.assets/1, since 1.1). */
    assert_string_equal(AGORA_EXT_ASSETS, "org.agora.assets/1");
    assert_int_equal(AGORA_ASSET_NAME_MAX, 128);
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
#define EXACT(s, size) assert_int_equal(sizeof(s), (size));
    AGORA__ABI_SIZES_1_1(EXACT)
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
