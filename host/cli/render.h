/*
 * Printing what a plugin returned, for `agora dev run`'s text output. Plugin text is untrusted:
 * controls are escaped so it cannot drive the terminal.
 */
#ifndef AGORA_CLI_RENDER_H
#define AGORA_CLI_RENDER_H

#include <stdio.h>

#include <jansson.h>

#include "study.h"

/* Human-readable rendering of a worker result document: one line per item, indented. */
void agora__render_result(FILE *to, const json_t *doc);

/* Print plugin text with C0/C1 controls and DEL escaped as \u{XX} (and '\\' as "\\\\"). */
void agora__render_text(FILE *to, const char *s);

/* Skipped files and series warnings of a scan (paths and reasons, no attribute values). */
void agora__render_scan_notes(FILE *to, const agora__dicom_scan *scan);

#endif
