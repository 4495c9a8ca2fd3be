/*
 * Invocation ids, periods and pricing model names: the small pieces of
 * vocabulary the ledger and its callers share.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ledger.h"

static const char *const model_names[] = {"free", "per-study", "per-series", "per-instance",
                                          "subscription"};

int agora__ledger_model_parse(const char *name, agora__ledger_model *out)
{
    for (size_t i = 0; name != NULL && i < sizeof model_names / sizeof model_names[0]; i++)
        if (strcmp(name, model_names[i]) == 0) {
            *out = (agora__ledger_model)i;
            return 0;
        }
    return -1;
}

const char *agora__ledger_model_name(agora__ledger_model m)
{
    if ((unsigned)m < sizeof model_names / sizeof model_names[0])
        return model_names[m];
    return "invalid";
}

int agora__ledger_mint_at(uint64_t unix_ms, char id[AGORA__LEDGER_ID_LEN + 1], agora__error *err)
{
    if (unix_ms >= (1ULL << 48))
        return agora__error_set(err, AGORA_EINVAL, "invocation time out of range");
    uint8_t b[16];
    randombytes_buf(b, sizeof b);
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(unix_ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f)); /* RFC 4122 variant */
    agora__hex(b, 16, id);
    return 0;
}

int agora__ledger_mint(char id[AGORA__LEDGER_ID_LEN + 1], agora__error *err)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot read the clock: %s",
                                strerror(errno));
    return agora__ledger_mint_at((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u, id,
                                 err);
}

static void period_of_ms(uint64_t ms, char period[8])
{
    time_t t = (time_t)(ms / 1000u);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(period, 8, "%04d-%02d", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1);
}

int agora__ledger_id_period(const char *id, char period[8], agora__error *err)
{
    uint8_t b[16];
    if (id == NULL || strlen(id) != AGORA__LEDGER_ID_LEN || agora__unhex(id, b, 16) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "invocation id is not 32 hex digits; mint it with the ledger");
    for (const char *p = id; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            return agora__error_set(
                err, AGORA_EINVAL, "invocation id must be lower-case hex; mint it with the ledger");
    if ((b[6] >> 4) != 7 || (b[8] >> 6) != 2)
        return agora__error_set(err, AGORA_EINVAL,
                                "invocation id is not a version-7 id; mint it with the ledger");
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | b[i];
    period_of_ms(ms, period);
    return 0;
}

int agora__ledger_period_valid(const char *p)
{
    if (p == NULL || strlen(p) != 7 || p[4] != '-')
        return 0;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (p[i] < '0' || p[i] > '9'))
            return 0;
    int month = (p[5] - '0') * 10 + (p[6] - '0');
    return month >= 1 && month <= 12;
}

void agora__ledger_period_now(char period[8])
{
    period_of_ms((uint64_t)time(NULL) * 1000u, period);
}
