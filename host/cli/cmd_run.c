/*
 * `agora run` — the clinic's journey: every installed, certified, unrevoked plugin whose
 * declared inputs match a series runs on it in the sandbox. Each invocation gets a ledger id
 * before dispatch; a validated result is re-identified, stored next to the real study and billed
 * with the price of the signed catalog entry in force at dispatch; a failure is recorded as
 * non-billable with its classification.
 *
 * Trust is enforced at every load (agora__trust_load: catalog signature, expiry, revocation,
 * sha256 pins) and re-checked before every dispatch (agora__trust_allowed), so a sync that
 * revokes a build stops its queued jobs. The run itself is the pipeline library's
 * (host/pipeline); this file chooses the plugins, prints and sums up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli_util.h"
#include "commands.h"
#include "json_emit.h"
#include "ledger.h"
#include "jobs.h"
#include "pipeline.h"
#include "opt.h"
#include "progress.h"
#include "render.h"

typedef struct run_plugin {
    agora__pipeline_trusted t; /* the loaded build and what the pipeline borrows of it */
    int revoked_midrun; /* refused once: every later job of it is refused quietly */
    int announce;       /* the first refusal's message is still to be printed */
} run_plugin;

typedef struct run_totals {
    size_t jobs, ok, failed, refused, billed_units;
    int64_t billed_minor;
} run_totals;

/* What the pipeline's callbacks share with agora__cmd_run. */
typedef struct run_ctx {
    agora__trust_home *home;
    int quiet;
    agora__progress pr;
    run_totals tot;
    json_t *jlog;
    int exit_code;
} run_ctx;

static int on_scan(void *arg, const agora__dicom_scan *scan)
{
    run_ctx *c = arg;
    if (c->quiet)
        return 0;
    agora__render_scan_notes(stderr, scan);
    return 0;
}

static void job_text(char *buf, size_t size, size_t job, size_t n_jobs,
                     const agora__pipeline_plugin *pl, size_t series_index, const char *label)
{
    snprintf(buf, size, "[%zu/%zu] %s on series %zu (%s)", job, n_jobs, pl->id, series_index + 1,
             label);
}

static void on_start(void *arg, size_t job, size_t n_jobs, const agora__pipeline_plugin *pl,
                     size_t series_index, const char *label)
{
    run_ctx *c = arg;
    char text[256];
    job_text(text, sizeof text, job, n_jobs, pl, series_index, label);
    agora__progress_start(&c->pr, text);
}

/* A sync may have revoked the build since we loaded it. */
static int admit(void *arg, const agora__pipeline_plugin *pl, agora__error *err)
{
    run_ctx *c = arg;
    run_plugin *rp = pl->user;
    if (rp->revoked_midrun)
        return agora__error_set(err, AGORA_ESTATE, "refused earlier in this run");
    int rc = agora__trust_allowed(c->home, rp->t.lp.info.id, rp->t.lp.info.version, err);
    if (rc != 0) {
        rp->revoked_midrun = 1;
        rp->announce = 1;
    }
    return rc;
}

static void on_outcome(void *arg, const agora__pipeline_outcome *o)
{
    run_ctx *c = arg;
    const agora__pipeline_plugin *pl = o->plugin;
    char text[256], result[64];
    if (o->end == AGORA__PIPELINE_SERIES_FAILED) {
        agora__progress_end(&c->pr);
        fprintf(stderr, "agora run: series %zu (%s): not run: %s\n", o->series_index + 1,
                o->label, o->error);
        c->tot.failed++;
        c->exit_code = 1;
        return;
    }
    run_plugin *rp = pl->user;
    c->tot.jobs++;
    job_text(text, sizeof text, o->job, o->n_jobs, pl, o->series_index, o->label);
    if (o->end == AGORA__PIPELINE_REFUSED) {
        agora__progress_done(&c->pr, o->job, o->n_jobs, text, "refused");
        if (rp->announce) {
            agora__progress_end(&c->pr);
            fprintf(stderr, "agora run: %s@%s no longer allowed: %s\n", pl->id, pl->version,
                    o->error);
            rp->announce = 0;
        }
        c->tot.refused++;
        c->exit_code = 1;
        return;
    }
    if (o->end != AGORA__PIPELINE_RAN) { /* not run (no invocation id, not submitted) */
        agora__progress_done(&c->pr, o->job, o->n_jobs, text, "not run");
        agora__progress_end(&c->pr);
        fprintf(stderr, "agora run: %s: not run: %s\n", pl->id, o->error);
        c->tot.failed++;
        c->exit_code = 1;
        return;
    }
    snprintf(result, sizeof result, "%s (%llu ms)", agora__job_status_name(o->job_status),
             (unsigned long long)o->wall_ms);
    agora__progress_done(&c->pr, o->job, o->n_jobs, text, result);
    if (o->job_status != AGORA__JOB_OK)
        c->exit_code = 1;
    if (o->ledger_failed) {
        agora__progress_end(&c->pr);
        fprintf(stderr, "agora run: cannot record invocation in the ledger: %s\n",
                o->ledger_error);
        c->exit_code = 1;
        return;
    }
    c->tot.billed_units += (size_t)o->charged_units;
    c->tot.billed_minor += o->charged_minor;
    if (o->validated)
        c->tot.ok++;
    else
        c->tot.failed++;
    json_array_append_new(c->jlog, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "plugin",
                                             pl->id, "version", pl->version, "invocation_id",
                                             o->invocation_id, "status", o->status, "error",
                                             o->error, "charged_units",
                                             (json_int_t)o->charged_units, "charged_minor",
                                             (json_int_t)o->charged_minor));
    if (!o->validated) {
        agora__progress_end(&c->pr);
        fprintf(stderr, "agora run: %s@%s: %s: %s; %s\n", pl->id, pl->version, o->status,
                o->error[0] ? o->error : "no detail",
                o->job_status == AGORA__JOB_OK ? "the result failed validation and was not billed"
                                               : agora__jobs_hint(o->job_status));
    }
}

/* The run once the options are read: inputs[0..n_inputs) are the DICOM files or folders. Returns
 * the exit status. */
static int run(const char *home_dir, const agora__cli_list *only, uint32_t timeout_s, int json_out,
               int quiet, int fresh, uint32_t deid_flags, const char *const *inputs,
               size_t n_inputs)
{
    agora__error err = {0};
    agora__trust_home *home = NULL;
    if (agora__trust_home_open(home_dir, &home, &err) != 0) {
        fprintf(stderr, "agora run: %s\n", err.msg);
        return 1;
    }
    const char *hdir = agora__trust_home_dir(home);
    uint8_t uid_key[32], bill_key[32];
    agora__ledger *ledger = NULL;
    if (agora__trust_derive_key(home, AGORA__KEY_UID, uid_key) != 0 ||
        agora__trust_derive_key(home, AGORA__KEY_BILLING, bill_key) != 0 ||
        agora__ledger_open(hdir, bill_key, &ledger, &err) != 0) {
        fprintf(stderr, "agora run: cannot open the ledger: %s\n", err.msg[0] ? err.msg : "?");
        agora__trust_home_close(home);
        return 1;
    }

    run_ctx c = {.home = home, .quiet = quiet, .jlog = json_array()};
    agora__progress_init(&c.pr, stderr, quiet);
    run_plugin *plugins = NULL;
    agora__trust_plugin *installed = NULL;
    size_t n_installed = 0;
    agora__pipeline *pipe = NULL;
    agora__pipeline_config cfg = {
        .deid_flags = deid_flags,
        .store_home = hdir,
        .ledger = ledger,
        .cb = {.on_scan = on_scan, .on_start = on_start, .admit = admit, .on_outcome = on_outcome,
               .arg = &c},
    };
    memcpy(cfg.uid_key, uid_key, sizeof cfg.uid_key);
    sodium_memzero(uid_key, sizeof uid_key);
    if (c.jlog == NULL || agora__pipeline_new(NULL, &cfg, &pipe, &err) != 0) {
        fprintf(stderr, "agora run: %s\n", err.msg[0] ? err.msg : "out of memory");
        c.exit_code = 1;
        goto out;
    }
    sodium_memzero(cfg.uid_key, sizeof cfg.uid_key);

    if (agora__trust_list(home, &installed, &n_installed, &err) != 0) {
        fprintf(stderr, "agora run: %s\n", err.msg);
        c.exit_code = 1;
        goto out;
    }
    /* Stable storage: the pipeline borrows each plugin's manifest, grants and pricing. */
    plugins = calloc(n_installed ? n_installed : 1, sizeof *plugins);
    if (plugins == NULL) {
        c.exit_code = 1;
        goto out;
    }
    size_t n_loaded = 0;
    for (size_t i = 0; i < n_installed; i++) {
        const agora__trust_plugin *tp = &installed[i];
        int wanted = only->n == 0;
        for (size_t k = 0; k < only->n; k++)
            wanted |= strcmp(only->v[k], tp->id) == 0;
        if (!wanted)
            continue;
        run_plugin *rp = &plugins[n_loaded];
        memset(rp, 0, sizeof *rp); /* a slot left by a refused plugin is reused */
        if (agora__trust_load(home, tp->id, &rp->t.lp, &err) != 0) {
            c.tot.refused++;
            fprintf(stderr, "agora run: refusing %s@%s: %s\n", tp->id, tp->version, err.msg);
            json_array_append_new(c.jlog, json_pack("{s:s, s:s, s:s, s:s}", "plugin", tp->id,
                                                    "version", tp->version, "status", "refused",
                                                    "error", err.msg));
            continue;
        }
        agora__pipeline_plugin pl;
        if (agora__pipeline_trusted_describe(&rp->t, timeout_s, fresh, &pl, &err) != 0) {
            fprintf(stderr, "agora run: refusing %s: %s\n", tp->id, err.msg);
            agora__trust_loaded_free(&rp->t.lp);
            c.tot.refused++;
            continue;
        }
        pl.user = rp;
        if (agora__pipeline_add_plugin(pipe, &pl, &err) < 0) {
            fprintf(stderr, "agora run: cannot start %s in the sandbox: %s\n", tp->id, err.msg);
            agora__trust_loaded_free(&rp->t.lp);
            c.tot.refused++;
            continue;
        }
        n_loaded++;
    }
    size_t n_plugins = agora__pipeline_n_plugins(pipe);
    if (n_plugins == 0) {
        fprintf(stderr, "agora run: no installed plugin can run (install one with agora install "
                        "ID; agora list shows their status)\n");
        c.exit_code = 1;
        goto out;
    }

    if (agora__pipeline_scan(pipe, inputs, n_inputs, &err) != 0) {
        fprintf(stderr, "agora run: %s\n", err.msg);
        c.exit_code = 1;
        goto out;
    }
    const agora__dicom_scan *scan = agora__pipeline_scanned(pipe);
    size_t n_studies = 0;
    for (size_t s = 0; s < scan->n_series; s++)
        n_studies += s == 0 || strcmp(scan->series[s].study_uid, scan->series[s - 1].study_uid) != 0;
    if (!quiet)
        fprintf(stderr, "%zu series in %zu study(ies), %zu plugin(s), %zu job(s)\n",
                scan->n_series, n_studies, n_plugins, agora__pipeline_job_count(pipe));
    if (agora__pipeline_dispatch(pipe, &err) != 0) {
        fprintf(stderr, "agora run: %s\n", err.msg);
        c.exit_code = 1;
        goto out;
    }
    agora__progress_end(&c.pr);

    run_totals tot = c.tot;
    if (json_out) {
        json_t *studies = json_array();
        for (size_t s = 0; s < scan->n_series; s++) {
            const char *st = scan->series[s].study_uid;
            size_t k, dup = 0;
            json_t *v;
            json_array_foreach(studies, k, v) dup |= strcmp(json_string_value(v), st) == 0;
            if (!dup)
                json_array_append_new(studies, json_string(st));
        }
        json_t *doc = json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:I}", "invocations", c.jlog,
                                "studies", studies, "jobs", (json_int_t)tot.jobs, "ok",
                                (json_int_t)tot.ok, "failed", (json_int_t)tot.failed, "refused",
                                (json_int_t)tot.refused, "charged_minor",
                                (json_int_t)tot.billed_minor);
        c.jlog = NULL;
        if (agora__json_emit_new(stdout, doc, AGORA__JSON_DOC) != 0)
            c.exit_code = 1;
    } else {
        printf("%zu job(s): %zu ok, %zu failed, %zu refused; %zu billable unit(s) charged\n",
               tot.jobs, tot.ok, tot.failed, tot.refused, tot.billed_units);
        if (tot.ok > 0)
            printf("results: agora results studies, then agora results show STUDY_UID\n");
    }

out:
    /* The pools go first: they run the plugins whose bytes and manifests plugins[] holds. */
    agora__pipeline_free(pipe);
    for (size_t p = 0; plugins != NULL && p < n_installed; p++)
        if (plugins[p].t.lp.bytes != NULL)
            agora__trust_loaded_free(&plugins[p].t.lp);
    free(plugins);
    free(installed);
    if (c.jlog != NULL)
        json_decref(c.jlog);
    agora__ledger_close(ledger);
    agora__trust_home_close(home);
    return c.exit_code;
}

static const agora__cli_cmd run_cmd = {
    "run",
    "[--home DIR] [--plugin ID]... [--timeout SECONDS] [--json]\n"
    "                 [--allow-burned-in] [--fresh-per-job] [--quiet] INPUT...",
    "Runs every installed plugin whose declared inputs (modality, frame count) match a\n"
    "series found in INPUT (DICOM files or folders) in the sandbox; stores validated\n"
    "results next to the real study and records every invocation in the ledger.",
    NULL,
    0,
    1,
    SIZE_MAX,
};

int agora__cmd_run(int argc, char **argv)
{
    const char *home_dir = NULL, *timeout = NULL;
    uint32_t timeout_s = 0;
    size_t n_inputs;
    int st;
    agora__cli_list only; /* --plugin: run only these installed plugins */
    int json_out = 0, quiet = 0, fresh = 0, burned_in = 0;
    const agora__cli_opt opts[] = {
        AGORA__CLI_OPT_HOME(&home_dir),
        {"--plugin", 0, AGORA__CLI_LIST, &only, "ID", "run only this installed plugin", 0, NULL, 0},
        AGORA__CLI_OPT_TIMEOUT(&timeout, "the manifest's resources.time_s"),
        AGORA__CLI_OPT_JSON(&json_out, "print a JSON summary on stdout"),
        AGORA__CLI_OPT_BURNED_IN(&burned_in),
        {"--fresh-per-job", 0, AGORA__CLI_FLAG, &fresh, NULL,
         "a new sandboxed worker for every job: nothing a plugin did for one study can be seen "
         "in the next (docs/sandbox.md, Modes)",
         0, NULL, 0},
        AGORA__CLI_OPT_QUIET(&quiet),
    };
    if (!agora__cli_parse_job(&run_cmd, opts, AGORA__CLI_N(opts), argc, argv, &timeout, &timeout_s,
                              &n_inputs, &st))
        return st;
    uint32_t deid_flags = burned_in ? AGORA__DEID_ALLOW_BURNED_IN : 0;
    int rc = run(home_dir, &only, timeout_s, json_out, quiet, fresh, deid_flags,
                 (const char *const *)argv + 1, n_inputs);
    agora__cli_list_free(&only);
    return rc;
}
