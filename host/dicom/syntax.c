/* VR spelling and transfer syntax facts (PS3.5 section 10, PS3.6 Annex A). */
#include <string.h>

#include "dicom.h"

char *agora__dicom_vr_str(uint16_t vr, char out[3])
{
    out[0] = (char)(vr >> 8);
    out[1] = (char)(vr & 0xFF);
    out[2] = 0;
    if (out[0] < 'A' || out[0] > 'Z' || out[1] < 'A' || out[1] > 'Z') {
        out[0] = '?';
        out[1] = '?';
    }
    return out;
}

static const struct {
    const char *uid;
    const char *name;
} ts_names[] = {
    {"1.2.840.10008.1.2", "Implicit VR Little Endian"},
    {"1.2.840.10008.1.2.1", "Explicit VR Little Endian"},
    {"1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian"},
    {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian"},
    {"1.2.840.10008.1.2.2", "Explicit VR Big Endian"},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)"},
    {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)"},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)"},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless, First-Order Prediction (Process 14 SV1)"},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless"},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless"},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless"},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000"},
    {"1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Lossless"},
    {"1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component"},
    {"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level"},
    {"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile"},
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Lossless"},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000"},
    {"1.2.840.10008.1.2.5", "RLE Lossless"},
};

const char *agora__dicom_ts_name(const char *uid)
{
    if (!uid)
        return NULL;
    for (size_t i = 0; i < sizeof ts_names / sizeof ts_names[0]; i++)
        if (strcmp(uid, ts_names[i].uid) == 0)
            return ts_names[i].name;
    return NULL;
}

agora__dicom_encoding agora__dicom_ts_encoding(const char *uid)
{
    if (!uid || !*uid)
        return 0;
    if (strcmp(uid, AGORA__DICOM_TS_IMPLICIT_LE) == 0)
        return AGORA__DICOM_IMPLICIT_LE;
    if (strcmp(uid, AGORA__DICOM_TS_EXPLICIT_BE) == 0)
        return AGORA__DICOM_EXPLICIT_BE;
    if (strcmp(uid, AGORA__DICOM_TS_DEFLATED_LE) == 0)
        return AGORA__DICOM_DEFLATED_LE;
    return AGORA__DICOM_EXPLICIT_LE;
}

int agora__dicom_ts_is_native(const char *uid)
{
    if (!uid)
        return 0;
    return strcmp(uid, AGORA__DICOM_TS_IMPLICIT_LE) == 0 ||
           strcmp(uid, AGORA__DICOM_TS_EXPLICIT_LE) == 0 ||
           strcmp(uid, AGORA__DICOM_TS_EXPLICIT_BE) == 0 ||
           strcmp(uid, AGORA__DICOM_TS_DEFLATED_LE) == 0;
}
