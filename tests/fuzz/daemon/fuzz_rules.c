/* libFuzzer: the routing rules loader (host/daemon/route_rules.c) on arbitrary bytes, and the
 * evaluator on every file it accepts, over a few series (present, absent and NaN attributes)
 * and installed apps. Checks what the loader promises: its bounds, and plans in which every
 * plugin appears once with a valid scope and priority. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "route_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_plan(const agora__route_plan *p)
{
    if ((p->action != AGORA__ROUTE_RUN && p->n_matches != 0) ||
        (p->action != AGORA__ROUTE_NONE && p->rule_id == NULL))
        abort();
    for (size_t i = 0; i < p->n_matches; i++) {
        const agora__rule_match *m = &p->matches[i];
        if (m->priority < AGORA__RULES_OFFPEAK || m->priority > AGORA__RULES_URGENT ||
            (strcmp(m->scope, "series") != 0 && strcmp(m->scope, "study") != 0) ||
            m->n_send_to > AGORA__RULES_MAX * AGORA__RULES_LIST_MAX)
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(p->matches[k].plugin_id, m->plugin_id) == 0 &&
                strcmp(p->matches[k].plugin_version, m->plugin_version) == 0)
                abort();
        for (size_t a = 0; a < m->n_send_to; a++)
            for (size_t b = 0; b < a; b++)
                if (strcmp(m->send_to[a], m->send_to[b]) == 0)
                    abort();
    }
}

static void count_steps(void *arg, const agora__rules_step *s)
{
    size_t *n = arg;
    if (s->rule_id == NULL)
        abort();
    (*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agora__rules *r = NULL;
    agora__error err = {0};
    if (agora__rules_parse((const char *)data, size, "fuzz", &r, &err) != 0) {
        if (r != NULL || err.msg[0] == '\0')
            abort();
        return 0;
    }
    if (agora__rules_count(r) > AGORA__RULES_MAX)
        abort();
    agora__route_attrs a[3];
    memset(a, 0, sizeof a);
    strcpy(a[0].modality, "CT");
    strcpy(a[0].body_part, "CHEST");
    strcpy(a[0].sop_class, "1.2.840.10008.5.1.4.1.1.2");
    strcpy(a[0].calling_ae, "CT01");
    a[0].slice_thickness = 1.25;
    a[0].n_frames = 1;
    a[0].rows = a[0].columns = 512;
    a[0].origin = "dimse";
    strcpy(a[1].modality, "MR");
    a[1].slice_thickness = NAN;
    a[1].origin = "stow";
    a[2].slice_thickness = NAN; /* everything absent */
    static agora__trust_plugin apps[2];
    strcpy(apps[0].id, "org.example.a");
    strcpy(apps[0].version, "1.0.0");
    apps[0].manifest_ok = 1;
    apps[0].manifest.any_modality = 1;
    strcpy(apps[1].id, "org.example.ct");
    strcpy(apps[1].version, "2.0.0");
    apps[1].manifest_ok = 1;
    strcpy(apps[1].manifest.modalities[0], "CT");
    apps[1].manifest.n_modalities = 1;
    for (size_t i = 0; i < 3; i++)
        for (int with_apps = 0; with_apps < 2; with_apps++) {
            agora__route_plan p;
            size_t steps = 0;
            if (agora__rules_eval(r, with_apps ? apps : NULL, with_apps ? 2 : 0, &a[i], &p,
                                  count_steps, &steps, &err) != 0)
                abort();
            check_plan(&p);
            agora__route_plan_free(&p);
        }
    const char **dests = NULL;
    size_t nd = 0;
    if (agora__rules_destinations(r, &dests, &nd, &err) != 0)
        abort();
    free(dests);
    agora__rules_free(r);
    return 0;
}
