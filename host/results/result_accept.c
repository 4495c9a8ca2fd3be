/*
 * The one acceptance check of a plugin result: what `agora run` stores and bills and what
 * `agora dev run` reports as ok are decided here, by the same code, so a developer sees the
 * verdict the clinic will see (issue 9).
 */
#include "results_private.h"

int agora__results_accept(const json_t *worker_doc, const agora__results_reident *ri,
                          const agora__results_mask *masks, size_t n_masks, json_t **stored,
                          agora__error *err)
{
    json_t *doc = NULL;
    int rc = agora__results_reidentify(worker_doc, ri, &doc, err);
    if (rc == 0)
        rc = agora__results_match_masks(doc, masks, n_masks, NULL, err);
    if (rc != 0 || stored == NULL)
        json_decref(doc);
    else
        *stored = doc;
    return rc;
}
