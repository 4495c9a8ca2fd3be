/*
 * The receive spool: where `agora serve` makes an instance durable before it says so.
 *
 * Layout under the clinic home (AGORA__HOME_SPOOL, "spool/"):
 *   spool.db            SQLite (WAL, synchronous=FULL): table spool_instance, one row per
 *                       SOP instance (the row is the commit point of a receipt)
 *   in/HH/<SHA>.dcm     the instance: a Part 10 file meta group this module writes from the
 *                       C-STORE command and context (SOP class, SOP instance, transfer syntax,
 *                       calling AE), then the data set exactly as received. SHA is the hex
 *                       SHA-256 of the SOP Instance UID, HH its first two digits (no UID in a
 *                       path, bounded directory sizes).
 *   tmp/                files being received (renamed into in/ when complete)
 *
 * Order of a receipt: data set bytes to tmp/ → fsync → rename into in/HH/ → fsync of in/HH/
 * (and of in/ when HH was new) → INSERT of the row (committed, synchronous=FULL) → only then
 * success. A crash before the commit leaves at most an unreferenced file, never a row without
 * its file; nothing is deleted at start (orphans are counted and logged).
 *
 * The data set is never parsed here: study and series grouping is left NULL in the row for the
 * sandboxed ingest to fill later. The SQL uses plain types (VARCHAR, BIGINT, CHAR) and
 * INSERT ... ON CONFLICT DO NOTHING, which PostgreSQL reads unchanged.
 *
 * One thread: the spool is used from the loop thread only.
 */
#ifndef AGORA_DIMSE_SPOOL_H
#define AGORA_DIMSE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;

typedef struct agora__spool agora__spool;
typedef struct agora__spool_txn agora__spool_txn;

typedef struct agora__spool_instance {
    const char *sop_class, *sop_instance, *transfer_syntax;
    const char *calling_ae, *called_ae;
} agora__spool_instance;

/* Open (create) the spool of a clinic home. max_instance_bytes bounds one data set. */
int agora__spool_open(const char *home, uint64_t max_instance_bytes, agora__spool **out,
                      struct agora__error *err);
void agora__spool_close(agora__spool *sp);

/* Bytes of the instances recorded (the watermark compares against this), their count, and the
 * files in in/ without a row found at open. */
uint64_t agora__spool_bytes(const agora__spool *sp);
uint64_t agora__spool_count(const agora__spool *sp);
uint64_t agora__spool_orphans(const agora__spool *sp);

/* 1 when the SOP instance is recorded already, 0 when not, <0 on a database error. */
int agora__spool_has(agora__spool *sp, const char *sop_instance, struct agora__error *err);

/* Start receiving an instance: a temporary file with its meta group written. */
int agora__spool_begin(agora__spool *sp, const agora__spool_instance *inst, agora__spool_txn **out,
                       struct agora__error *err);
/* Append data set bytes. AGORA_ELIMIT past max_instance_bytes. */
int agora__spool_write(agora__spool_txn *t, const void *p, size_t n, struct agora__error *err);
/* Make it durable and record it (see the order above). *duplicate is set when the instance
 * was recorded meanwhile (the new copy is dropped). Frees t whatever the outcome. */
int agora__spool_commit(agora__spool_txn *t, int *duplicate, struct agora__error *err);
/* Drop an unfinished receipt (its temporary file is removed). Frees t. */
void agora__spool_abandon(agora__spool_txn *t);

#endif
