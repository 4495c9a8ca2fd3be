/* Unit tests of the results module: validator (field-pointing messages), UCUM and UID syntax,
 * re-identification, storage (masks, first writer wins, listing) and the FHIR mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "results.h"
#include "sample_result.h"

static uint8_t mask_buf[32]; /* 4x4x2 at 8 bits */
static char mask_sha[65];

/* The sample with the mask placeholder replaced by the real mask digest. */
static json_t *sample(void)
{
    for (size_t i = 0; i < sizeof mask_buf; i++)
        mask_buf[i] = (uint8_t)(i % 3 == 0);
    uint8_t h[32];
    agora__sha256(mask_buf, sizeof mask_buf, h);
    agora__hex(h, 32, mask_sha);
    json_error_t je;
    json_t *doc = json_loads(sample_worker_result, 0, &je);
    if (doc == NULL)
        fail_msg("sample does not parse: %s", je.text);
    json_t *m = json_object_get(json_array_get(json_object_get(doc, "regions"), 3), "mask");
    json_object_set_new(m, "sha256", json_string(mask_sha));
    return doc;
}

static const char *const sop[] = {"1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2",
                                  "1.2.826.0.1.3680043.8.498.3", "1.2.826.0.1.3680043.8.498.4"};
static const char study_uid[] = "1.2.826.0.1.3680043.8.498.100";
static const char inv_id[] = "0192f0c4a1b27c3d8e9fa0b1c2d3e4f5";

static json_t *stored(const char *id)
{
    json_t *w = sample();
    agora__results_reident ri = {.invocation_id = id,
                                 .study_uid = study_uid,
                                 .series_uid = "1.2.826.0.1.3680043.8.498.101",
                                 .frame_sop_uids = sop,
                                 .n_frames = 4,
                                 .created_unix_ms = 1794744000123ULL};
    json_t *s = NULL;
    agora__error err = {0};
    if (agora__results_reidentify(w, &ri, &s, &err) != 0)
        fail_msg("reidentify: %s", err.msg);
    json_decref(w);
    return s;
}

static void test_valid_sample(void **state)
{
    (void)state;
    json_t *doc = sample();
    agora__error err = {0};
    assert_int_equal(agora__results_validate(doc, AGORA__RESULT_WORKER, &err), 0);
    /* The worker form is not a stored result. */
    assert_int_not_equal(agora__results_validate(doc, AGORA__RESULT_STORED, &err), 0);
    assert_non_null(strstr(err.msg, "/invocation_id"));
    json_decref(doc);
    json_t *s = stored(inv_id);
    assert_int_equal(agora__results_validate(s, AGORA__RESULT_STORED, &err), 0);
    assert_string_equal(json_string_value(json_object_get(s, "created")),
                        "2026-11-15T12:00:00.123Z");
    /* frames 0,1,2,3 are referenced (box, point, polygon/finding, mask 2..3) */
    assert_int_equal(json_array_size(json_object_get(s, "frames")), 4);
    /* A stored result must resolve every frame it references. */
    json_array_remove(json_object_get(s, "frames"), 2);
    assert_int_not_equal(agora__results_validate(s, AGORA__RESULT_STORED, &err), 0);
    assert_non_null(strstr(err.msg, "/frames: frame 2 is referenced"));
    json_object_set_new(s, "created", json_string("2026-11-15 12:00"));
    assert_int_not_equal(agora__results_validate(s, AGORA__RESULT_STORED, &err), 0);
    assert_non_null(strstr(err.msg, "/created:"));
    json_decref(s);
}

typedef struct mutation {
    const char *path;   /* JSON pointer into the sample (object keys / array indices) */
    const char *value;  /* JSON text to set, or NULL to delete */
    const char *expect; /* prefix of the error message */
} mutation;

static json_t *walk(json_t *doc, const char *path, char *last, size_t lastsz)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    char *save = NULL, *tok = strtok_r(buf + 1, "/", &save);
    json_t *cur = doc;
    while (tok) {
        char *next = strtok_r(NULL, "/", &save);
        if (next == NULL) {
            snprintf(last, lastsz, "%s", tok);
            return cur;
        }
        cur = json_is_array(cur) ? json_array_get(cur, strtoul(tok, NULL, 10))
                                 : json_object_get(cur, tok);
        tok = next;
    }
    return NULL;
}

static void test_mutations(void **state)
{
    (void)state;
    static const mutation m[] = {
        {"/schema", "\"agora.result/2\"", "/schema:"},
        {"/plugin/id", "\"bad id\"", "/plugin/id:"},
        {"/job_id", "-1", "/job_id:"},
        {"/status", "\"exploded\"", "/status:"},
        {"/error", "\"x\"", "/error:"},
        {"/extra", "1", "/: unknown field 'extra'"},
        {"/findings/0/confidence", "1.5", "/findings/0/confidence:"},
        {"/findings/0/confidence", "\"0.5\"", "/findings/0/confidence:"},
        {"/findings/1/code/meaning", "\"\"", "/findings/1/code/meaning:"},
        {"/findings/1/code/meaning", "\"a\\u0000b\"", "/findings/1/code/meaning:"},
        {"/findings/1/code/meaning", "\"a\\u0007b\"", "/findings/1/code/meaning:"},
        {"/findings/1/code/code", "\"has space\"", "/findings/1/code/code:"},
        {"/findings/0/region", "9", "/findings/0/region:"},
        {"/findings/0/frame", "70000", "/findings/0/frame:"},
        {"/findings/0/frame", "1.5", "/findings/0/frame:"},
        {"/measurements/0/unit", "\"milli litre\"", "/measurements/0/unit:"},
        {"/measurements/0/unit", "\"mL)\"", "/measurements/0/unit:"},
        {"/measurements/0/value", "1e16", "/measurements/0/value:"},
        {"/measurements/1/name", NULL, "/measurements/1/name:"},
        {"/regions/0/points", "[[1,2],[3,4]]", "/regions/0/points:"},
        {"/regions/0/points/1", "[1]", "/regions/0/points/1:"},
        {"/regions/0/points/1/0", "1e7", "/regions/0/points/1/0:"},
        {"/regions/1/id", "1", "/regions/1/id:"},
        {"/regions/1/kind", "\"circle\"", "/regions/1/kind:"},
        {"/regions/1/mask", "{}", "/regions/1/mask:"},
        {"/regions/3/mask", NULL, "/regions/3/mask:"},
        {"/regions/3/mask/bits", "4", "/regions/3/mask/bits:"},
        {"/regions/3/mask/sha256", "\"ABCDEF\"", "/regions/3/mask/sha256:"},
        {"/regions/3/frame", "9", "/regions/3/mask:"},
        {"/metrics/wall_ms", "-3", "/metrics/wall_ms:"},
        {"/summary", "7", "/summary:"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        json_t *doc = sample();
        char last[64];
        json_t *parent = walk(doc, m[i].path, last, sizeof last);
        assert_non_null(parent);
        if (m[i].value == NULL) {
            if (json_is_array(parent))
                json_array_remove(parent, strtoul(last, NULL, 10));
            else
                json_object_del(parent, last);
        } else {
            json_error_t je;
            json_t *v = json_loads(m[i].value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
            assert_non_null(v);
            if (json_is_array(parent))
                json_array_set_new(parent, strtoul(last, NULL, 10), v);
            else
                json_object_set_new(parent, last, v);
        }
        agora__error err = {0};
        int rc = agora__results_validate(doc, AGORA__RESULT_WORKER, &err);
        if (rc == 0 || strncmp(err.msg, m[i].expect, strlen(m[i].expect)) != 0)
            fail_msg("mutation %zu (%s): rc=%d msg='%s' expected '%s'", i, m[i].path, rc, err.msg,
                     m[i].expect);
        json_decref(doc);
    }
}

static void test_failed_result(void **state)
{
    (void)state;
    json_error_t je;
    json_t *doc = json_loads("{\"schema\":\"agora.result/1\",\"plugin\":{\"id\":\"p\",\"version\":"
                             "\"1\"},\"job_id\":1,\"status\":\"timeout\",\"error\":\"took too "
                             "long\",\"metrics\":{\"wall_ms\":5}}",
                             0, &je);
    agora__error err = {0};
    assert_int_equal(agora__results_validate(doc, AGORA__RESULT_WORKER, &err), 0);
    json_object_del(doc, "error");
    assert_int_not_equal(agora__results_validate(doc, AGORA__RESULT_WORKER, &err), 0);
    assert_non_null(strstr(err.msg, "/error: is required"));
    json_object_set_new(doc, "error", json_string("x"));
    json_object_set_new(doc, "findings", json_pack("[{}]"));
    assert_int_not_equal(agora__results_validate(doc, AGORA__RESULT_WORKER, &err), 0);
    json_decref(doc);
}

static void test_ucum_uid(void **state)
{
    (void)state;
    const char *good[] = {
        "mm",      "mL",     "mm2",    "mm3",     "1",      "%",   "/min", "mL/min/{1.73_m2}",
        "10*3/uL", "mm[Hg]", "[in_i]", "{score}", "kg.m-2", "Cel", "g/dL", "[hnsf'U]",
        "(m.s)/s2"};
    const char *bad[] = {"",  "milli litre",         "mL)",  "m//s", "{open", "[x", "m-", "mL.",
                         "é", "(((((((((m)))))))))", "a{b}c"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!agora__results_ucum_valid(good[i]))
            fail_msg("UCUM '%s' refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (agora__results_ucum_valid(bad[i]))
            fail_msg("UCUM '%s' accepted", bad[i]);
    assert_true(agora__results_uid_valid("1.2.840.10008.1.2"));
    assert_true(agora__results_uid_valid("0.1"));
    assert_false(agora__results_uid_valid("1.02"));
    assert_false(agora__results_uid_valid("1..2"));
    assert_false(agora__results_uid_valid("1.2."));
    assert_false(agora__results_uid_valid("1.a"));
    char longuid[70];
    memset(longuid, '1', 65);
    longuid[65] = '\0';
    assert_false(agora__results_uid_valid(longuid));
}

static void test_reidentify_errors(void **state)
{
    (void)state;
    json_t *w = sample();
    agora__results_reident ri = {.invocation_id = inv_id,
                                 .study_uid = study_uid,
                                 .series_uid = "1.2.3",
                                 .frame_sop_uids = sop,
                                 .n_frames = 3};
    json_t *s = NULL;
    agora__error err = {0};
    /* frame 3 is referenced but only 3 frames were given */
    assert_int_not_equal(agora__results_reidentify(w, &ri, &s, &err), 0);
    ri.n_frames = 4;
    ri.study_uid = "not-a-uid";
    assert_int_not_equal(agora__results_reidentify(w, &ri, &s, &err), 0);
    ri.study_uid = study_uid;
    ri.invocation_id = "xyz";
    assert_int_not_equal(agora__results_reidentify(w, &ri, &s, &err), 0);
    assert_non_null(strstr(err.msg, "/invocation_id"));
    assert_null(s);
    json_decref(w);
}

static void rmrf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_store_list_load(void **state)
{
    (void)state;
    char home[] = "/tmp/agora-results-XXXXXX";
    assert_non_null(mkdtemp(home));
    agora__error err = {0};
    json_t *s1 = stored(inv_id);
    agora__results_mask mk = {mask_buf, sizeof mask_buf};
    /* masks are required and must match */
    assert_int_not_equal(agora__results_store(home, s1, NULL, 0, NULL, &err), 0);
    assert_non_null(strstr(err.msg, "/regions/3/mask"));
    agora__results_mask shortm = {mask_buf, sizeof mask_buf - 1};
    assert_int_not_equal(agora__results_store(home, s1, &shortm, 1, NULL, &err), 0);
    agora__results_mask two[2] = {mk, {(const uint8_t *)"x", 1}};
    assert_int_not_equal(agora__results_store(home, s1, two, 2, NULL, &err), 0);
    int already = -1;
    assert_int_equal(agora__results_store(home, s1, &mk, 1, &already, &err), 0);
    assert_int_equal(already, 0);
    assert_int_equal(agora__results_store(home, s1, &mk, 1, &already, &err), 0);
    assert_int_equal(already, 1);
    char path[4096];
    assert_int_equal(agora__results_mask_path(home, study_uid, mask_sha, path, sizeof path, &err),
                     0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, sizeof mask_buf);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_t *s2 = stored("0192f0c4a1b27c3d8e9fa0b1c2d3e4f0");
    json_object_set_new(s2, "created", json_string("2026-11-15T11:00:00Z"));
    assert_int_equal(agora__results_store(home, s2, &mk, 1, NULL, &err), 0);
    json_t *list = NULL;
    assert_int_equal(agora__results_list(home, study_uid, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_true(json_equal(json_array_get(list, 0), s2)); /* older first */
    assert_true(json_equal(json_array_get(list, 1), s1));
    json_decref(list);
    assert_int_equal(agora__results_list(home, "1.2.3.4.5", &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    json_t *studies = NULL;
    assert_int_equal(agora__results_studies(home, &studies, &err), 0);
    assert_int_equal(json_array_size(studies), 1);
    assert_string_equal(json_string_value(json_array_get(studies, 0)), study_uid);
    json_decref(studies);
    /* a stored file edited into an invalid result is refused on load */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    char file[4200];
    snprintf(file, sizeof file, "%s/%s.json", dir, inv_id);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("{\"schema\":\"agora.result/1\"}", f);
    fclose(f);
    json_t *doc = NULL;
    assert_int_not_equal(agora__results_load(home, study_uid, inv_id, &doc, &err), 0);
    assert_non_null(strstr(err.msg, "/plugin"));
    assert_int_not_equal(agora__results_list(home, study_uid, &list, &err), 0);
    json_decref(s1);
    json_decref(s2);
    rmrf(home);
}

static void test_fhir_mapping(void **state)
{
    (void)state;
    json_t *s = stored(inv_id);
    json_t *failed =
        json_pack("{s:s,s:{s:s,s:s},s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:[]}", "schema", "agora.result/1",
                  "plugin", "id", "p", "version", "1", "job_id", 2, "status", "timeout", "error",
                  "slow", "invocation_id", "0192f0c4a1b27c3d8e9fa0b1c2d3e4ff", "study_uid",
                  study_uid, "series_uid", "1.2.3", "created", "2026-11-15T12:00:00Z", "frames");
    json_t *arr = json_pack("[o,o]", s, failed);
    json_t *b = NULL;
    agora__error err = {0};
    assert_int_equal(agora__results_fhir_bundle(arr, &b, &err), 0);
    assert_string_equal(json_string_value(json_object_get(b, "type")), "collection");
    json_t *entries = json_object_get(b, "entry");
    /* report + 4 regions + 2 findings + 2 measures */
    assert_int_equal(json_array_size(entries), 1 + 4 + 2 + 2);
    json_t *dr = json_object_get(json_array_get(entries, 0), "resource");
    assert_string_equal(json_string_value(json_object_get(dr, "resourceType")), "DiagnosticReport");
    assert_string_equal(json_string_value(json_object_get(dr, "status")), "final");
    assert_string_equal(json_string_value(json_object_get(json_array_get(entries, 0), "fullUrl")),
                        "urn:uuid:0192f0c4-a1b2-7c3d-8e9f-a0b1c2d3e4f5");
    json_t *is =
        json_object_get(json_array_get(json_object_get(dr, "imagingStudy"), 0), "identifier");
    assert_string_equal(json_string_value(json_object_get(is, "value")),
                        "urn:oid:1.2.826.0.1.3680043.8.498.100");
    assert_int_equal(json_array_size(json_object_get(dr, "result")), 8);
    assert_string_equal(json_string_value(json_object_get(dr, "conclusion")), "One nodule.");
    json_t *obs = json_object_get(json_array_get(entries, 5), "resource");
    json_t *vcc = json_object_get(obs, "valueCodeableConcept");
    json_t *coding = json_array_get(json_object_get(vcc, "coding"), 0);
    assert_string_equal(json_string_value(json_object_get(coding, "system")),
                        "http://snomed.info/sct");
    assert_string_equal(json_string_value(json_object_get(coding, "code")), "27925004");
    json_t *comp = json_array_get(json_object_get(obs, "component"), 0);
    assert_true(json_number_value(
                    json_object_get(json_object_get(comp, "valueQuantity"), "value")) == 0.91);
    json_t *m = json_object_get(json_array_get(entries, 7), "resource");
    json_t *vq = json_object_get(m, "valueQuantity");
    assert_string_equal(json_string_value(json_object_get(vq, "system")),
                        "http://unitsofmeasure.org");
    assert_string_equal(json_string_value(json_object_get(vq, "code")), "mL");
    assert_true(json_number_value(json_object_get(vq, "value")) == 1.5);
    /* references resolve to entries */
    size_t i;
    json_t *ref;
    json_array_foreach(json_object_get(dr, "result"), i, ref)
    {
        assert_string_equal(
            json_string_value(json_object_get(ref, "reference")),
            json_string_value(json_object_get(json_array_get(entries, i + 1), "fullUrl")));
    }
    json_decref(b);
    /* results of two studies are refused */
    json_t *other = json_deep_copy(s);
    json_object_set_new(other, "study_uid", json_string("1.2.3"));
    json_array_append_new(arr, other);
    assert_int_not_equal(agora__results_fhir_bundle(arr, &b, &err), 0);
    json_decref(arr);
}

/* Random leaf replacements (deterministic PRNG): the validator must never crash (ASan/UBSan
 * watch), must answer with a JSON pointer, and whatever it accepts must re-identify, store
 * and export. */
static json_t *random_value(unsigned *seed)
{
    switch (rand_r(seed) % 9) {
    case 0:
        return json_null();
    case 1:
        return json_integer((json_int_t)rand_r(seed) - RAND_MAX / 2);
    case 2:
        return json_real((double)rand_r(seed) / RAND_MAX * 2 - 0.5);
    case 3:
        return json_string("");
    case 4:
        return json_stringn("a\0b", 3);
    case 5:
        return json_string("mm");
    case 6:
        return json_pack("[[i,i]]", 1, 2);
    case 7:
        return json_integer(0);
    default:
        return json_object();
    }
}

static void mutate(json_t *v, unsigned *seed)
{
    if (json_is_object(v) && json_object_size(v) > 0) {
        size_t pick = (size_t)rand_r(seed) % json_object_size(v), i = 0;
        const char *k;
        json_t *c;
        json_object_foreach(v, k, c)
        {
            if (i++ != pick)
                continue;
            if (rand_r(seed) % 3 == 0 || !(json_is_object(c) || json_is_array(c)))
                json_object_set_new(v, k, random_value(seed));
            else
                mutate(c, seed);
            return;
        }
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        size_t i = (size_t)rand_r(seed) % json_array_size(v);
        json_t *c = json_array_get(v, i);
        if (rand_r(seed) % 3 == 0 || !(json_is_object(c) || json_is_array(c)))
            json_array_set_new(v, i, random_value(seed));
        else
            mutate(c, seed);
    }
}

static void test_random_mutations(void **state)
{
    (void)state;
    unsigned seed = 12345;
    int accepted = 0;
    for (int n = 0; n < 3000; n++) {
        json_t *doc = sample();
        for (int k = 0; k <= n % 3; k++)
            mutate(doc, &seed);
        agora__error err = {0};
        if (agora__results_validate(doc, AGORA__RESULT_WORKER, &err) == 0) {
            accepted++;
            agora__results_reident ri = {.invocation_id = inv_id,
                                         .study_uid = study_uid,
                                         .series_uid = "1.2.3",
                                         .frame_sop_uids = sop,
                                         .n_frames = 4};
            json_t *s = NULL, *b = NULL;
            int rc = agora__results_reidentify(doc, &ri, &s, &err);
            /* only a frame past the 4 given may be refused */
            if (rc != 0 && strstr(err.msg, "frames") == NULL)
                fail_msg("accepted but not re-identified: %s", err.msg);
            if (rc == 0) {
                json_t *arr = json_pack("[O]", s);
                assert_int_equal(agora__results_fhir_bundle(arr, &b, &err), 0);
                json_decref(b);
                json_decref(arr);
                json_decref(s);
            }
        } else if (err.msg[0] != '/') {
            fail_msg("message without a JSON pointer: %s", err.msg);
        }
        json_decref(doc);
    }
    /* some mutations are harmless (e.g. a label), most are not */
    assert_true(accepted > 0 && accepted < 3000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_sample),      cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_failed_result),     cmocka_unit_test(test_ucum_uid),
        cmocka_unit_test(test_reidentify_errors), cmocka_unit_test(test_store_list_load),
        cmocka_unit_test(test_fhir_mapping),      cmocka_unit_test(test_random_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
