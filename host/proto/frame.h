/*
 * frame.h — the host's codec of the host <-> runner protocol (schemas/agora_ipc.proto; numbers
 * in proto.h): a 4-byte little-endian length, then a serialized agora.ipc.Frame. The one codec
 * of both host clients: incremental for the plugin pool's non-blocking sockets, blocking with a
 * deadline for the ingest client. Also linked by the fake runner and benches that play the
 * runner's side.
 */
#ifndef AGORA_PROTO_FRAME_H
#define AGORA_PROTO_FRAME_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agora_ipc.pb-c.h"
#include "common.h"
#include "proto.h"

/* Descriptors the codec can carry or hold per message: more than the protocol's
 * AGORA__FRAME_MAX_FDS, so a peer sending too many is seen (and refused), and test peers can
 * send them. */
#define AGORA__FRAME_CODEC_FDS 4
/* Bytes one agora__frame_reader_fill reads at most; a shorter read drained the socket. */
#define AGORA__FRAME_READ_CHUNK ((size_t)64 << 10)

/* Counting allocator handed to protobuf-c: fails once `budget` live bytes are exceeded (refused
 * is then set, so the error can say why the frame was refused). */
typedef struct agora__frame_alloc {
    ProtobufCAllocator pb;
    size_t live;
    size_t budget;
    int refused;
} agora__frame_alloc;

/* Buffer of received bytes. Owns buf and any received descriptors until taken. */
typedef struct agora__frame_reader {
    uint8_t *buf;
    size_t len, cap;
    size_t max_frame; /* payload cap (without the 4-byte prefix) */
    unsigned max_fds; /* 0: any received descriptor is a protocol error (host side) */
    int fds[AGORA__FRAME_CODEC_FDS];
    unsigned n_fds;
    agora__frame_alloc alloc;
} agora__frame_reader;

void agora__frame_reader_init(agora__frame_reader *r, size_t max_frame, unsigned max_fds);
/* Frees the buffer and closes descriptors not taken. */
void agora__frame_reader_free(agora__frame_reader *r);

/* Read what the (non-blocking) socket has. Returns 1 when bytes were read, 0 at end of stream,
 * AGORA__EAGAIN when nothing is available, another negative code on error (err set). Descriptors
 * arriving when max_fds is 0 (or more than max_fds in total) are closed and fail with
 * AGORA_EINVAL: the host never accepts a descriptor from a runner. */
int agora__frame_reader_fill(agora__frame_reader *r, int fd, agora__error *err);
/* Append bytes directly (tests, fuzzing). Fails when the buffer would exceed its bound. */
int agora__frame_reader_feed(agora__frame_reader *r, const void *data, size_t len,
                             agora__error *err);
/* Parse the next complete frame: 1 and *out set (free with agora__frame_free), 0 when more bytes
 * are needed, negative on a protocol error (oversized, undecodable, empty oneof). */
int agora__frame_reader_next(agora__frame_reader *r, Agora__Ipc__Frame **out, agora__error *err);
void agora__frame_free(agora__frame_reader *r, Agora__Ipc__Frame *f);
/* Move up to max received descriptors to the caller (runner side). Returns how many. */
unsigned agora__frame_reader_take_fds(agora__frame_reader *r, int *fds, unsigned max);

/* Serialize f with its length prefix into a malloc'ed buffer (caller frees). Fails when the
 * payload exceeds max. */
int agora__frame_pack(const Agora__Ipc__Frame *f, size_t max, uint8_t **out, size_t *out_len,
                      agora__error *err);
/* One non-blocking sendmsg of buf[0..len) with the descriptors (if any) attached to its first
 * byte. Returns bytes sent, or AGORA__ERR(errno) (AGORA__EAGAIN when the socket is full). */
ssize_t agora__frame_sendmsg(int fd, const uint8_t *buf, size_t len, const int *fds,
                             unsigned n_fds);
/* Blocking helper for simple peers (fake runner, benches): send all of buf, fds on the first
 * byte. Works on blocking and non-blocking sockets (polls). */
int agora__frame_send_all(int fd, const uint8_t *buf, size_t len, const int *fds, unsigned n_fds,
                          agora__error *err);
/* Blocking helper: read until one frame is available (poll on non-blocking sockets). 1 frame,
 * 0 end of stream, negative error. */
int agora__frame_recv(agora__frame_reader *r, int fd, Agora__Ipc__Frame **out, agora__error *err);

/* One frame body (without its prefix) of at most max bytes, unpacked within
 * AGORA__FRAME_UNPACK_BUDGET. NULL with err set (AGORA_EINVAL: undecodable, over the budget or
 * empty oneof; AGORA_ELIMIT: over max). Free the result with agora__frame_decoded_free. */
Agora__Ipc__Frame *agora__frame_decode(const uint8_t *body, size_t len, size_t max,
                                       agora__error *err);
void agora__frame_decoded_free(Agora__Ipc__Frame *f);

/* Blocking with a deadline (agora__now_ns() based, 0 = none), for request/reply peers that
 * read exactly one frame and nothing beyond it. send: packs f (payload <= max), fds ride with
 * the first byte; 0 or negative with err set (-ETIMEDOUT on the deadline). recv: 1 and *out set
 * (free with agora__frame_decoded_free), 0 at end of stream before a frame began, -ETIMEDOUT,
 * AGORA_EINVAL/AGORA_ELIMIT when the peer broke the protocol (oversized, undecodable, sent a
 * descriptor), another negative code on I/O errors; err set on every failure. */
int agora__frame_send_until(int fd, const Agora__Ipc__Frame *f, size_t max, const int *fds,
                            unsigned n_fds, uint64_t deadline_ns, agora__error *err);
int agora__frame_recv_until(int fd, size_t max, uint64_t deadline_ns, Agora__Ipc__Frame **out,
                            agora__error *err);

#endif
