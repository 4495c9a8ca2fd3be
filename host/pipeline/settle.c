/* Settling a job that ran: validate -> re-identify -> store -> meter (see pipeline_private.h).
 * Billing uses the catalog's price for the plugin (never anything the plugin said) and real
 * UIDs as units, which the ledger hashes. */
#include <string.h>

#include "pipeline_private.h"
#include "results.h"

/* Billing units of one invocation for the model. */
static size_t billing_units(const agora__ledger_pricing *pr, const agora__prepared *prep,
                            const char **units, size_t cap)
{
    const agora__dicom_series *s = prep->series;
    size_t n = 0;
    switch (pr->model) {
    case AGORA__MODEL_PER_STUDY:
        units[0] = s->study_uid;
        return 1;
    case AGORA__MODEL_PER_SERIES: /* a study-scope job: each of its series */
        for (uint32_t k = 0; k <= prep->n_parts && n < cap; k++)
            units[n++] = (k == 0 ? s : prep->parts[k - 1].series)->series_uid;
        return n;
    case AGORA__MODEL_PER_INSTANCE: {
        for (uint32_t k = 0; k <= prep->n_parts; k++) {
            const agora__dicom_series *sk = k == 0 ? s : prep->parts[k - 1].series;
            for (uint32_t i = 0; i < sk->n_instances && n < cap; i++)
                units[n++] = sk->instances[i].sop_uid;
        }
        return n;
    }
    case AGORA__MODEL_SUBSCRIPTION:
        return 0; /* flat per period: the ledger charges the plugin, not units */
    default:
        /* free: nothing is charged, but usage still counts studies */
        units[0] = s->study_uid;
        return 1;
    }
}

void agora__pipeline__settle(agora__pipeline *p, const agora__pipeline_plugin *pl,
                             const agora__prepared *prep, agora__job_outcome *out,
                             agora__pipeline_outcome *o)
{
    o->job_status = out->status;
    o->status = agora__job_status_name(out->status);
    o->doc = out->doc;
    o->wall_ms = out->wall_ms;
    o->validated = 0;
    p->why[0] = '\0';
    p->ledger_why[0] = '\0';
    o->error = p->why;
    o->ledger_error = p->ledger_why;
    if (out->status != AGORA__JOB_OK) {
        agora__strlcpy(p->why, out->error, sizeof p->why);
    } else {
        /* The one place a result is validated, by the one result check (agora__jobs_accept,
         * host/results/result_accept.c): `agora run` stores what it accepts; `dev run` (no
         * home) applies exactly the same check and stores nothing. Re-identification needs an
         * invocation id; dev run records nothing, so it uses a fixed one. */
        agora__error e2 = {0};
        const char *inv = o->invocation_id != NULL && o->invocation_id[0] != '\0'
                              ? o->invocation_id
                              : AGORA__PIPELINE_UNRECORDED_INVOCATION;
        int rc = agora__jobs_accept(out, prep, inv, p->cfg.store_home, &e2);
        if (rc == 0) {
            o->validated = 1;
        } else {
            o->status = "invalid-result";
            agora__strlcpy(p->why, e2.msg, sizeof p->why);
        }
    }
    if (p->cfg.ledger == NULL)
        return;

    const char *units[AGORA__LEDGER_MAX_UNITS < 4096 ? AGORA__LEDGER_MAX_UNITS : 4096];
    size_t n_units =
        o->validated ? billing_units(pl->pricing, prep, units, sizeof units / sizeof units[0]) : 0;
    agora__ledger_outcome lo = {
        .invocation_id = o->invocation_id,
        .status = o->status,
        .validated = o->validated,
        .units = units,
        .n_units = n_units,
        .wall_ms = out->wall_ms,
        .pricing = pl->pricing,
    };
    json_t *metrics = json_object_get(out->doc, "metrics");
    lo.cpu_us = (uint64_t)json_integer_value(json_object_get(metrics, "cpu_us"));
    lo.peak_rss_kb = (uint64_t)json_integer_value(json_object_get(metrics, "peak_rss_kb"));
    agora__ledger_receipt rcpt = {0};
    agora__error e3 = {0};
    int rc;
    if (p->job != NULL) {
        /* A queued job: the daemon decides whether this outcome ends its run, and its state
         * change commits with the row. */
        if (!p->job->before_record(p->job->arg, o))
            return;
        rc = agora__ledger_record_with(p->cfg.ledger, &lo, p->job->in_txn, p->job->arg, &rcpt,
                                       &e3);
    } else {
        rc = agora__ledger_record(p->cfg.ledger, &lo, &rcpt, &e3);
    }
    if (rc != 0) {
        o->ledger_failed = 1;
        agora__strlcpy(p->ledger_why, e3.msg, sizeof p->ledger_why);
        return;
    }
    o->charged_units = (uint64_t)rcpt.units;
    o->charged_minor = rcpt.amount_minor;
}
