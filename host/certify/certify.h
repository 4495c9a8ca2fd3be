/*
 * Certification that runs the app (issue 16): `agora certify --check` runs a bundle in the real
 * sandbox, through the run pipeline, over a reference set (synthetic studies of each modality
 * the manifest accepts, plus the operator's own folder), checks what it did and produces a
 * certification report: a canonical JSON document (schemas/certification-report.schema.json)
 * that the operator signs and the catalog entry pins by sha256. A library: it never prints.
 *
 * Checks, by the names the report uses (docs/operator-guide.md, "Certification reports"):
 *   outcome      every job on an accepted input ended ok with a kept result
 *   time         no job ran longer than resources.time_s
 *   memory       no job's peak RSS exceeded resources.memory_mb (even when the cap let it finish)
 *   schema       every result passes agora__results_validate (worker form)
 *   outputs      results hold only the kinds the manifest's "outputs" declares
 *   determinism  the same input twice gives the same result document (job_id, metrics ignored)
 *   refusal      the host dispatches no refused input; the plugin answers refused and borderline
 *                inputs with a result or an error status, never a crash
 *   policy       no job made a system call the sandbox forbids
 *
 * Ownership: the report is a new jansson reference owned by the caller; everything in opts is
 * borrowed for the call.
 */
#ifndef AGORA_CERTIFY_H
#define AGORA_CERTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common.h"
#include "trust.h"

#define AGORA__CERT_REPORT_MAX                                                                     \
    ((size_t)AGORA__CERT_REPORT_PIN_MAX) /* bytes of a serialized report */

typedef struct agora__certcheck_opts {
    const char *bundle_path;
    const char *reference_dir; /* the operator's own DICOM folder, or NULL */
    const char *work_dir;      /* where the synthetic studies are written (a fresh directory is
                                  made inside and removed after); NULL: $TMPDIR or /tmp */
    const char *host_version;  /* the agora version text the report names */
    int allow_weak_isolation;  /* as dev run's flag; the report says so */
} agora__certcheck_opts;

/* Run the check. 0 with *report set (whether the app passed or not: *passed says), or a negative
 * code with err set when the check itself could not run (unreadable bundle, no sandbox). */
int agora__certcheck_run(const agora__certcheck_opts *opts, json_t **report, int *passed,
                         agora__error *err);

/* The names of the checks that failed in report, as "memory, determinism" (always
 * terminated; "" when none). */
void agora__cert_report_failed(const json_t *report, char *buf, size_t size);

/* Canonical bytes of a report: sorted keys, 2-space indent, final LF. *out is malloc'ed. */
int agora__cert_report_serialize(const json_t *report, char **out, size_t *len, agora__error *err);

/* Write the canonical bytes (from agora__cert_report_serialize) to path atomically and, with key
 * (may be NULL: unsigned), their detached signature to path.sig: one agora-signature line, as
 * catalog.sig. */
int agora__cert_report_write(const char *path, const char *bytes, size_t len,
                             const agora__seckey *key, agora__error *err);

#endif
