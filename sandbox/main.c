/*
 * agora-runner: the sandboxed worker. The host starts it with fd 3 = its end of an AF_UNIX
 * SOCK_STREAM socketpair and speaks schemas/agora_ipc.proto on it. Steps, in order (DESIGN §2):
 * read Setup and the plugin memfd, verify the bytes, compile the seccomp filters, create the
 * namespaces and the reaper, build the root, lock down, load the plugin under the loader filter,
 * stack the compute filter, send Ready, serve jobs.
 */
#include "runner.h"
#include "ingest.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETUP_FAIL(code, ...)                                                                      \
    agora__runner_fail(AGORA__IPC__STAGE__STAGE_SETUP, (code), __VA_ARGS__)
#define MAX_PLUGIN_BYTES (512u << 20)

static const char usage[] =
    "usage: agora-runner [--help | --print-policy]\n"
    "\n"
    "The sandboxed plugin worker of Agora. Not meant to be run by hand: the host starts it with\n"
    "file descriptor 3 connected to an AF_UNIX stream socket and sends a Setup frame followed by\n"
    "jobs (schemas/agora_ipc.proto). In ingest mode it loads no plugin and parses DICOM files\n"
    "the host hands in. See docs/sandbox.md.\n"
    "\n"
    "  --help          this text\n"
    "  --print-policy  print the seccomp policy table and the compiled profiles, then exit\n"
    "\n"
    "Exit codes: 0 shutdown, 2 usage, 10 setup, 11 confinement, 12 load, 13 init, 14 protocol,\n"
    "15 internal; a worker killed by a signal makes agora-runner die of the same signal\n"
    "(SIGSYS = the plugin broke the seccomp policy).\n";

/* Copy the sealed plugin memfd into memory and check size and hash. */
static void read_plugin(int fd, const Agora__Ipc__Setup *su, agora__runner_setup *s)
{
    if (su->plugin_sha256.len != 32)
        SETUP_FAIL(AGORA_EINVAL, "Setup.plugin_sha256 must be 32 bytes (got %zu)",
                   su->plugin_sha256.len);
    if (su->plugin_size == 0 || su->plugin_size > MAX_PLUGIN_BYTES)
        SETUP_FAIL(AGORA_ELIMIT, "Setup.plugin_size %llu is outside 1..%u",
                   (unsigned long long)su->plugin_size, MAX_PLUGIN_BYTES);
    int seals = fcntl(fd, F_GET_SEALS);
    int need = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
    if (seals < 0 || (seals & need) != need)
        SETUP_FAIL(AGORA_EINVAL, "the plugin memfd is not sealed against write/shrink/grow; "
                                 "the host must seal it before sending");
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != su->plugin_size)
        SETUP_FAIL(AGORA_EINVAL, "the plugin memfd holds %lld bytes, Setup says %llu",
                   (long long)st.st_size, (unsigned long long)su->plugin_size);
    s->plugin_size = (size_t)su->plugin_size;
    s->plugin = malloc(s->plugin_size);
    if (s->plugin == NULL)
        SETUP_FAIL(AGORA_ENOMEM, "out of memory for %zu plugin bytes", s->plugin_size);
    size_t got = 0;
    while (got < s->plugin_size) {
        ssize_t n = pread(fd, s->plugin + got, s->plugin_size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            SETUP_FAIL(-EIO, "reading the plugin memfd failed at byte %zu", got);
        got += (size_t)n;
    }
    uint8_t h[32];
    agora__sha256(s->plugin, s->plugin_size, h);
    if (memcmp(h, su->plugin_sha256.data, 32) != 0) {
        char want[65], have[65];
        agora__hex(su->plugin_sha256.data, 32, want);
        agora__hex(h, 32, have);
        SETUP_FAIL(AGORA_EINVAL, "plugin bytes hash to %s but Setup pins %s; refusing to load",
                   have, want);
    }
}

static void read_setup(agora__runner_setup *s)
{
    Agora__Ipc__Frame *f;
    int fds[AGORA__FRAME_MAX_FDS];
    size_t n_fds;
    char why[256];
    int rc = agora__runner_frame_read(AGORA__RUNNER_FD, AGORA__FRAME_HOST_TO_RUNNER_MAX, &f, fds,
                                      &n_fds, why, sizeof why);
    if (rc != 0)
        SETUP_FAIL(-EPROTO, "reading Setup: %s", why);
    if (f->msg_case != AGORA__IPC__FRAME__MSG_SETUP)
        SETUP_FAIL(-EPROTO, "the first frame must be Setup (got type %d)", (int)f->msg_case);
    const Agora__Ipc__Setup *su = f->setup;
    if (su->protocol_version < AGORA__PROTO_VERSION_BASE ||
        su->protocol_version > AGORA__PROTO_VERSION)
        SETUP_FAIL(AGORA_EVERSION,
                   "protocol version %u is not supported (this runner speaks %u to %u)",
                   su->protocol_version, AGORA__PROTO_VERSION_BASE, AGORA__PROTO_VERSION);
    if (su->n_assets != 0 && (su->protocol_version < AGORA__PROTO_VERSION_ASSETS ||
                              su->mode != AGORA__IPC__MODE__MODE_PLUGIN))
        SETUP_FAIL(AGORA_EVERSION,
                   "assets need protocol version %u in plugin mode; this host sent %u (mode %d)",
                   AGORA__PROTO_VERSION_ASSETS, su->protocol_version, (int)su->mode);
    if (su->fork_per_job && su->protocol_version < AGORA__PROTO_VERSION_FORK)
        SETUP_FAIL(AGORA_EVERSION,
                   "fork_per_job needs protocol version %u (a channel of its own per job); "
                   "this host sent %u: upgrade the host",
                   AGORA__PROTO_VERSION_FORK, su->protocol_version);
    s->protocol_version = su->protocol_version;
    if (su->mode != AGORA__IPC__MODE__MODE_PLUGIN && su->mode != AGORA__IPC__MODE__MODE_INGEST)
        SETUP_FAIL(AGORA_EUNSUPPORTED,
                   "mode %d is not supported by this runner (only plugin and ingest)",
                   (int)su->mode);
    if (AGORA_ABI_MAJOR(su->host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        SETUP_FAIL(AGORA_EVERSION, "host ABI major %u differs from the runner's %u",
                   AGORA_ABI_MAJOR(su->host_abi_version), AGORA_ABI_VERSION_MAJOR);
    if (su->mode == AGORA__IPC__MODE__MODE_INGEST) {
        /* No plugin: the plugin fields must be empty so that a host mixing up modes is told. */
        if (su->plugin_sha256.len != 0 || su->plugin_size != 0 || su->plugin_id[0] != '\0' ||
            su->plugin_version[0] != '\0' || su->fork_per_job || su->n_root_files != 0)
            SETUP_FAIL(AGORA_EINVAL, "an ingest Setup must leave the plugin fields and "
                                     "fork_per_job empty");
        s->ingest = 1;
        s->host_abi = su->host_abi_version;
        s->allow_weak = su->allow_weak_isolation;
        agora__runner_limits_from(su->limits, &s->limits);
        agora__ipc__frame__free_unpacked(f, NULL);
        return;
    }
    if (strlen(su->plugin_id) == 0 || strlen(su->plugin_id) >= sizeof s->plugin_id ||
        strlen(su->plugin_version) == 0 || strlen(su->plugin_version) >= sizeof s->plugin_version)
        SETUP_FAIL(AGORA_EINVAL, "Setup.plugin_id/plugin_version must be 1..255 / 1..63 bytes");
    memcpy(s->plugin_id, su->plugin_id, strlen(su->plugin_id) + 1);
    memcpy(s->plugin_version, su->plugin_version, strlen(su->plugin_version) + 1);
    s->host_abi = su->host_abi_version;
    s->allow_weak = su->allow_weak_isolation;
    s->fork_per_job = su->fork_per_job;
    s->trap_violations = su->trap_violations;
    agora__runner_limits_from(su->limits, &s->limits);
    s->cpus = agora__runner_cpu_count(s->limits.max_threads);
    char root_why[AGORA__ROOT_PATH_MAX + 128];
    if (agora__runner_root_files_check(su->root_files, su->n_root_files, root_why,
                                       sizeof root_why) != 0)
        SETUP_FAIL(AGORA_EINVAL, "Setup.root_files: %s", root_why);
    s->root_files = calloc(su->n_root_files + 1, sizeof *s->root_files);
    if (s->root_files == NULL)
        SETUP_FAIL(AGORA_ENOMEM, "out of memory for the root's file list");
    for (size_t i = 0; i < su->n_root_files; i++)
        if ((s->root_files[i] = strdup(su->root_files[i])) == NULL)
            SETUP_FAIL(AGORA_ENOMEM, "out of memory for the root's file list");
    s->n_root_files = su->n_root_files;
    read_plugin(fds[0], su, s);
    close(fds[0]);
    /* Mapped now, before the namespaces: the worker inherits the read-only mappings and never
     * holds an asset's descriptor or path. */
    s->limits.asset_bytes = agora__runner_assets_read(su->n_assets);
    /* Before anything maps it: the loader would map .bss and TLS where RLIMIT_DATA cannot see
     * them (docs/sandbox.md, Memory). */
    char elf_why[320];
    rc = agora__memcap_check_elf(s->plugin, s->plugin_size, &s->limits, elf_why, sizeof elf_why);
    if (rc != AGORA_OK)
        SETUP_FAIL(rc, "%s", elf_why);
    agora__ipc__frame__free_unpacked(f, NULL);
}

static void send_ready(const agora__runner_setup *s, const agora__runner_plugin *p)
{
    char *warn[8];
    for (size_t i = 0; i < s->n_warnings; i++)
        warn[i] = (char *)s->warnings[i];
    Agora__Ipc__Ready r = AGORA__IPC__READY__INIT;
    r.protocol_version = s->protocol_version; /* echo: the messages are those of that version */
    r.plugin_abi_version = p != NULL ? p->desc->abi_version : 0;
    r.plugin_id = (char *)s->plugin_id;
    r.plugin_version = (char *)s->plugin_version;
    r.isolation_warnings = warn;
    r.n_isolation_warnings = s->n_warnings;
    r.runner_pid = s->outer_pid;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_READY;
    f.ready = &r;
    if (agora__runner_send(&f) != 0)
        _exit(AGORA__RUNNER_EXIT_PROTOCOL);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "--help") == 0 && argc == 2) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[1], "--print-policy") == 0 && argc == 2)
            return agora__runner_filter_print(1) == 0 ? 0 : 1;
        fprintf(stderr, "agora-runner: unknown argument '%s'; run agora-runner --help\n", argv[1]);
        return AGORA__RUNNER_EXIT_USAGE;
    }
    struct stat st;
    if (fstat(AGORA__RUNNER_FD, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "agora-runner: fd 3 is not a socket; the host must start the runner "
                        "with its end of a socketpair as fd 3 (see --help)\n");
        return AGORA__RUNNER_EXIT_USAGE;
    }
    static agora__runner_setup s;
    s.outer_pid = (uint32_t)getpid();
    s.host_pid = (int)getppid();
    read_setup(&s);

    char why[256];
    for (int p = 0; p < AGORA__PROFILE_COUNT; p++) {
        int rc = agora__runner_filter_compile(p, s.fork_per_job, s.trap_violations, &s.bpf[p],
                                              why, sizeof why);
        if (rc != 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_CONFINE, rc, "compiling seccomp: %s", why);
    }
    if (s.trap_violations) {
        int rc = agora__runner_trap_install();
        if (rc != 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_CONFINE, rc,
                               "installing the SIGSYS reporter failed: %s", strerror(-rc));
    }
    agora__runner_enter_sandbox(&s); /* returns in the worker only */
    agora__runner_lock_down(&s);
    agora__runner_set_global_log_budget(s.limits.max_log_lines);

    if (s.ingest) {
        /* Nothing to load: the parser is part of this executable. Stack the compute filter on
         * the loader filter right away, exactly as a plugin worker ends up. */
        int rc = agora__runner_filter_install(&s.bpf[AGORA__PROFILE_COMPUTE]);
        if (rc != 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_CONFINE, rc,
                               "installing the compute seccomp filter failed: %s", strerror(-rc));
        malloc_trim(0);
        send_ready(&s, NULL);
        return agora__runner_serve_ingest();
    }

    static agora__runner_plugin plugin;
    int spare_before = 0;
    if (s.fork_per_job) {
        spare_before = agora__runner_spare_tasks();
        if (spare_before < 0)
            agora__runner_fail(AGORA__IPC__STAGE__STAGE_CONFINE, spare_before,
                               "fork-per-job needs RLIMIT_NPROC to count the sandbox's tasks "
                               "(%s); run without fork-per-job",
                               strerror(-spare_before));
    }
    agora__runner_load(&s, agora__runner_host_table(), &plugin);
    /* While the loader runs (constructors and init included) seccomp must allow MAP_FIXED, which
     * RLIMIT_DATA does not charge: only RLIMIT_AS bounded that phase. Look at what it cost. */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0 &&
        (uint64_t)ru.ru_maxrss * 1024 > s.limits.memory_bytes + AGORA__MEMCAP_INIT_SLACK) {
        agora__runner_send_error(AGORA__IPC__STAGE__STAGE_INIT, AGORA_ENOMEM,
                                 "loading and initialising the plugin peaked at %llu MiB "
                                 "resident, above its memory limit of %llu MiB",
                                 (unsigned long long)(ru.ru_maxrss / 1024),
                                 (unsigned long long)(s.limits.memory_bytes >> 20));
        _exit(AGORA__RUNNER_EXIT_OOM);
    }
    if (s.fork_per_job)
        agora__runner_zygote_prepare(spare_before);
    int last = s.fork_per_job ? AGORA__PROFILE_ZYGOTE : AGORA__PROFILE_COMPUTE;
    int rc = agora__runner_filter_install(&s.bpf[last]);
    if (rc != 0)
        agora__runner_fail(AGORA__IPC__STAGE__STAGE_CONFINE, rc,
                           "installing the compute seccomp filter failed: %s", strerror(-rc));
    malloc_trim(0);
    send_ready(&s, &plugin);
    return agora__runner_serve(&s, &plugin);
}
