/*
 * `agora dev run` — the developer's loop: run a plugin build in the real sandbox over DICOM
 * files or folders, one job per series, and print what it returned. No clinic home, catalog or
 * ledger is involved; pseudonymous UIDs use a fresh random key per run. The run itself is the
 * pipeline library's (host/pipeline); this file parses options and prints.
 */
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli_util.h"
#include "commands.h"
#include "jobs.h"
#include "pipeline.h"
#include "progress.h"
#include "render.h"

static void usage(FILE *to)
{
    fprintf(to,
            "usage: agora dev run --plugin FILE.so [--manifest FILE.json] [--timeout SECONDS]\n"
            "                     [--json] [--grant OPTION]... [--fresh-per-job | --fork-per-job]\n"
            "                     [--allow-weak-isolation] [--allow-burned-in] [--quiet]\n"
            "                     [--asset NAME=FILE]... INPUT...\n"
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
            "  --allow-burned-in     accept images that declare burned-in annotations\n"
            "  --quiet               no progress lines (nor skipped-file notes)\n"
            "  --asset NAME=FILE     an asset the manifest declares (repeat for each), seen by the\n"
            "                        plugin through org.agora.assets/1 as after agora pack\n");
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

/* What the pipeline's callbacks share with agora__cmd_dev_run. */
typedef struct dev_ctx {
    int json_out, quiet;
    agora__progress pr;
    json_t *jobs; /* one entry per series */
    size_t ok, failed;
} dev_ctx;

static int on_scan(void *arg, const agora__dicom_scan *scan)
{
    dev_ctx *c = arg;
    if (c->quiet)
        return 0;
    agora__render_scan_notes(stderr, scan);
    return 0;
}

/* One plugin, one job per series: the job number is the series number. */
static void on_start(void *arg, size_t job, size_t n_jobs, const agora__pipeline_plugin *pl,
                     size_t series_index, const char *label)
{
    dev_ctx *c = arg;
    (void)job;
    (void)pl;
    char text[160];
    snprintf(text, sizeof text, "[%zu/%zu] %s", series_index + 1, n_jobs, label);
    agora__progress_start(&c->pr, text);
}

static void on_outcome(void *arg, const agora__pipeline_outcome *o)
{
    dev_ctx *c = arg;
    const agora__dicom_series *s = o->series;
    size_t n = o->series_index + 1;
    const char *input = s->n_instances ? s->instances[0].path : "?";
    char text[160], result[64];
    snprintf(text, sizeof text, "[%zu/%zu] %s", n, o->n_jobs, o->label);
    json_t *entry = json_pack("{s:I, s:s, s:s}", "series", (json_int_t)n, "label", o->label,
                              "input", input);
    if (s->n_volumes > 1) /* one job per volume of an enhanced multi-frame object */
        json_object_set_new(entry, "volume",
                            json_pack("{s:I, s:I, s:I, s:I}", "index", (json_int_t)s->volume,
                                      "count", (json_int_t)s->n_volumes, "stack",
                                      (json_int_t)s->stack, "temporal", (json_int_t)s->temporal));
    json_object_set_new(entry, "status", json_string(o->status));
    if (o->end != AGORA__PIPELINE_RAN) {
        c->failed++;
        agora__progress_done(&c->pr, n, o->n_jobs, text, "not run");
        agora__progress_end(&c->pr);
        fprintf(stderr, "agora dev run: series %zu (%s) from %s: not run: %s\n", n, o->label,
                input, o->error);
        json_object_set_new(entry, "error", json_string(o->error));
    } else if (o->validated) {
        c->ok++;
        json_object_set(entry, "result", (json_t *)o->doc);
        snprintf(result, sizeof result, "ok (%llu ms)", (unsigned long long)o->wall_ms);
        agora__progress_done(&c->pr, n, o->n_jobs, text, result);
        if (!c->json_out) {
            agora__progress_end(&c->pr);
            printf("series %zu (%s): ok\n", n, o->label);
            agora__render_result(stdout, o->doc);
        }
    } else {
        c->failed++;
        json_object_set(entry, "result", (json_t *)o->doc);
        agora__progress_done(&c->pr, n, o->n_jobs, text, o->status);
        agora__progress_end(&c->pr);
        fprintf(stderr, "agora dev run: series %zu (%s) from %s: %s: %s; %s\n", n, o->label,
                input, o->status, o->error[0] ? o->error : "no detail",
                agora__jobs_hint(o->job_status));
        json_object_set_new(entry, "error", json_string(o->error));
    }
    json_array_append_new(c->jobs, entry);
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
        {"quiet", no_argument, NULL, 'q'},
        {"asset", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *plugin_path = NULL, *manifest_path = NULL;
    char found_manifest[4096];
    unsigned long timeout_s = 0;
    int json_out = 0, fork_per_job = 0, fresh_per_job = 0, weak = 0, quiet = 0;
    uint32_t deid_flags = 0;
    const char *grants[16];
    size_t n_grants = 0;
    int explicit_grants = 0;
    const char *asset_args[AGORA__ASSETS_MAX];
    size_t n_asset_args = 0;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
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
        case 'q':
            quiet = 1;
            break;
        case 'A':
            if (n_asset_args == AGORA__ASSETS_MAX) {
                fprintf(stderr, "agora dev run: at most %u --asset options\n", AGORA__ASSETS_MAX);
                return 2;
            }
            asset_args[n_asset_args++] = optarg;
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
    /* The same view as after pack: declared assets only, each a sealed memfd mapped read-only. */
    static char asset_names[AGORA__ASSETS_MAX][AGORA__ASSET_NAME_MAX + 1];
    const char *asset_files[AGORA__ASSETS_MAX];
    agora__asset assets[AGORA__ASSETS_MAX];
    size_t n_assets = 0;
    if (agora__cli_assets(&manifest, asset_args, n_asset_args, asset_names, asset_files, &err) !=
        0)
        return agora__fail("dev run", &err);
    for (; n_assets < n_asset_args; n_assets++) {
        if (agora__asset_load_file(asset_files[n_assets], asset_names[n_assets], NULL, 0,
                                   &assets[n_assets], &err) != 0) {
            agora__assets_close(assets, n_assets);
            return agora__fail("dev run", &err);
        }
    }
    if (agora__read_file(plugin_path, AGORA__TRUST_PLUGIN_MAX, &pbytes, &plen, &err) != 0) {
        fprintf(stderr, "agora dev run: %s\n", err.msg);
        agora__assets_close(assets, n_assets);
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
        agora__assets_close(assets, n_assets);
        return 1;
    }
    randombytes_buf(key, sizeof key);

    dev_ctx c = {.json_out = json_out, .quiet = quiet, .jobs = json_array()};
    agora__progress_init(&c.pr, stderr, quiet || json_out);
    agora__pipeline_config cfg = {
        .deid_flags = deid_flags,
        .allow_weak_isolation = weak,
        .cb = {.on_scan = on_scan, .on_start = on_start, .on_outcome = on_outcome, .arg = &c},
    };
    memcpy(cfg.uid_key, key, sizeof key);
    sodium_memzero(key, sizeof key);
    agora__pipeline *pipe = NULL;
    int exit_code = 1;
    if (c.jobs == NULL || agora__pipeline_new(NULL, &cfg, &pipe, &err) != 0) {
        fprintf(stderr, "agora dev run: %s\n", err.msg[0] ? err.msg : "out of memory");
        goto out;
    }
    sodium_memzero(cfg.uid_key, sizeof cfg.uid_key);
    if (agora__pipeline_scan(pipe, (const char *const *)argv + optind, (size_t)(argc - optind),
                             &err) != 0) {
        fprintf(stderr, "agora dev run: %s\n", err.msg);
        goto out;
    }
    const agora__dicom_scan *scan = agora__pipeline_scanned(pipe);
    if (scan->n_series == 0) {
        fprintf(stderr, "agora dev run: no DICOM series with pixel data found in the inputs "
                        "(%u files examined)\n",
                scan->files_examined);
        goto out;
    }

    /* The sandbox starts only once there is something to run. */
    agora__pipeline_plugin pl = {
        .id = manifest.id,
        .version = manifest.version,
        .manifest = &manifest,
        .every_series = 1,
        .granted = grants,
        .n_granted = n_grants,
    };
    agora__jobs_spec_from_manifest(&manifest, pbytes, plen, (uint32_t)timeout_s, &pl.spec);
    pl.spec.fork_per_job = fork_per_job;
    pl.spec.fresh_per_job = fresh_per_job;
    pl.spec.allow_weak_isolation = weak;
    pl.spec.assets = assets;
    pl.spec.n_assets = (uint32_t)n_assets;
    pl.spec.trap_violations = 1; /* name the forbidden call; agora run keeps the plain kill */
    if (agora__pipeline_add_plugin(pipe, &pl, &err) < 0) {
        fprintf(stderr, "agora dev run: cannot start the sandbox for %s: %s\n", plugin_path,
                err.msg);
        goto out;
    }
    const char *mech_detail = "";
    const char *mech = agora__pool_memory_mechanism(agora__pipeline_pool(pipe, 0), &mech_detail);
    if (agora__pipeline_dispatch(pipe, &err) != 0) {
        fprintf(stderr, "agora dev run: %s\n", err.msg);
        goto out;
    }
    agora__progress_end(&c.pr);

    if (json_out) {
        json_t *doc = json_pack("{s:{s:s, s:s}, s:O, s:I, s:I}", "plugin", "id", manifest.id,
                                "version", manifest.version, "jobs", c.jobs, "ok",
                                (json_int_t)c.ok, "failed", (json_int_t)c.failed);
        /* Which mechanism held the memory cap (docs/sandbox.md, Memory). */
        json_object_set_new(doc, "sandbox",
                            json_pack("{s:{s:s, s:I, s:s}}", "memory_cap", "mechanism", mech,
                                      "memory_mb", (json_int_t)(pl.spec.limits.memory_bytes >> 20),
                                      "detail", mech_detail));
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        fputc('\n', stdout);
        json_decref(doc);
    } else {
        fprintf(stderr, "%zu job(s): %zu ok, %zu failed\n", c.ok + c.failed, c.ok, c.failed);
    }
    exit_code = c.failed == 0 ? 0 : 1;
out:
    agora__pipeline_free(pipe);
    if (c.jobs != NULL)
        json_decref(c.jobs);
    free(pbytes);
    agora__assets_close(assets, n_assets);
    return exit_code;
}
