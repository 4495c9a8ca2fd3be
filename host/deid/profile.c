/* The Basic Profile walker (see profile.h). */
#include "profile.h"

#include <stdio.h>
#include <string.h>

#define VR(a, b)  AGORA__DICOM_VR(a, b)
#define TAG(g, e) AGORA__DICOM_TAG(g, e)
#define MAX_DEPTH 64

typedef struct walk {
    const agora__deid_profile *p;
    agora__deid_buf *b;
    agora__deid_stats *st;
    unsigned bits_allocated;
    int days; /* date offset under rtnLongModifDatesOpt */
    agora__error *err;
    int rc;
} walk;

/* Lookup by tag without the reader library (elements are in ascending tag order). */
static const agora__dicom_element *find(const agora__dicom_dataset *ds, uint32_t tag)
{
    uint32_t lo = 0, hi = ds->n_elements;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ds->elements[mid].tag < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ds->n_elements && ds->elements[lo].tag == tag ? &ds->elements[lo] : NULL;
}

/* The trimmed text of an element into out ("" when absent, empty or too long). */
static void text_of(const agora__dicom_element *e, char *out, size_t out_size)
{
    out[0] = '\0';
    if (e == NULL || e->value == NULL)
        return;
    size_t len = (size_t)e->value_len, s = 0;
    while (len > 0 && (e->value[len - 1] == ' ' || e->value[len - 1] == '\0'))
        len--;
    while (s < len && e->value[s] == ' ')
        s++;
    if (len - s >= out_size)
        return;
    memcpy(out, e->value + s, len - s);
    out[len - s] = '\0';
}

/* The profile's pseudonym for uid (see profile.h). A hook's answer is checked: it lands in the
 * output as a UID and, for the SOP Instance UID, in a file name. */
static int pseudonym(const agora__deid_profile *p, const char *uid, char out[65], agora__error *err)
{
    if (p->pseudonym == NULL)
        return agora__deid_uid(p->secret, uid, out, err);
    int rc = p->pseudonym(p->pseudonym_ctx, uid, out, err);
    if (rc != 0)
        return rc;
    if (!agora__deid_uid_valid(out, strnlen(out, 65)))
        return agora__error_set(err, AGORA_EINVAL, "a pseudonym is not a valid UID");
    return 0;
}

static int has_opt(const walk *w, int opt)
{
    return (w->p->options >> opt) & 1u;
}

/* Replace every UID of a (multi-valued) UI element by its pseudonym. */
static void put_uids(walk *w, const agora__dicom_element *e)
{
    char out[(64 + 1) * 64];
    size_t o = 0, len = (size_t)e->value_len, start = 0;
    const char *v = (const char *)e->value;
    for (size_t i = 0; i <= len && w->rc == 0; i++) {
        if (i < len && v[i] != '\\')
            continue;
        char one[AGORA__DEID_UID_INPUT_MAX + 1];
        size_t n = i - start;
        if (n > AGORA__DEID_UID_INPUT_MAX || o + 66 > sizeof out) {
            w->rc = agora__error_set(w->err, AGORA_ELIMIT,
                                     "element (%04X,%04X): UID value too long or too many UIDs",
                                     e->tag >> 16, e->tag & 0xFFFFu);
            return;
        }
        memcpy(one, v + start, n);
        one[n] = '\0';
        size_t t = n;
        while (t > 0 && (one[t - 1] == ' ' || one[t - 1] == '\0'))
            t--;
        size_t s = 0;
        while (s < t && one[s] == ' ')
            s++;
        one[t] = '\0'; /* the hook sees the UID as agora__deid_uid hashes it: trimmed */
        if (s < t) {
            char hashed[65];
            w->rc = pseudonym(w->p, one + s, hashed, w->err);
            if (w->rc != 0)
                return;
            size_t hl = strlen(hashed);
            memcpy(out + o, hashed, hl);
            o += hl;
            w->st->uids++;
        }
        if (i < len)
            out[o++] = '\\';
        start = i + 1;
    }
    agora__deid_put_element(w->b, e->tag, VR('U', 'I'), out, o);
}

static void put_empty_seq(walk *w, uint32_t tag)
{
    size_t m = agora__deid_put_seq_begin(w->b, tag, VR('S', 'Q'), w->p->write_flags);
    agora__deid_put_seq_end(w->b, m, w->p->write_flags);
}

/* A dummy value that is valid for the VR and carries nothing of the original. */
static void put_dummy(walk *w, const agora__dicom_element *e)
{
    static const uint8_t zeros[8];
    const char *text = NULL;
    switch (e->vr) {
    case VR('P', 'N'):
    case VR('L', 'O'):
    case VR('S', 'H'):
    case VR('L', 'T'):
    case VR('S', 'T'):
    case VR('U', 'T'):
    case VR('U', 'C'):
    case VR('A', 'E'):
    case VR('C', 'S'):
        text = "ANONYMIZED";
        break;
    case VR('D', 'A'):
        text = "19000101";
        break;
    case VR('T', 'M'):
        text = "000000";
        break;
    case VR('D', 'T'):
        text = "19000101000000";
        break;
    case VR('A', 'S'):
        text = "000Y";
        break;
    case VR('I', 'S'):
    case VR('D', 'S'):
        text = "0";
        break;
    case VR('U', 'S'):
    case VR('S', 'S'):
        agora__deid_put_element(w->b, e->tag, e->vr, zeros, 2);
        return;
    case VR('U', 'L'):
    case VR('S', 'L'):
    case VR('F', 'L'):
    case VR('A', 'T'):
        agora__deid_put_element(w->b, e->tag, e->vr, zeros, 4);
        return;
    case VR('F', 'D'):
    case VR('S', 'V'):
    case VR('U', 'V'):
        agora__deid_put_element(w->b, e->tag, e->vr, zeros, 8);
        return;
    default:
        text = ""; /* OB, OW, UN, UR...: a zero-length value is the only safe dummy */
        break;
    }
    agora__deid_put_element(w->b, e->tag, e->vr, text, strlen(text));
}

static void walk_dataset(walk *w, const agora__dicom_dataset *ds, uint32_t depth);

static void put_sequence(walk *w, const agora__dicom_element *e, uint32_t depth)
{
    size_t m = agora__deid_put_seq_begin(w->b, e->tag, VR('S', 'Q'), w->p->write_flags);
    for (uint32_t k = 0; k < e->n_items && w->rc == 0; k++) {
        size_t im = agora__deid_put_item_begin(w->b, w->p->write_flags);
        walk_dataset(w, &e->items[k], depth + 1);
        agora__deid_put_item_end(w->b, im, w->p->write_flags);
    }
    agora__deid_put_seq_end(w->b, m, w->p->write_flags);
}

static int is_sequence(const agora__dicom_element *e)
{
    return e->vr == AGORA__DICOM_VR_SQ || e->items != NULL;
}

/* Private elements: kept only under rtnSafePrivOpt when their creator and element are in
 * Table E.3.10-1. */
static int keep_private(const walk *w, const agora__dicom_dataset *ds, uint32_t tag)
{
    if (!has_opt(w, AGORA__PS315_RTN_SAFE_PRIV))
        return 0;
    uint16_t group = (uint16_t)(tag >> 16), elem = (uint16_t)tag;
    char creator[65];
    if (elem >= 0x0010 && elem <= 0x00FF) {
        text_of(find(ds, tag), creator, sizeof creator);
        return creator[0] != '\0' && agora__deid_safe_creator(group, creator, strlen(creator));
    }
    if (elem < 0x1000)
        return 0; /* (gggg,0001-000F) and (gggg,0100-0FFF) have no creator block */
    text_of(find(ds, TAG(group, elem >> 8)), creator, sizeof creator);
    return creator[0] != '\0' &&
           agora__deid_safe_private_find(group, (uint8_t)(elem & 0xFF), creator, strlen(creator));
}

static void element(walk *w, const agora__dicom_dataset *ds, const agora__dicom_element *e,
                    uint32_t depth)
{
    uint32_t tag = e->tag;
    uint16_t group = (uint16_t)(tag >> 16);
    if ((tag & 0xFFFFu) == 0 || group == 0x0002 || group == 0xFFFE)
        return; /* group lengths are stale after editing; meta is rebuilt; delimiters framed */
    if (group & 1u) {
        if (keep_private(w, ds, tag)) {
            w->st->private_kept++;
            if (is_sequence(e))
                put_sequence(w, e, depth);
            else
                agora__deid_put_copy(w->b, e, w->bits_allocated);
        } else {
            w->st->private_removed++;
        }
        return;
    }
    /* Overlays (60xx) and curves (50xx): their data (and free-text labels, descriptions and
     * comments) may show identity; the table removes the data, and the rest of the group is
     * meaningless without it, so the whole group goes (cleanGraphOpt is refused, rules.h). */
    if ((group >= 0x6000 && group <= 0x601E) || (group >= 0x5000 && group <= 0x501E)) {
        w->st->overlay_curve_removed++;
        return;
    }
    const agora__deid_rule *rule = agora__deid_rule_find(tag);
    /* Command elements, and public elements that no dictionary of ours knows (a newer edition,
     * or a misused tag) with no VR to tell what they hold: nobody can vouch for them. A known
     * attribute that merely arrived as UN is judged like any other. */
    if (rule == NULL && (group == 0x0000 ||
                         (e->vr == AGORA__DICOM_VR_UN && agora__dicom_dict_lookup(tag) == NULL))) {
        w->st->removed++;
        return;
    }
    agora__deid_op op = agora__deid_resolve(rule, w->p->options);
    if (op == AGORA__DEID_OP_SHIFT_DATE) {
        char in[256], shifted[256];
        text_of(e, in, sizeof in);
        if (in[0] != '\0' &&
            agora__deid_shift_dates(in, strlen(in), w->days, shifted, sizeof shifted) == 0) {
            agora__deid_put_element(w->b, tag, e->vr, shifted, strlen(shifted));
            w->st->dates_shifted++;
            return;
        }
        /* Unparsable or empty: never copied; fall back to the Basic Profile action. */
        op = agora__deid_resolve(rule, w->p->options & ~(1u << AGORA__PS315_RTN_LONG_MODIF_DATES));
    }
    if ((op == AGORA__DEID_OP_UID || op == AGORA__DEID_OP_DUMMY) && e->vr == VR('U', 'I')) {
        put_uids(w, e);
        return;
    }
    switch (op) {
    case AGORA__DEID_OP_KEEP:
        w->st->kept++;
        if (is_sequence(e))
            put_sequence(w, e, depth);
        else
            agora__deid_put_copy(w->b, e, w->bits_allocated);
        return;
    case AGORA__DEID_OP_EMPTY:
        w->st->emptied++;
        if (is_sequence(e))
            put_empty_seq(w, tag);
        else
            agora__deid_put_element(w->b, tag, e->vr == VR('U', 'N') ? VR('U', 'N') : e->vr, "", 0);
        return;
    case AGORA__DEID_OP_DUMMY:
        w->st->dummied++;
        if (is_sequence(e))
            put_empty_seq(w, tag);
        else
            put_dummy(w, e);
        return;
    case AGORA__DEID_OP_UID: /* U on a non-UI element: nothing to map, remove it */
    case AGORA__DEID_OP_REMOVE:
    default:
        w->st->removed++;
        return;
    }
}

/* Attributes the profile adds at the top level (PS3.15 E.1.1 and the De-identification Method
 * Code Sequence of PS3.3 C.7.1.1). */
static const uint32_t added_tags[] = {
    TAG(0x0012, 0x0062), /* PatientIdentityRemoved */
    TAG(0x0012, 0x0063), /* DeidentificationMethod */
    TAG(0x0012, 0x0064), /* DeidentificationMethodCodeSequence */
    TAG(0x0028, 0x0303), /* LongitudinalTemporalInformationModified */
};

static void put_code_item(walk *w, const char *code, const char *meaning)
{
    size_t im = agora__deid_put_item_begin(w->b, w->p->write_flags);
    agora__deid_put_element(w->b, TAG(0x0008, 0x0100), VR('S', 'H'), code, strlen(code));
    agora__deid_put_element(w->b, TAG(0x0008, 0x0102), VR('S', 'H'), "DCM", 3);
    agora__deid_put_element(w->b, TAG(0x0008, 0x0104), VR('L', 'O'), meaning, strlen(meaning));
    agora__deid_put_item_end(w->b, im, w->p->write_flags);
}

static void put_addition(walk *w, uint32_t tag)
{
    w->st->added++;
    switch (tag) {
    case TAG(0x0012, 0x0062):
        agora__deid_put_element(w->b, tag, VR('C', 'S'), "YES", 3);
        return;
    case TAG(0x0012, 0x0063): {
        static const char method[] = "Agora PS3.15 E Basic Profile";
        agora__deid_put_element(w->b, tag, VR('L', 'O'), method, sizeof method - 1);
        return;
    }
    case TAG(0x0012, 0x0064): {
        size_t m = agora__deid_put_seq_begin(w->b, tag, VR('S', 'Q'), w->p->write_flags);
        put_code_item(w, "113100", "Basic Application Confidentiality Profile");
        if (has_opt(w, AGORA__PS315_RTN_LONG_FULL_DATES))
            put_code_item(w, "113106",
                          "Retain Longitudinal Temporal Information Full Dates "
                          "Option");
        else if (has_opt(w, AGORA__PS315_RTN_LONG_MODIF_DATES))
            put_code_item(w, "113107",
                          "Retain Longitudinal Temporal Information Modified "
                          "Dates Option");
        if (has_opt(w, AGORA__PS315_RTN_PAT_CHARS))
            put_code_item(w, "113108", "Retain Patient Characteristics Option");
        if (has_opt(w, AGORA__PS315_RTN_DEV_ID))
            put_code_item(w, "113109", "Retain Device Identity Option");
        if (has_opt(w, AGORA__PS315_RTN_UIDS))
            put_code_item(w, "113110", "Retain UIDs Option");
        if (has_opt(w, AGORA__PS315_RTN_SAFE_PRIV))
            put_code_item(w, "113111", "Retain Safe Private Option");
        if (has_opt(w, AGORA__PS315_RTN_INST_ID))
            put_code_item(w, "113112", "Retain Institution Identity Option");
        agora__deid_put_seq_end(w->b, m, w->p->write_flags);
        return;
    }
    case TAG(0x0028, 0x0303): {
        const char *v = has_opt(w, AGORA__PS315_RTN_LONG_FULL_DATES)    ? "UNMODIFIED"
                        : has_opt(w, AGORA__PS315_RTN_LONG_MODIF_DATES) ? "MODIFIED"
                                                                        : "REMOVED";
        agora__deid_put_element(w->b, tag, VR('C', 'S'), v, strlen(v));
        return;
    }
    default:
        return;
    }
}

static void walk_dataset(walk *w, const agora__dicom_dataset *ds, uint32_t depth)
{
    if (depth > MAX_DEPTH) {
        w->rc =
            agora__error_set(w->err, AGORA_ELIMIT, "sequences nested deeper than %d", MAX_DEPTH);
        return;
    }
    size_t next_add = 0, n_add = depth == 0 ? sizeof added_tags / sizeof added_tags[0] : 0;
    for (uint32_t i = 0; i < ds->n_elements && w->rc == 0 && w->b->rc == 0; i++) {
        const agora__dicom_element *e = &ds->elements[i];
        while (next_add < n_add && added_tags[next_add] < e->tag)
            put_addition(w, added_tags[next_add++]);
        if (next_add < n_add && added_tags[next_add] == e->tag)
            continue; /* replaced by the addition written when the next larger tag comes */
        element(w, ds, e, depth);
    }
    while (next_add < n_add && w->rc == 0)
        put_addition(w, added_tags[next_add++]);
}

void agora__deid_patient_id(const agora__dicom_file *file, char out[256])
{
    text_of(find(&file->dataset, TAG(0x0010, 0x0020)), out, 256);
}

int agora__deid_apply(const agora__dicom_file *file, const agora__deid_profile *profile,
                      agora__deid_buf *out, agora__deid_stats *stats, char sop_uid_out[65],
                      agora__error *err)
{
    if (sop_uid_out != NULL)
        sop_uid_out[0] = '\0';
    /* Options the writer cannot perform are refused here too, whoever built the profile: never
     * downgraded to the Basic Profile behind the caller's back. */
    for (int i = 0; i < AGORA__PS315_COUNT; i++) {
        const char *why = agora__deid_option_refusal(i);
        if ((profile->options & (1u << i)) && why != NULL)
            return agora__error_set(err, AGORA_EUNSUPPORTED, "%s", why);
    }
    const agora__dicom_dataset *ds = &file->dataset;
    char burned[17], modality[17];
    text_of(find(ds, TAG(0x0028, 0x0301)), burned, sizeof burned);
    text_of(find(ds, TAG(0x0008, 0x0060)), modality, sizeof modality);
    int rc = agora__deid_burned_in_check(burned, modality, profile->flags, err);
    if (rc != 0)
        return rc;

    char sop_class[65], sop_inst[65], mapped[65];
    text_of(find(ds, TAG(0x0008, 0x0016)), sop_class, sizeof sop_class);
    if (sop_class[0] == '\0')
        text_of(find(&file->meta, TAG(0x0002, 0x0002)), sop_class, sizeof sop_class);
    text_of(find(ds, TAG(0x0008, 0x0018)), sop_inst, sizeof sop_inst);
    if (sop_inst[0] == '\0')
        text_of(find(&file->meta, TAG(0x0002, 0x0003)), sop_inst, sizeof sop_inst);
    if (sop_class[0] == '\0' || sop_inst[0] == '\0')
        return agora__error_set(err, AGORA_EINPUT,
                                "no SOP Class or SOP Instance UID: not a composite instance that "
                                "can be written as a de-identified file");
    if (strcmp(sop_class, "1.2.840.10008.1.3.10") == 0)
        return agora__error_set(err, AGORA_EUNSUPPORTED,
                                "a DICOMDIR is an index of other files, not an instance: its "
                                "byte offsets cannot survive rewriting; de-identify the files "
                                "it lists instead");
    if (profile->options & (1u << AGORA__PS315_RTN_UIDS)) {
        agora__strlcpy(mapped, sop_inst, sizeof mapped);
    } else {
        rc = pseudonym(profile, sop_inst, mapped, err);
        if (rc != 0)
            return rc;
    }

    /* Native pixel data is re-encoded as Explicit VR Little Endian; encapsulated data keeps its
     * transfer syntax (the fragments are passed through untouched). */
    const agora__dicom_element *px = find(ds, AGORA__DICOM_T_PIXEL_DATA);
    const char *ts = AGORA__DICOM_TS_EXPLICIT_LE;
    if (px != NULL && (px->flags & AGORA__DICOM_EL_ENCAPSULATED)) {
        /* The fragments are byte streams: whatever encoding the rest of the dataset had (some
         * writers use Implicit VR with a compressed syntax), the output's Explicit VR Little
         * Endian dataset is what the compressed syntax prescribes. */
        if (file->transfer_syntax[0] == '\0' || agora__dicom_ts_is_native(file->transfer_syntax) ||
            file->encoding == AGORA__DICOM_DEFLATED_LE)
            return agora__error_set(err, AGORA_EUNSUPPORTED,
                                    "encapsulated pixel data under a transfer syntax that does "
                                    "not allow it; cannot pass it through");
        ts = file->transfer_syntax;
    }

    walk w = {profile, out, stats, 0, 0, err, 0};
    const agora__dicom_element *ba = find(ds, TAG(0x0028, 0x0100));
    if (ba != NULL && ba->value_len >= 2)
        w.bits_allocated = (ba->flags & AGORA__DICOM_EL_BIG_ENDIAN)
                               ? ((unsigned)ba->value[0] << 8 | ba->value[1])
                               : ((unsigned)ba->value[1] << 8 | ba->value[0]);
    if (profile->options & (1u << AGORA__PS315_RTN_LONG_MODIF_DATES)) {
        if (profile->days_given) {
            w.days = profile->days;
        } else {
            char pid[256];
            agora__deid_patient_id(file, pid);
            w.days = agora__deid_date_offset(profile->secret, pid, strlen(pid));
        }
    }
    agora__deid_put_meta(out, sop_class, mapped, ts);
    walk_dataset(&w, ds, 0);
    if (w.rc != 0)
        return w.rc;
    if (out->rc != 0)
        return agora__error_set(err, out->rc,
                                out->rc == AGORA_ELIMIT
                                    ? "output too large, or a value too long for its VR"
                                : out->rc == AGORA_ENOMEM ? "out of memory"
                                                          : "invalid SOP UIDs for the meta "
                                                            "group");
    if (sop_uid_out != NULL)
        memcpy(sop_uid_out, mapped, 65);
    return 0;
}
