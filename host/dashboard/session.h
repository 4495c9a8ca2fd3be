/*
 * Dashboard sessions, CSRF tokens and the login rate limit (issue 14). A library: never prints.
 *
 * Sessions live in memory (a restart of `agora serve` logs everyone out; nothing secret is on
 * disk). An id is 256 random bits (64 hex digits), the cookie value; the CSRF token is another
 * 256 random bits per session, put in every POST form and compared in constant time. A session
 * ends after AGORA__SESSION_IDLE_MS without a request or AGORA__SESSION_MAX_MS after login,
 * whichever comes first, and at logout. At most AGORA__SESSION_MAX sessions: a new login past
 * that ends the oldest.
 *
 * Login rate limit: failures are counted per user name and per client address (each a key in a
 * bounded table; the entry with the fewest failures goes when it is full). From the fifth
 * failure on, each further failure makes that key wait before the next attempt is even checked:
 * 1 s after the 5th, doubling to at most AGORA__LOGIN_MAX_WAIT_MS; a success resets the user's
 * count (not the address's); AGORA__LOGIN_FORGET_MS without a failure forgets a key.
 *
 * Threads: every call takes the table's mutex (the HTTP thread is the only caller today).
 */
#ifndef AGORA_DASHBOARD_SESSION_H
#define AGORA_DASHBOARD_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "users.h"

#define AGORA__SESSION_MAX       256u
#define AGORA__SESSION_IDLE_MS   (30ull * 60 * 1000)
#define AGORA__SESSION_MAX_MS    (12ull * 3600 * 1000)
#define AGORA__SESSION_ID_HEX    64u
#define AGORA__LOGIN_FREE_FAILS  4u /* failures before the wait starts */
#define AGORA__LOGIN_MAX_WAIT_MS (60ull * 1000)
#define AGORA__LOGIN_FORGET_MS   (15ull * 60 * 1000)
#define AGORA__LOGIN_KEYS        1024u
#define AGORA__LOGIN_KEY_MAX     64u /* bytes of a user name or address kept */

typedef struct agora__sessions agora__sessions;

typedef struct agora__session {
    char id[AGORA__SESSION_ID_HEX + 1];
    char csrf[AGORA__SESSION_ID_HEX + 1];
    char user[AGORA__USER_NAME_MAX + 1];
    agora__user_role role;
    uint64_t created_ms, last_ms;
} agora__session;

int agora__sessions_new(agora__sessions **out, agora__error *err);
void agora__sessions_free(agora__sessions *s);
/* Tests: the clock in ms (monotonic); 0 restores the real one. */
void agora__sessions_set_now(agora__sessions *s, uint64_t now_ms);

/* A new session for u; *out gets a copy (id and csrf to hand to the browser). */
int agora__session_create(agora__sessions *s, const agora__user *u, agora__session *out,
                          agora__error *err);
/* The live session with this id (touching it), copied into *out: 0, or AGORA__ENOENT (unknown,
 * expired, malformed). */
int agora__session_get(agora__sessions *s, const char *id, agora__session *out);
/* End a session (logout, or the user was removed). Unknown ids are ignored. */
void agora__session_end(agora__sessions *s, const char *id);
/* Non-zero when token is the session's CSRF token (constant time; NULL is no). */
int agora__session_csrf_ok(const agora__session *se, const char *token);

/* Before checking a password: 0 when the attempt may go on, else the ms the client must wait
 * (the larger of the user's and the address's). */
uint64_t agora__login_wait_ms(agora__sessions *s, const char *user, const char *addr);
void agora__login_failed(agora__sessions *s, const char *user, const char *addr);
void agora__login_succeeded(agora__sessions *s, const char *user);

#endif
