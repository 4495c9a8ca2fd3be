/*
 * Private to host/ingest: reply validation (reply.c, unit-tested on hand-built replies). Frame
 * I/O, locating and spawning the runner are host/proto's (frame.h, runner_proc.h).
 */
#ifndef AGORA_HOST_INGEST_INTERNAL_H
#define AGORA_HOST_INGEST_INTERNAL_H

#include "agora_ipc.pb-c.h"
#include "frame.h"
#include "ingest.h"

/* Outcome of checking a reply. */
enum {
    AGORA__INGEST_REPLY_OK = 0,     /* *meta / *fmt filled */
    AGORA__INGEST_REPLY_FILE = 1,   /* the worker refused the file: err says why, worker healthy */
    AGORA__INGEST_REPLY_HOSTILE = 2 /* the reply breaks the contract: kill the worker */
};

/* Validate reply r to request (request_id, op). METADATA: fills *meta (elements included).
 * DECODE: fills *fmt, checks frames_decoded == n_frames and that they fit out_len; meta may be
 * NULL (else filled without elements). Returns AGORA__INGEST_REPLY_*; on FILE, *code is the
 * AGORA_E* to return and err the reason; on HOSTILE, err says what was wrong. */
int agora__ingest_check_reply(const Agora__Ipc__IngestReply *r, uint64_t request_id, int op,
                              uint32_t n_frames, uint64_t out_len, agora__ingest_meta *meta,
                              agora__dicom_pixel_format *fmt, int *code, agora__error *err);

/* A request type's own reply check (deid.c): called after agora__ingest_check_reply with its
 * verdict (OK or FILE; on FILE err already says why) and returns the final verdict, setting err
 * when it turns one into HOSTILE. It may keep what it needs from r (r is freed afterwards). */
typedef int (*agora__ingest_check_fn)(const Agora__Ipc__IngestReply *r, int verdict, void *ctx,
                                      agora__error *err);

/* One request with descriptors fds, the reply checked by check (see roundtrip in client.c for
 * the failure model: worker deaths and hostile replies fail the file and respawn). */
int agora__ingest_roundtrip_checked(agora__ingest *ing, const char *path,
                                    Agora__Ipc__IngestRequest *req, const int *fds, size_t n_fds,
                                    agora__ingest_check_fn check, void *ctx, agora__error *err);

/* The checks of DEID_UIDS / DEID_WRITE replies (ctx: agora__ingest_deid_check; uids set for a
 * dry run, written for a write) and DUMP replies (ctx: agora__ingest_dump_check), as
 * agora__ingest_check_fn. On a FILE verdict `why` records the worker's not-DICOM / refused
 * flags; on OK the reply is checked against the caps and copied out. */
typedef struct agora__ingest_deid_check {
    int why; /* AGORA__INGEST_DEID_* */
    agora__ingest_deid_uids *uids;
    agora__ingest_deid_written *written;
    const char *const *issued; /* pseudonyms sent with DEID_WRITE */
    size_t n_issued;
    uint64_t out_cap;
} agora__ingest_deid_check;
int agora__ingest_check_deid(const Agora__Ipc__IngestReply *r, int verdict, void *ctx,
                             agora__error *err);
typedef struct agora__ingest_dump_check {
    uint64_t cap, used;
} agora__ingest_dump_check;
int agora__ingest_check_dump(const Agora__Ipc__IngestReply *r, int verdict, void *ctx,
                             agora__error *err);

/* The metadata part alone (0 or -1 with err). with_elements=0 refuses replies carrying any. */
int agora__ingest_check_meta(const Agora__Ipc__IngestMetadata *m, int with_elements,
                             agora__ingest_meta *out, agora__error *err);

#endif
