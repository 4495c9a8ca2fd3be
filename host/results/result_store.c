/*
 * Stored results in the clinic home:
 *   HOME/results/<sha256(study uid) hex>/study.json        {"study_uid": ...}: the index entry
 *   HOME/results/<sha256(study uid) hex>/<invocation>.json the stored result
 *   HOME/results/<sha256(study uid) hex>/<sha256>.mask     mask buffers, named by content
 *   HOME/results/urgent/<invocation>.json                  triage index (result_triage.c)
 * Directories are 0700 and files 0600: results are clinical data. Every file is written to
 * a temp file, fsynced, then linked (result: first writer wins) or renamed (content-named
 * files: identical anyway) into place, and the directory fsynced.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "results_private.h"

size_t agora__results_mask_bytes(const json_t *mask)
{
    uint64_t rows = (uint64_t)json_integer_value(json_object_get(mask, "rows"));
    uint64_t cols = (uint64_t)json_integer_value(json_object_get(mask, "columns"));
    uint64_t frames = (uint64_t)json_integer_value(json_object_get(mask, "frames"));
    uint64_t bits = (uint64_t)json_integer_value(json_object_get(mask, "bits"));
    /* each factor is < 2^17 and bits/8 <= 2, so the product is < 2^52: no overflow */
    uint64_t bytes = rows * cols * frames * (bits / 8);
    return bytes > SIZE_MAX ? SIZE_MAX : (size_t)bytes;
}

int agora__results_study_dir(const char *home, const char *study_uid, char *buf, size_t size,
                             agora__error *err)
{
    if (home == NULL || !agora__results_uid_valid(study_uid))
        return agora__error_set(err, AGORA_EINVAL,
                                "the study is not named by a DICOM Study Instance UID");
    uint8_t h[32];
    char hex[65];
    agora__sha256(study_uid, strlen(study_uid), h);
    agora__hex(h, 32, hex);
    return agora__home_entry_path(home, AGORA__HOME_RESULTS, hex, NULL, buf, size, err);
}

int agora__results_mask_path(const char *home, const char *study_uid, const char *sha256_hex,
                             char *buf, size_t size, agora__error *err)
{
    char dir[4096];
    int rc = agora__results_study_dir(home, study_uid, dir, sizeof dir, err);
    if (rc != 0)
        return rc;
    if (sha256_hex == NULL || strlen(sha256_hex) != 64 ||
        strspn(sha256_hex, "0123456789abcdef") != 64)
        return agora__error_set(err, AGORA_EINVAL, "mask name is not a sha256 hex digest");
    if ((size_t)snprintf(buf, size, "%s/%s.mask", dir, sha256_hex) >= size)
        return agora__error_set(err, AGORA_ELIMIT, "home path is too long");
    return 0;
}

static int fsync_dir(const char *dir, agora__error *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot open %s: %s", dir, strerror(errno));
    int rc = fsync(fd) == 0 ? 0
                            : agora__error_set(err, AGORA__ERR(errno), "cannot sync %s: %s", dir,
                                               strerror(errno));
    close(fd);
    return rc;
}

/* Write data to a new file at path unless one exists (link: first writer wins). */
int agora__results_write_once(const char *dir, const char *path, const void *data, size_t len,
                              int *already, agora__error *err)
{
    *already = 0;
    if (access(path, F_OK) == 0) {
        *already = 1;
        return 0;
    }
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.tmp.XXXXXX", dir) >= sizeof tmp)
        return agora__error_set(err, AGORA_ELIMIT, "home path is too long");
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno),
                                "cannot create a file in %s: %s; check the disk "
                                "and permissions",
                                dir, strerror(errno));
    int rc = 0;
    const uint8_t *p = data;
    size_t left = len;
    while (left > 0 && rc == 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = agora__error_set(err, n < 0 ? AGORA__ERR(errno) : AGORA_EINTERNAL,
                                  "cannot write %s: %s", tmp,
                                  n < 0 ? strerror(errno) : "short write");
        else
            p += n, left -= (size_t)n;
    }
    if (rc == 0 && fchmod(fd, 0600) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot chmod %s: %s", tmp, strerror(errno));
    if (rc == 0 && fsync(fd) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot sync %s: %s", tmp, strerror(errno));
    close(fd);
    if (rc == 0 && link(tmp, path) != 0) {
        if (errno == EEXIST)
            *already = 1;
        else
            rc = agora__error_set(err, AGORA__ERR(errno), "cannot create %s: %s", path,
                                  strerror(errno));
    }
    unlink(tmp);
    if (rc == 0 && !*already)
        rc = fsync_dir(dir, err);
    return rc;
}

static int ensure_study_dir(const char *home, const char *study_uid, char *dir, size_t size,
                            agora__error *err)
{
    int rc = agora__results_study_dir(home, study_uid, dir, size, err);
    if (rc != 0)
        return rc;
    if ((rc = agora__mkdirs(dir, 0700, err)) != 0)
        return rc;
    char path[4200];
    snprintf(path, sizeof path, "%s/study.json", dir);
    json_t *idx = json_pack("{s:s}", "study_uid", study_uid);
    char *text = idx ? json_dumps(idx, JSON_COMPACT) : NULL;
    json_decref(idx);
    if (text == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    int already;
    rc = agora__results_write_once(dir, path, text, strlen(text), &already, err);
    free(text);
    return rc;
}

int agora__results_match_masks(const json_t *doc, const agora__results_mask *masks, size_t n_masks,
                               char (**sums_out)[65], agora__error *err)
{
    /* Every mask region needs its buffer, every buffer a region. */
    int rc = 0;
    const json_t *regions = json_object_get(doc, "regions");
    char(*sums)[65] = n_masks ? calloc(n_masks, sizeof *sums) : NULL;
    char *used = n_masks ? calloc(n_masks, 1) : NULL;
    if (n_masks && (sums == NULL || used == NULL)) {
        free(sums);
        free(used);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < n_masks; k++) {
        uint8_t h[32];
        agora__sha256(masks[k].data, masks[k].len, h);
        agora__hex(h, 32, sums[k]);
    }
    size_t i;
    json_t *r;
    json_array_foreach((json_t *)regions, i, r)
    {
        const json_t *m = json_object_get(r, "mask");
        if (m == NULL || rc != 0)
            continue;
        const char *want = json_string_value(json_object_get(m, "sha256"));
        size_t k = 0;
        while (k < n_masks && strcmp(sums[k], want) != 0)
            k++;
        if (k == n_masks)
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "/regions/%zu/mask: no mask buffer with "
                                  "this sha256 was handed over; pass the plugin's buffer",
                                  i);
        else if (masks[k].len != agora__results_mask_bytes(m))
            rc = agora__error_set(err, AGORA_EINVAL,
                                  "/regions/%zu/mask: buffer is %zu bytes "
                                  "but the geometry needs %zu",
                                  i, masks[k].len, agora__results_mask_bytes(m));
        else
            used[k] = 1;
    }
    for (size_t k = 0; k < n_masks && rc == 0; k++)
        if (!used[k])
            rc = agora__error_set(err, AGORA_EINVAL, "mask buffer %zu belongs to no region", k);
    free(used);
    if (rc != 0 || sums_out == NULL)
        free(sums);
    else
        *sums_out = sums;
    return rc;
}

int agora__results_store(const char *home, const json_t *doc, const agora__results_mask *masks,
                         size_t n_masks, int *already_out, agora__error *err)
{
    int already_local;
    int *already = already_out ? already_out : &already_local;
    *already = 0;
    int rc = agora__results_validate(doc, AGORA__RESULT_STORED, err);
    if (rc != 0)
        return agora__error_prefix(err, "refusing to store an invalid result");
    char(*sums)[65] = NULL;
    rc = agora__results_match_masks(doc, masks, n_masks, &sums, err);
    if (rc != 0)
        return rc;
    char dir[4096], path[4200];
    const char *study = json_string_value(json_object_get(doc, "study_uid"));
    if (rc == 0)
        rc = ensure_study_dir(home, study, dir, sizeof dir, err);
    /* Masks first: a stored result never names a mask that is not on disk. */
    for (size_t k = 0; k < n_masks && rc == 0; k++) {
        int dup = 0;
        snprintf(path, sizeof path, "%s/%s.mask", dir, sums[k]);
        for (size_t j = 0; j < k; j++)
            dup |= strcmp(sums[j], sums[k]) == 0;
        if (!dup)
            rc = agora__results_write_once(dir, path, masks[k].data, masks[k].len, &(int){0}, err);
    }
    free(sums);
    /* The urgent mark before the result: an urgent result is never stored unmarked. */
    if (rc == 0)
        rc = agora__results_urgent_mark(home, doc, err);
    if (rc != 0)
        return rc;
    snprintf(path, sizeof path, "%s/%s.json", dir,
             json_string_value(json_object_get(doc, "invocation_id")));
    char *text = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (text == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    rc = agora__results_write_once(dir, path, text, strlen(text), already, err);
    free(text);
    return rc;
}

int agora__results_load_json(const char *path, json_t **out, agora__error *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = agora__read_file(path, AGORA__RESULTS_MAX_FILE, &buf, &len, err);
    if (rc != 0)
        return rc;
    json_error_t je;
    *out = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (*out == NULL)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is not JSON (line %d); the store was "
                                "damaged: restore it from a backup",
                                path, je.line);
    return 0;
}

int agora__results_load(const char *home, const char *study_uid, const char *invocation_id,
                        json_t **out, agora__error *err)
{
    *out = NULL;
    char dir[4096], path[4200];
    int rc = agora__results_study_dir(home, study_uid, dir, sizeof dir, err);
    if (rc != 0)
        return rc;
    if (invocation_id == NULL || strlen(invocation_id) != 32 ||
        strspn(invocation_id, "0123456789abcdef") != 32)
        return agora__error_set(err, AGORA_EINVAL, "invocation id must be 32 lower-case hex");
    snprintf(path, sizeof path, "%s/%s.json", dir, invocation_id);
    json_t *doc = NULL;
    if ((rc = agora__results_load_json(path, &doc, err)) != 0)
        return rc;
    rc = agora__results_validate(doc, AGORA__RESULT_STORED, err);
    if (rc == 0 &&
        (strcmp(json_string_value(json_object_get(doc, "study_uid")), study_uid) != 0 ||
         strcmp(json_string_value(json_object_get(doc, "invocation_id")), invocation_id) != 0))
        rc = agora__error_set(err, AGORA_EINVAL, "%s belongs to another study or invocation", path);
    if (rc != 0) {
        json_decref(doc);
        return agora__error_prefix(err, "stored result %s", path);
    }
    *out = doc;
    return 0;
}

static int by_created(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(x, "created")),
                   json_string_value(json_object_get(y, "created")));
    if (c != 0)
        return c;
    return strcmp(json_string_value(json_object_get(x, "invocation_id")),
                  json_string_value(json_object_get(y, "invocation_id")));
}

int agora__results_list(const char *home, const char *study_uid, json_t **out, agora__error *err)
{
    *out = NULL;
    char dir[4096];
    int rc = agora__results_study_dir(home, study_uid, dir, sizeof dir, err);
    if (rc != 0)
        return rc;
    json_t **docs = NULL;
    size_t n = 0;
    DIR *d = opendir(dir);
    if (d == NULL && errno != ENOENT)
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", dir, strerror(errno));
    if (d != NULL) {
        docs = calloc(AGORA__RESULTS_MAX_PER_STUDY, sizeof *docs);
        if (docs == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        struct dirent *e;
        while (rc == 0 && (e = readdir(d)) != NULL) {
            size_t len = strlen(e->d_name);
            if (len != 37 || strcmp(e->d_name + 32, ".json") != 0 ||
                strspn(e->d_name, "0123456789abcdef") != 32)
                continue;
            if (n == AGORA__RESULTS_MAX_PER_STUDY) {
                rc = agora__error_set(err, AGORA_ELIMIT, "the study has more than %d results",
                                      AGORA__RESULTS_MAX_PER_STUDY);
                break;
            }
            char id[33];
            memcpy(id, e->d_name, 32);
            id[32] = '\0';
            rc = agora__results_load(home, study_uid, id, &docs[n], err);
            if (rc == 0)
                n++;
        }
        closedir(d);
    }
    json_t *arr = rc == 0 ? json_array() : NULL;
    if (rc == 0 && arr == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    if (rc == 0 && n > 0)
        qsort(docs, n, sizeof *docs, by_created);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0)
            json_array_append(arr, docs[i]);
        json_decref(docs[i]);
    }
    free(docs);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

int agora__results_studies(const char *home, json_t **out, agora__error *err)
{
    *out = NULL;
    char root[4096];
    int prc = agora__home_path(home, AGORA__HOME_RESULTS, root, sizeof root, err);
    if (prc != 0)
        return prc;
    json_t *arr = json_array();
    if (arr == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    DIR *d = opendir(root);
    if (d == NULL) {
        if (errno == ENOENT) {
            *out = arr;
            return 0;
        }
        json_decref(arr);
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", root,
                                strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 64 || strspn(e->d_name, "0123456789abcdef") != 64)
            continue;
        char path[4200];
        json_t *idx = NULL;
        if (agora__home_entry_path(home, AGORA__HOME_RESULTS, e->d_name, "study.json", path,
                                   sizeof path, NULL) != 0 ||
            agora__results_load_json(path, &idx, err) != 0)
            continue; /* a study directory being created right now */
        const char *uid = json_string_value(json_object_get(idx, "study_uid"));
        if (uid && agora__results_uid_valid(uid))
            json_array_append_new(arr, json_string(uid));
        json_decref(idx);
        if (json_array_size(arr) > 1000000)
            rc = agora__error_set(err, AGORA_ELIMIT, "more than 10^6 studies in %s", root);
    }
    closedir(d);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    size_t n = json_array_size(arr);
    json_t **v = malloc((n ? n : 1) * sizeof *v);
    if (v == NULL) {
        json_decref(arr);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(arr, i));
    qsort(v, n, sizeof *v, str_cmp);
    json_array_clear(arr);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
    agora__error_clear(err);
    *out = arr;
    return 0;
}
