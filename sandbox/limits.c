/* Effective limits: Setup.limits with defaults for unset fields and clamps for absurd ones. */
#include "runner.h"

void agora__runner_limits_from(const Agora__Ipc__Limits *in, agora__runner_limits *out)
{
    out->memory_bytes = AGORA__RUNNER_DEFAULT_MEMORY;
    out->cpu_seconds = AGORA__RUNNER_DEFAULT_CPU_S;
    out->max_threads = AGORA__RUNNER_DEFAULT_THREADS;
    out->max_result_bytes = AGORA__RUNNER_DEFAULT_RESULT;
    out->max_items = AGORA__RUNNER_DEFAULT_ITEMS;
    out->max_log_lines = AGORA__RUNNER_DEFAULT_LOGS;
    out->job_map_bytes = AGORA__MEMCAP_DEFAULT_JOB_MAP;
    out->asset_bytes = 0; /* set from the Asset frames, never from Limits */
    if (in == NULL)
        return;
    if (in->memory_bytes)
        out->memory_bytes = in->memory_bytes < (16u << 20) ? (16u << 20) : in->memory_bytes;
    if (in->cpu_seconds)
        out->cpu_seconds = in->cpu_seconds;
    if (in->max_threads)
        out->max_threads = in->max_threads > 1024 ? 1024 : in->max_threads;
    if (in->max_result_bytes)
        out->max_result_bytes = in->max_result_bytes > AGORA__FRAME_RUNNER_TO_HOST_MAX - 4096
                                    ? AGORA__FRAME_RUNNER_TO_HOST_MAX - 4096
                                    : in->max_result_bytes;
    if (in->max_items)
        out->max_items = in->max_items;
    if (in->max_log_lines)
        out->max_log_lines = in->max_log_lines;
    /* Never above the host's own maxima (a 2 GiB pixel buffer and 256 MiB of output... plus
     * slack): a larger value would only loosen the address-space backstop. */
    if (in->job_map_bytes)
        out->job_map_bytes = in->job_map_bytes > (4ull << 30) ? (4ull << 30) : in->job_map_bytes;
}
