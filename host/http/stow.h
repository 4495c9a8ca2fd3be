/*
 * DICOMweb STOW-RS receive (PS3.18 §10.5 Store Transaction) into the receive spool:
 *     POST /dicomweb/studies              and
 *     POST /dicomweb/studies/{StudyUID}
 * with Content-Type: multipart/related; type="application/dicom"; boundary=...
 *
 * Each part (a Part 10 file) is streamed into the spool (host/dimse/spool.h) as it arrives:
 * its file meta group (group 0002 only, host/dimse/filemeta.h) gives the SOP class, the SOP instance and
 * the transfer syntax; the data set bytes after it are written unparsed (the spool writes its own
 * meta group in front). The host never parses a data set.
 *
 * Spool first, answer second: the response is sent after every part is committed (fsynced and
 * recorded) or refused. Body: application/dicom+json, a Store Instances Response Module
 * (PS3.18 Annex I): ReferencedSOPSequence (0008,1199) with one item (0008,1150/1155, 1190 empty)
 * per stored instance, a duplicate of an instance already in the spool included (it is stored,
 * once), and FailedSOPSequence (0008,1198) with FailureReason (0008,1197) per refused part
 * (its UIDs when its meta group could be read):
 *     0xA700 out of resources (spool over its watermark, instance larger than the spool allows,
 *            a spool write error), 0x0122 SOP class not supported (the DIMSE listener's list,
 *            host/dimse/syntaxes.c), 0xC122 transfer syntax not supported (likewise),
 *     0xC000 cannot understand (not application/dicom, no or a malformed meta group, a part cut
 *            short by the end of the body).
 * HTTP status: 200 every part stored; 202 some stored, some refused; 409 none stored, the
 * multipart well formed; 400 the multipart malformed or truncated and nothing stored (a part
 * stored before the damage is kept and answers 202); 413 a limit (Content-Length, part count,
 * part header size) was exceeded (the body still lists what was stored before); 415 the request
 * is not multipart/related of application/dicom; 406 an Accept without application/dicom+json;
 * 503 with Retry-After when the spool is at or above its watermark (checked before the body is
 * read). The Study Instance UID in the path is checked as a UID but cannot be compared with the
 * instances here (that would mean parsing the data set): the sandboxed intake groups by the data
 * set's own Study Instance UID.
 *
 * Origin marker: a STOW-RS receipt is recorded with calling_ae AGORA__STOW_CALLING_AE ("STOW")
 * and called_ae AGORA__STOW_CALLED_AE (""). A DIMSE receipt always has a non-empty called AE
 * (our AE title), so (calling "STOW", called "") identifies STOW-RS unambiguously even if a DIMSE
 * peer calls itself STOW; the intake maps it to origin "stow".
 *
 * Threads: the spool handle opened here is used on the HTTP thread only (one SQLite connection
 * per thread); open it (agora__stow_register) before agora__http_start and close it after
 * agora__http_stop. Logs (component "stow"): counts, sizes, statuses, reasons; never a UID.
 */
#ifndef AGORA_HTTP_STOW_H
#define AGORA_HTTP_STOW_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

struct agora__error;

#define AGORA__STOW_CALLING_AE "STOW"
#define AGORA__STOW_CALLED_AE  ""

typedef struct agora__stow agora__stow;

typedef struct agora__stow_config {
    const char *home;             /* clinic home (resolved); its spool/ is used */
    uint64_t max_instance_bytes;  /* one data set (the spool's bound) */
    uint64_t spool_watermark;     /* bytes; 0: none. Read against spool.db's total */
    unsigned retry_after_s;       /* Retry-After of a 503 */
    unsigned max_parts;           /* per request */
    size_t max_part_header_bytes; /* all header lines of one part */
    unsigned max_part_headers;    /* header lines per part */
    uint64_t max_request_bytes;   /* the route's body limit (and the server's, whichever is less) */
} agora__stow_config;

#define AGORA__STOW_DEFAULT_RETRY_AFTER_S 30u
#define AGORA__STOW_DEFAULT_MAX_PARTS     10000u
#define AGORA__STOW_DEFAULT_PART_HEADER   8192u
#define AGORA__STOW_DEFAULT_PART_HEADERS  32u
#define AGORA__STOW_DEFAULT_MAX_INSTANCE  (4ull * 1024 * 1024 * 1024)
#define AGORA__STOW_DEFAULT_MAX_REQUEST   (4ull * 1024 * 1024 * 1024)

/* Open the spool (own handle) and register POST /dicomweb/studies[/{StudyUID}] and a "stow"
 * member of the health document. cfg is copied; home must stay valid until agora__stow_close. */
int agora__stow_register(agora__http_server *s, const agora__stow_config *cfg, agora__stow **out,
                         struct agora__error *err);
/* Counters since register (for the health document and tests). */
typedef struct agora__stow_stats {
    uint64_t requests, stored, duplicates, failed, refused_busy;
} agora__stow_stats;
void agora__stow_get_stats(const agora__stow *st, agora__stow_stats *out);
/* Close the spool handle; after agora__http_stop. */
void agora__stow_close(agora__stow *st);

#endif
