/* Structured logging to stderr. Callers are responsible for keeping PHI out of messages. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int log_threshold = -1;
static int log_json = 0;

static void log_init(void)
{
    const char *lv = getenv("AGORA_LOG");
    const char *js = getenv("AGORA_LOG_JSON");
    log_threshold = AGORA_LOG_WARN;
    if (lv != NULL) {
        if (strcmp(lv, "debug") == 0)
            log_threshold = AGORA_LOG_DEBUG;
        else if (strcmp(lv, "info") == 0)
            log_threshold = AGORA_LOG_INFO;
        else if (strcmp(lv, "error") == 0)
            log_threshold = AGORA_LOG_ERROR;
    }
    log_json = js != NULL && strcmp(js, "1") == 0;
}

int agora__log_enabled(int level)
{
    if (log_threshold < 0)
        log_init();
    return level >= log_threshold;
}

static const char *level_name(int level)
{
    if (level >= AGORA_LOG_ERROR)
        return "error";
    if (level >= AGORA_LOG_WARN)
        return "warn";
    if (level >= AGORA_LOG_INFO)
        return "info";
    return "debug";
}

void agora__log(int level, const char *component, const char *fmt, ...)
{
    if (!agora__log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    if (log_json) {
        /* Escape the message minimally for JSON. */
        char esc[2100];
        size_t j = 0;
        for (size_t i = 0; msg[i] != '\0' && j + 7 < sizeof esc; i++) {
            unsigned char c = (unsigned char)msg[i];
            if (c == '"' || c == '\\') {
                esc[j++] = '\\';
                esc[j++] = (char)c;
            } else if (c < 0x20) {
                j += (size_t)snprintf(esc + j, sizeof esc - j, "\\u%04x", c);
            } else {
                esc[j++] = (char)c;
            }
        }
        esc[j] = '\0';
        fprintf(stderr, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"}\n",
                when, ts.tv_nsec / 1000000, level_name(level), component, esc);
    } else {
        fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000, level_name(level),
                component, msg);
    }
}
