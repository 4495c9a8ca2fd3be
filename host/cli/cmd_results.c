/*
 * CLI: `agora results show|export|studies`: reading stored results of the clinic home.
 * Output goes to stdout (or -o FILE); errors never quote UIDs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "opt.h"
#include "export.h"
#include "results.h"
#include "trust.h"

static void print_text(const json_t *results)
{
    size_t i, j;
    json_t *r, *e;
    if (json_array_size(results) == 0)
        printf("no results stored for this study\n");
    json_array_foreach((json_t *)results, i, r)
    {
        const json_t *p = json_object_get(r, "plugin");
        printf("%s  %s@%s  invocation %s  %s\n", json_string_value(json_object_get(r, "created")),
               json_string_value(json_object_get(p, "id")),
               json_string_value(json_object_get(p, "version")),
               json_string_value(json_object_get(r, "invocation_id")),
               json_string_value(json_object_get(r, "status")));
        if (json_object_get(r, "error"))
            printf("  error: %s\n", json_string_value(json_object_get(r, "error")));
        json_array_foreach(json_object_get(r, "findings"), j, e)
        {
            const json_t *c = json_object_get(e, "code");
            printf("  finding  %s (%s %s) confidence %.3f\n",
                   json_string_value(json_object_get(c, "meaning")),
                   json_string_value(json_object_get(c, "scheme")),
                   json_string_value(json_object_get(c, "code")),
                   json_number_value(json_object_get(e, "confidence")));
        }
        json_array_foreach(json_object_get(r, "measurements"), j, e)
        {
            printf("  measure  %s = %g %s\n", json_string_value(json_object_get(e, "name")),
                   json_number_value(json_object_get(e, "value")),
                   json_string_value(json_object_get(e, "unit")));
        }
        size_t nreg = json_array_size(json_object_get(r, "regions"));
        if (nreg)
            printf("  regions  %zu\n", nreg);
        if (json_object_get(r, "summary"))
            printf("  summary  %s\n", json_string_value(json_object_get(r, "summary")));
        /* validated: at most 256 bytes, no control characters (cannot break the line) */
        const json_t *triage = json_object_get(r, "triage");
        if (triage)
            printf("  urgent   %s\n", json_string_value(json_object_get(triage, "reason")));
    }
}

/* A result document (borrowed) to stdout, or to FILE written atomically (0600). 0 or 1. */
static int write_out(const char *cmd, const char *file, const json_t *doc)
{
    if (file == NULL || strcmp(file, "-") == 0)
        return agora__json_emit(stdout, doc, AGORA__JSON_DOC);
    size_t n = 0;
    char *text = agora__json_text(doc, AGORA__JSON_DOC, &n);
    if (text == NULL) {
        fprintf(stderr, "agora results %s: out of memory\n", cmd);
        return 1;
    }
    agora__error err = {0};
    int rc = 0;
    if (agora__write_file_atomic(file, text, n, 0600, &err) != 0) {
        fprintf(stderr, "agora results %s: %s\n", cmd, err.msg);
        rc = 1;
    }
    free(text);
    return rc;
}

#define MAX_SOURCES 64

/* Each DICOM object written is named on stdout, one per line. */
static void print_written(void *arg, const char *path)
{
    printf("%s\n", path);
    (*(size_t *)arg)++;
}

static int export_dicom(const char *home, const char *study, const json_t *results,
                        const char *format, const char *dir, const char *const *sources,
                        size_t n_sources, const char *uid_root)
{
    int want_seg = strcmp(format, "sr") != 0, want_sr = strcmp(format, "seg") != 0;
    agora__error err = {0};
    if (agora__mkdirs(dir, 0755, &err) != 0) {
        fprintf(stderr, "agora results export: %s\n", err.msg);
        return 1;
    }
    /* The key the plugin view's UIDs were pseudonymised with (agora run), to re-identify the
     * pseudonyms a plugin may have echoed in its text. */
    uint8_t view_key[32];
    agora__trust_home *th = NULL;
    if (agora__trust_home_open(home, &th, &err) != 0 ||
        agora__trust_derive_key(th, AGORA__KEY_UID, view_key) != 0) {
        fprintf(stderr, "agora results export: cannot derive the clinic's keys: %s\n",
                err.msg[0] ? err.msg : "the home has no secret");
        agora__trust_home_close(th);
        explicit_bzero(view_key, sizeof view_key);
        return 1;
    }
    agora__trust_home_close(th);
    agora__ingest *ing = NULL;
    agora__ingest_options iopt;
    agora__ingest_options_default(&iopt);
    if (agora__ingest_open(&iopt, &ing, &err) != 0) {
        fprintf(stderr, "agora results export: cannot start the sandboxed DICOM reader: %s\n",
                err.msg);
        explicit_bzero(view_key, sizeof view_key);
        return 1;
    }
    int rc = 0;
    size_t i, n_written = 0;
    const json_t *r;
    const agora__export_result_opts eo = {.want_sr = want_sr, .want_seg = want_seg,
                                          .sources = sources, .n_sources = n_sources,
                                          .uid_root = uid_root, .view_key = view_key};
    json_array_foreach((json_t *)results, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "status")), "ok") != 0)
            continue;
        if (agora__export_result(ing, home, study, r, &eo, dir, print_written, &n_written,
                                 &err) != 0) {
            fprintf(stderr, "agora results export: %s\n", err.msg);
            rc = 1;
            break;
        }
    }
    agora__ingest_close(ing);
    explicit_bzero(view_key, sizeof view_key);
    if (rc == 0 && n_written == 0)
        fprintf(stderr, want_sr ? "agora results export: the study has no ok result; nothing "
                                  "to write\n"
                                : "agora results export: no result of this study has a mask; "
                                  "nothing to write as SEG\n");
    return rc;
}

/* The options of the results subcommands; each table names the fields it takes. */
typedef struct results_opts {
    const char *home, *format, *file, *uid_root;
    agora__cli_list sources;
    int json;
} results_opts;

/* The results subcommands, as bits of the rows of their one option table. */
enum { SHOW = 1u, EXPORT = 2u, STUDIES = 4u };

/* Parse argv against the one table of the results subcommands (desc->which picks the rows),
 * then resolve the home into home_buf. 1 to go on; else 0 with *status the exit status. */
static int results_parse(const agora__cli_cmd *desc, int argc, char **argv, results_opts *o,
                         char *home_buf, size_t home_size, int *status)
{
    memset(o, 0, sizeof *o);
    const agora__cli_opt table[] = {
        {"--json", 0, AGORA__CLI_FLAG, &o->json, NULL, "print JSON", 0, NULL, 0, SHOW | STUDIES},
        {"--format", 0, AGORA__CLI_VALUE, &o->format, "json|fhir|seg|sr|dicom",
         "the project's JSON, a FHIR R4 Bundle, or DICOM objects", AGORA__CLI_REQUIRED, NULL, 0,
         EXPORT},
        {"--out", 'o', AGORA__CLI_VALUE, &o->file, "FILE|DIR",
         "write here (json|fhir: default stdout; seg|sr|dicom: a folder)", 0, NULL, 0, EXPORT},
        {"--source", 0, AGORA__CLI_LIST, &o->sources, "PATH",
         "seg|sr|dicom: the study's real DICOM files or folder", 0, NULL, MAX_SOURCES, EXPORT},
        {"--uid-root", 0, AGORA__CLI_VALUE, &o->uid_root, "ROOT",
         "seg|sr|dicom: derive UIDs under this root (default 2.25)", 0, NULL, 0, EXPORT},
        AGORA__CLI_OPT_HOME(&o->home),
    };
    size_t n_pos;
    if (!agora__cli_parse_with(desc, table, AGORA__CLI_N(table), argc, argv, &n_pos, status))
        return 0;
    /* A missing home is a runtime failure (1), not a usage error. */
    if (agora__cli_home(desc->name, o->home, home_buf, home_size) != 0) {
        agora__cli_list_free(&o->sources);
        *status = 1;
        return 0;
    }
    return 1;
}

/* What each command takes and does, for its generated --help. */
#define SHOW_ARGS  "STUDY_UID [--json] [--home DIR]"
#define SHOW_ABOUT "Print the validated results stored for a study (oldest first)."

#define EXPORT_ARGS                                                                                \
    "STUDY_UID --format json|fhir [-o FILE] [--home DIR]\n"                                        \
    "       agora results export STUDY_UID --format seg|sr|dicom -o DIR --source PATH\n"           \
    "                            [--source PATH...] [--uid-root ROOT] [--home DIR]"
#define EXPORT_ABOUT                                                                               \
    "json|fhir write the results as the project's JSON or as a FHIR R4 Bundle\n"                   \
    "(DiagnosticReport + Observations).\n"                                                         \
    "seg/sr/dicom write DICOM objects for a PACS into DIR (dicom = both): a\n"                     \
    "Segmentation per result with masks (seg-<invocation>.dcm) and a TID 1500 SR per result\n"      \
    "(sr-<invocation>.dcm), with the Patient and\n"                                                \
    "Study of the real source files given by --source (the folder the study was run\n"             \
    "from). UIDs are derived from the invocation (under --uid-root, else 2.25), so\n"              \
    "exporting again gives the same files."

#define STUDIES_ARGS  "[--json] [--home DIR]"
#define STUDIES_ABOUT                                                                              \
    "List the studies that have results, urgent ones first (marked URGENT; the plugins' reasons\n"  \
    "are in --json and show)."

static const agora__cli_cmd show_cmd = {"results show", SHOW_ARGS, SHOW_ABOUT, NULL, 0, 1, 1, SHOW};
static const agora__cli_cmd export_cmd = {
    "results export", EXPORT_ARGS, EXPORT_ABOUT, NULL, 0, 1, 1, EXPORT};
static const agora__cli_cmd studies_cmd = {
    "results studies", STUDIES_ARGS, STUDIES_ABOUT, NULL, 0, 0, 0, STUDIES};

/* The stored results of the study named by argv[1]; NULL after printing why (*status set). */
static json_t *study_results(const char *cmd, const char *home, const char *study, int *status)
{
    if (!agora__results_uid_valid(study)) {
        *status = agora__cli_usage_error(cmd, "STUDY_UID is not a DICOM UID (digits and dots)");
        return NULL;
    }
    agora__error err = {0};
    json_t *results = NULL;
    if (agora__results_list(home, study, &results, &err) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, err.msg);
        *status = 1;
        return NULL;
    }
    return results;
}

/* The project's JSON export of one study's results (results show --json, export --format json). */
static int write_results_doc(const char *cmd, const char *file, const char *study, json_t *results)
{
    json_t *doc = json_pack("{s:s,s:s,s:O}", "schema", "agora.results-export/1", "study_uid", study,
                            "results", results);
    int rc = write_out(cmd, file, doc);
    json_decref(doc);
    return rc;
}

static int show(const results_opts *o, const char *home, const char *study)
{
    int rc;
    json_t *results = study_results(show_cmd.name, home, study, &rc);
    if (results == NULL)
        return rc;
    rc = 0;
    if (o->json)
        rc = write_results_doc("show", NULL, study, results);
    else
        print_text(results);
    json_decref(results);
    return rc;
}

static int export(const results_opts *po, const char *home, const char *study)
{
    const results_opts o = *po;
    const char *format = o.format;
    int rc;
    int dicom =
        strcmp(format, "seg") == 0 || strcmp(format, "sr") == 0 || strcmp(format, "dicom") == 0;
    rc = 2;
    if (!dicom && strcmp(format, "json") != 0 && strcmp(format, "fhir") != 0)
        agora__cli_usage_error(export_cmd.name, "--format takes json, fhir, seg, sr or dicom");
    else if (dicom && (o.file == NULL || o.sources.n == 0))
        agora__cli_usage_error(export_cmd.name,
                               "--format seg|sr|dicom needs -o DIR and --source PATH "
                               "(the study's DICOM files)");
    else if (!dicom && (o.sources.n || o.uid_root))
        agora__cli_usage_error(export_cmd.name,
                               "--source and --uid-root go with --format seg, sr or "
                               "dicom");
    else
        rc = 0;
    json_t *results = rc == 0 ? study_results(export_cmd.name, home, study, &rc) : NULL;
    if (results == NULL)
        return rc;
    agora__error err = {0};
    if (dicom) {
        rc = export_dicom(home, study, results, format, o.file, o.sources.v, o.sources.n,
                          o.uid_root);
    } else if (strcmp(format, "json") == 0) {
        rc = write_results_doc("export", o.file, study, results);
    } else {
        json_t *bundle = NULL;
        if (agora__results_fhir_bundle(results, &bundle, &err) != 0) {
            fprintf(stderr, "agora results export: %s\n", err.msg);
            rc = 1;
        } else {
            rc = write_out("export", o.file, bundle);
        }
        json_decref(bundle);
    }
    json_decref(results);
    return rc;
}

static int studies(const results_opts *o, const char *home)
{
    int rc;
    agora__error err = {0};
    json_t *arr = NULL;
    if (agora__results_worklist(home, &arr, &err) != 0) {
        fprintf(stderr, "agora results studies: %s\n", err.msg);
        return 1;
    }
    size_t i;
    json_t *v;
    rc = 0;
    /* Text: the UID, and for an urgent study a tab and URGENT. The plugin's reason is free
     * text from untrusted code (which may have read burned-in pixel text): it is never put
     * on a worklist line, only in --json and `results show`. */
    if (o->json)
        rc = agora__json_emit(stdout, arr, AGORA__JSON_DOC);
    else
        json_array_foreach(arr, i, v)
        {
            printf("%s%s\n", json_string_value(json_object_get(v, "study_uid")),
                   json_is_true(json_object_get(v, "urgent")) ? "\tURGENT" : "");
        }
    json_decref(arr);
    return rc;
}

/* Every results subcommand: its options from the one table, the home, then its work. */
static int results_run(const agora__cli_cmd *desc, int argc, char **argv)
{
    results_opts o;
    char home[4096];
    int rc;
    if (!results_parse(desc, argc, argv, &o, home, sizeof home, &rc))
        return rc;
    if (desc->which == SHOW)
        rc = show(&o, home, argv[1]);
    else if (desc->which == EXPORT)
        rc = export(&o, home, argv[1]);
    else
        rc = studies(&o, home);
    agora__cli_list_free(&o.sources); /* the parser's; export borrowed it */
    return rc;
}

static int results_show(int argc, char **argv)
{
    return results_run(&show_cmd, argc, argv);
}

static int results_export(int argc, char **argv)
{
    return results_run(&export_cmd, argc, argv);
}

static int results_studies(int argc, char **argv)
{
    return results_run(&studies_cmd, argc, argv);
}

int agora__cmd_results(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"show", results_show, "the results stored for a study"},
        {"export", results_export, "a study's results as JSON, FHIR or DICOM (SEG, SR)"},
        {"studies", results_studies, "the studies that have results"},
    };
    return agora__cli_dispatch("results",
                               "Stored results of the clinic home (--home DIR, else AGORA_HOME, "
                               "else ~/.local/share/agora).\nOutput goes to stdout (or -o); errors "
                               "never quote UIDs.",
                               subs, AGORA__CLI_N(subs), argc, argv);
}
