/* Unit tests: the plugin view grants only allowlisted, printable, bounded values and refuses
 * burned-in images; pseudonyms are recorded in the UID map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "deid.h"

static const uint8_t key[32] = {7};

typedef struct fake_el {
    uint32_t tag;
    const char *vr;
    const char *value; /* text, or bytes for binary VRs */
    size_t len;        /* 0: strlen(value) */
} fake_el;

typedef struct fake_ds {
    const fake_el *els;
    size_t n;
} fake_ds;

static int fake_get(void *ctx, uint32_t tag, char vr[3], const uint8_t **bytes, size_t *len)
{
    const fake_ds *ds = ctx;
    for (size_t i = 0; i < ds->n; i++)
        if (ds->els[i].tag == tag) {
            memcpy(vr, ds->els[i].vr, 3);
            *bytes = (const uint8_t *)ds->els[i].value;
            *len = ds->els[i].len ? ds->els[i].len : strlen(ds->els[i].value);
            return 1;
        }
    return 0;
}

#define TAG(g, e) (((uint32_t)(g) << 16) | (e))

/* Identity planted in the dataset: none of it may appear in a default view. */
static const char *const phi[] = {"DOE^JOHN",     "MRN123456",   "19600101",
                                  "20240102",     "ACC99",       "St Elsewhere",
                                  "VENDORSECRET", "1.2.3.4.5.6", "secret text"};

static const fake_el base_els[] = {
    {TAG(0x0008, 0x0016), "UI", "1.2.840.10008.5.1.4.1.1.2", 0},
    {TAG(0x0008, 0x0018), "UI", "1.2.3.4.5.6.3", 0},
    {TAG(0x0008, 0x0020), "DA", "20240102", 0},
    {TAG(0x0008, 0x0021), "DA", "20240105", 0},
    {TAG(0x0008, 0x0030), "TM", "101010", 0},
    {TAG(0x0008, 0x0050), "SH", "ACC99 ", 0},
    {TAG(0x0008, 0x0060), "CS", "CT", 0},
    {TAG(0x0008, 0x0080), "LO", "St Elsewhere", 0},
    {TAG(0x0008, 0x1030), "LO", "secret text", 0},
    {TAG(0x0009, 0x1001), "LO", "VENDORSECRET", 0},
    {TAG(0x0010, 0x0010), "PN", "DOE^JOHN", 0},
    {TAG(0x0010, 0x0020), "LO", "MRN123456", 0},
    {TAG(0x0010, 0x0030), "DA", "19600101", 0},
    {TAG(0x0010, 0x0040), "CS", "M ", 0},
    {TAG(0x0010, 0x1010), "AS", "064Y", 0},
    {TAG(0x0018, 0x0050), "DS", "1.25", 0},
    {TAG(0x0018, 0x1210), "SH", "B30\x01", 0}, /* control character: left out */
    {TAG(0x0020, 0x000D), "UI", "1.2.3.4.5.6.1", 0},
    {TAG(0x0020, 0x000E), "UI", "1.2.3.4.5.6.2", 0},
    {TAG(0x0020, 0x0032), "DS", "-10\\-20\\30.5", 0},
    {TAG(0x0028, 0x0010), "US", "\x00\x02", 2},
    {TAG(0x0028, 0x0011), "US", "\x00\x02", 2},
    {TAG(0x0028, 0x0030), "DS", "0.7\\0.7 ", 0},
    {TAG(0x0028, 0x0301), "CS", "NO", 0},
    {TAG(0x0028, 0x1052), "DS", "-1024", 0},
};

static const char *find_attr(const agora__deid_granted *v, const char *kw)
{
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->attrs[i].keyword, kw) == 0)
            return v->attrs[i].value;
    return NULL;
}

static void assert_no_phi(const agora__deid_granted *v)
{
    for (size_t i = 0; i < v->count; i++)
        for (size_t k = 0; k < sizeof phi / sizeof phi[0]; k++)
            assert_null(strstr(v->attrs[i].value, phi[k]));
    assert_null(strstr(v->study_uid, "1.2.3.4.5.6"));
    assert_null(strstr(v->series_uid, "1.2.3.4.5.6"));
    assert_null(strstr(v->instance_uid, "1.2.3.4.5.6"));
}

static void test_default_view(void **state)
{
    (void)state;
    fake_ds ds = {base_els, sizeof base_els / sizeof base_els[0]};
    agora__deid_granted v;
    agora__deid_uidmap *map = agora__deid_uidmap_new();
    agora__error err = {0};
    assert_int_equal(agora__deid_view(fake_get, &ds, key, NULL, 0, 0, map, &v, &err), 0);
    assert_string_equal(find_attr(&v, "Rows"), "512");
    assert_string_equal(find_attr(&v, "Modality"), "CT");
    assert_string_equal(find_attr(&v, "PixelSpacing"), "0.7\\0.7");
    assert_string_equal(find_attr(&v, "ImagePositionPatient"), "-10\\-20\\30.5");
    assert_string_equal(find_attr(&v, "RescaleIntercept"), "-1024");
    assert_null(find_attr(&v, "ConvolutionKernel")); /* not printable */
    assert_null(find_attr(&v, "PatientName"));
    assert_null(find_attr(&v, "PatientAge")); /* needs rtnPatCharsOpt */
    assert_null(find_attr(&v, "StudyDate"));
    assert_no_phi(&v);
    /* Pseudonyms map back to the real UIDs. */
    agora__deid_uid_kind kind;
    assert_string_equal(agora__deid_uidmap_real(map, v.study_uid, &kind), "1.2.3.4.5.6.1");
    assert_int_equal(kind, AGORA__DEID_UID_STUDY);
    assert_string_equal(agora__deid_uidmap_real(map, v.series_uid, &kind), "1.2.3.4.5.6.2");
    assert_string_equal(agora__deid_uidmap_real(map, v.instance_uid, &kind), "1.2.3.4.5.6.3");
    assert_int_equal(kind, AGORA__DEID_UID_INSTANCE);
    agora__deid_granted_free(&v);
    agora__deid_uidmap_free(map);
}

static void test_options_view(void **state)
{
    (void)state;
    fake_ds ds = {base_els, sizeof base_els / sizeof base_els[0]};
    agora__deid_granted v;
    const char *pat[] = {"rtnPatCharsOpt"};
    assert_int_equal(agora__deid_view(fake_get, &ds, key, pat, 1, 0, NULL, &v, NULL), 0);
    assert_string_equal(find_attr(&v, "PatientAge"), "064Y");
    assert_string_equal(find_attr(&v, "PatientSex"), "M");
    assert_null(find_attr(&v, "PatientName"));
    assert_no_phi(&v);
    agora__deid_granted_free(&v);

    /* Modified dates: shifted, interval kept, real date absent; times of day kept. */
    const char *mod[] = {"rtnLongModifDatesOpt"};
    assert_int_equal(agora__deid_view(fake_get, &ds, key, mod, 1, 0, NULL, &v, NULL), 0);
    const char *sd = find_attr(&v, "StudyDate"), *se = find_attr(&v, "SeriesDate");
    assert_non_null(sd);
    assert_non_null(se);
    assert_string_not_equal(sd, "20240102");
    char back[16];
    int days = agora__deid_date_offset(key, "MRN123456", 9);
    assert_int_equal(agora__deid_shift_dates("20240102", 8, days, back, sizeof back), 0);
    assert_string_equal(sd, back);
    assert_int_equal(agora__deid_shift_dates("20240105", 8, days, back, sizeof back), 0);
    assert_string_equal(se, back);
    assert_string_equal(find_attr(&v, "StudyTime"), "101010");
    assert_no_phi(&v);
    agora__deid_granted_free(&v);

    /* Options without a view group are refused, naming the option. */
    const char *uids[] = {"rtnUIDsOpt"};
    agora__error err = {0};
    assert_int_equal(agora__deid_view(fake_get, &ds, key, uids, 1, 0, NULL, &v, &err),
                     AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "rtnUIDsOpt"));
    const char *unknown[] = {"giveMeEverything"};
    assert_int_equal(agora__deid_view(fake_get, &ds, key, unknown, 1, 0, NULL, &v, &err),
                     AGORA_EINVAL);
}

static void test_burned_in(void **state)
{
    (void)state;
    fake_el els[sizeof base_els / sizeof base_els[0]];
    memcpy(els, base_els, sizeof els);
    fake_ds ds = {els, sizeof els / sizeof els[0]};
    agora__deid_granted v;
    agora__error err = {0};
    for (size_t i = 0; i < ds.n; i++)
        if (els[i].tag == TAG(0x0028, 0x0301))
            els[i].value = "YES ";
    assert_int_equal(agora__deid_view(fake_get, &ds, key, NULL, 0, 0, NULL, &v, &err),
                     AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "burned-in"));
    assert_int_equal(
        agora__deid_view(fake_get, &ds, key, NULL, 0, AGORA__DEID_ALLOW_BURNED_IN, NULL, &v, &err),
        0);
    agora__deid_granted_free(&v);
    /* Ultrasound without the attribute: refused by default. */
    for (size_t i = 0; i < ds.n; i++) {
        if (els[i].tag == TAG(0x0028, 0x0301))
            els[i].tag = TAG(0x0028, 0x0300); /* hide it */
        if (els[i].tag == TAG(0x0008, 0x0060))
            els[i].value = "US";
    }
    assert_int_equal(agora__deid_view(fake_get, &ds, key, NULL, 0, 0, NULL, &v, &err),
                     AGORA_EINPUT);
    assert_non_null(strstr(err.msg, "US image"));
    /* CT without the attribute is fine. */
    for (size_t i = 0; i < ds.n; i++)
        if (els[i].tag == TAG(0x0008, 0x0060))
            els[i].value = "CT";
    assert_int_equal(agora__deid_view(fake_get, &ds, key, NULL, 0, 0, NULL, &v, &err), 0);
    agora__deid_granted_free(&v);
}

static void test_bounds(void **state)
{
    (void)state;
    static char longval[400];
    memset(longval, '1', sizeof longval - 1);
    fake_el els[] = {
        {TAG(0x0008, 0x0060), "CT", "CT", 0},       /* wrong VR: Modality must be CS, so left out */
        {TAG(0x0018, 0x0050), "DS", longval, 0},    /* too long: left out, never truncated */
        {TAG(0x0018, 0x0060), "DS", "\xff\xfe", 0}, /* invalid UTF-8 */
        {TAG(0x0028, 0x0010), "US", "\x01", 1},     /* truncated binary */
        {TAG(0x0028, 0x0011), "US", "\x00\x01", 2},
    };
    fake_ds ds = {els, sizeof els / sizeof els[0]};
    agora__deid_granted v;
    assert_int_equal(agora__deid_view(fake_get, &ds, key, NULL, 0, 0, NULL, &v, NULL), 0);
    assert_int_equal(v.count, 1);
    assert_string_equal(find_attr(&v, "Columns"), "256");
    assert_string_equal(v.study_uid, "");
    agora__deid_granted_free(&v);
    assert_true(agora__deid_view_group_size(NULL) > 40);
    assert_int_equal(agora__deid_view_group_size("rtnPatCharsOpt"), 6);
    assert_int_equal(agora__deid_view_group_size("rtnUIDsOpt"), -1);
}

/* Granted text attributes are decoded under the dataset's Specific Character Set; a value that
 * does not decode in full is left out. */
static void test_charset_view(void **state)
{
    (void)state;
    const char *dev[] = {"rtnDevIdOpt"};
    agora__deid_granted v;
    static const fake_el latin[] = {
        {TAG(0x0008, 0x0005), "CS", "ISO_IR 100", 0},
        {TAG(0x0008, 0x0060), "CS", "CT", 0},
        {TAG(0x0008, 0x0070), "LO", "Sch\xF6n ", 0},
        {TAG(0x0008, 0x1010), "SH", "\x1B$BX", 0}, /* ESC is no escape in ISO_IR 100 */
        {TAG(0x0028, 0x0301), "CS", "NO", 0},
    };
    fake_ds ds = {latin, sizeof latin / sizeof latin[0]};
    assert_int_equal(agora__deid_view(fake_get, &ds, key, dev, 1, 0, NULL, &v, NULL), 0);
    assert_string_equal(find_attr(&v, "Manufacturer"), "Sch\xC3\xB6n");
    assert_null(find_attr(&v, "StationName"));
    agora__deid_granted_free(&v);
    static const fake_el jis[] = {
        {TAG(0x0008, 0x0005), "CS", "\\ISO 2022 IR 87", 0},
        {TAG(0x0008, 0x0060), "CS", "CT", 0},
        {TAG(0x0008, 0x0070), "LO", "\x1B$B;3ED\x1B(B", 0},
        {TAG(0x0008, 0x1090), "LO", "\x1B$B;", 0}, /* truncated two-byte code */
        {TAG(0x0028, 0x0301), "CS", "NO", 0},
    };
    fake_ds ds2 = {jis, sizeof jis / sizeof jis[0]};
    assert_int_equal(agora__deid_view(fake_get, &ds2, key, dev, 1, 0, NULL, &v, NULL), 0);
    assert_string_equal(find_attr(&v, "Manufacturer"), "山田");
    assert_null(find_attr(&v, "ManufacturerModelName"));
    agora__deid_granted_free(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_charset_view), cmocka_unit_test(test_default_view),
        cmocka_unit_test(test_options_view), cmocka_unit_test(test_burned_in),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
