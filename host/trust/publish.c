/* Publishing the operator's catalog directory to where clinics read it (`agora catalog
 * publish`), in the order that keeps every moment of the destination consistent for a reader:
 * first the blobs (content-addressed: a new name, never a changed one), then new root versions
 * (never replaced), then the catalog, whose signature and bytes arrive together in
 * catalog.signed by one rename. A clinic that syncs during a publish sees the old catalog or
 * the new one, with the blobs and roots either needs already in place. */
#include "trust_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Copy SRC/blobs/<hex> to DEST/blobs/<hex> unless it is there with the pinned size, checking the
 * bytes against the pin while copying (a damaged source blob is not published). */
static int copy_blob(const char *src, const char *dest, const uint8_t sha[32], uint64_t size,
                     unsigned *copied, agora__error *err)
{
    char hex[65], from[4096], to[4096];
    agora__hex(sha, 32, hex);
    int rc = agora__path(from, sizeof from, err, "%s/blobs/%s", src, hex);
    if (rc == 0)
        rc = agora__path(to, sizeof to, err, "%s/blobs/%s", dest, hex);
    if (rc != 0)
        return rc;
    struct stat st;
    if (stat(to, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size)
        return 0;
    int in = open(from, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (in < 0)
        return agora__error_set(err, AGORA__ERR(errno),
                                "cannot open %s: %s; the catalog pins a blob its directory lacks",
                                from, strerror(errno));
    agora__atomic_file f;
    uint8_t got[32];
    rc = agora__atomic_open(to, 0644, &f, err);
    if (rc == 0 && (fstat(in, &st) != 0 || (uint64_t)st.st_size != size))
        rc = agora__error_set(err, AGORA_EINVAL,
                              "%s is not the %llu bytes the catalog pins; not published", from,
                              (unsigned long long)size);
    if (rc == 0)
        rc = agora__copy_hash(in, 0, size, f.fd, got, from, err);
    if (rc == 0 && memcmp(got, sha, 32) != 0)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "%s does not match the sha256 the catalog pins; not published", from);
    close(in);
    if (rc == 0) {
        rc = agora__atomic_commit(&f, err);
        if (rc == 0)
            (*copied)++;
    } else {
        agora__atomic_abort(&f);
    }
    return rc;
}

/* SRC/root/N.root for N = 1, 2, ... into DEST/root/ when missing there; one already there must
 * be the same bytes (a root version is never replaced). */
static int copy_roots(const char *src, const char *dest, unsigned *copied, agora__error *err)
{
    for (uint64_t v = 1;; v++) {
        char from[4096], to[4096];
        int rc = agora__path(from, sizeof from, err, "%s/" AGORA__ROOT_DIR "/%llu.root", src,
                             (unsigned long long)v);
        if (rc == 0)
            rc = agora__path(to, sizeof to, err, "%s/" AGORA__ROOT_DIR "/%llu.root", dest,
                             (unsigned long long)v);
        if (rc != 0)
            return rc;
        uint8_t *a, *b;
        size_t alen, blen;
        size_t max = AGORA__ROOT_MAX + AGORA__ROOT_SIGS_MAX * AGORA__SIG_TEXT_MAX;
        rc = agora__read_file(from, max, &a, &alen, err);
        if (rc == AGORA__ENOENT) {
            agora__error_clear(err);
            return 0;
        }
        if (rc != 0)
            return rc;
        rc = agora__read_file(to, max, &b, &blen, NULL);
        if (rc == 0) {
            int same = alen == blen && memcmp(a, b, alen) == 0;
            free(a);
            free(b);
            if (!same)
                return agora__error_set(err, AGORA_EINVAL,
                                        "%s differs from %s: a published root version is never "
                                        "replaced; refused",
                                        to, from);
            continue;
        }
        rc = agora__root_write(dest, v, a, alen, err);
        free(a);
        if (rc != 0)
            return rc;
        (*copied)++;
    }
}

int agora__catalog_publish(const char *src, const char *dest, agora__publish_stats *st,
                           agora__error *err)
{
    memset(st, 0, sizeof *st);
    uint8_t *doc = NULL, *sig = NULL, *old_doc = NULL, *old_sig = NULL, *both = NULL;
    size_t dl = 0, sl = 0, odl = 0, osl = 0;
    agora__catalog c = {0}, old = {0};
    int rc = agora__catalog_read_dir(src, &doc, &dl, &sig, &sl, NULL, err);
    /* The operator's own catalog, parsed to find its blobs; clinics verify the signature. */
    if (rc == 0)
        rc = agora__catalog_parse(doc, dl, &c, err);
    if (rc != 0)
        goto out;
    int missing = 0;
    if (agora__catalog_read_dir(dest, &old_doc, &odl, &old_sig, &osl, &missing, NULL) == 0 &&
        agora__catalog_parse(old_doc, odl, &old, NULL) == 0 && old.version > c.version) {
        rc = agora__error_set(err, AGORA_EINVAL,
                              "%s holds catalog version %llu, newer than %s's version %llu; "
                              "refused (publishing it would be a rollback)",
                              dest, (unsigned long long)old.version, src,
                              (unsigned long long)c.version);
        goto out;
    }
    char blobs[4096];
    rc = agora__path(blobs, sizeof blobs, err, "%s/blobs", dest);
    if (rc == 0)
        rc = agora__mkdirs(blobs, 0755, err);
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        const agora__cat_entry *e = &c.entries[i];
        rc = copy_blob(src, dest, e->manifest_sha, e->manifest_size, &st->blobs, err);
        if (rc == 0)
            rc = copy_blob(src, dest, e->plugin_sha, e->plugin_size, &st->blobs, err);
        for (uint32_t a = 0; rc == 0 && a < e->n_assets; a++)
            rc = copy_blob(src, dest, e->assets[a].sha, e->assets[a].size, &st->blobs, err);
    }
    if (rc == 0)
        rc = copy_roots(src, dest, &st->roots, err);
    if (rc != 0)
        goto out;
    /* The signature line, exactly one '\n', then the bytes (as the operator's catalog.signed). */
    if (sl > 0 && sig[sl - 1] == '\n')
        sl--;
    both = malloc(sl + 1 + dl);
    if (both == NULL) {
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(both, sig, sl);
    both[sl] = '\n';
    memcpy(both + sl + 1, doc, dl);
    char one[4096], jpath[4096], spath[4096];
    rc = agora__path(one, sizeof one, err, "%s/" AGORA__CATALOG_SIGNED, dest);
    if (rc == 0)
        rc = agora__path(jpath, sizeof jpath, err, "%s/catalog.json", dest);
    if (rc == 0)
        rc = agora__path(spath, sizeof spath, err, "%s/catalog.sig", dest);
    /* The unit clinics read first; the pair after it for hosts older than catalog.signed. */
    if (rc == 0)
        rc = agora__write_file_atomic(one, both, sl + 1 + dl, 0644, err);
    if (rc == 0)
        rc = agora__write_file_atomic(jpath, doc, dl, 0644, err);
    if (rc == 0)
        rc = agora__write_file_atomic(spath, both, sl + 1, 0644, err);
    if (rc == 0)
        st->version = c.version;
out:
    agora__catalog_free(&c);
    agora__catalog_free(&old);
    free(doc);
    free(sig);
    free(old_doc);
    free(old_sig);
    free(both);
    return rc;
}
