/*
 * Drives the intake (host/daemon/intake.h) over a clinic home's spool for the integration test,
 * as the daemon's timer will: one poll at the wall clock + OFFSET seconds, printing what it did
 * and every study it emitted (by key, never by UID).
 *
 *   intake_drive HOME OFFSET_S
 *
 * Output lines: "poll grouped=G rejected=R backlog=B emitted=E" then, per emitted study,
 * "study KEY generation=G series=S instances=I reason=R" and per series
 * "  series modality=M body=B frames=F rows=R cols=C origin=O calling=A sops_ok=0|1".
 * Exit 0, or 1 with the error on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "intake.h"

static int on_complete(void *arg, const agora__intake_study *st)
{
    (void)arg;
    printf("study %s generation=%u series=%zu instances=%zu reason=%s\n", st->key,
           st->generation, st->n_series, st->n_instances, st->reason);
    for (size_t i = 0; i < st->n_series; i++) {
        const agora__intake_series *x = &st->series[i];
        int ok = 1;
        for (size_t k = 0; k < x->n; k++) {
            struct stat sb;
            ok &= stat(x->paths[k], &sb) == 0 && S_ISREG(sb.st_mode) && x->sop_uids[k][0] != 0;
        }
        printf("  series modality=%s body=%s frames=%u rows=%u cols=%u origin=%s calling=%s "
               "n=%zu sops_ok=%d\n",
               x->attrs.modality, x->attrs.body_part, x->attrs.n_frames, x->attrs.rows,
               x->attrs.columns, x->attrs.origin, x->attrs.calling_ae, x->n, ok);
    }
    return 0;
}

static void log_fn(void *arg, int level, const char *msg)
{
    (void)arg;
    fprintf(stderr, "intake[%d]: %s\n", level, msg);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: intake_drive HOME OFFSET_S\n");
        return 2;
    }
    agora__intake_config c;
    agora__intake_config_default(&c);
    c.log = log_fn;
    agora__intake *in = NULL;
    agora__error e = {0};
    if (agora__intake_open(argv[1], &c, &in, &e) != 0) {
        fprintf(stderr, "intake_drive: %s\n", e.msg);
        return 1;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + atoll(argv[2]) * 1000;
    agora__intake_poll_stats ps;
    int rc = agora__intake_poll(in, now, on_complete, NULL, &ps, &e);
    if (rc == 0)
        printf("poll grouped=%u rejected=%u backlog=%u emitted=%u\n", ps.grouped, ps.rejected,
               ps.backlog, ps.emitted);
    else
        fprintf(stderr, "intake_drive: %s\n", e.msg);
    agora__intake_close(in);
    return rc == 0 ? 0 : 1;
}
