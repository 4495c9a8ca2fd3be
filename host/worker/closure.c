/*
 * Dependency closure of a plugin (closure.h). Follows the search order of glibc's ld.so for a
 * DT_NEEDED name N requested by object O: if O has no DT_RUNPATH, the DT_RPATH of O, of the
 * object that loaded O, ... up to the plugin; then O's DT_RUNPATH; then /etc/ld.so.cache; then
 * the default directories. A file of the wrong class or machine is skipped, as the loader does.
 * Names already resolved are not searched again (the loader matches loaded objects by name).
 *
 * Everything is bounded: objects, depth, entries, path lengths, symlink hops, the cache's size
 * and entry count, and the ELF parser's own limits (elfdyn.c). Files are only opened (never
 * followed into) under the allowed prefixes, without blocking, and must be regular files.
 */
#include "closure.h"
#include "elfdyn.h"
#include "proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYMLINK_HOPS     40          /* as the kernel's path walk */
#define CACHE_MAX_BYTES  (16u << 20) /* a Debian ld.so.cache is ~100 KiB */
#define CACHE_MAX_LIBS   (1u << 16)
#define LIB_MAX_BYTES    ((uint64_t)4 << 30) /* libtorch_cpu.so is ~0.5 GiB */
#define PLUGIN_ORIGIN    "/plugin"
#define PLUGIN_PATH      "/plugin/plugin.so"
#define CACHE_MAGIC      "glibc-ld.so.cache1.1"
#define CACHE_FLAG_LIBC6 0x0003u
#define CACHE_FLAG_X8664 0x0300u

static const char *const default_dirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                           "/lib", "/usr/lib"};
static const char *const allowed_prefixes[] = {"/usr/lib/", "/usr/lib64/"};
static const char cache_path[] = "/etc/ld.so.cache";

typedef struct object {
    char found[AGORA__ROOT_PATH_MAX]; /* the path the loader opens (its l_name) */
    char canon[AGORA__ROOT_PATH_MAX]; /* the file behind it */
    char rpath[AGORA__ELF_PATHS_MAX];
    int has_runpath;
    int parent; /* index of the object that loaded it, -1 for the plugin */
    int depth;
} object;

typedef struct state {
    agora__closure *c;
    object *objs;
    size_t n_objs;
    char (*names)[AGORA__ELF_NAME_MAX]; /* DT_NEEDED names already satisfied */
    size_t n_names, cap_names;
    uint8_t *cache;
    size_t cache_len;
    agora__elf_dyn *dyn;                     /* scratch, one object at a time */
    char plugin_rpath[AGORA__ELF_PATHS_MAX]; /* inherited by every object's search */
} state;

/* ---- the entry set ------------------------------------------------------------------------- */

static int entry_index(const agora__closure *c, const char *p)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i], p) == 0)
            return (int)i;
    return -1;
}

static int entry_add(agora__closure *c, const char *p, int link, agora__error *err)
{
    if (entry_index(c, p) >= 0)
        return AGORA_OK;
    if (c->n == AGORA__ROOT_FILES_MAX)
        return agora__error_set(err, AGORA_ELIMIT,
                                "the plugin's libraries need more than %d files and links; "
                                "link fewer libraries",
                                AGORA__ROOT_FILES_MAX);
    if (c->n % 64 == 0) {
        char **e = realloc(c->entries, (c->n + 64) * sizeof *e);
        if (e == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory");
        c->entries = e;
        uint8_t *l = realloc(c->is_link, c->n + 64);
        if (l == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory");
        c->is_link = l;
    }
    c->entries[c->n] = strdup(p);
    if (c->entries[c->n] == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    c->is_link[c->n] = (uint8_t)link;
    c->n++;
    return AGORA_OK;
}

/* ---- path walk with the symlinks it crosses ------------------------------------------------ */

typedef struct hops {
    char link[SYMLINK_HOPS][AGORA__ROOT_PATH_MAX];
    size_t n;
} hops;

/* Canonicalise the absolute path in (like realpath, without opening anything), noting every
 * symlink crossed in h. 0, or AGORA__ERR(ENOENT, ELOOP, ENAMETOOLONG, ENOTDIR...). *mode gets the
 * final object's lstat mode. */
static int walk(const char *in, char res[AGORA__ROOT_PATH_MAX], hops *h, mode_t *mode)
{
    char rest[2 * AGORA__ROOT_PATH_MAX];
    size_t rl = strlen(in);
    if (in[0] != '/')
        return AGORA__ERR(EINVAL);
    if (rl >= sizeof rest)
        return AGORA__ERR(ENAMETOOLONG);
    memcpy(rest, in, rl + 1);
    size_t len = 0; /* res[0..len): canonical prefix, "" for "/" */
    res[0] = '\0';
    h->n = 0;
    *mode = S_IFDIR;
    size_t pos = 0;
    while (rest[pos] != '\0') {
        while (rest[pos] == '/')
            pos++;
        if (rest[pos] == '\0')
            break;
        size_t start = pos;
        while (rest[pos] != '\0' && rest[pos] != '/')
            pos++;
        size_t cl = pos - start;
        if (!S_ISDIR(*mode))
            return AGORA__ERR(ENOTDIR);
        if (cl == 1 && rest[start] == '.')
            continue;
        if (cl == 2 && rest[start] == '.' && rest[start + 1] == '.') {
            while (len > 0 && res[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            res[len] = '\0';
            *mode = S_IFDIR;
            continue;
        }
        if (len + 1 + cl >= AGORA__ROOT_PATH_MAX)
            return AGORA__ERR(ENAMETOOLONG);
        res[len] = '/';
        memcpy(res + len + 1, rest + start, cl);
        res[len + 1 + cl] = '\0';
        struct stat st;
        if (lstat(res, &st) != 0)
            return AGORA__ERR(errno);
        if (!S_ISLNK(st.st_mode)) {
            len += 1 + cl;
            *mode = st.st_mode;
            continue;
        }
        if (h->n == SYMLINK_HOPS)
            return AGORA__ERR(ELOOP);
        memcpy(h->link[h->n++], res, len + 1 + cl + 1);
        char target[AGORA__ROOT_PATH_MAX];
        ssize_t tl = readlink(res, target, sizeof target);
        if (tl < 0)
            return AGORA__ERR(errno);
        if ((size_t)tl >= sizeof target || tl == 0)
            return AGORA__ERR(ENAMETOOLONG);
        target[tl] = '\0';
        res[len] = '\0'; /* the link's directory is the base of a relative target */
        if (target[0] == '/') {
            len = 0;
            res[0] = '\0';
        }
        size_t left = strlen(rest + pos);
        if ((size_t)tl + 1 + left >= sizeof rest)
            return AGORA__ERR(ENAMETOOLONG);
        char next[2 * AGORA__ROOT_PATH_MAX];
        memcpy(next, target, (size_t)tl);
        next[tl] = '/';
        memcpy(next + tl + 1, rest + pos, left + 1);
        memcpy(rest, next, (size_t)tl + 1 + left + 1);
        pos = 0;
    }
    if (len == 0) {
        res[0] = '/';
        res[1] = '\0';
    }
    return 0;
}

static int allowed_file(const char *canon)
{
    for (size_t i = 0; i < sizeof allowed_prefixes / sizeof allowed_prefixes[0]; i++)
        if (strncmp(canon, allowed_prefixes[i], strlen(allowed_prefixes[i])) == 0)
            return 1;
    return 0;
}

/* ---- ld.so.cache --------------------------------------------------------------------------- */

static void cache_load(state *s)
{
    int fd = open(cache_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return; /* no cache: the loader goes to the default directories, and so do we */
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 48 &&
        (uint64_t)st.st_size <= CACHE_MAX_BYTES) {
        s->cache = malloc((size_t)st.st_size);
        size_t got = 0;
        while (s->cache != NULL && got < (size_t)st.st_size) {
            ssize_t n = read(fd, s->cache + got, (size_t)st.st_size - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        if (s->cache != NULL && got == (size_t)st.st_size &&
            memcmp(s->cache, CACHE_MAGIC, strlen(CACHE_MAGIC)) == 0) {
            s->cache_len = got;
        } else {
            free(s->cache); /* the pre-2.32 format, or short: the default directories remain */
            s->cache = NULL;
        }
    }
    close(fd);
}

/* The i-th cache path for name (x86-64 libc6 entries), or NULL. Layout (glibc's
 * cache_file_new): a 48-byte header with nlibs at 20, then 24-byte entries {int32 flags,
 * uint32 key, uint32 value, uint32 osversion, uint64 hwcap}; key and value are offsets of
 * NUL-terminated strings from the start of the file. */
static const char *cache_lookup(const state *s, const char *name, size_t want)
{
    if (s->cache == NULL)
        return NULL;
    uint32_t nlibs;
    memcpy(&nlibs, s->cache + 20, 4);
    if (nlibs > CACHE_MAX_LIBS || (uint64_t)nlibs * 24 > s->cache_len - 48)
        return NULL;
    size_t seen = 0;
    for (uint32_t i = 0; i < nlibs; i++) {
        const uint8_t *e = s->cache + 48 + (size_t)i * 24;
        uint32_t flags, key, value;
        memcpy(&flags, e, 4);
        memcpy(&key, e + 4, 4);
        memcpy(&value, e + 8, 4);
        if ((flags & 0xffu) != CACHE_FLAG_LIBC6 || (flags & 0xff00u) != CACHE_FLAG_X8664)
            continue;
        if (key >= s->cache_len || value >= s->cache_len)
            continue;
        size_t kmax = s->cache_len - key, vmax = s->cache_len - value;
        const char *k = (const char *)s->cache + key;
        const char *v = (const char *)s->cache + value;
        if (memchr(k, '\0', kmax) == NULL || memchr(v, '\0', vmax) == NULL)
            continue;
        if (strcmp(k, name) == 0 && seen++ == want)
            return v;
    }
    return NULL;
}

/* ---- one candidate file -------------------------------------------------------------------- */

/* Try path as the object for a DT_NEEDED name: walk it, check it is an allowed regular file,
 * parse it. 1 found (links and file recorded, s->dyn filled, canon set), 0 not usable (why
 * says why), or a negative code for a hard error. */
static int try_candidate(state *s, const char *path, char canon[AGORA__ROOT_PATH_MAX], char *why,
                         size_t why_len, agora__error *err)
{
    static hops h;
    mode_t mode;
    int rc = walk(path, canon, &h, &mode);
    if (rc != 0) {
        if (rc != AGORA__ENOENT && rc != AGORA__ERR(ENOTDIR))
            snprintf(why, why_len, "%s: %s", path, strerror(-rc - AGORA__ERRNO_BASE));
        return 0;
    }
    if (!S_ISREG(mode)) {
        snprintf(why, why_len, "%s is not a regular file", path);
        return 0;
    }
    if (!allowed_file(canon)) {
        snprintf(why, why_len, "%s resolves to %s, outside /usr/lib", path, canon);
        return 0;
    }
    int fd = open(canon, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "%s: %s", canon, strerror(errno));
        return 0;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 64 ||
        (uint64_t)st.st_size > LIB_MAX_BYTES) {
        close(fd);
        snprintf(why, why_len, "%s is not a regular file of 64 B..4 GiB", canon);
        return 0;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(why, why_len, "mapping %s: %s", canon, strerror(errno));
        return 0;
    }
    agora__error perr = {0};
    rc = agora__elf_dyn_parse(m, (size_t)st.st_size, s->dyn, &perr);
    munmap(m, (size_t)st.st_size);
    if (rc != AGORA_OK) {
        snprintf(why, why_len, "%s: %s", canon, perr.msg);
        return 0;
    }
    for (size_t i = 0; i < h.n; i++)
        if ((rc = entry_add(s->c, h.link[i], 1, err)) != AGORA_OK)
            return rc;
    if ((rc = entry_add(s->c, canon, 0, err)) != AGORA_OK)
        return rc;
    return 1;
}

/* ---- search -------------------------------------------------------------------------------- */

static void dirname_of(const char *p, char *out, size_t cap)
{
    const char *slash = strrchr(p, '/');
    size_t n = slash == NULL ? 0 : (size_t)(slash - p);
    if (n == 0)
        n = 1; /* "/x" -> "/" */
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* Expand $ORIGIN, ${ORIGIN}, $LIB, $PLATFORM in one search directory. 0 ok, -1 unusable. */
static int expand(const char *dir, size_t dl, const char *origin, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < dl;) {
        const char *rep = NULL;
        size_t skip = 0;
        static const struct {
            const char *tok;
            int which;
        } toks[] = {{"$ORIGIN", 0}, {"${ORIGIN}", 0}, {"$LIB", 1},
                    {"${LIB}", 1},  {"$PLATFORM", 2}, {"${PLATFORM}", 2}};
        if (dir[i] == '$') {
            for (size_t t = 0; t < sizeof toks / sizeof toks[0]; t++) {
                size_t tl = strlen(toks[t].tok);
                if (i + tl <= dl && memcmp(dir + i, toks[t].tok, tl) == 0) {
                    if (toks[t].which == 0 && origin == NULL)
                        return -1; /* the plugin's $ORIGIN: see search_list */
                    rep = toks[t].which == 0   ? origin
                          : toks[t].which == 1 ? "lib/x86_64-linux-gnu"
                                               : "x86_64";
                    skip = tl;
                    break;
                }
            }
            if (rep == NULL)
                return -1; /* an unknown token: the loader drops the entry too */
        }
        if (rep != NULL) {
            size_t rl = strlen(rep);
            if (o + rl >= cap)
                return -1;
            memcpy(out + o, rep, rl);
            o += rl;
            i += skip;
        } else {
            if (o + 1 >= cap)
                return -1;
            out[o++] = dir[i++];
        }
    }
    out[o] = '\0';
    return out[0] == '/' ? 0 : -1; /* relative entries depend on the cwd: not used */
}

/* Try name in each directory of a colon-separated list. Same returns as try_candidate. */
static int search_list(state *s, const char *list, const char *origin, const char *name,
                       char canon[AGORA__ROOT_PATH_MAX], char *found, char *why, size_t why_len,
                       agora__error *err)
{
    const char *p = list;
    while (*p != '\0') {
        const char *end = strchr(p, ':');
        size_t dl = end != NULL ? (size_t)(end - p) : strlen(p);
        char dir[AGORA__ROOT_PATH_MAX];
        /* $ORIGIN of the plugin names /plugin inside the sandbox, which holds the plugin
         * alone: nothing there to find (docs/binary-environment.md). */
        if (dl > 0 && expand(p, dl, origin, dir, sizeof dir) == 0) {
            char path[AGORA__ROOT_PATH_MAX];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path) {
                int rc = try_candidate(s, path, canon, why, why_len, err);
                if (rc != 0) {
                    if (rc > 0)
                        memcpy(found, path, strlen(path) + 1);
                    return rc;
                }
            }
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return 0;
}

static int name_done(const state *s, const char *name)
{
    for (size_t i = 0; i < s->n_names; i++)
        if (strcmp(s->names[i], name) == 0)
            return 1;
    return 0;
}

static int name_add(state *s, const char *name, agora__error *err)
{
    if (s->n_names == s->cap_names) {
        size_t cap = s->cap_names ? s->cap_names * 2 : 64;
        void *n = realloc(s->names, cap * sizeof *s->names);
        if (n == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory");
        s->names = n;
        s->cap_names = cap;
    }
    snprintf(s->names[s->n_names++], AGORA__ELF_NAME_MAX, "%s", name);
    return AGORA_OK;
}

static const char *object_name(const state *s, int idx)
{
    return idx < 0 ? "the plugin" : s->objs[idx].found;
}

/* Resolve name for the object at index req (-1: the plugin itself, whose RUNPATH/RPATH and
 * flag are in req_dyn). required: a miss is an error. */
static int resolve_one(state *s, int req, const char *rpath_req, int runpath_req,
                       const char *runpath, const char *name, int required, agora__error *err)
{
    if (name_done(s, name))
        return AGORA_OK;
    char canon[AGORA__ROOT_PATH_MAX], found[AGORA__ROOT_PATH_MAX], why[600] = "";
    char origin[AGORA__ROOT_PATH_MAX];
    const char *org = NULL;
    if (req >= 0) {
        dirname_of(s->objs[req].found, origin, sizeof origin);
        org = origin;
    }
    int rc = 0;
    if (strchr(name, '/') != NULL) {
        if (name[0] != '/')
            return agora__error_set(err, AGORA_EINVAL,
                                    "%s needs '%s', a relative path; name libraries by soname",
                                    object_name(s, req), name);
        rc = try_candidate(s, name, canon, why, sizeof why, err);
        if (rc > 0)
            snprintf(found, sizeof found, "%s", name);
    }
    /* DT_RPATH of the requester and its loaders, unless the requester has DT_RUNPATH. */
    if (rc == 0 && strchr(name, '/') == NULL && !runpath_req) {
        if (rpath_req[0] != '\0')
            rc = search_list(s, rpath_req, org, name, canon, found, why, sizeof why, err);
        for (int a = req >= 0 ? s->objs[req].parent : -2; rc == 0 && a >= 0;
             a = s->objs[a].parent) {
            char ao[AGORA__ROOT_PATH_MAX];
            dirname_of(s->objs[a].found, ao, sizeof ao);
            if (s->objs[a].rpath[0] != '\0')
                rc = search_list(s, s->objs[a].rpath, ao, name, canon, found, why, sizeof why, err);
        }
        /* ... and the plugin's own: the root of every chain */
        if (rc == 0 && req >= 0 && s->plugin_rpath[0] != '\0')
            rc = search_list(s, s->plugin_rpath, NULL, name, canon, found, why, sizeof why, err);
    }
    if (rc == 0 && strchr(name, '/') == NULL && runpath[0] != '\0')
        rc = search_list(s, runpath, org, name, canon, found, why, sizeof why, err);
    for (size_t k = 0; rc == 0 && strchr(name, '/') == NULL && k < 4; k++) {
        const char *v = cache_lookup(s, name, k);
        if (v == NULL)
            break;
        if (v[0] == '/' && strlen(v) < AGORA__ROOT_PATH_MAX) {
            rc = try_candidate(s, v, canon, why, sizeof why, err);
            if (rc > 0)
                snprintf(found, sizeof found, "%s", v);
        }
    }
    for (size_t d = 0;
         rc == 0 && strchr(name, '/') == NULL && d < sizeof default_dirs / sizeof default_dirs[0];
         d++)
        rc = search_list(s, default_dirs[d], org, name, canon, found, why, sizeof why, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (!required)
            return AGORA_OK;
        return agora__error_set(err, AGORA__ENOENT,
                                "%s needs %s, which is not installed on this host under "
                                "/usr/lib%s%s; install the Debian package that provides it, or "
                                "link it into the plugin statically",
                                object_name(s, req), name, why[0] ? " (last candidate: " : "",
                                why[0] ? why : "");
    }
    if ((rc = name_add(s, name, err)) != AGORA_OK)
        return rc;
    /* A new object? (two names can resolve to one file) */
    for (size_t i = 0; i < s->n_objs; i++)
        if (strcmp(s->objs[i].found, found) == 0 || strcmp(s->objs[i].canon, canon) == 0)
            return AGORA_OK;
    int depth = req >= 0 ? s->objs[req].depth + 1 : 1;
    if (depth > AGORA__CLOSURE_DEPTH_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "the libraries nest deeper than %d levels",
                                AGORA__CLOSURE_DEPTH_MAX);
    if (s->n_objs == AGORA__CLOSURE_OBJECTS_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "the plugin needs more than %d shared objects",
                                AGORA__CLOSURE_OBJECTS_MAX);
    object *o = &s->objs[s->n_objs++];
    memset(o, 0, sizeof *o);
    snprintf(o->found, sizeof o->found, "%s", found);
    snprintf(o->canon, sizeof o->canon, "%s", canon);
    /* The DT_RPATH/RUNPATH of the new object come from the parse try_candidate just did. */
    snprintf(o->rpath, sizeof o->rpath, "%s", s->dyn->has_runpath ? "" : s->dyn->rpath);
    o->has_runpath = s->dyn->has_runpath;
    o->parent = req;
    o->depth = depth;
    s->c->n_objects++;
    return AGORA_OK;
}

/* The DT_NEEDED names of one object (its parse in s->dyn is re-done: the scratch is shared). */
static int expand_object(state *s, int idx, agora__error *err)
{
    const object *o = &s->objs[idx];
    char canon[AGORA__ROOT_PATH_MAX], why[600];
    /* Re-parse (the scratch held a later object): cheap, the file is in the page cache. */
    int rc = try_candidate(s, o->found, canon, why, sizeof why, err);
    if (rc <= 0)
        return rc < 0 ? rc
                      : agora__error_set(err, AGORA_EINVAL, "%s changed while resolving: %s",
                                         o->found, why);
    size_t n = s->dyn->n_needed;
    static char names[AGORA__ELF_NEEDED_MAX][AGORA__ELF_NAME_MAX];
    memcpy(names, s->dyn->needed, n * sizeof names[0]);
    char runpath[AGORA__ELF_PATHS_MAX];
    snprintf(runpath, sizeof runpath, "%s", s->dyn->runpath);
    char rpath[AGORA__ELF_PATHS_MAX];
    snprintf(rpath, sizeof rpath, "%s", o->rpath);
    int has_runpath = o->has_runpath;
    for (size_t i = 0; i < n; i++)
        if ((rc = resolve_one(s, idx, rpath, has_runpath, runpath, names[i], 1, err)) != AGORA_OK)
            return rc;
    return AGORA_OK;
}

void agora__closure_free(agora__closure *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->entries[i]);
    free(c->entries);
    free(c->is_link);
    memset(c, 0, sizeof *c);
}

int agora__closure_resolve(const uint8_t *plugin, size_t len, agora__closure *out,
                           agora__error *err)
{
    memset(out, 0, sizeof *out);
    state s = {.c = out};
    s.objs = calloc(AGORA__CLOSURE_OBJECTS_MAX, sizeof *s.objs);
    s.dyn = malloc(sizeof *s.dyn);
    static char names[AGORA__ELF_NEEDED_MAX][AGORA__ELF_NAME_MAX];
    int rc = AGORA_OK;
    if (s.objs == NULL || s.dyn == NULL) {
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        goto done;
    }
    cache_load(&s);
    agora__error perr = {0};
    rc = agora__elf_dyn_parse(plugin, len, s.dyn, &perr);
    if (rc != AGORA_OK) {
        rc = agora__error_set(err, rc, "the plugin binary: %s", perr.msg);
        goto done;
    }
    size_t n = s.dyn->n_needed;
    memcpy(names, s.dyn->needed, n * sizeof names[0]);
    char runpath[AGORA__ELF_PATHS_MAX], rpath[AGORA__ELF_PATHS_MAX];
    snprintf(runpath, sizeof runpath, "%s", s.dyn->runpath);
    snprintf(rpath, sizeof rpath, "%s", s.dyn->has_runpath ? "" : s.dyn->rpath);
    int has_runpath = s.dyn->has_runpath;
    snprintf(s.plugin_rpath, sizeof s.plugin_rpath, "%s", rpath);
    /* The plugin's own DT_NEEDED, then glibc's implicit libgcc_s. Objects found are expanded
     * breadth-first; the plugin's RPATH is inherited through req == -1 below. */
    for (size_t i = 0; i < n && rc == AGORA_OK; i++)
        rc = resolve_one(&s, -1, rpath, has_runpath, runpath, names[i], 1, err);
    if (rc == AGORA_OK)
        rc = resolve_one(&s, -1, rpath, has_runpath, runpath, "libgcc_s.so.1", 0, err);
    for (size_t i = 0; i < s.n_objs && rc == AGORA_OK; i++)
        rc = expand_object(&s, (int)i, err);
done:
    free(s.objs);
    free(s.dyn);
    free(s.names);
    free(s.cache);
    if (rc != AGORA_OK)
        agora__closure_free(out);
    return rc;
}
