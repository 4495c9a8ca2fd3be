/*
 * CLI: `agora queue` (the studies still being received, then what the daemon's job queue
 * holds: waiting, running, sending, failed, and why), `agora queue show JOB`, `agora queue
 * retry JOB`, `agora queue cancel JOB`, `agora queue force STUDY_KEY [--action A]`. The queue
 * lives in HOME/ledger.db (host/daemon/queue.h), the studies being received in
 * HOME/spool/spool.db (host/daemon/intake.h); these commands open their own connections, so
 * they work while `agora serve` runs.
 *
 * No UID is printed: a job shows the first 12 hex digits of the SHA-256 of its Study Instance
 * UID (the same hash names the study's results folder) and the first 12 of its unique key.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_util.h"
#include "commands.h"
#include "home.h"
#include "intake.h"
#include "json_emit.h"
#include "opt.h"
#include "queue.h"

#define LIST_DEFAULT 100

typedef struct opts {
    const char *home;
    const char *state;
    const char *limit;
    const char *action;
    int json;
} opts;

enum { LIST = 1u, SHOW = 2u, RETRY = 4u, CANCEL = 8u, FORCE = 16u };

#define LIST_ARGS                                                                                  \
    "[--state S[,S...]] [--limit N] [--json] [--home DIR]\n"                                       \
    "       agora queue show|retry|cancel JOB [--json] [--home DIR]\n"                             \
    "       agora queue force STUDY_KEY [--action proceed|discard|hold] [--json] [--home DIR]"
#define LIST_ABOUT                                                                                 \
    "First the studies still being received (HOME/spool/spool.db), oldest first: key\n"            \
    "(first 16 hex of the SHA-256 of the Study UID), state, series and instances,\n"               \
    "when it completes if nothing more arrives, when it is forced, and what it waits for.\n"       \
    "Then the clinic daemon's job queue (HOME/ledger.db), newest first: id, state,\n"              \
    "plugin@version, attempt n/max of the current phase (run, then send), when the\n"              \
    "next attempt is due, age, the study (first 12 hex of the SHA-256 of its UID),\n"              \
    "the job key (first 12 hex) and the last error class and message.\n"                           \
    "States: waiting, running, sending, done, retryable, failed, cancelled.\n\n"                   \
    "subcommands:\n"                                                                               \
    "  show JOB    one job in full (never its UIDs)\n"                                             \
    "  retry JOB   a failed, retryable or sending job: due now, attempts restart\n"                \
    "              (a job that failed while sending is sent again, not run again)\n"               \
    "  cancel JOB  a waiting, retryable, running or sending job: cancelled\n"                      \
    "  force KEY   a study still receiving (or held): complete now, or --action discard|hold"
static const agora__cli_cmd list_cmd = {"queue", LIST_ARGS, LIST_ABOUT, NULL, 0, 0, 0, LIST};
static const agora__cli_cmd show_cmd = {
    "queue show",
    "JOB [--json] [--home DIR]",
    "One job of the queue in full: state, attempts, lease, times, destination,\n"
    "rule, invocation id, error; the number of series and instances (never their UIDs).",
    NULL,
    0,
    1,
    1,
    SHOW};
static const agora__cli_cmd retry_cmd = {
    "queue retry",
    "JOB [--json] [--home DIR]",
    "Make a failed, retryable or (not currently delivering) sending job due now, its\n"
    "attempts restarted. A job that failed while sending is sent again with the same\n"
    "result objects; one that failed while running runs again under the same\n"
    "invocation id (the ledger does not bill it twice).",
    NULL,
    0,
    1,
    1,
    RETRY};
static const agora__cli_cmd cancel_cmd = {
    "queue cancel",
    "JOB [--json] [--home DIR]",
    "Cancel a waiting, retryable, running or sending job. A running job's worker stops\n"
    "at its next check and its run is not recorded in the ledger.",
    NULL,
    0,
    1,
    1,
    CANCEL};

static const agora__cli_cmd force_cmd = {
    "queue force",
    "STUDY_KEY [--action proceed|discard|hold] [--json] [--home DIR]",
    "Decide now for a study that is still being received (or is held), named by its key\n"
    "as `agora queue` lists it (at least 6 hex digits): proceed (default) makes it\n"
    "complete, and the daemon's next poll routes and enqueues it; discard drops it (never\n"
    "run; its files go with the spool's retention); hold keeps it until forced again.",
    NULL,
    0,
    1,
    1,
    FORCE};

static int parse(const agora__cli_cmd *desc, int argc, char **argv, opts *o, int *status)
{
    memset(o, 0, sizeof *o);
    const agora__cli_opt table[] = {
        {"--state", 0, AGORA__CLI_VALUE, &o->state, "S[,S...]",
         "only jobs in these states (comma-separated)", 0, NULL, 0, LIST},
        {"--limit", 0, AGORA__CLI_VALUE, &o->limit, "N", "at most N jobs, 1..10000 (default: 100)",
         0, NULL, 0, LIST},
        {"--action", 0, AGORA__CLI_VALUE, &o->action, "A",
         "proceed (default: complete now), discard or hold", 0, NULL, 0, FORCE},
        AGORA__CLI_OPT_JSON(&o->json, "print JSON"),
        AGORA__CLI_OPT_HOME(&o->home),
    };
    return agora__cli_parse_with(desc, table, AGORA__CLI_N(table), argc, argv, NULL, status);
}

/* The intake's handle on HOME/spool/spool.db, or *out NULL when the home has no spool yet (the
 * daemon never received anything: nothing is receiving, and listing creates nothing). */
static int open_intake(const char *cmd, const char *home, agora__intake **out)
{
    *out = NULL;
    char db[4096];
    agora__error err = {0};
    if (agora__home_path(home, AGORA__HOME_SPOOL, db, sizeof db - 16, &err) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, err.msg);
        return 1;
    }
    strcat(db, "/spool.db");
    struct stat st;
    if (stat(db, &st) != 0)
        return 0;
    if (agora__intake_open(home, NULL, out, &err) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, err.msg);
        return 1;
    }
    return 0;
}

static agora__queue *open_queue(const char *cmd, const opts *o)
{
    char home[4096];
    if (agora__cli_home(cmd, o->home, home, sizeof home) != 0)
        return NULL;
    agora__queue *q = NULL;
    agora__error err = {0};
    if (agora__queue_open(home, &q, &err) != 0) {
        fprintf(stderr, "agora %s: %s\n", cmd, err.msg);
        return NULL;
    }
    return q;
}

/* "2026-12-02T20:30:00Z" */
static void iso_time(uint64_t ms, char out[24])
{
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;
    if (ms == 0 || gmtime_r(&t, &tm) == NULL || strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 24, "-");
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "45s", "12m", "3h", "2d" */
static void age_text(uint64_t now, uint64_t then, char out[16])
{
    uint64_t s = now > then ? (now - then) / 1000u : 0;
    if (s < 120)
        snprintf(out, 16, "%" PRIu64 "s", s);
    else if (s < 7200)
        snprintf(out, 16, "%" PRIu64 "m", s / 60);
    else if (s < 172800)
        snprintf(out, 16, "%" PRIu64 "h", s / 3600);
    else
        snprintf(out, 16, "%" PRIu64 "d", s / 86400);
}

static const char *priority_name(int p)
{
    return p > 0 ? "urgent" : p < 0 ? "offpeak" : "normal";
}

/* Whether the job waits for a next attempt (due time meaningful). */
static int has_next(const agora__job *j)
{
    return j->state == AGORA__QJOB_WAITING || j->state == AGORA__QJOB_RETRYABLE ||
           (j->state == AGORA__QJOB_SENDING && j->lease_token[0] == '\0');
}

static json_t *job_json(const agora__job *j, uint64_t now)
{
    char next[24], leased[24], created[24], updated[24];
    iso_time(has_next(j) ? j->next_attempt_at : 0, next);
    iso_time(j->leased_until, leased);
    iso_time(j->created_ms, created);
    iso_time(j->updated_ms, updated);
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    const struct {
        const char *k, *v;
    } strs[] = {
        {"state", agora__job_state_name(j->state)},
        {"phase", j->send_phase ? "send" : "run"},
        {"plugin_id", j->plugin_id},
        {"plugin_version", j->plugin_version},
        {"study", j->study_hash},
        {"key", j->key},
        {"priority", priority_name(j->priority)},
        {"scope", j->scope},
        {"send_to", j->send_to},
        {"rule_id", j->rule_id},
        {"invocation_id", j->invocation_id},
        {"next_attempt_at", has_next(j) ? next : NULL},
        {"created_at", created},
        {"updated_at", updated},
        {"last_error_class", j->last_error_class},
        {"last_error", j->last_error},
        {"lease_owner", j->lease_token[0] ? j->lease_owner : NULL},
        {"leased_until", j->lease_token[0] ? leased : NULL},
    };
    const struct {
        const char *k;
        uint64_t v;
    } ints[] = {
        {"id", (uint64_t)j->id},
        {"attempt", j->attempts},
        {"max_attempts", j->max_attempts},
        {"run_attempts", j->run_attempts},
        {"n_series", j->n_series},
        {"n_sop", j->n_sop},
        {"age_s", now > j->created_ms ? (now - j->created_ms) / 1000u : 0},
        {"next_attempt_ms", has_next(j) ? j->next_attempt_at : 0},
        {"created_ms", j->created_ms},
        {"updated_ms", j->updated_ms},
    };
    int bad = 0;
    for (size_t i = 0; i < AGORA__CLI_N(strs); i++)
        bad |= json_object_set_new(o, strs[i].k,
                                   strs[i].v ? json_string(strs[i].v) : json_null()) != 0;
    for (size_t i = 0; i < AGORA__CLI_N(ints); i++)
        bad |= json_object_set_new(o, ints[i].k, json_integer((json_int_t)ints[i].v)) != 0;
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* "waiting,failed" -> a state mask; 2 after a usage error. */
static int parse_states(const char *cmd, const char *text, unsigned *mask)
{
    *mask = 0;
    if (text == NULL)
        return 0;
    char buf[128];
    if (strlen(text) >= sizeof buf || text[0] == '\0')
        return agora__cli_usage_error(cmd, "--state takes state names separated by commas");
    strcpy(buf, text);
    char *save = NULL;
    for (char *w = strtok_r(buf, ",", &save); w != NULL; w = strtok_r(NULL, ",", &save)) {
        agora__job_state s;
        if (agora__job_state_parse(w, &s) != 0)
            return agora__cli_usage_error(cmd,
                                          "unknown state '%.20s'; states: waiting, running, "
                                          "sending, done, retryable, failed, cancelled",
                                          w);
        *mask |= 1u << s;
    }
    if (*mask == 0)
        return agora__cli_usage_error(cmd, "--state takes state names separated by commas");
    return 0;
}

static int parse_limit(const char *cmd, const char *text, size_t *out)
{
    uint64_t v = LIST_DEFAULT;
    if (text != NULL && agora__cli_number(text, AGORA__QUEUE_MAX_LIST, &v) != 0)
        return agora__cli_usage_error(cmd, "--limit takes 1..%d, not '%.20s'",
                                      AGORA__QUEUE_MAX_LIST, text);
    *out = (size_t)v;
    return 0;
}

static int parse_job_id(const char *cmd, const char *text, int64_t *id)
{
    uint64_t v = 0;
    if (agora__cli_number(text, INT64_MAX, &v) != 0)
        return agora__cli_usage_error(cmd,
                                      "JOB is a job id (a positive number from agora queue), "
                                      "not '%.20s'",
                                      text);
    *id = (int64_t)v;
    return 0;
}

/* One line of the table; the error message is cut so a line stays readable. */
static void print_row(const agora__job *j, uint64_t now)
{
    char plugin[200], attempt[24], next[24], age[16], err[AGORA__QUEUE_ERROR_LEN + 80];
    snprintf(plugin, sizeof plugin, "%s@%s", j->plugin_id, j->plugin_version);
    snprintf(attempt, sizeof attempt, "%u/%u", j->attempts, j->max_attempts);
    iso_time(has_next(j) ? j->next_attempt_at : 0, next);
    age_text(now, j->created_ms, age);
    if (j->last_error_class[0] != '\0')
        snprintf(err, sizeof err, "%s: %.60s%s", j->last_error_class, j->last_error,
                 strlen(j->last_error) > 60 ? "..." : "");
    else
        snprintf(err, sizeof err, "-");
    printf("%-6" PRId64 " %-9s %-32s %-7s %-20s %-5s %-12.12s %-12.12s %s\n", j->id,
           agora__job_state_name(j->state), plugin, attempt, next, age, j->study_hash, j->key, err);
}

/* ---- studies still being received (the intake) ---- */

/* What a study listed by the intake waits for. */
static const char *waiting_for(const agora__intake_entry *e)
{
    switch (e->state) {
    case AGORA__INTAKE_RECEIVING:
        return "quiet timers (more instances may come)";
    case AGORA__INTAKE_COMPLETE:
        return "hand-over to the queue (next daemon poll)";
    case AGORA__INTAKE_HELD:
        return "operator: held (agora queue force KEY)";
    default:
        return "-";
    }
}

/* "1h02m", "42s": how long until t (0 when past). */
static void countdown(int64_t ms, char out[16])
{
    int64_t s = ms > 0 ? (ms + 999) / 1000 : 0;
    if (s >= 3600)
        snprintf(out, 16, "%" PRId64 "h%02" PRId64 "m", s / 3600, (s % 3600) / 60);
    else if (s >= 60)
        snprintf(out, 16, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else
        snprintf(out, 16, "%" PRId64 "s", s);
}

static json_t *study_json(const agora__intake_entry *e)
{
    char first[24], last[24], complete[24], force[24];
    iso_time(e->first_arrival_ms > 0 ? (uint64_t)e->first_arrival_ms : 0, first);
    iso_time(e->last_arrival_ms > 0 ? (uint64_t)e->last_arrival_ms : 0, last);
    iso_time(e->complete_at_ms > 0 ? (uint64_t)e->complete_at_ms : 0, complete);
    iso_time(e->force_at_ms > 0 ? (uint64_t)e->force_at_ms : 0, force);
    json_t *mods = json_array();
    char buf[sizeof e->modalities];
    snprintf(buf, sizeof buf, "%s", e->modalities);
    for (char *save = NULL, *t = strtok_r(buf, "\\", &save); mods && t;
         t = strtok_r(NULL, "\\", &save))
        json_array_append_new(mods, json_string(t));
    int receiving = e->state == AGORA__INTAKE_RECEIVING;
    return json_pack(
        "{s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:s?, s:s?, s:o?, s:o?, s:s}", "key", e->key, "state",
        agora__intake_state_name(e->state), "generation", (int)e->generation, "series",
        (int)e->n_series, "instances", (int)e->n_instances, "first_arrival", first, "last_arrival",
        last, "complete_at", receiving ? complete : NULL, "force_at", receiving ? force : NULL,
        "remaining_ms", receiving ? json_integer((json_int_t)e->remaining_ms) : NULL, "modalities",
        mods, "waiting_for", waiting_for(e));
}

static void print_studies(const agora__intake_entry *e, size_t n, int more)
{
    if (n == 0)
        return;
    printf("%zu stud%s still receiving or waiting:\n", n, n == 1 ? "y" : "ies");
    printf("%-16s %-9s %-6s %-9s %-12s %-20s %-10s %s\n", "STUDY KEY", "STATE", "SERIES",
           "INSTANCES", "COMPLETES IN", "FORCED AT", "MODALITY", "WAITING FOR");
    for (size_t i = 0; i < n; i++) {
        char in[16] = "-", force[24] = "-";
        if (e[i].state == AGORA__INTAKE_RECEIVING) {
            countdown(e[i].remaining_ms, in);
            iso_time(e[i].force_at_ms > 0 ? (uint64_t)e[i].force_at_ms : 0, force);
        }
        printf("%-16s %-9s %-6u %-9u %-12s %-20s %-10.10s %s\n", e[i].key,
               agora__intake_state_name(e[i].state), e[i].n_series, e[i].n_instances, in, force,
               e[i].modalities[0] ? e[i].modalities : "-", waiting_for(&e[i]));
    }
    if (more)
        printf("(%zu shown, oldest first)\n", n);
    printf("\n");
}

static int queue_list(int argc, char **argv)
{
    opts o;
    int rc;
    if (!parse(&list_cmd, argc, argv, &o, &rc))
        return rc;
    unsigned mask = 0;
    size_t limit = 0;
    if (parse_states(list_cmd.name, o.state, &mask) != 0 ||
        parse_limit(list_cmd.name, o.limit, &limit) != 0)
        return 2;
    agora__queue *q = open_queue(list_cmd.name, &o);
    if (q == NULL)
        return 1;
    char home[4096];
    agora__intake *in = NULL;
    if (agora__cli_home(list_cmd.name, o.home, home, sizeof home) != 0 ||
        open_intake(list_cmd.name, home, &in) != 0) {
        agora__queue_close(q);
        return 1;
    }
    agora__error err = {0};
    agora__job *jobs = NULL;
    agora__intake_entry *studies = NULL;
    size_t n = 0, n_studies = 0;
    int more_studies = 0;
    uint64_t counts[AGORA__QJOB_STATE_COUNT];
    uint64_t now = wall_ms(), total = 0;
    rc = in == NULL ? 0
                    : agora__intake_list(in, (int64_t)now, 0, LIST_DEFAULT, &studies, &n_studies,
                                         &more_studies, &err);
    agora__intake_close(in);
    if (rc == 0)
        rc = agora__queue_counts(q, counts, &err);
    if (rc == 0)
        rc = agora__queue_list(q, mask, limit, &jobs, &n, &err);
    agora__queue_close(q);
    if (rc != 0) {
        free(studies);
        return agora__fail(list_cmd.name, &err);
    }
    for (unsigned i = 0; i < AGORA__QJOB_STATE_COUNT; i++)
        total += counts[i];
    if (o.json) {
        json_t *doc = json_pack("{s:[],s:b,s:[],s:{},s:I}", "studies", "studies_more", more_studies,
                                "jobs", "counts", "total", (json_int_t)total);
        for (size_t i = 0; doc != NULL && i < n_studies; i++)
            if (json_array_append_new(json_object_get(doc, "studies"), study_json(&studies[i])) !=
                0) {
                json_decref(doc);
                doc = NULL;
            }
        free(studies);
        for (size_t i = 0; doc != NULL && i < n; i++)
            if (json_array_append_new(json_object_get(doc, "jobs"), job_json(&jobs[i], now)) != 0) {
                json_decref(doc);
                doc = NULL;
            }
        for (unsigned i = 0; doc != NULL && i < AGORA__QJOB_STATE_COUNT; i++)
            json_object_set_new(json_object_get(doc, "counts"),
                                agora__job_state_name((agora__job_state)i),
                                json_integer((json_int_t)counts[i]));
        agora__job_list_free(jobs, n);
        return agora__json_emit_new(stdout, doc, AGORA__JSON_DOC);
    }
    print_studies(studies, n_studies, more_studies);
    free(studies);
    printf("%" PRIu64 " job%s:", total, total == 1 ? "" : "s");
    int any = 0;
    for (unsigned i = 0; i < AGORA__QJOB_STATE_COUNT; i++)
        if (counts[i] != 0) {
            printf("%s %" PRIu64 " %s", any ? "," : "", counts[i],
                   agora__job_state_name((agora__job_state)i));
            any = 1;
        }
    printf("%s\n", any ? "" : " the queue is empty");
    if (n > 0) {
        printf("%-6s %-9s %-32s %-7s %-20s %-5s %-12s %-12s %s\n", "ID", "STATE", "PLUGIN",
               "ATTEMPT", "NEXT ATTEMPT", "AGE", "STUDY", "KEY", "LAST ERROR");
        for (size_t i = 0; i < n; i++)
            print_row(&jobs[i], now);
    }
    if (total > n && (mask == 0 || n == limit))
        printf("(%zu shown; --limit N or --state S for more)\n", n);
    agora__job_list_free(jobs, n);
    return 0;
}

static int queue_show(int argc, char **argv)
{
    opts o;
    int rc;
    if (!parse(&show_cmd, argc, argv, &o, &rc))
        return rc;
    int64_t id = 0;
    if (parse_job_id(show_cmd.name, argv[1], &id) != 0)
        return 2;
    agora__queue *q = open_queue(show_cmd.name, &o);
    if (q == NULL)
        return 1;
    agora__error err = {0};
    agora__job *j = NULL;
    rc = agora__queue_get(q, id, 0, &j, &err);
    agora__queue_close(q);
    if (rc != 0)
        return agora__fail(show_cmd.name, &err);
    uint64_t now = wall_ms();
    if (o.json) {
        rc = agora__json_emit_new(stdout, job_json(j, now), AGORA__JSON_DOC);
        agora__job_free(j);
        return rc;
    }
    char next[24], created[24], updated[24], leased[24], age[16];
    iso_time(has_next(j) ? j->next_attempt_at : 0, next);
    iso_time(j->created_ms, created);
    iso_time(j->updated_ms, updated);
    iso_time(j->leased_until, leased);
    age_text(now, j->created_ms, age);
    printf("job %" PRId64 ": %s (%s phase)\n", j->id, agora__job_state_name(j->state),
           j->send_phase ? "send" : "run");
    printf("  plugin         %s@%s\n", j->plugin_id, j->plugin_version);
    printf("  study          %s (SHA-256 of the Study Instance UID, first 12 hex)\n",
           j->study_hash);
    printf("  key            %s\n", j->key);
    printf("  scope          %s, %zu series, %zu instances\n", j->scope, j->n_series, j->n_sop);
    printf("  priority       %s\n", priority_name(j->priority));
    printf("  rule           %s\n", j->rule_id[0] ? j->rule_id : "(default)");
    printf("  send to        %s\n", j->send_to[0] ? j->send_to : "(none)");
    printf("  invocation     %s\n", j->invocation_id);
    printf("  attempt        %u/%u (runs: %u)\n", j->attempts, j->max_attempts, j->run_attempts);
    printf("  next attempt   %s\n", next);
    if (j->lease_token[0] != '\0')
        printf("  leased by      %s until %s\n", j->lease_owner, leased);
    printf("  created        %s (%s ago)\n", created, age);
    printf("  updated        %s\n", updated);
    if (j->last_error_class[0] != '\0')
        printf("  last error     %s: %s\n", j->last_error_class, j->last_error);
    agora__job_free(j);
    return 0;
}

/* retry and cancel: the action, then the job as it is now. */
static int queue_act(const agora__cli_cmd *cmd, int argc, char **argv,
                     int (*act)(agora__queue *, int64_t, agora__error *), const char *done)
{
    opts o;
    int rc;
    if (!parse(cmd, argc, argv, &o, &rc))
        return rc;
    int64_t id = 0;
    if (parse_job_id(cmd->name, argv[1], &id) != 0)
        return 2;
    agora__queue *q = open_queue(cmd->name, &o);
    if (q == NULL)
        return 1;
    agora__error err = {0};
    agora__job *j = NULL;
    rc = act(q, id, &err);
    if (rc == 0)
        rc = agora__queue_get(q, id, 0, &j, &err);
    agora__queue_close(q);
    if (rc != 0)
        return agora__fail(cmd->name, &err);
    if (o.json) {
        rc = agora__json_emit_new(stdout, job_json(j, wall_ms()), AGORA__JSON_DOC);
    } else {
        char next[24];
        iso_time(has_next(j) ? j->next_attempt_at : 0, next);
        printf("job %" PRId64 " %s: now %s", j->id, done, agora__job_state_name(j->state));
        if (has_next(j))
            printf(", next attempt %s", next);
        printf("\n");
    }
    agora__job_free(j);
    return rc;
}

static int queue_retry(int argc, char **argv)
{
    return queue_act(&retry_cmd, argc, argv, agora__queue_retry, "retried");
}

static int queue_cancel(int argc, char **argv)
{
    return queue_act(&cancel_cmd, argc, argv, agora__queue_cancel, "cancelled");
}

/* force: the operator decides for a study still being received (or held). */
static int queue_force(int argc, char **argv)
{
    opts o;
    int rc;
    if (!parse(&force_cmd, argc, argv, &o, &rc))
        return rc;
    agora__intake_action action = AGORA__INTAKE_PROCEED;
    if (o.action != NULL && agora__intake_action_parse(o.action, &action) != 0)
        return agora__cli_usage_error(
            force_cmd.name, "--action is proceed, discard or hold (not '%.40s')", o.action);
    char home[4096];
    agora__intake *in = NULL;
    if (agora__cli_home(force_cmd.name, o.home, home, sizeof home) != 0 ||
        open_intake(force_cmd.name, home, &in) != 0)
        return 1;
    if (in == NULL) {
        fprintf(stderr,
                "agora %s: this home has no receive spool yet (agora serve never received a "
                "study): nothing to force\n",
                force_cmd.name);
        return 1;
    }
    agora__error err = {0};
    rc = agora__intake_force_action(in, argv[1], action, (int64_t)wall_ms(), &err);
    agora__intake_close(in);
    if (rc != 0)
        return agora__fail(force_cmd.name, &err);
    static const char *const what[3] = {"complete: the daemon's next poll routes and enqueues it",
                                        "discarded: it will not run",
                                        "held: it waits until forced again"};
    if (o.json)
        return agora__json_emit_new(stdout,
                                    json_pack("{s:s, s:s, s:s}", "key", argv[1], "action",
                                              agora__intake_action_name(action), "state",
                                              action == AGORA__INTAKE_PROCEED   ? "complete"
                                              : action == AGORA__INTAKE_DISCARD ? "discarded"
                                                                                : "held"),
                                    AGORA__JSON_DOC);
    printf("study %s %s\n", argv[1], what[action]);
    return 0;
}

int agora__cmd_queue(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"show", queue_show, NULL},
        {"retry", queue_retry, NULL},
        {"cancel", queue_cancel, NULL},
        {"force", queue_force, NULL},
    };
    /* The first word that is neither an option nor an option's value names a subcommand, so
     * `agora queue --home H retry 12` works as `agora queue retry 12 --home H` does; without
     * one, the queue is listed. */
    for (int i = 1; i < argc; i++) {
        const char *w = argv[i];
        if (strcmp(w, "--") == 0)
            break;
        if (w[0] == '-') {
            if (strcmp(w, "--home") == 0 || strcmp(w, "--state") == 0 ||
                strcmp(w, "--limit") == 0 || strcmp(w, "--action") == 0)
                i++;
            continue;
        }
        for (size_t k = 0; k < AGORA__CLI_N(subs); k++) {
            if (strcmp(w, subs[k].name) != 0)
                continue;
            /* argv for the subcommand: its word first, then the others in order. */
            char **sub_argv = calloc((size_t)argc, sizeof *sub_argv);
            if (sub_argv == NULL) {
                fprintf(stderr, "agora queue: out of memory\n");
                return 1;
            }
            int n = 0;
            sub_argv[n++] = argv[i];
            for (int m = 1; m < argc; m++)
                if (m != i)
                    sub_argv[n++] = argv[m];
            int rc = subs[k].run(n, sub_argv);
            free(sub_argv);
            return rc;
        }
        return agora__cli_usage_error(
            "queue", "unknown subcommand '%.40s'; use show, retry, cancel or force", w);
    }
    return queue_list(argc, argv);
}
