/* Private to the results module: helpers shared by its files. */
#ifndef AGORA_RESULTS_PRIVATE_H
#define AGORA_RESULTS_PRIVATE_H

#include "results.h"

/* A set of frame indices 0..AGORA__RESULTS_MAX_FRAME. */
typedef struct agora__results_frames {
    uint8_t bits[(AGORA__RESULTS_MAX_FRAME + 1) / 8];
} agora__results_frames;

/* Validate and collect every frame index the document references (regions, masks,
 * findings, measurements) into frames (zeroed by the caller). */
int agora__results_validate_frames(const json_t *doc, agora__result_form form,
                                   agora__results_frames *frames, agora__error *err);

/* Bytes a mask of this (validated) geometry occupies: rows*columns*frames at 8 bits,
 * rounded up to whole bytes at 1 bit. Saturates at SIZE_MAX. */
size_t agora__results_mask_bytes(const json_t *mask);

/* 0 when every mask region of doc (borrowed) has exactly one buffer of its sha256 and size and
 * every buffer belongs to a region; else AGORA_EINVAL naming the region. On success *sums (if
 * not NULL) receives the buffers' sha256 hex, malloc'ed, n_masks entries (NULL when none). */
int agora__results_match_masks(const json_t *doc, const agora__results_mask *masks,
                               size_t n_masks, char (**sums)[65], agora__error *err);

int agora__results_status_known(const char *s);

/* HOME/results/<sha256(study uid) hex> into buf. */
int agora__results_study_dir(const char *home, const char *study_uid, char *buf, size_t size,
                             agora__error *err);

/* Write data to path (a new file in dir, 0600, fsynced, then linked) unless path exists:
 * first writer wins, *already set. */
int agora__results_write_once(const char *dir, const char *path, const void *data, size_t len,
                              int *already, agora__error *err);

/* Read and parse a JSON file of the store (bounded by AGORA__RESULTS_MAX_FILE). */
int agora__results_load_json(const char *path, json_t **out, agora__error *err);

/* If doc (a validated stored result) is urgent, write its triage index entry
 * HOME/results/urgent/<invocation>.json; 0 when it is not urgent. */
int agora__results_urgent_mark(const char *home, const json_t *doc, agora__error *err);

#endif
