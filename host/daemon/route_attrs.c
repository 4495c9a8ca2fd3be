/* Routing attributes from the sandboxed reader's checked metadata (route_attrs.h). */
#include "route_attrs.h"

#include <math.h>
#include <string.h>

#include "common.h"
#include "ingest.h"

void agora__route_attrs_from_meta(const agora__ingest_meta *m, const char *calling_ae,
                                  const char *called_ae, const char *origin,
                                  agora__route_attrs *out)
{
    agora__strlcpy(out->modality, m->modality, sizeof out->modality);
    agora__strlcpy(out->body_part, m->body_part, sizeof out->body_part);
    agora__strlcpy(out->sop_class, m->sop_class_uid, sizeof out->sop_class);
    agora__strlcpy(out->calling_ae, calling_ae ? calling_ae : "", sizeof out->calling_ae);
    agora__strlcpy(out->called_ae, called_ae ? called_ae : "", sizeof out->called_ae);
    out->slice_thickness = m->has_slice_thickness ? m->slice_thickness : (double)NAN;
    out->n_frames = m->frames ? m->frames : 1;
    out->rows = m->rows;
    out->columns = m->columns;
    out->origin = origin && strcmp(origin, "stow") == 0 ? "stow" : "dimse";
}
