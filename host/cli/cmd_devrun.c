/*
 * `agora dev run` — the developer's loop: run a plugin build in the real sandbox over DICOM
 * files or folders, one job per series, and print what it returned. No clinic home, catalog or
 * ledger is involved; pseudonymous UIDs use a fresh random key per run.
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "commands.h"
#include "jobs.h"

/* dev run records nothing: re-identification needs some invocation id. */
#define DEV_INVOCATION_ID "00000000000000000000000000000000"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: agora dev run --plugin FILE.so [--manifest FILE.json] [--timeout SECONDS]\n"
            "                     [--json] [--grant OPTION]... [--fresh-per-job | --fork-per-job]\n"
            "                     [--allow-weak-isolation] [--allow-burned-in] INPUT...\n"
            "\n"
            "Runs the plugin in the real sandbox on every series found in INPUT (DICOM files or\n"
            "folders, searched recursively) and prints its results. Exit status 0 only when every\n"
            "job succeeded.\n"
            "\n"
            "  --plugin FILE.so      the plugin build to run\n"
            "  --manifest FILE.json  its manifest (default: manifest.json next to the plugin or in\n"
            "                        its parent folder, or NAME.manifest.json next to it)\n"
            "  --timeout SECONDS     per-job time limit (default: the manifest's resources.time_s)\n"
            "  --json                print one JSON document instead of text\n"
            "  --grant OPTION        limit the PS3.15 options the plugin sees to these (default:\n"
            "                        every option its manifest asks for)\n"
            "  --fresh-per-job       run each job in a runner of its own (spawned, confined, loaded\n"
            "                        and initialised for that job): nothing of one study can\n"
            "                        reach the next (docs/sandbox.md, \"Modes\")\n"
            "  --fork-per-job        run each job in a fork of the initialised worker (cheaper;\n"
            "                        what it does not guarantee: docs/sandbox.md, \"Modes\")\n"
            "  --allow-weak-isolation  continue when the kernel refuses a namespace (warned)\n"
            "  --allow-burned-in     accept images that declare burned-in annotations\n");
}

/* Find a manifest for plugin_path when none was given. Writes into out; 0 when found. */
static int find_manifest(const char *plugin_path, char *out, size_t size)
{
    char *a = strdup(plugin_path), *b = strdup(plugin_path);
    if (a == NULL || b == NULL) {
        free(a);
        free(b);
        return -1;
    }
    const char *dir = dirname(a);
    char *base = basename(b);
    char *dot = strrchr(base, '.');
    if (dot != NULL)
        *dot = '\0';
    char cand[3][4096];
    snprintf(cand[0], sizeof cand[0], "%s/%s.manifest.json", dir, base);
    snprintf(cand[1], sizeof cand[1], "%s/manifest.json", dir);
    snprintf(cand[2], sizeof cand[2], "%s/../manifest.json", dir);
    int rc = -1;
    for (int i = 0; i < 3 && rc != 0; i++) {
        if (access(cand[i], R_OK) == 0) {
            agora__strlcpy(out, cand[i], size);
            rc = 0;
        }
    }
    free(a);
    free(b);
    return rc;
}

int agora__cmd_dev_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"plugin", required_argument, NULL, 'p'},
        {"manifest", required_argument, NULL, 'm'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"grant", required_argument, NULL, 'g'},
        {"fork-per-job", no_argument, NULL, 'f'},
        {"fresh-per-job", no_argument, NULL, 'F'},
        {"allow-weak-isolation", no_argument, NULL, 'w'},
        {"allow-burned-in", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *plugin_path = NULL, *manifest_path = NULL;
    char found_manifest[4096];
    unsigned long timeout_s = 0;
    int json_out = 0, fork_per_job = 0, fresh_per_job = 0, weak = 0;
    uint32_t deid_flags = 0;
    const char *grants[16];
    size_t n_grants = 0;
    int explicit_grants = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            plugin_path = optarg;
            break;
        case 'm':
            manifest_path = optarg;
            break;
        case 't': {
            char *end;
            timeout_s = strtoul(optarg, &end, 10);
            if (*end != '\0' || timeout_s == 0 || timeout_s > 86400) {
                fprintf(stderr, "agora dev run: --timeout takes 1..86400 seconds\n");
                return 2;
            }
            break;
        }
        case 'j':
            json_out = 1;
            break;
        case 'g':
            if (n_grants == sizeof grants / sizeof grants[0]) {
                fprintf(stderr, "agora dev run: too many --grant options\n");
                return 2;
            }
            grants[n_grants++] = optarg;
            explicit_grants = 1;
            break;
        case 'f':
            fork_per_job = 1;
            break;
        case 'F':
            fresh_per_job = 1;
            break;
        case 'w':
            weak = 1;
            break;
        case 'b':
            deid_flags |= AGORA__DEID_ALLOW_BURNED_IN;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (fork_per_job && fresh_per_job) {
        fprintf(stderr, "agora dev run: --fresh-per-job and --fork-per-job exclude each other; "
                        "choose one\n");
        return 2;
    }
    if (plugin_path == NULL || optind >= argc) {
        fprintf(stderr, "agora dev run: needs --plugin FILE.so and at least one INPUT; see "
                        "agora dev run --help\n");
        return 2;
    }
    if (manifest_path == NULL) {
        if (find_manifest(plugin_path, found_manifest, sizeof found_manifest) != 0) {
            fprintf(stderr,
                    "agora dev run: no manifest found for %s; pass --manifest FILE.json "
                    "(agora dev new creates one)\n",
                    plugin_path);
            return 2;
        }
        manifest_path = found_manifest;
    }

    agora__error err = {0};
    uint8_t *mbytes = NULL, *pbytes = NULL;
    size_t mlen = 0, plen = 0;
    agora__manifest manifest;
    if (agora__read_file(manifest_path, AGORA__TRUST_MANIFEST_MAX, &mbytes, &mlen, &err) != 0 ||
        agora__manifest_parse(mbytes, mlen, &manifest, &err) != 0) {
        fprintf(stderr, "agora dev run: %s: %s\n", manifest_path, err.msg);
        free(mbytes);
        return 1;
    }
    free(mbytes);
    if (agora__read_file(plugin_path, AGORA__TRUST_PLUGIN_MAX, &pbytes, &plen, &err) != 0) {
        fprintf(stderr, "agora dev run: %s\n", err.msg);
        return 1;
    }
    if (!explicit_grants) {
        for (unsigned i = 0; i < AGORA__OPT_COUNT; i++)
            if (manifest.permissions & (1u << i))
                grants[n_grants++] = agora__trust_option_name(i);
    }

    uint8_t key[32];
    if (sodium_init() < 0) {
        fprintf(stderr, "agora dev run: libsodium failed to initialise\n");
        free(pbytes);
        return 1;
    }
    randombytes_buf(key, sizeof key);

    /* Every DICOM byte is parsed by a sandboxed worker (rule of two). */
    agora__ingest_options iopt;
    agora__ingest_options_default(&iopt);
    iopt.allow_weak_isolation = weak;
    agora__ingest *ing = NULL;
    if (agora__ingest_open(&iopt, &ing, &err) != 0) {
        fprintf(stderr, "agora dev run: cannot start the sandboxed DICOM reader: %s\n", err.msg);
        free(pbytes);
        return 1;
    }
    agora__dicom_scan *scan =
        agora__scan_inputs(ing, (const char *const *)argv + optind, (size_t)(argc - optind), 0, &err);
    if (scan == NULL) {
        fprintf(stderr, "agora dev run: %s\n", err.msg);
        agora__ingest_close(ing);
        free(pbytes);
        return 1;
    }
    if (scan->n_series == 0) {
        fprintf(stderr, "agora dev run: no DICOM series with pixel data found in the inputs "
                        "(%u files examined)\n",
                scan->files_examined);
        agora__dicom_scan_free(scan);
        agora__ingest_close(ing);
        free(pbytes);
        return 1;
    }

    agora__plugin_spec spec;
    agora__jobs_spec_from_manifest(&manifest, pbytes, plen, (uint32_t)timeout_s, &spec);
    spec.fork_per_job = fork_per_job;
    spec.fresh_per_job = fresh_per_job;
    spec.allow_weak_isolation = weak;
    uv_loop_t loop;
    uv_loop_init(&loop);
    agora__pool *pool = NULL;
    if (agora__pool_new(&loop, &spec, &pool, &err) != 0) {
        fprintf(stderr, "agora dev run: cannot start the sandbox for %s: %s\n", plugin_path,
                err.msg);
        uv_loop_close(&loop);
        agora__dicom_scan_free(scan);
        agora__ingest_close(ing);
        free(pbytes);
        return 1;
    }

    const char *mech_detail = "";
    const char *mech = agora__pool_memory_mechanism(pool, &mech_detail);
    json_t *jobs = json_array();
    size_t ok = 0, failed = 0;
    for (size_t i = 0; i < scan->n_series; i++) {
        const agora__dicom_series *s = &scan->series[i];
        char label[96];
        agora__series_label(s, label, sizeof label);
        const char *input = s->n_instances ? s->instances[0].path : "?";
        agora__prepared prep;
        agora__job_outcome out = {0};
        json_t *entry = json_pack("{s:I, s:s, s:s}", "series", (json_int_t)(i + 1), "label",
                                  label, "input", input);
        if (s->n_volumes > 1) /* one job per volume of an enhanced multi-frame object */
            json_object_set_new(entry, "volume",
                                json_pack("{s:I, s:I, s:I, s:I}", "index", (json_int_t)s->volume,
                                          "count", (json_int_t)s->n_volumes, "stack",
                                          (json_int_t)s->stack, "temporal",
                                          (json_int_t)s->temporal));
        if (!json_out)
            fprintf(stderr, "[%zu/%zu] %s ... ", i + 1, scan->n_series, label);
        int rc = agora__prepare_series(ing, s, key, grants, n_grants, deid_flags, &prep, &err);
        const char *st = NULL;
        char why[512] = "";
        if (rc == 0) {
            rc = agora__jobs_run_one(&loop, pool, &prep, &out, &err);
            /* The verdict `agora run` would give: the same acceptance check, nothing stored. */
            agora__error e2 = {0};
            if (rc == 0 && out.status == AGORA__JOB_OK &&
                agora__jobs_accept(&out, &prep, DEV_INVOCATION_ID, NULL, &e2) != 0) {
                st = "invalid-result";
                agora__strlcpy(why, e2.msg, sizeof why);
            }
            agora__prepared_free(&prep);
        }
        if (rc != 0) {
            failed++;
            if (!json_out)
                fputs("not run\n", stderr);
            fprintf(stderr, "agora dev run: series %zu (%s) from %s: not run: %s\n", i + 1, label,
                    input, err.msg);
            json_object_set_new(entry, "status", json_string("input-error"));
            json_object_set_new(entry, "error", json_string(err.msg));
        } else {
            if (st == NULL)
                st = agora__job_status_name(out.status);
            else
                agora__strlcpy(out.error, why, sizeof out.error);
            json_object_set_new(entry, "status", json_string(st));
            json_object_set(entry, "result", out.doc);
            if (out.status == AGORA__JOB_OK && why[0] == '\0') {
                ok++;
                if (!json_out) {
                    fprintf(stderr, "ok (%llu ms)\n", (unsigned long long)out.wall_ms);
                    printf("series %zu (%s): ok\n", i + 1, label);
                    agora__jobs_print_result(stdout, out.doc);
                }
            } else {
                failed++;
                if (!json_out)
                    fprintf(stderr, "%s\n", st);
                fprintf(stderr, "agora dev run: series %zu (%s) from %s: %s: %s; %s\n", i + 1,
                        label, input, st, out.error[0] ? out.error : "no detail",
                        why[0] ? "the result failed validation: `agora run` would not store or "
                                 "bill it"
                               : agora__jobs_hint(out.status));
                json_object_set_new(entry, "error", json_string(out.error));
            }
            agora__job_outcome_free(&out);
        }
        json_array_append_new(jobs, entry);
    }
    agora__jobs_close_pool(&loop, pool);
    uv_loop_close(&loop);

    if (json_out) {
        json_t *doc = json_pack("{s:{s:s, s:s}, s:o, s:I, s:I}", "plugin", "id", manifest.id,
                                "version", manifest.version, "jobs", jobs, "ok", (json_int_t)ok,
                                "failed", (json_int_t)failed);
        /* Which mechanism held the memory cap (docs/sandbox.md, Memory). */
        json_object_set_new(doc, "sandbox",
                            json_pack("{s:{s:s, s:I, s:s}}", "memory_cap", "mechanism", mech,
                                      "memory_mb", (json_int_t)(spec.limits.memory_bytes >> 20),
                                      "detail", mech_detail));
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
        json_decref(doc);
    } else {
        json_decref(jobs);
        fprintf(stderr, "%zu job(s): %zu ok, %zu failed\n", ok + failed, ok, failed);
    }
    agora__dicom_scan_free(scan);
    agora__ingest_close(ing);
    free(pbytes);
    return failed == 0 ? 0 : 1;
}
