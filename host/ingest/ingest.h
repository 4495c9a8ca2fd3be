/*
 * Sandboxed DICOM ingest: a small BLOCKING client for one `agora-runner` in MODE_INGEST (DESIGN
 * §2, rule of two: DICOM files are untrusted input parsed by C code, so the parser and the pixel
 * codecs run in the same sandbox as plugins). No event loop needed: every call sends one request
 * and waits (bounded by a per-request timeout) for its reply.
 *
 * Failure model: a file that the parser refuses is an ordinary per-file error (the worker stays
 * up). A worker that dies on a file (crash, SIGSYS, timeout, protocol violation) fails THAT file
 * with the reason ("the DICOM parser worker crashed (SIGSEGV) on FILE; the file was refused")
 * and is respawned on the next request. Everything a worker replies is treated as hostile and
 * validated (sizes, counts, UTF-8/ASCII, finiteness) before it reaches the caller.
 *
 * Not thread-safe: one agora__ingest per thread.
 */
#ifndef AGORA_HOST_INGEST_H
#define AGORA_HOST_INGEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "pixels.h"
#include "proto.h" /* bounds of a reply, AGORA__INGEST_MAX_*: the runner applies the same */
#include "study.h"

typedef struct agora__ingest_options {
    const char *runner_path;   /* NULL: $AGORA_RUNNER, the build tree, then the install prefix */
    uint64_t memory_bytes;     /* the worker's RLIMIT_DATA (default 512 MiB) */
    uint32_t timeout_ms;       /* per request (default 30000); the worker is killed on expiry */
    uint32_t start_timeout_ms; /* spawn and confinement until Ready (default 10000) */
    uint32_t max_requests;     /* respawn after this many requests; 0 = never (default 0) */
    uint64_t max_file_bytes;   /* larger files are refused before the worker sees them (4 GiB) */
    int allow_weak_isolation;  /* continue on kernels that refuse a namespace (warned) */
} agora__ingest_options;

void agora__ingest_options_default(agora__ingest_options *opt);

/* One top-level element as the worker reported it: text VRs carry the stored bytes (the file's
 * character set), binary numeric VRs (US SS UL SL FL FD AT UV SV) little-endian. */
typedef struct agora__ingest_element {
    uint32_t tag;
    uint16_t vr; /* AGORA__DICOM_VR(..) */
    uint16_t length;
    const uint8_t *value; /* points into the meta's own storage; NULL when length is 0 */
} agora__ingest_element;

/* Metadata of one file, validated. Field meanings follow agora__dicom_instance (study.h) so that
 * a scan can be filled from it (agora__ingest_meta_to_instance). */
typedef struct agora__ingest_meta {
    char transfer_syntax[65];
    char study_uid[65], series_uid[65], sop_uid[65], sop_class_uid[65];
    char modality[17];
    char body_part[17];      /* BodyPartExamined, "" when absent or not a code string */
    int has_slice_thickness; /* SliceThickness present: a finite 0..10000 (mm) */
    double slice_thickness;
    int64_t instance_number; /* INT64_MIN when absent */
    uint32_t frames;         /* NumberOfFrames (1 when absent) */
    uint32_t rows, columns, samples_per_pixel, bits_allocated, bits_stored, high_bit;
    uint32_t pixel_representation, planar_configuration;
    char photometric[17];
    int has_position, has_orientation, has_spacing;
    double position[3];
    double orientation[6];
    double pixel_spacing[2];
    double *frame_positions;         /* 3 per frame, or NULL (owned) */
    int has_rescale;                 /* top level, else shared, else frame 0's group */
    double rescale[2];               /* slope (non-zero), intercept; 1, 0 when absent */
    char rescale_type[17];           /* printable ASCII */
    /* Enhanced multi-frame functional groups resolved per frame ([frames] entries, owned), or
     * NULL (a classic object). Positions, orientations or spacing the worker did not send per
     * frame are the instance's (has_* as the instance). */
    agora__dicom_frame_meta *frame_meta;
    uint32_t n_volumes;              /* 1 + the largest frame_meta[].volume (1 without) */
    int dimension_organization;      /* volumes follow the Dimension Index Sequence */
    agora__ingest_element *elements; /* ascending tags (owned) */
    uint32_t n_elements;
    uint32_t elements_omitted; /* SQ, binary, > 1 KiB or past the cap: not carried */
    uint32_t warnings;         /* AGORA__DICOM_W_* */
    uint64_t worker_cpu_us;    /* the worker's CPU time for this request */
    uint8_t *storage_;         /* element values (owned) */
} agora__ingest_meta;

void agora__ingest_meta_free(agora__ingest_meta *m);

typedef struct agora__ingest agora__ingest;

/* Start and confine one ingest worker (waits for Ready). opt may be NULL (defaults). */
int agora__ingest_open(const agora__ingest_options *opt, agora__ingest **out, agora__error *err);
/* Shut the worker down (Shutdown, then kill after a grace period) and free. NULL is fine. */
void agora__ingest_close(agora__ingest *ing);

/* Parse path up to Pixel Data in the sandbox. 0 and *out (free with agora__ingest_meta_free), or
 * a negative AGORA_E* with err naming the file and the reason. Per-file refusals (the caller
 * notes the file and goes on): AGORA_EINPUT (malformed, or the worker crashed, broke the policy,
 * timed out or misbehaved on it: it is respawned for the next request), AGORA_ELIMIT (a parser
 * limit, the worker's memory limit, or larger than max_file_bytes), AGORA_EUNSUPPORTED,
 * AGORA__ERR(errno) (cannot open). AGORA_EINTERNAL: no worker can be started or it refused a
 * request (host-side problem); AGORA_ENOMEM: the host itself is out of memory. */
int agora__ingest_metadata(agora__ingest *ing, const char *path, agora__ingest_meta *out,
                           agora__error *err);

/* Decode frames first_frame..first_frame+n_frames-1 of path in mode (AGORA__DICOM_DECODE_*) into
 * out_fd (a memfd the caller created, O_RDWR) at out_offset; out_len bytes are available there.
 * The worker writes the frames back to back. *fmt_out (may be NULL) receives the layout.
 * The worker can write anywhere in out_fd while it holds it: give it a memfd that holds nothing
 * but output (sealed against grow/shrink is best) and treat the bytes as untrusted pixels. */
int agora__ingest_decode(agora__ingest *ing, const char *path, uint32_t first_frame,
                         uint32_t n_frames, int mode, int out_fd, uint64_t out_offset,
                         uint64_t out_len, agora__dicom_pixel_format *fmt_out, agora__error *err);

/* Sandboxed equivalent of agora__dicom_series_decode for a series from the in-process or a
 * hooked scan: frames in series order into out_fd at out_offset (runs of consecutive frames of
 * one instance go in one request; an instance whose frames the series wants out of file order,
 * e.g. a shuffled enhanced object or one volume of several, is decoded in windows of up to
 * 256 MiB into a scratch memfd and its frames copied into place, the sparse windows of a
 * compressed file run by run). The layout must match the first instance's for every file. */
int agora__ingest_series_decode(agora__ingest *ing, const agora__dicom_series *s, int mode,
                                int out_fd, uint64_t out_offset, uint64_t out_len,
                                agora__dicom_pixel_format *fmt_out, agora__error *err);

/* Fill a study.h instance (and the series keys) from validated metadata, as the scanner's own
 * scan_file does. in->path is set to a strdup of path; in->frame_positions and in->frame_meta
 * take ownership of m->frame_positions and m->frame_meta (m's pointers are cleared). 0 or
 * AGORA_EINPUT ("no image") / AGORA_ENOMEM. */
int agora__ingest_meta_to_instance(agora__ingest_meta *m, const char *path,
                                   agora__dicom_instance *in, char study_uid[65],
                                   char series_uid[65], char modality[17], agora__error *err);

/* agora__dicom_extract_fn for agora__dicom_scan_options.extract: ctx is an agora__ingest, so a
 * scan never parses a file in the host process. */
int agora__ingest_extract(void *ctx, const char *path, agora__dicom_extracted *out,
                          agora__error *err);

/* Counters of the worker's life (tests and benches). */
typedef struct agora__ingest_stats {
    uint64_t requests;
    uint32_t spawns;
    uint32_t worker_deaths;
    uint64_t worker_cpu_us; /* CPU time the workers reported for their requests (their word) */
    pid_t pid;              /* the current runner's pid, 0 when none is running */
} agora__ingest_stats;
void agora__ingest_get_stats(const agora__ingest *ing, agora__ingest_stats *out);

/* Testing hook: the worker misbehaves during the next request, after mapping the file, as a
 * hostile file could make the parser do (IngestRequest.test_fault). 0 clears it. */
#define AGORA__INGEST_FAULT_SEGV    1 /* SIGSEGV */
#define AGORA__INGEST_FAULT_SYSCALL 2 /* a call the seccomp policy kills (SIGSYS) */
#define AGORA__INGEST_FAULT_SPIN    3 /* hang until the request timeout */
#define AGORA__INGEST_FAULT_SIGBUS  4 /* touch past the end of the file, as on a truncation */
void agora__ingest_debug_fault_next(agora__ingest *ing, int fault);

/* ---- `agora deid` and `agora dicom dump` in the sandbox (deid.c) ------------------------------
 * The worker parses the file and applies the profile (or renders the dump); the host only opens
 * the file and passes its descriptor, computes pseudonyms with the clinic secret (which never
 * enters the worker), and checks what comes back. See docs/deidentification.md. */

/* Bounds of a DEID_UIDS reply (the runner applies the same). */
#define AGORA__INGEST_DEID_MAX_UIDS      4096u
#define AGORA__INGEST_DEID_MAX_UID_BYTES (256u << 10)
#define AGORA__INGEST_DEID_UID_MAX       1024u /* AGORA__DEID_UID_INPUT_MAX */

/* The profile the worker applies (host/deid/profile.h fields of the same names). */
typedef struct agora__ingest_deid_profile {
    uint32_t options, flags, write_flags;
} agora__ingest_deid_profile;

/* Why a deid request failed the file, besides the message: */
#define AGORA__INGEST_DEID_FAILED    0 /* unreadable, too large, the worker died... */
#define AGORA__INGEST_DEID_NOT_DICOM 1 /* no DICOM signature (the worker's word): skip it */
#define AGORA__INGEST_DEID_REFUSED   2 /* the profile refused it (burned in, DICOMDIR...) */

/* The dry run's findings. uids[i] are NUL-terminated, 1..1024 bytes, without NUL or backslash
 * (owned; free with agora__ingest_deid_uids_free). patient_id is "" unless dates are shifted. */
typedef struct agora__ingest_deid_uids {
    char **uids;
    size_t n;
    char patient_id[256];
} agora__ingest_deid_uids;
void agora__ingest_deid_uids_free(agora__ingest_deid_uids *u);

/* DEID_UIDS on the open regular file fd (size bytes; path names it in messages). 0, or a
 * negative AGORA_E* with *why (may be NULL) one of AGORA__INGEST_DEID_*. */
int agora__ingest_deid_uids_of(agora__ingest *ing, const char *path, int fd, uint64_t size,
                               const agora__ingest_deid_profile *p, agora__ingest_deid_uids *out,
                               int *why, agora__error *err);

/* The written file: out_fd[0..used) holds it, named by sop (checked: a valid UID). */
typedef struct agora__ingest_deid_written {
    uint64_t used;
    char sop[65];
    uint64_t stats[10]; /* agora__deid_stats order: kept removed emptied dummied uids
                           dates_shifted private_removed private_kept overlay_curve_removed
                           added (each capped, the worker's word) */
} agora__ingest_deid_written;

/* DEID_WRITE: uids[i] -> pseudonyms[i] (n <= AGORA__INGEST_DEID_MAX_UIDS), days the date offset.
 * The worker writes into out_fd (a memfd of out_cap bytes made by the caller, who must treat
 * its content as untrusted until checked). */
int agora__ingest_deid_write(agora__ingest *ing, const char *path, int fd, uint64_t size,
                             const agora__ingest_deid_profile *p, const char *const *uids,
                             const char *const *pseudonyms, size_t n, int days, int out_fd,
                             uint64_t out_cap, agora__ingest_deid_written *out, int *why,
                             agora__error *err);

/* `agora dicom dump` of path rendered by the worker (text, or JSON when json), at most cap
 * bytes. *out (malloc'ed, NUL-terminated, owned by the caller) holds *len bytes, checked:
 * valid UTF-8 without NUL (text) or printable ASCII and newlines (JSON) -- what the renderer
 * itself guarantees, so a worker cannot send the terminal anything the renderer could not. */
int agora__ingest_dump(agora__ingest *ing, const char *path, int json, uint64_t cap, char **out,
                       size_t *len, agora__error *err);

#endif
