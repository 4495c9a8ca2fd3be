/*
 * fake_runner — a stand-in for agora-runner that speaks the real protocol but runs no plugin
 * and applies no sandbox. It lets the pool be tested on its own, including misbehaviour the
 * real runner would never produce (descriptors sent back, garbage, oversized frames).
 *
 * The "plugin bytes" are text: `fake-plugin setup=<ok|error|crash|hang|wrong-id>`.
 * Each Job's behaviour is its attribute `fake` (see behave()). Every ok Result carries the
 * measurements "sum" (sum of pixel bytes), "pid" and "jobs" (jobs this process has run).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frame.h"

/* The channel frames go to: fd 3, or in a zygote-mode job process that job's own channel. */
static int SOCK = 3;

static agora__frame_reader rd;
static unsigned jobs_run;
static int fork_per_job;

static void send_frame(Agora__Ipc__Frame *f, const int *fds, unsigned n_fds)
{
    uint8_t *buf;
    size_t len;
    agora__error err;
    if (agora__frame_pack(f, AGORA__FRAME_RUNNER_TO_HOST_MAX, &buf, &len, &err) < 0 ||
        agora__frame_send_all(SOCK, buf, len, fds, n_fds, &err) < 0)
        _exit(90);
    free(buf);
}

static void send_error(Agora__Ipc__Stage stage, int code, const char *msg)
{
    Agora__Ipc__Error e = AGORA__IPC__ERROR__INIT;
    e.stage = stage;
    e.code = code;
    e.message = (char *)msg;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_ERROR;
    f.error = &e;
    send_frame(&f, NULL, 0);
}

static void send_result(Agora__Ipc__Result *r)
{
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_RESULT;
    f.result = r;
    send_frame(&f, NULL, 0);
}

static void die_by(int sig)
{
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
    _exit(91);
}

static const char *attr(const Agora__Ipc__Job *j, const char *kw)
{
    for (size_t i = 0; i < j->n_attributes; i++)
        if (strcmp(j->attributes[i]->keyword, kw) == 0)
            return j->attributes[i]->value;
    return "";
}

/* Wait up to ms for a Cancel for this job; 1 when it came. */
static int wait_cancel(uint64_t job_id, int ms)
{
    uint64_t end = agora__now_ns() + (uint64_t)ms * 1000000u;
    while (agora__now_ns() < end) {
        struct pollfd p = {SOCK, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        agora__error err;
        Agora__Ipc__Frame *f;
        if (agora__frame_recv(&rd, SOCK, &f, &err) != 1)
            _exit(92);
        int hit = f->msg_case == AGORA__IPC__FRAME__MSG_CANCEL && f->cancel->job_id == job_id;
        agora__frame_free(&rd, f);
        if (hit)
            return 1;
    }
    return 0;
}

static void run_job(const Agora__Ipc__Job *j, int pix_fd, int out_fd)
{
    const char *b = attr(j, "fake");
    jobs_run++;
    Agora__Ipc__Result r = AGORA__IPC__RESULT__INIT;
    r.job_id = j->job_id;
    r.status = AGORA__IPC__JOB_STATUS__JOB_OK;

    /* The pixels must arrive sealed; a writable buffer is an input error. */
    int seals = fcntl(pix_fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_WRITE)) {
        r.status = AGORA__IPC__JOB_STATUS__JOB_INPUT_ERROR;
        r.error = "pixel memfd is not sealed";
        send_result(&r);
        return;
    }
    const uint8_t *px = mmap(NULL, j->pixel_bytes, PROT_READ, MAP_SHARED, pix_fd, 0);
    if (px == MAP_FAILED) {
        r.status = AGORA__IPC__JOB_STATUS__JOB_INPUT_ERROR;
        r.error = "cannot map pixels";
        send_result(&r);
        return;
    }
    uint64_t sum = 0;
    for (uint64_t i = 0; i < j->pixel_bytes; i++)
        sum += px[i];
    munmap((void *)px, j->pixel_bytes);

    if (strcmp(b, "segv") == 0)
        die_by(SIGSEGV);
    if (strcmp(b, "sigsys") == 0)
        die_by(SIGSYS);
    if (strcmp(b, "abort") == 0)
        die_by(SIGABRT);
    if (strcmp(b, "exit3") == 0)
        _exit(3);
    if (strcmp(b, "sigkill-self") == 0)
        die_by(SIGKILL);
    if (strcmp(b, "exit-oom") == 0)
        _exit(16); /* agora-runner's crash probe: memory at the cap */
    if (strcmp(b, "sleep") == 0) {
        /* Ignores Cancel: the host has to kill it. */
        for (;;)
            pause();
    }
    if (strcmp(b, "sleep-cancellable") == 0) {
        if (wait_cancel(j->job_id, 10000)) {
            r.status = AGORA__IPC__JOB_STATUS__JOB_CANCELLED;
            send_result(&r);
            return;
        }
    }
    if (strcmp(b, "send-fd") == 0) {
        Agora__Ipc__Log l = AGORA__IPC__LOG__INIT;
        l.text = "here is a descriptor";
        Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
        f.msg_case = AGORA__IPC__FRAME__MSG_LOG;
        f.log = &l;
        send_frame(&f, &out_fd, 1);
        pause();
    }
    if (strcmp(b, "oversize") == 0) {
        uint8_t hdr[4] = {0, 0, 0x90, 0}; /* 9 MiB */
        agora__error err;
        agora__frame_send_all(SOCK, hdr, 4, NULL, 0, &err);
        pause();
    }
    if (strcmp(b, "garbage") == 0) {
        uint8_t g[] = {4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
        agora__error err;
        agora__frame_send_all(SOCK, g, sizeof g, NULL, 0, &err);
        pause();
    }
    if (strcmp(b, "close-and-hang") == 0) {
        close(SOCK);
        for (;;)
            pause();
    }
    if (strcmp(b, "eproto") == 0) {
        send_error(AGORA__IPC__STAGE__STAGE_JOB, -EPROTO, "the channel broke");
        _exit(14);
    }
    if (strcmp(b, "error-job") == 0) {
        send_error(AGORA__IPC__STAGE__STAGE_JOB, -ENOMEM, "cannot allocate the job's buffers");
        _exit(1);
    }
    if (strcmp(b, "plugin-error") == 0 || strcmp(b, "enomem") == 0) {
        r.status = AGORA__IPC__JOB_STATUS__JOB_PLUGIN_ERROR;
        r.plugin_code = b[0] == 'e' ? AGORA_ENOMEM : AGORA_EINPUT;
        r.error = "the image is not a chest CT";
        send_result(&r);
        return;
    }
    if (strcmp(b, "child-sigsys") == 0 || strcmp(b, "child-sigkill") == 0 ||
        strcmp(b, "child-oom") == 0) {
        r.status = AGORA__IPC__JOB_STATUS__JOB_CHILD_DIED;
        int oom = strcmp(b, "child-oom") == 0;
        r.child_signal = oom ? 0 : strcmp(b, "child-sigsys") == 0 ? SIGSYS : SIGKILL;
        r.child_exit = oom ? 16 : -1;
        send_result(&r);
        return;
    }
    if (strcmp(b, "progress") == 0 || strcmp(b, "log") == 0) {
        Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
        Agora__Ipc__Progress p = AGORA__IPC__PROGRESS__INIT;
        Agora__Ipc__Log l = AGORA__IPC__LOG__INIT;
        if (b[0] == 'p') {
            p.job_id = j->job_id;
            p.fraction = 0.5;
            f.msg_case = AGORA__IPC__FRAME__MSG_PROGRESS;
            f.progress = &p;
        } else {
            l.job_id = j->job_id;
            l.level = AGORA_LOG_INFO;
            l.text = "a line from the plugin";
            f.msg_case = AGORA__IPC__FRAME__MSG_LOG;
            f.log = &l;
        }
        send_frame(&f, NULL, 0);
    }

    Agora__Ipc__Code code = AGORA__IPC__CODE__INIT;
    code.scheme = "99FAKE";
    code.code = "1";
    code.meaning = "Something";
    Agora__Ipc__Finding fi = AGORA__IPC__FINDING__INIT;
    fi.code = &code;
    fi.confidence = strcmp(b, "bad-result") == 0 ? 2.0 : 0.75;
    fi.frame = AGORA_NONE;
    fi.region = AGORA_NONE;
    Agora__Ipc__Finding *fp[1] = {&fi};
    Agora__Ipc__Measurement m[3];
    Agora__Ipc__Measurement *mp[3];
    const char *names[3] = {"sum", "pid", "jobs"};
    double vals[3] = {(double)sum, (double)getpid(), (double)jobs_run};
    for (int i = 0; i < 3; i++) {
        agora__ipc__measurement__init(&m[i]);
        m[i].name = (char *)names[i];
        m[i].value = vals[i];
        m[i].unit = "1";
        m[i].frame = AGORA_NONE;
        m[i].region = AGORA_NONE;
        mp[i] = &m[i];
    }
    r.n_findings = 1;
    r.findings = fp;
    r.n_measurements = 3;
    r.measurements = mp;
    Agora__Ipc__Region rg = AGORA__IPC__REGION__INIT;
    Agora__Ipc__Region *rp[1] = {&rg};
    if (strcmp(b, "mask") == 0) {
        uint64_t len = (uint64_t)j->image->rows * j->image->columns;
        uint8_t *mk = malloc(len);
        for (uint64_t i = 0; i < len; i++)
            mk[i] = (uint8_t)(i & 1);
        if (pwrite(out_fd, mk, len, 0) != (ssize_t)len)
            _exit(93);
        free(mk);
        rg.id = 0;
        rg.kind = 4;
        rg.frame = 0;
        rg.mask_frames = 1;
        rg.mask_bits = 8;
        rg.mask_offset = 0;
        rg.mask_length = len;
        rg.label = "lesion";
        r.n_regions = 1;
        r.regions = rp;
        fi.region = 0;
    }
    if (strcmp(b, "wrong-job") == 0)
        r.job_id++;
    r.summary = "fake summary";
    r.cpu_us = 1;
    r.peak_rss_kb = 1000;
    send_result(&r);
}

/* Zygote mode (protocol 2): the job process keeps only the job channel, reads its Job there,
 * answers there; the zygote reports JobExit, as the real runner does. */
static void fork_job(uint64_t job_id, int chan)
{
    pid_t c = fork();
    if (c < 0)
        _exit(94);
    if (c == 0) {
        close(3);
        SOCK = chan;
        agora__frame_reader_free(&rd);
        agora__frame_reader_init(&rd, AGORA__FRAME_HOST_TO_RUNNER_MAX, 2);
        Agora__Ipc__Frame *f;
        agora__error err;
        int fds[2];
        if (agora__frame_recv(&rd, SOCK, &f, &err) != 1 ||
            f->msg_case != AGORA__IPC__FRAME__MSG_JOB || f->job->job_id != job_id ||
            agora__frame_reader_take_fds(&rd, fds, 2) != 2)
            _exit(96);
        run_job(f->job, fds[0], fds[1]);
        _exit(0);
    }
    close(chan);
    int st;
    while (waitpid(c, &st, 0) < 0)
        if (errno != EINTR)
            _exit(95);
    Agora__Ipc__JobExit e = AGORA__IPC__JOB_EXIT__INIT;
    e.job_id = job_id;
    e.signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    e.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_JOB_EXIT;
    f.job_exit = &e;
    send_frame(&f, NULL, 0);
}

int main(void)
{
    agora__frame_reader_init(&rd, AGORA__FRAME_HOST_TO_RUNNER_MAX, 2);
    agora__error err;
    Agora__Ipc__Frame *f;
    if (agora__frame_recv(&rd, SOCK, &f, &err) != 1 || f->msg_case != AGORA__IPC__FRAME__MSG_SETUP)
        return 80;
    int pfd;
    if (agora__frame_reader_take_fds(&rd, &pfd, 1) != 1)
        return 81;
    Agora__Ipc__Setup *s = f->setup;
    fork_per_job = s->fork_per_job;
    char bytes[256] = {0};
    ssize_t n = pread(pfd, bytes, sizeof bytes - 1, 0);
    close(pfd);
    if (n <= 0 || (uint64_t)n != s->plugin_size)
        return 82;
    uint8_t d[32];
    agora__sha256(bytes, (size_t)n, d);
    if (s->plugin_sha256.len != 32 || memcmp(d, s->plugin_sha256.data, 32) != 0) {
        send_error(AGORA__IPC__STAGE__STAGE_SETUP, AGORA_EINVAL, "plugin bytes do not hash");
        return 1;
    }
    if (memmem(bytes, (size_t)n, "setup=error", strlen("setup=error"))) {
        send_error(AGORA__IPC__STAGE__STAGE_INIT, AGORA_EINTERNAL, "init failed: no model");
        return 1;
    }
    if (memmem(bytes, (size_t)n, "setup=crash", strlen("setup=crash")))
        die_by(SIGSEGV);
    if (memmem(bytes, (size_t)n, "setup=hang", strlen("setup=hang")))
        for (;;)
            pause();
    Agora__Ipc__Ready r = AGORA__IPC__READY__INIT;
    r.protocol_version = s->protocol_version; /* echo, as the real runner does */
    r.plugin_abi_version = AGORA_ABI_VERSION;
    r.plugin_id = memmem(bytes, (size_t)n, "setup=wrong-id", strlen("setup=wrong-id")) ? "com.example.other" : s->plugin_id;
    r.plugin_version = s->plugin_version;
    r.runner_pid = (uint32_t)getpid();
    Agora__Ipc__Frame rf = AGORA__IPC__FRAME__INIT;
    rf.msg_case = AGORA__IPC__FRAME__MSG_READY;
    rf.ready = &r;
    send_frame(&rf, NULL, 0);
    agora__frame_free(&rd, f);

    for (;;) {
        int rc = agora__frame_recv(&rd, SOCK, &f, &err);
        if (rc == 0)
            return 0;
        if (rc < 0)
            return 83;
        switch (f->msg_case) {
        case AGORA__IPC__FRAME__MSG_JOB: {
            int fds[2];
            if (agora__frame_reader_take_fds(&rd, fds, 2) != 2)
                return 84;
            if (fork_per_job)
                return 86; /* zygote mode takes ForkJob only */
            run_job(f->job, fds[0], fds[1]);
            close(fds[0]);
            close(fds[1]);
            break;
        }
        case AGORA__IPC__FRAME__MSG_FORK_JOB: {
            int chan;
            if (!fork_per_job || agora__frame_reader_take_fds(&rd, &chan, 1) != 1)
                return 87;
            fork_job(f->fork_job->job_id, chan);
            break;
        }
        case AGORA__IPC__FRAME__MSG_SHUTDOWN:
            return 0;
        default:
            break; /* a late Cancel */
        }
        agora__frame_free(&rd, f);
    }
}
