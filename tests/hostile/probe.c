/*
 * The isolation probe (not hostile): looks at the world from inside the sandbox and fails the
 * job, naming every expectation that does not hold. Filesystem checks run in a constructor
 * (under the loader filter, where stat/open are still allowed) so they see the real view rather
 * than the compute filter's blanket EACCES.
 */
#include "agora/agora.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

extern char **environ;

static const agora_host *host;
static char failures[2048];

static void fail(const char *what)
{
    size_t n = strlen(failures);
    snprintf(failures + n, sizeof failures - n, "%s%s", n ? "; " : "", what);
}

static void expect_absent(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        char b[128];
        snprintf(b, sizeof b, "%s is visible", path);
        fail(b);
    }
}

__attribute__((constructor)) static void probe_ctor(void)
{
    /* /proc and /sys exist only as the synthetic CPU view (cpuinfo, devices/system/cpu). */
    static const char *const absent[] = {"/proc/self", "/proc/1",     "/sys/fs",  "/sys/kernel",
                                         "/dev",       "/tmp",        "/etc/passwd", "/usr/bin",
                                         "/bin/sh",    "/home",       "/root",    "/var",
                                         "/run"};
    for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++)
        expect_absent(absent[i]);
    struct stat st;
    if (stat("/usr/lib/x86_64-linux-gnu", &st) != 0)
        fail("the loader directory is missing");
    for (char **e = environ; e != NULL && *e != NULL; e++)
        if (strstr(*e, "_THREADS=") == NULL && strncmp(*e, "OMP_THREAD_LIMIT=", 17) != 0)
            fail("the environment holds more than the fixed thread variables");
    if (getenv("AGORA_TEST_SECRET") != NULL)
        fail("the host environment leaked");
    if (getuid() != 0 || getpid() != 2 || getppid() != 1)
        fail("unexpected ids (want uid 0, pid 2, ppid 1 inside the namespaces)");
    struct utsname u;
    if (uname(&u) != 0 || strcmp(u.nodename, "agora") != 0)
        fail("hostname is not the sandbox's");
}

static int32_t probe_init(const agora_host *h, void **state)
{
    host = h;
    *state = NULL;
    return AGORA_OK;
}

static int32_t probe_process(void *state, agora_job *job, const agora_image *image)
{
    (void)state;
    (void)image;
    /* Descriptors: 0-2 inert, 3 the socket, 4-5 this job's memfds, nothing else. */
    for (int fd = 6; fd < 64; fd++)
        if (fcntl(fd, F_GETFD) >= 0) {
            char b[64];
            snprintf(b, sizeof b, "fd %d is open", fd);
            fail(b);
        }
    struct stat st;
    if (fstat(3, &st) != 0 || !S_ISSOCK(st.st_mode))
        fail("fd 3 is not the host socket");
    if (write(1, "x", 1) != -1 || errno != EBADF)
        fail("stdout is writable");
    if (open("/usr/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY) >= 0)
        fail("a job could open a file");
    if (failures[0]) {
        host->set_error(job, failures);
        return AGORA_EINTERNAL;
    }
    host->set_summary(job, "isolation as expected");
    return AGORA_OK;
}

static const agora_plugin descriptor = {
    .struct_size = sizeof(agora_plugin),
    .abi_version = AGORA_ABI_VERSION,
    .id = "org.agora.test.probe",
    .version = "1.0.0",
    .init = probe_init,
    .process = probe_process,
};

AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version)
{
    if (AGORA_ABI_MAJOR(host_abi_version) != AGORA_ABI_VERSION_MAJOR)
        return NULL;
    return &descriptor;
}
