/*
 * The metering ledger: one append-only SQLite table in HOME/ledger.db (WAL, synchronous=FULL).
 *
 * Life of an invocation, as the caller (`agora run`) drives it:
 *   1. agora__ledger_mint() gives an invocation id BEFORE dispatch; the caller persists it with
 *      the job (the id is what makes a retry idempotent).
 *   2. the job runs; its result is validated and stored (host/results).
 *   3. agora__ledger_record() (or _record_batch() for group commit) appends ONE row for the
 *      invocation with the pricing copied from the signed catalog entry in force at dispatch.
 *      Recording the same id again is a no-op (insert-or-ignore), so retries never double-charge.
 * Rows are never updated: a correction is a new row of kind "correction". Each row stores the
 * BLAKE2b-256 of its predecessor's hash and its own canonical bytes, so an edit anywhere breaks the
 * chain at that row (agora__ledger_verify names it).
 *
 * Billing: a row is billable only when the invocation produced a validated result. Each
 * billable row names its billing units (real Study / Series / SOP Instance UIDs, depending on
 * the pricing model); the ledger turns each into a billing key = keyed BLAKE2b(the clinic's
 * billing key AGORA__KEY_BILLING (common/home.h), plugin id, model, unit, period YYYY-MM) and
 * charges only keys not charged before, so a re-run of the same study in the same period is
 * billed once. Real UIDs are never stored.
 *
 * Money is int64 minor units of an ISO 4217 currency. Statement rounding (the one rule):
 * per statement line, vendor share = floor(gross * bps / 10000), platform share = gross - vendor.
 *
 * Thread-safety: an agora__ledger handle is used by one thread at a time. Several processes
 * may share one ledger.db (SQLite serialises writers; each append is one IMMEDIATE transaction).
 */
#ifndef AGORA_METER_LEDGER_H
#define AGORA_METER_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common.h"

struct sqlite3;

#define AGORA__LEDGER_ID_LEN    32     /* invocation id: 32 lowercase hex digits (UUIDv7 layout) */
#define AGORA__LEDGER_MAX_UNITS 100000 /* billing units per invocation (instances of a study) */
#define AGORA__LEDGER_MAX_BATCH 4096   /* invocations per group commit */
#define AGORA__LEDGER_MAX_PRICE 1000000000000LL /* 10^12 minor units per unit */

typedef enum agora__ledger_model {
    AGORA__MODEL_FREE = 0,     /* "free": never charged; units still counted for usage */
    AGORA__MODEL_PER_STUDY,    /* "per-study": price per Study UID per period */
    AGORA__MODEL_PER_SERIES,   /* "per-series": price per Series UID per period */
    AGORA__MODEL_PER_INSTANCE, /* "per-instance": price per SOP Instance UID per period */
    AGORA__MODEL_SUBSCRIPTION, /* "subscription": flat price per plugin per period, charged
                                  by the period's first billable invocation */
} agora__ledger_model;

/* "free", "per-study", "per-series", "per-instance", "subscription" <-> enum. parse: 0 or -1. */
int agora__ledger_model_parse(const char *name, agora__ledger_model *out);
const char *agora__ledger_model_name(agora__ledger_model m);

/* Pricing of one certified build, copied by the caller from the signed catalog entry in force
 * at dispatch (never from the plugin). Strings are borrowed for the duration of the call. */
typedef struct agora__ledger_pricing {
    const char *plugin_id;      /* 1..128 chars [A-Za-z0-9._-] */
    const char *plugin_version; /* 1..64 chars [A-Za-z0-9._+-] */
    const char *vendor;         /* 1..128 printable ASCII */
    uint64_t catalog_version;   /* version of the signed catalog the entry came from */
    agora__ledger_model model;
    int64_t price_minor;       /* per unit, or per period for subscription; 0..MAX_PRICE */
    char currency[4];          /* ISO 4217, three upper-case letters */
    uint32_t vendor_share_bps; /* vendor's share in basis points, 0..10000 */
} agora__ledger_pricing;

/* The outcome of one invocation, as recorded. Borrowed for the duration of the call. */
typedef struct agora__ledger_outcome {
    const char *invocation_id; /* from agora__ledger_mint */
    const char *status;        /* "ok" or the failure classification (e.g. "timeout") */
    int validated;             /* non-zero only when a validated result was stored */
    const char *const *units;  /* billing units for the model (real UIDs); hashed, not stored */
    size_t n_units;            /* ignored for subscription; 0..MAX_UNITS */
    uint64_t wall_ms, cpu_us, peak_rss_kb;
    const agora__ledger_pricing *pricing;
} agora__ledger_outcome;

/* What recording did. */
typedef struct agora__ledger_receipt {
    int64_t seq;          /* the invocation's row (new or already there) */
    int duplicate;        /* 1 when the id was already recorded: nothing was appended */
    int64_t units;        /* units newly charged by this row */
    int64_t amount_minor; /* money charged by this row */
} agora__ledger_receipt;

typedef struct agora__ledger agora__ledger;

/* Open (creating if needed) HOME/ledger.db. secret: the 32-byte billing key, AGORA__KEY_BILLING
 * (copied; needed only to record; NULL for read-only uses such as reports and verify). The caller closes. */
int agora__ledger_open(const char *home, const uint8_t *secret /* 32 or NULL */,
                       agora__ledger **out, agora__error *err);
/* Same with an explicit database path (tests, benchmarks). */
int agora__ledger_open_path(const char *db_path, const uint8_t *secret, agora__ledger **out,
                            agora__error *err);
void agora__ledger_close(agora__ledger *l);

/* Mint an invocation id (UUIDv7 layout: 48-bit Unix ms, version 7, 74 random bits) as 32
 * lowercase hex digits + NUL. The period billed is the UTC month of the mint time. */
int agora__ledger_mint(char id[AGORA__LEDGER_ID_LEN + 1], agora__error *err);
/* Same at a given Unix time in ms (tests and benchmarks that fill past months). */
int agora__ledger_mint_at(uint64_t unix_ms, char id[AGORA__LEDGER_ID_LEN + 1], agora__error *err);
/* "YYYY-MM" (UTC) of an id's mint time; period must hold 8 bytes. 0 or error. */
int agora__ledger_id_period(const char *id, char period[8], agora__error *err);

/* Append one invocation's row (one durable transaction). */
int agora__ledger_record(agora__ledger *l, const agora__ledger_outcome *o,
                         agora__ledger_receipt *receipt /* may be NULL */, agora__error *err);
/* Group commit: append up to AGORA__LEDGER_MAX_BATCH rows in ONE durable transaction (all or
 * nothing). receipts: NULL or n entries. */
int agora__ledger_record_batch(agora__ledger *l, const agora__ledger_outcome *o, size_t n,
                               agora__ledger_receipt *receipts, agora__error *err);

/* Append one invocation's row and run in_txn(arg, db, err) inside the same IMMEDIATE
 * transaction, after the row is inserted (or found recorded already: a retried job's id) and
 * before the one COMMIT: a non-zero return rolls back both the row and whatever in_txn wrote,
 * and is returned (err as in_txn set it). db is the ledger's own connection, borrowed for the
 * call; in_txn must not commit, roll back or close it. The clinic daemon settles its job this
 * way (daemon/queue.h, agora__queue_settle_in_txn), so the billing row and the job's state
 * change are one commit: a crash leaves both or neither. */
int agora__ledger_record_with(agora__ledger *l, const agora__ledger_outcome *o,
                              int (*in_txn)(void *arg, struct sqlite3 *db, agora__error *err),
                              void *arg, agora__ledger_receipt *receipt, agora__error *err);

/* Append a correction of a recorded invocation: amount_minor is the signed change of money
 * (e.g. minus the original amount for a refund); it counts in the period it is recorded in.
 * reason: 1..200 printable ASCII, no PHI. */
int agora__ledger_correct(agora__ledger *l, const char *invocation_id, int64_t amount_minor,
                          const char *reason, int64_t *seq_out, agora__error *err);

/* Walk the whole chain. Returns 0 when intact; otherwise AGORA_EINTERNAL with *bad_seq = first
 * bad row and err naming it and what is wrong. rows_out (may be NULL): rows checked. */
int agora__ledger_verify(agora__ledger *l, int64_t *bad_seq, int64_t *rows_out, agora__error *err);

/* Call fn for each row with seq > since_seq, in order, as a JSON object (borrowed during the
 * call). fn returns 0 to continue, non-zero to stop (returned as is). */
typedef int (*agora__ledger_row_fn)(const json_t *row, void *ctx);
int agora__ledger_export(agora__ledger *l, int64_t since_seq, agora__ledger_row_fn fn, void *ctx,
                         agora__error *err);
/* seq of a recorded invocation id (kind "invocation"); AGORA_EINVAL if unknown. */
int agora__ledger_seq_of(agora__ledger *l, const char *invocation_id, int64_t *seq,
                         agora__error *err);

/* Reports for a period "YYYY-MM" as new JSON objects (caller decrefs); layouts in
 * docs/results-and-billing.md. */
int agora__ledger_usage(agora__ledger *l, const char *period, json_t **out, agora__error *err);
int agora__ledger_statement(agora__ledger *l, const char *period, json_t **out, agora__error *err);

/* "YYYY-MM" syntax with month 01..12. */
int agora__ledger_period_valid(const char *period);
/* The current UTC month as "YYYY-MM". */
void agora__ledger_period_now(char period[8]);

#endif
