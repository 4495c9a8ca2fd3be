/*
 * The one JSON emitter of the `agora` tool: every `--json` output and every exported result
 * document is written through agora__json_emit (or agora__json_text for a file written
 * atomically), so they share one formatting policy:
 *   - keys sorted (the same document prints the same bytes every time);
 *   - reals with 15 significant digits (a measurement round-trips);
 *   - ASCII only: every non-ASCII character is written as \uXXXX. Strings come from plugins and
 *     DICOM files (untrusted); a C1 control such as U+009B (CSI) written as UTF-8 would reach
 *     the terminal of whoever reads the output as a control sequence;
 *   - AGORA__JSON_DOC: indented by 2, for one document; AGORA__JSON_LINE: one line per record
 *     (JSON Lines: ledger rows, one line per file, one-line summaries of a command);
 *   - a newline after the text.
 * Signed or stored bytes (the ledger's period export, catalog and home files) are not outputs:
 * their libraries own their canonical forms.
 */
#ifndef AGORA_CLI_JSON_EMIT_H
#define AGORA_CLI_JSON_EMIT_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define AGORA__JSON_DOC  0u /* indented document */
#define AGORA__JSON_LINE 1u /* one compact line */

/* Write doc (borrowed) to f with the policy above and flush f. 0, or 1 when doc is NULL (a
 * document that could not be built: out of memory) or the write failed. The 0/1 is an exit
 * status, so a command can `return agora__json_emit(stdout, doc, 0);`. */
int agora__json_emit(FILE *f, const json_t *doc, unsigned flags);

/* The same text, newline included, in a malloc'ed string the caller frees; *len its length.
 * NULL when doc is NULL or out of memory. */
char *agora__json_text(const json_t *doc, unsigned flags, size_t *len);

/* Emit doc and release it (json_decref): for a document built only to be printed. */
int agora__json_emit_new(FILE *f, json_t *doc, unsigned flags);

#endif
