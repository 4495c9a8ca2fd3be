/*
 * `agora serve`: the clinic daemon. This slice receives studies: a DICOM C-ECHO/C-STORE SCP
 * (host/dimse) that writes every instance to the home's spool and records it before it
 * answers success. Options only here; the listener is host/dimse/server.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "opt.h"
#include "serve.h"

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

/* HOST:PORT or [V6]:PORT into host (copied into buf) and port. */
static int parse_listen(const char *s, char *buf, size_t size, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= size)
        return -1;
    memcpy(buf, h, hlen);
    buf[hlen] = 0;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || colon[1] == 0 || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int agora__cmd_serve(int argc, char **argv)
{
    const char *listen = "127.0.0.1:11113", *ae = "AGORA", *home_opt = NULL;
    const char *max_assoc_s = NULL, *max_pdu_s = NULL, *watermark_s = NULL, *max_inst_s = NULL;
    const char *artim_s = NULL, *idle_s = NULL, *grace_s = NULL;
    int check = 0;
    agora__cli_list allow = {0};
    const agora__cli_opt opts[] = {
        {"--listen-dicom", 0, AGORA__CLI_VALUE, &listen, "ADDR:PORT",
         "address and port of the DICOM listener (default 127.0.0.1:11113)", 0, NULL},
        {"--ae-title", 0, AGORA__CLI_VALUE, &ae, "AE", "our AE title (default AGORA)", 0, NULL},
        {"--allow-ae", 0, AGORA__CLI_LIST, &allow, "AE",
         "accept associations only from this calling AE title (repeatable; default: any)", 0, NULL},
        {"--home", 0, AGORA__CLI_VALUE, &home_opt, "DIR", "clinic home (default: AGORA_HOME)", 0,
         NULL},
        {"--max-associations", 0, AGORA__CLI_VALUE, &max_assoc_s, "N",
         "associations at once; more are rejected transient (default 16)", 0, NULL},
        {"--max-pdu", 0, AGORA__CLI_VALUE, &max_pdu_s, "BYTES",
         "largest P-DATA PDU accepted, 4K..16M (default 256K); larger ones abort", 0, NULL},
        {"--spool-watermark", 0, AGORA__CLI_VALUE, &watermark_s, "BYTES",
         "reject new associations (transient) while the spool holds this much (default: off)", 0,
         NULL},
        {"--max-instance", 0, AGORA__CLI_VALUE, &max_inst_s, "BYTES",
         "largest data set accepted; a larger one aborts its association (default 4G)", 0, NULL},
        {"--artim-timeout", 0, AGORA__CLI_VALUE, &artim_s, "S",
         "seconds a new connection has to send its A-ASSOCIATE-RQ (default 30)", 0, NULL},
        {"--idle-timeout", 0, AGORA__CLI_VALUE, &idle_s, "S",
         "abort an association without a complete PDU for S seconds (default 60)", 0, NULL},
        {"--shutdown-grace", 0, AGORA__CLI_VALUE, &grace_s, "S",
         "on SIGTERM/SIGINT, seconds open associations get to finish (default 10)", 0, NULL},
        {"--check-config", 0, AGORA__CLI_FLAG, &check, NULL,
         "check the options and open the spool, print the settings, exit", 0, NULL},
    };
    const agora__cli_cmd cmd = {
        NAME,
        "[--listen-dicom ADDR:PORT] [--ae-title AE] [--allow-ae AE]... [OPTIONS]",
        "Receive studies from a PACS or modality: a DICOM C-ECHO and C-STORE SCP. Every\n"
        "instance is written to the home's spool (spool/) and recorded in spool/spool.db\n"
        "before the C-STORE response says success. Accepted: Verification and the image\n"
        "storage classes the ingest decodes, in the transfer syntaxes it decodes. Logs go\n"
        "to stderr (AGORA_LOG, default info here; AGORA_LOG_JSON=1) without UIDs or\n"
        "attribute values. Stops on SIGTERM or SIGINT.",
        opts,
        AGORA__CLI_N(opts),
        0,
        0};
    size_t n_pos;
    int status;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &status))
        return status;
    agora__serve_config cfg = {0};
    char host[64], home[4096];
    cfg.ae_title = ae;
    cfg.allow_ae = allow.v;
    cfg.n_allow_ae = allow.n;
    cfg.max_associations = AGORA__SERVE_DEFAULT_MAX_ASSOC;
    cfg.max_pdu = AGORA__SERVE_DEFAULT_MAX_PDU;
    cfg.max_instance_bytes = AGORA__SERVE_DEFAULT_MAX_INSTANCE;
    cfg.artim_ms = AGORA__SERVE_DEFAULT_ARTIM_MS;
    cfg.idle_ms = AGORA__SERVE_DEFAULT_IDLE_MS;
    cfg.shutdown_grace_ms = AGORA__SERVE_DEFAULT_GRACE_MS;
    uint64_t n_assoc = cfg.max_associations, pdu = cfg.max_pdu;
    int bad = 0;
    if (parse_listen(listen, host, sizeof host, &cfg.port) != 0)
        bad = agora__cli_usage_error(NAME, "--listen-dicom wants ADDR:PORT, e.g. "
                                           "127.0.0.1:11113");
    else if (max_assoc_s && (parse_bytes(max_assoc_s, &n_assoc) != 0 || n_assoc > 1024))
        bad = agora__cli_usage_error(NAME, "--max-associations wants a number 1..1024");
    else if (max_pdu_s && (parse_bytes(max_pdu_s, &pdu) != 0 || pdu > UINT32_MAX))
        bad = agora__cli_usage_error(NAME, "--max-pdu wants 4K..16M bytes");
    else if (watermark_s && parse_bytes(watermark_s, &cfg.spool_watermark) != 0)
        bad = agora__cli_usage_error(NAME, "--spool-watermark wants bytes (e.g. 50G)");
    else if (max_inst_s &&
             (parse_bytes(max_inst_s, &cfg.max_instance_bytes) != 0 || cfg.max_instance_bytes == 0))
        bad = agora__cli_usage_error(NAME, "--max-instance wants bytes (e.g. 2G)");
    else if (artim_s && parse_secs(artim_s, &cfg.artim_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--artim-timeout wants seconds 0.1..86400");
    else if (idle_s && parse_secs(idle_s, &cfg.idle_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--idle-timeout wants seconds 0.1..86400");
    else if (grace_s && parse_secs(grace_s, &cfg.shutdown_grace_ms) != 0)
        bad = agora__cli_usage_error(NAME, "--shutdown-grace wants seconds 0.1..86400");
    cfg.max_associations = (unsigned)n_assoc;
    cfg.max_pdu = (uint32_t)pdu;
    if (bad) {
        agora__cli_list_free(&allow);
        return bad;
    }
    cfg.host = host;
    agora__error err = {0};
    int rc = agora__home_dir(home_opt, home, sizeof home, &err);
    cfg.home = home;
    if (rc == 0)
        rc = agora__serve_check(&cfg, &err);
    if (rc != 0) {
        fprintf(stderr, "agora serve: %s\n", err.msg);
        agora__cli_list_free(&allow);
        return 2;
    }
    /* This command logs its events by default (the others warn only). */
    setenv("AGORA_LOG", "info", 0);
    signal(SIGPIPE, SIG_IGN); /* a peer that vanishes is an error return, not a signal */
    if (check) {
        rc = agora__serve_check_spool(&cfg, &err);
        if (rc == 0)
            printf("ok: DICOM %s port %d ae_title=%s allow_ae=%zu max_associations=%u "
                   "max_pdu=%u spool_watermark=%llu\n",
                   cfg.host, cfg.port, cfg.ae_title, cfg.n_allow_ae, cfg.max_associations,
                   cfg.max_pdu, (unsigned long long)cfg.spool_watermark);
    } else {
        rc = agora__serve_run(&cfg, &err);
    }
    if (rc != 0)
        fprintf(stderr, "agora serve: %s\n", err.msg);
    agora__cli_list_free(&allow);
    return rc == 0 ? 0 : 1;
}
