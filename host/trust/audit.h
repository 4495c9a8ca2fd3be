/*
 * The audit trail (issue 16): an append-only, hash-chained log of trust-relevant actions, one
 * JSON line per action:
 *   {"action":"install","actor":"clinic","hash":H,"object":"com.example.x@1.0","prev":P,
 *    "seq":N,"time":"2026-12-02T21:00:00Z"}
 * hash = hex BLAKE2b-256 of the same object without "hash", as canonical JSON (sorted keys,
 * compact, ASCII); prev = the previous line's hash (64 zeros for the first). An edit, a removed
 * or a reordered line breaks the chain at that line.
 *
 * Where: the clinic's log is HOME/audit.log (common/home.h, AGORA__HOME_AUDIT: install, remove,
 * sync, dataset export); the operator's is CATALOG_DIR/audit.log (certify, revoke, key
 * rotation). Objects are ids (plugin ids, versions, key ids, hashes), never PHI: a study UID is
 * logged as its sha256.
 *
 * Concurrency: an append takes an exclusive flock on the log for read-last-line, write, fsync,
 * so appends of several processes never fork the chain.
 */
#ifndef AGORA_TRUST_AUDIT_H
#define AGORA_TRUST_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define AGORA__AUDIT_FILE      "audit.log"
#define AGORA__AUDIT_FIELD_MAX 256  /* action, actor, object: 1..256 printable ASCII */
#define AGORA__AUDIT_LINE_MAX  2048 /* a longer line is damage */

/* Append one entry to the log at path (created 0600 when missing). action, actor, object:
 * 1..AGORA__AUDIT_FIELD_MAX printable ASCII (no control characters). *seq_out (may be NULL) gets
 * the entry's number (1 for the first). Refuses to append to a log whose last line is damaged. */
int agora__audit_append(const char *path, const char *action, const char *actor, const char *object,
                        uint64_t *seq_out, agora__error *err);

/* Walk the whole log. 0 when intact (*entries gets the count; a missing log is intact and
 * empty); else AGORA_EINVAL with *bad_line = the first broken line (1-based) and err naming it
 * and what is wrong. */
int agora__audit_verify(const char *path, uint64_t *entries, uint64_t *bad_line, agora__error *err);

/* The operator's log: CATALOG_DIR/audit.log. */
int agora__audit_path(const char *catalog_dir, char *out, size_t size, agora__error *err);
/* Append to the clinic home's log (HOME/audit.log) or to the operator's (catalog_dir). */
int agora__audit_home(const char *home, const char *action, const char *actor, const char *object,
                      agora__error *err);
int agora__audit_operator(const char *catalog_dir, const char *action, const char *actor,
                          const char *object, agora__error *err);

#endif
