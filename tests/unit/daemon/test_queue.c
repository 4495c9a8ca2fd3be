/* Unit tests of the daemon's job queue (host/daemon/queue.h): the unique key and duplicates,
 * every state transition and the refused ones, claim order, leases (heartbeat, expiry rescue,
 * SIGTERM requeue), revocation, two connections claiming at once, and the settle that commits
 * with its ledger row (a failing callback and a crash before COMMIT leave neither). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "common.h"
#include "ledger.h"
#include "queue.h"

static const uint8_t secret[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6,
                                   7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2};

/* A fixed clock for the tests that move time: 2026-06-01T00:00:00Z. */
#define T0 1780272000000ULL

typedef struct fixture {
    char dir[64];
    char db[128];
    agora__queue *q;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/agora-queue-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/ledger.db", f->dir);
    agora__error err = {0};
    if (agora__queue_open(f->dir, &f->q, &err) != 0)
        fail_msg("open: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    agora__queue_close(f->q);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* A job spec on one study; sops/series are static arrays of the caller. */
static agora__job_spec spec(const char *plugin, const char *study, const char *const *sops,
                            size_t n_sop, int priority)
{
    static const char *const series[] = {"1.2.3.100", "1.2.3.101"};
    agora__job_spec s = {.plugin_id = plugin,
                         .plugin_version = "1.0.0",
                         .study_uid = study,
                         .sop_uids = sops,
                         .n_sop = n_sop,
                         .scope = "study",
                         .series_uids = series,
                         .n_series = 2,
                         .priority = priority,
                         .send_to = "pacs",
                         .rule_id = "ct-chest"};
    return s;
}

static const char *const SOPS[] = {"1.2.3.4.3", "1.2.3.4.1", "1.2.3.4.2"};

static int64_t enq(fixture *f, const agora__job_spec *s, int *dup)
{
    int64_t id = 0;
    agora__error err = {0};
    if (agora__queue_enqueue(f->q, s, &id, dup, &err) != 0)
        fail_msg("enqueue: %s", err.msg);
    assert_true(id > 0);
    return id;
}

/* A one-instance job of plugin on study "2.<n>" (instance "1.<n>"); max_attempts 0: default. */
static int64_t enq1(fixture *f, const char *plugin, int n, int priority, unsigned max_attempts)
{
    char study[16], sop[16];
    snprintf(study, sizeof study, "2.%d", n);
    snprintf(sop, sizeof sop, "1.%d", n);
    const char *sops[] = {sop};
    agora__job_spec s = spec(plugin, study, sops, 1, priority);
    s.max_attempts = max_attempts;
    return enq(f, &s, NULL);
}

static agora__job *claim(fixture *f, agora__job_state from, const char *host, uint64_t lease)
{
    agora__job *j = NULL;
    agora__error err = {0};
    if (agora__queue_claim(f->q, from, host, lease, &j, &err) != 0)
        fail_msg("claim: %s", err.msg);
    return j;
}

static agora__job *get(fixture *f, int64_t id)
{
    agora__job *j = NULL;
    agora__error err = {0};
    if (agora__queue_get(f->q, id, 0, &j, &err) != 0)
        fail_msg("get: %s", err.msg);
    return j;
}

static agora__job_state state_of(fixture *f, int64_t id)
{
    agora__job *j = get(f, id);
    agora__job_state s = j->state;
    agora__job_free(j);
    return s;
}

/* Job id is in state st, with attempts (-1: not checked), next attempt time (0: not checked)
 * and last error class (NULL: not checked). */
static void expect(fixture *f, int64_t id, agora__job_state st, int attempts, uint64_t next,
                   const char *cls)
{
    agora__job *g = get(f, id);
    assert_int_equal(g->state, st);
    if (attempts >= 0)
        assert_int_equal(g->attempts, attempts);
    if (next != 0)
        assert_int_equal(g->next_attempt_at, next);
    if (cls != NULL)
        assert_string_equal(g->last_error_class, cls);
    agora__job_free(g);
}

typedef struct settle_arg {
    int64_t id;
    const char *token;
    agora__job_state next;
    int fail_after; /* 1: return an error after the settle succeeded */
    int crash;      /* 1: _exit(0) after the settle, before COMMIT */
} settle_arg;

static int settle_cb(void *arg, struct sqlite3 *db, agora__error *err)
{
    settle_arg *a = arg;
    int failed = a->next == AGORA__QJOB_FAILED;
    agora__queue_settle s = {a->id, a->token, a->next, failed ? "plugin-error" : NULL,
                             failed ? "the plugin failed" : NULL};
    int rc = agora__queue_settle_cb(&s, db, err);
    if (rc != 0)
        return rc;
    if (a->crash)
        _exit(0); /* the process dies between the settle and COMMIT */
    if (a->fail_after)
        return agora__error_set(err, AGORA__EIO, "simulated failure after the settle");
    return 0;
}

static agora__ledger_pricing test_pricing(void)
{
    agora__ledger_pricing p = {.plugin_id = "org.example.a",
                               .plugin_version = "1.0.0",
                               .vendor = "Vendor",
                               .catalog_version = 1,
                               .model = AGORA__MODEL_PER_STUDY,
                               .price_minor = 500,
                               .currency = "EUR",
                               .vendor_share_bps = 7000};
    return p;
}

/* Record the job's run in the ledger and settle it in the same transaction. */
static int record_settle(fixture *f, const agora__job *j, settle_arg *a, agora__error *err)
{
    agora__ledger *l = NULL;
    if (agora__ledger_open_path(f->db, secret, &l, err) != 0)
        fail_msg("ledger open: %s", err->msg);
    agora__ledger_pricing p = test_pricing();
    const char *units[] = {"1.2.3"};
    agora__ledger_outcome o = {.invocation_id = j->invocation_id,
                               .status = "ok",
                               .validated = 1,
                               .units = units,
                               .n_units = 1,
                               .pricing = &p};
    agora__ledger_receipt r;
    int rc = agora__ledger_record_with(l, &o, settle_cb, a, &r, err);
    agora__ledger_close(l);
    return rc;
}

static int ledger_has(fixture *f, const char *invocation_id)
{
    agora__ledger *l = NULL;
    agora__error err = {0};
    assert_int_equal(agora__ledger_open_path(f->db, NULL, &l, &err), 0);
    int64_t seq = 0;
    int rc = agora__ledger_seq_of(l, invocation_id, &seq, &err);
    agora__ledger_close(l);
    return rc == 0 && seq > 0;
}

static void settle_ok(fixture *f, const agora__job *j)
{
    settle_arg a = {j->id, j->lease_token, AGORA__QJOB_SENDING, 0, 0};
    agora__error err = {0};
    if (record_settle(f, j, &a, &err) != 0)
        fail_msg("settle: %s", err.msg);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_state_names(void **state)
{
    (void)state;
    for (unsigned i = 0; i < AGORA__QJOB_STATE_COUNT; i++) {
        agora__job_state s;
        assert_int_equal(agora__job_state_parse(agora__job_state_name((agora__job_state)i), &s), 0);
        assert_int_equal(s, i);
    }
    agora__job_state s;
    assert_int_equal(agora__job_state_parse("available", &s), AGORA_EINVAL);
    assert_null(agora__job_state_name(AGORA__QJOB_STATE_COUNT));
}

static void test_enqueue_key_and_fields(void **state)
{
    fixture *f = *state;
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    int dup = -1;
    int64_t id = enq(f, &s, &dup);
    assert_int_equal(dup, 0);
    agora__job *j = NULL;
    agora__error err = {0};
    assert_int_equal(agora__queue_get(f->q, id, 1, &j, &err), 0);
    /* The key as queue.h defines it, computed here independently over the sorted set. */
    const char text[] = "org.example.a@1.0.0\n1.2.3\n1.2.3.4.1\n1.2.3.4.2\n1.2.3.4.3\n";
    uint8_t d[32];
    char hex[65];
    crypto_hash_sha256(d, (const unsigned char *)text, strlen(text));
    agora__hex(d, 32, hex);
    assert_string_equal(j->key, hex);
    assert_int_equal(j->state, AGORA__QJOB_WAITING);
    assert_int_equal(j->send_phase, 0);
    assert_string_equal(j->plugin_id, "org.example.a");
    assert_string_equal(j->study_uid, "1.2.3");
    assert_int_equal(strlen(j->study_hash), 12);
    assert_string_equal(j->send_to, "pacs");
    assert_string_equal(j->rule_id, "ct-chest");
    assert_string_equal(j->scope, "study");
    assert_int_equal(strlen(j->invocation_id), 32);
    assert_int_equal(j->max_attempts, AGORA__QUEUE_DEFAULT_ATTEMPTS);
    assert_int_equal(j->attempts, 0);
    assert_int_equal(j->n_sop, 3);
    assert_string_equal(j->sop_uids[0], "1.2.3.4.1");
    assert_string_equal(j->sop_uids[2], "1.2.3.4.3");
    assert_int_equal(j->n_series, 2);
    assert_string_equal(j->series_uids[1], "1.2.3.101");
    assert_string_equal(j->lease_token, "");
    agora__job_free(j);
}

static void test_duplicate_and_amendment(void **state)
{
    fixture *f = *state;
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    int dup = 0;
    int64_t id = enq(f, &s, &dup);
    /* Same set in another order with a repeated instance: the same job. */
    static const char *const again[] = {"1.2.3.4.2", "1.2.3.4.1", "1.2.3.4.3", "1.2.3.4.1"};
    agora__job_spec s2 = spec("org.example.a", "1.2.3", again, 4, 1);
    int64_t id2 = enq(f, &s2, &dup);
    assert_int_equal(dup, 1);
    assert_int_equal(id2, id);
    /* The duplicate changed nothing (priority of the first enqueue kept). */
    agora__job *j = get(f, id);
    assert_int_equal(j->priority, 0);
    char inv[33];
    strcpy(inv, j->invocation_id);
    agora__job_free(j);
    /* A late series: a new instance set -> one amendment job. */
    static const char *const late[] = {"1.2.3.4.1", "1.2.3.4.2", "1.2.3.4.3", "1.2.3.5.1"};
    agora__job_spec s3 = spec("org.example.a", "1.2.3", late, 4, 0);
    int64_t id3 = enq(f, &s3, &dup);
    assert_int_equal(dup, 0);
    assert_true(id3 != id);
    j = get(f, id3);
    assert_string_not_equal(j->invocation_id, inv);
    agora__job_free(j);
    /* The same study for another build is another job. */
    agora__job_spec s4 = spec("org.example.b", "1.2.3", SOPS, 3, 0);
    assert_true(enq(f, &s4, &dup) != id && dup == 0);
    uint64_t counts[AGORA__QJOB_STATE_COUNT];
    agora__error err = {0};
    assert_int_equal(agora__queue_counts(f->q, counts, &err), 0);
    assert_int_equal(counts[AGORA__QJOB_WAITING], 3);
}

static void test_enqueue_refused(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    int64_t id = 7;
    static const char *const bad_uid[] = {"1.2.x"};
    agora__job_spec s = spec("org.example.a", "1.2.3", bad_uid, 1, 0);
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), AGORA_EINVAL);
    assert_int_equal(id, 0);
    s = spec("org.example.a", "1.2.3", SOPS, 0, 0);
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), AGORA_EINVAL);
    s = spec("org.example.a", "1.2.3", SOPS, 3, 2);
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), AGORA_EINVAL);
    s = spec("org/example", "1.2.3", SOPS, 3, 0);
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), AGORA_EINVAL);
    s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    s.scope = "folder";
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), AGORA_EINVAL);
    s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    s.send_to = "pacs main";
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), AGORA_EINVAL);
    char longuid[80];
    memset(longuid, '1', sizeof longuid - 1);
    longuid[sizeof longuid - 1] = '\0';
    s = spec("org.example.a", longuid, SOPS, 3, 0);
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), AGORA_EINVAL);
    /* the error never repeats the UID */
    assert_null(strstr(err.msg, longuid));
    s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    s.max_attempts = AGORA__QUEUE_MAX_ATTEMPTS + 1;
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), AGORA_EINVAL);
    uint64_t counts[AGORA__QJOB_STATE_COUNT];
    assert_int_equal(agora__queue_counts(f->q, counts, &err), 0);
    assert_int_equal(counts[AGORA__QJOB_WAITING], 0);
}

static void test_claim_order(void **state)
{
    fixture *f = *state;
    agora__queue_set_now(f->q, T0);
    static const char *const s1[] = {"1.1"}, *const s2[] = {"1.2"}, *const s3[] = {"1.3"},
                             *const s4[] = {"1.4"}, *const s5[] = {"1.5"};
    agora__job_spec a = spec("org.example.a", "2.1", s1, 1, 0);  /* normal, first */
    agora__job_spec b = spec("org.example.a", "2.2", s2, 1, -1); /* offpeak */
    agora__job_spec c = spec("org.example.a", "2.3", s3, 1, 1);  /* urgent, later */
    agora__job_spec d = spec("org.example.a", "2.4", s4, 1, 0);  /* normal, not before +10 s */
    agora__job_spec e = spec("org.example.a", "2.5", s5, 1, 0);  /* normal, earlier due */
    d.not_before_ms = T0 + 10000;
    e.not_before_ms = T0 - 5000;
    int64_t ia = enq(f, &a, NULL), ib = enq(f, &b, NULL), ic = enq(f, &c, NULL);
    int64_t id = enq(f, &d, NULL), ie = enq(f, &e, NULL);
    int64_t want[] = {ic, ie, ia, ib};
    for (size_t i = 0; i < 4; i++) {
        agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
        assert_non_null(j);
        assert_int_equal(j->id, want[i]);
        assert_int_equal(j->state, AGORA__QJOB_RUNNING);
        assert_int_equal(j->attempts, 1);
        assert_int_equal(j->run_attempts, 1);
        assert_string_equal(j->lease_owner, "host-a");
        assert_int_equal(strlen(j->lease_token), 32);
        assert_int_equal(j->leased_until, T0 + 60000);
        assert_int_equal(j->n_sop, 1);
        assert_non_null(j->sop_uids);
        agora__job_free(j);
    }
    /* d is not due yet; the sender sees nothing to send. */
    assert_null(claim(f, AGORA__QJOB_WAITING, "host-a", 60000));
    assert_null(claim(f, AGORA__QJOB_SENDING, "host-a", 60000));
    agora__queue_set_now(f->q, T0 + 10000);
    agora__job *j = claim(f, AGORA__QJOB_RETRYABLE, "host-a", 60000);
    assert_non_null(j);
    assert_int_equal(j->id, id);
    agora__job_free(j);
    assert_null(claim(f, AGORA__QJOB_WAITING, "host-a", 60000));
    /* bad arguments */
    agora__error err = {0};
    assert_int_equal(agora__queue_claim(f->q, AGORA__QJOB_DONE, "h", 1000, &j, &err), AGORA_EINVAL);
    assert_int_equal(agora__queue_claim(f->q, AGORA__QJOB_WAITING, "h st", 1000, &j, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__queue_claim(f->q, AGORA__QJOB_WAITING, "h", 0, &j, &err), AGORA_EINVAL);
}

/* A dispatcher at its worker budget for a plugin claims another plugin's job. */
static void test_claim_skipping(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    int64_t ia = enq1(f, "org.example.a", 1, 1, 0); /* urgent, first in order */
    int64_t ib = enq1(f, "org.example.b", 2, 0, 0), ic = enq1(f, "org.example.c", 3, 0, 0);
    const char *skip_a[] = {"org.example.a"};
    const char *skip_ab[] = {"org.example.a", "org.example.b"};
    const char *skip_all[] = {"org.example.a", "org.example.b", "org.example.c"};
    agora__job *j = NULL;
    assert_int_equal(
        agora__queue_claim_skipping(f->q, AGORA__QJOB_WAITING, "h", 60000, skip_a, 1, &j, &err), 0);
    assert_int_equal(j->id, ib);
    agora__job_free(j);
    assert_int_equal(
        agora__queue_claim_skipping(f->q, AGORA__QJOB_WAITING, "h", 60000, skip_ab, 2, &j, &err),
        0);
    assert_int_equal(j->id, ic);
    agora__job_free(j);
    assert_int_equal(
        agora__queue_claim_skipping(f->q, AGORA__QJOB_WAITING, "h", 60000, skip_all, 3, &j, &err),
        0);
    assert_null(j);
    assert_int_equal(
        agora__queue_claim_skipping(f->q, AGORA__QJOB_WAITING, "h", 60000, NULL, 0, &j, &err), 0);
    assert_int_equal(j->id, ia);
    agora__job_free(j);
    const char *bad[] = {"org example"};
    assert_int_equal(
        agora__queue_claim_skipping(f->q, AGORA__QJOB_WAITING, "h", 60000, bad, 1, &j, &err),
        AGORA_EINVAL);
    const char *many[AGORA__QUEUE_MAX_SKIP + 1];
    for (size_t i = 0; i <= AGORA__QUEUE_MAX_SKIP; i++)
        many[i] = "org.example.z";
    assert_int_equal(agora__queue_claim_skipping(f->q, AGORA__QJOB_WAITING, "h", 60000, many,
                                                 AGORA__QUEUE_MAX_SKIP, &j, &err),
                     0);
    assert_null(j);
    assert_int_equal(agora__queue_claim_skipping(f->q, AGORA__QJOB_WAITING, "h", 60000, many,
                                                 AGORA__QUEUE_MAX_SKIP + 1, &j, &err),
                     AGORA_EINVAL);
}

/* The claim reads the partial index, not the table (the plan that was ~6x faster in
 * PostgreSQL, test-peers.md §4; the same holds for SQLite's scan). */
static void test_claim_uses_partial_index(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT id FROM queue_job WHERE state "
                                        "IN ('waiting','retryable') AND next_attempt_at <= 5 "
                                        "ORDER BY priority DESC, next_attempt_at, id LIMIT 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int used = 0, sorted = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 3);
        used |= strstr(d, "queue_job_run") != NULL;
        sorted |= strstr(d, "TEMP B-TREE") != NULL;
    }
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT id FROM queue_job WHERE state "
                                        "= 'sending' AND lease_token IS NULL AND next_attempt_at "
                                        "<= 5 ORDER BY priority DESC, next_attempt_at, id LIMIT 1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    int used_send = 0;
    while (sqlite3_step(st) == SQLITE_ROW)
        used_send |= strstr((const char *)sqlite3_column_text(st, 3), "queue_job_send") != NULL;
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(used);
    assert_false(sorted);
    assert_true(used_send);
}

static void test_full_path_with_transient_send(void **state)
{
    fixture *f = *state;
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    int64_t id = enq(f, &s, NULL);
    agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    assert_int_equal(j->id, id);
    settle_ok(f, j);
    assert_true(ledger_has(f, j->invocation_id));
    agora__job_free(j);
    agora__job *g = get(f, id);
    assert_int_equal(g->state, AGORA__QJOB_SENDING);
    assert_int_equal(g->send_phase, 1);
    assert_int_equal(g->attempts, 0);
    assert_int_equal(g->run_attempts, 1);
    assert_string_equal(g->lease_token, "");
    agora__job_free(g);
    /* no run to claim now */
    assert_null(claim(f, AGORA__QJOB_WAITING, "host-a", 60000));
    uint64_t now = (uint64_t)time(NULL) * 1000u + 1000u;
    agora__queue_set_now(f->q, now);
    j = claim(f, AGORA__QJOB_SENDING, "sender", 60000);
    assert_non_null(j);
    assert_int_equal(j->state, AGORA__QJOB_SENDING);
    assert_int_equal(j->attempts, 1);
    /* leased: a second sender gets nothing */
    assert_null(claim(f, AGORA__QJOB_SENDING, "sender2", 60000));
    agora__error err = {0};
    assert_int_equal(agora__queue_send_result(f->q, j, AGORA__SEND_TRANSIENT, "connection-refused",
                                              "connection refused by 127.0.0.1:4242", 30000, &err),
                     0);
    agora__job_free(j);
    expect(f, id, AGORA__QJOB_SENDING, 1, now + 30000, "connection-refused");
    assert_null(claim(f, AGORA__QJOB_SENDING, "sender", 60000));
    agora__queue_set_now(f->q, now + 30000);
    j = claim(f, AGORA__QJOB_SENDING, "sender", 60000);
    assert_non_null(j);
    assert_int_equal(j->attempts, 2);
    assert_int_equal(agora__queue_send_result(f->q, j, AGORA__SEND_DELIVERED, NULL, NULL, 0, &err),
                     0);
    /* done is final: a second outcome of the same lease is refused */
    assert_int_equal(agora__queue_send_result(f->q, j, AGORA__SEND_DELIVERED, NULL, NULL, 0, &err),
                     AGORA_ESTATE);
    agora__job_free(j);
    g = get(f, id);
    assert_int_equal(g->state, AGORA__QJOB_DONE);
    assert_string_equal(g->last_error_class, "");
    agora__job_free(g);
}

static void test_no_destination_settles_done(void **state)
{
    fixture *f = *state;
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    s.send_to = "";
    int64_t id = enq(f, &s, NULL);
    agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    settle_ok(f, j);
    agora__job_free(j);
    assert_int_equal(state_of(f, id), AGORA__QJOB_DONE);
}

static void test_send_gives_up_and_permanent(void **state)
{
    fixture *f = *state;
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    s.max_attempts = 2;
    int64_t id = enq(f, &s, NULL);
    agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    settle_ok(f, j);
    agora__job_free(j);
    agora__error err = {0};
    uint64_t now = (uint64_t)time(NULL) * 1000u + 1000u;
    for (unsigned i = 1; i <= 2; i++) {
        agora__queue_set_now(f->q, now);
        j = claim(f, AGORA__QJOB_SENDING, "sender", 60000);
        assert_non_null(j);
        assert_int_equal(j->attempts, i);
        assert_int_equal(agora__queue_send_result(f->q, j, AGORA__SEND_TRANSIENT,
                                                  "out-of-resources", "status 0xA700", 1000, &err),
                         0);
        agora__job_free(j);
        now += 1000;
    }
    agora__job *g = get(f, id);
    assert_int_equal(g->state, AGORA__QJOB_FAILED);
    assert_string_equal(g->last_error_class, "out-of-resources");
    agora__job_free(g);
    /* operator retry: sent again (not run again), attempts restart */
    assert_int_equal(agora__queue_retry(f->q, id, &err), 0);
    g = get(f, id);
    assert_int_equal(g->state, AGORA__QJOB_SENDING);
    assert_int_equal(g->attempts, 0);
    agora__job_free(g);
    assert_null(claim(f, AGORA__QJOB_WAITING, "host-a", 60000));
    j = claim(f, AGORA__QJOB_SENDING, "sender", 60000);
    assert_non_null(j);
    /* a permanent rejection fails at once, with its class and a sanitised message */
    assert_int_equal(agora__queue_send_result(f->q, j, AGORA__SEND_PERMANENT, "refused-by-peer",
                                              "peer said \x1b[31mno\n", 0, &err),
                     0);
    agora__job_free(j);
    g = get(f, id);
    assert_int_equal(g->state, AGORA__QJOB_FAILED);
    assert_string_equal(g->last_error_class, "refused-by-peer");
    assert_string_equal(g->last_error, "peer said ?[31mno?");
    agora__job_free(g);
    /* bad classes are refused */
    assert_int_equal(agora__queue_retry(f->q, id, &err), 0);
    j = claim(f, AGORA__QJOB_SENDING, "sender", 60000);
    assert_int_equal(
        agora__queue_send_result(f->q, j, AGORA__SEND_PERMANENT, "Bad Class", "x", 0, &err),
        AGORA_EINVAL);
    assert_int_equal(agora__queue_send_result(f->q, j, AGORA__SEND_TRANSIENT, NULL, "x", 0, &err),
                     AGORA_EINVAL);
    assert_int_equal(state_of(f, id), AGORA__QJOB_SENDING);
    agora__job_free(j);
}

static void test_run_failures(void **state)
{
    fixture *f = *state;
    agora__queue_set_now(f->q, T0);
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    s.max_attempts = 2;
    int64_t id = enq(f, &s, NULL);
    agora__error err = {0};
    agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    assert_int_equal(
        agora__queue_run_failed(f->q, j, 0, "worker-crash", "the worker died", 5000, &err), 0);
    agora__job_free(j);
    expect(f, id, AGORA__QJOB_RETRYABLE, 1, T0 + 5000, "worker-crash");
    assert_null(claim(f, AGORA__QJOB_WAITING, "host-a", 60000));
    agora__queue_set_now(f->q, T0 + 5000);
    j = claim(f, AGORA__QJOB_RETRYABLE, "host-a", 60000);
    assert_non_null(j);
    assert_int_equal(j->attempts, 2);
    /* the last attempt: a transient failure is final now */
    assert_int_equal(agora__queue_run_failed(f->q, j, 0, "worker-crash", "again", 5000, &err), 0);
    agora__job_free(j);
    assert_int_equal(state_of(f, id), AGORA__QJOB_FAILED);
    /* retry of a run-phase failure runs it again from waiting */
    assert_int_equal(agora__queue_retry(f->q, id, &err), 0);
    expect(f, id, AGORA__QJOB_WAITING, 0, 0, NULL);
    j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    assert_int_equal(agora__queue_run_failed(f->q, j, 1, "input-refused", "unsuitable", 0, &err),
                     0);
    agora__job_free(j);
    assert_int_equal(state_of(f, id), AGORA__QJOB_FAILED);
}

static void test_settle_failed_in_ledger(void **state)
{
    fixture *f = *state;
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    int64_t id = enq(f, &s, NULL);
    agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    settle_arg a = {j->id, j->lease_token, AGORA__QJOB_FAILED, 0, 0};
    agora__error err = {0};
    assert_int_equal(record_settle(f, j, &a, &err), 0);
    agora__job_free(j);
    agora__job *g = get(f, id);
    assert_int_equal(g->state, AGORA__QJOB_FAILED);
    assert_int_equal(g->send_phase, 0);
    assert_string_equal(g->last_error_class, "plugin-error");
    agora__job_free(g);
    /* settle refuses other targets and a missing token */
    a.next = AGORA__QJOB_RETRYABLE;
    assert_int_equal(
        agora__queue_settle_in_txn(NULL, id, "x", AGORA__QJOB_RETRYABLE, NULL, NULL, &err),
        AGORA_EINVAL);
    assert_int_equal(agora__queue_settle_in_txn(NULL, id, "", AGORA__QJOB_DONE, NULL, NULL, &err),
                     AGORA_EINVAL);
}

static void test_illegal_transitions(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    int64_t id = enq(f, &s, NULL);
    /* waiting: no retry */
    assert_int_equal(agora__queue_retry(f->q, id, &err), AGORA_ESTATE);
    assert_non_null(strstr(err.msg, "is waiting; only failed, retryable or sending jobs"));
    agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    /* running: no retry, no send outcome */
    assert_int_equal(agora__queue_retry(f->q, id, &err), AGORA_ESTATE);
    assert_int_equal(agora__queue_send_result(f->q, j, AGORA__SEND_DELIVERED, NULL, NULL, 0, &err),
                     AGORA_ESTATE);
    /* a stale token cannot settle, and the ledger row rolls back with it */
    agora__job wrong = *j;
    wrong.series_uids = wrong.sop_uids = NULL;
    strcpy(wrong.lease_token, "00000000000000000000000000000000");
    settle_arg a = {id, wrong.lease_token, AGORA__QJOB_SENDING, 0, 0};
    assert_int_equal(record_settle(f, &wrong, &a, &err), AGORA_ESTATE);
    assert_non_null(strstr(err.msg, "no longer held by this worker"));
    assert_false(ledger_has(f, j->invocation_id));
    assert_int_equal(agora__queue_heartbeat(f->q, &wrong, 1000, &err), AGORA_ESTATE);
    assert_int_equal(agora__queue_run_failed(f->q, &wrong, 1, "x", "y", 0, &err), AGORA_ESTATE);
    assert_int_equal(state_of(f, id), AGORA__QJOB_RUNNING);
    settle_ok(f, j);
    /* sending (unleased): a second settle of the same claim is refused */
    a.token = j->lease_token;
    assert_int_equal(record_settle(f, j, &a, &err), AGORA_ESTATE);
    agora__job_free(j);
    j = claim(f, AGORA__QJOB_SENDING, "sender", 60000);
    /* leased sending: retry refused while a delivery is in flight */
    assert_int_equal(agora__queue_retry(f->q, id, &err), AGORA_ESTATE);
    assert_non_null(strstr(err.msg, "being delivered"));
    assert_int_equal(agora__queue_send_result(f->q, j, AGORA__SEND_DELIVERED, NULL, NULL, 0, &err),
                     0);
    agora__job_free(j);
    /* done: neither retry nor cancel */
    assert_int_equal(agora__queue_retry(f->q, id, &err), AGORA_ESTATE);
    char want[128];
    snprintf(want, sizeof want,
             "job %lld is done; only failed, retryable or sending jobs can be retried",
             (long long)id);
    assert_string_equal(err.msg, want);
    assert_int_equal(agora__queue_cancel(f->q, id, &err), AGORA_ESTATE);
    assert_non_null(strstr(err.msg, "is done; only waiting, retryable, running or sending"));
    /* unknown ids */
    assert_int_equal(agora__queue_retry(f->q, 999999, &err), AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "no job 999999"));
    assert_int_equal(agora__queue_cancel(f->q, 999999, &err), AGORA_EINVAL);
    agora__job *none = NULL;
    assert_int_equal(agora__queue_get(f->q, 999999, 0, &none, &err), AGORA_EINVAL);
    assert_null(none);
}

static void test_cancel(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    int64_t ia = enq1(f, "org.example.a", 1, 0, 0), ib = enq1(f, "org.example.a", 2, 0, 0);
    assert_int_equal(agora__queue_cancel(f->q, ia, &err), 0);
    agora__job *g = get(f, ia);
    assert_int_equal(g->state, AGORA__QJOB_CANCELLED);
    assert_string_equal(g->last_error_class, "cancelled");
    agora__job_free(g);
    assert_int_equal(agora__queue_cancel(f->q, ia, &err), AGORA_ESTATE);
    /* cancelled jobs are not claimed; a cancelled running job's worker learns it */
    agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    assert_int_equal(j->id, ib);
    assert_int_equal(agora__queue_cancel(f->q, ib, &err), 0);
    assert_int_equal(agora__queue_heartbeat(f->q, j, 60000, &err), AGORA_ECANCELLED);
    settle_arg sa = {j->id, j->lease_token, AGORA__QJOB_SENDING, 0, 0};
    assert_int_equal(record_settle(f, j, &sa, &err), AGORA_ECANCELLED);
    assert_false(ledger_has(f, j->invocation_id)); /* a cancelled run is not billed */
    agora__job_free(j);
    assert_null(claim(f, AGORA__QJOB_WAITING, "host-a", 60000));
    /* cancelled: retry refused too */
    assert_int_equal(agora__queue_retry(f->q, ib, &err), AGORA_ESTATE);
}

static void test_lease_expiry_rescue(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    agora__queue_set_now(f->q, T0);
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    s.max_attempts = 2;
    int64_t id = enq(f, &s, NULL);
    agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 1000);
    size_t n = 99;
    /* not expired yet; a heartbeat moves the deadline */
    agora__queue_set_now(f->q, T0 + 900);
    assert_int_equal(agora__queue_heartbeat(f->q, j, 1000, &err), 0);
    agora__queue_set_now(f->q, T0 + 1500);
    assert_int_equal(agora__queue_rescue(f->q, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(state_of(f, id), AGORA__QJOB_RUNNING);
    /* expired: back to retryable with the attempt kept */
    agora__queue_set_now(f->q, T0 + 2000);
    assert_int_equal(agora__queue_rescue(f->q, &n, &err), 0);
    assert_int_equal(n, 1);
    agora__job *g = get(f, id);
    assert_int_equal(g->state, AGORA__QJOB_RETRYABLE);
    assert_int_equal(g->attempts, 1);
    assert_string_equal(g->last_error_class, "lease-expired");
    assert_string_equal(g->lease_token, "");
    agora__job_free(g);
    /* the old worker wakes up: it cannot settle any more */
    assert_int_equal(agora__queue_heartbeat(f->q, j, 1000, &err), AGORA_ESTATE);
    agora__job *j2 = claim(f, AGORA__QJOB_RETRYABLE, "host-b", 1000);
    assert_int_equal(j2->id, id);
    assert_int_equal(j2->attempts, 2);
    settle_arg a = {id, j->lease_token, AGORA__QJOB_SENDING, 0, 0};
    assert_int_equal(record_settle(f, j, &a, &err), AGORA_ESTATE);
    agora__job_free(j);
    /* the second lease expires at the last attempt: failed */
    agora__queue_set_now(f->q, T0 + 5000);
    assert_int_equal(agora__queue_rescue(f->q, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(state_of(f, id), AGORA__QJOB_FAILED);
    agora__job_free(j2);
    /* an expired delivery lease: back to sending, due now */
    static const char *const s2[] = {"1.9"};
    agora__job_spec b = spec("org.example.a", "2.9", s2, 1, 0);
    int64_t ib = enq(f, &b, NULL);
    agora__queue_set_now(f->q, 0);
    j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    assert_int_equal(j->id, ib);
    settle_ok(f, j);
    agora__job_free(j);
    uint64_t now = (uint64_t)time(NULL) * 1000u + 1000u;
    agora__queue_set_now(f->q, now);
    j = claim(f, AGORA__QJOB_SENDING, "sender", 1000);
    agora__queue_set_now(f->q, now + 1001);
    assert_int_equal(agora__queue_rescue(f->q, &n, &err), 0);
    assert_int_equal(n, 1);
    g = get(f, ib);
    assert_int_equal(g->state, AGORA__QJOB_SENDING);
    assert_string_equal(g->lease_token, "");
    assert_int_equal(g->attempts, 1);
    agora__job_free(g);
    assert_int_equal(agora__queue_send_result(f->q, j, AGORA__SEND_DELIVERED, NULL, NULL, 0, &err),
                     AGORA_ESTATE);
    agora__job_free(j);
    j = claim(f, AGORA__QJOB_SENDING, "sender", 1000);
    assert_non_null(j);
    assert_int_equal(j->attempts, 2);
    agora__job_free(j);
}

static void test_requeue_mine(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    int64_t ia = enq1(f, "org.example.a", 1, 0, 0), ib = enq1(f, "org.example.a", 2, 0, 0);
    int64_t ic = enq1(f, "org.example.a", 3, 0, 0);
    agora__job *ja = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    agora__job *jb = claim(f, AGORA__QJOB_WAITING, "host-b", 60000);
    agora__job *jc = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    settle_ok(f, jc); /* c is sending, then leased by host-a's sender */
    agora__job_free(jc);
    uint64_t now = (uint64_t)time(NULL) * 1000u + 1000u;
    agora__queue_set_now(f->q, now);
    jc = claim(f, AGORA__QJOB_SENDING, "host-a", 60000);
    assert_int_equal(jc->id, ic);
    size_t n = 0;
    assert_int_equal(agora__queue_requeue_mine(f->q, "host-a", &n, &err), 0);
    assert_int_equal(n, 2);
    agora__job *g = get(f, ia);
    assert_int_equal(g->state, AGORA__QJOB_RETRYABLE);
    assert_int_equal(g->attempts, 0); /* the attempt is given back */
    assert_string_equal(g->last_error_class, "requeued");
    agora__job_free(g);
    g = get(f, ic);
    assert_int_equal(g->state, AGORA__QJOB_SENDING);
    assert_string_equal(g->lease_token, "");
    assert_int_equal(g->attempts, 0);
    agora__job_free(g);
    assert_int_equal(state_of(f, ib), AGORA__QJOB_RUNNING); /* host-b's job untouched */
    assert_int_equal(agora__queue_heartbeat(f->q, jb, 60000, &err), 0);
    assert_int_equal(agora__queue_heartbeat(f->q, ja, 60000, &err), AGORA_ESTATE);
    assert_int_equal(agora__queue_requeue_mine(f->q, "bad host", &n, &err), AGORA_EINVAL);
    agora__job_free(ja);
    agora__job_free(jb);
    agora__job_free(jc);
}

/* After a crash of the whole daemon: its host's leases end at restart, attempts kept. */
static void test_expire_mine(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    int64_t ia = enq1(f, "org.example.a", 1, 0, 2), ib = enq1(f, "org.example.a", 2, 0, 0);
    agora__job *ja = claim(f, AGORA__QJOB_WAITING, "host-a", 3600000);
    agora__job *jb = claim(f, AGORA__QJOB_WAITING, "host-b", 3600000);
    size_t n = 0;
    assert_int_equal(agora__queue_expire_mine(f->q, "host-a", &n, &err), 0);
    assert_int_equal(n, 1);
    agora__job *g = get(f, ia);
    assert_int_equal(g->state, AGORA__QJOB_RETRYABLE);
    assert_int_equal(g->attempts, 1); /* counted: the crash may have been this job's doing */
    assert_string_equal(g->last_error_class, "lease-expired");
    agora__job_free(g);
    assert_int_equal(state_of(f, ib), AGORA__QJOB_RUNNING);
    agora__job_free(ja);
    ja = claim(f, AGORA__QJOB_RETRYABLE, "host-a", 3600000);
    assert_int_equal(ja->id, ia);
    /* the job that takes the daemon down every time ends in failed */
    assert_int_equal(agora__queue_expire_mine(f->q, "host-a", &n, &err), 0);
    assert_int_equal(state_of(f, ia), AGORA__QJOB_FAILED);
    assert_int_equal(agora__queue_expire_mine(f->q, "", &n, &err), AGORA_EINVAL);
    agora__job_free(ja);
    agora__job_free(jb);
}

static void test_cancel_plugin(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    static const char *const s1[] = {"1.1"}, *const s2[] = {"1.2"}, *const s3[] = {"1.3"},
                             *const s4[] = {"1.4"}, *const s5[] = {"1.5"};
    agora__job_spec a = spec("org.example.bad", "2.1", s1, 1, 0); /* running */
    agora__job_spec b = spec("org.example.bad", "2.2", s2, 1, 0); /* waiting */
    agora__job_spec c = spec("org.example.bad", "2.3", s3, 1, 0); /* done */
    agora__job_spec d = spec("org.example.bad", "2.4", s4, 1, 0); /* other version */
    agora__job_spec e = spec("org.example.ok", "2.5", s5, 1, 0);  /* other plugin */
    d.plugin_version = "1.0.1";
    int64_t ic = enq(f, &c, NULL);
    agora__job *jc = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    assert_int_equal(jc->id, ic);
    settle_ok(f, jc);
    agora__job_free(jc);
    agora__job *g = get(f, ic);
    agora__job_state c_state = g->state; /* sending (it has a destination) */
    agora__job_free(g);
    assert_int_equal(c_state, AGORA__QJOB_SENDING);
    jc = claim(f, AGORA__QJOB_SENDING, "sender", 60000);
    assert_non_null(jc);
    assert_int_equal(agora__queue_send_result(f->q, jc, AGORA__SEND_DELIVERED, NULL, NULL, 0, &err),
                     0);
    agora__job_free(jc);
    int64_t ia = enq(f, &a, NULL);
    agora__job *ja = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    assert_int_equal(ja->id, ia);
    int64_t ib = enq(f, &b, NULL), id = enq(f, &d, NULL), ie = enq(f, &e, NULL);
    size_t n = 0;
    assert_int_equal(agora__queue_cancel_plugin(f->q, "org.example.bad", "1.0.0",
                                                "catalog revoked the build", &n, &err),
                     0);
    assert_int_equal(n, 2);
    g = get(f, ia);
    assert_int_equal(g->state, AGORA__QJOB_CANCELLED);
    assert_string_equal(g->last_error_class, "revoked");
    assert_string_equal(g->last_error, "catalog revoked the build");
    agora__job_free(g);
    assert_int_equal(state_of(f, ib), AGORA__QJOB_CANCELLED);
    assert_int_equal(state_of(f, ic), AGORA__QJOB_DONE);
    assert_int_equal(state_of(f, id), AGORA__QJOB_WAITING);
    assert_int_equal(state_of(f, ie), AGORA__QJOB_WAITING);
    assert_int_equal(agora__queue_heartbeat(f->q, ja, 60000, &err), AGORA_ECANCELLED);
    assert_non_null(strstr(err.msg, "revoked"));
    agora__job_free(ja);
    assert_int_equal(
        agora__queue_cancel_plugin(f->q, "org.example.bad", "1.0.0", "bad\nreason", &n, &err),
        AGORA_EINVAL);
}

static void test_list_and_counts(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    char uids[30][16];
    const char *ptrs[30];
    for (int i = 0; i < 30; i++) {
        snprintf(uids[i], sizeof uids[i], "1.7.%d", i);
        ptrs[i] = uids[i];
        agora__job_spec s = spec("org.example.a", "1.2.3", &ptrs[i], 1, 0);
        enq(f, &s, NULL);
    }
    for (int i = 0; i < 5; i++)
        agora__job_free(claim(f, AGORA__QJOB_WAITING, "host-a", 60000));
    agora__job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(agora__queue_list(f->q, 0, 10, &jobs, &n, &err), 0);
    assert_int_equal(n, 10);
    assert_true(jobs[0].id > jobs[1].id); /* newest first */
    assert_null(jobs[0].sop_uids);
    agora__job_list_free(jobs, n);
    assert_int_equal(agora__queue_list(f->q, 1u << AGORA__QJOB_RUNNING, 100, &jobs, &n, &err), 0);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(jobs[i].state, AGORA__QJOB_RUNNING);
    agora__job_list_free(jobs, n);
    assert_int_equal(agora__queue_list(f->q, 1u << AGORA__QJOB_DONE, 100, &jobs, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(jobs);
    assert_int_equal(agora__queue_list(f->q, 0, 0, &jobs, &n, &err), AGORA_EINVAL);
    assert_int_equal(agora__queue_list(f->q, 0, AGORA__QUEUE_MAX_LIST + 1, &jobs, &n, &err),
                     AGORA_EINVAL);
    uint64_t counts[AGORA__QJOB_STATE_COUNT];
    assert_int_equal(agora__queue_counts(f->q, counts, &err), 0);
    assert_int_equal(counts[AGORA__QJOB_WAITING], 25);
    assert_int_equal(counts[AGORA__QJOB_RUNNING], 5);
}

/* ---- two connections claiming at once ----------------------------------------------------- */

#define N_JOBS 2000

typedef struct claimer {
    pthread_barrier_t *start;
    const char *db;
    const char *host;
    int64_t *got; /* ids claimed, in order */
    size_t n;
    int failed;
    char msg[512];
} claimer;

static void *claim_loop(void *arg)
{
    claimer *c = arg;
    agora__queue *q = NULL;
    agora__error err = {0};
    if (agora__queue_open_path(c->db, &q, &err) != 0) {
        c->failed = 1;
        snprintf(c->msg, sizeof c->msg, "%s", err.msg);
        pthread_barrier_wait(c->start);
        return NULL;
    }
    pthread_barrier_wait(c->start);
    for (;;) {
        agora__job *j = NULL;
        if (agora__queue_claim(q, AGORA__QJOB_WAITING, c->host, 60000, &j, &err) != 0) {
            c->failed = 1;
            snprintf(c->msg, sizeof c->msg, "%s", err.msg);
            break;
        }
        if (j == NULL)
            break;
        c->got[c->n++] = j->id;
        /* "work" outside the lock, as a dispatch thread runs its job between claims */
        struct timespec work = {0, 200000};
        nanosleep(&work, NULL);
        /* finish it, so the state changes interleave with the other connection's claims */
        if (agora__queue_run_failed(q, j, 1, "test", "done by the test", 0, &err) != 0) {
            c->failed = 1;
            snprintf(c->msg, sizeof c->msg, "%s", err.msg);
            agora__job_free(j);
            break;
        }
        agora__job_free(j);
        /* and between jobs, so neither connection holds the write lock back to back (SQLite's
         * lock is not fair: a waiter polls, it is not queued) */
        nanosleep(&work, NULL);
    }
    agora__queue_close(q);
    return NULL;
}

static void test_concurrent_claims(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    /* Fill in one transaction of our own (through SQL: enqueue commits each job alone, and
     * 2,000 fsyncs would only measure the disk). The enqueue path is tested above. */
    static const char *const one[] = {"1.1"};
    agora__job_spec s = spec("org.example.a", "1.2.3", one, 1, 0);
    int64_t first = enq(f, &s, NULL);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "BEGIN;"
                                  "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k "
                                  "WHERE i < 1999) INSERT INTO queue_job(unique_key, state, phase, "
                                  "plugin_id, plugin_version, study_uid, scope, priority, send_to, "
                                  "rule_id, invocation_id, attempts, run_attempts, max_attempts, "
                                  "next_attempt_at, last_error_class, last_error, n_series, n_sop, "
                                  "created_ms, updated_ms) SELECT printf('%064d', i), state, "
                                  "phase, plugin_id, plugin_version, study_uid, scope, i % 3 - 1, "
                                  "send_to, rule_id, invocation_id, 0, 0, max_attempts, "
                                  "next_attempt_at, '', '', 0, 0, created_ms, updated_ms FROM k, "
                                  "queue_job WHERE queue_job.id = 1;"
                                  "COMMIT;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    uint64_t counts[AGORA__QJOB_STATE_COUNT];
    assert_int_equal(agora__queue_counts(f->q, counts, &err), 0);
    assert_int_equal(counts[AGORA__QJOB_WAITING], N_JOBS);
    (void)first;
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    claimer c[2] = {{.start = &start, .db = f->db, .host = "host-a"},
                    {.start = &start, .db = f->db, .host = "host-b"}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        c[i].got = calloc(N_JOBS, sizeof(int64_t));
        assert_int_equal(pthread_create(&t[i], NULL, claim_loop, &c[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++)
        if (c[i].failed)
            fail_msg("%s: %s", c[i].host, c[i].msg);
    /* each job claimed exactly once, by one of the two */
    unsigned char *seen = calloc(N_JOBS + 1, 1);
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; k < c[i].n; k++) {
            int64_t id = c[i].got[k];
            assert_true(id >= 1 && id <= N_JOBS);
            assert_int_equal(seen[id], 0);
            seen[id] = 1;
        }
    assert_int_equal(c[0].n + c[1].n, N_JOBS);
    print_message("claims: host-a %zu, host-b %zu\n", c[0].n, c[1].n);
    /* both really claimed (the test would prove nothing if one ran alone) */
    assert_true(c[0].n > 0 && c[1].n > 0);
    assert_int_equal(agora__queue_counts(f->q, counts, &err), 0);
    assert_int_equal(counts[AGORA__QJOB_FAILED], N_JOBS);
    /* each job was claimed exactly once: attempts = 1 everywhere */
    agora__job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(agora__queue_list(f->q, 0, N_JOBS, &jobs, &n, &err), 0);
    assert_int_equal(n, N_JOBS);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(jobs[i].attempts, 1);
    agora__job_list_free(jobs, n);
    free(seen);
    free(c[0].got);
    free(c[1].got);
}

/* ---- the settle commits with the ledger row ----------------------------------------------- */

static void test_settle_atomic_with_ledger(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    int64_t id = enq(f, &s, NULL);
    agora__job *j = claim(f, AGORA__QJOB_WAITING, "host-a", 60000);
    /* a callback failing after the settle: neither the row nor the state change stays */
    settle_arg a = {id, j->lease_token, AGORA__QJOB_SENDING, 1, 0};
    assert_int_equal(record_settle(f, j, &a, &err), AGORA__EIO);
    assert_string_equal(err.msg, "simulated failure after the settle");
    assert_false(ledger_has(f, j->invocation_id));
    assert_int_equal(state_of(f, id), AGORA__QJOB_RUNNING);
    /* a crash between the settle and COMMIT (the process dies inside the transaction) */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        settle_arg c = {id, j->lease_token, AGORA__QJOB_SENDING, 0, 1};
        agora__error e = {0};
        record_settle(f, j, &c, &e);
        _exit(3); /* not reached: the callback exits first */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0); /* it died inside the callback */
    assert_false(ledger_has(f, j->invocation_id));
    assert_int_equal(state_of(f, id), AGORA__QJOB_RUNNING);
    /* the same claim settles cleanly now: both appear, in one commit */
    settle_ok(f, j);
    assert_true(ledger_has(f, j->invocation_id));
    assert_int_equal(state_of(f, id), AGORA__QJOB_SENDING);
    /* a second run under the same invocation id (operator retry after a send failure would not
     * rerun; a rescued run does): the ledger sees a duplicate, no second billable row */
    agora__ledger *l = NULL;
    assert_int_equal(agora__ledger_open_path(f->db, secret, &l, &err), 0);
    int64_t rows = 0, bad = 0;
    assert_int_equal(agora__ledger_verify(l, &bad, &rows, &err), 0);
    assert_int_equal(rows, 1);
    agora__ledger_close(l);
    agora__job_free(j);
}

/* The ledger hook on its own: a duplicate id still runs the callback in the transaction. */
static int count_cb(void *arg, struct sqlite3 *db, agora__error *err)
{
    (void)db;
    (void)err;
    ++*(int *)arg;
    return 0;
}

static void test_record_with_duplicate(void **state)
{
    fixture *f = *state;
    agora__error err = {0};
    agora__ledger *l = NULL;
    assert_int_equal(agora__ledger_open_path(f->db, secret, &l, &err), 0);
    char inv[33];
    assert_int_equal(agora__ledger_mint(inv, &err), 0);
    agora__ledger_pricing p = test_pricing();
    const char *units[] = {"1.2.3"};
    agora__ledger_outcome o = {.invocation_id = inv,
                               .status = "ok",
                               .validated = 1,
                               .units = units,
                               .n_units = 1,
                               .pricing = &p};
    int calls = 0;
    agora__ledger_receipt r;
    assert_int_equal(agora__ledger_record_with(l, &o, count_cb, &calls, &r, &err), 0);
    assert_int_equal(r.duplicate, 0);
    assert_int_equal(r.amount_minor, 500);
    assert_int_equal(agora__ledger_record_with(l, &o, count_cb, &calls, &r, &err), 0);
    assert_int_equal(r.duplicate, 1);
    assert_int_equal(calls, 2);
    assert_int_equal(agora__ledger_record_with(l, &o, NULL, NULL, &r, &err), AGORA_EINVAL);
    agora__ledger_close(l);
}

/* Another writer holding the lock past the busy timeout: EAGAIN, nothing changed. */
static void test_locked_is_eagain(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    agora__job_spec s = spec("org.example.a", "1.2.3", SOPS, 3, 0);
    agora__error err = {0};
    int64_t id = 5;
    uint64_t t0 = agora__now_ns();
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), AGORA__EAGAIN);
    assert_true(agora__now_ns() - t0 >= 9000000000ull); /* it waited the busy timeout */
    assert_non_null(strstr(err.msg, "try again"));
    assert_int_equal(id, 0);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    uint64_t counts[AGORA__QJOB_STATE_COUNT];
    assert_int_equal(agora__queue_counts(f->q, counts, &err), 0);
    assert_int_equal(counts[AGORA__QJOB_WAITING], 0);
    assert_int_equal(agora__queue_enqueue(f->q, &s, &id, NULL, &err), 0);
}

static void test_format_checked(void **state)
{
    fixture *f = *state;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE queue_meta SET v = 'agora.queue/99'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    agora__queue *q = NULL;
    agora__error err = {0};
    assert_int_equal(agora__queue_open_path(f->db, &q, &err), AGORA_EUNSUPPORTED);
    assert_null(q);
    assert_non_null(strstr(err.msg, "unknown format"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test_setup_teardown(test_enqueue_key_and_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_and_amendment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_skipping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_uses_partial_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_path_with_transient_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_destination_settles_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_gives_up_and_permanent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_failed_in_ledger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_illegal_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry_rescue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_mine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expire_mine, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_plugin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_claims, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_atomic_with_ledger, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_with_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_is_eagain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_checked, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
