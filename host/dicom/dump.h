/* `agora dicom dump`: a dataset as text (dcmdump-like) or JSON. Private to the module. */
#ifndef AGORA_HOST_DICOM_DUMP_H
#define AGORA_HOST_DICOM_DUMP_H

#include <jansson.h>
#include <stdio.h>

#include "dicom.h"

/* Text: one line per element "(gggg,eeee) VR value  # length, VM Keyword", items indented. */
void agora__dicom_dump_text(const agora__dicom_file *f, FILE *out);
/* JSON: {"transfer_syntax":..., "meta":[...], "dataset":[...]} where each element is
 * {"tag":"(gggg,eeee)","keyword":..,"vr":..,"length":n,"value":...}; "items" (array of element
 * arrays) for sequences, "fragments" (lengths) for encapsulated data. Caller owns the result. */
json_t *agora__dicom_dump_json(const agora__dicom_file *f);

#endif
