/* Progress on stderr (see progress.h). */
#include "progress.h"

#include <unistd.h>

#include "common.h"

#define NS_PER_S 1000000000ull

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

/* The terminal line becomes text + tail: back to its start, clear it, write (no newline). */
static void redraw(agora__progress *pr, const char *text, const char *tail)
{
    fprintf(pr->to, "\r\033[K%s%s", text, tail);
    fflush(pr->to);
    pr->open = 1;
}

/* A log line when due: the first, the last (done >= n), else one per interval. */
static void log_line(agora__progress *pr, size_t done, size_t n, const char *text, const char *tail)
{
    uint64_t now = agora__now_ns();
    if (pr->last_ns == 0 || done >= n ||
        now - pr->last_ns >= AGORA__PROGRESS_INTERVAL_S * NS_PER_S) {
        fprintf(pr->to, "%s%s\n", text, tail);
        pr->last_ns = now ? now : 1;
    }
}

void agora__progress_start(agora__progress *pr, const char *text)
{
    if (pr->mode == AGORA__PROGRESS_TTY)
        redraw(pr, text, " ... ");
}

void agora__progress_done(agora__progress *pr, size_t job, size_t n_jobs, const char *text,
                          const char *result)
{
    char tail[128];
    snprintf(tail, sizeof tail, " ... %s", result);
    if (pr->mode == AGORA__PROGRESS_TTY)
        redraw(pr, text, tail);
    else if (pr->mode == AGORA__PROGRESS_LOG)
        log_line(pr, job, n_jobs, text, tail);
}

void agora__progress_step(agora__progress *pr, size_t done, size_t n, const char *text)
{
    if (pr->mode == AGORA__PROGRESS_TTY)
        redraw(pr, text, "");
    else if (pr->mode == AGORA__PROGRESS_LOG)
        log_line(pr, done, n, text, "");
}

void agora__progress_end(agora__progress *pr)
{
    if (pr->mode == AGORA__PROGRESS_TTY && pr->open) {
        fputc('\n', pr->to);
        fflush(pr->to);
        pr->open = 0;
    }
}

void agora__progress_before(agora__progress *pr, FILE *f)
{
    if (pr->open && (f == pr->to || isatty(fileno(f))))
        agora__progress_end(pr);
}
