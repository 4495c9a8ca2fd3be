/*
 * runner_proc.h — the host's side of an agora-runner process: finding the executable, starting
 * it on its protocol socket, and the Ready handshake check. Shared by both host clients (the
 * plugin pool in host/worker and the ingest client in host/ingest); the numbers are proto.h's.
 */
#ifndef AGORA_PROTO_RUNNER_PROC_H
#define AGORA_PROTO_RUNNER_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "agora_ipc.pb-c.h"
#include "common.h"
#include "proto.h"

/* Path of the agora-runner executable, one search order for every client: $AGORA_RUNNER; else
 * the build tree relative to this executable (<build>/host/cli/agora and
 * <build>/tests/<kind>/<module>/<test> both find <build>/sandbox/agora-runner); else the
 * installed <libexecdir>/agora/agora-runner (meson's libexecdir); else <bindir>/agora-runner
 * (older installs). Writes into buf; 0 or a negative code with err saying where it looked. */
int agora__runner_path(char *buf, size_t size, agora__error *err);

/* Directory holding the plugin template: $AGORA_TEMPLATE_DIR, else the build tree's copy
 * (<build>/sdk/template), else <datadir>/agora/template. */
int agora__template_dir(char *buf, size_t size, agora__error *err);

/* Start the runner: socketpair, fork, child gets its end as AGORA__RUNNER_FD (everything else
 * CLOEXEC or closed), stdin/stdout on /dev/null, stderr inherited, an empty environment but
 * AGORA_LOG. cgroup_procs_fd >= 0: the child joins that cgroup before exec (fails closed with
 * AGORA__RUNNER_EXIT_CGROUP). *sock receives the host end (non-blocking, CLOEXEC); the caller
 * owns it and the child (reap with waitpid). */
int agora__spawn_runner(const char *runner_path, int cgroup_procs_fd, pid_t *pid, int *sock,
                        agora__error *err);

/* The checks a Ready frame must pass before the worker counts as started, for a host that sent
 * Setup.protocol_version = protocol_version and expects the plugin (id, version); plugin_id NULL
 * for a runner in MODE_INGEST (no plugin). 0, or AGORA_EINVAL with err saying what was wrong. */
int agora__ready_check(const Agora__Ipc__Ready *r, uint32_t protocol_version, const char *plugin_id,
                       const char *plugin_version, agora__error *err);

#endif
