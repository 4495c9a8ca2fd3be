/* Pseudonymous UIDs: HMAC-SHA256 keyed by the clinic secret, rendered under the 2.25 root. */
#include "deid.h"

#include <sodium.h>
#include <string.h>

/* Divide the 128-bit big-endian number in limbs[4] by 10 in place; return the remainder. */
static unsigned div10(uint32_t limbs[4])
{
    uint64_t rem = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t cur = (rem << 32) | limbs[i];
        limbs[i] = (uint32_t)(cur / 10u);
        rem = cur % 10u;
    }
    return (unsigned)rem;
}

int agora__deid_uid(const uint8_t secret[32], const char *uid, char out[65], agora__error *err)
{
    if (out != NULL)
        out[0] = '\0';
    if (secret == NULL || uid == NULL || out == NULL)
        return agora__error_set(err, AGORA_EINVAL, "deid uid: missing argument");
    /* DICOM pads UI values with NUL (and writers sometimes with spaces): the same UID must map
     * to the same pseudonym however it was padded. */
    size_t len = strnlen(uid, AGORA__DEID_UID_INPUT_MAX + 1);
    if (len > AGORA__DEID_UID_INPUT_MAX)
        return agora__error_set(err, AGORA_ELIMIT,
                                "deid uid: UID longer than %d bytes; the input is not DICOM",
                                AGORA__DEID_UID_INPUT_MAX);
    while (len > 0 && (uid[len - 1] == ' ' || uid[len - 1] == '\0'))
        len--;
    size_t start = 0;
    while (start < len && uid[start] == ' ')
        start++;
    if (start == len)
        return agora__error_set(err, AGORA_EINVAL, "deid uid: empty UID cannot be pseudonymised");

    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    static const char domain[] = "agora.deid.uid.v1"; /* separates UID hashes from other uses */
    if (crypto_auth_hmacsha256_init(&st, secret, 32) != 0 ||
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)domain, sizeof domain) != 0 ||
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)uid + start, len - start) != 0 ||
        crypto_auth_hmacsha256_final(&st, mac) != 0)
        return agora__error_set(err, AGORA_EINTERNAL, "deid uid: HMAC failed");

    uint32_t limbs[4];
    for (int i = 0; i < 4; i++)
        limbs[i] = ((uint32_t)mac[4 * i] << 24) | ((uint32_t)mac[4 * i + 1] << 16) |
                   ((uint32_t)mac[4 * i + 2] << 8) | (uint32_t)mac[4 * i + 3];
    char digits[40];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + div10(limbs));
    } while ((limbs[0] | limbs[1] | limbs[2] | limbs[3]) != 0 && n < sizeof digits);
    memcpy(out, "2.25.", 5);
    for (size_t i = 0; i < n; i++)
        out[5 + i] = digits[n - 1 - i]; /* no leading zero: the top digit of a non-zero number */
    out[5 + n] = '\0';
    sodium_memzero(&st, sizeof st);
    return 0;
}

int agora__deid_uid_valid(const char *uid, size_t len)
{
    if (len == 0 || len > 64)
        return 0;
    size_t comp_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || uid[i] == '.') {
            size_t clen = i - comp_start;
            if (clen == 0)
                return 0;
            if (clen > 1 && uid[comp_start] == '0')
                return 0;
            comp_start = i + 1;
        } else if (uid[i] < '0' || uid[i] > '9') {
            return 0;
        }
    }
    return 1;
}
