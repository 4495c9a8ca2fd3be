/* What `agora serve` accepts in association negotiation: Verification, the image storage
 * SOP classes whose pixels the sandboxed ingest decodes (and SEG, SR, KO), in the transfer syntaxes it decodes
 * (the reader's native syntaxes and the codec table: one source of truth, host/codec). */
#include <string.h>

#include "assoc.h"
#include "codec.h"
#include "dicom.h"

#define STORAGE "1.2.840.10008.5.1.4.1.1."

/* Suffixes after 1.2.840.10008.5.1.4.1.1. (PS3.4 Annex B.5): single- and multi-frame images. */
static const char *const storage_classes[] = {
    "1",        /* CR */
    "1.1",      /* DX for presentation */
    "1.1.1",    /* DX for processing */
    "1.2",      /* MG for presentation */
    "1.2.1",    /* MG for processing */
    "1.3",      /* intra-oral X-ray for presentation */
    "1.3.1",    /* intra-oral X-ray for processing */
    "2",        /* CT */
    "2.1",      /* Enhanced CT */
    "2.2",      /* Legacy Converted Enhanced CT */
    "3.1",      /* US multi-frame */
    "4",        /* MR */
    "4.1",      /* Enhanced MR */
    "4.4",      /* Legacy Converted Enhanced MR */
    "6.1",      /* US */
    "6.2",      /* Enhanced US volume */
    "7",        /* Secondary Capture */
    "7.1",      /* multi-frame single bit SC */
    "7.2",      /* multi-frame grayscale byte SC */
    "7.3",      /* multi-frame grayscale word SC */
    "7.4",      /* multi-frame true color SC */
    "12.1",     /* XA */
    "12.1.1",   /* Enhanced XA */
    "12.2",     /* XRF */
    "12.2.1",   /* Enhanced XRF */
    "13.1.3",   /* breast tomosynthesis */
    "13.1.4",   /* breast projection X-ray for presentation */
    "13.1.5",   /* breast projection X-ray for processing */
    "20",       /* NM */
    "77.1.1",   /* VL endoscopic */
    "77.1.2",   /* VL microscopic */
    "77.1.4",   /* VL photographic */
    "77.1.5.1", /* ophthalmic photography 8 bit */
    "77.1.6",   /* VL whole slide microscopy */
    "128",      /* PET */
    "128.1",    /* Legacy Converted Enhanced PET */
    "130",      /* Enhanced PET */
    "481.1",    /* RT Image */
    /* Without pixels for an app to decode, but part of a study a PACS sends: segmentations and
     * structured reports (ours included, when the PACS sends a study back), key objects. The
     * intake groups them like images; whether an app runs on them is the rules' decision. */
    "66.4",  /* Segmentation */
    "88.11", /* Basic Text SR */
    "88.22", /* Enhanced SR */
    "88.33", /* Comprehensive SR */
    "88.34", /* Comprehensive 3D SR */
    "88.59", /* Key Object Selection */
};

int agora__dimse_abstract_kind(const char *uid)
{
    if (strcmp(uid, AGORA__UID_VERIFICATION) == 0)
        return AGORA__ABSTRACT_VERIFICATION;
    size_t n = strlen(STORAGE);
    if (strncmp(uid, STORAGE, n) != 0)
        return AGORA__ABSTRACT_UNSUPPORTED;
    for (size_t i = 0; i < sizeof storage_classes / sizeof storage_classes[0]; i++)
        if (strcmp(uid + n, storage_classes[i]) == 0)
            return AGORA__ABSTRACT_STORAGE;
    return AGORA__ABSTRACT_UNSUPPORTED;
}

int agora__dimse_ts_accepted(int kind, const char *uid)
{
    /* A command set is always implicit little endian; Verification carries no data set, so
     * the two uncompressed little-endian syntaxes every peer proposes are enough. */
    if (kind == AGORA__ABSTRACT_VERIFICATION)
        return strcmp(uid, AGORA__DICOM_TS_IMPLICIT_LE) == 0 ||
               strcmp(uid, AGORA__DICOM_TS_EXPLICIT_LE) == 0;
    if (kind == AGORA__ABSTRACT_STORAGE)
        return agora__dicom_ts_is_native(uid) || agora__codec_supported(uid);
    return 0;
}
