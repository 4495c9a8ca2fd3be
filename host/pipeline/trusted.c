/* A trust-loaded plugin as the pipeline runs it (pipeline.h, agora__pipeline_trusted): the one
 * place that turns a verified build and its catalog entry into grants, pricing and a job spec,
 * for `agora run` and the daemon's dispatch threads. */
#include <string.h>

#include "jobs.h"
#include "pipeline.h"

int agora__pipeline_trusted_describe(agora__pipeline_trusted *t, uint32_t timeout_s, int fresh,
                                     agora__pipeline_plugin *pl, agora__error *err)
{
    const agora__trust_plugin *in = &t->lp.info;
    agora__ledger_pricing *p = &t->pricing;
    /* The price is the signed catalog entry's, never anything the plugin says. */
    memset(p, 0, sizeof *p);
    p->plugin_id = in->id;
    p->plugin_version = in->version;
    p->vendor = in->manifest.vendor;
    p->catalog_version = in->catalog_version;
    if (agora__ledger_model_parse(in->pricing.model, &p->model) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "catalog entry of %s has an unknown pricing "
                                "model; sync a valid catalog",
                                in->id);
    p->price_minor = (int64_t)in->pricing.price_minor;
    memcpy(p->currency, in->pricing.currency, sizeof p->currency);
    p->vendor_share_bps = in->pricing.vendor_share_bps;
    t->n_granted = 0;
    for (unsigned b = 0; b < AGORA__OPT_COUNT; b++) {
        if (in->granted & (1u << b)) {
            agora__strlcpy(t->granted_names[t->n_granted], agora__trust_option_name(b),
                           sizeof t->granted_names[0]);
            t->granted[t->n_granted] = t->granted_names[t->n_granted];
            t->n_granted++;
        }
    }
    memset(pl, 0, sizeof *pl);
    pl->id = in->id;
    pl->version = in->version;
    pl->manifest = &in->manifest;
    pl->granted = t->granted;
    pl->n_granted = t->n_granted;
    pl->view_key = in->granted;
    pl->pricing = &t->pricing;
    agora__jobs_spec_from_manifest(&in->manifest, t->lp.bytes, t->lp.len, timeout_s, &pl->spec);
    pl->spec.fresh_per_job = fresh;
    pl->spec.assets = t->lp.assets; /* verified once at load; every worker gets these memfds */
    pl->spec.n_assets = t->lp.n_assets;
    return 0;
}
