/*
 * Period exports of the ledger and the operator's statement across clinics (private to the
 * meter module and its tests; formats in docs/results-and-billing.md).
 *
 * An export file is two parts, signed by the clinic key (host/trust, HOME/clinic.key):
 *   line 1: "agora-signature v1 ed25519 <clinic key id> <128 hex>\n"
 *   rest:   the body, a JSON object (AGORA__EXPORT_FORMAT); the signature covers these exact
 *           bytes and is checked before the body is parsed.
 */
#ifndef AGORA_METER_LEDGER_PERIOD_H
#define AGORA_METER_LEDGER_PERIOD_H

#include "ledger.h"

#define AGORA__EXPORT_FORMAT   "agora.ledger-export/1"
#define AGORA__EXPORT_MAX_ROWS 1000000
#define AGORA__EXPORT_MAX      ((size_t)1024 * 1024 * 1024) /* file bytes */
#define AGORA__EXPORT_FILES    256                          /* --from files per statement */

/* The body of period's export (without the clinic key fields, which the signer adds): rows
 * first_seq (the period's first row) .. last_seq (the chain head now), prev_hash, head,
 * ledger_head. Verifies the whole chain first. *out is a new object (caller decrefs). */
int agora__ledger_period_export(agora__ledger *l, const char *period, json_t **out,
                                agora__error *err);

/* What a checked export holds. Pointers borrow from the checked document. */
typedef struct agora__export_info {
    const char *period;
    int64_t first_seq, last_seq; /* 0, 0 when the period had no rows; last_seq: chain head */
    const char *prev_hash;       /* link to the rows before first_seq */
    const char *head;            /* hash of row last_seq */
    const json_t *rows;          /* NULL when empty */
} agora__export_info;

/* Check a parsed body: format, period == `period`, every row's hash recomputed, every link,
 * contiguous seq, amounts, head. The message names the cause: "wrong period", "broken chain",
 * "edited row". */
int agora__ledger_export_check(const json_t *doc, const char *period, agora__export_info *info,
                               agora__error *err);

/* Row i of a checked export, the fields a statement needs (strings borrow from the doc). */
typedef struct agora__export_row {
    int64_t seq;
    const char *kind, *invocation_id, *period, *plugin_id, *plugin_version, *vendor, *model,
        *currency, *hash;
    int64_t price_minor, vendor_share_bps, units, amount_minor;
} agora__export_row;
int agora__ledger_export_row(const agora__export_info *info, size_t i, agora__export_row *out);

#endif
