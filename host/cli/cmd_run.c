/*
 * `agora run` — the clinic's journey: every installed, certified, unrevoked plugin whose
 * declared inputs match a series runs on it in the sandbox. Each invocation gets a ledger id
 * before dispatch; a validated result is re-identified, stored next to the real study and billed
 * with the price of the signed catalog entry in force at dispatch; a failure is recorded as
 * non-billable with its classification.
 *
 * Trust is enforced at every load (agora__trust_load: catalog signature, expiry, revocation,
 * sha256 pins) and re-checked before every dispatch (agora__trust_allowed), so a sync that
 * revokes a build stops its queued jobs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "jobs.h"
#include "ledger.h"
#include "results.h"

#define RUN_MAX_PLUGINS 256

typedef struct run_plugin {
    agora__trust_loaded lp;
    agora__pool *pool;
    char granted_names[AGORA__OPT_COUNT][32];
    const char *granted[AGORA__OPT_COUNT];
    size_t n_granted;
    agora__ledger_pricing pricing;
    int revoked_midrun;
    size_t ok, failed;
} run_plugin;

typedef struct run_totals {
    size_t jobs, ok, failed, refused, billed_units;
    int64_t billed_minor;
} run_totals;

static void usage(FILE *to)
{
    fprintf(to,
            "usage: agora run [--home DIR] [--plugin ID]... [--timeout SECONDS] [--json]\n"
            "                 [--allow-burned-in] [--quiet] INPUT...\n"
            "\n"
            "Runs every installed plugin whose declared inputs (modality, frame count) match a\n"
            "series found in INPUT (DICOM files or folders) in the sandbox; stores validated\n"
            "results next to the real study and records every invocation in the ledger.\n"
            "\n"
            "  --home DIR          clinic home (default: AGORA_HOME, else ~/.local/share/agora)\n"
            "  --plugin ID         run only this installed plugin (repeatable)\n"
            "  --timeout SECONDS   per-job limit instead of the manifest's resources.time_s\n"
            "  --json              print a JSON summary on stdout\n"
            "  --allow-burned-in   accept images that declare burned-in annotations\n"
            "  --quiet             no progress lines\n");
}

static int modality_matches(const agora__manifest *m, const char *modality)
{
    if (m->any_modality)
        return 1;
    for (uint32_t i = 0; i < m->n_modalities; i++)
        if (strcmp(m->modalities[i], modality) == 0)
            return 1;
    return 0;
}

static int series_matches(const agora__manifest *m, const agora__dicom_series *s)
{
    return modality_matches(m, s->modality) && s->n_frames >= m->min_frames &&
           s->n_frames <= m->max_frames;
}

/* Fill the ledger pricing from the catalog entry (never from the plugin). */
static int pricing_from_catalog(run_plugin *rp, agora__error *err)
{
    const agora__trust_plugin *in = &rp->lp.info;
    agora__ledger_pricing *p = &rp->pricing;
    memset(p, 0, sizeof *p);
    p->plugin_id = in->id;
    p->plugin_version = in->version;
    p->vendor = in->manifest.vendor;
    p->catalog_version = in->catalog_version;
    if (agora__ledger_model_parse(in->pricing.model, &p->model) != 0)
        return agora__error_set(err, AGORA_EINVAL, "catalog entry of %s has an unknown pricing "
                                                   "model; sync a valid catalog",
                                in->id);
    p->price_minor = (int64_t)in->pricing.price_minor;
    memcpy(p->currency, in->pricing.currency, sizeof p->currency);
    p->vendor_share_bps = in->pricing.vendor_share_bps;
    return 0;
}

/* Billing units of one invocation for the model: real UIDs, hashed by the ledger. */
static size_t billing_units(const run_plugin *rp, const agora__prepared *prep,
                            const char **units, size_t cap)
{
    const agora__dicom_series *s = prep->series;
    switch (rp->pricing.model) {
    case AGORA__MODEL_PER_STUDY:
        units[0] = s->study_uid;
        return 1;
    case AGORA__MODEL_PER_SERIES:
        units[0] = s->series_uid;
        return 1;
    case AGORA__MODEL_PER_INSTANCE: {
        size_t n = 0;
        for (uint32_t i = 0; i < s->n_instances && n < cap; i++)
            units[n++] = s->instances[i].sop_uid;
        return n;
    }
    case AGORA__MODEL_SUBSCRIPTION:
        return 0; /* flat per period: the ledger charges the plugin, not units */
    default:
        /* free: nothing is charged, but usage still counts studies */
        units[0] = s->study_uid;
        return 1;
    }
}

/* Store a validated result and record the invocation. Returns 0 when billed or recorded. */
static int settle(run_plugin *rp, agora__ledger *ledger, const char *home, const char *inv,
                  const agora__prepared *prep, agora__job_outcome *out, run_totals *tot,
                  json_t *jlog, agora__error *err)
{
    int validated = 0;
    const char *status = agora__job_status_name(out->status);
    char why[512] = "";
    if (out->status == AGORA__JOB_OK) {
        agora__error e2 = {0};
        int rc = agora__jobs_accept(out, prep, inv, home, &e2);
        if (rc == 0) {
            validated = 1;
        } else {
            status = "invalid-result";
            agora__strlcpy(why, e2.msg, sizeof why);
        }
    } else {
        agora__strlcpy(why, out->error, sizeof why);
    }

    const char *units[AGORA__LEDGER_MAX_UNITS < 4096 ? AGORA__LEDGER_MAX_UNITS : 4096];
    size_t n_units = validated ? billing_units(rp, prep, units, sizeof units / sizeof units[0]) : 0;
    agora__ledger_outcome o = {
        .invocation_id = inv,
        .status = status,
        .validated = validated,
        .units = units,
        .n_units = n_units,
        .wall_ms = out->wall_ms,
        .pricing = &rp->pricing,
    };
    json_t *metrics = json_object_get(out->doc, "metrics");
    o.cpu_us = (uint64_t)json_integer_value(json_object_get(metrics, "cpu_us"));
    o.peak_rss_kb = (uint64_t)json_integer_value(json_object_get(metrics, "peak_rss_kb"));
    agora__ledger_receipt rcpt = {0};
    int rc = agora__ledger_record(ledger, &o, &rcpt, err);
    if (rc != 0)
        return rc;
    tot->billed_units += (size_t)rcpt.units;
    tot->billed_minor += rcpt.amount_minor;
    if (validated) {
        tot->ok++;
        rp->ok++;
    } else {
        tot->failed++;
        rp->failed++;
    }
    json_array_append_new(jlog, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "plugin",
                                          rp->lp.info.id, "version", rp->lp.info.version,
                                          "invocation_id", inv, "status", status, "error", why,
                                          "charged_units", (json_int_t)rcpt.units,
                                          "charged_minor", (json_int_t)rcpt.amount_minor));
    if (!validated)
        fprintf(stderr, "agora run: %s@%s: %s: %s; %s\n", rp->lp.info.id, rp->lp.info.version,
                status, why[0] ? why : "no detail",
                out->status == AGORA__JOB_OK ? "the result failed validation and was not billed"
                                             : agora__jobs_hint(out->status));
    return 0;
}

int agora__cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"home", required_argument, NULL, 'H'},  {"plugin", required_argument, NULL, 'p'},
        {"timeout", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
        {"allow-burned-in", no_argument, NULL, 'b'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *home_dir = NULL, *only[32];
    size_t n_only = 0;
    unsigned long timeout_s = 0;
    int json_out = 0, quiet = 0, c;
    uint32_t deid_flags = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            home_dir = optarg;
            break;
        case 'p':
            if (n_only == sizeof only / sizeof only[0]) {
                fprintf(stderr, "agora run: too many --plugin options\n");
                return 2;
            }
            only[n_only++] = optarg;
            break;
        case 't': {
            char *end;
            timeout_s = strtoul(optarg, &end, 10);
            if (*end != '\0' || timeout_s == 0 || timeout_s > 86400) {
                fprintf(stderr, "agora run: --timeout takes 1..86400 seconds\n");
                return 2;
            }
            break;
        }
        case 'j':
            json_out = 1;
            break;
        case 'b':
            deid_flags |= AGORA__DEID_ALLOW_BURNED_IN;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "agora run: needs at least one INPUT (DICOM file or folder); see agora "
                        "run --help\n");
        return 2;
    }

    agora__error err = {0};
    agora__trust_home *home = NULL;
    if (agora__trust_home_open(home_dir, &home, &err) != 0) {
        fprintf(stderr, "agora run: %s\n", err.msg);
        return 1;
    }
    const char *hdir = agora__trust_home_dir(home);
    uint8_t uid_key[32], bill_key[32];
    agora__ledger *ledger = NULL;
    if (agora__trust_derive_key(home, "deid-uid", uid_key) != 0 ||
        agora__trust_derive_key(home, "billing", bill_key) != 0 ||
        agora__ledger_open(hdir, bill_key, &ledger, &err) != 0) {
        fprintf(stderr, "agora run: cannot open the ledger: %s\n", err.msg[0] ? err.msg : "?");
        agora__trust_home_close(home);
        return 1;
    }

    int exit_code = 0;
    run_totals tot = {0};
    json_t *jlog = json_array();
    run_plugin *plugins = NULL;
    size_t n_plugins = 0;
    agora__trust_plugin *installed = NULL;
    size_t n_installed = 0;
    agora__dicom_scan *scan = NULL;
    agora__ingest *ing = NULL; /* the sandboxed DICOM reader */
    uv_loop_t loop;
    uv_loop_init(&loop);

    if (agora__trust_list(home, &installed, &n_installed, &err) != 0) {
        fprintf(stderr, "agora run: %s\n", err.msg);
        exit_code = 1;
        goto out;
    }
    plugins = calloc(n_installed ? n_installed : 1, sizeof *plugins);
    if (plugins == NULL) {
        exit_code = 1;
        goto out;
    }
    for (size_t i = 0; i < n_installed; i++) {
        const agora__trust_plugin *tp = &installed[i];
        int wanted = n_only == 0;
        for (size_t k = 0; k < n_only; k++)
            wanted |= strcmp(only[k], tp->id) == 0;
        if (!wanted)
            continue;
        run_plugin *rp = &plugins[n_plugins];
        if (agora__trust_load(home, tp->id, &rp->lp, &err) != 0) {
            tot.refused++;
            fprintf(stderr, "agora run: refusing %s@%s: %s\n", tp->id, tp->version, err.msg);
            json_array_append_new(jlog, json_pack("{s:s, s:s, s:s, s:s}", "plugin", tp->id,
                                                  "version", tp->version, "status", "refused",
                                                  "error", err.msg));
            continue;
        }
        if (pricing_from_catalog(rp, &err) != 0) {
            fprintf(stderr, "agora run: refusing %s: %s\n", tp->id, err.msg);
            agora__trust_loaded_free(&rp->lp);
            tot.refused++;
            continue;
        }
        for (unsigned b = 0; b < AGORA__OPT_COUNT; b++) {
            if (rp->lp.info.granted & (1u << b)) {
                agora__strlcpy(rp->granted_names[rp->n_granted], agora__trust_option_name(b),
                               sizeof rp->granted_names[0]);
                rp->granted[rp->n_granted] = rp->granted_names[rp->n_granted];
                rp->n_granted++;
            }
        }
        agora__plugin_spec spec;
        agora__jobs_spec_from_manifest(&rp->lp.info.manifest, rp->lp.bytes, rp->lp.len,
                                       (uint32_t)timeout_s, &spec);
        if (agora__pool_new(&loop, &spec, &rp->pool, &err) != 0) {
            fprintf(stderr, "agora run: cannot start %s in the sandbox: %s\n", tp->id, err.msg);
            agora__trust_loaded_free(&rp->lp);
            tot.refused++;
            continue;
        }
        n_plugins++;
    }
    if (n_plugins == 0) {
        fprintf(stderr, "agora run: no installed plugin can run (install one with agora install "
                        "ID; agora list shows their status)\n");
        exit_code = 1;
        goto out;
    }

    agora__ingest_options iopt;
    agora__ingest_options_default(&iopt);
    if (agora__ingest_open(&iopt, &ing, &err) != 0) {
        fprintf(stderr, "agora run: cannot start the sandboxed DICOM reader: %s\n", err.msg);
        exit_code = 1;
        goto out;
    }
    scan = agora__scan_inputs(ing, (const char *const *)argv + optind, (size_t)(argc - optind), quiet,
                              &err);
    if (scan == NULL) {
        fprintf(stderr, "agora run: %s\n", err.msg);
        exit_code = 1;
        goto out;
    }
    size_t total_jobs = 0;
    for (size_t s = 0; s < scan->n_series; s++)
        for (size_t p = 0; p < n_plugins; p++)
            total_jobs += series_matches(&plugins[p].lp.info.manifest, &scan->series[s]);
    size_t n_studies = 0;
    for (size_t s = 0; s < scan->n_series; s++)
        n_studies += s == 0 || strcmp(scan->series[s].study_uid, scan->series[s - 1].study_uid) != 0;
    if (!quiet)
        fprintf(stderr, "%zu series in %zu study(ies), %zu plugin(s), %zu job(s)\n",
                scan->n_series, n_studies, n_plugins, total_jobs);

    size_t done = 0;
    for (size_t s = 0; s < scan->n_series; s++) {
        const agora__dicom_series *ser = &scan->series[s];
        char label[96];
        agora__series_label(ser, label, sizeof label);
        /* One decode per distinct set of granted options (views differ, pixels do not). */
        uint32_t masks_done[RUN_MAX_PLUGINS];
        size_t n_masks_done = 0;
        for (size_t p = 0; p < n_plugins; p++) {
            if (!series_matches(&plugins[p].lp.info.manifest, ser))
                continue;
            uint32_t mask = plugins[p].lp.info.granted;
            int seen = 0;
            for (size_t k = 0; k < n_masks_done; k++)
                seen |= masks_done[k] == mask;
            if (seen)
                continue;
            if (n_masks_done < RUN_MAX_PLUGINS)
                masks_done[n_masks_done++] = mask;
            agora__prepared prep;
            if (agora__prepare_series(ing, ser, uid_key, plugins[p].granted, plugins[p].n_granted,
                                      deid_flags, &prep, &err) != 0) {
                fprintf(stderr, "agora run: series %zu (%s): not run: %s\n", s + 1, label,
                        err.msg);
                tot.failed++;
                exit_code = 1;
                continue;
            }
            for (size_t q = p; q < n_plugins; q++) {
                run_plugin *rp = &plugins[q];
                if (rp->lp.info.granted != mask || !series_matches(&rp->lp.info.manifest, ser))
                    continue;
                done++;
                tot.jobs++;
                if (!quiet)
                    fprintf(stderr, "[%zu/%zu] %s on series %zu (%s) ... ", done, total_jobs,
                            rp->lp.info.id, s + 1, label);
                /* A sync may have revoked the build since we loaded it. */
                if (rp->revoked_midrun ||
                    agora__trust_allowed(home, rp->lp.info.id, rp->lp.info.version, &err) != 0) {
                    if (!rp->revoked_midrun)
                        fprintf(stderr, "%sagora run: %s@%s no longer allowed: %s\n",
                                quiet ? "" : "refused\n", rp->lp.info.id, rp->lp.info.version,
                                err.msg);
                    else if (!quiet)
                        fputs("refused\n", stderr);
                    rp->revoked_midrun = 1;
                    tot.refused++;
                    exit_code = 1;
                    continue;
                }
                char inv[AGORA__LEDGER_ID_LEN + 1];
                agora__job_outcome out = {0};
                if (agora__ledger_mint(inv, &err) != 0 ||
                    agora__jobs_run_one(&loop, rp->pool, &prep, &out, &err) != 0) {
                    if (!quiet)
                        fputs("not run\n", stderr);
                    fprintf(stderr, "agora run: %s: not run: %s\n", rp->lp.info.id, err.msg);
                    tot.failed++;
                    exit_code = 1;
                    continue;
                }
                if (!quiet)
                    fprintf(stderr, "%s (%llu ms)\n", agora__job_status_name(out.status),
                            (unsigned long long)out.wall_ms);
                if (settle(rp, ledger, hdir, inv, &prep, &out, &tot, jlog, &err) != 0) {
                    fprintf(stderr, "agora run: cannot record invocation in the ledger: %s\n",
                            err.msg);
                    exit_code = 1;
                }
                if (out.status != AGORA__JOB_OK)
                    exit_code = 1;
                agora__job_outcome_free(&out);
            }
            agora__prepared_free(&prep);
        }
    }

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
        json_t *doc = json_pack("{s:o, s:o, s:I, s:I, s:I, s:I, s:I}", "invocations", jlog,
                                "studies", studies, "jobs", (json_int_t)tot.jobs, "ok",
                                (json_int_t)tot.ok, "failed", (json_int_t)tot.failed, "refused",
                                (json_int_t)tot.refused, "charged_minor",
                                (json_int_t)tot.billed_minor);
        jlog = NULL;
        json_dumpf(doc, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(doc);
    } else {
        printf("%zu job(s): %zu ok, %zu failed, %zu refused; %zu billable unit(s) charged\n",
               tot.jobs, tot.ok, tot.failed, tot.refused, tot.billed_units);
        if (tot.ok > 0)
            printf("results: agora results studies, then agora results show STUDY_UID\n");
    }

out:
    for (size_t p = 0; p < n_plugins; p++) {
        if (plugins[p].pool != NULL)
            agora__jobs_close_pool(&loop, plugins[p].pool);
        agora__trust_loaded_free(&plugins[p].lp);
    }
    uv_loop_close(&loop);
    free(plugins);
    free(installed);
    if (scan != NULL)
        agora__dicom_scan_free(scan);
    agora__ingest_close(ing);
    if (jlog != NULL)
        json_decref(jlog);
    agora__ledger_close(ledger);
    agora__trust_home_close(home);
    return exit_code;
}
