/*
 * The HTTP client of the daemon (libcurl): STOW-RS (PS3.18 10.5) of Part 10 files and a POST of
 * one JSON document (FHIR). Blocking; call from a thread that may block. Every request has a
 * connect timeout and a total timeout, TLS peer and host verification stay on, redirects are
 * not followed (a 3xx is an answer like any other, so a destination cannot bounce the request
 * to another host), only http and https are allowed, and the response body kept is at most
 * AGORA__HTTP_MAX_RESPONSE bytes (a longer one fails the request).
 *
 * STOW-RS: one multipart/related; type="application/dicom" body, the files streamed from disk
 * (never held whole in memory), Accept: application/dicom+json. The answer's DICOM JSON is read
 * only for the Failed SOP Sequence (0008,1198): each item's Referenced SOP Instance UID
 * (0008,1155) is matched to the files by their meta group's SOP Instance UID, so the caller
 * learns which parts were refused (and their Failure Reason (0008,1197)).
 */
#ifndef AGORA_NET_HTTP_CLIENT_H
#define AGORA_NET_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct agora__error;

#define AGORA__HTTP_MAX_RESPONSE (4u * 1024u * 1024u)
#define AGORA__HTTP_MAX_FILES    10000u

/* What a transfer ended with when no HTTP status came back (or alongside it). */
typedef enum agora__http_fail {
    AGORA__HTTP_OK = 0,    /* an HTTP status came back (http_status) */
    AGORA__HTTP_RESOLVE,   /* host name did not resolve */
    AGORA__HTTP_REFUSED,   /* connection refused / could not connect */
    AGORA__HTTP_TIMEOUT,   /* connect or total timeout */
    AGORA__HTTP_RESET,     /* connection closed or reset mid-transfer, or nothing back */
    AGORA__HTTP_TLS,       /* TLS handshake or certificate verification failed */
    AGORA__HTTP_TOO_LARGE, /* the response was larger than AGORA__HTTP_MAX_RESPONSE */
    AGORA__HTTP_BAD_URL,   /* not an http(s) URL libcurl accepts */
    AGORA__HTTP_BAD_FILE,  /* a file could not be read (its meta group or its bytes) */
    AGORA__HTTP_OTHER,     /* any other libcurl error */
} agora__http_fail;

typedef struct agora__http_result {
    agora__http_fail fail;
    long http_status; /* 0 when none */
    char msg[256];    /* libcurl's or our text, no UID */
} agora__http_result;

typedef struct agora__stow_file_result {
    int failed;      /* listed in the Failed SOP Sequence */
    uint16_t reason; /* its Failure Reason (0008,1197); 0 when absent */
} agora__stow_file_result;

typedef struct agora__http_opts {
    unsigned connect_timeout_ms; /* 0: 10 s */
    unsigned stall_timeout_ms;   /* no byte moving either way this long fails; 0: 30 s */
    unsigned timeout_ms;         /* whole request; 0: 600 s */
    const char *ca_file;         /* NULL: the system store */
} agora__http_opts;

/* Initialise libcurl once per process (thread-safe to call more than once). */
int agora__http_global_init(struct agora__error *err);

/* POST the files to base_url + "/studies". files[i] is filled for each file (n entries). The
 * answer's status is in res->http_status. Returns 0 when res is filled (whatever the answer),
 * AGORA_EINVAL (bad arguments, n == 0, more than AGORA__HTTP_MAX_FILES), AGORA_ENOMEM. A file
 * that cannot be read makes res->fail AGORA__HTTP_BAD_FILE and nothing is sent; *bad_file (if
 * not NULL) is its index. */
int agora__stow_post(const char *base_url, const char *const *paths, size_t n,
                     const agora__http_opts *opts, agora__stow_file_result *files,
                     agora__http_result *res, size_t *bad_file, struct agora__error *err);

/* POST body as application/fhir+json to url (Accept: application/fhir+json). */
int agora__http_post_json(const char *url, const char *body, size_t len,
                          const agora__http_opts *opts, agora__http_result *res,
                          struct agora__error *err);

#endif
