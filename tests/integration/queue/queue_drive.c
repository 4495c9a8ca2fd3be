/* Test helper for the `agora queue` CLI test: plays the daemon's part on a home's queue through
 * the real API (host/daemon/queue.h), one step per invocation, so the shell test can look at
 * each state with the CLI.
 *
 *   queue_drive HOME enqueue PLUGIN STUDY_UID N_SOP PRIORITY SEND_TO   prints "ID DUPLICATE"
 *   queue_drive HOME run                  claim a run; record it in the ledger and settle it
 *                                         (one transaction); prints the id or "none"
 *   queue_drive HOME send delivered|transient|permanent [CLASS MSG]
 *                                         claim a delivery and record its outcome (backoff 60 s)
 *   queue_drive HOME fail-run CLASS MSG   claim a run; it fails permanently (no ledger row)
 *   queue_drive HOME churn N              the daemon's loop for the crash test: enqueue studies
 *                                         1..N (again after a restart: the same keys), end the
 *                                         leases a killed predecessor held, then run (settled in
 *                                         the ledger transaction) and deliver until none is left
 *   queue_drive HOME spool FILE...        receive Part 10 files into the home's spool as the DIMSE
 *                                         listener does (now), then one intake poll groups them
 *                                         in the sandboxed reader ($AGORA_RUNNER); prints the
 *                                         number grouped (the study stays receiving)
 * Exit 0, or 1 with the error on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common.h"
#include "filemeta.h"
#include "intake.h"
#include "ledger.h"
#include "queue.h"
#include "spool.h"

static int die(const char *what, const agora__error *err)
{
    fprintf(stderr, "queue_drive %s: %s\n", what, err->msg);
    return 1;
}

static int cmd_enqueue(agora__queue *q, int argc, char **argv)
{
    if (argc != 8)
        return fprintf(stderr, "queue_drive: enqueue PLUGIN STUDY N_SOP PRIORITY SEND_TO\n"), 1;
    int n = atoi(argv[5]);
    if (n < 1 || n > 1000)
        return fprintf(stderr, "queue_drive: N_SOP 1..1000\n"), 1;
    char(*uids)[64] = calloc((size_t)n, 64);
    const char **ptrs = calloc((size_t)n, sizeof *ptrs);
    if (uids == NULL || ptrs == NULL)
        return fprintf(stderr, "queue_drive: out of memory\n"), 1;
    for (int i = 0; i < n; i++) {
        snprintf(uids[i], 64, "%s.%d", argv[4], i + 1);
        ptrs[i] = uids[i];
    }
    char series[64];
    snprintf(series, sizeof series, "%s.0", argv[4]);
    const char *series_p[] = {series};
    agora__job_spec s = {.plugin_id = argv[3],
                         .plugin_version = "1.0.0",
                         .study_uid = argv[4],
                         .sop_uids = ptrs,
                         .n_sop = (size_t)n,
                         .scope = "study",
                         .series_uids = series_p,
                         .n_series = 1,
                         .priority = atoi(argv[6]),
                         .send_to = argv[7],
                         .rule_id = ""};
    int64_t id = 0;
    int dup = 0;
    agora__error err = {0};
    int rc = agora__queue_enqueue(q, &s, &id, &dup, &err);
    free(uids);
    free(ptrs);
    if (rc != 0)
        return die("enqueue", &err);
    printf("%lld %d\n", (long long)id, dup);
    return 0;
}

/* Record the claimed run j in the ledger and settle it to sending, in one transaction. The
 * test home's ledger is recorded with a fixed billing key: only the queue matters here. */
static int record_run(const char *home, const agora__job *j, agora__error *err)
{
    static const uint8_t key[32] = {7};
    agora__ledger *l = NULL;
    int rc = agora__ledger_open(home, key, &l, err);
    if (rc != 0)
        return rc;
    agora__ledger_pricing p = {.plugin_id = j->plugin_id,
                               .plugin_version = j->plugin_version,
                               .vendor = "Test Vendor",
                               .catalog_version = 1,
                               .model = AGORA__MODEL_PER_STUDY,
                               .price_minor = 100,
                               .currency = "EUR",
                               .vendor_share_bps = 7000};
    const char *units[] = {j->study_uid};
    agora__ledger_outcome o = {.invocation_id = j->invocation_id,
                               .status = "ok",
                               .validated = 1,
                               .units = units,
                               .n_units = 1,
                               .pricing = &p};
    agora__queue_settle a = {j->id, j->lease_token, AGORA__QJOB_SENDING, NULL, NULL};
    rc = agora__ledger_record_with(l, &o, agora__queue_settle_cb, &a, NULL, err);
    agora__ledger_close(l);
    return rc;
}

static int cmd_run(agora__queue *q, const char *home, int fail, int argc, char **argv)
{
    if (fail && argc != 5)
        return fprintf(stderr, "queue_drive: fail-run CLASS MSG\n"), 1;
    agora__error err = {0};
    agora__job *j = NULL;
    if (agora__queue_claim(q, AGORA__QJOB_WAITING, "test-host", 60000, &j, &err) != 0)
        return die("claim", &err);
    if (j == NULL) {
        printf("none\n");
        return 0;
    }
    int rc = 0;
    if (fail) {
        rc = agora__queue_run_failed(q, j, 1, argv[3], argv[4], 0, &err);
    } else {
        rc = record_run(home, j, &err);
    }
    if (rc == 0)
        printf("%lld\n", (long long)j->id);
    agora__job_free(j);
    return rc == 0 ? 0 : die(fail ? "fail-run" : "run", &err);
}

static int cmd_send(agora__queue *q, int argc, char **argv)
{
    if (argc < 4)
        return fprintf(stderr, "queue_drive: send delivered|transient|permanent [CLASS MSG]\n"), 1;
    agora__send_kind kind;
    if (strcmp(argv[3], "delivered") == 0)
        kind = AGORA__SEND_DELIVERED;
    else if (strcmp(argv[3], "transient") == 0)
        kind = AGORA__SEND_TRANSIENT;
    else if (strcmp(argv[3], "permanent") == 0)
        kind = AGORA__SEND_PERMANENT;
    else
        return fprintf(stderr, "queue_drive: unknown outcome %s\n", argv[3]), 1;
    agora__error err = {0};
    agora__job *j = NULL;
    if (agora__queue_claim(q, AGORA__QJOB_SENDING, "test-sender", 60000, &j, &err) != 0)
        return die("claim", &err);
    if (j == NULL) {
        printf("none\n");
        return 0;
    }
    int rc = agora__queue_send_result(q, j, kind, argc > 4 ? argv[4] : NULL,
                                      argc > 5 ? argv[5] : NULL, 60000, &err);
    if (rc == 0)
        printf("%lld\n", (long long)j->id);
    agora__job_free(j);
    return rc == 0 ? 0 : die("send", &err);
}

/* One step of the daemon's loop: a run (claimed, settled in the ledger transaction) and a
 * delivery. *worked: whether there was anything to do. */
static int churn_step(agora__queue *q, const char *home, const char *host, int *worked,
                      agora__error *err)
{
    agora__job *j = NULL;
    *worked = 0;
    if (agora__queue_claim(q, AGORA__QJOB_WAITING, host, 60000, &j, err) != 0)
        return die("claim", err);
    if (j != NULL) {
        int rc = record_run(home, j, err);
        agora__job_free(j);
        if (rc != 0)
            return die("settle", err);
        *worked = 1;
    }
    if (agora__queue_claim(q, AGORA__QJOB_SENDING, host, 60000, &j, err) != 0)
        return die("send claim", err);
    if (j != NULL) {
        int rc = agora__queue_send_result(q, j, AGORA__SEND_DELIVERED, NULL, NULL, 0, err);
        agora__job_free(j);
        if (rc != 0)
            return die("delivered", err);
        *worked = 1;
    }
    return 0;
}

static int cmd_churn(agora__queue *q, const char *home, int argc, char **argv)
{
    int n = argc == 4 ? atoi(argv[3]) : 0;
    if (n < 1 || n > 10000)
        return fprintf(stderr, "queue_drive: churn N (1..10000)\n"), 1;
    agora__error err = {0};
    static const char host[] = "churn-host";
    size_t expired = 0;
    if (agora__queue_expire_mine(q, host, &expired, &err) != 0)
        return die("expire_mine", &err);
    int worked = 1;
    /* Studies arrive while jobs run, as in the daemon: one enqueue, one step. */
    for (int i = 1; i <= n; i++) {
        char study[64], sop[3][72];
        snprintf(study, sizeof study, "1.2.826.0.1.3680043.10.999.%d", i);
        const char *sops[3], *series[] = {study};
        for (int k = 0; k < 3; k++) {
            snprintf(sop[k], sizeof sop[k], "%s.%d", study, k + 1);
            sops[k] = sop[k];
        }
        agora__job_spec s = {.plugin_id = "org.example.churn",
                             .plugin_version = "1.0.0",
                             .study_uid = study,
                             .sop_uids = sops,
                             .n_sop = 3,
                             .scope = "study",
                             .series_uids = series,
                             .n_series = 1,
                             .priority = i % 4 == 0,
                             .send_to = "pacs"};
        int64_t id;
        int dup = 0;
        if (agora__queue_enqueue(q, &s, &id, &dup, &err) != 0)
            return die("enqueue", &err);
        if (!dup && churn_step(q, home, host, &worked, &err) != 0)
            return 1;
    }
    do
        if (churn_step(q, home, host, &worked, &err) != 0)
            return 1;
    while (worked);
    printf("churn done (%zu leases of a previous run ended)\n", expired);
    return 0;
}

static int not_yet(void *arg, const agora__intake_study *st)
{
    (void)arg;
    (void)st;
    return 1; /* not handed over: the test wants it listed, not dispatched */
}

static int cmd_spool(const char *home, int argc, char **argv)
{
    agora__spool *sp = NULL;
    agora__error err = {0};
    if (agora__spool_open(home, 64u << 20, &sp, &err) != 0)
        return die("spool open", &err);
    int rc = 0;
    for (int i = 3; rc == 0 && i < argc; i++) {
        agora__filemeta m;
        FILE *f = NULL;
        if (agora__filemeta_read(argv[i], &m, &err) != 0 || (f = fopen(argv[i], "rb")) == NULL ||
            fseek(f, (long)m.data_offset, SEEK_SET) != 0) {
            rc = die("read", &err);
            break;
        }
        agora__spool_instance inst = {m.sop_class, m.sop_instance, m.ts,
                                      "MODALITY",  "AGORA",        "dimse"};
        agora__spool_txn *t = NULL;
        rc = agora__spool_begin(sp, &inst, &t, &err);
        char buf[65536];
        size_t got;
        while (rc == 0 && (got = fread(buf, 1, sizeof buf, f)) > 0)
            rc = agora__spool_write(t, buf, got, &err);
        fclose(f);
        int dup = 0;
        if (rc == 0)
            rc = agora__spool_commit(t, &dup, &err);
        else if (t != NULL)
            agora__spool_abandon(t);
        if (rc != 0)
            rc = die("spool", &err);
    }
    agora__spool_close(sp);
    if (rc != 0)
        return rc;
    agora__intake *in = NULL;
    if (agora__intake_open(home, NULL, &in, &err) != 0)
        return die("intake open", &err);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    agora__intake_poll_stats ps = {0};
    rc = agora__intake_poll(in, (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000, not_yet, NULL, &ps,
                            &err);
    agora__intake_close(in);
    if (rc != 0)
        return die("poll", &err);
    printf("%u\n", ps.grouped);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: queue_drive HOME enqueue|run|send|fail-run|churn|spool ...\n");
        return 2;
    }
    if (strcmp(argv[2], "spool") == 0)
        return cmd_spool(argv[1], argc, argv);
    agora__queue *q = NULL;
    agora__error err = {0};
    if (agora__queue_open(argv[1], &q, &err) != 0)
        return die("open", &err);
    int rc;
    if (strcmp(argv[2], "enqueue") == 0)
        rc = cmd_enqueue(q, argc, argv);
    else if (strcmp(argv[2], "run") == 0)
        rc = cmd_run(q, argv[1], 0, argc, argv);
    else if (strcmp(argv[2], "fail-run") == 0)
        rc = cmd_run(q, argv[1], 1, argc, argv);
    else if (strcmp(argv[2], "send") == 0)
        rc = cmd_send(q, argc, argv);
    else if (strcmp(argv[2], "churn") == 0)
        rc = cmd_churn(q, argv[1], argc, argv);
    else {
        fprintf(stderr, "queue_drive: unknown step %s\n", argv[2]);
        rc = 2;
    }
    agora__queue_close(q);
    return rc;
}
