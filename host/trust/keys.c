/* Ed25519 key files (libsodium) and detached signature lines. Text formats, one line each, so an
 * operator can read them (docs/operator-guide.md):
 *
 *   PREFIX.pub  agora-public-key v1 ed25519 <key id> <public key, 64 hex>
 *   PREFIX.key  agora-secret-key v1 ed25519 <key id> plain <seed, 64 hex>
 *           or  agora-secret-key v1 ed25519 <key id> argon2id13 <opslimit> <memlimit>
 *                 <salt, 32 hex> <nonce, 48 hex> <secretbox(seed), 96 hex>
 *   *.sig       agora-signature v1 ed25519 <key id> <signature, 128 hex>
 *
 * The key id is the first 8 bytes of sha256(public key) in hex. Only the 32-byte seed is stored;
 * the key pair is re-derived from it and its id checked, so a corrupted file cannot yield a key
 * that signs under someone else's id. */
#include "trust_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX 1024
#define PUB_MAGIC    "agora-public-key"
#define SEC_MAGIC    "agora-secret-key"
#define SIG_MAGIC    "agora-signature"
/* Bounds on the KDF cost a key file may ask for: a hostile file must not make us allocate
 * gigabytes or spin for minutes. */
#define OPS_MAX 16ull
#define MEM_MAX (1024ull * 1024 * 1024)

void agora__key_id(const uint8_t pk[32], char id[AGORA__KEY_ID_HEX])
{
    uint8_t h[32];
    agora__sha256(pk, 32, h);
    agora__hex(h, 8, id);
}

void agora__pubkey_format(const agora__pubkey *pub, char *buf, size_t size)
{
    char hex[65];
    agora__hex(pub->pk, 32, hex);
    snprintf(buf, size, PUB_MAGIC " v1 ed25519 %s %s\n", pub->id, hex);
}

/* Split a one-line text file into at most max tokens separated by single spaces. The line may
 * end with one '\n'. Returns the token count or -1 when malformed. Modifies buf. */
static int tokens(char *buf, size_t len, char **tok, int max)
{
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    if (len == 0 || strlen(buf) != len)
        return -1;
    int n = 0;
    char *p = buf;
    while (*p != '\0') {
        if (n == max)
            return -1;
        tok[n++] = p;
        char *sp = strchr(p, ' ');
        if (sp == NULL)
            break;
        *sp = '\0';
        p = sp + 1;
        if (*p == '\0' || *p == ' ')
            return -1;
    }
    return n;
}

static int hex_exact(const char *hex, uint8_t *out, size_t n)
{
    return strlen(hex) == 2 * n && agora__unhex(hex, out, n) == 0 ? 0 : -1;
}

int agora__pubkey_parse(const uint8_t *buf, size_t len, agora__pubkey *out, agora__error *err)
{
    char copy[KEY_FILE_MAX + 1];
    char *tok[6];
    if (len > KEY_FILE_MAX)
        return agora__error_set(err, AGORA_EINVAL, "not an Agora public key (too long)");
    memcpy(copy, buf, len);
    copy[len] = '\0';
    int n = tokens(copy, len, tok, 6);
    if (n != 5 || strcmp(tok[0], PUB_MAGIC) != 0 || strcmp(tok[1], "v1") != 0 ||
        strcmp(tok[2], "ed25519") != 0 || hex_exact(tok[4], out->pk, 32) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "not an Agora public key (expected one line '" PUB_MAGIC
                                " v1 ed25519 KEYID HEX'); use the .pub file from agora keygen");
    agora__key_id(out->pk, out->id);
    if (strcmp(tok[3], out->id) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "public key file names key id %.16s but the key's id is %s; the "
                                "file is corrupted",
                                tok[3], out->id);
    return 0;
}

int agora__pubkey_read(const char *path, agora__pubkey *out, agora__error *err)
{
    uint8_t *buf;
    size_t len;
    int rc = agora__read_file(path, KEY_FILE_MAX, &buf, &len, err);
    if (rc != 0)
        return rc;
    rc = agora__pubkey_parse(buf, len, out, err);
    free(buf);
    if (rc != 0)
        agora__error_prefix(err, "%s", path);
    return rc;
}

void agora__seckey_wipe(agora__seckey *key)
{
    sodium_memzero(key, sizeof *key);
}

int agora__passphrase_read(const char *path, char *buf, size_t size, size_t *len, agora__error *err)
{
    uint8_t *raw;
    size_t n;
    int rc = agora__read_file(path, 1024, &raw, &n, err);
    if (rc != 0)
        return rc;
    /* strcspn also stops at a NUL byte: the passphrase is the text before it. */
    size_t line = strcspn((const char *)raw, "\r\n");
    if (line == 0 || line + 1 > size) {
        sodium_memzero(raw, n);
        free(raw);
        return agora__error_set(err, AGORA_EINVAL,
                                "%s: the passphrase (first line) must be 1..%zu bytes", path,
                                size - 1);
    }
    memcpy(buf, raw, line);
    buf[line] = '\0';
    *len = line;
    sodium_memzero(raw, n);
    free(raw);
    return 0;
}

static int derive_box_key(uint8_t key[32], const char *pass, size_t passlen, const uint8_t *salt,
                          unsigned long long ops, size_t mem, agora__error *err)
{
    if (crypto_pwhash(key, 32, pass, passlen, salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
        return agora__error_set(err, AGORA_ENOMEM,
                                "cannot derive the key-file key (out of memory?)");
    return 0;
}

static int write_excl(const char *path, const char *text, unsigned mode, agora__error *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return agora__error_set(
            err, AGORA__ERR(errno), "cannot create %s: %s%s", path, strerror(errno),
            errno == EEXIST ? "; choose another --out or delete the old key" : "");
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int bad = w < 0 || (size_t)w != len || fsync(fd) != 0;
    int e = errno;
    close(fd);
    if (bad) {
        unlink(path);
        return agora__error_set(err, AGORA__ERR(e), "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

int agora__keygen_files(const char *prefix, const char *pass, size_t passlen, agora__pubkey *pub,
                        agora__error *err)
{
    char key_path[4096], pub_path[4096];
    int rc = agora__path(key_path, sizeof key_path, err, "%s.key", prefix);
    if (rc == 0)
        rc = agora__path(pub_path, sizeof pub_path, err, "%s.pub", prefix);
    if (rc != 0)
        return rc;
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    /* `--out ~/keys/vendor` on a fresh machine: make ~/keys (0700, it holds a secret). Existing
     * directories keep their mode. */
    char parent[4096];
    agora__strlcpy(parent, key_path, sizeof parent);
    char *slash = strrchr(parent, '/');
    if (slash != NULL && slash != parent) {
        *slash = '\0';
        struct stat st;
        if (stat(parent, &st) != 0) {
            rc = agora__mkdirs(parent, 0700, err);
            if (rc != 0)
                return rc;
        } else if (!S_ISDIR(st.st_mode)) {
            return agora__error_set(err, AGORA_EINVAL,
                                    "%s is not a directory; choose another --out", parent);
        }
    }
    agora__seckey sk;
    crypto_sign_keypair(sk.pub.pk, sk.sk);
    agora__key_id(sk.pub.pk, sk.pub.id);
    char line[1024];
    char seed_hex[65];
    if (pass == NULL) {
        agora__hex(sk.sk, 32, seed_hex);
        snprintf(line, sizeof line, SEC_MAGIC " v1 ed25519 %s plain %s\n", sk.pub.id, seed_hex);
    } else {
        uint8_t salt[crypto_pwhash_SALTBYTES], nonce[crypto_secretbox_NONCEBYTES];
        uint8_t box_key[32], ct[32 + crypto_secretbox_MACBYTES];
        unsigned long long ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        size_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
        randombytes_buf(salt, sizeof salt);
        randombytes_buf(nonce, sizeof nonce);
        rc = derive_box_key(box_key, pass, passlen, salt, ops, mem, err);
        if (rc != 0) {
            agora__seckey_wipe(&sk);
            return rc;
        }
        crypto_secretbox_easy(ct, sk.sk, 32, nonce, box_key);
        sodium_memzero(box_key, sizeof box_key);
        char salt_hex[2 * sizeof salt + 1], nonce_hex[2 * sizeof nonce + 1],
            ct_hex[2 * sizeof ct + 1];
        agora__hex(salt, sizeof salt, salt_hex);
        agora__hex(nonce, sizeof nonce, nonce_hex);
        agora__hex(ct, sizeof ct, ct_hex);
        snprintf(line, sizeof line, SEC_MAGIC " v1 ed25519 %s argon2id13 %llu %zu %s %s %s\n",
                 sk.pub.id, ops, mem, salt_hex, nonce_hex, ct_hex);
    }
    *pub = sk.pub;
    agora__seckey_wipe(&sk);
    sodium_memzero(seed_hex, sizeof seed_hex);
    rc = write_excl(key_path, line, 0600, err);
    sodium_memzero(line, sizeof line);
    if (rc != 0)
        return rc;
    char pub_line[256];
    agora__pubkey_format(pub, pub_line, sizeof pub_line);
    rc = write_excl(pub_path, pub_line, 0644, err);
    if (rc != 0)
        unlink(key_path);
    return rc;
}

static int seckey_parse(char *copy, size_t len, const char *pass, size_t passlen,
                        agora__seckey *out, agora__error *err)
{
    char *tok[12];
    int n = tokens(copy, len, tok, 12);
    uint8_t seed[32];
    if (n < 6 || strcmp(tok[0], SEC_MAGIC) != 0 || strcmp(tok[1], "v1") != 0 ||
        strcmp(tok[2], "ed25519") != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "not an Agora secret key; use the .key file from agora keygen");
    if (strcmp(tok[4], "plain") == 0) {
        if (n != 6 || hex_exact(tok[5], seed, 32) != 0)
            return agora__error_set(err, AGORA_EINVAL, "malformed secret key file");
    } else if (strcmp(tok[4], "argon2id13") == 0) {
        uint8_t salt[crypto_pwhash_SALTBYTES], nonce[crypto_secretbox_NONCEBYTES];
        uint8_t ct[32 + crypto_secretbox_MACBYTES], box_key[32];
        char *end1, *end2;
        if (n != 10)
            return agora__error_set(err, AGORA_EINVAL, "malformed encrypted secret key file");
        unsigned long long ops = strtoull(tok[5], &end1, 10);
        unsigned long long mem = strtoull(tok[6], &end2, 10);
        if (*end1 != '\0' || *end2 != '\0' || ops < crypto_pwhash_OPSLIMIT_MIN || ops > OPS_MAX ||
            mem < crypto_pwhash_MEMLIMIT_MIN || mem > MEM_MAX ||
            hex_exact(tok[7], salt, sizeof salt) != 0 ||
            hex_exact(tok[8], nonce, sizeof nonce) != 0 || hex_exact(tok[9], ct, sizeof ct) != 0)
            return agora__error_set(err, AGORA_EINVAL, "malformed encrypted secret key file");
        if (pass == NULL)
            return agora__error_set(err, AGORA_EINVAL,
                                    "the key is encrypted; pass --passphrase-file FILE");
        int rc = derive_box_key(box_key, pass, passlen, salt, ops, (size_t)mem, err);
        if (rc != 0)
            return rc;
        rc = crypto_secretbox_open_easy(seed, ct, sizeof ct, nonce, box_key);
        sodium_memzero(box_key, sizeof box_key);
        if (rc != 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "wrong passphrase for the encrypted key (or the file is "
                                    "corrupted)");
    } else {
        return agora__error_set(err, AGORA_EINVAL, "unknown secret key protection '%.16s'", tok[4]);
    }
    crypto_sign_seed_keypair(out->pub.pk, out->sk, seed);
    sodium_memzero(seed, sizeof seed);
    agora__key_id(out->pub.pk, out->pub.id);
    if (strcmp(tok[3], out->pub.id) != 0) {
        agora__seckey_wipe(out);
        return agora__error_set(err, AGORA_EINVAL,
                                "secret key file names key id %.16s but holds another key; the "
                                "file is corrupted",
                                tok[3]);
    }
    return 0;
}

int agora__seckey_read(const char *path, const char *pass, size_t passlen, agora__seckey *out,
                       agora__error *err)
{
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINTERNAL, "libsodium failed to initialise");
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "%s is readable by other users; run chmod 600 %s", path, path);
    uint8_t *buf;
    size_t len;
    int rc = agora__read_file(path, KEY_FILE_MAX, &buf, &len, err);
    if (rc != 0)
        return rc;
    char copy[KEY_FILE_MAX + 1];
    memcpy(copy, buf, len);
    copy[len] = '\0';
    sodium_memzero(buf, len);
    free(buf);
    rc = seckey_parse(copy, len, pass, passlen, out, err);
    sodium_memzero(copy, sizeof copy);
    if (rc != 0)
        agora__error_prefix(err, "%s", path);
    return rc;
}

void agora__sig_format(const agora__pubkey *signer, const uint8_t sig[64], char *buf, size_t size)
{
    char hex[129];
    agora__hex(sig, 64, hex);
    snprintf(buf, size, SIG_MAGIC " v1 ed25519 %s %s\n", signer->id, hex);
}

int agora__sig_parse(const uint8_t *buf, size_t len, char key_id[AGORA__KEY_ID_HEX],
                     uint8_t sig[64], agora__error *err)
{
    char copy[AGORA__SIG_TEXT_MAX + 1];
    char *tok[6];
    if (len > AGORA__SIG_TEXT_MAX)
        return agora__error_set(err, AGORA_EINVAL, "signature file is not an Agora signature");
    memcpy(copy, buf, len);
    copy[len] = '\0';
    int n = tokens(copy, len, tok, 6);
    if (n != 5 || strcmp(tok[0], SIG_MAGIC) != 0 || strcmp(tok[1], "v1") != 0 ||
        strcmp(tok[2], "ed25519") != 0 || strlen(tok[3]) != 16 ||
        strspn(tok[3], "0123456789abcdef") != 16 || hex_exact(tok[4], sig, 64) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "signature file is not an Agora signature (expected '" SIG_MAGIC
                                " v1 ed25519 KEYID HEX')");
    memcpy(key_id, tok[3], AGORA__KEY_ID_HEX);
    return 0;
}
