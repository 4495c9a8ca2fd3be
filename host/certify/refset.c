/*
 * The reference set a certification runs over: synthetic studies (host/synth, the library behind
 * `agora dicom synth`) of each modality the manifest accepts, with frame counts that satisfy its
 * declared inputs, the borderline count (min_frames), the inputs it must refuse (a modality it
 * does not accept, too few or too many frames), and the operator's own folder.
 *
 * The synthetic studies use fixed seeds, so a report's reference set can be made again byte for
 * byte; they are written under a fresh directory that agora__cert_refset_remove deletes.
 */
#include "certify_int.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "synth.h"

#define NORMAL_FRAMES  3u  /* frames of an accepted study when the manifest allows it */
#define SYNTH_DIM      64u /* rows and columns: small, so a certification stays fast */
#define FEW_FRAMES_MAX 64u /* "too many frames" is probed only below this many */
#define SEED_BASE      1600u

static int accepts(const agora__manifest *m, const char *modality)
{
    if (m->any_modality)
        return 1;
    for (uint32_t i = 0; i < m->n_modalities; i++)
        if (strcmp(m->modalities[i], modality) == 0)
            return 1;
    return 0;
}

static agora__cert_item *add(agora__cert_refset *rs, agora__cert_role role, int ct, unsigned frames,
                             const char *suffix, agora__error *err)
{
    if (rs->n >= AGORA__CERT_ITEMS_MAX) {
        agora__error_set(err, AGORA_ELIMIT, "too many reference items");
        return NULL;
    }
    agora__cert_item *it = &rs->items[rs->n];
    memset(it, 0, sizeof *it);
    it->role = role;
    it->synthetic = 1;
    it->ct = ct;
    it->frames = frames;
    it->rows = it->cols = SYNTH_DIM;
    it->seed = SEED_BASE + rs->n;
    snprintf(it->name, sizeof it->name, "%s-%u%s", ct ? "CT" : "MR", frames, suffix);
    char dir[sizeof it->dir];
    int n = snprintf(dir, sizeof dir, "%s/%s", rs->root, it->name);
    if (n < 0 || (size_t)n >= sizeof dir) {
        agora__error_set(err, AGORA_ELIMIT, "work directory path too long");
        return NULL;
    }
    agora__strlcpy(it->dir, dir, sizeof it->dir);
    rs->n++;
    return it;
}

/* The frame count of an accepted study: NORMAL_FRAMES within [min_frames, max_frames]. */
static unsigned normal_frames(const agora__manifest *m)
{
    unsigned n = NORMAL_FRAMES;
    if (n < m->min_frames)
        n = m->min_frames;
    if (n > m->max_frames)
        n = m->max_frames;
    return n;
}

static int plan(const agora__manifest *m, agora__cert_refset *rs, agora__error *err)
{
    static const char *const mods[2] = {"CT", "MR"};
    unsigned n = normal_frames(m);
    int first = -1;
    for (int k = 0; k < 2; k++) {
        int ct = k == 0;
        agora__cert_item *it;
        if (!accepts(m, mods[k])) {
            if ((it = add(rs, AGORA__CERT_REFUSED, ct, n, "-wrong-modality", err)) == NULL)
                return err->code;
            snprintf(it->why, sizeof it->why, "the manifest does not accept %s", mods[k]);
            continue;
        }
        if (first < 0)
            first = k;
        if (add(rs, AGORA__CERT_ACCEPTED, ct, n, "", err) == NULL)
            return err->code;
        if (m->min_frames != n &&
            add(rs, AGORA__CERT_BORDERLINE, ct, m->min_frames, "-borderline", err) == NULL)
            return err->code;
    }
    if (first >= 0 && m->min_frames > 1) {
        agora__cert_item *it =
            add(rs, AGORA__CERT_REFUSED, first == 0, m->min_frames - 1, "-too-few-frames", err);
        if (it == NULL)
            return err->code;
        snprintf(it->why, sizeof it->why, "fewer frames than min_frames %u", m->min_frames);
    }
    if (first >= 0 && m->max_frames < FEW_FRAMES_MAX) {
        agora__cert_item *it =
            add(rs, AGORA__CERT_REFUSED, first == 0, m->max_frames + 1, "-too-many-frames", err);
        if (it == NULL)
            return err->code;
        snprintf(it->why, sizeof it->why, "more frames than max_frames %u", m->max_frames);
    }
    return 0;
}

int agora__cert_refset_make(const agora__manifest *m, const char *work_dir,
                            const char *operator_dir, agora__cert_refset *rs, agora__error *err)
{
    memset(rs, 0, sizeof *rs);
    if (m->min_frames > AGORA__SYNTH_SLICES_MAX)
        return agora__error_set(err, AGORA_EINVAL,
                                "min_frames %u is more than a synthetic study holds (%u); the "
                                "reference set cannot be made",
                                m->min_frames, AGORA__SYNTH_SLICES_MAX);
    if (work_dir == NULL)
        work_dir = getenv("TMPDIR");
    if (work_dir == NULL || work_dir[0] == '\0')
        work_dir = "/tmp";
    int n = snprintf(rs->root, sizeof rs->root, "%s/agora-certify-XXXXXX", work_dir);
    if (n < 0 || (size_t)n >= sizeof rs->root - 64)
        return agora__error_set(err, AGORA_ELIMIT, "work directory path too long");
    if (mkdtemp(rs->root) == NULL) {
        int e = errno;
        rs->root[0] = '\0';
        return agora__error_set(err, AGORA__ERR(e), "cannot make a work directory in %s: %s",
                                work_dir, strerror(e));
    }
    int rc = plan(m, rs, err);
    for (size_t i = 0; rc == 0 && i < rs->n; i++) {
        const agora__cert_item *it = &rs->items[i];
        agora__synth_opts o = {
            .ct = it->ct,
            .slices = it->frames,
            .rows = it->rows,
            .cols = it->cols,
            .seed = it->seed,
            .have_seed = 1,
            .out = it->dir,
            .burned_in = -1,
        };
        agora__synth_planted planted;
        rc = agora__synth_write(&o, &planted, err);
    }
    int any_accepted = 0;
    for (size_t i = 0; i < rs->n; i++)
        any_accepted |= rs->items[i].role == AGORA__CERT_ACCEPTED;
    if (rc == 0 && operator_dir != NULL) {
        if (rs->n >= AGORA__CERT_ITEMS_MAX)
            rc = agora__error_set(err, AGORA_ELIMIT, "too many reference items");
        else {
            agora__cert_item *it = &rs->items[rs->n++];
            memset(it, 0, sizeof *it);
            it->role = AGORA__CERT_OPERATOR;
            agora__strlcpy(it->name, "operator", sizeof it->name);
            if (strlen(operator_dir) >= sizeof it->dir)
                rc = agora__error_set(err, AGORA_ELIMIT, "--reference path too long");
            else
                agora__strlcpy(it->dir, operator_dir, sizeof it->dir);
            any_accepted = 1;
        }
    }
    if (rc == 0 && !any_accepted)
        rc = agora__error_set(err, AGORA_EINVAL,
                              "the manifest accepts neither CT nor MR, the modalities agora "
                              "dicom synth makes; pass --reference DIR with studies it accepts");
    if (rc != 0)
        agora__cert_refset_remove(rs);
    return rc;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void agora__cert_refset_remove(agora__cert_refset *rs)
{
    if (rs->root[0] != '\0')
        (void)nftw(rs->root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    rs->root[0] = '\0';
}

static const char *role_name(agora__cert_role r)
{
    switch (r) {
    case AGORA__CERT_ACCEPTED:
        return "accepted";
    case AGORA__CERT_BORDERLINE:
        return "borderline";
    case AGORA__CERT_REFUSED:
        return "refused";
    case AGORA__CERT_OPERATOR:
        return "operator";
    }
    return "accepted";
}

json_t *agora__cert_refset_json(const agora__cert_refset *rs)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < rs->n; i++) {
        const agora__cert_item *it = &rs->items[i];
        json_t *o;
        if (it->synthetic)
            o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "name", it->name, "role",
                          role_name(it->role), "source", "agora dicom synth", "modality",
                          it->ct ? "CT" : "MR", "frames", (json_int_t)it->frames, "rows",
                          (json_int_t)it->rows, "columns", (json_int_t)it->cols, "seed",
                          (json_int_t)it->seed);
        else /* the operator's folder: its path may name a patient, so it is not reported */
            o = json_pack("{s:s, s:s, s:s}", "name", it->name, "role", role_name(it->role),
                          "source", "the operator's --reference folder");
        if (o != NULL && it->why[0] != '\0')
            json_object_set_new(o, "refused_because", json_string(it->why));
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}
