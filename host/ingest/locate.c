/* Finding agora-runner for the ingest client: the same search order as the worker module
 * (environment, build tree relative to the running executable, install prefix), kept here so
 * that host/ingest does not depend on the libuv worker pool. */
#include "ingest_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AGORA_PREFIX
#define AGORA_PREFIX "/usr/local"
#endif

static int is_exec_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

static int set_path(char *buf, size_t size, const char *p, agora__error *err)
{
    if (strlen(p) >= size)
        return agora__error_set(err, AGORA_ELIMIT, "path too long: %s", p);
    agora__strlcpy(buf, p, size);
    return 0;
}

int agora__ingest_runner_path(char *buf, size_t size, agora__error *err)
{
    const char *env = getenv("AGORA_RUNNER");
    if (env != NULL && env[0] != '\0') {
        if (!is_exec_file(env))
            return agora__error_set(err, AGORA_EINVAL,
                                    "AGORA_RUNNER=%s is not an executable file; fix or unset it",
                                    env);
        return set_path(buf, size, env, err);
    }
    char exe[PATH_MAX], cand[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            /* <build>/host/cli/agora and <build>/tests/<kind>/<mod>/<test> */
            static const char *const rel[] = {"../../sandbox/agora-runner",
                                              "../../../sandbox/agora-runner"};
            for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
                snprintf(cand, sizeof cand, "%s/%s", exe, rel[i]);
                if (is_exec_file(cand))
                    return set_path(buf, size, cand, err);
            }
        }
    }
    static const char *const installed[] = {AGORA_PREFIX "/bin/agora-runner",
                                            AGORA_PREFIX "/libexec/agora/agora-runner"};
    for (size_t i = 0; i < sizeof installed / sizeof installed[0]; i++)
        if (is_exec_file(installed[i]))
            return set_path(buf, size, installed[i], err);
    return agora__error_set(err, AGORA_EINVAL,
                            "cannot find agora-runner (looked at $AGORA_RUNNER, the build tree "
                            "and %s); install agora or set AGORA_RUNNER",
                            AGORA_PREFIX);
}
