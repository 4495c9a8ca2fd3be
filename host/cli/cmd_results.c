/*
 * CLI: `agora results show|export|studies`: reading stored results of the clinic home.
 * Output goes to stdout (or -o FILE); errors never quote UIDs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "results.h"
#include "trust.h"

static void help(FILE *out)
{
    fprintf(out,
            "usage: agora results show STUDY_UID [--json] [--home DIR]\n"
            "       agora results export STUDY_UID --format json|fhir [-o FILE] [--home DIR]\n"
            "       agora results studies [--json] [--home DIR]\n"
            "show prints the validated results stored for a study (oldest first); export writes\n"
            "them as the project's JSON or as a FHIR R4 Bundle (DiagnosticReport +\n"
            "Observations); studies lists the studies that have results.\n"
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
    const char *home = NULL, *study = NULL, *format = NULL, *file = NULL;
    int json = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0 && !export) {
            json = 1;
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
    if (export && (format == NULL || (strcmp(format, "json") != 0 && strcmp(format, "fhir") != 0)))
        return usage_error("export needs --format json or --format fhir");
    json_t *results = NULL;
    if (agora__results_list(home, study, &results, &err) != 0) {
        fprintf(stderr, "agora results %s: %s\n", sub, err.msg);
        return 1;
    }
    int rc = 0;
    if (show && !json) {
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
