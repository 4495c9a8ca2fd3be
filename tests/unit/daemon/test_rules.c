/* Unit tests for host/daemon/route_rules.c: the rules loader (allow-list, operand checks, bounds)
 * and the evaluation of one series (operators, absent attributes, discard, fallback, the default
 * rule, merging of duplicate plugins, skips, explanations without values). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "route_rules.h"

#define HEAD "{\"schema\":\"agora.rules/1\",\"rules\":["

static agora__rules *load(const char *json)
{
    agora__rules *r = NULL;
    agora__error err = {0};
    int rc = agora__rules_parse(json, strlen(json), "t.json", &r, &err);
    if (rc != 0)
        fail_msg("refused: %s\n%s", err.msg, json);
    return r;
}

/* The file is refused with code and a message containing want. */
static void refused(const char *json, int code, const char *want)
{
    agora__rules *r = NULL;
    agora__error err = {0};
    int rc = agora__rules_parse(json, strlen(json), "t.json", &r, &err);
    if (rc == 0)
        fail_msg("accepted: %s", json);
    assert_null(r);
    assert_int_equal(rc, code);
    if (strstr(err.msg, want) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
    assert_non_null(strstr(err.msg, "t.json: "));
}

static agora__route_attrs ct(void)
{
    agora__route_attrs a;
    memset(&a, 0, sizeof a);
    strcpy(a.modality, "CT");
    strcpy(a.body_part, "CHEST");
    strcpy(a.sop_class, "1.2.840.10008.5.1.4.1.1.2");
    strcpy(a.calling_ae, "CT01");
    strcpy(a.called_ae, "AGORA");
    a.slice_thickness = 1.25;
    a.n_frames = 1;
    a.rows = 512;
    a.columns = 512;
    a.origin = "dimse";
    return a;
}

/* One rule "r" with condition cond running org.example.a: does it match a? */
static int matches(const char *cond, const agora__route_attrs *a)
{
    char json[2048];
    snprintf(json, sizeof json, HEAD "{\"id\":\"r\",\"when\":%s,\"run\":[\"org.example.a\"]}]}",
             cond);
    agora__rules *r = load(json);
    agora__route_plan p;
    agora__error err = {0};
    assert_int_equal(agora__rules_eval(r, NULL, 0, a, &p, NULL, NULL, &err), 0);
    int m = p.action == AGORA__ROUTE_RUN;
    if (m) {
        assert_int_equal(p.n_matches, 1);
        assert_string_equal(p.matches[0].rule_id, "r");
    } else {
        assert_int_equal(p.action, AGORA__ROUTE_NONE);
        assert_int_equal(p.n_matches, 0);
    }
    agora__route_plan_free(&p);
    agora__rules_free(r);
    return m;
}

static void operators_text(void **state)
{
    (void)state;
    agora__route_attrs a = ct();
    assert_true(matches("{\"attr\":\"Modality\",\"eq\":\"CT\"}", &a));
    assert_false(matches("{\"attr\":\"Modality\",\"eq\":\"MR\"}", &a));
    assert_true(matches("{\"attr\":\"Modality\",\"ne\":\"MR\"}", &a));
    assert_false(matches("{\"attr\":\"Modality\",\"ne\":\"CT\"}", &a));
    assert_true(matches("{\"attr\":\"BodyPartExamined\",\"in\":[\"THORAX\",\"CHEST\"]}", &a));
    assert_false(matches("{\"attr\":\"BodyPartExamined\",\"in\":[\"HEAD\",\"ABDOMEN\"]}", &a));
    assert_true(matches("{\"attr\":\"SOPClassUID\",\"eq\":\"1.2.840.10008.5.1.4.1.1.2\"}", &a));
    assert_true(matches("{\"attr\":\"CallingAETitle\",\"in\":[\"CT01\",\"CT02\"]}", &a));
    assert_true(matches("{\"attr\":\"CalledAETitle\",\"eq\":\"AGORA\"}", &a));
    assert_true(matches("{\"attr\":\"Origin\",\"eq\":\"dimse\"}", &a));
    assert_false(matches("{\"attr\":\"Origin\",\"eq\":\"stow\"}", &a));
    assert_true(matches("{\"attr\":\"Modality\",\"exists\":true}", &a));
    assert_false(matches("{\"attr\":\"Modality\",\"exists\":false}", &a));
    /* DICOM padding in the series' value is not significant. */
    strcpy(a.body_part, "CHEST ");
    strcpy(a.calling_ae, " CT01  ");
    assert_true(matches("{\"attr\":\"BodyPartExamined\",\"eq\":\"CHEST\"}", &a));
    assert_true(matches("{\"attr\":\"CallingAETitle\",\"eq\":\"CT01\"}", &a));
    /* A prefix is not equality. */
    strcpy(a.body_part, "CHESTABDOMEN");
    assert_false(matches("{\"attr\":\"BodyPartExamined\",\"eq\":\"CHEST\"}", &a));
}

static void operators_numbers(void **state)
{
    (void)state;
    agora__route_attrs a = ct(); /* thickness 1.25, 512x512, 1 frame */
    assert_true(matches("{\"attr\":\"SliceThickness\",\"le\":1.25}", &a));
    assert_false(matches("{\"attr\":\"SliceThickness\",\"lt\":1.25}", &a));
    assert_true(matches("{\"attr\":\"SliceThickness\",\"lt\":2.5}", &a));
    assert_true(matches("{\"attr\":\"SliceThickness\",\"ge\":1.25}", &a));
    assert_false(matches("{\"attr\":\"SliceThickness\",\"gt\":1.25}", &a));
    assert_true(matches("{\"attr\":\"SliceThickness\",\"gt\":1}", &a));
    assert_true(matches("{\"attr\":\"SliceThickness\",\"eq\":1.25}", &a));
    assert_true(matches("{\"attr\":\"Rows\",\"eq\":512}", &a));
    assert_true(matches("{\"attr\":\"Columns\",\"ne\":256}", &a));
    assert_false(matches("{\"attr\":\"Columns\",\"ne\":512}", &a));
    assert_true(matches("{\"attr\":\"Rows\",\"in\":[256,512]}", &a));
    assert_false(matches("{\"attr\":\"Rows\",\"in\":[256,1024]}", &a));
    assert_true(matches("{\"attr\":\"NumberOfFrames\",\"lt\":2}", &a));
    a.n_frames = 300;
    assert_true(matches("{\"attr\":\"NumberOfFrames\",\"ge\":300}", &a));
    assert_false(matches("{\"attr\":\"NumberOfFrames\",\"gt\":300}", &a));
}

static void groups(void **state)
{
    (void)state;
    agora__route_attrs a = ct();
    assert_true(matches("{\"all\":[{\"attr\":\"Modality\",\"eq\":\"CT\"},"
                        "{\"attr\":\"SliceThickness\",\"le\":2.5}]}",
                        &a));
    assert_false(matches("{\"all\":[{\"attr\":\"Modality\",\"eq\":\"CT\"},"
                         "{\"attr\":\"SliceThickness\",\"gt\":2.5}]}",
                         &a));
    assert_true(matches("{\"any\":[{\"attr\":\"Modality\",\"eq\":\"MR\"},"
                        "{\"attr\":\"Modality\",\"eq\":\"CT\"}]}",
                        &a));
    assert_false(matches("{\"any\":[{\"attr\":\"Modality\",\"eq\":\"MR\"},"
                         "{\"attr\":\"Modality\",\"eq\":\"US\"}]}",
                         &a));
    assert_false(matches("{\"not\":{\"attr\":\"Modality\",\"eq\":\"CT\"}}", &a));
    assert_true(matches("{\"not\":{\"attr\":\"Modality\",\"eq\":\"MR\"}}", &a));
    assert_true(matches("{\"all\":[{\"not\":{\"any\":[{\"attr\":\"Rows\",\"lt\":256},"
                        "{\"attr\":\"Columns\",\"lt\":256}]}},{\"attr\":\"Origin\",\"eq\":"
                        "\"dimse\"}]}",
                        &a));
}

/* An absent attribute fails every comparison, ne included; exists false and not(...) see it. */
static void absent_attributes(void **state)
{
    (void)state;
    agora__route_attrs a = ct();
    a.body_part[0] = '\0';
    a.calling_ae[0] = '\0';
    a.origin = NULL;
    a.rows = 0;
    assert_false(matches("{\"attr\":\"BodyPartExamined\",\"eq\":\"CHEST\"}", &a));
    assert_false(matches("{\"attr\":\"BodyPartExamined\",\"ne\":\"CHEST\"}", &a));
    assert_false(matches("{\"attr\":\"BodyPartExamined\",\"in\":[\"CHEST\"]}", &a));
    assert_true(matches("{\"attr\":\"BodyPartExamined\",\"exists\":false}", &a));
    assert_true(matches("{\"not\":{\"attr\":\"BodyPartExamined\",\"eq\":\"CHEST\"}}", &a));
    assert_false(matches("{\"attr\":\"CallingAETitle\",\"ne\":\"X\"}", &a));
    assert_false(matches("{\"attr\":\"Origin\",\"ne\":\"stow\"}", &a));
    assert_false(matches("{\"attr\":\"Rows\",\"ge\":0}", &a));
    assert_false(matches("{\"attr\":\"Rows\",\"ne\":512}", &a));
    assert_true(matches("{\"attr\":\"Rows\",\"exists\":false}", &a));
    /* Only spaces is absent too. */
    strcpy(a.modality, "  ");
    assert_false(matches("{\"attr\":\"Modality\",\"ne\":\"MR\"}", &a));
    assert_true(matches("{\"attr\":\"Modality\",\"exists\":false}", &a));
}

static void nan_thickness(void **state)
{
    (void)state;
    agora__route_attrs a = ct();
    double odd[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        a.slice_thickness = odd[i];
        assert_false(matches("{\"attr\":\"SliceThickness\",\"le\":2.5}", &a));
        assert_false(matches("{\"attr\":\"SliceThickness\",\"gt\":2.5}", &a));
        assert_false(matches("{\"attr\":\"SliceThickness\",\"ne\":2.5}", &a));
        assert_false(matches("{\"attr\":\"SliceThickness\",\"exists\":true}", &a));
        assert_true(matches("{\"attr\":\"SliceThickness\",\"exists\":false}", &a));
    }
}

static void refused_identifying(void **state)
{
    (void)state;
    static const struct {
        const char *attr, *why;
    } cases[] = {
        {"SeriesDescription", "is free text"},
        {"StudyDescription", "is free text"},
        {"ProtocolName", "is free text"},
        {"ImageComments", "is free text"},
        {"PatientName", "is a name"},
        {"ReferringPhysicianName", "is a name"},
        {"InstitutionName", "is a name"},
        {"PatientID", "is an identifier"},
        {"AccessionNumber", "is an identifier"},
        {"StudyInstanceUID", "is an identifier"},
        {"SeriesInstanceUID", "is an identifier"},
        {"StudyDate", "is a date or time"},
        {"AcquisitionDateTime", "is a date or time"},
        {"PatientBirthDate", "is a date or time"},
        {"PatientSex", "describes the patient"},
        {"PatientAge", "describes the patient"},
        {"KVP", "not on the routing allow-list"},
        {"(0008,103E)", "by keyword, not by tag"},
        {"0008103E", "by keyword, not by tag"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        snprintf(json, sizeof json,
                 HEAD "{\"id\":\"r\",\"when\":{\"all\":[{\"attr\":\"Modality\",\"eq\":\"CT\"},"
                      "{\"attr\":\"%s\",\"eq\":\"X\"}]},\"run\":[\"org.example.a\"]}]}",
                 cases[i].attr);
        refused(json, AGORA_EINVAL, cases[i].why);
        refused(json, AGORA_EINVAL, "rules[0].when.all[1].attr");
    }
    refused(HEAD "{\"id\":\"r\",\"when\":{\"attr\":\"SeriesDescription\",\"in\":[\"CINE\"]},"
                 "\"run\":[\"org.example.a\"]}]}",
            AGORA_EINVAL, "patient data");
    refused(HEAD "{\"id\":\"r\",\"when\":{\"tag\":\"Modality\",\"eq\":\"CT\"},"
                 "\"run\":[\"org.example.a\"]}]}",
            AGORA_EINVAL, "\"attr\"");
}

static void refused_shapes(void **state)
{
    (void)state;
    const char *run = ",\"run\":[\"org.example.a\"]}]}";
    char json[1024];
#define COND(c) (snprintf(json, sizeof json, HEAD "{\"id\":\"r\",\"when\":%s%s", c, run), json)
    refused(COND("{\"attr\":\"Modality\",\"eq\":\"ct\"}"), AGORA_EINVAL, "upper-case");
    refused(COND("{\"attr\":\"Modality\",\"eq\":\"CT \"}"), AGORA_EINVAL, "space");
    refused(COND("{\"attr\":\"Modality\",\"eq\":3}"), AGORA_EINVAL, "must be a string");
    refused(COND("{\"attr\":\"Modality\",\"lt\":\"CT\"}"), AGORA_EINVAL, "numbers only");
    refused(COND("{\"attr\":\"SOPClassUID\",\"eq\":\"CT Image\"}"), AGORA_EINVAL, "UID");
    refused(COND("{\"attr\":\"Origin\",\"eq\":\"ftp\"}"), AGORA_EINVAL, "stow");
    refused(COND("{\"attr\":\"CallingAETitle\",\"eq\":\"A\\\\B\"}"), AGORA_EINVAL, "backslash");
    refused(COND("{\"attr\":\"CallingAETitle\",\"eq\":\"ABCDEFGHIJKLMNOPQ\"}"), AGORA_EINVAL,
            "1..16");
    refused(COND("{\"attr\":\"SliceThickness\",\"le\":\"2.5\"}"), AGORA_EINVAL, "JSON number");
    refused(COND("{\"attr\":\"Rows\",\"eq\":1.5}"), AGORA_EINVAL, "integer");
    refused(COND("{\"attr\":\"Rows\",\"eq\":-1}"), AGORA_EINVAL, "integer");
    refused(COND("{\"attr\":\"Rows\",\"in\":[]}"), AGORA_EINVAL, "non-empty");
    refused(COND("{\"attr\":\"Rows\",\"exists\":1}"), AGORA_EINVAL, "true or false");
    refused(COND("{\"attr\":\"Rows\"}"), AGORA_EINVAL, "no operator");
    refused(COND("{\"attr\":\"Rows\",\"eq\":1,\"ne\":2}"), AGORA_EINVAL, "one operator");
    refused(COND("{\"attr\":\"Rows\",\"like\":1}"), AGORA_EINVAL, "unknown key \"like\"");
    refused(COND("{\"all\":[]}"), AGORA_EINVAL, "non-empty");
    refused(COND("{\"all\":[{\"attr\":\"Rows\",\"eq\":1}],\"any\":[]}"), AGORA_EINVAL, "only key");
    refused(COND("[]"), AGORA_EINVAL, "must be an object");
#undef COND
    refused("{\"schema\":\"agora.rules/2\",\"rules\":[]}", AGORA_EINVAL, "agora.rules/1");
    refused("{\"rules\":[]}", AGORA_EINVAL, "agora.rules/1");
    refused("{\"schema\":\"agora.rules/1\",\"rules\":[],\"extra\":1}", AGORA_EINVAL,
            "unknown key \"extra\"");
    refused("{\"schema\":\"agora.rules/1\",\"rules\":[],\"rules\":[]}", AGORA_EINVAL,
            "not valid JSON");
    refused("{\"schema\":\"agora.rules/1\",\"rules\":[", AGORA_EINVAL, "not valid JSON");
    const char *when = "\"when\":{\"attr\":\"Modality\",\"eq\":\"CT\"}";
#define RULE(body) (snprintf(json, sizeof json, HEAD "{%s%s}]}", when, body), json)
    refused(RULE(",\"run\":[\"org.example.a\"]"), AGORA_EINVAL, "needs an id");
    refused(RULE(",\"id\":\"a b\",\"run\":[\"org.example.a\"]"), AGORA_EINVAL, "needs an id");
    refused(RULE(",\"id\":\"default\",\"run\":[\"org.example.a\"]"), AGORA_EINVAL, "reserved");
    refused(RULE(",\"id\":\"r\""), AGORA_EINVAL, "\"run\" is missing");
    refused(RULE(",\"id\":\"r\",\"run\":[]"), AGORA_EINVAL, "non-empty");
    refused(RULE(",\"id\":\"r\",\"run\":[\"Org.Example\"]"), AGORA_EINVAL, "not a plugin id");
    refused(RULE(",\"id\":\"r\",\"run\":[\"nodots\"]"), AGORA_EINVAL, "not a plugin id");
    refused(RULE(",\"id\":\"r\",\"run\":[\"org.example.a@\"]"), AGORA_EINVAL, "version");
    refused(RULE(",\"id\":\"r\",\"run\":[\"org.example.a\",\"org.example.a@1.0.0\"]"), AGORA_EINVAL,
            "listed twice");
    refused(RULE(",\"id\":\"r\",\"run\":[\"org.example.a\"],\"priority\":\"high\""), AGORA_EINVAL,
            "offpeak");
    refused(RULE(",\"id\":\"r\",\"run\":[\"org.example.a\"],\"scope\":\"patient\""), AGORA_EINVAL,
            "\"study\"");
    refused(RULE(",\"id\":\"r\",\"run\":[\"org.example.a\"],\"send_to\":[\"a\",\"a\"]"),
            AGORA_EINVAL, "named twice");
    refused(RULE(",\"id\":\"r\",\"run\":[\"org.example.a\"],\"send_to\":[\"pacs/1\"]"),
            AGORA_EINVAL, "destination name");
    refused(RULE(",\"id\":\"r\",\"action\":\"discard\",\"run\":[\"org.example.a\"]"), AGORA_EINVAL,
            "discard runs and sends nothing");
    refused(RULE(",\"id\":\"r\",\"action\":\"default\""), AGORA_EINVAL, "\"run\" or \"discard\"");
    refused(RULE(",\"id\":\"r\",\"action\":\"discard\",\"colour\":1"), AGORA_EINVAL,
            "unknown key \"colour\"");
#undef RULE
    refused(HEAD "{\"id\":\"r\",\"run\":[\"org.example.a\"]}]}", AGORA_EINVAL, "\"when\"");
    refused(HEAD "{\"id\":\"r\",\"when\":{\"attr\":\"Rows\",\"eq\":1},\"action\":\"discard\"},"
                 "{\"id\":\"r\",\"when\":{\"attr\":\"Rows\",\"eq\":2},\"action\":\"discard\"}]}",
            AGORA_EINVAL, "used twice");
    refused("{\"schema\":\"agora.rules/1\",\"rules\":[],\"fallback\":{\"action\":\"default\","
            "\"run\":[\"org.example.a\"]}}",
            AGORA_EINVAL, "remove run");
    refused("{\"schema\":\"agora.rules/1\",\"rules\":[],\"fallback\":{\"when\":{}}}", AGORA_EINVAL,
            "unknown key \"when\"");
}

/* Every bound is enforced, and the bound itself is accepted. */
static void limits(void **state)
{
    (void)state;
    size_t cap = 600 * 1024;
    char *json = malloc(cap);
    assert_non_null(json);
    /* rules count */
    for (unsigned n = AGORA__RULES_MAX; n <= AGORA__RULES_MAX + 1; n++) {
        size_t len = (size_t)snprintf(json, cap, HEAD);
        for (unsigned i = 0; i < n; i++)
            len += (size_t)snprintf(json + len, cap - len,
                                    "%s{\"id\":\"r%u\",\"when\":{\"attr\":\"Rows\",\"eq\":%u},"
                                    "\"action\":\"discard\"}",
                                    i ? "," : "", i, i);
        snprintf(json + len, cap - len, "]}");
        if (n == AGORA__RULES_MAX) {
            agora__rules *r = load(json);
            assert_int_equal(agora__rules_count(r), AGORA__RULES_MAX);
            assert_string_equal(agora__rules_rule_id(r, 255), "r255");
            assert_null(agora__rules_rule_id(r, 256));
            agora__rules_free(r);
        } else {
            refused(json, AGORA_ELIMIT, "at most 256 rules");
        }
    }
    /* list length: in with 32 and 33 values */
    for (unsigned n = AGORA__RULES_LIST_MAX; n <= AGORA__RULES_LIST_MAX + 1; n++) {
        size_t len = (size_t)snprintf(json, cap,
                                      HEAD "{\"id\":\"r\",\"when\":{\"attr\":\"Rows\","
                                           "\"in\":[");
        for (unsigned i = 0; i < n; i++)
            len += (size_t)snprintf(json + len, cap - len, "%s%u", i ? "," : "", i);
        snprintf(json + len, cap - len, "]},\"action\":\"discard\"}]}");
        if (n == AGORA__RULES_LIST_MAX)
            agora__rules_free(load(json));
        else
            refused(json, AGORA_ELIMIT, "at most 32 values");
    }
    /* run list */
    {
        size_t len = (size_t)snprintf(json, cap,
                                      HEAD "{\"id\":\"r\",\"when\":{\"attr\":\"Rows\","
                                           "\"eq\":1},\"run\":[");
        for (unsigned i = 0; i <= AGORA__RULES_LIST_MAX; i++)
            len +=
                (size_t)snprintf(json + len, cap - len, "%s\"org.example.p%u\"", i ? "," : "", i);
        snprintf(json + len, cap - len, "]}]}");
        refused(json, AGORA_ELIMIT, "at most 32 plugins");
    }
    /* nesting depth: DEPTH_MAX levels fine, one more refused */
    for (unsigned d = AGORA__RULES_DEPTH_MAX; d <= AGORA__RULES_DEPTH_MAX + 1; d++) {
        size_t len = (size_t)snprintf(json, cap, HEAD "{\"id\":\"r\",\"when\":");
        for (unsigned i = 1; i < d; i++)
            len += (size_t)snprintf(json + len, cap - len, "{\"not\":");
        len += (size_t)snprintf(json + len, cap - len, "{\"attr\":\"Rows\",\"eq\":1}");
        for (unsigned i = 1; i < d; i++)
            len += (size_t)snprintf(json + len, cap - len, "}");
        snprintf(json + len, cap - len, ",\"action\":\"discard\"}]}");
        if (d == AGORA__RULES_DEPTH_MAX)
            agora__rules_free(load(json));
        else
            refused(json, AGORA_ELIMIT, "nest at most 8 deep");
    }
    /* conditions per rule: 1 all + 63 leaves = 64 fine; 1 + 2 x 32 = 65 refused */
    {
        size_t len = (size_t)snprintf(json, cap, HEAD "{\"id\":\"r\",\"when\":{\"all\":[");
        for (unsigned i = 0; i < 2; i++) {
            len += (size_t)snprintf(json + len, cap - len, "%s{\"any\":[", i ? "," : "");
            for (unsigned k = 0; k < 31 + i; k++)
                len += (size_t)snprintf(json + len, cap - len, "%s{\"attr\":\"Rows\",\"eq\":%u}",
                                        k ? "," : "", k);
            len += (size_t)snprintf(json + len, cap - len, "]}");
        }
        snprintf(json + len, cap - len, "]},\"action\":\"discard\"}]}");
        refused(json, AGORA_ELIMIT, "at most 64 conditions");
    }
    /* file size */
    {
        size_t len =
            (size_t)snprintf(json, cap, "{\"schema\":\"agora.rules/1\",\"description\":\"");
        memset(json + len, 'x', AGORA__RULES_FILE_MAX);
        snprintf(json + len + AGORA__RULES_FILE_MAX, cap - len - AGORA__RULES_FILE_MAX,
                 "\",\"rules\":[]}");
        refused(json, AGORA_ELIMIT, "at most 262144 bytes");
    }
    free(json);
}

/* A minimal installed build: id, version, status, the modalities its manifest accepts. */
static agora__trust_plugin app(const char *id, const char *version, const char *modality,
                               int status, int study)
{
    agora__trust_plugin p;
    memset(&p, 0, sizeof p);
    strcpy(p.id, id);
    strcpy(p.version, version);
    p.status = status;
    p.manifest_ok = 1;
    if (strcmp(modality, "*") == 0) {
        p.manifest.any_modality = 1;
    } else {
        strcpy(p.manifest.modalities[0], modality);
        p.manifest.n_modalities = 1;
    }
    p.manifest.study_scope = study;
    return p;
}

static void default_rule_by_modality(void **state)
{
    (void)state;
    agora__trust_plugin apps[] = {
        app("org.example.ct", "1.0.0", "CT", AGORA__TRUST_OK, 0),
        app("org.example.mr", "2.0.0", "MR", AGORA__TRUST_OK, 0),
        app("org.example.any", "1.1.0", "*", AGORA__TRUST_OK, 1),
        app("org.example.old", "0.9.0", "CT", AGORA__TRUST_REVOKED, 0),
    };
    agora__route_attrs a = ct();
    agora__route_plan p;
    assert_int_equal(agora__rules_eval(NULL, apps, 4, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_RUN);
    assert_string_equal(p.rule_id, "default");
    assert_int_equal(p.n_matches, 2);
    assert_string_equal(p.matches[0].plugin_id, "org.example.ct");
    assert_string_equal(p.matches[0].plugin_version, "1.0.0");
    assert_string_equal(p.matches[0].scope, "series");
    assert_int_equal(p.matches[0].priority, AGORA__RULES_NORMAL);
    assert_int_equal(p.matches[0].n_send_to, 1);
    assert_string_equal(p.matches[0].send_to[0], "default");
    assert_string_equal(p.matches[1].plugin_id, "org.example.any");
    assert_string_equal(p.matches[1].scope, "study"); /* its manifest's scope */
    agora__route_plan_free(&p);
    strcpy(a.modality, "MR");
    assert_int_equal(agora__rules_eval(NULL, apps, 4, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.n_matches, 2);
    assert_string_equal(p.matches[0].plugin_id, "org.example.mr");
    agora__route_plan_free(&p);
    /* No modality: only the any-modality app. */
    a.modality[0] = '\0';
    assert_int_equal(agora__rules_eval(NULL, apps, 4, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.n_matches, 1);
    assert_string_equal(p.matches[0].plugin_id, "org.example.any");
    agora__route_plan_free(&p);
    /* Nothing installed: the default rule applies and runs nothing. */
    assert_int_equal(agora__rules_eval(NULL, NULL, 0, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_RUN);
    assert_int_equal(p.n_matches, 0);
    agora__route_plan_free(&p);
}

static void discard_wins(void **state)
{
    (void)state;
    agora__rules *r = load(HEAD "{\"id\":\"all-ct\",\"when\":{\"attr\":\"Modality\",\"eq\":\"CT\"},"
                                "\"run\":[\"org.example.a\"]},"
                                "{\"id\":\"no-scouts\",\"when\":{\"attr\":\"NumberOfFrames\","
                                "\"eq\":1},\"action\":\"discard\"}],"
                                "\"fallback\":{\"run\":[\"org.example.b\"]}}");
    agora__route_attrs a = ct();
    agora__route_plan p;
    assert_int_equal(agora__rules_eval(r, NULL, 0, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_DISCARD);
    assert_string_equal(p.rule_id, "no-scouts");
    assert_int_equal(p.n_matches, 0);
    agora__route_plan_free(&p);
    a.n_frames = 40;
    assert_int_equal(agora__rules_eval(r, NULL, 0, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_RUN);
    assert_string_equal(p.rule_id, "all-ct");
    agora__route_plan_free(&p);
    agora__rules_free(r);
}

static void fallbacks(void **state)
{
    (void)state;
    agora__route_attrs a = ct();
    strcpy(a.modality, "US");
    agora__route_plan p;
    const char *rules = HEAD "{\"id\":\"ct\",\"when\":{\"attr\":\"Modality\",\"eq\":\"CT\"},"
                             "\"run\":[\"org.example.a\"]}]";
    char json[1024];
    /* none */
    snprintf(json, sizeof json, "%s}", rules);
    agora__rules *r = load(json);
    assert_string_equal(agora__rules_fallback(r), "none");
    assert_int_equal(agora__rules_eval(r, NULL, 0, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_NONE);
    assert_null(p.rule_id);
    agora__route_plan_free(&p);
    agora__rules_free(r);
    /* run */
    snprintf(json, sizeof json,
             "%s,\"fallback\":{\"run\":[\"org.example.b@1.0.0\"],\"priority\":\"offpeak\","
             "\"scope\":\"study\",\"send_to\":[]}}",
             rules);
    r = load(json);
    assert_string_equal(agora__rules_fallback(r), "run");
    assert_int_equal(agora__rules_eval(r, NULL, 0, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_RUN);
    assert_string_equal(p.rule_id, "fallback");
    assert_int_equal(p.n_matches, 1);
    assert_string_equal(p.matches[0].plugin_id, "org.example.b");
    assert_string_equal(p.matches[0].plugin_version, "1.0.0");
    assert_string_equal(p.matches[0].rule_id, "fallback");
    assert_string_equal(p.matches[0].scope, "study");
    assert_int_equal(p.matches[0].priority, AGORA__RULES_OFFPEAK);
    assert_int_equal(p.matches[0].n_send_to, 0); /* kept in the home only */
    agora__route_plan_free(&p);
    /* a matching rule: no fallback */
    strcpy(a.modality, "CT");
    assert_int_equal(agora__rules_eval(r, NULL, 0, &a, &p, NULL, NULL, NULL), 0);
    assert_string_equal(p.rule_id, "ct");
    assert_string_equal(p.matches[0].plugin_id, "org.example.a");
    assert_string_equal(p.matches[0].plugin_version, "");
    agora__route_plan_free(&p);
    agora__rules_free(r);
    /* discard */
    strcpy(a.modality, "US");
    snprintf(json, sizeof json, "%s,\"fallback\":{\"action\":\"discard\"}}", rules);
    r = load(json);
    assert_int_equal(agora__rules_eval(r, NULL, 0, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_DISCARD);
    assert_string_equal(p.rule_id, "fallback");
    agora__route_plan_free(&p);
    agora__rules_free(r);
    /* default, with a priority and a destination */
    snprintf(json, sizeof json,
             "%s,\"fallback\":{\"action\":\"default\",\"priority\":\"urgent\","
             "\"send_to\":[\"pacs-b\"]}}",
             rules);
    r = load(json);
    agora__trust_plugin apps[] = {app("org.example.us", "1.0.0", "US", AGORA__TRUST_OK, 0)};
    assert_int_equal(agora__rules_eval(r, apps, 1, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_RUN);
    assert_string_equal(p.rule_id, "default");
    assert_int_equal(p.n_matches, 1);
    assert_string_equal(p.matches[0].plugin_id, "org.example.us");
    assert_int_equal(p.matches[0].priority, AGORA__RULES_URGENT);
    assert_string_equal(p.matches[0].send_to[0], "pacs-b");
    agora__route_plan_free(&p);
    const char **dests = NULL;
    size_t nd = 0;
    assert_int_equal(agora__rules_destinations(r, &dests, &nd, NULL), 0);
    assert_int_equal(nd, 2); /* "default" (rule ct) and pacs-b */
    assert_string_equal(dests[0], "default");
    assert_string_equal(dests[1], "pacs-b");
    free(dests);
    agora__rules_free(r);
}

/* All matching rules apply; a plugin named twice runs once with merged settings. */
static void duplicate_merge(void **state)
{
    (void)state;
    agora__rules *r = load(
        HEAD "{\"id\":\"ct\",\"when\":{\"attr\":\"Modality\",\"eq\":\"CT\"},"
             "\"run\":[\"org.example.dose\",\"org.example.nodules\"],\"send_to\":[\"pacs-a\"]},"
             "{\"id\":\"mr\",\"when\":{\"attr\":\"Modality\",\"eq\":\"MR\"},"
             "\"run\":[\"org.example.brain\"]},"
             "{\"id\":\"thin\",\"when\":{\"attr\":\"SliceThickness\",\"le\":2.5},"
             "\"run\":[\"org.example.nodules\"],\"scope\":\"study\",\"priority\":\"urgent\","
             "\"send_to\":[\"pacs-b\",\"pacs-a\"]},"
             "{\"id\":\"slow\",\"when\":{\"attr\":\"Rows\",\"ge\":512},"
             "\"run\":[\"org.example.dose\"],\"priority\":\"offpeak\"}]}");
    agora__route_attrs a = ct();
    agora__route_plan p;
    assert_int_equal(agora__rules_eval(r, NULL, 0, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_RUN);
    assert_string_equal(p.rule_id, "ct");
    assert_int_equal(p.n_matches, 2);
    const agora__rule_match *dose = &p.matches[0], *nod = &p.matches[1];
    assert_string_equal(dose->plugin_id, "org.example.dose");
    assert_string_equal(dose->rule_id, "ct");
    assert_string_equal(dose->scope, "series");
    assert_int_equal(dose->priority, AGORA__RULES_NORMAL); /* highest of normal, offpeak */
    assert_int_equal(dose->n_send_to, 2);
    assert_string_equal(dose->send_to[0], "pacs-a");
    assert_string_equal(dose->send_to[1], "default"); /* rule slow sends to the default */
    assert_string_equal(nod->plugin_id, "org.example.nodules");
    assert_string_equal(nod->rule_id, "ct");
    assert_string_equal(nod->scope, "study");
    assert_int_equal(nod->priority, AGORA__RULES_URGENT);
    assert_int_equal(nod->n_send_to, 2);
    assert_string_equal(nod->send_to[0], "pacs-a");
    assert_string_equal(nod->send_to[1], "pacs-b");
    agora__route_plan_free(&p);
    /* Two versions of one id from two rules, without apps: two builds, two jobs. */
    agora__rules_free(r);
    r = load(HEAD "{\"id\":\"a\",\"when\":{\"attr\":\"Modality\",\"eq\":\"CT\"},"
                  "\"run\":[\"org.example.x@1.0.0\"]},"
                  "{\"id\":\"b\",\"when\":{\"attr\":\"Modality\",\"eq\":\"CT\"},"
                  "\"run\":[\"org.example.x@2.0.0\"]},"
                  "{\"id\":\"c\",\"when\":{\"attr\":\"Rows\",\"eq\":512},"
                  "\"run\":[\"org.example.x@1.0.0\"],\"priority\":\"urgent\"}]}");
    assert_int_equal(agora__rules_eval(r, NULL, 0, &a, &p, NULL, NULL, NULL), 0);
    assert_int_equal(p.n_matches, 2);
    assert_string_equal(p.matches[0].plugin_version, "1.0.0");
    assert_string_equal(p.matches[0].rule_id, "a");
    assert_int_equal(p.matches[0].priority, AGORA__RULES_URGENT); /* from rule c */
    assert_string_equal(p.matches[1].plugin_version, "2.0.0");
    assert_string_equal(p.matches[1].rule_id, "b");
    agora__route_plan_free(&p);
    agora__rules_free(r);
}

typedef struct trace {
    char text[8192];
    size_t len;
    unsigned skips;
} trace;

static void collect(void *arg, const agora__rules_step *s)
{
    trace *t = arg;
    t->len += (size_t)snprintf(t->text + t->len, sizeof t->text - t->len,
                               "%d|%s|%u|%s|%s|%d|%s|%s\n", (int)s->kind, s->rule_id, s->depth,
                               s->attr ? s->attr : "", s->op ? s->op : "", (int)s->outcome,
                               s->plugin_id ? s->plugin_id : "", s->reason ? s->reason : "");
    assert_true(t->len < sizeof t->text);
    t->skips += s->kind == AGORA__RULES_STEP_SKIP;
}

/* With the installed apps, plugins that would not run are skipped, with the reason. */
static void skips_with_apps(void **state)
{
    (void)state;
    agora__rules *r = load(HEAD "{\"id\":\"ct\",\"when\":{\"attr\":\"Modality\",\"eq\":\"CT\"},"
                                "\"run\":[\"org.example.ok\",\"org.example.missing\","
                                "\"org.example.ver@9.9.9\",\"org.example.revoked\","
                                "\"org.example.mronly\",\"org.example.ok2@1.0.0\"]}]}");
    agora__trust_plugin apps[] = {
        app("org.example.ok", "1.2.3", "CT", AGORA__TRUST_OK, 0),
        app("org.example.ver", "1.0.0", "CT", AGORA__TRUST_OK, 0),
        app("org.example.revoked", "1.0.0", "CT", AGORA__TRUST_REVOKED, 0),
        app("org.example.mronly", "1.0.0", "MR", AGORA__TRUST_OK, 0),
        app("org.example.ok2", "1.0.0", "*", AGORA__TRUST_OK, 0),
    };
    agora__route_attrs a = ct();
    agora__route_plan p;
    trace t = {0};
    assert_int_equal(agora__rules_eval(r, apps, 5, &a, &p, collect, &t, NULL), 0);
    assert_int_equal(p.action, AGORA__ROUTE_RUN);
    assert_int_equal(p.n_matches, 2);
    assert_int_equal(p.n_skipped, 4);
    assert_int_equal(t.skips, 4);
    assert_string_equal(p.matches[0].plugin_id, "org.example.ok");
    assert_string_equal(p.matches[0].plugin_version, "1.2.3"); /* the installed build */
    assert_string_equal(p.matches[1].plugin_id, "org.example.ok2");
    assert_non_null(strstr(t.text, "org.example.missing|not installed"));
    assert_non_null(strstr(t.text, "org.example.ver|installed at another version"));
    assert_non_null(strstr(t.text, "org.example.revoked|revoked"));
    assert_non_null(strstr(t.text, "org.example.mronly|its manifest does not accept"));
    char line[128];
    agora__route_plan_describe(&p, line, sizeof line);
    assert_string_equal(line, "action=run rule=ct jobs=2 skipped=4");
    agora__route_plan_free(&p);
    agora__rules_free(r);
}

/* The explanation names rules, attributes, operators and outcomes, never a series' value. */
static void explanations_without_values(void **state)
{
    (void)state;
    agora__rules *r =
        load(HEAD "{\"id\":\"chest\",\"when\":{\"all\":[{\"attr\":\"Modality\",\"eq\":\"CT\"},"
                  "{\"attr\":\"BodyPartExamined\",\"in\":[\"CHEST\"]},"
                  "{\"attr\":\"CallingAETitle\",\"exists\":true},"
                  "{\"attr\":\"SliceThickness\",\"le\":2.5}]},\"run\":[\"org.example.a\"]},"
                  "{\"id\":\"other\",\"when\":{\"not\":{\"attr\":\"Modality\",\"eq\":\"CT\"}},"
                  "\"action\":\"discard\"}],\"fallback\":{\"action\":\"discard\"}}");
    agora__route_attrs a = ct();
    strcpy(a.body_part, "XYZZYPART");
    strcpy(a.calling_ae, "QWERTYAE");
    strcpy(a.sop_class, "1.2.3.999888777");
    a.slice_thickness = NAN;
    agora__route_plan p;
    trace t = {0};
    assert_int_equal(agora__rules_eval(r, NULL, 0, &a, &p, collect, &t, NULL), 0);
    /* BodyPartExamined fails and SliceThickness is absent: chest does not match; neither does
     * other; the fallback discards. */
    assert_int_equal(p.action, AGORA__ROUTE_DISCARD);
    assert_string_equal(p.rule_id, "fallback");
    assert_non_null(strstr(t.text, "1|chest|2|Modality|eq|1|"));
    assert_non_null(strstr(t.text, "1|chest|2|BodyPartExamined|in|0|"));
    assert_non_null(strstr(t.text, "1|chest|2|CallingAETitle|exists|1|"));
    assert_non_null(strstr(t.text, "1|chest|2|SliceThickness|le|2|")); /* absent */
    assert_non_null(strstr(t.text, "2|chest|1||all|0|"));
    assert_non_null(strstr(t.text, "0|chest|0|||0|"));
    assert_non_null(strstr(t.text, "2|other|1||not|0|"));
    assert_non_null(strstr(t.text, "4|fallback|0||discard|1|"));
    assert_null(strstr(t.text, "XYZZY"));
    assert_null(strstr(t.text, "QWERTY"));
    assert_null(strstr(t.text, "999888777"));
    assert_null(strstr(t.text, "CT|"));
    char line[128];
    agora__route_plan_describe(&p, line, sizeof line);
    assert_string_equal(line, "action=discard rule=fallback jobs=0 skipped=0");
    agora__route_plan_free(&p);
    agora__rules_free(r);
}

static void load_from_file(void **state)
{
    (void)state;
    char path[] = "/tmp/agora-test-rules-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *doc = "{\"schema\":\"agora.rules/1\",\"rules\":[],\"fallback\":{\"action\":"
                      "\"default\"}}";
    assert_int_equal(agora__write_all(fd, doc, strlen(doc)), 0);
    close(fd);
    agora__rules *r = NULL;
    agora__error err = {0};
    assert_int_equal(agora__rules_load(path, &r, &err), 0);
    assert_int_equal(agora__rules_count(r), 0);
    assert_string_equal(agora__rules_fallback(r), "default");
    agora__rules_free(r);
    unlink(path);
    assert_int_not_equal(agora__rules_load(path, &r, &err), 0);
    assert_null(r);
    assert_non_null(strstr(err.msg, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(operators_text),
        cmocka_unit_test(operators_numbers),
        cmocka_unit_test(groups),
        cmocka_unit_test(absent_attributes),
        cmocka_unit_test(nan_thickness),
        cmocka_unit_test(refused_identifying),
        cmocka_unit_test(refused_shapes),
        cmocka_unit_test(limits),
        cmocka_unit_test(default_rule_by_modality),
        cmocka_unit_test(discard_wins),
        cmocka_unit_test(fallbacks),
        cmocka_unit_test(duplicate_merge),
        cmocka_unit_test(skips_with_apps),
        cmocka_unit_test(explanations_without_values),
        cmocka_unit_test(load_from_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
