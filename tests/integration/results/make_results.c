/* Test helper: stores sample results (the unit tests' sample: ok with every field, plus a
 * failed one) for one study in HOME through the results API, as `agora run` will.
 * With "urgent", the ok result is marked urgent (triage), as org.agora.triage/1 would.
 * usage: make_results HOME [urgent]  -> prints the Study Instance UID used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results.h"
#include "../../unit/results/sample_result.h"

int main(int argc, char **argv)
{
    int urgent = argc == 3 && strcmp(argv[2], "urgent") == 0;
    if (argc != 2 && !urgent) {
        fprintf(stderr, "usage: make_results HOME [urgent]\n");
        return 2;
    }
    static const char study[] = "1.2.826.0.1.3680043.8.498.100";
    static const char *const sop[] = {"1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2",
                                      "1.2.826.0.1.3680043.8.498.3", "1.2.826.0.1.3680043.8.498.4"};
    uint8_t mask[32];
    for (size_t i = 0; i < sizeof mask; i++)
        mask[i] = (uint8_t)(i & 1);
    uint8_t h[32];
    char sha[65];
    agora__sha256(mask, sizeof mask, h);
    agora__hex(h, 32, sha);
    json_error_t je;
    json_t *w = json_loads(sample_worker_result, 0, &je);
    json_t *fail = json_loads("{\"schema\":\"agora.result/1\",\"plugin\":{\"id\":\"org.example."
                              "slow\",\"version\":\"0.1\"},\"job_id\":8,\"status\":\"timeout\","
                              "\"error\":\"took longer than 30 s\"}",
                              0, &je);
    if (w == NULL || fail == NULL)
        return 1;
    json_object_set_new(json_object_get(json_array_get(json_object_get(w, "regions"), 3), "mask"),
                        "sha256", json_string(sha));
    if (urgent)
        json_object_set_new(w, "triage",
                            json_pack("{s:b,s:s}", "urgent", 1, "reason", "suspected bleed"));
    agora__error err = {0};
    const json_t *docs[] = {w, fail};
    const char *ids[] = {"0192f0c4a1b27c3d8e9fa0b1c2d3e4f5", "0192f0c4a1b27c3d8e9fa0b1c2d3e4f6"};
    for (int i = 0; i < 2; i++) {
        agora__results_reident ri = {.invocation_id = ids[i],
                                     .study_uid = study,
                                     .series_uid = "1.2.826.0.1.3680043.8.498.101",
                                     .frame_sop_uids = sop,
                                     .n_frames = 4,
                                     .created_unix_ms = 1794744000000ULL + (uint64_t)i};
        json_t *s = NULL;
        agora__results_mask mk = {mask, sizeof mask};
        if (agora__results_reidentify(docs[i], &ri, &s, &err) != 0 ||
            agora__results_store(argv[1], s, i == 0 ? &mk : NULL, i == 0 ? 1 : 0, NULL, &err) !=
                0) {
            fprintf(stderr, "make_results: %s\n", err.msg);
            return 1;
        }
        json_decref(s);
    }
    json_decref(w);
    json_decref(fail);
    puts(study);
    return 0;
}
