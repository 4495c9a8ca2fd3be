/*
 * Benchmark (not a test): how long the intake takes to group a 300-slice 512x512 CT (160 MB)
 * against how long the same files take to be received into the spool, same run.
 *
 *   receive  300 x agora__spool_begin/write/commit of the data sets (file, fsync, rename,
 *            directory fsync, SQLite row with synchronous=FULL): the durable part of a C-STORE
 *            receipt, without the network (which only makes the real receipt longer)
 *   group    one agora__intake_poll that groups the 300 rows through the sandboxed reader
 *            (one reader process; its start is included) and emits the study
 *   spawn    the reader's start alone (agora__ingest_open)
 *
 * Prints medians of RUNS runs (each on a fresh spool) and the ratio group / receive.
 * Usage: bench_intake [RUNS] (default 3). Needs $AGORA_RUNNER (set by `ninja bench-intake`).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "dicom.h"
#include "intake.h"
#include "spool.h"
#include "synth.h"

#define N_FILES  300
#define RUNS_MAX 15

typedef struct file {
    char sop[65], sop_class[65], ts[65];
    uint8_t *data;
    size_t len;
} file;

static file files[N_FILES];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what, const agora__error *e)
{
    fprintf(stderr, "bench_intake: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

static size_t emitted_instances;

static int on_complete(void *arg, const agora__intake_study *st)
{
    (void)arg;
    emitted_instances += st->n_instances;
    return 0;
}

static void load(const char *dir)
{
    agora__error e = {0};
    for (int i = 0; i < N_FILES; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/IM%05d.dcm", dir, i + 1);
        uint8_t *buf = NULL;
        size_t len = 0;
        agora__dicom_file *f = NULL;
        if (agora__read_file(p, 1u << 24, &buf, &len, &e) != 0 ||
            agora__dicom_read(buf, len, NULL, &f, &e) != 0)
            die("reading the synthetic series", &e);
        file *x = &files[i];
        if (agora__dicom_get_string(&f->dataset, AGORA__DICOM_TAG(0x0008, 0x0018), 0, x->sop,
                                    sizeof x->sop) != 0 ||
            agora__dicom_get_string(&f->dataset, AGORA__DICOM_TAG(0x0008, 0x0016), 0, x->sop_class,
                                    sizeof x->sop_class) != 0)
            die("the synthetic series has no SOP UIDs", NULL);
        strcpy(x->ts, f->transfer_syntax);
        x->len = len - (size_t)f->dataset_offset;
        x->data = malloc(x->len);
        if (x->data == NULL)
            die("out of memory", NULL);
        memcpy(x->data, buf + f->dataset_offset, x->len);
        agora__dicom_file_free(f);
        free(buf);
    }
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 3;
    if (runs < 1 || runs > RUNS_MAX)
        runs = 3;
    char root[] = "/tmp/agora-bench-intake-XXXXXX";
    if (mkdtemp(root) == NULL)
        die("mkdtemp", NULL);
    char dir[128];
    snprintf(dir, sizeof dir, "%s/ct", root);
    agora__synth_opts o = {0};
    o.ct = 1;
    o.slices = N_FILES;
    o.rows = 512;
    o.cols = 512;
    o.seed = 300;
    o.have_seed = 1;
    o.out = dir;
    agora__synth_planted pl;
    agora__error e = {0};
    if (agora__synth_write(&o, &pl, &e) != 0)
        die("synthesizing", &e);
    load(dir);
    uint64_t bytes = 0;
    for (int i = 0; i < N_FILES; i++)
        bytes += files[i].len;

    double t_recv[RUNS_MAX], t_group[RUNS_MAX], t_poll[RUNS_MAX], t_spawn[RUNS_MAX];
    for (int r = 0; r < runs; r++) {
        char home[160];
        snprintf(home, sizeof home, "%s/home%d", root, r);
        agora__spool *sp = NULL;
        if (agora__spool_open(home, 1u << 26, &sp, &e) != 0)
            die("opening the spool", &e);
        double t0 = now_s();
        for (int i = 0; i < N_FILES; i++) {
            agora__spool_instance inst = {
                files[i].sop_class, files[i].sop, files[i].ts, "BENCH", "AGORA", NULL};
            agora__spool_txn *t = NULL;
            int dup = 0;
            if (agora__spool_begin(sp, &inst, &t, &e) != 0 ||
                agora__spool_write(t, files[i].data, files[i].len, &e) != 0 ||
                agora__spool_commit(t, &dup, &e) != 0)
                die("spooling", &e);
        }
        t_recv[r] = now_s() - t0;
        agora__spool_close(sp);

        agora__ingest *ing = NULL;
        t0 = now_s();
        if (agora__ingest_open(NULL, &ing, &e) != 0)
            die("starting the reader", &e);
        t_spawn[r] = now_s() - t0;
        agora__ingest_close(ing);

        agora__intake_config c;
        agora__intake_config_default(&c);
        c.budget_ms = 60000; /* group everything in this one poll */
        agora__intake *in = NULL;
        if (agora__intake_open(home, &c, &in, &e) != 0)
            die("opening the intake", &e);
        agora__intake_poll_stats ps;
        emitted_instances = 0;
        int64_t far = (int64_t)time(NULL) * 1000 + 24LL * 3600 * 1000; /* every timer passed */
        t0 = now_s();
        if (agora__intake_poll(in, far, on_complete, NULL, &ps, &e) != 0)
            die("polling", &e);
        t_poll[r] = now_s() - t0;
        t_group[r] = (double)ps.group_us / 1e6;
        if (ps.grouped != N_FILES || ps.emitted != 1 || emitted_instances != N_FILES) {
            fprintf(stderr, "bench_intake: grouped %u, emitted %u studies (%zu instances)\n",
                    ps.grouped, ps.emitted, emitted_instances);
            return 1;
        }
        agora__intake_close(in);
        printf("run %d: receive %.3f s, group %.3f s, poll %.3f s, reader start %.3f s\n", r + 1,
               t_recv[r], t_group[r], t_poll[r], t_spawn[r]);
    }
    double recv = median(t_recv, runs), group = median(t_group, runs), poll = median(t_poll, runs),
           spawn = median(t_spawn, runs);
    printf("\n%d files, %.1f MB, medians of %d runs:\n", N_FILES, (double)bytes / 1e6, runs);
    printf("  receive into the spool (baseline) %8.3f s  (%.2f ms/file)\n", recv,
           recv * 1000 / N_FILES);
    printf("  group in the sandboxed reader     %8.3f s  (%.2f ms/file)\n", group,
           group * 1000 / N_FILES);
    printf("  whole poll (group + timers + emit) %7.3f s\n", poll);
    printf("  reader start (in group)           %8.3f s\n", spawn);
    printf("  ratio group / receive             %8.3f\n", group / recv);
    for (int i = 0; i < N_FILES; i++)
        free(files[i].data);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : 1;
}
