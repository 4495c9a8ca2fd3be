/*
 * Triage index of the results store (org.agora.triage/1):
 *   HOME/results/urgent/<invocation>.json  {"study_uid", "plugin_id", "plugin_version"}
 * written (first writer wins, 0600) by agora__results_store BEFORE the urgent result itself, so
 * an urgent result is never stored unmarked; a mark whose result is missing (a crash between
 * the two writes) is ignored. `agora results studies` sorts urgent studies first and
 * `agora usage` counts urgent results per plugin from this index without reading every result.
 * The reason is never copied here: it is read from the (re-validated) stored result.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agora_result_limits.h"
#include "home.h"
#include "results_private.h"

#define MAX_MARK_BYTES 4096     /* one index entry: three short strings */
#define MAX_URGENT     1000000u /* index entries read (one per urgent result) */

static int urgent_dir(const char *home, char *buf, size_t size, agora__error *err)
{
    return agora__home_entry_path(home, AGORA__HOME_RESULTS, "urgent", NULL, buf, size, err);
}

int agora__results_urgent_mark(const char *home, const json_t *doc, agora__error *err)
{
    if (!json_is_true(json_object_get(json_object_get(doc, "triage"), "urgent")))
        return 0;
    const json_t *plugin = json_object_get(doc, "plugin");
    char dir[4096], path[4200];
    int rc = urgent_dir(home, dir, sizeof dir, err);
    if (rc == 0)
        rc = agora__mkdirs(dir, 0700, err);
    if (rc != 0)
        return rc;
    snprintf(path, sizeof path, "%s/%s.json", dir,
             json_string_value(json_object_get(doc, "invocation_id")));
    json_t *mark = json_pack("{s:O,s:O,s:O}", "study_uid", json_object_get(doc, "study_uid"),
                             "plugin_id", json_object_get(plugin, "id"), "plugin_version",
                             json_object_get(plugin, "version"));
    char *text = mark ? json_dumps(mark, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(mark);
    if (text == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    rc = agora__results_write_once(dir, path, text, strlen(text), &(int){0}, err);
    free(text);
    return rc;
}

static int bounded_string(const json_t *v, size_t max)
{
    const char *s = json_string_value(v);
    return s != NULL && s[0] != '\0' && strlen(s) <= max &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "abcdefghijklmnopqrstuvwxyz"
                     "0123456789._+-") == strlen(s);
}

/* One index entry, checked like any file of the store: bounded, JSON, exactly its keys. */
static int load_mark(const char *dir, const char *name, json_t **out, agora__error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = agora__read_file(path, MAX_MARK_BYTES, &buf, &len, err);
    if (rc != 0)
        return rc;
    json_error_t je;
    json_t *m = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!json_is_object(m) || json_object_size(m) != 3 ||
        !agora__results_uid_valid(json_string_value(json_object_get(m, "study_uid"))) ||
        !bounded_string(json_object_get(m, "plugin_id"), AGORA__RESULT_PLUGIN_ID_MAX) ||
        !bounded_string(json_object_get(m, "plugin_version"), AGORA__RESULT_PLUGIN_VERSION_MAX)) {
        json_decref(m);
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is not a triage index entry; the store was damaged: restore "
                                "it from a backup or remove the file",
                                path);
    }
    char id[33];
    memcpy(id, name, 32);
    id[32] = '\0';
    json_object_set_new(m, "invocation_id", json_string(id));
    *out = m;
    return 0;
}

int agora__results_urgent_index(const char *home, json_t **out, agora__error *err)
{
    *out = NULL;
    char dir[4096];
    int rc = urgent_dir(home, dir, sizeof dir, err);
    if (rc != 0)
        return rc;
    json_t *arr = json_array();
    if (arr == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    DIR *d = opendir(dir);
    if (d == NULL && errno != ENOENT) {
        json_decref(arr);
        return agora__error_set(err, AGORA__ERR(errno), "cannot read %s: %s", dir, strerror(errno));
    }
    struct dirent *e;
    while (d != NULL && rc == 0 && (e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 37 || strcmp(e->d_name + 32, ".json") != 0 ||
            strspn(e->d_name, "0123456789abcdef") != 32)
            continue;
        if (json_array_size(arr) == MAX_URGENT) {
            rc = agora__error_set(err, AGORA_ELIMIT, "more than %u urgent results in %s",
                                  MAX_URGENT, dir);
            break;
        }
        json_t *m = NULL;
        if ((rc = load_mark(dir, e->d_name, &m, err)) == 0)
            json_array_append_new(arr, m);
    }
    if (d != NULL)
        closedir(d);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}

/* Urgent first; among urgent studies the one whose first urgent result is oldest first (the
 * worklist order); then by Study Instance UID. */
static int worklist_order(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int ux = json_is_true(json_object_get(x, "urgent")),
        uy = json_is_true(json_object_get(y, "urgent"));
    if (ux != uy)
        return uy - ux;
    if (ux) {
        const char *cx = json_string_value(json_object_get(x, "first_urgent"));
        const char *cy = json_string_value(json_object_get(y, "first_urgent"));
        int c = strcmp(cx, cy);
        if (c != 0)
            return c;
    }
    return strcmp(json_string_value(json_object_get(x, "study_uid")),
                  json_string_value(json_object_get(y, "study_uid")));
}

/* Add the urgent result a mark names to its study's entry; a mark without a stored result is
 * skipped (see the file comment). */
static int add_urgent(const char *home, json_t *by_uid, const json_t *mark, agora__error *err)
{
    const char *uid = json_string_value(json_object_get(mark, "study_uid"));
    const char *id = json_string_value(json_object_get(mark, "invocation_id"));
    json_t *entry = json_object_get(by_uid, uid);
    char dir[4096], path[4200];
    int rc = agora__results_study_dir(home, uid, dir, sizeof dir, err);
    if (rc != 0)
        return rc;
    snprintf(path, sizeof path, "%s/%s.json", dir, id);
    if (entry == NULL || access(path, F_OK) != 0)
        return 0;
    json_t *doc = NULL;
    if ((rc = agora__results_load(home, uid, id, &doc, err)) != 0)
        return rc;
    const json_t *triage = json_object_get(doc, "triage");
    if (!json_is_true(json_object_get(triage, "urgent"))) {
        json_decref(doc);
        return agora__error_set(err, AGORA_EINVAL,
                                "the triage index names result %s, which is not urgent; the store "
                                "was damaged: restore it from a backup",
                                path);
    }
    const char *created = json_string_value(json_object_get(doc, "created"));
    const json_t *first = json_object_get(entry, "first_urgent");
    if (first == NULL || strcmp(created, json_string_value(first)) < 0)
        json_object_set_new(entry, "first_urgent", json_string(created));
    json_object_set(entry, "urgent", json_true());
    json_array_append_new(json_object_get(entry, "urgent_results"),
                          json_pack("{s:s,s:O,s:O,s:s,s:O}", "invocation_id", id, "plugin_id",
                                    json_object_get(mark, "plugin_id"), "plugin_version",
                                    json_object_get(mark, "plugin_version"), "created", created,
                                    "reason", json_object_get(triage, "reason")));
    json_decref(doc);
    return 0;
}

int agora__results_worklist(const char *home, json_t **out, agora__error *err)
{
    *out = NULL;
    json_t *uids = NULL, *marks = NULL, *by_uid = json_object();
    int rc = by_uid ? 0 : agora__error_set(err, AGORA_ENOMEM, "out of memory");
    if (rc == 0)
        rc = agora__results_studies(home, &uids, err);
    if (rc == 0)
        rc = agora__results_urgent_index(home, &marks, err);
    size_t i;
    json_t *v;
    json_array_foreach(rc == 0 ? uids : NULL, i, v)
    {
        json_object_set_new(
            by_uid, json_string_value(v),
            json_pack("{s:O,s:b,s:[]}", "study_uid", v, "urgent", 0, "urgent_results"));
    }
    json_array_foreach(rc == 0 ? marks : NULL, i, v)
    {
        if ((rc = add_urgent(home, by_uid, v, err)) != 0)
            break;
    }
    size_t n = rc == 0 ? json_object_size(by_uid) : 0;
    json_t **list = rc == 0 ? malloc((n ? n : 1) * sizeof *list) : NULL;
    if (rc == 0 && list == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    json_t *arr = rc == 0 ? json_array() : NULL;
    if (rc == 0 && arr == NULL)
        rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
    if (rc == 0) {
        const char *k;
        size_t j = 0;
        json_object_foreach(by_uid, k, v) list[j++] = v;
        qsort(list, n, sizeof *list, worklist_order);
        for (j = 0; j < n; j++) {
            json_object_del(list[j], "first_urgent");
            json_array_append(arr, list[j]);
        }
    }
    free(list);
    json_decref(uids);
    json_decref(marks);
    json_decref(by_uid);
    if (rc != 0) {
        json_decref(arr);
        return rc;
    }
    *out = arr;
    return 0;
}
