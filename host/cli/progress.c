/* Progress lines on stderr (see progress.h). */
#include "progress.h"

#include <unistd.h>

#include "common.h"

/* A log line at most this often between the first and the last job. */
#define PROGRESS_INTERVAL_NS (5ull * 1000000000ull)

void agora__progress_init(agora__progress *pr, FILE *to, int quiet)
{
    pr->to = to;
    pr->last_ns = 0;
    pr->open = 0;
    if (quiet)
        pr->mode = AGORA__PROGRESS_QUIET;
    else
        pr->mode = isatty(fileno(to)) ? AGORA__PROGRESS_TTY : AGORA__PROGRESS_LOG;
}

void agora__progress_start(agora__progress *pr, const char *text)
{
    if (pr->mode != AGORA__PROGRESS_TTY)
        return;
    fprintf(pr->to, "%s ... ", text);
    fflush(pr->to);
    pr->open = 1;
}

void agora__progress_done(agora__progress *pr, size_t job, size_t n_jobs, const char *text,
                          const char *result)
{
    if (pr->mode == AGORA__PROGRESS_TTY) {
        if (!pr->open) /* refused before it started */
            fprintf(pr->to, "%s ... ", text);
        fprintf(pr->to, "%s\n", result);
        pr->open = 0;
    } else if (pr->mode == AGORA__PROGRESS_LOG) {
        uint64_t now = agora__now_ns();
        if (pr->last_ns == 0 || job >= n_jobs || now - pr->last_ns >= PROGRESS_INTERVAL_NS) {
            fprintf(pr->to, "%s ... %s\n", text, result);
            pr->last_ns = now ? now : 1;
        }
    }
}

void agora__progress_end(agora__progress *pr)
{
    if (pr->mode == AGORA__PROGRESS_TTY && pr->open) {
        fputc('\n', pr->to);
        pr->open = 0;
    }
}
