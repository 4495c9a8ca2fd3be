/*
 * Progress of long work on stderr (run, dev run, deid of many files), the one way the tool
 * shows it:
 *   - on a terminal, ONE line updated in place ("\r" + clear-to-end, then the new state); it is
 *     ended with a newline before any other output (an error, a result) and at the end, so
 *     what was shown last stays visible;
 *   - on a pipe or file, a line for the first step, the last one, and at most one per
 *     AGORA__PROGRESS_INTERVAL_S in between (2,000 series are not 2,000 lines);
 *   - nothing with --quiet.
 */
#ifndef AGORA_CLI_PROGRESS_H
#define AGORA_CLI_PROGRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* On a pipe or file: at most one line per this many seconds between the first and the last. */
#define AGORA__PROGRESS_INTERVAL_S 5u

typedef enum { AGORA__PROGRESS_QUIET, AGORA__PROGRESS_TTY, AGORA__PROGRESS_LOG } agora__progress_mode;

typedef struct agora__progress {
    FILE *to; /* borrowed */
    agora__progress_mode mode;
    uint64_t last_ns; /* LOG: when the last line was written; 0: none yet */
    int open;         /* TTY: the line is on screen without its newline */
} agora__progress;

/* Mode from quiet and whether `to` is a terminal. */
void agora__progress_init(agora__progress *pr, FILE *to, int quiet);
/* A job starts: on a terminal the line becomes "TEXT ... " (nothing on a log). */
void agora__progress_start(agora__progress *pr, const char *text);
/* Job `job` of `n_jobs` ended with `result` ("ok (12 ms)", "refused"): the state
 * "TEXT ... RESULT" replaces the terminal line, or is written to a log when due. */
void agora__progress_done(agora__progress *pr, size_t job, size_t n_jobs, const char *text,
                          const char *result);
/* Step `done` of `n` with TEXT saying so ("agora deid: 40/300 files"): the same rules. */
void agora__progress_step(agora__progress *pr, size_t done, size_t n, const char *text);
/* Before writing to f (a result on stdout): ends the line first when f is a terminal too, so
 * that the two do not mix on screen; nothing when f goes elsewhere (a file, a pipe). */
void agora__progress_before(agora__progress *pr, FILE *f);
/* Before any other output on stderr, and at the end: on a terminal the line is ended with a
 * newline, so what follows (an error, a result, the summary) starts on a line of its own. */
void agora__progress_end(agora__progress *pr);

#endif
