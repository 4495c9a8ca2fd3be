/* Bundles, ELF header checks and key files: round trips, and that every truncation, every
 * single-byte change of a signed bundle, trailing bytes and oversize headers are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>
#include <sys/stat.h>

#include "fixtures.h"

static uint8_t elf[FIX_ELF_SIZE];
static char manifest[4096];
static size_t manifest_len;
static agora__seckey vendor;

static int setup(void **state)
{
    (void)state;
    fix_elf(elf);
    manifest_len = fix_manifest(manifest, sizeof manifest, "com.example.nodules", "1.0.0");
    if (sodium_init() < 0)
        return -1;
    crypto_sign_keypair(vendor.pub.pk, vendor.sk);
    agora__key_id(vendor.pub.pk, vendor.pub.id);
    return 0;
}

static void build(int signed_, uint8_t **b, size_t *len)
{
    agora__error err = {0};
    int rc = agora__bundle_build((const uint8_t *)manifest, manifest_len, elf, sizeof elf,
                                 signed_ ? &vendor : NULL, b, len, &err);
    if (rc != 0)
        fail_msg("build: %s", err.msg);
}

static void test_roundtrip(void **state)
{
    (void)state;
    for (int s = 0; s < 2; s++) {
        uint8_t *b;
        size_t len;
        build(s, &b, &len);
        assert_int_equal(len, 96 + manifest_len + sizeof elf + (s ? 104 : 0));
        agora__bundle out;
        agora__error err = {0};
        assert_int_equal(agora__bundle_parse(b, len, &out, &err), 0);
        assert_int_equal(out.is_signed, s);
        assert_int_equal(out.manifest_len, manifest_len);
        assert_memory_equal(out.manifest, manifest, manifest_len);
        assert_memory_equal(out.plugin, elf, sizeof elf);
        assert_string_equal(out.parsed.id, "com.example.nodules");
        if (s)
            assert_string_equal(out.vendor.id, vendor.pub.id);
        free(b);
    }
}

static void test_every_truncation_and_trailing(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    build(1, &b, &len);
    agora__bundle out;
    agora__error err;
    for (size_t n = 0; n < len; n++) {
        err.msg[0] = '\0';
        if (agora__bundle_parse(b, n, &out, &err) == 0)
            fail_msg("accepted a bundle truncated to %zu of %zu bytes", n, len);
        assert_non_null(strstr(err.msg, "truncated"));
    }
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, b, len);
    longer[len] = 0;
    assert_int_not_equal(agora__bundle_parse(longer, len + 1, &out, &err), 0);
    assert_non_null(strstr(err.msg, "trailing bytes"));
    free(longer);
    free(b);
}

/* Any single changed byte of a signed bundle is refused: the header is signed, the contents are
 * pinned by the header. */
static void test_every_byte_flip(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    build(1, &b, &len);
    agora__bundle out;
    agora__error err;
    for (size_t i = 0; i < len; i++) {
        b[i] ^= 0x20;
        if (agora__bundle_parse(b, len, &out, &err) == 0)
            fail_msg("accepted a bundle with byte %zu changed", i);
        b[i] ^= 0x20;
    }
    assert_int_equal(agora__bundle_parse(b, len, &out, &err), 0);
    free(b);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_header_limits(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    build(0, &b, &len);
    agora__bundle out;
    agora__error err;
    put64(b + 24, (uint64_t)AGORA__TRUST_PLUGIN_MAX + 1);
    assert_int_equal(agora__bundle_parse(b, len, &out, &err), AGORA_ELIMIT);
    put64(b + 24, UINT64_MAX);
    assert_int_equal(agora__bundle_parse(b, len, &out, &err), AGORA_ELIMIT);
    put64(b + 24, sizeof elf);
    put64(b + 16, (uint64_t)AGORA__TRUST_MANIFEST_MAX + 1);
    assert_int_equal(agora__bundle_parse(b, len, &out, &err), AGORA_ELIMIT);
    put64(b + 16, 0);
    assert_int_equal(agora__bundle_parse(b, len, &out, &err), AGORA_ELIMIT);
    put64(b + 16, manifest_len);
    b[12] = 7; /* signature section of a length that is neither 0 nor 104 */
    assert_int_not_equal(agora__bundle_parse(b, len, &out, &err), 0);
    b[12] = 0;
    b[8] = 3; /* format version (1 and 2 are read) */
    assert_int_equal(agora__bundle_parse(b, len, &out, &err), AGORA_EVERSION);
    b[8] = 1;
    b[0] = 'X';
    assert_int_not_equal(agora__bundle_parse(b, len, &out, &err), 0);
    assert_non_null(strstr(err.msg, "bad magic"));
    b[0] = 'A';
    assert_int_equal(agora__bundle_parse(b, len, &out, &err), 0);
    free(b);
}

static void test_build_refuses(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    agora__error err;
    uint8_t bad[FIX_ELF_SIZE];
    memcpy(bad, elf, sizeof bad);
    bad[18] = 183; /* EM_AARCH64 */
    assert_int_not_equal(agora__bundle_build((const uint8_t *)manifest, manifest_len, bad,
                                             sizeof bad, NULL, &b, &len, &err),
                         0);
    assert_non_null(strstr(err.msg, "x86_64"));
    /* A newer ABI minor than this host: refused. */
    char m2[4096];
    size_t m2_len = fix_manifest(m2, sizeof m2, "com.example.nodules", "1.0.0");
    char *abi = strstr(m2, "\"1.0\"");
    abi[3] = '9';
    assert_int_equal(
        agora__bundle_build((const uint8_t *)m2, m2_len, elf, sizeof elf, NULL, &b, &len, &err),
        AGORA_EVERSION);
}

static void test_elf_check(void **state)
{
    (void)state;
    agora__error err;
    uint8_t e[FIX_ELF_SIZE];
    assert_int_equal(agora__elf_check(elf, sizeof elf, &err), 0);
    assert_int_not_equal(agora__elf_check(elf, 63, &err), 0);
    memcpy(e, elf, sizeof e);
    e[EI_CLASS] = ELFCLASS32;
    assert_int_not_equal(agora__elf_check(e, sizeof e, &err), 0);
    memcpy(e, elf, sizeof e);
    e[16] = ET_EXEC;
    assert_int_not_equal(agora__elf_check(e, sizeof e, &err), 0);
    assert_non_null(strstr(err.msg, "not a shared object"));
    memcpy(e, elf, sizeof e);
    e[64] = PT_INTERP; /* a PIE executable is ET_DYN too, but has an interpreter */
    assert_int_not_equal(agora__elf_check(e, sizeof e, &err), 0);
    assert_non_null(strstr(err.msg, "executable"));
    memcpy(e, elf, sizeof e);
    e[56] = 200; /* e_phnum beyond the file */
    assert_int_not_equal(agora__elf_check(e, sizeof e, &err), 0);
    memcpy(e, elf, sizeof e);
    e[32] = 0xff; /* e_phoff beyond the file */
    e[33] = 0xff;
    assert_int_not_equal(agora__elf_check(e, sizeof e, &err), 0);
}

static void test_key_files(void **state)
{
    (void)state;
    char dir[512], prefix[600], path[700], pass_path[700];
    fix_tmpdir(dir, sizeof dir);
    agora__error err = {0};
    agora__pubkey pub, pub2;
    agora__seckey sk;

    snprintf(prefix, sizeof prefix, "%s/plain", dir);
    assert_int_equal(agora__keygen_files(prefix, NULL, 0, &pub, &err), 0);
    snprintf(path, sizeof path, "%s.key", prefix);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(agora__seckey_read(path, NULL, 0, &sk, &err), 0);
    assert_memory_equal(sk.pub.pk, pub.pk, 32);
    snprintf(path, sizeof path, "%s.pub", prefix);
    assert_int_equal(agora__pubkey_read(path, &pub2, &err), 0);
    assert_string_equal(pub2.id, pub.id);
    /* Never overwrite. */
    assert_int_not_equal(agora__keygen_files(prefix, NULL, 0, &pub2, &err), 0);

    /* Sign with the loaded key, verify with the public one. */
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)"x", 1, sk.sk);
    assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"x", 1, pub.pk), 0);

    /* Encrypted. */
    snprintf(prefix, sizeof prefix, "%s/enc", dir);
    assert_int_equal(agora__keygen_files(prefix, "s3cret", 6, &pub, &err), 0);
    snprintf(path, sizeof path, "%s.key", prefix);
    assert_int_not_equal(agora__seckey_read(path, NULL, 0, &sk, &err), 0);
    assert_non_null(strstr(err.msg, "--passphrase-file"));
    assert_int_not_equal(agora__seckey_read(path, "wrong", 5, &sk, &err), 0);
    assert_non_null(strstr(err.msg, "wrong passphrase"));
    assert_int_equal(agora__seckey_read(path, "s3cret", 6, &sk, &err), 0);
    assert_string_equal(sk.pub.id, pub.id);

    /* Passphrase file: first line only. */
    snprintf(pass_path, sizeof pass_path, "%s/pass", dir);
    FILE *f = fopen(pass_path, "w");
    assert_non_null(f);
    fputs("s3cret\nignored\n", f);
    fclose(f);
    char pass[64];
    size_t plen;
    assert_int_equal(agora__passphrase_read(pass_path, pass, sizeof pass, &plen, &err), 0);
    assert_int_equal(plen, 6);
    assert_string_equal(pass, "s3cret");

    /* A public key file whose id does not match its key is refused. */
    char line[256];
    agora__pubkey_format(&pub, line, sizeof line);
    line[30] = line[30] == 'a' ? 'b' : 'a'; /* inside the key id */
    assert_int_not_equal(agora__pubkey_parse((const uint8_t *)line, strlen(line), &pub2, &err), 0);
    assert_int_not_equal(agora__pubkey_parse((const uint8_t *)"hello\n", 6, &pub2, &err), 0);
    agora__seckey_wipe(&sk);
    fix_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_every_truncation_and_trailing),
        cmocka_unit_test(test_every_byte_flip),
        cmocka_unit_test(test_header_limits),
        cmocka_unit_test(test_build_refuses),
        cmocka_unit_test(test_elf_check),
        cmocka_unit_test(test_key_files),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
