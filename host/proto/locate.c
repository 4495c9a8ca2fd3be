/* Finding the installed (or built) pieces the host needs: the runner executable (both clients)
 * and the plugin template. One search order each, in one place: environment, build tree
 * relative to the running executable, the install directories meson configured. No source-tree
 * path is compiled in: installed binaries must not carry the builder's paths. */
#include "runner_proc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AGORA_PREFIX
#define AGORA_PREFIX "/usr/local"
#endif
#ifndef AGORA_LIBEXECDIR
#define AGORA_LIBEXECDIR AGORA_PREFIX "/libexec"
#endif
#ifndef AGORA_BINDIR
#define AGORA_BINDIR AGORA_PREFIX "/bin"
#endif
#ifndef AGORA_DATADIR
#define AGORA_DATADIR AGORA_PREFIX "/share"
#endif

/* dirname of /proc/self/exe, e.g. <build>/host/cli for the agora CLI in a build tree. */
static int exe_dir(char *buf, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    if (strlen(exe) >= size)
        return -1;
    agora__strlcpy(buf, exe, size);
    return 0;
}

static int is_exec_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int set_path(char *buf, size_t size, const char *p, agora__error *err)
{
    if (strlen(p) >= size)
        return agora__error_set(err, AGORA_ELIMIT, "path too long: %s", p);
    agora__strlcpy(buf, p, size);
    return 0;
}

/* $env_name when set (it must pass ok), else the first of the build-tree candidates rel[0..1]
 * relative to this executable that passes ok: 1 with buf set, 0 when none applies, negative on
 * a bad $env_name or a path too long. */
static int from_env_or_build(const char *env_name, int (*ok)(const char *), const char *what,
                             const char *const rel[2], char *buf, size_t size, agora__error *err)
{
    const char *env = getenv(env_name);
    if (env != NULL && env[0] != '\0') {
        if (!ok(env))
            return agora__error_set(err, AGORA_EINVAL, "%s=%s is not %s; fix or unset it", env_name,
                                    env, what);
        int rc = set_path(buf, size, env, err);
        return rc < 0 ? rc : 1;
    }
    char dir[PATH_MAX], cand[PATH_MAX + 64];
    if (exe_dir(dir, sizeof dir) != 0)
        return 0;
    for (size_t i = 0; i < 2; i++) {
        snprintf(cand, sizeof cand, "%s/%s", dir, rel[i]);
        if (ok(cand)) {
            int rc = set_path(buf, size, cand, err);
            return rc < 0 ? rc : 1;
        }
    }
    return 0;
}

int agora__runner_path(char *buf, size_t size, agora__error *err)
{
    /* <build>/host/cli/agora and <build>/tests/<kind>/<module>/<test> */
    static const char *const rel[2] = {"../../sandbox/agora-runner",
                                       "../../../sandbox/agora-runner"};
    int rc =
        from_env_or_build("AGORA_RUNNER", is_exec_file, "an executable file", rel, buf, size, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    char cand[PATH_MAX + 64];
    /* Where sandbox/meson.build installs it, then bindir for installs made before that. */
    snprintf(cand, sizeof cand, "%s/agora/agora-runner", AGORA_LIBEXECDIR);
    if (is_exec_file(cand))
        return set_path(buf, size, cand, err);
    char bin[PATH_MAX + 64];
    snprintf(bin, sizeof bin, "%s/agora-runner", AGORA_BINDIR);
    if (is_exec_file(bin))
        return set_path(buf, size, bin, err);
    return agora__error_set(err, AGORA_EINVAL,
                            "cannot find agora-runner (looked at $AGORA_RUNNER, the build tree, "
                            "%s and %s); install agora or set AGORA_RUNNER",
                            cand, bin);
}

int agora__template_dir(char *buf, size_t size, agora__error *err)
{
    /* sdk/template/meson.build copies the template into the build tree. */
    static const char *const rel[2] = {"../../sdk/template", "../../../sdk/template"};
    int rc = from_env_or_build("AGORA_TEMPLATE_DIR", is_dir, "a directory", rel, buf, size, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    char cand[PATH_MAX + 64];
    snprintf(cand, sizeof cand, "%s/agora/template", AGORA_DATADIR);
    if (is_dir(cand))
        return set_path(buf, size, cand, err);
    return agora__error_set(err, AGORA_EINVAL,
                            "cannot find the plugin template (looked at $AGORA_TEMPLATE_DIR, the "
                            "build tree and %s); install agora or set AGORA_TEMPLATE_DIR",
                            cand);
}
