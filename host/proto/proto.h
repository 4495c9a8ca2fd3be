/*
 * proto.h — the host <-> agora-runner protocol's numbers, named once. Included by the host
 * (host/proto, host/worker, host/ingest) and by the runner (sandbox/), so both sides agree by
 * construction. The messages themselves are schemas/agora_ipc.proto; this header holds what the
 * .proto cannot say: the framing, the caps per direction, the descriptor counts, the allocation
 * budget for unpacking, the protocol versions, the runner's exit codes and the wire-only enums.
 * Constants and static inline helpers only: no dependency beyond <stdint.h>/<stddef.h>.
 */
#ifndef AGORA_PROTO_H
#define AGORA_PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Protocol versions (Setup.protocol_version, echoed in Ready). 1: one runner per worker, jobs
 * sent directly. 2: adds ForkJob/JobExit (fresh process per job). 3: adds Setup.n_assets and
 * the Asset frames (the plugin's verified assets as sealed memfds). The plugin path speaks
 * AGORA__PROTO_VERSION; the ingest path needs nothing of version 2 and speaks the base. */
#define AGORA__PROTO_VERSION_BASE 1u
#define AGORA__PROTO_VERSION_FORK 2u
#define AGORA__PROTO_VERSION_ASSETS 3u /* adds Setup.n_assets and the Asset frames */
#define AGORA__PROTO_VERSION      AGORA__PROTO_VERSION_ASSETS

/* The runner's end of the host socket, fixed by the protocol (the host dup2()s it there). */
#define AGORA__RUNNER_FD 3

/* Framing: a 4-byte little-endian payload length, then one serialized agora.ipc.Frame. The caps
 * count the payload, not the prefix. Host -> runner frames are small (Setup with the plugin
 * bytes by descriptor, Job descriptors); runner -> host frames carry results and metadata. */
#define AGORA__FRAME_PREFIX             4u
#define AGORA__FRAME_HOST_TO_RUNNER_MAX ((size_t)1 << 20) /* 1 MiB */
#define AGORA__FRAME_RUNNER_TO_HOST_MAX ((size_t)8 << 20) /* 8 MiB */
/* Most bytes protobuf-c may allocate to unpack one runner -> host frame: an 8 MiB frame of tiny
 * repeated submessages would otherwise expand ~50x in memory. Both host clients (plugin and
 * ingest) unpack with it. */
#define AGORA__FRAME_UNPACK_BUDGET ((size_t)64 << 20)
/* SCM_RIGHTS: most descriptors one host -> runner frame carries (Job: pixels + output;
 * IngestRequest DECODE/DEID_WRITE/DUMP: input + output). Runner -> host frames carry none: the
 * host closes any that arrives and fails the read. */
#define AGORA__FRAME_MAX_FDS 2
/* Setup.root_files (the plugin's dependency closure): most entries and longest path. 1536 paths
 * of 512 bytes stay well inside the 1 MiB host -> runner frame; libtorch needs ~600 entries. */
#define AGORA__ROOT_FILES_MAX 1536
#define AGORA__ROOT_PATH_MAX  512

/* Region.kind on the wire: AGORA_REGION_POINT/BOX/POLYGON (agora.h) or this for a mask. */
#define AGORA__REGION_MASK 4

/* Ingest metadata bounds (IngestMetadata): both the runner's extractor and the host's reply
 * check use them. */
#define AGORA__INGEST_MAX_ELEMENTS  512u
#define AGORA__INGEST_MAX_VALUE     1024u
#define AGORA__INGEST_MAX_POSITIONS 65536u

/* Exit codes of agora-runner (the host maps them to messages; signals pass through as signals). */
#define AGORA__RUNNER_EXIT_OK       0  /* Shutdown honoured */
#define AGORA__RUNNER_EXIT_USAGE    2  /* bad command line */
#define AGORA__RUNNER_EXIT_SETUP    10 /* Setup unreadable or plugin bytes refused */
#define AGORA__RUNNER_EXIT_CONFINE  11 /* a confinement step failed: never ran plugin code */
#define AGORA__RUNNER_EXIT_LOAD     12 /* dlopen / entry / descriptor check failed */
#define AGORA__RUNNER_EXIT_INIT     13 /* plugin init failed */
#define AGORA__RUNNER_EXIT_PROTOCOL 14 /* the host sent something invalid, or the socket broke */
#define AGORA__RUNNER_EXIT_INTERNAL 15 /* runner bug or resource failure outside a job */
#define AGORA__RUNNER_EXIT_OOM      16 /* crashed (SIGSEGV/SIGBUS/SIGABRT) at the memory cap */
/* Exit statuses of the host's fork+exec child before the runner runs (host/proto/spawn.c). */
#define AGORA__RUNNER_EXIT_CGROUP 126 /* could not join the worker's cgroup */
#define AGORA__RUNNER_EXIT_EXEC   127 /* descriptor set-up or execve failed */

static inline void agora__frame_put_len(uint8_t out[AGORA__FRAME_PREFIX], uint32_t n)
{
    out[0] = (uint8_t)n;
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)(n >> 16);
    out[3] = (uint8_t)(n >> 24);
}

static inline uint32_t agora__frame_get_len(const uint8_t in[AGORA__FRAME_PREFIX])
{
    return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

#endif
