/* UTC timestamps as text ("2026-11-22T19:30:00Z") and the --expires argument. The catalog's
 * issued/expires fields use this form only: no offsets, no fractions, so comparing them never
 * depends on the local time zone. */
#include "trust_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t fixed_clock;

int64_t agora__trust_now(void)
{
    if (fixed_clock != 0)
        return fixed_clock;
    return (int64_t)time(NULL);
}

void agora__trust_set_clock_for_tests(int64_t fixed_now)
{
    fixed_clock = fixed_now;
}

void agora__time_format(int64_t t, char out[AGORA__TIME_TEXT])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL ||
        strftime(out, AGORA__TIME_TEXT, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        agora__strlcpy(out, "1970-01-01T00:00:00Z", AGORA__TIME_TEXT);
}

static int digits(const char *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

/* Parse "YYYY-MM-DD" (date_only) or "YYYY-MM-DDTHH:MM:SSZ" strictly, rejecting impossible dates
 * by round-tripping through timegm. */
static int parse_strict(const char *s, int date_only, int64_t *t)
{
    size_t len = strlen(s);
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (date_only ? len != 10 : len != 20)
        return -1;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -1;
    if (!date_only) {
        if (s[10] != 'T' || digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) ||
            s[16] != ':' || digits(s + 17, 2, &se) || s[19] != 'Z')
            return -1;
    }
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 59)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t tt = timegm(&tm);
    if (tt == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != mo - 1)
        return -1;
    *t = (int64_t)tt;
    return 0;
}

int agora__time_parse(const char *s, int64_t *t)
{
    return parse_strict(s, 0, t);
}

int agora__expires_parse(const char *arg, int64_t now, int64_t *out, agora__error *err)
{
    int64_t t;
    size_t len = strlen(arg);
    if (len >= 1 && len <= 4 && strspn(arg, "0123456789") == len) {
        long days = strtol(arg, NULL, 10);
        if (days < 1 || days > 3650)
            return agora__error_set(err, AGORA_EINVAL,
                                    "--expires %s: days must be 1..3650; give a number of days "
                                    "or a date YYYY-MM-DD",
                                    arg);
        *out = now + (int64_t)days * 86400;
        return 0;
    }
    if (parse_strict(arg, 1, &t) != 0 && parse_strict(arg, 0, &t) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "--expires %.40s: not a number of days, a date YYYY-MM-DD or a "
                                "UTC time YYYY-MM-DDTHH:MM:SSZ",
                                arg);
    if (t <= now)
        return agora__error_set(err, AGORA_EINVAL,
                                "--expires %.40s lies in the past; give a later date", arg);
    *out = t;
    return 0;
}
