/*
 * `agora rules test RULES.json FILE...` and `agora rules check RULES.json`: what the daemon's
 * routing rules (host/daemon/route_rules.h) would do with the operator's own files.
 *
 * Files are read by the sandboxed reader (host/ingest, the path `agora serve` routes on: the
 * attributes come from agora__route_attrs_from_meta on agora__ingest_metadata's reply), never
 * parsed in this process. Series are grouped by Series Instance UID; a series' attributes are its
 * first instance's (smallest SOP Instance UID: files have no arrival order), NumberOfFrames the
 * largest of its instances, as the intake does.
 *
 * What is shown where: stdout shows, per series, the allow-listed routing attributes of the
 * operator's files (non-identifying by construction, and asked for explicitly), each rule's
 * conditions by attribute name with pass/fail/absent, and the jobs. A series is named by its
 * ordinal and the first file's path as the operator typed it, never by a UID. Nothing here is
 * logged: the explanation steps carry no values, and this command writes no log lines.
 *
 * Exit status: 0 every series was routed (a rule, the fallback or the default rule applied,
 * discards included); 1 some series matched no rule and there is no fallback; 2 usage error or
 * invalid rules; 3 the test could not be made (no readable DICOM file, the reader could not
 * start, the clinic home given with --home could not be opened).
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "ingest.h"
#include "json_emit.h"
#include "opt.h"
#include "route_attrs.h"
#include "route_rules.h"
#include "study.h"
#include "trust.h"

#define EXIT_UNMATCHED 1
#define EXIT_INVALID   2
#define EXIT_CANNOT    3
#define MAX_SERIES     10000u /* distinct series in one test */
#define MAX_STEPS      4096u  /* explanation steps of one series (256 rules x 64 nodes fit) */

/* ---- rules check ---------------------------------------------------------------------------- */

static int load_rules(const char *cmd, const char *path, agora__rules **r)
{
    agora__error err = {0};
    if (agora__rules_load(path, r, &err) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, err.msg);
        return EXIT_INVALID;
    }
    return 0;
}

static int cmd_check(int argc, char **argv)
{
    int as_json = 0;
    const agora__cli_opt opts[] = {
        AGORA__CLI_OPT_JSON(&as_json, "print the summary as JSON"),
    };
    const agora__cli_cmd cmd = {
        "rules check",
        "[--json] RULES.json",
        "Validate a routing rules file (schema agora.rules/1) as `agora serve --rules` will:\n"
        "the attribute allow-list, operators and values, ids, plugins, destinations and\n"
        "the bounds. Prints the rule ids, the fallback and the destinations the file names.\n"
        "Exit status: 0 valid, 2 invalid (the message names the place and what to change).",
        opts,
        AGORA__CLI_N(opts),
        1,
        1};
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, NULL, &st))
        return st;
    agora__rules *r = NULL;
    if ((st = load_rules("rules check", argv[1], &r)) != 0)
        return st;
    const char **dests = NULL;
    size_t nd = 0;
    agora__error err = {0};
    if (agora__rules_destinations(r, &dests, &nd, &err) != 0) {
        agora__rules_free(r);
        return agora__fail("rules check", &err) ? EXIT_CANNOT : 0;
    }
    size_t n = agora__rules_count(r);
    if (as_json) {
        json_t *doc = json_object(), *ids = json_array(), *jd = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(ids, json_string(agora__rules_rule_id(r, i)));
        for (size_t i = 0; i < nd; i++)
            json_array_append_new(jd, json_string(dests[i]));
        json_object_set_new(doc, "file", json_string(argv[1]));
        json_object_set_new(doc, "valid", json_true());
        json_object_set_new(doc, "rules", ids);
        json_object_set_new(doc, "fallback", json_string(agora__rules_fallback(r)));
        json_object_set_new(doc, "destinations", jd);
        st = agora__json_emit_new(stdout, doc, AGORA__JSON_DOC) ? EXIT_CANNOT : 0;
    } else {
        printf("%s: valid, %zu rule%s", argv[1], n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++)
            printf("%s%s", i ? ", " : ": ", agora__rules_rule_id(r, i));
        printf("\nfallback: %s\ndestinations:", agora__rules_fallback(r));
        for (size_t i = 0; i < nd; i++)
            printf(" %s", dests[i]);
        printf("%s\n", nd ? "" : " none");
        st = fflush(stdout) == 0 ? 0 : EXIT_CANNOT;
    }
    free(dests);
    agora__rules_free(r);
    return st;
}

/* ---- reading the files ------------------------------------------------------------------------
 */

typedef struct series {
    char uid[65];       /* grouping key only: never printed */
    char first_sop[65]; /* the instance whose attributes the series takes */
    agora__route_attrs attrs;
    char **paths; /* owned; in scan order */
    size_t n_paths;
} series;

typedef struct reader {
    agora__ingest *ing;
    const char *calling, *called, *origin;
    series *v;
    size_t n, cap;
} reader;

static void reader_free(reader *rd)
{
    for (size_t i = 0; i < rd->n; i++) {
        for (size_t k = 0; k < rd->v[i].n_paths; k++)
            free(rd->v[i].paths[k]);
        free(rd->v[i].paths);
    }
    free(rd->v);
    agora__ingest_close(rd->ing);
}

static int add_path(series *s, const char *path)
{
    char **np = realloc(s->paths, (s->n_paths + 1) * sizeof *np);
    if (np == NULL)
        return AGORA_ENOMEM;
    s->paths = np;
    size_t len = strlen(path) + 1;
    if ((np[s->n_paths] = malloc(len)) == NULL)
        return AGORA_ENOMEM;
    memcpy(np[s->n_paths++], path, len);
    return 0;
}

/* One instance's routing attributes into its series (the first instance rule above). */
static int record(reader *rd, const agora__ingest_meta *m, const char *path, agora__error *err)
{
    agora__route_attrs a;
    agora__route_attrs_from_meta(m, rd->calling, rd->called, rd->origin, &a);
    series *s = NULL;
    for (size_t i = 0; i < rd->n && s == NULL; i++)
        if (strcmp(rd->v[i].uid, m->series_uid) == 0)
            s = &rd->v[i];
    if (s == NULL) {
        if (rd->n == MAX_SERIES)
            return agora__error_set(err, AGORA_ELIMIT,
                                    "more than %u series; test fewer files at once", MAX_SERIES);
        if (rd->n == rd->cap) {
            size_t cap = rd->cap ? rd->cap * 2 : 16;
            series *nv = realloc(rd->v, cap * sizeof *nv);
            if (nv == NULL)
                return agora__error_set(err, AGORA_ENOMEM, "out of memory");
            rd->v = nv;
            rd->cap = cap;
        }
        s = &rd->v[rd->n++];
        memset(s, 0, sizeof *s);
        agora__strlcpy(s->uid, m->series_uid, sizeof s->uid);
        agora__strlcpy(s->first_sop, m->sop_uid, sizeof s->first_sop);
        s->attrs = a;
    } else {
        uint32_t frames = s->attrs.n_frames > a.n_frames ? s->attrs.n_frames : a.n_frames;
        if (strcmp(m->sop_uid, s->first_sop) < 0) {
            agora__strlcpy(s->first_sop, m->sop_uid, sizeof s->first_sop);
            s->attrs = a;
        }
        s->attrs.n_frames = frames;
    }
    if (add_path(s, path) != 0)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    return 0;
}

static int recorded(const reader *rd, const char *path)
{
    for (size_t i = 0; i < rd->n; i++)
        for (size_t k = 0; k < rd->v[i].n_paths; k++)
            if (strcmp(rd->v[i].paths[k], path) == 0)
                return 1;
    return 0;
}

/* agora__dicom_extract_fn: the scanner walks the folders (depth, file count and size bounds);
 * every file goes to the sandboxed reader once. Objects without an image (SR, KO) are routed
 * too: the scan then notes them as skipped, and those notes are not shown (see `recorded`). */
static int extract(void *ctx, const char *path, agora__dicom_extracted *out, agora__error *err)
{
    reader *rd = ctx;
    agora__ingest_meta m;
    int rc = agora__ingest_metadata(rd->ing, path, &m, err);
    if (rc != 0) {
        /* The scanner's note names the file already: keep the reason alone. */
        size_t n = strlen(path);
        if (err != NULL && strncmp(err->msg, path, n) == 0 && strncmp(err->msg + n, ": ", 2) == 0)
            memmove(err->msg, err->msg + n + 2, strlen(err->msg + n + 2) + 1);
        return rc;
    }
    rc = record(rd, &m, path, err);
    if (rc == 0)
        rc = agora__ingest_meta_to_instance(&m, path, &out->instance, out->study_uid,
                                            out->series_uid, out->modality, err);
    free(out->instance.path); /* the scanner sets the path itself */
    out->instance.path = NULL;
    agora__ingest_meta_free(&m);
    return rc;
}

/* ---- explaining one series --------------------------------------------------------------------
 */

typedef struct steps {
    agora__rules_step v[MAX_STEPS];
    size_t n;
    int truncated;
} steps;

static void collect(void *arg, const agora__rules_step *s)
{
    steps *st = arg;
    if (st->n < MAX_STEPS)
        st->v[st->n++] = *s; /* its strings are the rules', the apps' or static */
    else
        st->truncated = 1;
}

static const char *outcome_word(agora__rules_outcome o)
{
    return o == AGORA__RULES_PASS ? "pass" : o == AGORA__RULES_ABSENT ? "absent" : "fail";
}

/* The renderer of one series: text lines to stdout, or JSON into a document. */
typedef struct out {
    int json;
    json_t *conds; /* JSON: the conditions array of the rule being rendered */
} out;

/* v[lo..hi) is one condition subtree in evaluation (post) order, its root last; print it root
 * first, children in file order. */
static void render_tree(out *o, const agora__rules_step *v, size_t lo, size_t hi)
{
    const agora__rules_step *root = &v[hi - 1];
    if (o->json) {
        json_t *c = json_object();
        if (root->kind == AGORA__RULES_STEP_COND) {
            json_object_set_new(c, "attr", json_string(root->attr));
            json_object_set_new(c, "op", json_string(root->op));
        } else {
            json_object_set_new(c, "group", json_string(root->op));
        }
        json_object_set_new(c, "depth", json_integer(root->depth));
        json_object_set_new(c, "outcome", json_string(outcome_word(root->outcome)));
        json_array_append_new(o->conds, c);
    } else if (root->kind == AGORA__RULES_STEP_COND) {
        printf("%*s%s %s: %s\n", (int)(2 + 2 * root->depth), "", root->attr, root->op,
               outcome_word(root->outcome));
    } else {
        printf("%*s%s: %s\n", (int)(2 + 2 * root->depth), "", root->op,
               outcome_word(root->outcome));
    }
    for (size_t j = lo; j + 1 < hi;) {
        size_t k = j;
        while (k + 1 < hi && v[k].depth != root->depth + 1)
            k++;
        render_tree(o, v, j, k + 1);
        j = k + 1;
    }
}

static void text_value(const char *name, const char *v, int *first)
{
    printf("%s%s=%s", *first ? "" : " ", name, v[0] ? v : "(absent)");
    *first = 0;
}

static void text_number(const char *name, double v, int present, int *first)
{
    if (present)
        printf("%s%s=%g", *first ? "" : " ", name, v);
    else
        printf("%s%s=(absent)", *first ? "" : " ", name);
    *first = 0;
}

/* The series' routing attributes: the operator's own files, on their terminal (see top). */
static void print_attrs(const agora__route_attrs *a)
{
    int first = 1;
    printf("  attributes: ");
    text_value("Modality", a->modality, &first);
    text_value("BodyPartExamined", a->body_part, &first);
    text_number("SliceThickness", a->slice_thickness, isfinite(a->slice_thickness), &first);
    text_number("NumberOfFrames", a->n_frames, a->n_frames > 0, &first);
    text_number("Rows", a->rows, a->rows > 0, &first);
    text_number("Columns", a->columns, a->columns > 0, &first);
    text_value("SOPClassUID", a->sop_class, &first);
    text_value("CallingAETitle", a->calling_ae, &first);
    text_value("CalledAETitle", a->called_ae, &first);
    text_value("Origin", a->origin ? a->origin : "", &first);
    printf("\n");
}

static json_t *json_text_or_null(const char *v)
{
    return v != NULL && v[0] ? json_string(v) : json_null();
}

static json_t *json_attrs(const agora__route_attrs *a)
{
    json_t *j = json_object();
    json_object_set_new(j, "Modality", json_text_or_null(a->modality));
    json_object_set_new(j, "BodyPartExamined", json_text_or_null(a->body_part));
    json_object_set_new(j, "SliceThickness",
                        isfinite(a->slice_thickness) ? json_real(a->slice_thickness) : json_null());
    json_object_set_new(j, "NumberOfFrames", a->n_frames ? json_integer(a->n_frames) : json_null());
    json_object_set_new(j, "Rows", a->rows ? json_integer(a->rows) : json_null());
    json_object_set_new(j, "Columns", a->columns ? json_integer(a->columns) : json_null());
    json_object_set_new(j, "SOPClassUID", json_text_or_null(a->sop_class));
    json_object_set_new(j, "CallingAETitle", json_text_or_null(a->calling_ae));
    json_object_set_new(j, "CalledAETitle", json_text_or_null(a->called_ae));
    json_object_set_new(j, "Origin", json_text_or_null(a->origin));
    return j;
}

/* Render the steps of one evaluation: each rule with its conditions, then skips, the fallback
 * and the default rule's verdicts. */
static void render_steps(const steps *st, json_t *js)
{
    out o = {js != NULL, NULL};
    json_t *rules = js ? json_array() : NULL, *skipped = js ? json_array() : NULL;
    json_t *deflt = js ? json_array() : NULL;
    size_t start = 0;
    for (size_t i = 0; i < st->n; i++) {
        const agora__rules_step *s = &st->v[i];
        switch (s->kind) {
        case AGORA__RULES_STEP_RULE: {
            int m = s->outcome == AGORA__RULES_PASS;
            if (js) {
                json_t *r = json_object();
                json_object_set_new(r, "id", json_string(s->rule_id));
                json_object_set_new(r, "matched", json_boolean(m));
                o.conds = json_array();
                json_object_set_new(r, "conditions", o.conds);
                json_array_append_new(rules, r);
            } else {
                printf("  rule %s: %s\n", s->rule_id, m ? "matched" : "not matched");
            }
            if (i > start)
                render_tree(&o, st->v, start, i);
            start = i + 1;
            break;
        }
        case AGORA__RULES_STEP_SKIP:
            if (js) {
                json_t *k = json_object();
                json_object_set_new(k, "plugin", json_string(s->plugin_id));
                json_object_set_new(k, "rule", json_string(s->rule_id));
                json_object_set_new(k, "reason", json_string(s->reason));
                json_array_append_new(skipped, k);
            } else {
                printf("  skipped %s (rule %s): %s\n", s->plugin_id, s->rule_id, s->reason);
            }
            start = i + 1;
            break;
        case AGORA__RULES_STEP_FALLBACK:
            if (js)
                json_object_set_new(js, "fallback", json_string(s->op));
            else
                printf("  no rule matched: fallback %s\n", s->op);
            start = i + 1;
            break;
        case AGORA__RULES_STEP_DEFAULT:
            if (js) {
                json_t *d = json_object();
                json_object_set_new(d, "plugin", json_string(s->plugin_id));
                json_object_set_new(d, "accepted", json_boolean(s->outcome == AGORA__RULES_PASS));
                json_array_append_new(deflt, d);
            } else {
                printf("  default rule: %s %s the series' modality\n", s->plugin_id,
                       s->outcome == AGORA__RULES_PASS ? "accepts" : "does not accept");
            }
            start = i + 1;
            break;
        default: /* COND and GROUP: rendered under their rule */
            break;
        }
    }
    if (js) {
        json_object_set_new(js, "rules", rules);
        json_object_set_new(js, "skipped", skipped);
        json_object_set_new(js, "default_rule", deflt);
        if (json_object_get(js, "fallback") == NULL)
            json_object_set_new(js, "fallback", json_null());
    }
}

static void render_plan(const agora__route_plan *p, int have_apps, json_t *js)
{
    if (js) {
        json_object_set_new(js, "action", json_string(agora__route_action_name(p->action)));
        json_object_set_new(js, "rule", p->rule_id ? json_string(p->rule_id) : json_null());
        json_t *jobs = json_array();
        for (size_t i = 0; i < p->n_matches; i++) {
            const agora__rule_match *m = &p->matches[i];
            json_t *j = json_object(), *to = json_array();
            json_object_set_new(j, "plugin", json_string(m->plugin_id));
            json_object_set_new(j, "version", json_text_or_null(m->plugin_version));
            json_object_set_new(j, "rule", json_string(m->rule_id));
            json_object_set_new(j, "scope", json_string(m->scope));
            json_object_set_new(j, "priority",
                                json_string(agora__rules_priority_name(m->priority)));
            for (size_t k = 0; k < m->n_send_to; k++)
                json_array_append_new(to, json_string(m->send_to[k]));
            json_object_set_new(j, "send_to", to);
            json_array_append_new(jobs, j);
        }
        json_object_set_new(js, "jobs", jobs);
        return;
    }
    if (p->action == AGORA__ROUTE_NONE) {
        printf("  result: nothing matched (no fallback): nothing runs\n");
        return;
    }
    if (p->action == AGORA__ROUTE_DISCARD) {
        printf("  result: discard (rule %s): nothing runs\n", p->rule_id);
        return;
    }
    printf("  result: run (rule %s): %zu job%s\n", p->rule_id, p->n_matches,
           p->n_matches == 1 ? "" : "s");
    if (p->n_matches == 0 && !have_apps && strcmp(p->rule_id, AGORA__RULES_ID_DEFAULT) == 0)
        printf("    (the default rule runs the installed apps accepting the modality; no clinic "
               "home was read)\n");
    for (size_t i = 0; i < p->n_matches; i++) {
        const agora__rule_match *m = &p->matches[i];
        printf("    %s%s%s: scope %s, priority %s, send to ", m->plugin_id,
               m->plugin_version[0] ? "@" : "", m->plugin_version, m->scope,
               agora__rules_priority_name(m->priority));
        for (size_t k = 0; k < m->n_send_to; k++)
            printf("%s%s", k ? ", " : "", m->send_to[k]);
        printf("%s (rule %s)\n", m->n_send_to ? "" : "nowhere (kept in the home)", m->rule_id);
    }
}

/* ---- rules test --------------------------------------------------------------------------------
 */

typedef struct test_opts {
    const char *home, *calling, *called, *origin;
    int json, no_home;
} test_opts;

/* The installed apps when a clinic home can be read. 0, or EXIT_CANNOT after a message when
 * the home was named (--home or AGORA_HOME) and cannot be opened. */
static int read_apps(const test_opts *o, agora__trust_plugin **apps, size_t *n, int *have)
{
    *apps = NULL;
    *n = 0;
    *have = 0;
    if (o->no_home)
        return 0;
    int named = o->home != NULL || getenv("AGORA_HOME") != NULL;
    char dir[4096];
    agora__error err = {0};
    struct stat sb;
    if (agora__trust_home_resolve(o->home, dir, sizeof dir, &err) != 0 ||
        (!named && (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))) {
        if (named) {
            fprintf(stderr, "agora rules test: %s\n", err.msg);
            return EXIT_CANNOT;
        }
        fprintf(stderr,
                "agora rules test: no clinic home at %s: the apps the rules name are "
                "not checked against installed apps (--home DIR to use one)\n",
                dir);
        return 0;
    }
    agora__trust_home *home = NULL;
    int rc = agora__trust_home_open(dir, &home, &err);
    if (rc == 0)
        rc = agora__trust_list(home, apps, n, &err);
    agora__trust_home_close(home);
    if (rc != 0) {
        fprintf(stderr, "agora rules test: reading the installed apps: %s%s\n", err.msg,
                named ? "" : " (--no-home to test without them)");
        return EXIT_CANNOT;
    }
    *have = 1;
    return 0;
}

static int cmp_series_path(const void *a, const void *b)
{
    return strcmp(((const series *)a)->paths[0], ((const series *)b)->paths[0]);
}

static int run_test(const test_opts *o, const char *rules_path, const char *const *files,
                    size_t n_files)
{
    agora__rules *r = NULL;
    int st = load_rules("rules test", rules_path, &r);
    if (st != 0)
        return st;
    agora__trust_plugin *apps = NULL;
    size_t n_apps = 0;
    int have_apps = 0;
    if ((st = read_apps(o, &apps, &n_apps, &have_apps)) != 0) {
        agora__rules_free(r);
        return st;
    }
    reader rd = {.calling = o->calling, .called = o->called, .origin = o->origin};
    agora__ingest_options io;
    agora__ingest_options_default(&io);
    agora__error err = {0};
    agora__dicom_scan *scan = NULL;
    steps *stp = malloc(sizeof *stp);
    json_t *doc = NULL, *jseries = NULL;
    if (stp == NULL) {
        agora__error_set(&err, AGORA_ENOMEM, "out of memory");
        st = EXIT_CANNOT;
        goto done;
    }
    if (agora__ingest_open(&io, &rd.ing, &err) != 0) {
        st = EXIT_CANNOT;
        goto done;
    }
    agora__dicom_scan_options so;
    agora__dicom_scan_options_default(&so);
    so.extract = extract;
    so.extract_ctx = &rd;
    if (agora__dicom_scan_paths(files, n_files, &so, &scan, &err) != 0) {
        st = EXIT_CANNOT;
        goto done;
    }
    if (rd.n > 1)
        qsort(rd.v, rd.n, sizeof *rd.v, cmp_series_path);
    if (o->json) {
        doc = json_object();
        jseries = json_array();
        json_object_set_new(doc, "rules_file", json_string(rules_path));
        json_object_set_new(doc, "apps_checked", json_boolean(have_apps));
        json_object_set_new(doc, "series", jseries);
    }
    size_t unmatched = 0;
    for (size_t i = 0; i < rd.n; i++) {
        series *s = &rd.v[i];
        agora__route_plan p;
        stp->n = 0;
        stp->truncated = 0;
        if (agora__rules_eval(r, have_apps ? apps : NULL, n_apps, &s->attrs, &p, collect, stp,
                              &err) != 0) {
            st = EXIT_CANNOT;
            goto done;
        }
        unmatched += p.action == AGORA__ROUTE_NONE;
        json_t *js = NULL;
        if (o->json) {
            js = json_object();
            json_t *fl = json_array();
            for (size_t k = 0; k < s->n_paths; k++)
                json_array_append_new(fl, json_string(s->paths[k]));
            json_object_set_new(js, "index", json_integer((json_int_t)i + 1));
            json_object_set_new(js, "files", fl);
            json_object_set_new(js, "attributes", json_attrs(&s->attrs));
            json_array_append_new(jseries, js);
        } else {
            printf("series %zu: %zu file%s, first %s\n", i + 1, s->n_paths,
                   s->n_paths == 1 ? "" : "s", s->paths[0]);
            print_attrs(&s->attrs);
        }
        render_steps(stp, js);
        if (stp->truncated && !o->json)
            printf("  (explanation truncated after %u steps)\n", MAX_STEPS);
        render_plan(&p, have_apps, js);
        agora__route_plan_free(&p);
    }
    /* Files the reader refused, except objects without an image that were routed anyway. */
    size_t refused = 0;
    json_t *jref = o->json ? json_array() : NULL;
    for (size_t i = 0; i < scan->n_notes; i++) {
        if (recorded(&rd, scan->notes[i].path))
            continue;
        refused++;
        if (o->json) {
            json_t *f = json_object();
            json_object_set_new(f, "file", json_string(scan->notes[i].path));
            json_object_set_new(f, "reason", json_string(scan->notes[i].reason));
            json_array_append_new(jref, f);
        } else {
            printf("not read: %s: %s\n", scan->notes[i].path, scan->notes[i].reason);
        }
    }
    if (o->json) {
        json_object_set_new(doc, "not_read", jref);
        json_object_set_new(doc, "unmatched", json_integer((json_int_t)unmatched));
    }
    if (rd.n == 0) {
        agora__error_set(&err, AGORA_EINPUT, "no DICOM file could be read (%zu refused)", refused);
        st = EXIT_CANNOT;
    } else {
        st = unmatched ? EXIT_UNMATCHED : 0;
        if (!o->json)
            printf("%zu series: %zu routed, %zu matched no rule\n", rd.n, rd.n - unmatched,
                   unmatched);
    }
done:
    if (st == EXIT_CANNOT)
        fprintf(stderr, "agora rules test: %s\n", err.msg);
    else if (o->json && agora__json_emit(stdout, doc, AGORA__JSON_DOC) != 0)
        st = EXIT_CANNOT;
    else if (!o->json && fflush(stdout) != 0)
        st = EXIT_CANNOT;
    json_decref(doc);
    free(stp);
    agora__dicom_scan_free(scan);
    reader_free(&rd);
    free(apps);
    agora__rules_free(r);
    return st;
}

static int cmd_test(int argc, char **argv)
{
    test_opts o = {0};
    const agora__cli_opt opts[] = {
        AGORA__CLI_OPT_JSON(&o.json, "print the series, the rules' verdicts and the jobs as JSON"),
        AGORA__CLI_OPT_HOME(&o.home),
        {"--no-home", 0, AGORA__CLI_FLAG, &o.no_home, NULL,
         "do not read a clinic home: plugins as the rules name them", 0, NULL, 0, 0},
        {"--calling-ae", 0, AGORA__CLI_VALUE, &o.calling, "AE",
         "route as if sent by this AE title (CallingAETitle)", 0, NULL, 0, 0},
        {"--called-ae", 0, AGORA__CLI_VALUE, &o.called, "AE",
         "route as if sent to this AE title (CalledAETitle)", 0, NULL, 0, 0},
        {"--origin", 0, AGORA__CLI_VALUE, &o.origin, "dimse|stow",
         "route as if received over DIMSE (default) or STOW-RS", 0, NULL, 0, 0},
    };
    const agora__cli_cmd cmd = {
        "rules test",
        "[OPTIONS] RULES.json FILE|FOLDER...",
        "Show what `agora serve --rules RULES.json` would do with these DICOM files: per\n"
        "series (grouped by Series Instance UID; files read by the sandboxed reader, as\n"
        "the daemon reads them) its routing attributes, every rule's conditions with\n"
        "pass/fail/absent, the apps that would run (checked against the installed apps of\n"
        "the clinic home when there is one), their priority and destinations.\n"
        "Exit status: 0 every series routed, 1 some series matched no rule and there is\n"
        "no fallback, 2 usage error or invalid rules, 3 nothing could be read.",
        opts,
        AGORA__CLI_N(opts),
        2,
        SIZE_MAX};
    size_t n_pos;
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &st))
        return st;
    if (o.origin != NULL && strcmp(o.origin, "dimse") != 0 && strcmp(o.origin, "stow") != 0)
        return agora__cli_usage_error("rules test", "--origin is dimse or stow, not '%.20s'",
                                      o.origin);
    const char *const aes[] = {o.calling, o.called};
    for (size_t i = 0; i < 2; i++) {
        size_t len = aes[i] ? strlen(aes[i]) : 1;
        int ok = len >= 1 && len <= 16;
        for (size_t k = 0; ok && aes[i] && k < len; k++)
            ok = aes[i][k] > 0x20 && aes[i][k] < 0x7f && aes[i][k] != '\\';
        if (!ok)
            return agora__cli_usage_error("rules test",
                                          "%s takes an AE title: 1..16 printable ASCII "
                                          "characters without space or backslash",
                                          i ? "--called-ae" : "--calling-ae");
    }
    if (o.no_home && o.home != NULL)
        return agora__cli_usage_error("rules test", "--home and --no-home exclude each other");
    return run_test(&o, argv[1], (const char *const *)argv + 2, n_pos - 1);
}

int agora__cmd_rules(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"test", cmd_test, "what the rules would do with DICOM files, and why"},
        {"check", cmd_check, "validate a rules file"},
    };
    return agora__cli_dispatch("rules",
                               "Routing rules of `agora serve` (docs/clinic-guide.md, \"Routing "
                               "rules\"; schemas/rules.schema.json).",
                               subs, AGORA__CLI_N(subs), argc, argv);
}
