/* Dashboard sessions and the login rate limit (session.h). */
#include "session.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

typedef struct login_key {
    char key[AGORA__LOGIN_KEY_MAX + 3]; /* "u:" / "a:" + the name or address */
    unsigned fails;
    uint64_t last_fail_ms, wait_until_ms;
} login_key;

struct agora__sessions {
    pthread_mutex_t mu;
    uint64_t fixed_now;
    agora__session live[AGORA__SESSION_MAX];
    int used[AGORA__SESSION_MAX];
    login_key keys[AGORA__LOGIN_KEYS];
};

static uint64_t now_of(const agora__sessions *s)
{
    return s->fixed_now ? s->fixed_now : agora__now_ns() / 1000000u;
}

int agora__sessions_new(agora__sessions **out, agora__error *err)
{
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    agora__sessions *s = calloc(1, sizeof *s);
    if (s == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

void agora__sessions_free(agora__sessions *s)
{
    if (s == NULL)
        return;
    pthread_mutex_destroy(&s->mu);
    sodium_memzero(s, sizeof *s);
    free(s);
}

void agora__sessions_set_now(agora__sessions *s, uint64_t now_ms)
{
    s->fixed_now = now_ms;
}

static void random_hex(char out[AGORA__SESSION_ID_HEX + 1])
{
    uint8_t raw[AGORA__SESSION_ID_HEX / 2];
    randombytes_buf(raw, sizeof raw);
    agora__hex(raw, sizeof raw, out);
    sodium_memzero(raw, sizeof raw);
}

static int expired(const agora__session *se, uint64_t now)
{
    return now - se->last_ms > AGORA__SESSION_IDLE_MS ||
           now - se->created_ms > AGORA__SESSION_MAX_MS;
}

int agora__session_create(agora__sessions *s, const agora__user *u, agora__session *out,
                          agora__error *err)
{
    if (u == NULL || !agora__user_name_valid(u->name))
        return agora__error_set(err, AGORA_EINVAL, "no user for the session");
    pthread_mutex_lock(&s->mu);
    uint64_t now = now_of(s);
    size_t slot = AGORA__SESSION_MAX, oldest = 0;
    for (size_t i = 0; i < AGORA__SESSION_MAX; i++) {
        if (s->used[i] && expired(&s->live[i], now))
            s->used[i] = 0;
        if (!s->used[i] && slot == AGORA__SESSION_MAX)
            slot = i;
        if (s->used[i] && s->live[i].last_ms < s->live[oldest].last_ms)
            oldest = i;
    }
    if (slot == AGORA__SESSION_MAX)
        slot = oldest;
    agora__session *se = &s->live[slot];
    memset(se, 0, sizeof *se);
    random_hex(se->id);
    random_hex(se->csrf);
    agora__strlcpy(se->user, u->name, sizeof se->user);
    se->role = u->role;
    se->created_ms = se->last_ms = now;
    s->used[slot] = 1;
    *out = *se;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static int id_ok(const char *id)
{
    if (id == NULL || strlen(id) != AGORA__SESSION_ID_HEX)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* The slot of a live session with id, or -1 (s->mu held). */
static long find(agora__sessions *s, const char *id, uint64_t now)
{
    long hit = -1;
    for (size_t i = 0; i < AGORA__SESSION_MAX; i++)
        if (s->used[i] && sodium_memcmp(s->live[i].id, id, AGORA__SESSION_ID_HEX) == 0)
            hit = (long)i;
    if (hit >= 0 && expired(&s->live[hit], now)) {
        s->used[hit] = 0;
        hit = -1;
    }
    return hit;
}

int agora__session_get(agora__sessions *s, const char *id, agora__session *out)
{
    if (!id_ok(id))
        return AGORA__ENOENT;
    pthread_mutex_lock(&s->mu);
    uint64_t now = now_of(s);
    long i = find(s, id, now);
    if (i >= 0) {
        s->live[i].last_ms = now;
        *out = s->live[i];
    }
    pthread_mutex_unlock(&s->mu);
    return i >= 0 ? 0 : AGORA__ENOENT;
}

void agora__session_end(agora__sessions *s, const char *id)
{
    if (!id_ok(id))
        return;
    pthread_mutex_lock(&s->mu);
    long i = find(s, id, now_of(s));
    if (i >= 0) {
        sodium_memzero(&s->live[i], sizeof s->live[i]);
        s->used[i] = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

int agora__session_csrf_ok(const agora__session *se, const char *token)
{
    return token != NULL && strlen(token) == AGORA__SESSION_ID_HEX &&
           sodium_memcmp(se->csrf, token, AGORA__SESSION_ID_HEX) == 0;
}

/* ---- login rate limit ---------------------------------------------------------------------- */

static void key_of(char out[AGORA__LOGIN_KEY_MAX + 3], char kind, const char *v)
{
    out[0] = kind;
    out[1] = ':';
    agora__strlcpy(out + 2, v ? v : "", AGORA__LOGIN_KEY_MAX + 1);
}

/* The entry of key (s->mu held); create: make one, evicting the weakest. NULL: none. */
static login_key *lookup(agora__sessions *s, const char *key, int create, uint64_t now)
{
    login_key *weakest = &s->keys[0];
    for (size_t i = 0; i < AGORA__LOGIN_KEYS; i++) {
        login_key *k = &s->keys[i];
        if (k->key[0] != '\0' && now - k->last_fail_ms > AGORA__LOGIN_FORGET_MS &&
            now >= k->wait_until_ms)
            memset(k, 0, sizeof *k);
        if (k->key[0] != '\0' && strcmp(k->key, key) == 0)
            return k;
        if (k->fails < weakest->fails)
            weakest = k;
    }
    if (!create)
        return NULL;
    memset(weakest, 0, sizeof *weakest);
    agora__strlcpy(weakest->key, key, sizeof weakest->key);
    return weakest;
}

uint64_t agora__login_wait_ms(agora__sessions *s, const char *user, const char *addr)
{
    char ku[AGORA__LOGIN_KEY_MAX + 3], ka[AGORA__LOGIN_KEY_MAX + 3];
    key_of(ku, 'u', user);
    key_of(ka, 'a', addr);
    pthread_mutex_lock(&s->mu);
    uint64_t now = now_of(s), wait = 0;
    const char *keys[2] = {ku, ka};
    for (int i = 0; i < 2; i++) {
        login_key *k = lookup(s, keys[i], 0, now);
        if (k != NULL && k->wait_until_ms > now && k->wait_until_ms - now > wait)
            wait = k->wait_until_ms - now;
    }
    pthread_mutex_unlock(&s->mu);
    return wait;
}

void agora__login_failed(agora__sessions *s, const char *user, const char *addr)
{
    char ku[AGORA__LOGIN_KEY_MAX + 3], ka[AGORA__LOGIN_KEY_MAX + 3];
    key_of(ku, 'u', user);
    key_of(ka, 'a', addr);
    pthread_mutex_lock(&s->mu);
    uint64_t now = now_of(s);
    const char *keys[2] = {ku, ka};
    for (int i = 0; i < 2; i++) {
        login_key *k = lookup(s, keys[i], 1, now);
        if (k->fails < 1000)
            k->fails++;
        k->last_fail_ms = now;
        if (k->fails > AGORA__LOGIN_FREE_FAILS) {
            unsigned shift = k->fails - AGORA__LOGIN_FREE_FAILS - 1;
            uint64_t wait = shift >= 6 ? AGORA__LOGIN_MAX_WAIT_MS : 1000ull << shift;
            k->wait_until_ms =
                now + (wait > AGORA__LOGIN_MAX_WAIT_MS ? AGORA__LOGIN_MAX_WAIT_MS : wait);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

void agora__login_succeeded(agora__sessions *s, const char *user)
{
    char ku[AGORA__LOGIN_KEY_MAX + 3];
    key_of(ku, 'u', user);
    pthread_mutex_lock(&s->mu);
    login_key *k = lookup(s, ku, 0, now_of(s));
    if (k != NULL)
        memset(k, 0, sizeof *k);
    pthread_mutex_unlock(&s->mu);
}
