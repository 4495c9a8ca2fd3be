/*
 * Internal helpers shared by every host module (and the runner): errors with a message the user
 * can act on, structured logging without PHI, bounded file reads, hashing, UTF-8 checks.
 * Not part of any public API.
 */
#ifndef AGORA_HOST_COMMON_H
#define AGORA_HOST_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "agora/agora.h"

/* One error space, as libuv has it. Every internal function returns 0 or a negative code from
 * this one list, never a bare -errno:
 *   - the public plugin codes AGORA_E* (-1..-99, agora.h; stable, shared with plugins);
 *   - a system error, AGORA__ERR(errno) = -(1000 + errno): the errno is mapped once, where the
 *     failing call is made. The offset keeps -ENOENT (-2) from reading as AGORA_ENOMEM (-2).
 * Compare against the names below (AGORA__ENOENT, ...), never against -ENOENT. The message
 * travels in agora__error. The runner's wire codes (sandbox/, Error.code) are its own protocol
 * values and are read in host/worker/pool.c only. */
#define AGORA__ERRNO_BASE   1000
#define AGORA__ERR(e)       (-(AGORA__ERRNO_BASE + (e)))
#define AGORA__EAGAIN       AGORA__ERR(EAGAIN)
#define AGORA__EEXIST       AGORA__ERR(EEXIST)
#define AGORA__EINTR        AGORA__ERR(EINTR)
#define AGORA__EIO          AGORA__ERR(EIO)
#define AGORA__ENAMETOOLONG AGORA__ERR(ENAMETOOLONG)
#define AGORA__ENOENT       AGORA__ERR(ENOENT)
#define AGORA__ENOMEM_SYS   AGORA__ERR(ENOMEM) /* the kernel said ENOMEM (mmap, fork, ...) */
#define AGORA__EPIPE        AGORA__ERR(EPIPE)
#define AGORA__EPROTO       AGORA__ERR(EPROTO)
#define AGORA__ETIMEDOUT    AGORA__ERR(ETIMEDOUT)
/* The errno behind an AGORA__ERR code, else 0 (a public AGORA_E* code or 0). */
int agora__err_errno(int code);
/* A short text for any code of the list (static; strerror for system errors). */
const char *agora__strerror(int code);
/* Non-zero when code means out of memory (AGORA_ENOMEM, or the kernel's ENOMEM). */
int agora__err_is_nomem(int code);

/* An error: a stable negative code (from the list above) and one line of text saying what was
 * wrong and what to do. Functions that can fail take an `agora__error *` (may be NULL) and
 * return the code. */
typedef struct agora__error {
    int code;
    char msg[512];
} agora__error;

/* Set err (if not NULL) and return code. The message must not contain PHI. */
int agora__error_set(agora__error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing message with context ("reading X: <old message>"). Returns err->code. */
int agora__error_prefix(agora__error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void agora__error_clear(agora__error *err);

/* Logging: one line per event, "ts level component: message key=value...", to stderr.
 * Never pass PHI (names, IDs, dates, free text, real UIDs). AGORA_LOG=debug|info|warn|error
 * selects the threshold (default warn); AGORA_LOG_JSON=1 prints JSON lines instead. */
void agora__log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int agora__log_enabled(int level);

/* Read a whole regular file, refusing files larger than max_bytes. *out is malloc'ed, NUL
 * terminated (not counted in *len); the caller frees it. */
int agora__read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len,
                     agora__error *err);
/* Write a file atomically (temp file in the same directory, fsync, rename, fsync dir). */
int agora__write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
                             agora__error *err);
/* The same, but only when path does not exist yet (the complete file appears at once, or
 * AGORA__EEXIST: another writer got there first). */
int agora__write_file_new(const char *path, const void *data, size_t len, unsigned mode,
                          agora__error *err);
/* A file written under a temporary name and renamed into place on commit, for writers that
 * stream (bundles, assets). open creates PATH.tmp.XXXXXX with mode; commit fsyncs, renames and
 * fsyncs the directory; abort (safe after commit or a failed open) closes and unlinks. */
typedef struct agora__atomic_file {
    int fd;
    char path[4096];
    char tmp[4096 + 16];
} agora__atomic_file;
int agora__atomic_open(const char *path, unsigned mode, agora__atomic_file *f, agora__error *err);
int agora__atomic_commit(agora__atomic_file *f, agora__error *err);
void agora__atomic_abort(agora__atomic_file *f);
/* write() all of data (EINTR retried). 0 or AGORA__ERR(errno). */
int agora__write_all(int fd, const void *data, size_t len);
/* mkdir -p with the given mode for directories it creates. */
/* Create path as an empty 0600 file if it does not exist; an existing path is never opened
 * (for SQLite databases: closing any descriptor of a database file drops every POSIX lock this
 * process holds on it, including those of open connections, after which another process may
 * checkpoint and delete the WAL under them). A symbolic link is refused. 0 or an error. */
int agora__create_private_file(const char *path, agora__error *err);
int agora__mkdirs(const char *path, unsigned mode, agora__error *err);

/* The clinic home (resolution and layout): home.h. */
#include "home.h"
/* Plugin assets (names, bounds, streaming into sealed memfds): asset.h. */
#include "asset.h"

/* SHA-256 (libsodium). hex must hold 65 bytes. */
void agora__sha256(const void *data, size_t len, uint8_t out[32]);
void agora__hex(const uint8_t *bytes, size_t n, char *hex /* 2n+1 */);
int agora__unhex(const char *hex, uint8_t *out, size_t n); /* 0 or -1 */

/* Non-zero when s[0..len) is valid UTF-8 with no NUL and no C0 control other than \t \n \r. */
int agora__utf8_valid(const char *s, size_t len);

/* Non-zero when s[0..len) is an acceptable triage reason (org.agora.triage/1): 1..max bytes of
 * valid UTF-8 with no control character at all (C0 including tab/CR/LF, DEL, C1). */
int agora__triage_reason_valid(const char *s, size_t len, size_t max);

/* Bounded string copy that always terminates; returns the length copied. */
size_t agora__strlcpy(char *dst, const char *src, size_t dstsize);

/* Monotonic clock in nanoseconds. */
uint64_t agora__now_ns(void);

#endif
