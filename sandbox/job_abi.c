/*
 * Per-minor fitting of a job to the plugin that will see it (docs/abi.md, "Extending the ABI"):
 * a field added in 1.n is only filled for plugins built against 1.n or newer, and a job whose
 * meaning a plugin cannot see is refused rather than handed over wrong.
 */
#include "runner.h"

#include <stddef.h>
#include <stdio.h>

/* agora_frame as ABI 1.0 defined it ended with sop_instance_uid. */
#define FRAME_SIZE_1_0 ((uint32_t)(offsetof(agora_frame, sop_instance_uid) + sizeof(const char *)))

int agora__runner_fit_abi(agora_job *job, uint32_t plugin_abi, char *why, size_t why_len)
{
    if (AGORA_ABI_MINOR(plugin_abi) >= 1)
        return 0;
    if (job->n_series > 1) {
        snprintf(why, why_len,
                 "a study-scope job (%u series) needs a plugin built for ABI 1.1+ "
                 "(org.agora.study/1)",
                 job->n_series);
        return -1;
    }
    const agora_image *im = &job->image;
    for (uint32_t i = 0; i < job->n_frames; i++) {
        agora_frame *f = &job->frames[i];
        f->struct_size = FRAME_SIZE_1_0;
        if (f->rescale_slope != im->rescale_slope ||
            f->rescale_intercept != im->rescale_intercept) {
            /* Numbers only (no attribute text): slope and intercept are not identifying. */
            snprintf(why, why_len,
                     "frames differ in rescale (frame %u: slope %g intercept %g, frame 0: %g %g) "
                     "and this plugin is built for ABI 1.0 (one rescale per image); rebuild it "
                     "against ABI 1.1+ and use agora_frame.rescale_slope/intercept",
                     i, f->rescale_slope, f->rescale_intercept, im->rescale_slope,
                     im->rescale_intercept);
            return -1;
        }
    }
    return 0;
}
