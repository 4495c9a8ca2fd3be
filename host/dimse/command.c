/* DIMSE command set codec (command.h): tag(4) length(4) value, little endian, group 0000. */
#include "command.h"

#include <string.h>

#include "common.h"

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* UIDs in a command set are padded to even length with one NUL. */
static int get_uid(const uint8_t *v, size_t n, char out[AGORA__PDU_UID_MAX + 1], uint16_t elem,
                   agora__error *err)
{
    if (n > 0 && (v[n - 1] == 0 || v[n - 1] == ' '))
        n--;
    if (!agora__uid_valid((const char *)v, n))
        return agora__error_set(err, AGORA_EINVAL, "command element (0000,%04x) is not a valid UID",
                                elem);
    memcpy(out, v, n);
    out[n] = 0;
    return 0;
}

static int get_us(const uint8_t *v, size_t n, uint16_t *out, uint16_t elem, agora__error *err)
{
    if (n != 2)
        return agora__error_set(err, AGORA_EINVAL,
                                "command element (0000,%04x) is %zu bytes, not 2", elem, n);
    *out = le16(v);
    return 0;
}

int agora__dimse_cmd_parse(const uint8_t *buf, size_t len, agora__dimse_cmd *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (len > AGORA__DIMSE_CMD_MAX)
        return agora__error_set(err, AGORA_EINVAL, "command set of %zu bytes (at most %u)", len,
                                AGORA__DIMSE_CMD_MAX);
    size_t off = 0;
    unsigned count = 0;
    while (off < len) {
        if (++count > AGORA__DIMSE_CMD_MAX_ELEMENTS)
            return agora__error_set(err, AGORA_EINVAL, "command set has more than %u elements",
                                    AGORA__DIMSE_CMD_MAX_ELEMENTS);
        if (len - off < 8)
            return agora__error_set(err, AGORA_EINVAL, "truncated command element header");
        uint16_t group = le16(buf + off), elem = le16(buf + off + 2);
        uint32_t n = le32(buf + off + 4);
        if (group != 0x0000)
            return agora__error_set(err, AGORA_EINVAL, "command set holds an element of group %04x",
                                    group);
        if (n > len - off - 8)
            return agora__error_set(err, AGORA_EINVAL,
                                    "command element (0000,%04x) runs past the set", elem);
        const uint8_t *v = buf + off + 8;
        int rc = 0;
        switch (elem) {
        case 0x0002:
            rc = get_uid(v, n, out->sop_class, elem, err);
            out->has |= AGORA__CMD_HAS_SOP_CLASS;
            break;
        case 0x0100:
            rc = get_us(v, n, &out->field, elem, err);
            out->has |= AGORA__CMD_HAS_FIELD;
            break;
        case 0x0110:
            rc = get_us(v, n, &out->message_id, elem, err);
            out->has |= AGORA__CMD_HAS_MESSAGE_ID;
            break;
        case 0x0120:
            rc = get_us(v, n, &out->message_rsp, elem, err);
            out->has |= AGORA__CMD_HAS_MESSAGE_RSP;
            break;
        case 0x0700:
            rc = get_us(v, n, &out->priority, elem, err);
            break;
        case 0x0800:
            rc = get_us(v, n, &out->data_set, elem, err);
            out->has |= AGORA__CMD_HAS_DATA_SET;
            break;
        case 0x0900:
            rc = get_us(v, n, &out->status, elem, err);
            out->has |= AGORA__CMD_HAS_STATUS;
            break;
        case 0x1000:
            rc = get_uid(v, n, out->sop_instance, elem, err);
            out->has |= AGORA__CMD_HAS_SOP_INSTANCE;
            break;
        default:
            /* Group length, move originator, error comment...: not needed by an SCP here. */
            break;
        }
        if (rc != 0)
            return rc;
        off += 8 + (size_t)n;
    }
    unsigned need = AGORA__CMD_HAS_FIELD | AGORA__CMD_HAS_DATA_SET;
    if ((out->has & need) != need)
        return agora__error_set(err, AGORA_EINVAL,
                                "command set lacks its command field or data set type");
    return 0;
}

typedef struct cw {
    uint8_t *p;
    size_t len, cap;
    int over;
} cw;

static void put_elem(cw *w, uint16_t elem, const void *v, size_t n)
{
    size_t pad = n & 1u;
    if (w->over || 8 + n + pad > w->cap - w->len) {
        w->over = 1;
        return;
    }
    uint8_t *p = w->p + w->len;
    p[0] = 0;
    p[1] = 0;
    p[2] = (uint8_t)elem;
    p[3] = (uint8_t)(elem >> 8);
    uint32_t l = (uint32_t)(n + pad);
    p[4] = (uint8_t)l;
    p[5] = (uint8_t)(l >> 8);
    p[6] = (uint8_t)(l >> 16);
    p[7] = (uint8_t)(l >> 24);
    memcpy(p + 8, v, n);
    if (pad)
        p[8 + n] = 0;
    w->len += 8 + n + pad;
}

static void put_us(cw *w, uint16_t elem, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put_elem(w, elem, b, 2);
}

size_t agora__dimse_cmd_encode(const agora__dimse_cmd *cmd, uint8_t *out, size_t cap)
{
    if (cap < 12)
        return 0;
    /* (0000,0000) group length first, patched once the rest is written. */
    cw w = {out, 12, cap, 0};
    if (cmd->has & AGORA__CMD_HAS_SOP_CLASS)
        put_elem(&w, 0x0002, cmd->sop_class, strlen(cmd->sop_class));
    put_us(&w, 0x0100, cmd->field);
    if (cmd->has & AGORA__CMD_HAS_MESSAGE_ID)
        put_us(&w, 0x0110, cmd->message_id);
    if (cmd->has & AGORA__CMD_HAS_MESSAGE_RSP)
        put_us(&w, 0x0120, cmd->message_rsp);
    if (cmd->field == AGORA__DIMSE_C_STORE_RQ)
        put_us(&w, 0x0700, cmd->priority);
    put_us(&w, 0x0800, cmd->data_set);
    if (cmd->has & AGORA__CMD_HAS_STATUS)
        put_us(&w, 0x0900, cmd->status);
    if (cmd->has & AGORA__CMD_HAS_SOP_INSTANCE)
        put_elem(&w, 0x1000, cmd->sop_instance, strlen(cmd->sop_instance));
    if (w.over)
        return 0;
    uint32_t glen = (uint32_t)(w.len - 12);
    const uint8_t head[12] = {0,
                              0,
                              0,
                              0,
                              4,
                              0,
                              0,
                              0,
                              (uint8_t)glen,
                              (uint8_t)(glen >> 8),
                              (uint8_t)(glen >> 16),
                              (uint8_t)(glen >> 24)};
    memcpy(out, head, sizeof head);
    return w.len;
}
