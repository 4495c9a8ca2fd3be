/*
 * The durable job queue (queue.h): schema, state names and the guarded transitions.
 */
#include <string.h>

#include "common.h"
#include "queue.h"

static const char *const state_names[AGORA__JOB_STATE_COUNT] = {
    [AGORA__JOB_WAITING] = "waiting",     [AGORA__JOB_RUNNING] = "running",
    [AGORA__JOB_SENDING] = "sending",     [AGORA__JOB_DONE] = "done",
    [AGORA__JOB_RETRYABLE] = "retryable", [AGORA__JOB_FAILED] = "failed",
    [AGORA__JOB_CANCELLED] = "cancelled",
};

const char *agora__job_state_name(agora__job_state s)
{
    if ((unsigned)s >= AGORA__JOB_STATE_COUNT)
        return NULL;
    return state_names[s];
}

int agora__job_state_parse(const char *name, agora__job_state *out)
{
    for (unsigned i = 0; name != NULL && i < AGORA__JOB_STATE_COUNT; i++)
        if (strcmp(name, state_names[i]) == 0) {
            *out = (agora__job_state)i;
            return 0;
        }
    return AGORA_EINVAL;
}
