/*
 * The clinic daemon `agora serve` (issue 12): the glue of the modules of host/daemon, host/dimse
 * and host/http into one process.
 *
 * Threads (each with its own database handles: one SQLite connection per thread):
 *   - the loop thread (agora__daemon_run's caller): one libuv loop holding the DICOM listener
 *     (host/dimse/serve.h, a handle on this loop), SIGTERM/SIGINT, and the shutdown timers;
 *   - the HTTP thread (host/http/server.h, its own): STOW-RS into the spool and GET /healthz;
 *   - the intake thread: every second agora__intake_poll (grouping in the sandboxed reader,
 *     completion timers) and, for every complete study, the routing rules (route_rules.h) and
 *     agora__queue_enqueue of one job per (plugin, series) or (plugin, study) with the
 *     invocation id minted at enqueue; it also renews the leases of running jobs (a watchdog:
 *     a cancelled job is cancelled in its pool at once), rescues expired leases, and syncs the
 *     catalog every sync interval (a revoked build: queued jobs cancelled with the reason,
 *     running ones cancelled in their pool);
 *   - N dispatch threads (workers; default the number of cores): each owns one pipeline
 *     (host/pipeline) with warm pools of the plugins it has seen, claims run jobs (urgent
 *     first), scans the job's spool files, runs the job's plugin, exports the SR/SEG into
 *     HOME/outbox/<job id>/ (agora__export_result) and settles the job to sending (or done
 *     without a destination, failed with the class) in the ledger's transaction;
 *   - one sender thread: claims sending jobs whose next attempt is due, agora__deliver_files to
 *     the job's destination, records delivered / transient (backoff) / permanent.
 *
 * Shutdown (SIGTERM/SIGINT): the listeners stop (open associations get the DICOM grace), no job
 * is claimed any more; running jobs get grace_ms to finish, then are cancelled in their pools;
 * whatever this host still leases goes back to the queue (agora__queue_requeue_mine, the
 * attempt given back) and agora__daemon_run returns 0. At start, leases a previous process of
 * this host left (a crash) are expired at once (agora__queue_expire_mine).
 *
 * Logs (agora__log, component "daemon"): job ids, plugin ids, study keys (hashes), states,
 * classes, counts; never a UID, a name or a value from a file.
 */
#ifndef AGORA_DAEMON_DAEMON_H
#define AGORA_DAEMON_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "deliver.h"
#include "intake.h"
#include "serve.h"

#define AGORA__DAEMON_MAX_WORKERS      64u
#define AGORA__DAEMON_MAX_DESTS        32u
#define AGORA__DAEMON_DEFAULT_SYNC_S   300u
#define AGORA__DAEMON_DEFAULT_GRACE_MS 30000u

/* A named destination as configured: NAME=AE@HOST:PORT (DIMSE) or NAME=http[s]://... (STOW).
 * The strings live in the struct. */
typedef struct agora__daemon_dest {
    char name[65];
    char ae[17];
    char host[256];
    char url[1024];
    agora__dest d; /* points into the fields above */
} agora__daemon_dest;

/* Fill a destination: DIMSE (url NULL: the PACS's AE title, host and port) or STOW-RS (url,
 * the DICOMweb base). calling_ae: ours (borrowed). 0 or AGORA_EINVAL saying what is wrong. */
int agora__daemon_dest_init(agora__daemon_dest *out, const char *name, const char *ae,
                            const char *host, int port, const char *url, const char *calling_ae,
                            agora__error *err);

typedef struct agora__daemon_config {
    const char *home;          /* resolved clinic home */
    int dicom_on;              /* 0: --no-dicom */
    agora__serve_config dicom; /* the DICOM listener (home is set from above) */
    const char *http_host;     /* NULL: no HTTP listener */
    int http_port;
    const char *rules_path; /* NULL: the default rule */
    /* destinations: [0] is "default" when --send-to/--send-stow was given */
    agora__daemon_dest dests[AGORA__DAEMON_MAX_DESTS];
    size_t n_dests;
    agora__intake_config intake; /* quiet times, force action */
    unsigned workers;            /* 0: the number of cores */
    unsigned sync_interval_s;    /* 0: no catalog sync */
    unsigned grace_ms;           /* running jobs' grace at shutdown */
    uint32_t timeout_s;          /* per-job time limit; 0: the manifest's */
    uint32_t deid_flags;
} agora__daemon_config;

/* Check everything without listening (--check-config): the listener settings, the home (it
 * opens, its keys derive), the spool, the ledger and queue, the rules (they load; every
 * destination they name is configured), and the installed apps (listed with their status).
 * Prints nothing: report(arg, line) gets one line per fact (may be NULL). 0 or an error. */
int agora__daemon_check(const agora__daemon_config *cfg,
                        void (*report)(void *arg, const char *line), void *arg, agora__error *err);

/* Run until SIGTERM/SIGINT. 0 after a clean shutdown, else an error (nothing bound, ...). */
int agora__daemon_run(const agora__daemon_config *cfg, agora__error *err);

#endif
