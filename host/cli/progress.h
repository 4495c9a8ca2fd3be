/*
 * Progress of a run on stderr: on a terminal a line per job (written as it starts, ended as it
 * ends; an in-place updating line is not done yet: the guide test's terminal shows it); on a pipe or file
 * a line for the first job, the last one, and at most one per PROGRESS_INTERVAL in between (not
 * one per series: 2,000 series are not 2,000 lines); nothing with --quiet.
 */
#ifndef AGORA_CLI_PROGRESS_H
#define AGORA_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { AGORA__PROGRESS_QUIET, AGORA__PROGRESS_TTY, AGORA__PROGRESS_LOG } agora__progress_mode;

typedef struct agora__progress {
    FILE *to;                  /* borrowed */
    agora__progress_mode mode;
    uint64_t last_ns;          /* LOG: when the last line was written; 0: none yet */
    int open;                  /* TTY: a line is on screen without its newline */
} agora__progress;

/* Mode from quiet and whether `to` is a terminal. */
void agora__progress_init(agora__progress *pr, FILE *to, int quiet);
/* A job starts: on a terminal, "TEXT ... " (the line ends when the job does). */
void agora__progress_start(agora__progress *pr, const char *text);
/* Job `job` of `n_jobs` ended with `result` ("ok (12 ms)", "refused"): on a terminal RESULT
 * ends the line; on a log "TEXT ... RESULT" is written when due (first, last, interval). */
void agora__progress_done(agora__progress *pr, size_t job, size_t n_jobs, const char *text,
                          const char *result);
/* Before any other output, and at the end: on a terminal the line stays, ended with a newline,
 * so what follows (an error, a result, the summary) starts on a line of its own. */
void agora__progress_end(agora__progress *pr);

#endif
