/* The plugin view over the dicom module's dataset model (see deid.h). */
#include "deid.h"
#include "dicom.h"

#include <string.h>

typedef struct dicom_src {
    const agora__dicom_dataset *ds;
    uint8_t scratch[64]; /* big-endian values swapped here; valid until the next call */
} dicom_src;

static size_t unit_of(uint16_t vr)
{
    switch (vr) {
    case AGORA__DICOM_VR('U', 'S'):
    case AGORA__DICOM_VR('S', 'S'):
        return 2;
    case AGORA__DICOM_VR('U', 'L'):
    case AGORA__DICOM_VR('S', 'L'):
    case AGORA__DICOM_VR('F', 'L'):
        return 4;
    case AGORA__DICOM_VR('F', 'D'):
        return 8;
    default:
        return 1;
    }
}

static int dicom_get(void *ctx, uint32_t tag, char vr[3], const uint8_t **bytes, size_t *len)
{
    dicom_src *src = ctx;
    const agora__dicom_element *e = agora__dicom_find(src->ds, tag);
    if (e == NULL)
        return 0;
    if (e->items != NULL || (e->flags & AGORA__DICOM_EL_ENCAPSULATED))
        return 0; /* never a sequence or pixel data */
    vr[0] = (char)(e->vr >> 8);
    vr[1] = (char)(e->vr & 0xFF);
    vr[2] = '\0';
    *bytes = e->value;
    *len = (size_t)e->value_len;
    size_t unit = unit_of(e->vr);
    if ((e->flags & AGORA__DICOM_EL_BIG_ENDIAN) && unit > 1 && e->value_len > 0) {
        if (e->value_len > sizeof src->scratch || e->value_len % unit != 0)
            return 0; /* not a value the view would show anyway */
        for (size_t i = 0; i < e->value_len; i += unit)
            for (size_t k = 0; k < unit; k++)
                src->scratch[i + k] = e->value[i + unit - 1 - k];
        *bytes = src->scratch;
    }
    return 1;
}

int agora__deid_view_dataset(const struct agora__dicom_dataset *ds, const uint8_t secret[32],
                             const char *const *granted, size_t granted_count, uint32_t flags,
                             agora__deid_uidmap *map, agora__deid_granted *out, agora__error *err)
{
    if (ds == NULL)
        return agora__error_set(err, AGORA_EINVAL, "view: no dataset");
    dicom_src src;
    memset(&src, 0, sizeof src);
    src.ds = ds;
    return agora__deid_view(dicom_get, &src, secret, granted, granted_count, flags, map, out, err);
}
