/*
 * FHIR R4 export: one Bundle (type "collection") per study holding, for every successful
 * stored result, a DiagnosticReport and one Observation per finding and per measurement.
 *   - fullUrl/id: the invocation id as a UUID for the report; a UUID derived from
 *     sha256("agora.fhir/1", invocation id, index) for each Observation. Stable across exports.
 *   - DiagnosticReport.subject: the host keeps no Patient resource, so subject is a logical
 *     placeholder (identifier system urn:agora:subject, value "unresolved") that a consumer
 *     replaces with its Patient of the referenced ImagingStudy.
 *   - imagingStudy: by identifier, system urn:dicom:uid, value urn:oid:<Study Instance UID>.
 *   - finding: code DCM 121071 "Finding", valueCodeableConcept = the finding's code, the
 *     confidence as a component (UCUM "1").
 *   - measurement: code = its code (or text = its name), valueQuantity with system
 *     http://unitsofmeasure.org and the UCUM unit as code.
 *   - region (point, box, polygon, mask): an Observation coded DCM 111030 "Image Region" whose
 *     valueString says kind, frame and label, and whose derivedFrom names the DICOM objects it
 *     lies on: the ImagingStudy, plus one Media reference per source instance by identifier
 *     (system urn:dicom:uid, value urn:oid:<SOP Instance UID>; R4 has no resource for one DICOM
 *     instance, Media is the closest allowed target of derivedFrom). The geometry itself stays
 *     in DICOM (SR SCOORD, SEG); FHIR R4 has no type for it. Findings and measurements on a
 *     region add the region's Observation to their derivedFrom. bodySite is not set: an
 *     agora.result/1 carries no coded anatomic site.
 *   - triage: every report carries meta.tag from v3-ActPriority, S (stat) when the plugin
 *     marked it urgent and R (routine) otherwise, so a worklist filters/sorts on _tag; an urgent
 *     report also gets conclusionCode v3-ObservationInterpretation AA "Critical abnormal" with
 *     the reason as its text.
 */
#include <stdlib.h>
#include <string.h>

#include "results_private.h"

static const char ucum[] = "http://unitsofmeasure.org";

static const char *scheme_system(const char *scheme, char *buf, size_t size)
{
    static const struct {
        const char *scheme, *system;
    } map[] = {{"SCT", "http://snomed.info/sct"},
               {"SRT", "http://snomed.info/sct"},
               {"LN", "http://loinc.org"},
               {"DCM", "http://dicom.nema.org/resources/ontology/DCM"},
               {"RADLEX", "http://radlex.org"},
               {"RID", "http://radlex.org"},
               {"UCUM", ucum}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].scheme, scheme) == 0)
            return map[i].system;
    snprintf(buf, size, "urn:agora:scheme:%s", scheme);
    return buf;
}

static void uuid_text(const uint8_t b[16], char out[37])
{
    char hex[33];
    agora__hex(b, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static void derived_uuid(const char *invocation_id, size_t index, char out[37])
{
    char input[96];
    int n = snprintf(input, sizeof input, "agora.fhir/1:%s:%zu", invocation_id, index);
    uint8_t h[32];
    agora__sha256(input, (size_t)n, h);
    h[6] = (uint8_t)(0x80 | (h[6] & 0x0f)); /* version 8: vendor-specific, hash-derived */
    h[8] = (uint8_t)(0x80 | (h[8] & 0x3f));
    uuid_text(h, out);
}

static json_t *codeable(const json_t *code)
{
    char buf[64];
    const char *meaning = json_string_value(json_object_get(code, "meaning"));
    return json_pack(
        "{s:[{s:s,s:s,s:s}],s:s}", "coding", "system",
        scheme_system(json_string_value(json_object_get(code, "scheme")), buf, sizeof buf), "code",
        json_string_value(json_object_get(code, "code")), "display", meaning, "text", meaning);
}

static json_t *subject(void)
{
    return json_pack("{s:{s:s,s:s},s:s}", "identifier", "system", "urn:agora:subject", "value",
                     "unresolved", "display",
                     "patient of the referenced imaging study (not resolved by the host)");
}

static json_t *study_ref(const char *study_uid)
{
    char oid[80];
    snprintf(oid, sizeof oid, "urn:oid:%s", study_uid);
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "ImagingStudy", "identifier", "system",
                     "urn:dicom:uid", "value", oid);
}

/* The region's Observation id: its own namespace so finding/measurement ids stay as before. */
static void region_uuid(const char *invocation_id, json_int_t region, char out[37])
{
    char input[96];
    int n = snprintf(input, sizeof input, "agora.fhir/1:%s:region:%lld", invocation_id,
                     (long long)region);
    uint8_t h[32];
    agora__sha256(input, (size_t)n, h);
    h[6] = (uint8_t)(0x80 | (h[6] & 0x0f));
    h[8] = (uint8_t)(0x80 | (h[8] & 0x3f));
    uuid_text(h, out);
}

/* frames[] entry by frame index (validated: 0..AGORA__RESULTS_MAX_FRAME, unique), built once
 * per result so a mask over many frames stays linear. Owned by one_result. */
typedef const json_t *frame_index[AGORA__RESULTS_MAX_FRAME + 1];

/* Media reference by identifier to the SOP instance holding frame index f, NULL if unknown. */
static json_t *instance_ref(const frame_index *fx, json_int_t f)
{
    const json_t *e = f >= 0 && f <= AGORA__RESULTS_MAX_FRAME ? (*fx)[f] : NULL;
    if (e != NULL) {
        char oid[80], disp[64];
        snprintf(oid, sizeof oid, "urn:oid:%s",
                 json_string_value(json_object_get(e, "sop_instance_uid")));
        snprintf(disp, sizeof disp, "DICOM instance, frame %lld",
                 (long long)json_integer_value(json_object_get(e, "frame_number")));
        return json_pack("{s:s,s:{s:s,s:s},s:s}", "type", "Media", "identifier", "system",
                         "urn:dicom:uid", "value", oid, "display", disp);
    }
    return NULL;
}

static const json_t *region_by_id(const json_t *doc, const json_t *id)
{
    size_t i;
    json_t *r;
    if (!json_is_integer(id))
        return NULL;
    json_array_foreach(json_object_get(doc, "regions"), i, r)
    {
        if (json_integer_value(json_object_get(r, "id")) == json_integer_value(id))
            return r;
    }
    return NULL;
}

/* Add to o's derivedFrom: the source instance of frame (if any), the region's Observation and
 * its instances (if any). */
static int derive(json_t *o, const json_t *doc, const frame_index *fx, const json_t *frame,
                  const json_t *region_id)
{
    json_t *d = json_object_get(o, "derivedFrom");
    int rc = 0;
    if (json_is_integer(frame)) {
        json_t *m = instance_ref(fx, json_integer_value(frame));
        rc |= m ? json_array_append_new(d, m) : 0;
    }
    const json_t *r = region_by_id(doc, region_id);
    if (r != NULL) {
        char id[37], url[64];
        region_uuid(json_string_value(json_object_get(doc, "invocation_id")),
                    json_integer_value(region_id), id);
        snprintf(url, sizeof url, "urn:uuid:%s", id);
        rc |= json_array_append_new(d, json_pack("{s:s}", "reference", url));
    }
    return rc;
}

static json_t *observation(const char *id, const json_t *doc, const char *device)
{
    return json_pack("{s:s,s:s,s:s,s:[{s:[{s:s,s:s,s:s}]}],s:o,s:s,s:{s:s},s:[o]}", "resourceType",
                     "Observation", "id", id, "status", "final", "category", "coding", "system",
                     "http://terminology.hl7.org/CodeSystem/observation-category", "code",
                     "imaging", "display", "Imaging", "subject", subject(), "issued",
                     json_string_value(json_object_get(doc, "created")), "device", "display",
                     device, "derivedFrom",
                     study_ref(json_string_value(json_object_get(doc, "study_uid"))));
}

static int add_entry(json_t *entries, const char *uuid, json_t *resource)
{
    char url[64];
    snprintf(url, sizeof url, "urn:uuid:%s", uuid);
    if (resource == NULL)
        return -1;
    return json_array_append_new(entries,
                                 json_pack("{s:s,s:o}", "fullUrl", url, "resource", resource));
}

static int one_result(json_t *entries, const json_t *doc)
{
    const char *inv = json_string_value(json_object_get(doc, "invocation_id"));
    const json_t *plugin = json_object_get(doc, "plugin");
    char device[200], text[240], rid[37];
    snprintf(device, sizeof device, "%s@%s", json_string_value(json_object_get(plugin, "id")),
             json_string_value(json_object_get(plugin, "version")));
    snprintf(text, sizeof text, "AI analysis by %s", device);
    uint8_t b[16];
    if (agora__unhex(inv, b, 16) != 0)
        return -1;
    uuid_text(b, rid);
    frame_index *fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        return -1;
    json_t *refs = json_array();
    size_t index = 0, n_region_obs = 0, i;
    json_t *f;
    int rc = refs ? 0 : -1;
    json_array_foreach(json_object_get(doc, "frames"), i, f)
    {
        json_int_t k = json_integer_value(json_object_get(f, "frame"));
        if (k >= 0 && k <= AGORA__RESULTS_MAX_FRAME)
            (*fx)[k] = f;
    }
    json_array_foreach(json_object_get(doc, "regions"), i, f)
    {
        char oid[37], url[64], value[400];
        json_int_t id = json_integer_value(json_object_get(f, "id"));
        region_uuid(inv, id, oid);
        json_t *o = observation(oid, doc, device);
        if (o == NULL) {
            json_decref(refs);
            free(fx);
            return -1;
        }
        const json_t *mask = json_object_get(f, "mask");
        const char *kind = json_string_value(json_object_get(f, "kind"));
        const char *label = json_string_value(json_object_get(f, "label"));
        json_int_t first = json_integer_value(json_object_get(f, "frame")), n = 1;
        if (mask != NULL) {
            first = json_integer_value(json_object_get(mask, "first_frame"));
            n = json_integer_value(json_object_get(mask, "frames"));
        }
        if (n > 1)
            snprintf(value, sizeof value, "%s on frames %lld..%lld%s%s", kind, (long long)first,
                     (long long)(first + n - 1), label ? ": " : "", label ? label : "");
        else
            snprintf(value, sizeof value, "%s on frame %lld%s%s", kind, (long long)first,
                     label ? ": " : "", label ? label : "");
        json_object_set_new(o, "code",
                            json_pack("{s:[{s:s,s:s,s:s}],s:s}", "coding", "system",
                                      "http://dicom.nema.org/resources/ontology/DCM", "code",
                                      "111030", "display", "Image Region", "text",
                                      "Image Region"));
        json_object_set_new(o, "valueString", json_string(value));
        /* every source instance the region lies on (a mask may span frames); bounded by
         * the validated frame count */
        json_t *d = json_object_get(o, "derivedFrom");
        for (json_int_t k = first; k < first + n; k++) {
            json_t *m = instance_ref(fx, k);
            rc |= m ? json_array_append_new(d, m) : 0;
        }
        snprintf(url, sizeof url, "urn:uuid:%s", oid);
        rc |= json_array_append_new(refs, json_pack("{s:s}", "reference", url));
        rc |= add_entry(entries, oid, o);
        n_region_obs++;
    }
    json_array_foreach(json_object_get(doc, "findings"), i, f)
    {
        char oid[37];
        derived_uuid(inv, index++, oid);
        json_t *o = observation(oid, doc, device);
        if (o == NULL) {
            json_decref(refs);
            free(fx);
            return -1;
        }
        json_object_set_new(o, "code",
                            json_pack("{s:[{s:s,s:s,s:s}],s:s}", "coding", "system",
                                      "http://dicom.nema.org/resources/ontology/DCM", "code",
                                      "121071", "display", "Finding", "text", "Finding"));
        json_object_set_new(o, "valueCodeableConcept", codeable(json_object_get(f, "code")));
        json_object_set_new(o, "component",
                            json_pack("[{s:{s:[{s:s,s:s,s:s}],s:s},s:{s:O,s:s,s:s,s:s}}]", "code",
                                      "coding", "system", "urn:agora:code", "code", "confidence",
                                      "display", "Confidence of the finding", "text", "confidence",
                                      "valueQuantity", "value", json_object_get(f, "confidence"),
                                      "unit", "1", "system", ucum, "code", "1"));
        rc |= derive(o, doc, fx, json_object_get(f, "frame"), json_object_get(f, "region"));
        char url[64];
        snprintf(url, sizeof url, "urn:uuid:%s", oid);
        rc |= json_array_append_new(refs, json_pack("{s:s}", "reference", url));
        rc |= add_entry(entries, oid, o);
    }
    json_array_foreach(json_object_get(doc, "measurements"), i, f)
    {
        char oid[37];
        derived_uuid(inv, index++, oid);
        json_t *o = observation(oid, doc, device);
        if (o == NULL) {
            json_decref(refs);
            free(fx);
            return -1;
        }
        const json_t *code = json_object_get(f, "code");
        const char *name = json_string_value(json_object_get(f, "name"));
        json_t *cc = code ? codeable(code) : json_pack("{s:s}", "text", name);
        if (cc != NULL && code != NULL)
            json_object_set_new(cc, "text", json_string(name));
        json_object_set_new(o, "code", cc);
        const char *unit = json_string_value(json_object_get(f, "unit"));
        json_object_set_new(o, "valueQuantity",
                            json_pack("{s:O,s:s,s:s,s:s}", "value", json_object_get(f, "value"),
                                      "unit", unit, "system", ucum, "code", unit));
        rc |= derive(o, doc, fx, json_object_get(f, "frame"), json_object_get(f, "region"));
        char url[64];
        snprintf(url, sizeof url, "urn:uuid:%s", oid);
        rc |= json_array_append_new(refs, json_pack("{s:s}", "reference", url));
        rc |= add_entry(entries, oid, o);
    }
    json_t *dr = json_pack(
        "{s:s,s:s,s:[{s:s,s:s}],s:s,s:[{s:[{s:s,s:s,s:s}]}],s:{s:[{s:s,s:s,s:s}],s:s},s:o,s:s,"
        "s:[{s:s}],s:[o]}",
        "resourceType", "DiagnosticReport", "id", rid, "identifier", "system",
        "urn:agora:invocation", "value", inv, "status", "final", "category", "coding", "system",
        "http://terminology.hl7.org/CodeSystem/v2-0074", "code", "RAD", "display", "Radiology",
        "code", "coding", "system", "http://loinc.org", "code", "18748-4", "display",
        "Diagnostic imaging study", "text", text, "subject", subject(), "issued",
        json_string_value(json_object_get(doc, "created")), "performer", "display", device,
        "imagingStudy", study_ref(json_string_value(json_object_get(doc, "study_uid"))));
    free(fx);
    if (dr == NULL) {
        json_decref(refs);
        return -1;
    }
    if (json_array_size(refs) > 0)
        json_object_set(dr, "result", refs);
    json_decref(refs);
    const json_t *summary = json_object_get(doc, "summary");
    if (json_is_string(summary) && json_string_length(summary) > 0)
        json_object_set(dr, "conclusion", (json_t *)summary);
    const json_t *triage = json_object_get(doc, "triage");
    int urgent = json_is_true(json_object_get(triage, "urgent"));
    rc |= json_object_set_new(
        dr, "meta",
        json_pack("{s:[{s:s,s:s,s:s}]}", "tag", "system",
                  "http://terminology.hl7.org/CodeSystem/v3-ActPriority", "code",
                  urgent ? "S" : "R", "display", urgent ? "stat" : "routine"));
    if (urgent)
        rc |= json_object_set_new(
            dr, "conclusionCode",
            json_pack("[{s:[{s:s,s:s,s:s}],s:s}]", "coding", "system",
                      "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code",
                      "AA", "display", "Critical abnormal", "text",
                      json_string_value(json_object_get(triage, "reason"))));
    /* The report goes before its observations: readers meet the index first. */
    char url[64];
    snprintf(url, sizeof url, "urn:uuid:%s", rid);
    json_t *entry = json_pack("{s:s,s:o}", "fullUrl", url, "resource", dr);
    size_t first_obs = json_array_size(entries) - index - n_region_obs;
    rc |= entry ? json_array_insert_new(entries, first_obs, entry) : -1;
    return rc;
}

int agora__results_fhir_bundle(const json_t *results, json_t **out, agora__error *err)
{
    *out = NULL;
    if (!json_is_array(results))
        return agora__error_set(err, AGORA_EINVAL, "results must be a JSON array");
    const char *study = NULL;
    size_t i;
    json_t *doc;
    json_array_foreach((json_t *)results, i, doc)
    {
        int rc = agora__results_validate(doc, AGORA__RESULT_STORED, err);
        if (rc != 0)
            return agora__error_prefix(err, "result %zu", i);
        const char *s = json_string_value(json_object_get(doc, "study_uid"));
        if (study != NULL && strcmp(study, s) != 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "results of several studies; export one study at a time");
        study = s;
    }
    json_t *entries = json_array();
    json_t *bundle = json_pack("{s:s,s:s}", "resourceType", "Bundle", "type", "collection");
    int rc = entries && bundle ? 0 : -1;
    json_array_foreach((json_t *)results, i, doc)
    {
        if (rc == 0 && strcmp(json_string_value(json_object_get(doc, "status")), "ok") == 0)
            rc = one_result(entries, doc);
    }
    if (rc == 0 && json_array_size(entries) > 0)
        rc = json_object_set(bundle, "entry", entries);
    json_decref(entries);
    if (rc != 0) {
        json_decref(bundle);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory building the FHIR bundle");
    }
    *out = bundle;
    return 0;
}
