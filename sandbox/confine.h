/*
 * Private to the confinement files (namespaces.c, rootfs.c, lockdown.c): what the namespace step
 * achieved, for the later steps to check.
 */
#ifndef AGORA_SANDBOX_CONFINE_H
#define AGORA_SANDBOX_CONFINE_H

#include <sys/types.h>

#include "runner.h"

typedef struct agora__runner_ns {
    unsigned long flags; /* CLONE_NEW* the kernel granted */
    pid_t reaper_pid;    /* the worker's parent, as the worker sees it */
    int plugin_fd;       /* weak mode without a mount namespace: the plugin memfd, else -1 */
} agora__runner_ns;

extern agora__runner_ns agora__runner_ns_state;

/* In the reaper, inside a new mount namespace: tmpfs root with read-only loader binds and the
 * verified plugin file, pivot_root, old root detached, root remounted read-only. Frees the
 * plugin bytes. Exits with Error{CONFINE} on failure. */
void agora__runner_build_root(agora__runner_setup *s);
/* Weak mode without a mount namespace: the verified bytes go into a sealed memfd that the loader
 * opens through /proc/self/fd. Frees the plugin bytes. */
void agora__runner_plugin_memfd(agora__runner_setup *s);
/* cpuview.c, in the root under construction (cwd): sys/devices/system/cpu/{possible,present,
 * online} and cpuN, and proc/cpuinfo, for cpus CPUs (the directories must exist). */
void agora__runner_cpuview_build(uint32_t cpus);

#endif
