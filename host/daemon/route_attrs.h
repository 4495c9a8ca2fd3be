/*
 * The routing attributes of `agora serve` (issue 12 item 4): the allow-list of NON-identifying
 * values a routing rule may test, per series. Shared by the intake (which fills them, intake.h)
 * and the rules engine (which matches them, rules.h). Owned by the intake.
 *
 * Where the values come from: the sandboxed reader (host/ingest, IngestMetadata) reports them
 * per instance; the host never parses a data set. Text fields hold DICOM code strings as the
 * reader checked them ([A-Z0-9_ ], trimmed; "" when absent) and the SOP class as a UID ("" when
 * absent). A series' attributes are those of its FIRST instance (earliest received, then the
 * smallest SOP Instance UID), except n_frames, the largest NumberOfFrames of its instances, so a
 * rule on "multi-frame" matches a series that holds one multi-frame object.
 *
 * None of these values is PHI (no names, IDs, dates, UIDs of the patient's objects, free text):
 * they may be shown by `agora rules test`, but rules still log only attribute NAMES and outcomes.
 */
#ifndef AGORA_DAEMON_ROUTE_ATTRS_H
#define AGORA_DAEMON_ROUTE_ATTRS_H

#include <stdint.h>

struct agora__ingest_meta;

#define AGORA__ROUTE_CS_MAX  17u /* a code string of at most 16 characters + NUL */
#define AGORA__ROUTE_UID_MAX 65u /* a UID of at most 64 characters + NUL */
#define AGORA__ROUTE_AE_MAX  17u /* an AE title of at most 16 characters + NUL */

typedef struct agora__route_attrs {
    char modality[AGORA__ROUTE_CS_MAX];   /* (0008,0060) Modality */
    char body_part[AGORA__ROUTE_CS_MAX];  /* (0018,0015) BodyPartExamined */
    char sop_class[AGORA__ROUTE_UID_MAX]; /* (0008,0016) SOP Class UID of the data set */
    char calling_ae[AGORA__ROUTE_AE_MAX]; /* DIMSE: the sender's AE title; STOW: "" (intake) */
    char called_ae[AGORA__ROUTE_AE_MAX];  /* DIMSE: the AE title it called; STOW: "" */
    double slice_thickness;               /* (0018,0050) in mm; NAN when absent or not a number */
    uint32_t n_frames;                    /* (0028,0008) NumberOfFrames; 1 when absent */
    uint32_t rows, columns;               /* (0028,0010/0011); 0 when absent (no image: SR, KO) */
    const char *origin;                   /* "dimse" | "stow" (static storage) */
} agora__route_attrs;

/* Fill *out from one instance's checked reader metadata (host/ingest/ingest.h) and where it came
 * from. calling_ae / called_ae may be NULL (""), origin NULL means "dimse"; strings longer than
 * the fields are truncated. `agora rules test FILE...` calls this on agora__ingest_metadata's
 * result, so a rule test sees exactly what the daemon routes on. */
void agora__route_attrs_from_meta(const struct agora__ingest_meta *m, const char *calling_ae,
                                  const char *called_ae, const char *origin,
                                  agora__route_attrs *out);

#endif
