/*
 * Synthetic phantom series with realistic but FAKE identity, for tests and demos (`agora dicom
 * synth`, host/cli/cmd_synth.c). Its own module so that dicom/ does not depend on deid/: it
 * writes with the deid Part 10 writer and plants everything the de-identifier must remove.
 * A library: it never prints.
 */
#ifndef AGORA_SYNTH_H
#define AGORA_SYNTH_H

#include <stdint.h>

#include "common.h"

#define AGORA__SYNTH_SLICES_MAX 4096u /* files of one series */
#define AGORA__SYNTH_DIM_MIN    8u    /* rows and columns */
#define AGORA__SYNTH_DIM_MAX    4096u
#define AGORA__SYNTH_TEXT_MAX   64u /* bytes of a given patient name or ID (UTF-8) */

typedef struct agora__synth_opts {
    int ct; /* 1 CT, 0 MR */
    unsigned slices, rows, cols;
    uint64_t seed;
    int have_seed;            /* seed given: reproducible bytes; otherwise a fresh random seed */
    const char *out;          /* the folder to write IM00001.dcm ... into (created) */
    const char *patient_name; /* NULL: a fake default; else UTF-8 of at most TEXT_MAX bytes */
    const char *patient_id;
    int burned_in; /* BurnedInAnnotation: -1 absent, 0 NO, 1 YES */
    unsigned series; /* 0 or 1: the seed's first series; n > 1: series n of the SAME study (its
                        own Series and SOP Instance UIDs, SeriesNumber n + 2), e.g. a late
                        series for `agora serve` tests (1..AGORA__SYNTH_SERIES_MAX) */
} agora__synth_opts;

#define AGORA__SYNTH_SERIES_MAX 99u

/* The fake identity planted in every file, so that tests know what must disappear. */
typedef struct agora__synth_planted {
    char name[80], pid[80], accession[32], study_id[17], birth[9], study_date[9];
    char study_uid[65], series_uid[65], for_uid[65];
} agora__synth_planted;

/* Write the series o describes (options already checked by the caller) and fill *planted.
 * 0 or an AGORA_E* code with err set. */
int agora__synth_write(const agora__synth_opts *o, agora__synth_planted *planted,
                       agora__error *err);

#endif
