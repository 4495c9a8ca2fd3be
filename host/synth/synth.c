/*
 * Synthetic phantom series (see synth.h). Every value is fake, but shaped like the real thing so
 * that the de-identification tests have names, IDs, dates, addresses, free text, nested
 * sequences with UIDs and identity, private tags and an overlay to remove.
 */
#include "synth.h"

#include "deid.h"
#include "outfile.h"
#include "writer.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VR(a, b)     AGORA__DICOM_VR(a, b)
#define TAG(g, e)    AGORA__DICOM_TAG(g, e)
#define MAX_ELEMENTS 128

typedef struct el {
    uint32_t tag;
    uint16_t vr;
    const uint8_t *data;
    size_t len;
} el;

/* The elements of one instance; values are stored in `store` (or borrowed for pixels). */
typedef struct inst {
    el els[MAX_ELEMENTS];
    size_t n;
    char store[16384];
    size_t used;
    int overflow;
} inst;

static void add(inst *in, uint32_t tag, uint16_t vr, const void *data, size_t len, int copy)
{
    if (in->n >= MAX_ELEMENTS || (copy && in->used + len > sizeof in->store)) {
        in->overflow = 1;
        return;
    }
    const uint8_t *p = data;
    if (copy) {
        memcpy(in->store + in->used, data, len);
        p = (const uint8_t *)in->store + in->used;
        in->used += len;
    }
    in->els[in->n++] = (el){tag, vr, p, len};
}

static void add_s(inst *in, uint32_t tag, uint16_t vr, const char *s)
{
    add(in, tag, vr, s, strlen(s), 1);
}

static void add_u16(inst *in, uint32_t tag, unsigned v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    add(in, tag, VR('U', 'S'), b, 2, 1);
}

static int el_cmp(const void *a, const void *b)
{
    uint32_t x = ((const el *)a)->tag, y = ((const el *)b)->tag;
    return x < y ? -1 : x > y;
}

/* xorshift64*: reproducible noise from --seed. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

/* A UID under 2.25 derived from the seed and a label (different seeds, different studies). */
static int make_uid(const uint8_t key[32], const char *label, char out[65])
{
    return agora__deid_uid(key, label, out, NULL);
}

typedef struct organ {
    double cx, cy, cz, rx, ry, rz; /* mm, patient coordinates */
    double ct, mr;                 /* HU / MR intensity */
} organ;

/* Phantom value at a patient-space point: an elliptic body, lungs, spine, liver, kidneys. */
static double phantom(const organ *organs, size_t n, double x, double y, double z, int ct)
{
    double v = ct ? -1000.0 : 0.0;
    for (size_t i = 0; i < n; i++) {
        const organ *o = &organs[i];
        double dx = (x - o->cx) / o->rx, dy = (y - o->cy) / o->ry, dz = (z - o->cz) / o->rz;
        if (dx * dx + dy * dy + dz * dz <= 1.0)
            v = ct ? o->ct : o->mr; /* later organs sit inside earlier ones */
    }
    return v;
}

/* Encode one item of (tag, VR, text) elements (ascending tags) into b. */
static void item_text(agora__deid_buf *b, const uint32_t *tags, const uint16_t *vrs,
                      const char *const *vals, size_t n)
{
    size_t m = agora__deid_put_item_begin(b, AGORA__DEID_W_DEFINED_LENGTHS);
    for (size_t i = 0; i < n; i++)
        agora__deid_put_element(b, tags[i], vrs[i], vals[i], strlen(vals[i]));
    agora__deid_put_item_end(b, m, AGORA__DEID_W_DEFINED_LENGTHS);
}

int agora__synth_write(const agora__synth_opts *opts, agora__synth_planted *planted,
                       agora__error *err)
{
    agora__synth_opts o = *opts;
    int rc = agora__mkdirs(o.out, 0755, err);
    if (rc != 0)
        return agora__error_prefix(err, "cannot create the -o directory");

    /* Without --seed every run is a new patient and study: two runs must never share Study,
     * Series or SOP Instance UIDs (a directory of two studies would otherwise hold one). With
     * --seed the output is byte-identical run after run. */
    if (!o.have_seed) {
        if (sodium_init() < 0)
            return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
        randombytes_buf(&o.seed, sizeof o.seed);
    }
    /* Deterministic fake identity from the seed; the modality is part of the UID key so a CT
     * and an MR made with one seed are still two studies. */
    uint8_t key[32] = {0};
    for (int i = 0; i < 8; i++)
        key[i] = (uint8_t)(o.seed >> (8 * i));
    key[30] = o.ct ? 'C' : 'M';
    key[31] = 0x5A;
    agora__synth_planted *pl = planted;
    char *name = pl->name, *pid = pl->pid, *accession = pl->accession, *study_id = pl->study_id,
         *birth = pl->birth, *study_date = pl->study_date;
    snprintf(name, sizeof pl->name, "%s", o.patient_name ? o.patient_name : "SYNTHETIC^JANE^Q^^");
    snprintf(pid, sizeof pl->pid, "%s", o.patient_id ? o.patient_id : "SYN-PID-0000000");
    if (!o.patient_id)
        snprintf(pid, sizeof pl->pid, "SYN%07llu", (unsigned long long)(o.seed % 10000000ull));
    snprintf(accession, sizeof pl->accession, "ACC%09llu",
             (unsigned long long)((o.seed * 7919u) % 1000000000ull));
    snprintf(study_id, sizeof pl->study_id, "S%llu", (unsigned long long)(o.seed % 100000ull));
    snprintf(birth, sizeof pl->birth, "19%02u%02u%02u", (unsigned)(40 + o.seed % 50),
             (unsigned)(1 + o.seed % 12), (unsigned)(1 + o.seed % 28));
    snprintf(study_date, sizeof pl->study_date, "2024%02u%02u", (unsigned)(1 + (o.seed / 3) % 12),
             (unsigned)(1 + (o.seed / 5) % 28));
    char *study_uid = pl->study_uid, *series_uid = pl->series_uid, *for_uid = pl->for_uid;
    char label[64];
    /* Series n > 1 of the same study: only the series-level labels change. */
    char series_label[32] = "series", inst_prefix[16] = "";
    if (o.series > 1) {
        snprintf(series_label, sizeof series_label, "series-%u", o.series);
        snprintf(inst_prefix, sizeof inst_prefix, "s%u-", o.series);
    }
    if (make_uid(key, "study", study_uid) != 0 || make_uid(key, series_label, series_uid) != 0 ||
        make_uid(key, "frame-of-reference", for_uid) != 0)
        return agora__error_set(err, AGORA_EINTERNAL, "cannot make UIDs");

    /* Geometry: axial slices, FOV about 360 mm whatever the matrix. */
    double ps = 360.0 / (double)(o.cols > o.rows ? o.cols : o.rows);
    double thick = o.ct ? 1.25 : 3.0;
    double x0 = -ps * (double)(o.cols - 1) / 2.0, y0 = -ps * (double)(o.rows - 1) / 2.0;
    double zlen = thick * (double)(o.slices - 1), z0 = -zlen / 2.0;
    double half = zlen / 2.0 + 40.0; /* organ extents scale with the covered length */
    const organ organs[] = {
        {0, 0, 0, 160, 110, half + 200, 40, 350},             /* body (soft tissue) */
        {0, 0, 0, 150, 100, half + 200, -90, 900},            /* subcutaneous fat layer inside */
        {0, 0, 0, 140, 92, half + 200, 35, 320},              /* muscle/viscera */
        {-70, -10, half * 0.4, 45, 60, half * 0.5, -850, 40}, /* right lung */
        {70, -10, half * 0.4, 45, 60, half * 0.5, -850, 40},  /* left lung */
        {0, 65, 0, 18, 18, half + 200, 700, 150},             /* spine */
        {-55, 10, -half * 0.3, 60, 45, half * 0.35, 60, 600}, /* liver */
        {60, 40, -half * 0.5, 22, 28, half * 0.2, 30, 700},   /* left kidney */
        {-60, 40, -half * 0.5, 22, 28, half * 0.2, 30, 700},  /* right kidney */
        {20, -20, -half * 0.1, 12, 12, 12, 120, 1100},        /* a "lesion" */
    };

    size_t npix = (size_t)o.rows * o.cols;
    uint16_t *pix = malloc(npix * 2);
    size_t ov_bytes = (npix + 7) / 8;
    ov_bytes += ov_bytes & 1u;
    uint8_t *overlay = calloc(1, ov_bytes);
    agora__deid_buf seq;
    agora__deid_buf_init(&seq, 1u << 20);
    if (pix == NULL || overlay == NULL) {
        free(pix);
        free(overlay);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    /* Overlay: a box in the top-left corner, like an annotation a modality would draw. */
    for (unsigned r = 8; r < 24 && r < o.rows; r++)
        for (unsigned c = 8; c < 120 && c < o.cols; c++) {
            size_t bit = (size_t)r * o.cols + c;
            overlay[bit / 8] |= (uint8_t)(1u << (bit % 8));
        }

    uint64_t rng = o.seed * 0x9E3779B97F4A7C15ull + 1;
    char prev_sop[65] = "";
    for (unsigned s = 0; s < o.slices && rc == 0; s++) {
        double z = z0 + thick * s;
        for (unsigned r = 0; r < o.rows; r++) {
            double y = y0 + ps * r;
            for (unsigned c = 0; c < o.cols; c++) {
                double x = x0 + ps * c;
                double v = phantom(organs, sizeof organs / sizeof organs[0], x, y, z, o.ct);
                v += (rng_unit(&rng) - 0.5) * (o.ct ? 20.0 : 30.0);
                if (o.ct) {
                    long hu = lround(v);
                    hu = hu < -1024 ? -1024 : hu > 3071 ? 3071 : hu;
                    pix[(size_t)r * o.cols + c] = (uint16_t)(int16_t)hu;
                } else {
                    long iv = lround(v < 0 ? 0 : v);
                    pix[(size_t)r * o.cols + c] = (uint16_t)(iv > 4095 ? 4095 : iv);
                }
            }
        }
        char sop[65];
        snprintf(label, sizeof label, "%sinstance-%u", inst_prefix, s);
        make_uid(key, label, sop);

        inst *in = calloc(1, sizeof *in);
        if (in == NULL) {
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
            break;
        }
        char num[64], pos[96], time[16];
        const char *sop_class = o.ct ? "1.2.840.10008.5.1.4.1.1.2" : "1.2.840.10008.5.1.4.1.1.4";
        add_s(in, TAG(0x0008, 0x0005), VR('C', 'S'), "ISO_IR 192");
        add_s(in, TAG(0x0008, 0x0008), VR('C', 'S'), "ORIGINAL\\PRIMARY\\AXIAL");
        add_s(in, TAG(0x0008, 0x0012), VR('D', 'A'), study_date);
        add_s(in, TAG(0x0008, 0x0013), VR('T', 'M'), "101500");
        add_s(in, TAG(0x0008, 0x0016), VR('U', 'I'), sop_class);
        add_s(in, TAG(0x0008, 0x0018), VR('U', 'I'), sop);
        add_s(in, TAG(0x0008, 0x0020), VR('D', 'A'), study_date);
        add_s(in, TAG(0x0008, 0x0021), VR('D', 'A'), study_date);
        add_s(in, TAG(0x0008, 0x0022), VR('D', 'A'), study_date);
        add_s(in, TAG(0x0008, 0x0023), VR('D', 'A'), study_date);
        add_s(in, TAG(0x0008, 0x0030), VR('T', 'M'), "101112");
        add_s(in, TAG(0x0008, 0x0031), VR('T', 'M'), "101213");
        snprintf(time, sizeof time, "1013%02u.%03u", s / 60 % 60, s % 1000);
        add_s(in, TAG(0x0008, 0x0032), VR('T', 'M'), time);
        add_s(in, TAG(0x0008, 0x0033), VR('T', 'M'), time);
        add_s(in, TAG(0x0008, 0x0050), VR('S', 'H'), accession);
        add_s(in, TAG(0x0008, 0x0060), VR('C', 'S'), o.ct ? "CT" : "MR");
        add_s(in, TAG(0x0008, 0x0070), VR('L', 'O'), "Synthetic Imaging Systems");
        add_s(in, TAG(0x0008, 0x0080), VR('L', 'O'), "Fictional General Hospital Riverside");
        add_s(in, TAG(0x0008, 0x0081), VR('S', 'T'), "42 Imaginary Lane, Nowhere Town 99999");
        add_s(in, TAG(0x0008, 0x0090), VR('P', 'N'), "REFERRER^ROBERTA^DR");
        add_s(in, TAG(0x0008, 0x1010), VR('S', 'H'), "SYNTHSTATION7");
        add_s(in, TAG(0x0008, 0x1030), VR('L', 'O'), "CHEST ABDOMEN FOR JANE SYNTHETIC");
        add_s(in, TAG(0x0008, 0x103E), VR('L', 'O'), o.ct ? "AXIAL 1.25 SOFT" : "AX T1");
        add_s(in, TAG(0x0008, 0x1040), VR('L', 'O'), "Department of Fake Radiology");
        add_s(in, TAG(0x0008, 0x1050), VR('P', 'N'), "PERFORMER^PAT^DR");
        add_s(in, TAG(0x0008, 0x1070), VR('P', 'N'), "OPERATOR^OTTO");
        add_s(in, TAG(0x0008, 0x1090), VR('L', 'O'), "Phantom 3000");
        /* Referenced Image Sequence: the previous slice (nested UID to remap consistently). */
        if (prev_sop[0] != '\0') {
            seq.len = 0;
            static const uint32_t rt[] = {TAG(0x0008, 0x1150), TAG(0x0008, 0x1155)};
            static const uint16_t rv[] = {VR('U', 'I'), VR('U', 'I')};
            const char *vals[] = {sop_class, prev_sop};
            item_text(&seq, rt, rv, vals, 2);
            add(in, TAG(0x0008, 0x1140), VR('S', 'Q'), seq.data, seq.len, 1);
        }
        add_s(in, TAG(0x0010, 0x0010), VR('P', 'N'), name);
        add_s(in, TAG(0x0010, 0x0020), VR('L', 'O'), pid);
        add_s(in, TAG(0x0010, 0x0030), VR('D', 'A'), birth);
        add_s(in, TAG(0x0010, 0x0040), VR('C', 'S'), "F");
        {
            /* Other Patient IDs Sequence: identity nested one level down. */
            size_t before = seq.len;
            static const uint32_t ot[] = {TAG(0x0010, 0x0020), TAG(0x0010, 0x0021)};
            static const uint16_t ov[] = {VR('L', 'O'), VR('L', 'O')};
            const char *vals[] = {"OTHER-MRN-31415926", "Fictional Issuer"};
            item_text(&seq, ot, ov, vals, 2);
            add(in, TAG(0x0010, 0x1002), VR('S', 'Q'), seq.data + before, seq.len - before, 1);
        }
        add_s(in, TAG(0x0010, 0x1010), VR('A', 'S'), "057Y");
        add_s(in, TAG(0x0010, 0x1020), VR('D', 'S'), "1.68");
        add_s(in, TAG(0x0010, 0x1030), VR('D', 'S'), "61.5");
        add_s(in, TAG(0x0010, 0x1040), VR('L', 'O'), "7 Nonexistent Road, Faketown");
        add_s(in, TAG(0x0010, 0x2154), VR('S', 'H'), "+00-555-0100");
        add_s(in, TAG(0x0010, 0x4000), VR('L', 'T'), "Patient Jane Synthetic prefers mornings");
        add_s(in, TAG(0x0018, 0x0015), VR('C', 'S'), o.ct ? "CHEST" : "ABDOMEN");
        snprintf(num, sizeof num, "%.2f", thick);
        add_s(in, TAG(0x0018, 0x0050), VR('D', 'S'), num);
        if (o.ct) {
            add_s(in, TAG(0x0018, 0x0060), VR('D', 'S'), "120");
            add_s(in, TAG(0x0018, 0x0088), VR('D', 'S'), num);
            add_s(in, TAG(0x0018, 0x1000), VR('L', 'O'), "SN-FAKE-0042");
            add_s(in, TAG(0x0018, 0x1150), VR('I', 'S'), "500");
            add_s(in, TAG(0x0018, 0x1151), VR('I', 'S'), "250");
            add_s(in, TAG(0x0018, 0x1210), VR('S', 'H'), "STANDARD");
        } else {
            add_s(in, TAG(0x0018, 0x0080), VR('D', 'S'), "500");
            add_s(in, TAG(0x0018, 0x0081), VR('D', 'S'), "12");
            add_s(in, TAG(0x0018, 0x0087), VR('D', 'S'), "1.5");
            add_s(in, TAG(0x0018, 0x0088), VR('D', 'S'), num);
            add_s(in, TAG(0x0018, 0x1000), VR('L', 'O'), "SN-FAKE-0042");
            add_s(in, TAG(0x0018, 0x1314), VR('D', 'S'), "90");
        }
        add_s(in, TAG(0x0018, 0x5100), VR('C', 'S'), "HFS");
        add_s(in, TAG(0x0020, 0x000D), VR('U', 'I'), study_uid);
        add_s(in, TAG(0x0020, 0x000E), VR('U', 'I'), series_uid);
        add_s(in, TAG(0x0020, 0x0010), VR('S', 'H'), study_id);
        snprintf(num, sizeof num, "%u", o.series > 1 ? o.series + 2 : 3);
        add_s(in, TAG(0x0020, 0x0011), VR('I', 'S'), num);
        snprintf(num, sizeof num, "%u", s + 1);
        add_s(in, TAG(0x0020, 0x0013), VR('I', 'S'), num);
        snprintf(pos, sizeof pos, "%.4f\\%.4f\\%.4f", x0, y0, z);
        add_s(in, TAG(0x0020, 0x0032), VR('D', 'S'), pos);
        add_s(in, TAG(0x0020, 0x0037), VR('D', 'S'), "1\\0\\0\\0\\1\\0");
        add_s(in, TAG(0x0020, 0x0052), VR('U', 'I'), for_uid);
        snprintf(pos, sizeof pos, "%.4f", z);
        add_s(in, TAG(0x0020, 0x1041), VR('D', 'S'), pos);
        add_s(in, TAG(0x0020, 0x4000), VR('L', 'T'), "Scanned for Jane Synthetic by Otto");
        add_u16(in, TAG(0x0028, 0x0002), 1);
        add_s(in, TAG(0x0028, 0x0004), VR('C', 'S'), "MONOCHROME2");
        add_u16(in, TAG(0x0028, 0x0010), o.rows);
        add_u16(in, TAG(0x0028, 0x0011), o.cols);
        snprintf(num, sizeof num, "%.6f\\%.6f", ps, ps);
        add_s(in, TAG(0x0028, 0x0030), VR('D', 'S'), num);
        add_u16(in, TAG(0x0028, 0x0100), 16);
        add_u16(in, TAG(0x0028, 0x0101), o.ct ? 16 : 12);
        add_u16(in, TAG(0x0028, 0x0102), o.ct ? 15 : 11);
        add_u16(in, TAG(0x0028, 0x0103), o.ct ? 1 : 0);
        if (o.burned_in >= 0)
            add_s(in, TAG(0x0028, 0x0301), VR('C', 'S'), o.burned_in ? "YES" : "NO");
        add_s(in, TAG(0x0028, 0x1050), VR('D', 'S'), o.ct ? "40" : "600");
        add_s(in, TAG(0x0028, 0x1051), VR('D', 'S'), o.ct ? "400" : "1200");
        if (o.ct) {
            add_s(in, TAG(0x0028, 0x1052), VR('D', 'S'), "0");
            add_s(in, TAG(0x0028, 0x1053), VR('D', 'S'), "1");
            add_s(in, TAG(0x0028, 0x1054), VR('L', 'O'), "HU");
        }
        {
            /* Request Attributes Sequence: accession and a requesting physician, nested. */
            size_t before = seq.len;
            static const uint32_t qt[] = {TAG(0x0008, 0x0050), TAG(0x0032, 0x1032),
                                          TAG(0x0040, 0x1001)};
            static const uint16_t qv[] = {VR('S', 'H'), VR('P', 'N'), VR('S', 'H')};
            const char *vals[] = {accession, "REQUESTER^RITA", "RP-SYN-777"};
            item_text(&seq, qt, qv, vals, 3);
            add(in, TAG(0x0040, 0x0275), VR('S', 'Q'), seq.data + before, seq.len - before, 1);
        }
        /* Private block: a vendor creator and elements that echo identity. */
        add_s(in, TAG(0x0009, 0x0010), VR('L', 'O'), "AGORA SYNTH PRIVATE");
        add_s(in, TAG(0x0009, 0x1001), VR('L', 'O'), name);
        add_s(in, TAG(0x0009, 0x1002), VR('L', 'O'), pid);
        add_s(in, TAG(0x0009, 0x1003), VR('D', 'A'), birth);
        /* Overlay plane 6000 with a label carrying the name (as modalities sometimes do). */
        add_u16(in, TAG(0x6000, 0x0010), o.rows);
        add_u16(in, TAG(0x6000, 0x0011), o.cols);
        add_s(in, TAG(0x6000, 0x0022), VR('L', 'O'), "Annotation for JANE SYNTHETIC");
        add_s(in, TAG(0x6000, 0x0040), VR('C', 'S'), "G");
        {
            uint8_t origin[4] = {1, 0, 1, 0};
            add(in, TAG(0x6000, 0x0050), VR('S', 'S'), origin, 4, 1);
        }
        add_u16(in, TAG(0x6000, 0x0100), 1);
        add_u16(in, TAG(0x6000, 0x0102), 0);
        add(in, TAG(0x6000, 0x3000), VR('O', 'W'), overlay, ov_bytes, 0);
        add(in, AGORA__DICOM_T_PIXEL_DATA, VR('O', 'W'), pix, npix * 2, 0);
        seq.len = 0;

        if (in->overflow) {
            free(in);
            rc = agora__error_set(err, AGORA_EINTERNAL,
                                  "internal limit reached building an "
                                  "instance");
            break;
        }
        qsort(in->els, in->n, sizeof in->els[0], el_cmp);
        agora__deid_buf b;
        agora__deid_buf_init(&b, npix * 2 + ov_bytes + (1u << 20));
        b.refs_allowed = 1; /* pixels and overlay stay allocated until the file is written */
        agora__deid_put_meta(&b, sop_class, sop, AGORA__DICOM_TS_EXPLICIT_LE);
        for (size_t i = 0; i < in->n; i++)
            agora__deid_put_element(&b, in->els[i].tag, in->els[i].vr, in->els[i].data,
                                    in->els[i].len);
        char path[4096];
        snprintf(path, sizeof path, "%s/IM%05u.dcm", o.out, s + 1);
        if (b.rc != 0)
            rc = agora__error_set(err, AGORA_EINTERNAL, "encoding failed (%d)", b.rc);
        else
            rc = agora__deid_write_buf(path, &b, err);
        agora__deid_buf_free(&b);
        free(in);
        memcpy(prev_sop, sop, sizeof prev_sop);
    }
    free(pix);
    free(overlay);
    agora__deid_buf_free(&seq);
    if (rc == 0)
        rc = agora__deid_sync_dir(o.out, err);
    return rc;
}
