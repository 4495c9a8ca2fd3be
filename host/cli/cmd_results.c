/*
 * CLI: `agora results show|export|studies`: reading stored results of the clinic home.
 * Output goes to stdout (or -o FILE); errors never quote UIDs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "export.h"
#include "results.h"
#include "trust.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: agora results show STUDY_UID [--json] [--home DIR]\n"
            "       agora results export STUDY_UID --format json|fhir [-o FILE] [--home DIR]\n"
            "       agora results export STUDY_UID --format seg|sr|dicom -o DIR --source PATH\n"
            "                            [--source PATH...] [--uid-root ROOT] [--home DIR]\n"
            "       agora results studies [--json] [--home DIR]\n"
            "show prints the validated results stored for a study (oldest first); export writes\n"
            "them as the project's JSON or as a FHIR R4 Bundle (DiagnosticReport +\n"
            "Observations); studies lists the studies that have results.\n"
            "seg/sr/dicom write DICOM objects for a PACS into DIR (dicom = both): a\n"
            "Segmentation per result with masks (seg-<invocation>.dcm), with the Patient and\n"
            "Study of the real source files given by --source (the folder the study was run\n"
            "from). UIDs are derived from the invocation (under --uid-root, else 2.25), so\n"
            "exporting again gives the same files.\n"
            "Home: --home DIR, else AGORA_HOME.\n");
}

static int usage_error(const char *what)
{
    fprintf(stderr, "agora results: %s; run 'agora results --help'\n", what);
    return 2;
}

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
    }
}

static int write_out(const char *cmd, const char *file, const json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    if (text == NULL) {
        fprintf(stderr, "agora results %s: out of memory\n", cmd);
        return 1;
    }
    int rc = 0;
    if (file == NULL || strcmp(file, "-") == 0) {
        if (puts(text) < 0 || fflush(stdout) != 0)
            rc = 1;
    } else {
        agora__error err = {0};
        size_t n = strlen(text);
        text[n] = '\n';
        if (agora__write_file_atomic(file, text, n + 1, 0600, &err) != 0) {
            fprintf(stderr, "agora results %s: %s\n", cmd, err.msg);
            rc = 1;
        }
        text[n] = '\0';
    }
    free(text);
    return rc;
}

/* The plugin's vendor from its installed manifest (HOME/plugins/<id>/manifest.json, checked at
 * install), when the installed version is the result's; "" otherwise. */
static void plugin_vendor(const char *home, const json_t *result, char *out, size_t size)
{
    out[0] = '\0';
    const json_t *p = json_object_get(result, "plugin");
    const char *id = json_string_value(json_object_get(p, "id"));
    char path[4096];
    if (id == NULL || agora__home_entry_path(home, AGORA__HOME_PLUGINS, id, "manifest.json", path,
                                             sizeof path, NULL) != 0)
        return;
    json_error_t je;
    json_t *m = json_load_file(path, 0, &je);
    const char *v = json_string_value(json_object_get(m, "vendor"));
    const char *ver = json_string_value(json_object_get(m, "version"));
    const char *want = json_string_value(json_object_get(p, "version"));
    if (v && ver && want && strcmp(ver, want) == 0)
        snprintf(out, size, "%s", v);
    json_decref(m);
}

#define MAX_SOURCES 64

static int export_dicom(const char *home, const char *study, const json_t *results,
                        const char *format, const char *dir, const char *const *sources,
                        size_t n_sources, const char *uid_root)
{
    int want_seg = strcmp(format, "sr") != 0, want_sr = strcmp(format, "seg") != 0;
    agora__error err = {0};
    if (want_sr) {
        /* Hook for the SR (TID 1500) writer of issue 11: it is built on branch i11-sr and
         * wired here at merge (agora__export_sr, export.h). */
        fprintf(stderr, "agora results export: the SR export is not built into this agora; "
                        "use --format seg\n");
        return 1;
    }
    if (agora__mkdirs(dir, 0755, &err) != 0) {
        fprintf(stderr, "agora results export: %s\n", err.msg);
        return 1;
    }
    agora__ingest *ing = NULL;
    agora__ingest_options iopt;
    agora__ingest_options_default(&iopt);
    if (agora__ingest_open(&iopt, &ing, &err) != 0) {
        fprintf(stderr, "agora results export: cannot start the sandboxed DICOM reader: %s\n",
                err.msg);
        return 1;
    }
    int rc = 0;
    size_t i, n_written = 0;
    const json_t *r;
    json_array_foreach((json_t *)results, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "status")), "ok") != 0)
            continue;
        agora__export_source src;
        if (agora__export_source_load(ing, sources, n_sources, study,
                                      json_string_value(json_object_get(r, "series_uid")), &src,
                                      &err) != 0) {
            fprintf(stderr, "agora results export: invocation %s: %s\n",
                    json_string_value(json_object_get(r, "invocation_id")), err.msg);
            rc = 1;
            break;
        }
        char vendor[256], path[4096];
        plugin_vendor(home, r, vendor, sizeof vendor);
        agora__export_ctx ctx = {.src = &src, .uid_root = uid_root, .vendor = vendor};
        int written = 0;
        if (want_seg &&
            agora__export_seg(&ctx, home, r, dir, &written, path, sizeof path, &err) != 0) {
            fprintf(stderr, "agora results export: invocation %s: %s\n",
                    json_string_value(json_object_get(r, "invocation_id")), err.msg);
            rc = 1;
        } else if (written) {
            printf("%s\n", path);
            n_written++;
        }
        agora__export_source_free(&src);
        if (rc != 0)
            break;
    }
    agora__ingest_close(ing);
    if (rc == 0 && n_written == 0)
        fprintf(stderr, "agora results export: no result of this study has a mask; nothing to "
                        "write as SEG\n");
    return rc;
}

int agora__cmd_results(int argc, char **argv)
{
    if (argc < 2) {
        help(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        help(stdout);
        return 0;
    }
    int show = strcmp(sub, "show") == 0, export = strcmp(sub, "export") == 0;
    int studies = strcmp(sub, "studies") == 0;
    if (!show && !export && !studies && sub[0] == '-') {
        fprintf(stderr, "agora results: unknown option %.100s (see agora results --help)\n", sub);
        return 2;
    }
    if (!show && !export && !studies)
        return usage_error("unknown subcommand; use show, export or studies");
    const char *home = NULL, *study = NULL, *format = NULL, *file = NULL, *uid_root = NULL;
    const char *sources[MAX_SOURCES];
    size_t n_sources = 0;
    int json = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0 && !export) {
            json = 1;
        } else if (export && (strcmp(a, "--source") == 0 || strcmp(a, "--uid-root") == 0)) {
            if (i + 1 >= argc)
                return usage_error("an option needs a value");
            if (a[2] == 'u')
                uid_root = argv[++i];
            else if (n_sources == MAX_SOURCES)
                return usage_error("at most 64 --source paths");
            else
                sources[n_sources++] = argv[++i];
        } else if (strcmp(a, "--home") == 0 ||
                   (export && (strcmp(a, "--format") == 0 || strcmp(a, "-o") == 0))) {
            if (i + 1 >= argc)
                return usage_error("an option needs a value");
            const char **slot = strcmp(a, "--home") == 0     ? &home
                                : strcmp(a, "--format") == 0 ? &format
                                                             : &file;
            *slot = argv[++i];
        } else if (a[0] == '-') {
            return usage_error("unknown option");
        } else if (study == NULL && !studies) {
            study = a;
        } else {
            return usage_error("too many arguments");
        }
    }
    /* The same home every clinic command uses: --home, AGORA_HOME, $XDG_DATA_HOME/agora,
     * ~/.local/share/agora. A missing home is a runtime failure (1), not a usage error. */
    char home_buf[4096];
    agora__error herr = {0};
    if (agora__trust_home_resolve(home, home_buf, sizeof home_buf, &herr) != 0) {
        fprintf(stderr, "agora results: %s\n", herr.msg);
        return 1;
    }
    home = home_buf;
    struct stat st;
    if (stat(home, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr,
                "agora results: clinic home %s is not a directory; create it with "
                "agora init\n",
                home);
        return 1;
    }
    agora__error err = {0};
    if (studies) {
        json_t *arr = NULL;
        if (agora__results_studies(home, &arr, &err) != 0) {
            fprintf(stderr, "agora results studies: %s\n", err.msg);
            return 1;
        }
        size_t i;
        json_t *v;
        int rc = 0;
        if (json)
            rc = write_out("studies", NULL, arr);
        else
            json_array_foreach(arr, i, v) puts(json_string_value(v));
        json_decref(arr);
        return rc;
    }
    if (study == NULL)
        return usage_error("name the study by its Study Instance UID");
    if (!agora__results_uid_valid(study))
        return usage_error("STUDY_UID is not a DICOM UID (digits and dots)");
    int dicom =
        export && format &&
        (strcmp(format, "seg") == 0 || strcmp(format, "sr") == 0 || strcmp(format, "dicom") == 0);
    if (export && !dicom &&
        (format == NULL || (strcmp(format, "json") != 0 && strcmp(format, "fhir") != 0)))
        return usage_error("export needs --format json, fhir, seg, sr or dicom");
    if (dicom && (file == NULL || n_sources == 0))
        return usage_error("--format seg|sr|dicom needs -o DIR and --source PATH (the study's "
                           "DICOM files)");
    if (!dicom && (n_sources || uid_root))
        return usage_error("--source and --uid-root go with --format seg, sr or dicom");
    json_t *results = NULL;
    if (agora__results_list(home, study, &results, &err) != 0) {
        fprintf(stderr, "agora results %s: %s\n", sub, err.msg);
        return 1;
    }
    int rc = 0;
    if (dicom) {
        rc = export_dicom(home, study, results, format, file, sources, n_sources, uid_root);
    } else if (show && !json) {
        print_text(results);
    } else if (show || strcmp(format, "json") == 0) {
        json_t *doc = json_pack("{s:s,s:s,s:O}", "schema", "agora.results-export/1", "study_uid",
                                study, "results", results);
        rc = doc ? write_out(sub, file, doc) : 1;
        json_decref(doc);
    } else {
        json_t *bundle = NULL;
        if (agora__results_fhir_bundle(results, &bundle, &err) != 0) {
            fprintf(stderr, "agora results export: %s\n", err.msg);
            rc = 1;
        } else {
            rc = write_out(sub, file, bundle);
        }
        json_decref(bundle);
    }
    json_decref(results);
    return rc;
}
