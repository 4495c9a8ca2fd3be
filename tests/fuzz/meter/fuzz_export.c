/* libFuzzer target: the operator's check of a ledger export body (the header and row lines
 * after the signature line) on arbitrary bytes. The body is only parsed after a registered clinic's
 * signature verified, but a clinic is not trusted: the check must never crash, leak or read out of
 * bounds, whatever the clinic signed. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ledger_period.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(const agora__export_row *r, void *ctx, agora__error *err)
{
    (void)r;
    (void)err;
    (*(size_t *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Check against the period the header claims, so valid seeds reach the rows. */
    char period[8] = "2026-03";
    const uint8_t *nl = memchr(data, '\n', size);
    json_t *h = nl ? json_loadb((const char *)data, (size_t)(nl - data), 0, NULL) : NULL;
    const char *p = json_string_value(json_object_get(h, "period"));
    if (p != NULL && strlen(p) == 7)
        memcpy(period, p, 8);
    json_decref(h);
    agora__export_info info;
    agora__error err;
    size_t n = 0;
    (void)agora__ledger_export_check(data, size, period, &info, count, &n, &err);
    return 0;
}
