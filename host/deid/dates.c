/* Date shifting for the Retain Longitudinal Temporal Information with Modified Dates option. */
#include "deid.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int agora__deid_date_offset(const uint8_t secret[32], const char *patient_id, size_t len)
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    static const char domain[] = "agora.deid.dateshift.v1";
    while (len > 0 && (patient_id[len - 1] == ' ' || patient_id[len - 1] == '\0'))
        len--;
    crypto_auth_hmacsha256_init(&st, secret, 32);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)domain, sizeof domain);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)patient_id, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof st);
    uint32_t r =
        ((uint32_t)mac[0] << 24) | ((uint32_t)mac[1] << 16) | ((uint32_t)mac[2] << 8) | mac[3];
    return -365 - (int)(r % 3651u);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long yy = (long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static int shift_one(const char *v, size_t n, int days, char *out, size_t out_size, size_t *w)
{
    if (n < 8)
        return -1;
    for (int i = 0; i < 8; i++)
        if (v[i] < '0' || v[i] > '9')
            return -1;
    long y = (v[0] - '0') * 1000 + (v[1] - '0') * 100 + (v[2] - '0') * 10 + (v[3] - '0');
    unsigned m = (unsigned)((v[4] - '0') * 10 + (v[5] - '0'));
    unsigned d = (unsigned)((v[6] - '0') * 10 + (v[7] - '0'));
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    long ny;
    unsigned nm, nd;
    civil_from_days(days_from_civil(y, m, d) + days, &ny, &nm, &nd);
    if (ny < 1 || ny > 9999)
        return -1;
    for (size_t i = 8; i < n; i++) /* the rest of a DT: time and offset, printable only */
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7E)
            return -1;
    if (*w + n + 1 > out_size)
        return -1;
    char date[9];
    snprintf(date, sizeof date, "%04ld%02u%02u", ny, nm, nd);
    memcpy(out + *w, date, 8);
    memcpy(out + *w + 8, v + 8, n - 8);
    *w += n;
    return 0;
}

int agora__deid_shift_dates(const char *in, size_t len, int days, char *out, size_t out_size)
{
    if (out_size == 0)
        return -1;
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\0'))
        len--;
    size_t w = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && in[i] != '\\')
            continue;
        size_t s = start, e = i;
        while (s < e && in[s] == ' ')
            s++;
        while (e > s && in[e - 1] == ' ')
            e--;
        if (shift_one(in + s, e - s, days, out, out_size, &w) != 0)
            return -1;
        if (i < len) {
            if (w + 2 > out_size)
                return -1;
            out[w++] = '\\';
        }
        start = i + 1;
    }
    out[w] = '\0';
    return 0;
}
