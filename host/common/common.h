/*
 * Internal helpers shared by every host module (and the runner): errors with a message the user
 * can act on, structured logging without PHI, bounded file reads, hashing, UTF-8 checks.
 * Not part of any public API.
 */
#ifndef AGORA_HOST_COMMON_H
#define AGORA_HOST_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "agora/agora.h"

/* An error: a stable negative code (AGORA_E* or -errno) and one line of text saying what was
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
/* mkdir -p with the given mode for directories it creates. */
int agora__mkdirs(const char *path, unsigned mode, agora__error *err);

/* The clinic home: `dir` if not NULL or empty, else $AGORA_HOME, else $XDG_DATA_HOME/agora,
 * else $HOME/.local/share/agora. Writes into out (size bytes). 0 or AGORA_EINVAL/AGORA_ELIMIT. */
int agora__home_dir(const char *dir, char *out, size_t size, agora__error *err);

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
