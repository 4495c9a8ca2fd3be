/*
 * Private interface of agora-runner, the sandboxed worker that loads one plugin and serves jobs.
 * See docs/sandbox.md for the order of confinement steps and docs/threat-model.md for why.
 * Nothing here is API: only the host<->runner protocol (schemas/agora_ipc.proto) and the exit
 * codes below are visible from outside.
 */
#ifndef AGORA_SANDBOX_RUNNER_H
#define AGORA_SANDBOX_RUNNER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/filter.h>

#include "agora/agora.h"
#include "agora_ipc.pb-c.h"
#include "proto.h" /* host/proto: the runner's fd, frame caps, versions, exit codes */
#include "agora_result_limits.h"
/* Where a fork-per-job zygote keeps it after lock-down (below RLIMIT_NOFILE 16): fd 3 is then
 * the job process's own channel. */
#define AGORA__RUNNER_ZYGOTE_FD 15

/* Defaults when Setup.limits leaves a field at 0. */
#define AGORA__RUNNER_DEFAULT_MEMORY  (512ull << 20)
#define AGORA__RUNNER_DEFAULT_CPU_S   3600u
#define AGORA__RUNNER_DEFAULT_THREADS 16u
#define AGORA__RUNNER_DEFAULT_RESULT  (4ull << 20)
#define AGORA__RUNNER_DEFAULT_ITEMS   AGORA__RESULT_ITEMS_MAX
#define AGORA__RUNNER_DEFAULT_LOGS    1000u

/* Effective limits (Setup.limits with defaults filled in and clamped). */
typedef struct agora__runner_limits {
    uint64_t memory_bytes;
    uint32_t cpu_seconds;
    uint32_t max_threads;
    uint64_t max_result_bytes;
    uint32_t max_items;
    uint32_t max_log_lines;
    uint64_t job_map_bytes; /* job memfds the host may map at once (counted in RLIMIT_AS) */
    uint64_t asset_bytes;   /* the plugin's assets, mapped for the worker's life (RLIMIT_AS) */
} agora__runner_limits;

void agora__runner_limits_from(const Agora__Ipc__Limits *in, agora__runner_limits *out);

/* ---- memcap.c: the memory cap ---------------------------------------------------------------- */

/* Headroom constants (docs/sandbox.md, "Memory"; measured on Debian 12, glibc 2.36). */
#define AGORA__MEMCAP_THREAD_STACK (8ull << 20)  /* per thread, the glibc default kept as cap */
#define AGORA__MEMCAP_MAIN_STACK   (8ull << 20)  /* RLIMIT_STACK of the main thread */
#define AGORA__MEMCAP_ARENA        (64ull << 20) /* glibc reserves this per malloc arena */
#define AGORA__MEMCAP_MAX_ARENAS   4u            /* M_ARENA_MAX the runner sets */
#define AGORA__MEMCAP_RUNNER_DATA  (16ull << 20) /* the runner's own heap, frames, filters */
#define AGORA__MEMCAP_RUNNER_AS       (32ull << 20) /* code, libraries, vDSO: idle VmSize 9 MiB */
#define AGORA__MEMCAP_INIT_SLACK      (32ull << 20) /* runner + libraries resident after init */
#define AGORA__MEMCAP_DEFAULT_JOB_MAP ((2ull << 30) + (256ull << 20)) /* host maxima */

typedef struct agora__memcap {
    uint64_t data_bytes;  /* RLIMIT_DATA */
    uint64_t as_bytes;    /* RLIMIT_AS */
    uint64_t stack_bytes; /* default thread stack */
    uint32_t arenas;      /* M_ARENA_MAX */
} agora__memcap;

void agora__memcap_compute(const agora__runner_limits *l, int fork_per_job, agora__memcap *out);
/* Refuse an ELF whose PT_LOAD segments (memsz, .bss included) or PT_TLS (times the threads)
 * exceed the memory limit. AGORA_OK, or a code with why naming the segment. */
int agora__memcap_check_elf(const uint8_t *bytes, size_t len, const agora__runner_limits *l,
                            char *why, size_t why_len);
/* SIGSEGV/SIGBUS/SIGABRT handler that exits AGORA__RUNNER_EXIT_OOM when memory is at the cap;
 * also clamps the default thread stack size. 0 or -errno. */
int agora__memcap_install_crash_probe(void);

/* ---- frame.c: length-prefixed protobuf frames on a stream socket ---------------------------- */

/* Read one frame (blocking). On success returns 0, *out is the unpacked frame (free with
 * agora__ipc__frame__free_unpacked(*out, NULL)) and fds[0..*n_fds) the descriptors that rode
 * with it, already checked against what the message type expects (caller owns them).
 * On failure returns -1, closes any descriptor received, and writes the reason to why.
 * A clean EOF before the first byte returns -2 (the host closed the socket). */
int agora__runner_frame_read(int fd, size_t max_len, Agora__Ipc__Frame **out,
                             int fds[AGORA__FRAME_MAX_FDS], size_t *n_fds, char *why,
                             size_t why_len);
/* Write one frame (blocking, complete or error). Returns 0 or -errno (-EMSGSIZE over max_len). */
int agora__runner_frame_write(int fd, const Agora__Ipc__Frame *frame, size_t max_len);
/* Descriptors a message of this type must carry. */
size_t agora__runner_frame_expected_fds(const Agora__Ipc__Frame *frame);
/* Decode a frame body (no length prefix) with the same checks as frame_read. Returns NULL and
 * a reason on failure. Exposed for the unit tests and the fuzz target. */
Agora__Ipc__Frame *agora__runner_frame_decode(const uint8_t *buf, size_t len, char *why,
                                              size_t why_len);

/* ---- channel.c: the process-wide host socket ------------------------------------------------ */

/* All writes to the host go through these so that frames from plugin threads never interleave. */
int agora__runner_send(const Agora__Ipc__Frame *frame);
/* Send Error{stage, code, message} and exit with the stage's exit code. Never returns. */
void agora__runner_fail(int stage, int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* Send Error{stage, code, message} without exiting (the caller chooses the exit status). */
void agora__runner_send_error(int stage, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The fd the channel writes to (tests point it at a socketpair). */
void agora__runner_channel_set_fd(int fd);
int agora__runner_channel_fd(void);
/* Write an already framed message unless another thread is writing (-EBUSY): for the SIGSYS
 * handler (trap.c), which must not wait. 0 or -errno. */
int agora__runner_channel_trywrite(const uint8_t *buf, size_t len);

/* ---- policy.c / filter.c: seccomp ----------------------------------------------------------- */

/* Filter profiles, compiled once before any namespace is created. */
enum {
    AGORA__PROFILE_SUPERVISOR = 0, /* the outer waiter and the pid-1 reaper */
    AGORA__PROFILE_LOADER,         /* while the loader maps the plugin and runs its init */
    AGORA__PROFILE_COMPUTE,        /* while jobs run: no new code, no files, no processes */
    AGORA__PROFILE_ZYGOTE,         /* fork-per-job parent: compute + fork/wait */
    AGORA__PROFILE_COUNT
};

/* Actions in the policy table. */
enum {
    AGORA__ACT_KILL = 0, /* the default: kill the whole process (SIGSYS) */
    AGORA__ACT_ALLOW,
    AGORA__ACT_ENOSYS,
    AGORA__ACT_EACCES,
    AGORA__ACT_EPERM,
    AGORA__ACT_ENOTTY
};

/* Argument conditions attached to an allow. */
enum {
    AGORA__ARG_ANY = 0,
    AGORA__ARG_NO_EXEC,        /* mmap/mprotect: (prot & PROT_EXEC) == 0 */
    AGORA__ARG_OPEN_RDONLY,    /* open/openat: no write, create, truncate, append, tmpfile */
    AGORA__ARG_CLONE_THREAD,   /* clone: a thread (CLONE_THREAD|CLONE_VM, no namespace flags) */
    AGORA__ARG_CLONE_FORK,     /* clone: a plain fork (no CLONE_VM/THREAD, no namespace flags) */
    AGORA__ARG_PRCTL_NAME,     /* prctl: PR_SET_NAME / PR_GET_NAME only */
    AGORA__ARG_RLIMIT_GET,     /* prlimit64: pid 0, new limit NULL (read only) */
    AGORA__ARG_SECCOMP_FILTER, /* seccomp: SECCOMP_SET_MODE_FILTER only */
    AGORA__ARG_EXEC_FILE_ONLY, /* (unused since the mmap flag rules; kept for the numbering) */
    /* mmap, loader: PROT_EXEC only for private file mappings; MAP_FIXED allowed (the ELF loader
     * maps segments and .bss over its own reservation); shared anonymous and MAP_GROWSDOWN answer
     * EPERM (neither is charged to RLIMIT_DATA). */
    AGORA__ARG_MMAP_LOAD,
    /* mmap, compute/zygote: no PROT_EXEC; private anonymous, private file or shared file only;
     * shared anonymous, MAP_GROWSDOWN and MAP_FIXED answer EPERM. */
    AGORA__ARG_MMAP_DATA,
    AGORA__ARG_MREMAP_MOVE, /* mremap: no MREMAP_FIXED / MREMAP_DONTUNMAP (EPERM) */
    AGORA__ARG_SEND_NO_OOB, /* sendto: no MSG_OOB */
    AGORA__ARG_FCNTL_NO_DUP, /* fcntl: flags, seals, locks, pipe size; never F_DUPFD* */
    AGORA__ARG_UNSHARE_NOOP, /* unshare: exactly CLONE_THREAD|CLONE_SIGHAND|CLONE_VM (a check) */
    /* socket: the row's errno only for AF_UNIX; every other domain keeps the default (kill).
     * The one condition attached to a refusal rather than an allow. */
    AGORA__ARG_SOCKET_UNIX
};

typedef struct agora__policy_row {
    const char *syscall;                  /* name as libseccomp resolves it */
    uint8_t action[AGORA__PROFILE_COUNT]; /* AGORA__ACT_* per profile */
    uint8_t arg;                          /* AGORA__ARG_* applied to every ALLOW of this row */
    const char *why;                      /* reason, printed by --print-policy and the docs */
} agora__policy_row;

extern const agora__policy_row agora__policy_table[];
extern const size_t agora__policy_table_len;

/* A compiled BPF program (owned buffer). */
typedef struct agora__bpf {
    struct sock_filter *insns;
    unsigned short len;
} agora__bpf;

/* Compile one profile. fork_per_job widens the loader profile with plain forks (the zygote is
 * the loader's process). Returns 0 or -errno with why filled. */
int agora__runner_filter_compile(int profile, int fork_per_job, int trap, agora__bpf *out,
                                 char *why, size_t why_len);
/* Install a compiled program on every thread of the process (TSYNC). Returns 0 or -errno. */
int agora__runner_filter_install(const agora__bpf *prog);
/* Print a profile as libseccomp pseudo-code plus the table (for --print-policy). */
int agora__runner_filter_print(int fd);

/* ---- confine.c: namespaces, root, credentials, limits --------------------------------------- */

typedef struct agora__runner_setup {
    agora__runner_limits limits;
    int allow_weak;
    int fork_per_job;
    uint32_t protocol_version; /* of the host's Setup (1 or 2), echoed in Ready */
    int ingest; /* MODE_INGEST: no plugin, an empty root, the DICOM reader serves requests */
    uint32_t host_abi;
    char plugin_id[256];
    char plugin_version[64];
    uint8_t *plugin; /* verified bytes (malloc), freed once written into the root */
    size_t plugin_size;
    char plugin_path[64]; /* where the loader finds the bytes after confinement */
    /* Setup.root_files, checked (rootfs.c): the plugin's dependency closure, host paths that
     * are bound (files) or recreated (symlinks) at the same path inside the root. Owned. */
    char **root_files;
    size_t n_root_files;
    uint32_t cpus;       /* CPUs the worker is shown (/proc/cpuinfo, /sys, OMP_NUM_THREADS) */
    int trap_violations; /* development mode: forbidden calls trap and are named (trap.c) */
    char warnings[8][96];
    size_t n_warnings;
    uint32_t outer_pid; /* pid of the process the host spawned */
    int host_pid;       /* its parent (the host) at start, for the die-with-parent check */
    agora__bpf bpf[AGORA__PROFILE_COUNT];
} agora__runner_setup;

/* Runs in the process the host spawned. Creates the namespaces and the reaper; returns only in
 * the worker process (inside every namespace, root built, still privileged inside its user
 * namespace). Exits on any failure after reporting Error{CONFINE}. */
void agora__runner_enter_sandbox(agora__runner_setup *s);
/* In the worker: drop everything (caps, env, fds, rlimits, no_new_privs, Landlock) and install
 * the loader filter. Exits on failure. */
void agora__runner_lock_down(agora__runner_setup *s);
/* Landlock (landlock.c): read+execute beneath the paths (and on extra_file_fd when >= 0),
 * nothing else; TCP and signals scoped when the kernel supports it. Returns 1 applied, 0
 * unavailable, -errno failure (why filled). */
int agora__runner_landlock(const char *const *read_exec_paths, size_t n, int extra_file_fd,
                           char *why, size_t why_len);

/* ---- rootfs.c: the root's contents ------------------------------------------------------- */

/* Check Setup.root_files: absolute canonical paths of at most AGORA__ROOT_PATH_MAX bytes, at most
 * AGORA__ROOT_FILES_MAX, none under /plugin, /proc, /sys or equal to a fixed runtime file. 0, or
 * -1 with why filled. */
int agora__runner_root_files_check(char *const *paths, size_t n, char *why, size_t why_len);
/* The CPUs the worker is shown: min(max_threads, the CPUs this process may run on), >= 1. */
uint32_t agora__runner_cpu_count(uint32_t max_threads);
/* The fixed environment (OMP_NUM_THREADS and the like = cpus), set after clearenv(). 0 or -1. */
int agora__runner_fixed_env(uint32_t cpus);

/* ---- trap.c: development-mode SIGSYS reporting ---------------------------------------------- */

/* Install the SIGSYS handler that sends Violation{nr, name} on the channel, then dies of
 * SIGSYS. Only with Setup.trap_violations (the filters then trap instead of killing). 0 or
 * -errno. */
int agora__runner_trap_install(void);
/* Name of an x86-64 system call number (a fixed table, usable in a signal handler); NULL. */
const char *agora__runner_syscall_name(long nr);

/* ---- loader.c -------------------------------------------------------------------------------- */

typedef struct agora__runner_plugin {
    void *handle;
    const agora_plugin *desc;
    void *state;
} agora__runner_plugin;

/* dlopen the verified file, check the descriptor against Setup, call init. Exits on failure. */
void agora__runner_load(const agora__runner_setup *s, const agora_host *host,
                        agora__runner_plugin *out);

/* ---- hostapi.c: the agora_host table and one job's state ------------------------------------ */

typedef struct agora__job_out {
    Agora__Ipc__Finding **findings;
    size_t n_findings;
    Agora__Ipc__Measurement **measurements;
    size_t n_measurements;
    Agora__Ipc__Region **regions;
    size_t n_regions;
    size_t cap_findings, cap_measurements, cap_regions;
} agora__job_out;

struct agora_job {
    uint64_t job_id;
    int active; /* 1 while process() runs: result functions refuse otherwise */
    const agora__runner_limits *limits;
    /* inputs (owned by serve.c for the job's duration) */
    agora_image image;
    agora_frame *frames; /* job-wide: every series' frames in order */
    uint32_t n_frames;
    /* study scope (org.agora.study/1): each series' view and first job-wide frame; series 0
     * is `image`. A one-series job has n_series 1 with series_images pointing at `image`. */
    agora_image *series_images;
    uint32_t series_first[AGORA_STUDY_MAX_SERIES];
    uint32_t n_series;
    Agora__Ipc__Attribute **attrs;
    size_t n_attrs;
    /* output area (shared mapping of the host's output memfd) */
    uint8_t *out_area;
    uint64_t out_size;
    uint64_t out_used;
    /* results */
    agora__job_out res;
    char *summary;
    char *urgent_reason; /* org.agora.triage/1; NULL: not urgent */
    char *error;
    uint64_t result_bytes; /* running estimate of the serialized Result */
    uint64_t n_points;     /* points of all regions so far (AGORA__RESULT_POINTS_TOTAL_MAX) */
    uint32_t log_lines;
    uint32_t dropped_logs;
    int cancelled;
    int shutdown_requested;
};

/* The one job context of this process (host functions accept no other pointer). */
agora_job *agora__runner_job(void);
/* Mark process() as running (1) or returned (0): result functions refuse outside it. */
void agora__job_set_active(agora_job *job, int active);
/* The host table handed to the plugin (static, valid for the process lifetime). */
const agora_host *agora__runner_host_table(void);
/* Prepare/clear a job context. init zeroes the struct and sets limits. */
void agora__job_init(agora_job *job, const agora__runner_limits *limits, uint64_t job_id);
void agora__job_free_results(agora_job *job);
/* Fill a Result frame's fields from the job (pointers into job; valid until free_results). */
void agora__job_fill_result(agora_job *job, Agora__Ipc__Result *r);
/* Log outside any job (init/fini): uses a process-wide line budget. */
void agora__runner_set_global_log_budget(uint32_t lines);

/* Copy s into a fresh buffer of at most max bytes (excluding NUL), cutting at a UTF-8 boundary and
 * replacing invalid bytes and control characters with '?'. Caller frees. */
char *agora__runner_sanitize_text(const char *s, size_t max);

/* ---- serve.c --------------------------------------------------------------------------------- */

/* The job loop. Returns the exit code (0 after Shutdown). */
int agora__runner_serve(const agora__runner_setup *s, agora__runner_plugin *p);
/* Zygote mode, right after init and before Ready (still under the loader filter): refuse with
 * Error{INIT} when init left a thread running, and take back everything of the plugin's that
 * could run or be held in the zygote later: signal handlers, the signal mask, descriptors made
 * in init (stdio becomes fresh inert pipes). Exits on failure. */
void agora__runner_zygote_prepare(int spare_before);
/* Free RLIMIT_NPROC slots of this sandbox's user (see serve.c). Measured before load and after
 * init in fork mode: fewer after init means init left a task running somewhere. */
int agora__runner_spare_tasks(void);

/* ---- assets.c: the plugin's assets (org.agora.assets/1) ------------------------------------ */

/* Read the n Asset frames that follow Setup, check each memfd's seals and size and map it
 * read-only; returns the total bytes mapped. Before confinement only. Exits on any failure
 * (Error{SETUP}). */
uint64_t agora__runner_assets_read(uint32_t n);
/* The mapped asset `name`: AGORA_OK with *data and *size set, or AGORA_EINVAL (unknown name or NULL
 * arguments). Lock-free: the table never changes after assets_read. */
int32_t agora__runner_asset_get(const char *name, const void **data, uint64_t *size);

/* ---- job_abi.c ------------------------------------------------------------------------------- */

/* Fit a prepared job to the plugin's ABI minor (plugin_abi = its agora_plugin.abi_version):
 * frames handed to a 1.0 plugin report the 1.0 struct_size, and a job whose frames differ in
 * rescale is refused for it (it sees one rescale per image). 0, or -1 with why filled. */
int agora__runner_fit_abi(agora_job *job, uint32_t plugin_abi, char *why, size_t why_len);

#endif
