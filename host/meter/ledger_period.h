/*
 * Period exports of the ledger (private to the meter module and its tests; the format is in
 * docs/results-and-billing.md, section 6.1).
 *
 * An export file is, byte for byte:
 *   line 1: "agora-signature v1 ed25519 <clinic key id> <128 hex>\n" (AGORA__EXPORT_SIG_LINE
 *           bytes: always this length), made with the clinic key (host/trust, HOME/clinic.key);
 *   rest:   the body, which the signature covers exactly and which is read only after it
 *           verified: a header line (a JSON object, AGORA__EXPORT_FORMAT), then one line per
 *           row of the segment (a JSON object, the `agora ledger export` row form).
 * One row per line lets both sides work a row at a time: memory is the file, not a JSON tree.
 */
#ifndef AGORA_METER_LEDGER_PERIOD_H
#define AGORA_METER_LEDGER_PERIOD_H

#include "ledger.h"

#define AGORA__EXPORT_FORMAT   "agora.ledger-export/1"
#define AGORA__EXPORT_SIG_LINE 173 /* strlen("agora-signature v1 ed25519 ") + 16 + 1 + 128 + 1 */
#define AGORA__EXPORT_MAX_ROWS 1000000
#define AGORA__EXPORT_LINE_MAX ((size_t)16 * 1024)          /* one row or the header */
#define AGORA__EXPORT_MAX      ((size_t)1024 * 1024 * 1024) /* file bytes */
#define AGORA__EXPORT_FILES    256                          /* --from files per statement */

/* What an export's header says (and, once checked, what its rows prove). */
typedef struct agora__export_info {
    char period[8];
    char clinic_key_id[17];
    int64_t first_seq, last_seq; /* the period's first row .. the chain head; 0, 0 if empty */
    int64_t rows_in_period;      /* rows of the segment that are of the period */
    size_t n_rows;               /* rows in the segment */
    char prev_hash[65];          /* link to the rows before first_seq */
    char head[65];               /* hash of row last_seq */
} agora__export_info;

/* Make period's export in a malloc'ed buffer (*out, *out_len bytes): the first
 * AGORA__EXPORT_SIG_LINE bytes are blank, for the caller to overwrite with the signature line
 * over the rest (the body). key_id names the signing clinic key in the header. Verifies the
 * whole chain first and refuses a broken one. summary (may be NULL) gets the header. */
int agora__ledger_period_export(agora__ledger *l, const char *period, const char *key_id,
                                char **out, size_t *out_len, agora__export_info *summary,
                                agora__error *err);

/* One verified row of an export, the fields a statement needs (borrowed during the call). */
typedef struct agora__export_row {
    int64_t seq;
    const char *kind, *invocation_id, *period, *plugin_id, *plugin_version, *vendor, *model,
        *currency, *hash;
    int64_t price_minor, vendor_share_bps, units, amount_minor;
} agora__export_row;
/* Called for each row in order once it verified; non-zero (with err set) stops the check. */
typedef int (*agora__export_row_fn)(const agora__export_row *row, void *ctx, agora__error *err);

/* Check a body (after its signature verified): the header, period == `period`, every row's
 * hash recomputed, every link, contiguous seq, amounts, the head, nothing after the rows. The
 * message names the cause: "wrong period", "broken chain", "edited row". fn may be NULL. */
int agora__ledger_export_check(const uint8_t *body, size_t len, const char *period,
                               agora__export_info *info, agora__export_row_fn fn, void *ctx,
                               agora__error *err);

#endif
