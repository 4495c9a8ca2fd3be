/*
 * Modules every exported object shares: Patient and General Study copied from the REAL source
 * (so the PACS files the object into the patient's study), General Series and Equipment naming
 * the plugin, and IHE AIR's Contributing Equipment ("Processing Algorithm", Device UID derived
 * from plugin@version).
 */
#include <stdio.h>
#include <string.h>

#include "export.h"

#define T AGORA__DCMW_TAG
#define V AGORA__DCMW_VR

/* Copied when the source has them; the Type 2 ones are written empty when it does not. */
static const struct {
    uint32_t tag;
    int type2;
} copied[] = {
    {T(0x0008, 0x0005), 0}, /* SpecificCharacterSet: the copied text is in the source's */
    {T(0x0008, 0x0020), 1}, /* StudyDate */
    {T(0x0008, 0x0030), 1}, /* StudyTime */
    {T(0x0008, 0x0050), 1}, /* AccessionNumber */
    {T(0x0008, 0x0090), 1}, /* ReferringPhysicianName */
    {T(0x0008, 0x1030), 0}, /* StudyDescription */
    {T(0x0010, 0x0010), 1}, /* PatientName */
    {T(0x0010, 0x0020), 1}, /* PatientID */
    {T(0x0010, 0x0021), 0}, /* IssuerOfPatientID */
    {T(0x0010, 0x0030), 1}, /* PatientBirthDate */
    {T(0x0010, 0x0040), 1}, /* PatientSex */
    {T(0x0010, 0x1010), 0}, /* PatientAge */
    {T(0x0010, 0x1020), 0}, /* PatientSize */
    {T(0x0010, 0x1030), 0}, /* PatientWeight */
    {T(0x0020, 0x0010), 1}, /* StudyID */
    {T(0x0020, 0x0052), 0}, /* FrameOfReferenceUID */
};

static uint16_t type2_vr(uint32_t tag)
{
    switch (tag) {
    case T(0x0008, 0x0020):
    case T(0x0010, 0x0030):
        return V('D', 'A');
    case T(0x0008, 0x0030):
        return V('T', 'M');
    case T(0x0008, 0x0090):
    case T(0x0010, 0x0010):
        return V('P', 'N');
    case T(0x0010, 0x0020):
        return V('L', 'O');
    case T(0x0010, 0x0040):
        return V('C', 'S');
    default:
        return V('S', 'H');
    }
}

int agora__export_device_uid(const agora__export_ctx *ctx, const json_t *result, char out[65],
                             agora__error *err)
{
    const json_t *p = json_object_get(result, "plugin");
    char label[300];
    snprintf(label, sizeof label, "device:%s@%s", json_string_value(json_object_get(p, "id")),
             json_string_value(json_object_get(p, "version")));
    /* A device is the same across invocations: its UID is keyed by a fixed id, not one run's. */
    return agora__dcmw_uid(ctx->uid_root, "agora.device", label, out, err);
}

int agora__export_common(agora__dcmw_ds *root, const agora__export_ctx *ctx, const json_t *result,
                         const char *modality, const char *series_uid, int64_t series_number,
                         const char *series_description, agora__error *err)
{
    const agora__export_source *src = ctx->src;
    const char *study = json_string_value(json_object_get(result, "study_uid"));
    if (study == NULL || strcmp(study, src->meta.study_uid) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "the source files belong to another study than the result");
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        /* The SR IODs have no Frame of Reference module (SCOORD3D items carry their own). */
        if (copied[i].tag == T(0x0020, 0x0052) && strcmp(modality, "SR") == 0)
            continue;
        const agora__ingest_element *e = NULL;
        for (uint32_t k = 0; k < src->meta.n_elements; k++)
            if (src->meta.elements[k].tag == copied[i].tag)
                e = &src->meta.elements[k];
        if (e)
            agora__dcmw_put(root, e->tag, e->vr, e->value, e->length);
        else if (copied[i].type2)
            agora__dcmw_str(root, copied[i].tag, type2_vr(copied[i].tag), "");
    }
    /* The UID the result names, not whatever the file says (they were checked equal above). */
    agora__dcmw_str(root, T(0x0020, 0x000D), V('U', 'I'), study);

    char da[9], tm[17];
    int rc =
        agora__dcmw_datetime(json_string_value(json_object_get(result, "created")), da, tm, err);
    if (rc != 0)
        return rc;
    const json_t *p = json_object_get(result, "plugin");
    const char *pid = json_string_value(json_object_get(p, "id"));
    const char *pver = json_string_value(json_object_get(p, "version"));
    char device[65];
    if ((rc = agora__export_device_uid(ctx, result, device, err)) != 0)
        return rc;
    const char *vendor = ctx->vendor && ctx->vendor[0] ? ctx->vendor : "unknown vendor";

    agora__dcmw_str(root, T(0x0008, 0x0060), V('C', 'S'), modality);
    agora__dcmw_str(root, T(0x0020, 0x000E), V('U', 'I'), series_uid);
    agora__dcmw_is(root, T(0x0020, 0x0011), series_number);
    agora__dcmw_str(root, T(0x0008, 0x103E), V('L', 'O'), series_description);
    agora__dcmw_str(root, T(0x0008, 0x0021), V('D', 'A'), da);
    agora__dcmw_str(root, T(0x0008, 0x0031), V('T', 'M'), tm);
    agora__dcmw_str(root, T(0x0008, 0x0023), V('D', 'A'), da);
    agora__dcmw_str(root, T(0x0008, 0x0033), V('T', 'M'), tm);
    agora__dcmw_str(root, T(0x0008, 0x0012), V('D', 'A'), da); /* InstanceCreationDate */
    agora__dcmw_str(root, T(0x0008, 0x0013), V('T', 'M'), tm);
    agora__dcmw_is(root, T(0x0020, 0x0013), 1);
    /* No ReferencedPerformedProcedureStepSequence here: SEG must not carry it empty, SR's
     * document module wants it (Type 2): sr.c adds it. */

    /* (Enhanced) General Equipment: the plugin is the device. */
    agora__dcmw_str(root, T(0x0008, 0x0070), V('L', 'O'), vendor);
    agora__dcmw_str(root, T(0x0008, 0x1090), V('L', 'O'), pid);
    agora__dcmw_str(root, T(0x0018, 0x1020), V('L', 'O'), pver);
    agora__dcmw_str(root, T(0x0018, 0x1000), V('L', 'O'), device);

    /* IHE AIR Rev 1.1 §6.5.3.1: each algorithm in Contributing Equipment. */
    agora__dcmw_ds *ce = agora__dcmw_item(root, T(0x0018, 0xA001));
    agora__dcmw_code(ce, T(0x0040, 0xA170), "99IHE", "Newcode1", "Processing Algorithm");
    agora__dcmw_str(ce, T(0x0008, 0x0070), V('L', 'O'), vendor);
    agora__dcmw_str(ce, T(0x0008, 0x1090), V('L', 'O'), pid);
    agora__dcmw_str(ce, T(0x0018, 0x1020), V('L', 'O'), pver);
    agora__dcmw_str(ce, T(0x0018, 0x1002), V('U', 'I'), device);
    return 0;
}
