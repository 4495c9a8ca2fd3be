/*
 * The limit walk plugin (issue 9): its output is driven by its input. A series of N frames
 * selects case N-1: limit (N-1)/3 of the table below, at value-1, value, value+1 (delta
 * (N-1)%3 - 1), with every value taken from the one table of result limits
 * (agora_result_limits.h), so the walk follows the table. A host function that refuses makes
 * the plugin fail with the code (plugin-error); otherwise the result goes to the host. Case
 * MASK16_CASE adds one 16-bit mask. limit_walk.sh runs every case through `agora dev run` and
 * `agora run` and asserts the same verdict.
 */
#include "agora/agora.h"
#include "agora_result_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { L_SUMMARY, L_MEANING, L_SCHEME, L_CODE, L_NAME, L_UNIT, L_LABEL, L_POINTS, L_ITEMS,
       L_POINTS_TOTAL, L_COUNT };
#define MASK16_CASE (3 * L_COUNT)

static const agora_host *H;

static int32_t init(const agora_host *host, void **state)
{
    H = host;
    *state = NULL;
    return AGORA_OK;
}

static char *filled(size_t n, char c)
{
    char *s = malloc(n + 1);
    if (s != NULL) {
        memset(s, c, n);
        s[n] = '\0';
    }
    return s;
}

static int32_t finding(agora_job *job, const char *scheme, const char *code, const char *meaning)
{
    agora_finding f = {sizeof f, scheme, code, meaning, 0.5, AGORA_NONE, AGORA_NONE};
    return H->add_finding(job, &f);
}

/* n points on the image's border (16x16): inside, so only the count matters. */
static int32_t polygon(agora_job *job, size_t n, const char *label)
{
    double *p = malloc(n * 2 * sizeof *p);
    if (p == NULL)
        return AGORA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        p[2 * i] = (double)(i % 16);
        p[2 * i + 1] = (double)((i / 16) % 16);
    }
    agora_region r = {sizeof r, AGORA_REGION_POLYGON, 0, p, (uint32_t)n, label};
    int32_t id;
    int32_t rc = H->add_region(job, &r, &id);
    free(p);
    return rc;
}

static int32_t walk(agora_job *job, const agora_image *im, unsigned c)
{
    if (c == MASK16_CASE) {
        size_t px = (size_t)im->rows * im->columns;
        uint16_t *lab = calloc(px, sizeof *lab);
        if (lab == NULL)
            return AGORA_ENOMEM;
        for (size_t i = 0; i < px; i++)
            lab[i] = (uint16_t)(i % 2 ? 300 : 0); /* a label above 255: needs 16 bits */
        agora_mask m = {sizeof m, 0, 1, im->rows, im->columns, 16, lab, "sixteen"};
        int32_t id;
        int32_t rc = H->add_mask(job, &m, &id);
        free(lab);
        return rc != AGORA_OK ? rc : finding(job, "DCM", "113076", "Segmentation");
    }
    size_t lim = 0;
    switch (c / 3) {
    case L_SUMMARY: lim = AGORA__RESULT_SUMMARY_MAX; break;
    case L_MEANING: lim = AGORA__RESULT_MEANING_MAX; break;
    case L_SCHEME: lim = AGORA__RESULT_SCHEME_MAX; break;
    case L_CODE: lim = AGORA__RESULT_CODE_MAX; break;
    case L_NAME: lim = AGORA__RESULT_NAME_MAX; break;
    case L_UNIT: lim = AGORA__RESULT_UNIT_MAX; break;
    case L_LABEL: lim = AGORA__RESULT_LABEL_MAX; break;
    case L_POINTS: lim = AGORA__RESULT_POINTS_MAX; break;
    case L_ITEMS: lim = AGORA__RESULT_ITEMS_MAX; break;
    case L_POINTS_TOTAL: lim = AGORA__RESULT_POINTS_TOTAL_MAX; break;
    default: return AGORA_EINVAL;
    }
    size_t n = lim + (c % 3) - 1;
    char *s = (c / 3) <= L_LABEL ? filled(n, 'a') : NULL;
    if ((c / 3) <= L_LABEL && s == NULL)
        return AGORA_ENOMEM;
    int32_t rc = AGORA_OK;
    switch (c / 3) {
    case L_SUMMARY: rc = H->set_summary(job, s); break;
    case L_MEANING: rc = finding(job, "DCM", "121071", s); break;
    case L_SCHEME: rc = finding(job, s, "121071", "Finding"); break;
    case L_CODE: rc = finding(job, "DCM", s, "Finding"); break;
    case L_NAME: {
        agora_measurement m = {sizeof m, s, 1.0, "mm", AGORA_NONE, AGORA_NONE, NULL, NULL, NULL};
        rc = H->add_measurement(job, &m);
        break;
    }
    case L_UNIT: {
        agora_measurement m = {sizeof m, "length", 1.0, s, AGORA_NONE, AGORA_NONE, NULL, NULL, NULL};
        rc = H->add_measurement(job, &m);
        break;
    }
    case L_LABEL: rc = polygon(job, 3, s); break;
    case L_POINTS: rc = polygon(job, n, NULL); break;
    case L_ITEMS:
        for (size_t i = 0; i < n && rc == AGORA_OK; i++)
            rc = finding(job, "DCM", "121071", "Finding");
        break;
    case L_POINTS_TOTAL:
        for (size_t left = n; left > 0 && rc == AGORA_OK;) {
            size_t k = left > AGORA__RESULT_POINTS_MAX ? AGORA__RESULT_POINTS_MAX : left;
            if (left - k > 0 && left - k < 3) /* keep every polygon at 3 points or more */
                k = left - 3;
            rc = polygon(job, k, NULL);
            left -= k;
        }
        break;
    }
    free(s);
    return rc;
}

static int32_t process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    unsigned c = image->frames - 1;
    int32_t rc = walk(job, image, c);
    if (rc != AGORA_OK) {
        char msg[96];
        snprintf(msg, sizeof msg, "case %u: the host refused with %d", c, (int)rc);
        H->set_error(job, msg);
        return rc;
    }
    return AGORA_OK;
}

static const agora_plugin plugin = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.tests.limitwalk",
    .version = "1.0.0",
    .init = init,
    .process = process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    (void)host_abi_version;
    return &plugin;
}
