/*
 * `agora dicom synth`: options and output of the synthetic phantom writer (host/synth). The
 * planted identity is fake; --json prints it so that tests know what must disappear.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "json_emit.h"
#include "opt.h"
#include "synth.h"

#define SYNTH_ARGS                                                                                 \
    "--modality CT|MR --slices N -o DIR [--rows R] [--cols C]\n"                                   \
    "                         [--seed S] [--patient-name NAME] [--patient-id ID]\n"                \
    "                         [--burned-in yes|no|absent] [--series N] [--json]"
#define SYNTH_ABOUT                                                                                \
    "Writes a synthetic phantom series (one file per slice, IM00001.dcm ...) with FAKE\n"          \
    "but realistic identity: names, IDs, dates, addresses, free text, nested sequences,\n"         \
    "private tags and an overlay, for testing de-identification. 512x512 by default.\n"            \
    "With --seed S the files are byte-identical for the same options; without it each\n"           \
    "run uses fresh randomness (new patient, Study, Series and SOP Instance UIDs).\n"             \
    "--series N (with --seed) writes series N of that same study instead, e.g. a\n"             \
    "late series for a receiving daemon."

/* A decimal in [lo, hi] into *out; 0, or -1 when text is not one. */
static int parse_number(const char *text, unsigned long long lo, unsigned long long hi,
                        unsigned long long *out)
{
    char *end = NULL;
    if (text == NULL || text[0] < '0' || text[0] > '9')
        return -1;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* A given patient name or ID: UTF-8 of at most AGORA__SYNTH_TEXT_MAX bytes (or not given). */
static int text_ok(const char *t)
{
    return t == NULL || (strlen(t) <= AGORA__SYNTH_TEXT_MAX && agora__utf8_valid(t, strlen(t)));
}

/* Read the options into *o; 1 to go on, else 0 with *status the exit status. */
static int synth_parse(int argc, char **argv, agora__synth_opts *o, int *json, int *status)
{
    const char *modality = NULL, *slices = NULL, *rows = "512", *cols = "512", *seed = NULL;
    const char *burned = "no", *series = "1";
    const agora__cli_opt opts[] = {
        {"--modality", 0, AGORA__CLI_VALUE, &modality, "CT|MR", "the modality of the series",
         AGORA__CLI_REQUIRED, NULL, 0, 0},
        {"--slices", 0, AGORA__CLI_VALUE, &slices, "N", "files of the series, 1..4096",
         AGORA__CLI_REQUIRED, NULL, 0, 0},
        {"--output", 'o', AGORA__CLI_VALUE, &o->out, "DIR", "write the files here (created)",
         AGORA__CLI_REQUIRED, NULL, 0, 0},
        {"--rows", 0, AGORA__CLI_VALUE, &rows, "R", "rows, 8..4096 (default 512)", 0, NULL, 0, 0},
        {"--cols", 0, AGORA__CLI_VALUE, &cols, "C", "columns, 8..4096 (default 512)", 0, NULL, 0,
         0},
        {"--seed", 0, AGORA__CLI_VALUE, &seed, "S", "reproducible bytes for the same options", 0,
         NULL, 0, 0},
        {"--patient-name", 0, AGORA__CLI_VALUE, &o->patient_name, "NAME",
         "plant this (fake) patient name", 0, NULL, 0, 0},
        {"--patient-id", 0, AGORA__CLI_VALUE, &o->patient_id, "ID", "plant this (fake) patient ID",
         0, NULL, 0, 0},
        {"--burned-in", 0, AGORA__CLI_VALUE, &burned, "yes|no|absent",
         "Burned In Annotation (default no)", 0, NULL, 0, 0},
        {"--series", 0, AGORA__CLI_VALUE, &series, "N",
         "series N (1..99) of the seed's study (default 1)", 0, NULL, 0, 0},
        AGORA__CLI_OPT_JSON(json, "print the planted identity as JSON"),
    };
    const agora__cli_cmd cmd = {"dicom synth",      SYNTH_ARGS, SYNTH_ABOUT, opts,
                                AGORA__CLI_N(opts), 0,          0,           0};
    size_t n_pos;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, status))
        return 0;
    unsigned long long n_slices = 0, n_rows = 0, n_cols = 0, s = 1, n_series = 1;
    const char *bad = NULL;
    if (strcmp(modality, "CT") != 0 && strcmp(modality, "MR") != 0)
        bad = "--modality must be CT or MR";
    else if (parse_number(slices, 1, AGORA__SYNTH_SLICES_MAX, &n_slices) != 0)
        bad = "--slices must be 1..4096";
    else if (parse_number(rows, AGORA__SYNTH_DIM_MIN, AGORA__SYNTH_DIM_MAX, &n_rows) != 0)
        bad = "--rows must be 8..4096";
    else if (parse_number(cols, AGORA__SYNTH_DIM_MIN, AGORA__SYNTH_DIM_MAX, &n_cols) != 0)
        bad = "--cols must be 8..4096";
    else if (seed != NULL && parse_number(seed, 0, UINT64_MAX, &s) != 0)
        bad = "--seed must be a number";
    else if (strcmp(burned, "yes") != 0 && strcmp(burned, "no") != 0 &&
             strcmp(burned, "absent") != 0)
        bad = "--burned-in must be yes, no or absent";
    else if (parse_number(series, 1, AGORA__SYNTH_SERIES_MAX, &n_series) != 0)
        bad = "--series must be 1..99";
    else if (n_series > 1 && seed == NULL)
        bad = "--series needs --seed (the series belongs to the seed's study)";
    else if (!text_ok(o->patient_name) || !text_ok(o->patient_id))
        bad = "--patient-name/--patient-id must be UTF-8 of at most 64 bytes";
    if (bad != NULL) {
        *status = agora__cli_usage_error(cmd.name, "%s", bad);
        return 0;
    }
    o->ct = strcmp(modality, "CT") == 0;
    o->slices = (unsigned)n_slices;
    o->rows = (unsigned)n_rows;
    o->cols = (unsigned)n_cols;
    o->seed = s;
    o->have_seed = seed != NULL;
    o->series = (unsigned)n_series;
    o->burned_in = strcmp(burned, "yes") == 0 ? 1 : strcmp(burned, "no") == 0 ? 0 : -1;
    return 1;
}

int agora__cmd_dicom_synth(int argc, char **argv)
{
    agora__synth_opts o = {0};
    int json = 0, st;
    if (!synth_parse(argc, argv, &o, &json, &st))
        return st;
    agora__synth_planted p;
    agora__error err = {0};
    if (agora__synth_write(&o, &p, &err) != 0) {
        fprintf(stderr, "agora dicom synth: %s\n", err.msg);
        return 1;
    }
    if (!json) {
        fprintf(stderr, "agora dicom synth: wrote %u files to %s\n", o.slices, o.out);
        return 0;
    }
    return agora__json_emit_new(
        stdout,
        json_pack("{s:i, s:s, s:s, s:i, s:i, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}",
                  "files", (int)o.slices, "dir", o.out, "modality", o.ct ? "CT" : "MR", "rows",
                  (int)o.rows, "cols", (int)o.cols, "planted", "PatientName", p.name, "PatientID",
                  p.pid, "PatientBirthDate", p.birth, "AccessionNumber", p.accession, "StudyID",
                  p.study_id, "StudyDate", p.study_date, "StudyInstanceUID", p.study_uid,
                  "SeriesInstanceUID", p.series_uid, "FrameOfReferenceUID", p.for_uid),
        AGORA__JSON_LINE);
}
