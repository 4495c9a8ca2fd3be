/*
 * The seccomp policy, as data. Review changes here like code: every row says why it exists.
 *
 * Columns: supervisor (outer waiter + pid-1 reaper), loader (dlopen + plugin constructors +
 * init), compute (jobs), zygote (fork-per-job parent after init). Anything not listed is
 * KILL_PROCESS in every profile, and so is every non-x86_64 call (i386 int $0x80, x32): the arch
 * and the x32 bit are checked before the syscall number. Filters stack: a worker carries the
 * loader filter and then the compute (or zygote, then compute) filter on top, so the effective
 * action is the strictest of the two — the compute column only needs to narrow.
 */
#include "runner.h"

#define K AGORA__ACT_KILL
#define A AGORA__ACT_ALLOW
#define N AGORA__ACT_ENOSYS
#define X AGORA__ACT_EACCES
#define T AGORA__ACT_ENOTTY
#define P AGORA__ACT_EPERM

/* clang-format off */
const agora__policy_row agora__policy_table[] = {
    /*  syscall             sup loa com zyg  argument rule */
    /* -- memory -- */
    {"brk",                 {A, A, A, A}, AGORA__ARG_ANY, "malloc's main arena"},
    {"mmap",                {K, A, K, K}, AGORA__ARG_MMAP_LOAD, "the loader maps library segments (MAP_FIXED over its own reservation) and code only from private file mappings (the root holds only the verified plugin and its closure); anonymous or shared executable memory answers EPERM so JIT libraries fall back; shared anonymous memory and MAP_GROWSDOWN are not charged to RLIMIT_DATA"},
    {"mmap",                {K, K, A, A}, AGORA__ARG_MMAP_DATA, "jobs map data only (PROT_EXEC answers EPERM: JIT libraries fall back); MAP_FIXED could replace a PROT_NONE reservation with memory the kernel does not charge to RLIMIT_DATA"},
    {"munmap",              {A, A, A, A}, AGORA__ARG_ANY, "free mappings"},
    {"mremap",              {K, A, A, A}, AGORA__ARG_MREMAP_MOVE, "realloc of large blocks (keeps protection; growth is charged to RLIMIT_DATA); no moving onto a chosen address"},
    {"mprotect",            {K, A, A, A}, AGORA__ARG_NO_EXEC, "RELRO, guard pages, arenas; never makes memory executable (EPERM: JIT libraries fall back; exec-stack and text-relocation libraries fail to load)"},
    {"mlock",               {K, P, P, P}, AGORA__ARG_ANY, "libgcrypt locks its secure memory in a constructor and falls back on EPERM (RLIMIT_MEMLOCK is 0 anyway)"},
    {"munlock",             {K, P, P, P}, AGORA__ARG_ANY, "same"},
    {"mlock2",              {K, P, P, P}, AGORA__ARG_ANY, "same"},
    {"mlockall",            {K, P, P, P}, AGORA__ARG_ANY, "same"},
    {"munlockall",          {K, P, P, P}, AGORA__ARG_ANY, "same"},
    {"get_mempolicy",       {K, N, N, N}, AGORA__ARG_ANY, "libnuma probes NUMA in its constructor: ENOSYS reads as 'no NUMA support'"},
    {"set_mempolicy",       {K, N, N, N}, AGORA__ARG_ANY, "same"},
    {"mbind",               {K, N, N, N}, AGORA__ARG_ANY, "same"},
    {"madvise",             {K, A, A, A}, AGORA__ARG_ANY, "glibc returns thread stacks and free memory"},
    /* -- descriptors already open (the socket, job memfds, the inert stdio pipe) -- */
    {"read",                {A, A, A, A}, AGORA__ARG_ANY, "reads on held descriptors"},
    {"pread64",             {K, A, A, A}, AGORA__ARG_ANY, "loader reads ELF headers"},
    {"readv",               {K, A, A, A}, AGORA__ARG_ANY, "stdio"},
    {"write",               {A, A, A, A}, AGORA__ARG_ANY, "stdio (EBADF: stdio is a read-only pipe end); reaper status pipe"},
    {"writev",              {K, A, A, A}, AGORA__ARG_ANY, "stdio"},
    {"close",               {A, A, A, A}, AGORA__ARG_ANY, "release descriptors"},
    {"fstat",               {K, A, A, A}, AGORA__ARG_ANY, "stdio buffering, loader"},
    {"newfstatat",          {K, A, A, A}, AGORA__ARG_ANY, "glibc fstat() is fstatat(fd, \"\", AT_EMPTY_PATH)"},
    {"statx",               {K, A, A, A}, AGORA__ARG_ANY, "same as fstat on newer code paths"},
    {"lseek",               {K, A, A, A}, AGORA__ARG_ANY, "stdio, loader"},
    {"fcntl",               {K, A, A, A}, AGORA__ARG_FCNTL_NO_DUP, "runner checks memfd seals; flags and locks on held fds; F_DUPFD would be dup"},
    {"ioctl",               {K, T, T, T}, AGORA__ARG_ANY, "isatty() probes: answer 'not a terminal'"},
    {"pipe2",               {K, A, A, A}, AGORA__ARG_ANY, "thread pools signal with pipes (bounded by RLIMIT_NOFILE)"},
    {"eventfd2",            {K, A, A, A}, AGORA__ARG_ANY, "thread pools signal with eventfds"},
    {"poll",                {K, A, A, A}, AGORA__ARG_ANY, "runner polls the socket for Cancel"},
    {"ppoll",               {K, A, A, A}, AGORA__ARG_ANY, "same"},
    {"dup",                 {K, K, K, K}, AGORA__ARG_ANY, "not needed: no descriptor juggling"},
    /* -- the filesystem: only the read-only loader view exists, and only the loader may open -- */
    {"openat",              {K, A, X, X}, AGORA__ARG_OPEN_RDONLY, "loader opens libraries read-only; jobs get EACCES (libraries probe /proc and /sys and fall back)"},
    {"open",                {K, A, X, X}, AGORA__ARG_OPEN_RDONLY, "legacy open, same as openat"},
    {"openat2",             {K, N, N, N}, AGORA__ARG_ANY, "not used by glibc; ENOSYS makes callers fall back to openat"},
    {"readlink",            {K, A, X, X}, AGORA__ARG_ANY, "loader origin lookups"},
    {"readlinkat",          {K, A, X, X}, AGORA__ARG_ANY, "same"},
    {"access",              {K, A, X, X}, AGORA__ARG_ANY, "loader probes"},
    {"faccessat",           {K, A, X, X}, AGORA__ARG_ANY, "same"},
    {"faccessat2",          {K, A, X, X}, AGORA__ARG_ANY, "same"},
    {"getdents64",          {K, A, X, X}, AGORA__ARG_ANY, "directory listing (loader only)"},
    {"statfs",              {K, X, X, X}, AGORA__ARG_ANY, "libselinux's constructor looks for /sys/fs/selinux: EACCES reads as 'no SELinux'"},
    {"fstatfs",             {K, X, X, X}, AGORA__ARG_ANY, "same"},
    {"getcwd",              {K, A, X, X}, AGORA__ARG_ANY, "loader origin lookups"},
    /* -- the host socket: runner sends with send(), receives descriptors with recvmsg() -- */
    {"sendto",              {K, A, A, A}, AGORA__ARG_SEND_NO_OOB, "runner frames to the host (cannot carry descriptors; MSG_OOB is unneeded kernel surface)"},
    {"recvfrom",            {K, A, A, A}, AGORA__ARG_ANY, "runner frames from the host"},
    {"recvmsg",             {K, A, A, A}, AGORA__ARG_ANY, "runner receives job memfds (SCM_RIGHTS)"},
    {"sendmsg",             {K, K, K, K}, AGORA__ARG_ANY, "could pass a descriptor to the host: never needed"},
    {"socket",              {K, X, X, X}, AGORA__ARG_SOCKET_UNIX, "no network, no new sockets; glibc asks nscd over AF_UNIX for user names (glog) and falls back on EACCES"},
    {"connect",             {K, K, K, K}, AGORA__ARG_ANY, "no network"},
    /* -- threads yes, processes no -- */
    {"clone",               {K, A, A, A}, AGORA__ARG_CLONE_THREAD, "threads only (fork rules added for the zygote)"},
    {"clone3",              {K, N, N, N}, AGORA__ARG_ANY, "arguments live in memory seccomp cannot read: ENOSYS makes glibc fall back to clone"},
    {"fork",                {K, K, K, K}, AGORA__ARG_ANY, "no processes"},
    {"vfork",               {K, K, K, K}, AGORA__ARG_ANY, "no processes"},
    {"execve",              {K, K, K, K}, AGORA__ARG_ANY, "no programs"},
    {"execveat",            {K, K, K, K}, AGORA__ARG_ANY, "no programs"},
    {"wait4",               {A, A, K, A}, AGORA__ARG_ANY, "supervisor and zygote reap their children (the loader filter stays stacked under the zygote)"},
    {"exit",                {A, A, A, A}, AGORA__ARG_ANY, "thread exit"},
    {"exit_group",          {A, A, A, A}, AGORA__ARG_ANY, "process exit"},
    {"set_robust_list",     {K, A, A, A}, AGORA__ARG_ANY, "new threads"},
    {"rseq",                {K, A, A, A}, AGORA__ARG_ANY, "new threads (glibc registers rseq)"},
    {"set_tid_address",     {K, A, A, A}, AGORA__ARG_ANY, "new threads"},
    {"arch_prctl",          {K, A, A, A}, AGORA__ARG_ANY, "TLS setup"},
    {"futex",               {K, A, A, A}, AGORA__ARG_ANY, "locks and condition variables"},
    {"futex_waitv",         {K, A, A, A}, AGORA__ARG_ANY, "same"},
    {"sched_yield",         {K, A, A, A}, AGORA__ARG_ANY, "spin locks"},
    {"sched_getaffinity",   {K, A, A, A}, AGORA__ARG_ANY, "get_nprocs() fallback sizes thread pools"},
    {"sched_setaffinity",   {K, A, A, A}, AGORA__ARG_ANY, "thread pinning (own threads only in the pid namespace)"},
    {"getcpu",              {K, A, A, A}, AGORA__ARG_ANY, "per-CPU caches"},
    {"prctl",               {K, A, A, A}, AGORA__ARG_PRCTL_NAME, "thread names only"},
    {"prlimit64",           {K, A, A, A}, AGORA__ARG_RLIMIT_GET, "read own limits (thread stack size); never raise"},
    {"getrlimit",           {K, A, A, A}, AGORA__ARG_ANY, "read own limits"},
    {"seccomp",             {K, A, K, A}, AGORA__ARG_SECCOMP_FILTER, "runner stacks the next filter; only ever narrows"},
    /* -- signals: only within the worker -- */
    {"rt_sigaction",        {A, A, A, A}, AGORA__ARG_ANY, "handlers"},
    {"rt_sigprocmask",      {A, A, A, A}, AGORA__ARG_ANY, "masks"},
    {"rt_sigreturn",        {A, A, A, A}, AGORA__ARG_ANY, "return from handlers"},
    {"sigaltstack",         {K, A, A, A}, AGORA__ARG_ANY, "stack-overflow handlers"},
    {"restart_syscall",     {A, A, A, A}, AGORA__ARG_ANY, "resume after a signal"},
    {"tgkill",              {A, A, A, A}, AGORA__ARG_ANY, "abort()/raise()/pthread_kill: the pid namespace holds only the worker's own threads and children"},
    {"tkill",               {K, A, A, A}, AGORA__ARG_ANY, "same"},
    {"kill",                {A, K, K, K}, AGORA__ARG_ANY, "plugins never signal processes; supervisor re-raises a child's signal on itself"},
    /* -- identity, time, randomness -- */
    {"getpid",              {A, A, A, A}, AGORA__ARG_ANY, "raise() and logging"},
    {"gettid",              {A, A, A, A}, AGORA__ARG_ANY, "raise() and logging"},
    {"getppid",             {K, A, A, A}, AGORA__ARG_ANY, "die-with-parent checks"},
    {"getuid",              {K, A, A, A}, AGORA__ARG_ANY, "harmless inside the user namespace"},
    {"geteuid",             {K, A, A, A}, AGORA__ARG_ANY, "same"},
    {"getgid",              {K, A, A, A}, AGORA__ARG_ANY, "same"},
    {"getegid",             {K, A, A, A}, AGORA__ARG_ANY, "same"},
    {"uname",               {K, A, A, A}, AGORA__ARG_ANY, "private UTS namespace"},
    {"sysinfo",             {K, A, A, A}, AGORA__ARG_ANY, "sysconf(_SC_PHYS_PAGES/_SC_AVPHYS_PAGES); glibc ignores its errors, so refusing it would hand plugins stack garbage (host-wide RAM and process counts are visible: see Known limits)"},
    {"clock_gettime",       {K, A, A, A}, AGORA__ARG_ANY, "time (vDSO fallback)"},
    {"clock_getres",        {K, A, A, A}, AGORA__ARG_ANY, "time"},
    {"clock_nanosleep",     {K, A, A, A}, AGORA__ARG_ANY, "sleep"},
    {"nanosleep",           {K, A, A, A}, AGORA__ARG_ANY, "sleep"},
    {"gettimeofday",        {K, A, A, A}, AGORA__ARG_ANY, "time"},
    {"time",                {K, A, A, A}, AGORA__ARG_ANY, "time"},
    {"getrandom",           {K, A, A, A}, AGORA__ARG_ANY, "randomness without /dev"},
    {"getrusage",           {K, A, A, A}, AGORA__ARG_ANY, "runner measures job CPU and peak RSS"},
    {"times",               {K, A, A, A}, AGORA__ARG_ANY, "clock()"},
    /* -- explicitly refused (listed so that the table documents them; the default kills too) -- */
    {"io_uring_setup",      {K, K, K, K}, AGORA__ARG_ANY, "io_uring operations bypass seccomp"},
    {"io_uring_enter",      {K, K, K, K}, AGORA__ARG_ANY, "same"},
    {"io_uring_register",   {K, K, K, K}, AGORA__ARG_ANY, "same"},
    {"ptrace",              {K, K, K, K}, AGORA__ARG_ANY, "no debugging of anything"},
    {"process_vm_readv",    {K, K, K, K}, AGORA__ARG_ANY, "no cross-process memory access"},
    {"process_vm_writev",   {K, K, K, K}, AGORA__ARG_ANY, "same"},
    {"unshare",             {K, A, K, A}, AGORA__ARG_UNSHARE_NOOP, "no new namespaces (kernel attack surface); only the zygote's single-thread check (CLONE_THREAD+CLONE_SIGHAND+CLONE_VM: unshares nothing, fails while other threads exist)"},
    {"setns",               {K, K, K, K}, AGORA__ARG_ANY, "same"},
    {"mount",               {K, K, K, K}, AGORA__ARG_ANY, "root is fixed before any plugin code runs"},
    {"umount2",             {K, K, K, K}, AGORA__ARG_ANY, "same"},
    {"pivot_root",          {K, K, K, K}, AGORA__ARG_ANY, "same"},
    {"memfd_create",        {K, K, K, K}, AGORA__ARG_ANY, "would be a way to map new executable code, and shared memory not charged to RLIMIT_DATA"},
    {"memfd_secret",        {K, K, K, K}, AGORA__ARG_ANY, "memory outside every accounting the sandbox reads"},
    {"shmget",              {K, K, K, K}, AGORA__ARG_ANY, "System V shared memory is not charged to RLIMIT_DATA (and the IPC namespace is private anyway)"},
    {"shmat",               {K, K, K, K}, AGORA__ARG_ANY, "same"},
    {"shmctl",              {K, K, K, K}, AGORA__ARG_ANY, "same"},
    {"remap_file_pages",    {K, K, K, K}, AGORA__ARG_ANY, "deprecated remapping of shared mappings"},
    {"pkey_mprotect",       {K, K, K, K}, AGORA__ARG_ANY, "could add PROT_EXEC past the mprotect rule"},
    {"userfaultfd",         {K, K, K, K}, AGORA__ARG_ANY, "kernel attack surface"},
    {"bpf",                 {K, K, K, K}, AGORA__ARG_ANY, "kernel attack surface"},
    {"perf_event_open",     {K, K, K, K}, AGORA__ARG_ANY, "kernel attack surface, side channels"},
    {"keyctl",              {K, K, K, K}, AGORA__ARG_ANY, "kernel keyrings"},
    {"personality",         {K, K, K, K}, AGORA__ARG_ANY, "READ_IMPLIES_EXEC and friends"},
};
/* clang-format on */

const size_t agora__policy_table_len = sizeof agora__policy_table / sizeof agora__policy_table[0];
