/*
 * `agora deid INPUT... -o OUTDIR`: write de-identified copies of DICOM files following the
 * PS3.15 Annex E Basic Application Level Confidentiality Profile (profile.c), with the options
 * given by --keep. Inputs are only ever read; outputs are named by their pseudonymous SOP
 * Instance UID (input file names can carry identity) and written atomically.
 *
 * Rule of two: the host never parses an input. It opens each file and passes the descriptor to
 * a sandboxed agora-runner (MODE_INGEST), which applies the profile and writes the Part 10
 * bytes into a memfd; the host computes the pseudonyms (the clinic secret stays here), copies
 * the output out with sendfile, checks the copy and renames it into place
 * (docs/deidentification.md).
 */
#include "cli_util.h"
#include "commands.h"
#include "deid_run.h"
#include "json_emit.h"
#include "opt.h"
#include "progress.h"
#include "deid.h"
#include "ingest.h"
#include "outfile.h"
#include "profile.h"
#include "rules.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_THREADS        8
#define MAX_FILE_BYTES     ((size_t)2 << 30) /* 2 GiB: larger single files are not plausible input */
#define PROGRESS_MIN_FILES 20                /* fewer files finish too soon to need progress */


typedef struct deid_cmd {
    const char *outdir;
    const char *secret_path;
    const char *keep[AGORA__PS315_COUNT];
    size_t n_keep;
    int json;
    int allow_burned_in;
    int defined_lengths;
    int sync;
    int quiet;
    const char *const *studies; /* agora__deid_request.studies */
    size_t n_studies;
    const char *who;
    agora__progress pr;          /* the files done; under lock */
    agora__deid_uidmap *written; /* pseudonym -> input path of every output of this run */
    pthread_mutex_t lock;        /* counters, the next-file index and progress lines */
} deid_cmd;


/* The key: --secret FILE, else the de-identification key of the clinic home's one secret
 * (AGORA__KEY_DEID, common/home.h; the secret is created on first use, an old deid.secret is
 * migrated into it). */
static int load_secret(const char *path, uint8_t secret[32], agora__error *err)
{
    if (path != NULL)
        return agora__key_file_read(path, secret, err);
    char home[4096];
    if (agora__home_dir(NULL, home, sizeof home, NULL) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "no clinic secret: no clinic home (neither AGORA_HOME nor HOME is "
                                "set); pass --secret FILE (32 random bytes, e.g. `head -c 32 "
                                "/dev/urandom > FILE; chmod 600 FILE`) or set AGORA_HOME");
    if (agora__mkdirs(home, 0700, err) != 0)
        return err ? err->code : AGORA_EINVAL;
    agora__home_secret s;
    unsigned done = 0;
    int rc =
        agora__home_secret_load(home, AGORA__SECRET_CREATE | AGORA__SECRET_MIGRATE, &s, &done, err);
    if (rc == 0)
        rc = agora__home_key(&s, AGORA__KEY_DEID, secret);
    agora__home_secret_wipe(&s);
    if (rc != 0)
        return rc;
    char p[4096];
    if (agora__home_path(home, AGORA__HOME_SECRET, p, sizeof p, NULL) != 0)
        p[0] = '\0';
    if (done & AGORA__SECRET_MIGRATED)
        fprintf(stderr,
                "agora: migrated deid.secret into %s; agora deid keeps its pseudonyms (back up "
                "%s: it is now the only clinic secret)\n",
                p, p);
    else if (done & AGORA__SECRET_CREATED)
        fprintf(stderr,
                "agora deid: created a new clinic secret %s; keep it: pseudonyms "
                "depend on it\n",
                p);
    return 0;
}

typedef struct totals {
    uint64_t inputs, written, refused, failed, skipped, unselected, bytes_in, bytes_out;
} totals;

/* Per-thread state: the thread's own sandboxed parser (agora__ingest is not thread-safe),
 * started on the thread's first file and reused for the rest. */
typedef struct thread_ctx {
    agora__ingest *ing;
    /* The output memfd, reused from file to file (grown, never shrunk): a fresh one per file
     * cost a page allocation and zeroing of every output page. Not sealed, so the worker could
     * change it while the host copies it out; the host therefore checks the copy it renames
     * into place, never the memfd (and the bytes are that worker's own output anyway). */
    int mfd;
    uint64_t mfd_cap;
} thread_ctx;

/* Reserve an output name for this run: two inputs with the same SOP Instance UID would
 * otherwise silently replace each other's output. The same path twice is harmless. */
/* A message about one file, from any worker thread: it ends the progress line first, so it is
 * not written into it. */
__attribute__((format(printf, 2, 3))) static void file_error(deid_cmd *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&c->lock);
    agora__progress_end(&c->pr);
    vfprintf(stderr, fmt, ap);
    pthread_mutex_unlock(&c->lock);
    va_end(ap);
}

static int claim_name(deid_cmd *c, const char *name, const char *path)
{
    pthread_mutex_lock(&c->lock);
    int rc = agora__deid_uidmap_add(c->written, AGORA__DEID_UID_INSTANCE, name, path, NULL);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* 128 zero bytes and "DICM": how every Part 10 file the writer produces starts. */
static const uint8_t part10_start[132] = {[128] = 'D', [129] = 'I', [130] = 'C', [131] = 'M'};

/* Pseudonyms for the UIDs the worker's dry run found, computed here: the clinic secret never
 * enters the worker. pseudonyms[i] points into store (n * 65 bytes, owned by the caller). */
static int make_pseudonyms(const agora__deid_profile *prof, const agora__ingest_deid_uids *u,
                           char **store, const char ***pseudonyms, agora__error *err)
{
    *store = NULL;
    *pseudonyms = NULL;
    if (u->n == 0)
        return 0;
    *store = malloc(u->n * 65);
    *pseudonyms = malloc(u->n * sizeof **pseudonyms);
    if (*store == NULL || *pseudonyms == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    for (size_t i = 0; i < u->n; i++) {
        char *out = *store + i * 65;
        int rc = agora__deid_uid(prof->secret, u->uids[i], out, err);
        if (rc != 0)
            return rc;
        (*pseudonyms)[i] = out;
    }
    return 0;
}

/* Whether the instance is one of the --study selection: one of its UIDs (the worker's list:
 * its Study Instance UID or a reference) is a selected study. */
static int selected(const deid_cmd *c, const agora__ingest_deid_uids *u)
{
    if (c->n_studies == 0)
        return 1;
    for (size_t i = 0; i < u->n; i++)
        for (size_t k = 0; k < c->n_studies; k++)
            if (strcmp(u->uids[i], c->studies[k]) == 0)
                return 1;
    return 0;
}

/* De-identify one file in the sandboxed parser. Returns 0 written, 1 skipped (not DICOM, the
 * worker's word, or empty), 2 refused (policy or an unsupported kind of file: burned-in,
 * DICOMDIR, unexpected encapsulation), 3 not among the --study selection, -1 failed. The message
 * (path + reason, never a value) is printed here. Safe to call from several threads, each with its
 * own tc. */
static int one_file(deid_cmd *c, const agora__deid_profile *prof, const char *path, int check_inode,
                    thread_ctx *tc, agora__deid_stats *stats, totals *t)
{
    agora__error err = {0};
    /* The host opens the file and hands the descriptor to the worker: it never reads it. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        file_error(c, "%s: cannot open %s: %s\n", c->who, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        file_error(c, "%s: %s is not a regular file\n", c->who, path);
        return -1;
    }
    if ((uint64_t)st.st_size > MAX_FILE_BYTES) {
        close(fd);
        file_error(c, "%s: %s is larger than %zu bytes; not a plausible DICOM input\n", c->who,
                   path, MAX_FILE_BYTES);
        return -1;
    }
    uint64_t len = (uint64_t)st.st_size;
    if (len == 0) {
        close(fd);
        return 1;
    }
    if (tc->ing == NULL) {
        agora__ingest_options io;
        agora__ingest_options_default(&io);
        io.max_file_bytes = MAX_FILE_BYTES;
        if (agora__ingest_open(&io, &tc->ing, &err) != 0) {
            close(fd);
            file_error(c, "%s: %s\n", c->who, err.msg);
            return -1;
        }
    }
    agora__ingest_deid_profile ip = {prof->options, prof->flags, prof->write_flags};
    agora__ingest_deid_uids u;
    int why = 0;
    if (agora__ingest_deid_uids_of(tc->ing, path, fd, len, &ip, &u, &why, &err) != 0) {
        close(fd);
        if (why == AGORA__INGEST_DEID_NOT_DICOM)
            return 1;
        file_error(c, "%s: %s%s\n", c->who, err.msg,
                   why == AGORA__INGEST_DEID_REFUSED ? "" : "; it was not copied");
        return why == AGORA__INGEST_DEID_REFUSED ? 2 : -1;
    }
    if (!selected(c, &u)) {
        close(fd);
        agora__ingest_deid_uids_free(&u);
        return 3;
    }
    char *store = NULL;
    const char **pseudonyms = NULL;
    int days = 0;
    int result = 0;
    if (make_pseudonyms(prof, &u, &store, &pseudonyms, &err) != 0) {
        file_error(c, "%s: %s: %s\n", c->who, path, err.msg);
        result = -1;
    }
    if (prof->options & (1u << AGORA__PS315_RTN_LONG_MODIF_DATES))
        days = agora__deid_date_offset(prof->secret, u.patient_id, strlen(u.patient_id));
    /* The output cap of the in-process writer: an element grows at most about five-fold (a
     * 1-character UID of a 10-byte element becomes a 44-character pseudonym; an empty name
     * becomes a dummy), plus the meta group and the added attributes. The memfd is sparse:
     * only what the worker writes costs memory. */
    uint64_t cap = 6 * len + (1u << 20);
    if (result == 0 && tc->mfd < 0) {
        tc->mfd = memfd_create("agora-deid", MFD_CLOEXEC);
        tc->mfd_cap = 0;
    }
    if (result == 0 &&
        (tc->mfd < 0 || (cap > tc->mfd_cap && ftruncate(tc->mfd, (off_t)cap) != 0))) {
        file_error(c, "%s: %s: memfd for the output: %s\n", c->who, path, strerror(errno));
        result = -1;
    } else if (result == 0 && cap > tc->mfd_cap) {
        tc->mfd_cap = cap;
    }
    agora__ingest_deid_written wr = {0};
    if (result == 0 &&
        agora__ingest_deid_write(tc->ing, path, fd, len, &ip, (const char *const *)u.uids,
                                 pseudonyms, u.n, days, tc->mfd, cap, &wr, &why, &err) != 0) {
        file_error(c, "%s: %s%s\n", c->who, err.msg,
                   why == AGORA__INGEST_DEID_REFUSED ? "" : "; it was not copied");
        result = why == AGORA__INGEST_DEID_REFUSED ? 2 : -1;
    }
    close(fd);
    agora__ingest_deid_uids_free(&u);
    free(store);
    free(pseudonyms);
    if (result == 0) {
        /* Named by the pseudonymous SOP Instance UID (digits and dots, one the host issued):
         * input names can carry identity. */
        char dst[4096];
        struct stat in_st, out_st;
        if (snprintf(dst, sizeof dst, "%s/%s.dcm", c->outdir, wr.sop) >= (int)sizeof dst) {
            file_error(c, "%s: %s: cannot name the output; output path too long\n", c->who, path);
            result = -1;
        } else if (check_inode && stat(path, &in_st) == 0 && stat(dst, &out_st) == 0 &&
                   in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino) {
            file_error(c,
                       "%s: %s: the output would replace this input; choose "
                       "another -o directory\n",
                       c->who, path);
            result = -1;
        } else if (claim_name(c, wr.sop, path) != 0) {
            file_error(c,
                       "%s: %s: another input of this run has the same SOP Instance "
                       "UID; the first one was written, this one was not\n",
                       c->who, path);
            result = -1;
        } else if (agora__deid_write_fd(dst, tc->mfd, (size_t)wr.used, part10_start,
                                        sizeof part10_start, &err) != 0) {
            /* Copied by the kernel; the copy must start with the Part 10 preamble and "DICM"
             * (the host does not parse the rest: it came from a worker that parsed hostile
             * input; see docs/deidentification.md). */
            file_error(c, "%s: %s\n", c->who, err.msg);
            result = -1;
        }
    }
    pthread_mutex_lock(&c->lock);
    t->bytes_in += len;
    if (result == 0) {
        t->bytes_out += wr.used;
        stats->kept += wr.stats[0];
        stats->removed += wr.stats[1];
        stats->emptied += wr.stats[2];
        stats->dummied += wr.stats[3];
        stats->uids += wr.stats[4];
        stats->dates_shifted += wr.stats[5];
        stats->private_removed += wr.stats[6];
        stats->private_kept += wr.stats[7];
        stats->overlay_curve_removed += wr.stats[8];
        stats->added += wr.stats[9];
    }
    pthread_mutex_unlock(&c->lock);
    return result;
}

/* Work shared by the threads: the next file to take, the counters. */
typedef struct work {
    deid_cmd *c;
    const agora__deid_profile *prof;
    agora__cli_files *files;
    size_t next, done;
    agora__deid_stats stats;
    totals t;
    int check_inode; /* an input lies in the output directory: check before replacing */
} work;

static void *worker(void *arg)
{
    work *w = arg;
    thread_ctx tc = {NULL, -1, 0};
    for (;;) {
        pthread_mutex_lock(&w->c->lock);
        size_t i = w->next < w->files->n ? w->next++ : SIZE_MAX;
        pthread_mutex_unlock(&w->c->lock);
        if (i == SIZE_MAX)
            break;
        int r = one_file(w->c, w->prof, w->files->paths[i], w->check_inode, &tc, &w->stats, &w->t);
        pthread_mutex_lock(&w->c->lock);
        if (r == 0)
            w->t.written++;
        else if (r == 1)
            w->t.skipped++;
        else if (r == 2)
            w->t.refused++;
        else if (r == 3)
            w->t.unselected++;
        else
            w->t.failed++;
        size_t done = ++w->done;
        if (w->files->n >= PROGRESS_MIN_FILES) {
            char text[64];
            snprintf(text, sizeof text, "%s: %zu/%zu files", w->c->who, done, w->files->n);
            agora__progress_step(&w->c->pr, done, w->files->n, text);
        }
        pthread_mutex_unlock(&w->c->lock);
    }
    agora__ingest_close(tc.ing);
    if (tc.mfd >= 0)
        close(tc.mfd);
    return NULL;
}

/* Non-zero when some input file sits directly in outdir (then an output could take an input's
 * name: each write checks inodes first). One stat per distinct parent directory. */
static int inputs_in_outdir(const agora__cli_files *files, const char *outdir)
{
    struct stat od;
    if (stat(outdir, &od) != 0)
        return 1;
    char last[4096] = "";
    for (size_t i = 0; i < files->n; i++) {
        const char *p = files->paths[i];
        const char *slash = strrchr(p, '/');
        char dir[4096];
        if (slash == NULL)
            snprintf(dir, sizeof dir, ".");
        else if ((size_t)(slash - p) + 1 >= sizeof dir)
            return 1;
        else
            snprintf(dir, sizeof dir, "%.*s", slash == p ? 1 : (int)(slash - p), p);
        if (strcmp(dir, last) == 0)
            continue;
        memcpy(last, dir, sizeof last);
        struct stat ds;
        if (stat(dir, &ds) != 0 || (ds.st_dev == od.st_dev && ds.st_ino == od.st_ino))
            return 1;
    }
    return 0;
}

/* Returns -1 to go on, else the exit status (0 after --help, 2 after a usage error). */
static int parse_args(int argc, char **argv, deid_cmd *c, agora__cli_files *inputs)
{
    agora__cli_list keep;
    const agora__cli_opt opts[] = {
        {"--output", 'o', AGORA__CLI_VALUE, &c->outdir, "OUTDIR", "write the copies here",
         AGORA__CLI_REQUIRED, NULL},
        {"--keep", 0, AGORA__CLI_LIST, &keep, "OPTION", "apply a PS3.15 option (see below)", 0,
         NULL},
        {"--secret", 0, AGORA__CLI_VALUE, &c->secret_path, "FILE",
         "per-clinic UID secret (32 bytes or 64 hex digits, mode 600)", 0, NULL},
        {"--allow-burned-in", 0, AGORA__CLI_FLAG, &c->allow_burned_in, NULL,
         "also write images that declare (or may have) burned-in text", 0, NULL},
        {"--defined-lengths", 0, AGORA__CLI_FLAG, &c->defined_lengths, NULL,
         "encode sequences and items with explicit lengths", 0, NULL},
        {"--sync", 0, AGORA__CLI_FLAG, &c->sync, NULL,
         "flush the outputs to disk (syncfs) before reporting success", 0, NULL},
        {"--json", 0, AGORA__CLI_FLAG, &c->json, NULL, "print the summary as JSON on stdout", 0,
         NULL},
        AGORA__CLI_OPT_QUIET(&c->quiet),
    };
    const agora__cli_cmd cmd = {
        "deid",
        "INPUT... -o OUTDIR [--keep OPTION]... [--secret FILE]\n"
        "                  [--allow-burned-in] [--defined-lengths] [--sync] [--json] [--quiet]",
        "Writes de-identified copies of DICOM files (PS3.15 Annex E Basic Application Level\n"
        "Confidentiality Profile) into OUTDIR, named <pseudonymous SOP Instance UID>.dcm.\n"
        "INPUT is a file or a directory (searched recursively); inputs are never modified.\n"
        "--keep OPTION: rtnUIDsOpt rtnDevIdOpt rtnInstIdOpt rtnPatCharsOpt\n"
        "rtnLongFullDatesOpt rtnLongModifDatesOpt rtnSafePrivOpt (cleanDescOpt,\n"
        "cleanStructContOpt and cleanGraphOpt are refused: Agora cannot tell identifying\n"
        "from other free text, SR content or overlay graphics).\n"
        "--secret: default: the clinic home's secret (created when missing).\n"
        "Without --sync each file still appears atomically (rename).\n"
        "Progress of 20 files or more goes to stderr (--quiet: none). Exit 0 when every DICOM "
        "input was written, 1 otherwise.",
        opts,
        AGORA__CLI_N(opts),
        1,
        SIZE_MAX};
    size_t n_pos;
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &st))
        return st;
    int rc = -1;
    if (keep.n > AGORA__PS315_COUNT)
        rc = agora__cli_usage_error(cmd.name, "too many --keep options (at most %d)",
                                    AGORA__PS315_COUNT);
    for (size_t i = 0; rc < 0 && i < keep.n; i++)
        c->keep[c->n_keep++] = keep.v[i];
    for (size_t i = 0; rc < 0 && i < n_pos; i++)
        if (agora__cli_files_add(inputs, argv[1 + i]) != 0) {
            fprintf(stderr, "agora deid: too many inputs\n");
            rc = 2;
        }
    agora__cli_list_free(&keep);
    return rc;
}


/* The closing summary: text, or one JSON line with --json. 0, or 1 when the JSON could not be
 * written. */
static int print_summary(const deid_cmd *c, const agora__deid_summary *sum)
{
    const agora__deid_stats *s = &sum->stats;
    if (!c->json) {
        printf("agora deid: %llu written, %llu refused, %llu failed, %llu skipped (not DICOM) "
               "of %llu files in %.2f s -> %s\n",
               (unsigned long long)sum->written, (unsigned long long)sum->refused,
               (unsigned long long)sum->failed, (unsigned long long)sum->skipped,
               (unsigned long long)sum->inputs, sum->seconds, c->outdir);
        printf("  elements: %llu kept, %llu removed, %llu emptied (Z), %llu dummy (D), "
               "%llu UIDs replaced (U), %llu dates shifted, %llu private removed, %llu "
               "private kept, %llu overlay/curve removed, %llu added\n",
               (unsigned long long)s->kept, (unsigned long long)s->removed,
               (unsigned long long)s->emptied, (unsigned long long)s->dummied,
               (unsigned long long)s->uids, (unsigned long long)s->dates_shifted,
               (unsigned long long)s->private_removed, (unsigned long long)s->private_kept,
               (unsigned long long)s->overlay_curve_removed, (unsigned long long)s->added);
        return 0;
    }
    json_t *opts = json_array();
    for (size_t i = 0; i < c->n_keep; i++)
        json_array_append_new(opts, json_string(c->keep[i]));
    json_t *j = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:I}}",
        "files", (json_int_t)sum->inputs, "written", (json_int_t)sum->written, "refused",
        (json_int_t)sum->refused, "failed", (json_int_t)sum->failed, "skipped_not_dicom",
        (json_int_t)sum->skipped, "bytes_in", (json_int_t)sum->bytes_in, "bytes_out",
        (json_int_t)sum->bytes_out, "seconds", sum->seconds, "output", c->outdir, "options", opts,
        "elements", "kept", (json_int_t)s->kept, "removed", (json_int_t)s->removed, "emptied",
        (json_int_t)s->emptied, "dummy", (json_int_t)s->dummied, "uids_replaced",
        (json_int_t)s->uids, "dates_shifted", (json_int_t)s->dates_shifted, "private_removed",
        (json_int_t)s->private_removed, "private_kept", (json_int_t)s->private_kept,
        "overlay_curve_removed", (json_int_t)s->overlay_curve_removed, "added",
        (json_int_t)s->added);
    return agora__json_emit_new(stdout, j, AGORA__JSON_LINE);
}

int agora__deid_run(const agora__deid_request *r, agora__deid_summary *out)
{
    memset(out, 0, sizeof *out);
    deid_cmd c = {0};
    c.outdir = r->outdir;
    c.secret_path = r->secret_path;
    c.allow_burned_in = r->allow_burned_in;
    c.defined_lengths = r->defined_lengths;
    c.sync = r->sync;
    c.quiet = r->quiet;
    c.studies = r->studies;
    c.n_studies = r->n_studies;
    c.who = r->who;
    const char *who = r->who;
    agora__error err = {0};
    if (r->n_studies > AGORA__DEID_MAX_STUDIES) {
        fprintf(stderr, "%s: more than %d --study values; split the export\n", who,
                AGORA__DEID_MAX_STUDIES);
        return 2;
    }
    uint32_t options = 0;
    if (agora__deid_options_parse(r->keep, r->n_keep, &options, &err) != 0) {
        fprintf(stderr, "%s: %s\n", who, err.msg);
        return 2;
    }
    out->options = options;
    agora__cli_files files = {0};
    /* Inputs first: a missing input must fail before any state (the secret) is created. */
    for (size_t i = 0; i < r->n_inputs; i++) {
        if (agora__cli_files_collect(&files, r->inputs[i], 0, &err) != 0) {
            fprintf(stderr, "%s: %s\n", who, err.msg);
            agora__cli_files_free(&files);
            return 1;
        }
    }
    uint8_t secret[32];
    if (load_secret(c.secret_path, secret, &err) != 0) {
        fprintf(stderr, "%s: %s\n", who, err.msg);
        agora__cli_files_free(&files);
        return 1;
    }
    if (agora__mkdirs(c.outdir, 0755, &err) != 0) {
        fprintf(stderr, "%s: %s; choose a writable -o directory\n", who, err.msg);
        agora__cli_files_free(&files);
        sodium_memzero(secret, sizeof secret);
        return 1;
    }

    agora__deid_profile prof = {secret, options,
                                c.allow_burned_in ? AGORA__DEID_ALLOW_BURNED_IN : 0u,
                                c.defined_lengths ? AGORA__DEID_W_DEFINED_LENGTHS : 0u};
    /* Files are independent and may be processed by several threads (AGORA_DEID_THREADS=1..8).
     * The default is one: the work is the kernel copying bytes into the page cache (user time
     * is a few ms for 300 slices), and measured runs were slower with 2 or 4 threads. */
    work w = {&c, &prof, &files, 0, 0, {0}, {0}, 0};
    agora__progress_init(&c.pr, stderr, c.quiet);
    w.check_inode = inputs_in_outdir(&files, c.outdir);
    w.t.inputs = files.n;
    size_t nthreads = 1;
    const char *env_threads = getenv("AGORA_DEID_THREADS"); /* 1..8, for tuning and tests */
    if (env_threads != NULL && env_threads[0] >= '1' && env_threads[0] <= '8' &&
        env_threads[1] == '\0')
        nthreads = (size_t)(env_threads[0] - '0');
    if (nthreads > files.n)
        nthreads = files.n ? files.n : 1;
    pthread_mutex_init(&c.lock, NULL);
    c.written = agora__deid_uidmap_new();
    if (c.written == NULL) {
        fprintf(stderr, "%s: out of memory\n", who);
        agora__cli_files_free(&files);
        sodium_memzero(secret, sizeof secret);
        return 1;
    }
    uint64_t t0 = agora__now_ns();
    pthread_t tids[MAX_THREADS];
    size_t started = 0;
    for (size_t i = 1; i < nthreads; i++) {
        if (pthread_create(&tids[started], NULL, worker, &w) != 0)
            break; /* fewer threads is fine: the main thread works too */
        started++;
    }
    worker(&w);
    for (size_t i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    pthread_mutex_destroy(&c.lock);
    agora__deid_uidmap_free(c.written);
    agora__progress_end(&c.pr);
    sodium_memzero(secret, sizeof secret);
    agora__cli_files_free(&files);
    out->stats = w.stats;
    out->inputs = w.t.inputs;
    out->written = w.t.written;
    out->refused = w.t.refused;
    out->failed = w.t.failed;
    out->skipped = w.t.skipped;
    out->unselected = w.t.unselected;
    out->bytes_in = w.t.bytes_in;
    out->bytes_out = w.t.bytes_out;
    if (c.sync && w.t.written > 0 && agora__deid_sync_dir(c.outdir, &err) != 0) {
        fprintf(stderr, "%s: %s\n", who, err.msg);
        out->failed++;
    }
    out->seconds = (double)(agora__now_ns() - t0) / 1e9;
    return 0;
}

int agora__cmd_deid(int argc, char **argv)
{
    deid_cmd c = {0};
    agora__cli_files args = {0};
    int rc = parse_args(argc, argv, &c, &args);
    if (rc >= 0) {
        agora__cli_files_free(&args);
        return rc;
    }
    agora__deid_request r = {
        .inputs = (const char *const *)args.paths,
        .n_inputs = args.n,
        .outdir = c.outdir,
        .secret_path = c.secret_path,
        .keep = c.keep,
        .n_keep = c.n_keep,
        .allow_burned_in = c.allow_burned_in,
        .defined_lengths = c.defined_lengths,
        .sync = c.sync,
        .quiet = c.quiet,
        .who = "agora deid",
    };
    agora__deid_summary sum;
    rc = agora__deid_run(&r, &sum);
    agora__cli_files_free(&args);
    if (rc != 0)
        return rc;
    int out = print_summary(&c, &sum);
    return (sum.failed || sum.refused || out) ? 1 : 0;
}
