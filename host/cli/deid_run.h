/* The de-identification run shared by `agora deid` and `agora dataset export` (cmd_deid.c):
 * collect the inputs, load the clinic key, de-identify every file in the sandboxed ingest worker
 * and write <pseudonymous SOP Instance UID>.dcm into the output directory. CLI layer: per-file
 * messages go to stderr (never a value, only the path and the reason). */
#ifndef AGORA_CLI_DEID_RUN_H
#define AGORA_CLI_DEID_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

#define AGORA__DEID_MAX_STUDIES 1000 /* --study values of one run */

/* What to do. Everything is borrowed for the duration of the call. */
typedef struct agora__deid_request {
    const char *const *inputs; /* files or directories (searched recursively) */
    size_t n_inputs;
    const char *outdir;      /* created when missing */
    const char *secret_path; /* NULL: the clinic home's secret (created on first use) */
    const char *const *keep; /* PS3.15 option names (host/common/ps315.c) */
    size_t n_keep;
    /* Only instances one of whose UIDs (its Study Instance UID, or a UID it references) is one
     * of these; n_studies 0: every instance. The worker reports the UIDs, the host never
     * parses the input. */
    const char *const *studies;
    size_t n_studies;
    int allow_burned_in, defined_lengths, sync, quiet;
    const char *who; /* "agora deid", "agora dataset export": the prefix of messages */
} agora__deid_request;

typedef struct agora__deid_summary {
    uint64_t inputs, written, refused, failed, skipped, unselected, bytes_in, bytes_out;
    agora__deid_stats stats;
    uint32_t options; /* the PS3.15 options applied (deid.h mask) */
    double seconds;
} agora__deid_summary;

/* Run it. Returns 0 when the run happened (see the counts: a file that failed is counted, not
 * fatal), 1 when it could not start (an input is missing, no secret, no output directory) and 2
 * on bad options; the message was printed. */
int agora__deid_run(const agora__deid_request *r, agora__deid_summary *out);

#endif
