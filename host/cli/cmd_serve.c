/*
 * `agora serve`: the clinic daemon (host/daemon/daemon.h): receives studies over DICOM and
 * STOW-RS into the spool, waits until each is complete, routes it, queues one job per app,
 * runs them in the sandbox, and sends the SR/SEG back. Options only here: one table, read from
 * the command line and from --config FILE (opt.h, agora__cli_config_read; flags override it).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "common.h"
#include "opt.h"
#include "daemon.h"
#include "deid.h"

#define NAME "serve"

/* "1048576", "512K", "64M", "2G" (powers of 1024). */
static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k')
        shift = 10;
    else if (*end == 'M' || *end == 'm')
        shift = 20;
    else if (*end == 'G' || *end == 'g')
        shift = 30;
    if (shift)
        end++;
    if (*end != 0 || v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* Seconds, decimals allowed ("0.5"), into milliseconds within [0.1 s, 1 day]. */
static int parse_secs(const char *s, unsigned *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != 0 || !(v >= 0.1 && v <= 86400.0))
        return -1;
    *ms = (unsigned)(v * 1000.0 + 0.5);
    return 0;
}

/* The destination NAME from "AE@HOST:PORT" or a STOW-RS URL. */
static int dest_from(const char *name, const char *spec, const char *calling_ae,
                     agora__daemon_dest *out, agora__error *err)
{
    if (strncmp(spec, "http://", 7) == 0 || strncmp(spec, "https://", 8) == 0)
        return agora__daemon_dest_init(out, name, NULL, NULL, 0, spec, calling_ae, err);
    char ae[17], host[256];
    int port = 0;
    if (agora__cli_ae_host_port(spec, ae, sizeof ae, host, sizeof host, &port) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "'%.100s' is not AE@HOST:PORT (the PACS's AE title, host and "
                                "DICOM port, e.g. PACS@127.0.0.1:4242)",
                                spec);
    return agora__daemon_dest_init(out, name, ae, host, port, NULL, calling_ae, err);
}

static void print_line(void *arg, const char *line)
{
    (void)arg;
    printf("%s\n", line);
}

/* --config FILE (or --config=FILE) on the command line, NULL when absent. */
static const char *config_arg(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

/* Seconds into ms, 0 allowed (quiet times) up to max_ms. */
static int parse_secs_range(const char *s, uint64_t max_ms, uint64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != 0 || !(v >= 0.0 && v * 1000.0 <= (double)max_ms))
        return -1;
    *ms = (uint64_t)(v * 1000.0 + 0.5);
    return 0;
}

typedef struct serve_opts {
    const char *config, *listen, *ae, *home, *send_to, *send_stow, *http, *rules;
    const char *series_quiet, *study_quiet, *force_after, *force_action, *workers, *sync;
    const char *max_assoc, *max_pdu, *watermark, *max_inst, *artim, *idle, *grace, *timeout;
    int no_dicom, check, burned_in;
    agora__cli_list allow, dests;
} serve_opts;

static const agora__cli_cmd serve_cmd = {
    NAME,
    "[--config FILE] [--listen-dicom ADDR:PORT] [--ae-title AE] [--send-to AE@HOST:PORT]\n"
    "                   [--listen-http ADDR:PORT] [--rules FILE] [--home DIR] [OPTIONS]",
    "The clinic daemon. Receives studies from a PACS or modality (DICOM C-STORE SCP, and\n"
    "DICOMweb STOW-RS with --listen-http), spools every instance durably before it says\n"
    "success, waits until a study is complete (quiet timers), routes it (--rules FILE; without\n"
    "rules every installed app whose manifest accepts the series' modality runs), queues one job\n"
    "per app in the home's ledger.db (agora queue), runs them in the sandbox, and sends the SR\n"
    "and SEG back to --send-to (C-STORE) or --send-stow (STOW-RS). --config FILE reads the same\n"
    "options as `key = value` lines (keys without the dashes; flags override the file).\n"
    "Logs go to stderr (AGORA_LOG, default info here; AGORA_LOG_JSON=1) without UIDs or\n"
    "attribute values. SIGTERM or SIGINT: stop listening, let running jobs finish within\n"
    "--shutdown-grace, requeue the rest, exit 0.",
    NULL,
    0,
    0,
    0,
    0};

int agora__cmd_serve(int argc, char **argv)
{
    serve_opts o = {.listen = "127.0.0.1:11113", .ae = "AGORA"};
    const agora__cli_opt opts[] = {
        {"--config", 0, AGORA__CLI_VALUE, &o.config, "FILE",
         "read options from FILE (key = value lines; flags given here override it)", 0, NULL},
        {"--listen-dicom", 0, AGORA__CLI_VALUE, &o.listen, "ADDR:PORT",
         "address and port of the DICOM listener (default 127.0.0.1:11113)", 0, NULL},
        {"--no-dicom", 0, AGORA__CLI_FLAG, &o.no_dicom, NULL, "no DICOM listener", 0, NULL},
        {"--ae-title", 0, AGORA__CLI_VALUE, &o.ae, "AE",
         "our AE title, called by peers and calling when we send (default AGORA)", 0, NULL},
        {"--allow-ae", 0, AGORA__CLI_LIST, &o.allow, "AE",
         "accept associations only from this calling AE title (repeatable; default: any)", 0, NULL},
        {"--send-to", 0, AGORA__CLI_VALUE, &o.send_to, "AE@HOST:PORT",
         "the default destination of results: a PACS's AE title, host and DICOM port", 0, NULL},
        {"--send-stow", 0, AGORA__CLI_VALUE, &o.send_stow, "URL",
         "the default destination as DICOMweb STOW-RS: the base URL (/studies is appended)", 0,
         NULL},
        {"--dest", 0, AGORA__CLI_LIST, &o.dests, "NAME=AE@HOST:PORT|NAME=URL",
         "a named destination the rules' send_to may name", 0, NULL, AGORA__DAEMON_MAX_DESTS - 1},
        {"--listen-http", 0, AGORA__CLI_VALUE, &o.http, "ADDR:PORT",
         "HTTP listener: STOW-RS (POST /dicomweb/studies) and GET /healthz (default: off)", 0,
         NULL},
        {"--rules", 0, AGORA__CLI_VALUE, &o.rules, "FILE",
         "routing rules (agora rules check FILE; default: the default rule)", 0, NULL},
        {"--home", 0, AGORA__CLI_VALUE, &o.home, "DIR", "clinic home (default: AGORA_HOME)", 0,
         NULL},
        {"--series-quiet", 0, AGORA__CLI_VALUE, &o.series_quiet, "S",
         "a series is complete S seconds after its last instance (default 10)", 0, NULL},
        {"--study-quiet", 0, AGORA__CLI_VALUE, &o.study_quiet, "S",
         "a study is complete S seconds after its last instance, all series quiet (default 60)", 0,
         NULL},
        {"--force-after", 0, AGORA__CLI_VALUE, &o.force_after, "S",
         "a study still receiving S seconds after its first instance is forced (default 5400)", 0,
         NULL},
        {"--force-action", 0, AGORA__CLI_VALUE, &o.force_action, "proceed|discard|hold",
         "what forcing does (default proceed)", 0, NULL},
        {"--workers", 0, AGORA__CLI_VALUE, &o.workers, "N",
         "jobs run at once, 1..64 (default: the number of cores)", 0, NULL},
        {"--sync-interval", 0, AGORA__CLI_VALUE, &o.sync, "S",
         "re-sync the catalog from its last source every S seconds; revoked builds stop "
         "(default 300; 0: never)",
         0, NULL},
        {"--timeout", 0, AGORA__CLI_VALUE, &o.timeout, "SECONDS",
         "per-job time limit, 1..86400 (default: the manifest's resources.time_s)", 0, NULL},
        AGORA__CLI_OPT_BURNED_IN(&o.burned_in),
        {"--max-associations", 0, AGORA__CLI_VALUE, &o.max_assoc, "N",
         "associations at once; more are rejected transient (default 16)", 0, NULL},
        {"--max-pdu", 0, AGORA__CLI_VALUE, &o.max_pdu, "BYTES",
         "largest P-DATA PDU accepted, 4K..16M (default 256K); larger ones abort", 0, NULL},
        {"--spool-watermark", 0, AGORA__CLI_VALUE, &o.watermark, "BYTES",
         "refuse new studies (DICOM: RJ transient; STOW: 503) while the spool holds this much "
         "(default: off)",
         0, NULL},
        {"--max-instance", 0, AGORA__CLI_VALUE, &o.max_inst, "BYTES",
         "largest data set accepted; a larger one aborts its association (default 4G)", 0, NULL},
        {"--artim-timeout", 0, AGORA__CLI_VALUE, &o.artim, "S",
         "seconds a new connection has to send its A-ASSOCIATE-RQ (default 30)", 0, NULL},
        {"--idle-timeout", 0, AGORA__CLI_VALUE, &o.idle, "S",
         "abort an association without a complete PDU for S seconds (default 60)", 0, NULL},
        {"--shutdown-grace", 0, AGORA__CLI_VALUE, &o.grace, "S",
         "on SIGTERM/SIGINT, seconds open associations and running jobs get (default 10)", 0, NULL},
        {"--check-config", 0, AGORA__CLI_FLAG, &o.check, NULL,
         "check everything (options, home, spool, queue, rules, destinations, apps), print "
         "the settings, exit without listening",
         0, NULL},
    };
    agora__cli_cmd cmd = serve_cmd;
    cmd.opts = opts;
    cmd.n_opts = AGORA__CLI_N(opts);
    /* The file's words go first so the command line overrides them. */
    const char *cfile = config_arg(argc, argv);
    char **fw = NULL;
    size_t n_fw = 0;
    if (cfile != NULL) {
        int frc = agora__cli_config_read(&cmd, cfile, &fw, &n_fw, stderr);
        if (frc != 0)
            return frc;
    }
    char **av = calloc((size_t)argc + n_fw + 1, sizeof *av);
    if (av == NULL) {
        agora__cli_words_free(fw, n_fw);
        fprintf(stderr, "agora serve: out of memory\n");
        return 1;
    }
    av[0] = argv[0];
    for (size_t i = 0; i < n_fw; i++)
        av[1 + i] = fw[i];
    for (int i = 1; i < argc; i++)
        av[n_fw + (size_t)i] = argv[i];
    int ac = argc + (int)n_fw;
    size_t n_pos;
    int status;
    int rc = 0;
    if (!agora__cli_parse(&cmd, ac, av, &n_pos, &status)) {
        free(av);
        agora__cli_words_free(fw, n_fw);
        return status;
    }
    agora__daemon_config *dc = calloc(1, sizeof *dc);
    char host[64], http_host[64], home[4096];
    if (dc == NULL) {
        rc = 1;
        goto out;
    }
    agora__serve_config *cfg = &dc->dicom;
    cfg->ae_title = o.ae;
    cfg->allow_ae = o.allow.v;
    cfg->n_allow_ae = o.allow.n;
    cfg->max_associations = AGORA__SERVE_DEFAULT_MAX_ASSOC;
    cfg->max_pdu = AGORA__SERVE_DEFAULT_MAX_PDU;
    cfg->max_instance_bytes = AGORA__SERVE_DEFAULT_MAX_INSTANCE;
    cfg->artim_ms = AGORA__SERVE_DEFAULT_ARTIM_MS;
    cfg->idle_ms = AGORA__SERVE_DEFAULT_IDLE_MS;
    cfg->shutdown_grace_ms = AGORA__SERVE_DEFAULT_GRACE_MS;
    dc->dicom_on = !o.no_dicom;
    agora__intake_config_default(&dc->intake);
    dc->sync_interval_s = AGORA__DAEMON_DEFAULT_SYNC_S;
    uint64_t n_assoc = cfg->max_associations, pdu = cfg->max_pdu, workers = 0, sync_ms = 0,
             timeout = 0;
    int bad = 0;
    if (agora__cli_host_port(o.listen, host, sizeof host, &cfg->port) != 0)
        bad = agora__cli_usage_error(NAME, "--listen-dicom wants ADDR:PORT, e.g. "
                                           "127.0.0.1:11113");
    else if (o.http &&
             agora__cli_host_port(o.http, http_host, sizeof http_host, &dc->http_port) != 0)
        bad = agora__cli_usage_error(NAME, "--listen-http wants ADDR:PORT, e.g. 127.0.0.1:8080");
    else if (o.max_assoc && (parse_bytes(o.max_assoc, &n_assoc) != 0 || n_assoc > 1024))
        bad = agora__cli_usage_error(NAME, "--max-associations wants a number 1..1024");
    else if (o.max_pdu && (parse_bytes(o.max_pdu, &pdu) != 0 || pdu > UINT32_MAX))
        bad = agora__cli_usage_error(NAME, "--max-pdu wants 4K..16M bytes");
    else if (o.watermark && parse_bytes(o.watermark, &cfg->spool_watermark) != 0)
        bad = agora__cli_usage_error(NAME, "--spool-watermark wants bytes (e.g. 50G)");
    else if (o.max_inst && (parse_bytes(o.max_inst, &cfg->max_instance_bytes) != 0 ||
                            cfg->max_instance_bytes == 0))
        bad = agora__cli_usage_error(NAME, "--max-instance wants bytes (e.g. 2G)");
    else if (o.artim && parse_secs(o.artim, &cfg->artim_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--artim-timeout wants seconds 0.1..86400");
    else if (o.idle && parse_secs(o.idle, &cfg->idle_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--idle-timeout wants seconds 0.1..86400");
    else if (o.grace && parse_secs(o.grace, &cfg->shutdown_grace_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--shutdown-grace wants seconds 0.1..86400");
    else if (o.series_quiet && parse_secs_range(o.series_quiet, AGORA__INTAKE_QUIET_MAX_MS,
                                                &dc->intake.series_quiet_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--series-quiet wants seconds 0..86400");
    else if (o.study_quiet && parse_secs_range(o.study_quiet, AGORA__INTAKE_QUIET_MAX_MS,
                                               &dc->intake.study_quiet_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--study-quiet wants seconds 0..86400");
    else if (o.force_after && parse_secs_range(o.force_after, AGORA__INTAKE_FORCE_MAX_MS,
                                               &dc->intake.force_after_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--force-after wants seconds 0..604800");
    else if (o.force_action &&
             agora__intake_action_parse(o.force_action, &dc->intake.force_action) != 0)
        bad = agora__cli_usage_error(NAME, "--force-action takes proceed, discard or hold");
    else if (o.workers && (parse_bytes(o.workers, &workers) != 0 || workers < 1 ||
                           workers > AGORA__DAEMON_MAX_WORKERS))
        bad = agora__cli_usage_error(NAME, "--workers wants a number 1..%u",
                                     AGORA__DAEMON_MAX_WORKERS);
    else if (o.sync && parse_secs_range(o.sync, 7ull * 24 * 3600 * 1000, &sync_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--sync-interval wants seconds 0..604800");
    else if (o.timeout && (parse_bytes(o.timeout, &timeout) != 0 || timeout < 1 || timeout > 86400))
        bad = agora__cli_usage_error(NAME, "--timeout wants seconds 1..86400");
    else if (o.send_stow && strncmp(o.send_stow, "http://", 7) != 0 &&
             strncmp(o.send_stow, "https://", 8) != 0)
        bad = agora__cli_usage_error(NAME, "--send-stow wants the DICOMweb base URL, "
                                           "http://HOST:PORT/PATH");
    else if (o.send_to && o.send_stow)
        bad = agora__cli_usage_error(NAME, "--send-to and --send-stow both name the default "
                                           "destination; give one (more with --dest)");
    if (bad) {
        rc = bad;
        goto out;
    }
    cfg->max_associations = (unsigned)n_assoc;
    cfg->max_pdu = (uint32_t)pdu;
    cfg->host = host;
    dc->http_host = o.http ? http_host : NULL;
    dc->rules_path = o.rules;
    dc->workers = (unsigned)workers;
    if (o.sync)
        dc->sync_interval_s = (unsigned)(sync_ms / 1000);
    dc->timeout_s = (uint32_t)timeout;
    dc->grace_ms = cfg->shutdown_grace_ms;
    dc->deid_flags = o.burned_in ? AGORA__DEID_ALLOW_BURNED_IN : 0;
    agora__error err = {0};
    if (o.send_to || o.send_stow) {
        if (dest_from("default", o.send_to ? o.send_to : o.send_stow, o.ae, &dc->dests[0], &err) !=
            0) {
            rc = agora__cli_usage_error(NAME, "%s: %s", o.send_to ? "--send-to" : "--send-stow",
                                        err.msg);
            goto out;
        }
        dc->n_dests = 1;
    }
    for (size_t i = 0; i < o.dests.n; i++) {
        const char *eq = strchr(o.dests.v[i], '=');
        char name[65];
        if (eq == NULL || (size_t)(eq - o.dests.v[i]) >= sizeof name) {
            rc = agora__cli_usage_error(NAME, "--dest wants NAME=AE@HOST:PORT or NAME=URL");
            goto out;
        }
        memcpy(name, o.dests.v[i], (size_t)(eq - o.dests.v[i]));
        name[eq - o.dests.v[i]] = 0;
        int dup = 0;
        for (size_t k = 0; k < dc->n_dests; k++)
            dup |= strcmp(dc->dests[k].name, name) == 0;
        if (dup || dest_from(name, eq + 1, o.ae, &dc->dests[dc->n_dests], &err) != 0) {
            rc = agora__cli_usage_error(NAME, "--dest: %s",
                                        dup ? "a destination name is given twice" : err.msg);
            goto out;
        }
        dc->n_dests++;
    }
    rc = agora__home_dir(o.home, home, sizeof home, &err);
    cfg->home = dc->home = home;
    if (rc == 0)
        rc = agora__serve_check(cfg, &err);
    if (rc != 0) {
        fprintf(stderr, "agora serve: %s\n", err.msg);
        rc = 2;
        goto out;
    }
    /* This command logs its events by default (the others warn only). */
    setenv("AGORA_LOG", "info", 0);
    signal(SIGPIPE, SIG_IGN); /* a peer that vanishes is an error return, not a signal */
    if (o.check) {
        rc = agora__daemon_check(dc, print_line, NULL, &err);
        if (rc == 0)
            printf("ok: the configuration is valid\n");
    } else {
        rc = agora__daemon_run(dc, &err);
    }
    if (rc != 0)
        fprintf(stderr, "agora serve: %s\n", err.msg);
    rc = rc == 0 ? 0 : 1;
out:
    free(dc);
    agora__cli_list_free(&o.allow);
    agora__cli_list_free(&o.dests);
    free(av);
    agora__cli_words_free(fw, n_fw);
    return rc;
}
