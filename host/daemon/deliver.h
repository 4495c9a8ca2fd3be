/*
 * Delivering result files to a destination with a classified outcome (issue 12 item 7). The
 * daemon's sender thread calls agora__deliver_files and settles the job from the class:
 *   AGORA__DELIVER_OK        every file delivered (DIMSE 0x0000 or the warnings 0xB000,
 *                            0xB006, 0xB007; STOW 200, or 202 with no failed part);
 *   AGORA__DELIVER_TRANSIENT retry later with agora__deliver_backoff_ms (0xA7xx out of
 *                            resources, connection refused/reset/timeout, A-ASSOCIATE-RJ
 *                            transient, HTTP 5xx/408/429 and connect errors);
 *   AGORA__DELIVER_PERMANENT fail now with a named class: retrying cannot help until someone
 *                            changes the configuration or the files (0xA9xx, 0xCxxx and other
 *                            failure statuses, RJ permanent, no presentation context, HTTP 4xx,
 *                            409, refused STOW parts).
 * A batch's class: PERMANENT when any file is permanent (the first such file names the class;
 * a retry would fail again), else TRANSIENT when any file is transient, else OK. A retry
 * re-sends the whole batch: the result UIDs are fixed at job creation, so the PACS keeps one
 * copy.
 *
 * Messages say what was wrong and what to do; they carry AE titles, host:port, status codes
 * and file positions, never a UID or a data set value.
 */
#ifndef AGORA_DAEMON_DELIVER_H
#define AGORA_DAEMON_DELIVER_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;

typedef enum agora__dest_kind { AGORA__DEST_DIMSE, AGORA__DEST_STOW } agora__dest_kind;

/* A destination (all strings borrowed for the call). */
typedef struct agora__dest {
    const char *name; /* the configuration's name, for messages */
    agora__dest_kind kind;
    const char *ae_title;   /* DIMSE: the called AE */
    const char *host;       /* DIMSE */
    int port;               /* DIMSE */
    const char *calling_ae; /* DIMSE: ours (NULL or "": "AGORA") */
    const char *url;        /* STOW: the base (".../dicomweb"); "/studies" is appended */
    unsigned timeout_ms;    /* each connect / answer / response; 0: 30 s */
} agora__dest;

typedef enum agora__deliver_class {
    AGORA__DELIVER_OK,
    AGORA__DELIVER_TRANSIENT,
    AGORA__DELIVER_PERMANENT,
} agora__deliver_class;

typedef struct agora__deliver_outcome {
    agora__deliver_class cls;
    /* static: "delivered", "connection-refused", "connection-timeout", "connection-reset",
     * "host-not-found", "network-unreachable", "timeout", "association-rejected-transient",
     * "association-aborted", "out-of-resources", "protocol-error", "configuration-error",
     * "refused-by-peer", "no-presentation-context", "bad-file", "server-error",
     * "http-error", "not-sent" */
    const char *error_class;
    char msg[256];
    uint16_t last_status; /* DIMSE status or HTTP status; 0 when none came back */
} agora__deliver_outcome;

/* Blocking; call from a sender thread. Files are Part 10; presentation contexts (DIMSE) come
 * from their meta. out: the batch's outcome. Returns 0 when out is filled (whatever the class),
 * AGORA_EINVAL for a destination that is not usable at all (out is filled too: PERMANENT
 * "configuration-error"), AGORA_ENOMEM. */
int agora__deliver_files(const agora__dest *d, const char *const *paths, size_t n,
                         agora__deliver_outcome *out, struct agora__error *err);
/* The same with each file's outcome in each[0..n) (caller-owned), for `agora dicom send`. */
int agora__deliver_files_each(const agora__dest *d, const char *const *paths, size_t n,
                              agora__deliver_outcome *each, agora__deliver_outcome *out,
                              struct agora__error *err);

/* C-ECHO the destination (DIMSE only): OK when it answered 0x0000; else the class of why not.
 * For `agora dicom send --echo` and a daemon's start-up check. */
int agora__deliver_echo(const agora__dest *d, agora__deliver_outcome *out,
                        struct agora__error *err);

/* POST a FHIR resource (JSON, e.g. a DiagnosticReport) to url (the type's endpoint,
 * ".../DiagnosticReport"). 2xx OK; 5xx/408/429/connect errors TRANSIENT; other 4xx PERMANENT. */
int agora__deliver_fhir(const char *url, const char *json, size_t len, unsigned timeout_ms,
                        agora__deliver_outcome *out, struct agora__error *err);

/* DIMSE status of one C-STORE-RSP → class and error class (static string). */
agora__deliver_class agora__deliver_classify_dimse(uint16_t status, const char **error_class);
/* HTTP status of a STOW-RS / FHIR answer → class. */
agora__deliver_class agora__deliver_classify_http(long http_status, const char **error_class);

/* Backoff before attempt `attempt + 1` after `attempt` failed attempts (1, 2, ...):
 * 30 s doubling (30 s, 1 min, 2 min, 4 min, 8 min) to a 15 min cap, minus a jitter of up to
 * 20 % so that jobs failed together do not retry together. Always within [24 s, 15 min]. The
 * number of attempts is the queue's (max_attempts). */
#define AGORA__DELIVER_BACKOFF_BASE_MS (30u * 1000u)
#define AGORA__DELIVER_BACKOFF_CAP_MS  (15u * 60u * 1000u)
uint64_t agora__deliver_backoff_ms(unsigned attempt);
/* The same with the jitter drawn from r (uniform 32-bit), for tests. */
uint64_t agora__deliver_backoff_jitter_ms(unsigned attempt, uint32_t r);

#endif
