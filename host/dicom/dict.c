/* Data dictionary lookups over the generated, sorted tables (dict_table.c). */
#include <string.h>

#include "dict_table.h"

static const agora__dicom_dict_entry group_length = {
    0, 0x0000FFFFu, AGORA__DICOM_VR('U', 'L'), 0, 0, "1", "GroupLength"};
static const agora__dicom_dict_entry private_creator = {0, 0,   AGORA__DICOM_VR('L', 'O'), 0,
                                                        0, "1", "PrivateCreator"};

const agora__dicom_dict_entry *agora__dicom_dict_lookup(uint32_t tag)
{
    size_t lo = 0, hi = agora__dicom_dict_exact_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t t = agora__dicom_dict_exact[mid].tag;
        if (t == tag)
            return &agora__dicom_dict_exact[mid];
        if (t < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint16_t g = AGORA__DICOM_GROUP(tag), e = AGORA__DICOM_ELEM(tag);
    if (g & 1) {
        /* Private creators (gggg,0010-00FF) are LO by PS3.5 7.8.1; other private tags unknown. */
        if (e >= 0x10 && e <= 0xFF)
            return &private_creator;
        if (e == 0)
            return &group_length;
        return NULL;
    }
    for (size_t i = 0; i < agora__dicom_dict_masked_n; i++)
        if ((tag & agora__dicom_dict_masked[i].mask) == agora__dicom_dict_masked[i].tag)
            return &agora__dicom_dict_masked[i];
    if (e == 0)
        return &group_length;
    return NULL;
}

const agora__dicom_dict_entry *agora__dicom_dict_by_keyword(const char *keyword)
{
    if (!keyword)
        return NULL;
    size_t lo = 0, hi = agora__dicom_dict_exact_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const agora__dicom_dict_entry *d = &agora__dicom_dict_exact[agora__dicom_dict_by_kw[mid]];
        int c = strcmp(d->keyword, keyword);
        if (c == 0)
            return d;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

size_t agora__dicom_dict_size(void)
{
    return agora__dicom_dict_exact_n + agora__dicom_dict_masked_n;
}
