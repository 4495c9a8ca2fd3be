/*
 * Re-identification of plugin text. A plugin sees pseudonymous UIDs (agora run's "deid-uid"
 * key) and may echo them in free text (labels, finding meanings, the summary: inspect does).
 * An exported object must carry only the real UIDs, so before plugin text goes into a DICOM
 * value every pseudonym of a source UID is replaced by the real UID it stands for, the same
 * re-identification host/results applies to frames and the study.
 */
#include <stdlib.h>
#include <string.h>

#include "deid.h"
#include "export.h"

static int by_pseudo(const void *a, const void *b)
{
    return strcmp(((const agora__export_uid_pair *)a)->pseudo,
                  ((const agora__export_uid_pair *)b)->pseudo);
}

static int add(agora__export_uidmap *m, size_t cap, const uint8_t key[32], const char *real,
               agora__error *err)
{
    if (real == NULL || real[0] == '\0' || !agora__deid_uid_valid(real, strlen(real)))
        return 0;
    if (m->n == cap)
        return agora__error_set(err, AGORA_ELIMIT, "too many source UIDs");
    agora__export_uid_pair *e = &m->e[m->n];
    int rc = agora__deid_uid(key, real, e->pseudo, err);
    if (rc != 0)
        return rc;
    memcpy(e->real, real, strlen(real) + 1);
    m->n++;
    return 0;
}

int agora__export_uidmap_build(const agora__export_source *src, const uint8_t key[32],
                               agora__export_uidmap *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    const agora__dicom_series *s = src->series;
    size_t cap = (size_t)s->n_instances + 2 + src->meta.n_elements;
    out->e = calloc(cap, sizeof *out->e);
    if (out->e == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    int rc = add(out, cap, key, src->meta.study_uid, err);
    if (rc == 0)
        rc = add(out, cap, key, s->series_uid, err);
    for (uint32_t i = 0; i < s->n_instances && rc == 0; i++)
        rc = add(out, cap, key, s->instances[i].sop_uid, err);
    /* Other UIDs of the source the view may carry as attributes (Frame of Reference, ...). */
    for (uint32_t k = 0; k < src->meta.n_elements && rc == 0; k++) {
        const agora__ingest_element *e = &src->meta.elements[k];
        if (e->vr != AGORA__DCMW_VR('U', 'I') || e->length == 0 || e->length > 64)
            continue;
        char u[65];
        size_t n = e->length;
        memcpy(u, e->value, n);
        while (n > 0 && (u[n - 1] == '\0' || u[n - 1] == ' '))
            n--;
        u[n] = '\0';
        rc = add(out, cap, key, u, err);
    }
    if (rc != 0) {
        agora__export_uidmap_free(out);
        return rc;
    }
    if (out->n > 1) /* qsort(NULL, 0) is undefined behaviour */
        qsort(out->e, out->n, sizeof *out->e, by_pseudo);
    return 0;
}

void agora__export_uidmap_free(agora__export_uidmap *m)
{
    if (m == NULL)
        return;
    free(m->e);
    memset(m, 0, sizeof *m);
}

static int uid_char(char c)
{
    return (c >= '0' && c <= '9') || c == '.';
}

char *agora__export_reident(const agora__export_uidmap *m, const char *s)
{
    size_t len = strlen(s), cap = len + 1, n = 0;
    char *o = malloc(cap);
    if (o == NULL)
        return NULL;
    size_t i = 0;
    while (i < len) {
        /* A maximal run of UID characters is looked up whole: a pseudonym inside a longer
         * number is not one. */
        size_t j = i;
        const char *rep = NULL;
        if (m && m->n && uid_char(s[i]) && (i == 0 || !uid_char(s[i - 1]))) {
            while (j < len && uid_char(s[j]))
                j++;
            size_t run = j - i;
            if (run >= 5 && run <= 64) {
                agora__export_uid_pair key;
                memcpy(key.pseudo, s + i, run);
                key.pseudo[run] = '\0';
                const agora__export_uid_pair *hit =
                    bsearch(&key, m->e, m->n, sizeof *m->e, by_pseudo);
                if (hit)
                    rep = hit->real;
            }
        }
        const char *piece = rep ? rep : s + i;
        size_t plen = rep ? strlen(rep) : (j > i ? j - i : 1);
        if (n + plen + 1 > cap) {
            size_t nc = (n + plen + 1) * 2;
            char *no = realloc(o, nc);
            if (no == NULL) {
                free(o);
                return NULL;
            }
            o = no;
            cap = nc;
        }
        memcpy(o + n, piece, plen);
        n += plen;
        i = j > i ? j : i + 1;
    }
    o[n] = '\0';
    return o;
}
