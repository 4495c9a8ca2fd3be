/*
 * `agora dev run` — the developer's loop: run a plugin build in the real sandbox over DICOM
 * files or folders, one job per series, and print what it returned. No clinic home, catalog or
 * ledger is involved; pseudonymous UIDs use a fresh random key per run. The run itself is the
 * pipeline library's (host/pipeline); this file parses options and prints.
 */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "jobs.h"
#include "pipeline.h"
#include "opt.h"
#include "progress.h"
#include "render.h"

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
            agora__progress_before(&c->pr, stdout);
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

/* What agora__cmd_dev_run read from its options (borrowed from argv). */
typedef struct dev_args {
    const char *plugin_path, *manifest_path;
    uint32_t timeout_s;
    int json_out, quiet, fork_per_job, fresh_per_job, weak;
    uint32_t deid_flags;
    const agora__cli_list *grant;
    const agora__cli_list *asset; /* --asset NAME=FILE */
    const char *const *inputs;
    size_t n_inputs;
} dev_args;

/* The run once the options are read. Returns the exit status. */
static int dev_run(const dev_args *a)
{
    agora__error err = {0};
    uint8_t *mbytes = NULL, *pbytes = NULL;
    size_t mlen = 0, plen = 0;
    agora__manifest manifest;
    if (agora__read_file(a->manifest_path, AGORA__TRUST_MANIFEST_MAX, &mbytes, &mlen, &err) != 0 ||
        agora__manifest_parse(mbytes, mlen, &manifest, &err) != 0) {
        fprintf(stderr, "agora dev run: %s: %s\n", a->manifest_path, err.msg);
        free(mbytes);
        return 1;
    }
    free(mbytes);
    /* The same view as after pack: declared assets only, each a sealed memfd mapped read-only. */
    static char asset_names[AGORA__ASSETS_MAX][AGORA__ASSET_NAME_MAX + 1];
    const char *asset_files[AGORA__ASSETS_MAX];
    agora__asset assets[AGORA__ASSETS_MAX];
    size_t n_assets = 0;
    if (agora__cli_assets(&manifest, a->asset->v, a->asset->n, asset_names, asset_files, &err) !=
        0)
        return agora__fail("dev run", &err);
    for (; n_assets < a->asset->n; n_assets++) {
        if (agora__asset_load_file(asset_files[n_assets], asset_names[n_assets], NULL, 0,
                                   &assets[n_assets], &err) != 0) {
            agora__assets_close(assets, n_assets);
            return agora__fail("dev run", &err);
        }
    }
    if (agora__read_file(a->plugin_path, AGORA__TRUST_PLUGIN_MAX, &pbytes, &plen, &err) != 0) {
        fprintf(stderr, "agora dev run: %s\n", err.msg);
        agora__assets_close(assets, n_assets);
        return 1;
    }
    const char *grants[AGORA__OPT_COUNT];
    size_t n_grants = 0;
    if (a->grant->n > 0) {
        for (size_t i = 0; i < a->grant->n; i++)
            grants[n_grants++] = a->grant->v[i];
    } else {
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

    dev_ctx c = {.json_out = a->json_out, .quiet = a->quiet, .jobs = json_array()};
    agora__progress_init(&c.pr, stderr, a->quiet || a->json_out);
    agora__pipeline_config cfg = {
        .deid_flags = a->deid_flags,
        .allow_weak_isolation = a->weak,
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
    if (agora__pipeline_scan(pipe, a->inputs, a->n_inputs, &err) != 0) {
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
    agora__jobs_spec_from_manifest(&manifest, pbytes, plen, a->timeout_s, &pl.spec);
    pl.spec.fork_per_job = a->fork_per_job;
    pl.spec.fresh_per_job = a->fresh_per_job;
    pl.spec.allow_weak_isolation = a->weak;
    pl.spec.assets = assets;
    pl.spec.n_assets = (uint32_t)n_assets;
    pl.spec.trap_violations = 1; /* name the forbidden call; agora run keeps the plain kill */
    if (agora__pipeline_add_plugin(pipe, &pl, &err) < 0) {
        fprintf(stderr, "agora dev run: cannot start the sandbox for %s: %s\n", a->plugin_path,
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

    if (a->json_out) {
        json_t *doc = json_pack("{s:{s:s, s:s}, s:O, s:I, s:I}", "plugin", "id", manifest.id,
                                "version", manifest.version, "jobs", c.jobs, "ok",
                                (json_int_t)c.ok, "failed", (json_int_t)c.failed);
        /* Which mechanism held the memory cap (docs/sandbox.md, Memory). */
        json_object_set_new(doc, "sandbox",
                            json_pack("{s:{s:s, s:I, s:s}}", "memory_cap", "mechanism", mech,
                                      "memory_mb", (json_int_t)(pl.spec.limits.memory_bytes >> 20),
                                      "detail", mech_detail));
        if (agora__json_emit_new(stdout, doc, AGORA__JSON_DOC) != 0)
            c.failed++;
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

static const agora__cli_cmd dev_run_cmd = {
    "dev run",
    "--plugin FILE.so [--manifest FILE.json] [--timeout SECONDS]\n"
    "                     [--json] [--grant OPTION]... [--fresh-per-job | --fork-per-job]\n"
    "                     [--allow-weak-isolation] [--allow-burned-in] [--quiet]\n"
    "                     [--asset NAME=FILE]... INPUT...",
    "Runs the plugin in the real sandbox on every series found in INPUT (DICOM files or\n"
    "folders, searched recursively) and prints its results. Exit status 0 only when every\n"
    "job succeeded. Modes and what each guarantees: docs/sandbox.md, \"Modes\".",
    NULL,
    0,
    1,
    SIZE_MAX,
};

int agora__cmd_dev_run(int argc, char **argv)
{
    const char *plugin_path = NULL, *manifest_path = NULL, *timeout = NULL;
    uint32_t timeout_s = 0;
    size_t n_inputs;
    int st;
    char found_manifest[4096];
    int json_out = 0, fork_per_job = 0, fresh_per_job = 0, weak = 0, quiet = 0, burned_in = 0;
    agora__cli_list grant; /* --grant: the PS3.15 options the plugin sees */
    agora__cli_list asset; /* --asset NAME=FILE: what the plugin reads via org.agora.assets/1 */
    const agora__cli_opt opts[] = {
        {"--plugin", 0, AGORA__CLI_VALUE, &plugin_path, "FILE.so", "the plugin build to run",
         AGORA__CLI_REQUIRED, NULL, 0},
        {"--manifest", 0, AGORA__CLI_VALUE, &manifest_path, "FILE.json",
         "its manifest (default: NAME.manifest.json or manifest.json next to the plugin, or in "
         "its parent folder)",
         0, NULL, 0},
        AGORA__CLI_OPT_TIMEOUT(&timeout, "the manifest's resources.time_s"),
        AGORA__CLI_OPT_JSON(&json_out, "print one JSON document instead of text"),
        {"--grant", 0, AGORA__CLI_LIST, &grant, "OPTION",
         "limit the PS3.15 options the plugin sees to these (default: its manifest's)", 0, NULL,
         AGORA__OPT_COUNT},
        {"--fresh-per-job", 0, AGORA__CLI_FLAG, &fresh_per_job, NULL,
         "each job in a runner of its own: nothing of one study reaches the next", 0, NULL, 0},
        {"--fork-per-job", 0, AGORA__CLI_FLAG, &fork_per_job, NULL,
         "each job in a fork of the initialised worker (cheaper; docs/sandbox.md, Modes)", 0, NULL,
         0},
        {"--allow-weak-isolation", 0, AGORA__CLI_FLAG, &weak, NULL,
         "continue when the kernel refuses a namespace (warned)", 0, NULL, 0},
        AGORA__CLI_OPT_BURNED_IN(&burned_in),
        AGORA__CLI_OPT_QUIET(&quiet),
        {"--asset", 0, AGORA__CLI_LIST, &asset, "NAME=FILE",
         "an asset the manifest declares (repeat for each), seen as after agora pack", 0, NULL,
         AGORA__ASSETS_MAX},
    };
    if (!agora__cli_parse_job(&dev_run_cmd, opts, AGORA__CLI_N(opts), argc, argv, &timeout,
                              &timeout_s, &n_inputs, &st))
        return st;
    if (fork_per_job && fresh_per_job)
        st = agora__cli_usage_error(dev_run_cmd.name,
                                    "--fresh-per-job and --fork-per-job exclude each "
                                    "other; choose one");
    if (st == 0 && manifest_path == NULL) {
        if (find_manifest(plugin_path, found_manifest, sizeof found_manifest) != 0)
            st = agora__cli_usage_error(dev_run_cmd.name,
                                        "no manifest found for %s; pass --manifest FILE.json "
                                        "(agora dev new creates one)",
                                        plugin_path);
        manifest_path = found_manifest;
    }
    if (st == 0) {
        dev_args a = {
            .plugin_path = plugin_path,
            .manifest_path = manifest_path,
            .timeout_s = timeout_s,
            .json_out = json_out,
            .quiet = quiet,
            .fork_per_job = fork_per_job,
            .fresh_per_job = fresh_per_job,
            .weak = weak,
            .deid_flags = burned_in ? AGORA__DEID_ALLOW_BURNED_IN : 0,
            .grant = &grant,
            .asset = &asset,
            .inputs = (const char *const *)argv + 1,
            .n_inputs = n_inputs,
        };
        st = dev_run(&a);
    }
    agora__cli_list_free(&grant);
    agora__cli_list_free(&asset);
    return st;
}
