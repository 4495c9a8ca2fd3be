/* 1,000 syncs during 1,000 publishes (issue 16): a child process publishes catalog versions
 * 1..N into one directory with the library's publish (agora__catalog_write_dir: catalog.signed
 * replaced by rename) while this process syncs a clinic home from it as fast as it can. Every
 * sync must accept a catalog or find it already held; a refusal fails the test. The syncs must
 * see several versions (else they did not overlap the publishes and prove nothing).
 *
 * For comparison it then runs the same race against the older two-file layout (catalog.json and
 * catalog.sig replaced one after the other, the way publishing worked before), and prints how
 * many syncs that refused: the reason for catalog.signed. That figure is printed, not asserted
 * (a race may or may not be lost in a given run).
 *
 * usage: publish_race [N]   (default 1000). Writes only under a temp dir. */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "trust_int.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The older publish: two files, one rename each. */
static int write_pair(const char *dir, const agora__catalog *c, const agora__seckey *key,
                      agora__error *err)
{
    char *json, jpath[4096], spath[4096], line[AGORA__SIG_TEXT_MAX];
    size_t len;
    int rc = agora__catalog_serialize(c, &json, &len, err);
    if (rc != 0)
        return rc;
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)json, len, key->sk);
    agora__sig_format(&key->pub, sig, line, sizeof line);
    snprintf(jpath, sizeof jpath, "%s/catalog.json", dir);
    snprintf(spath, sizeof spath, "%s/catalog.sig", dir);
    rc = agora__write_file_atomic(jpath, json, len, 0644, err);
    if (rc == 0)
        rc = agora__write_file_atomic(spath, line, strlen(line), 0644, err);
    free(json);
    return rc;
}

static void publish(const char *dir, const agora__seckey *key, uint64_t v, int pair)
{
    agora__catalog c;
    memset(&c, 0, sizeof c);
    c.version = v;
    c.issued = agora__trust_now();
    c.expires = c.issued + 86400;
    agora__strlcpy(c.key_id, key->pub.id, sizeof c.key_id);
    /* Entries make the document long enough that a torn pair is visible. */
    for (int i = 0; i < 20; i++) {
        agora__cat_entry *e = agora__catalog_add(&c, NULL);
        if (e == NULL)
            exit(3);
        snprintf(e->id, sizeof e->id, "com.example.app%d", i);
        snprintf(e->version, sizeof e->version, "1.0.%llu", (unsigned long long)v);
        agora__strlcpy(e->name, "app", sizeof e->name);
        agora__strlcpy(e->vendor, "Example", sizeof e->vendor);
        agora__strlcpy(e->level, "research", sizeof e->level);
        agora__strlcpy(e->pricing.model, "free", sizeof e->pricing.model);
        agora__strlcpy(e->pricing.currency, "XXX", sizeof e->pricing.currency);
        e->plugin_size = e->manifest_size = 1;
        e->certified_at = c.issued;
    }
    agora__error err = {0};
    int rc = pair ? write_pair(dir, &c, key, &err) : agora__catalog_write_dir(dir, &c, key, &err);
    agora__catalog_free(&c);
    if (rc != 0) {
        fprintf(stderr, "publish %llu: %s\n", (unsigned long long)v, err.msg);
        exit(2);
    }
}

/* One race: versions 2..n+1 published by a child while n syncs run here. *refused and
 * *versions (distinct versions the syncs accepted) are what was seen. */
static int race(const char *base, const char *name, int n, int pair, const agora__seckey *key,
                const char *pub_path, int *refused, int *versions, char *first_err, size_t esz)
{
    char dir[4096], home[4096];
    agora__error err = {0};
    snprintf(dir, sizeof dir, "%s/%s-cat", base, name);
    snprintf(home, sizeof home, "%s/%s-home", base, name);
    if (agora__mkdirs(dir, 0755, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), -1;
    const char *paths[1] = {pub_path};
    agora__init_opts o = {home, paths, 1, 0, 0, NULL};
    char out[4096];
    if (agora__home_init(&o, out, sizeof out, &err) != 0)
        return fprintf(stderr, "init: %s\n", err.msg), -1;
    publish(dir, key, 1, pair);
    agora__trust_home *h;
    if (agora__trust_home_open(home, &h, &err) != 0)
        return fprintf(stderr, "open: %s\n", err.msg), -1;
    int go[2];
    if (pipe(go) != 0)
        return perror("pipe"), -1;
    pid_t pid = fork();
    if (pid < 0)
        return perror("fork"), -1;
    if (pid == 0) {
        close(go[0]);
        if (write(go[1], "x", 1) != 1)
            _exit(4);
        for (int v = 2; v <= n + 1; v++)
            publish(dir, key, (uint64_t)v, pair);
        _exit(0);
    }
    close(go[1]);
    char c;
    if (read(go[0], &c, 1) != 1)
        return fprintf(stderr, "publisher did not start\n"), -1;
    close(go[0]);
    *refused = 0;
    *versions = 0;
    first_err[0] = '\0';
    uint64_t last = 0;
    for (int i = 0; i < n; i++) {
        agora__catalog old;
        int rc = agora__home_sync(h, dir, &old, &err);
        agora__catalog_free(&old);
        if (rc < 0) {
            if ((*refused)++ == 0)
                snprintf(first_err, esz, "%s", err.msg);
            continue;
        }
        uint64_t v = agora__trust_home_catalog(h)->version;
        if (v != last)
            (*versions)++;
        last = v;
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s: the publisher failed\n", name);
        agora__trust_home_close(h);
        return -1;
    }
    agora__trust_home_close(h);
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1000;
    if (n < 10 || n > 100000 || sodium_init() < 0)
        return fprintf(stderr, "usage: publish_race [N >= 10]\n"), 2;
    char base[] = "/tmp/agora-publish-race-XXXXXX";
    if (mkdtemp(base) == NULL)
        return perror("mkdtemp"), 1;
    char prefix[4096], pub_path[4200], key_path[4200];
    snprintf(prefix, sizeof prefix, "%s/op", base);
    snprintf(pub_path, sizeof pub_path, "%s.pub", prefix);
    snprintf(key_path, sizeof key_path, "%s.key", prefix);
    agora__error err = {0};
    agora__pubkey pub;
    agora__seckey key;
    if (agora__keygen_files(prefix, NULL, 0, &pub, &err) != 0 ||
        agora__seckey_read(key_path, NULL, 0, &key, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    int refused, versions, fails = 0;
    char first[512];
    double t0 = now_s();
    if (race(base, "signed", n, 0, &key, pub_path, &refused, &versions, first, sizeof first) != 0)
        fails++;
    double t1 = now_s();
    printf("catalog.signed: %d syncs during %d publishes: %d refused, %d distinct versions "
           "accepted, %.1f s\n",
           n, n, refused, versions, t1 - t0);
    if (refused != 0) {
        printf("FAIL: a sync refused a validly published catalog: %s\n", first);
        fails++;
    }
    if (versions < 3) {
        printf("FAIL: the syncs saw %d versions: they did not overlap the publishes\n", versions);
        fails++;
    }
    /* Baseline: the two-file layout, fewer rounds (it only has to show the race exists). */
    int nb = n / 5 < 10 ? 10 : n / 5, bref = 0, bver = 0;
    if (race(base, "pair", nb, 1, &key, pub_path, &bref, &bver, first, sizeof first) != 0)
        fails++;
    printf("baseline, catalog.json + catalog.sig: %d syncs during %d publishes: %d refused%s%s\n",
           nb, nb, bref, bref ? ", e.g. " : "", bref ? first : "");
    agora__seckey_wipe(&key);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
    return fails ? 1 : 0;
}
