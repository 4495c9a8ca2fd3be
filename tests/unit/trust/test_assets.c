/* Assets (issue 10): names, the manifest's "assets", bundle format version 2 (streamed writer,
 * file reader, in-memory parser: every single-byte change refused), the catalog's pins, and the
 * sealed memfd an asset is verified into (no writable mapping, no write, no resize). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixtures.h"

static uint8_t elf[FIX_ELF_SIZE];
static agora__seckey vendor;
static char dir[256];
static const char manifest[] =
    "{\"id\": \"com.example.seg\", \"name\": \"Seg\", \"vendor\": \"Example\",\n"
    " \"version\": \"1.0.0\", \"abi\": \"1.1\", \"inputs\": {\"modalities\": [\"CT\"]},\n"
    " \"resources\": {\"memory_mb\": 64, \"time_s\": 60, \"threads\": 1},\n"
    " \"outputs\": [\"findings\"],\n"
    " \"assets\": [{\"name\": \"model.onnx\"}, {\"name\": \"labels_v2.txt\"}]}\n";
static const char (*names)[AGORA__ASSET_NAME_MAX + 1];
static char name_store[2][AGORA__ASSET_NAME_MAX + 1] = {"model.onnx", "labels_v2.txt"};
static char files[2][300];

static void write_file(const char *path, const void *data, size_t len)
{
    agora__error err = {0};
    if (agora__write_file_atomic(path, data, len, 0600, &err) != 0)
        fail_msg("%s", err.msg);
}

static int setup(void **state)
{
    (void)state;
    fix_elf(elf);
    if (sodium_init() < 0)
        return -1;
    crypto_sign_keypair(vendor.pub.pk, vendor.sk);
    agora__key_id(vendor.pub.pk, vendor.pub.id);
    fix_tmpdir(dir, sizeof dir);
    names = (const char(*)[AGORA__ASSET_NAME_MAX + 1])name_store;
    uint8_t model[3000];
    for (size_t i = 0; i < sizeof model; i++)
        model[i] = (uint8_t)(i * 7);
    snprintf(files[0], sizeof files[0], "%s/model.onnx", dir);
    snprintf(files[1], sizeof files[1], "%s/labels", dir);
    write_file(files[0], model, sizeof model);
    write_file(files[1], "background\nliver\n", 17);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fix_rmrf(dir);
    return 0;
}

static void test_names(void **state)
{
    (void)state;
    char max[AGORA__ASSET_NAME_MAX + 2];
    memset(max, 'a', sizeof max);
    max[AGORA__ASSET_NAME_MAX] = '\0';
    assert_true(agora__asset_name_valid("model.onnx"));
    assert_true(agora__asset_name_valid("A-b_c.9"));
    assert_true(agora__asset_name_valid(max));
    max[AGORA__ASSET_NAME_MAX] = 'a';
    max[AGORA__ASSET_NAME_MAX + 1] = '\0';
    assert_false(agora__asset_name_valid(max)); /* 129 bytes */
    const char *bad[] = {"", ".", "..", ".hidden", "a/b", "a b", "é.bin", "x\n", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] - 1; i++)
        assert_false(agora__asset_name_valid(bad[i]));
    assert_false(agora__asset_name_valid(NULL));
}

static void test_manifest(void **state)
{
    (void)state;
    agora__manifest m;
    agora__error err = {0};
    assert_int_equal(agora__manifest_parse((const uint8_t *)manifest, strlen(manifest), &m, &err),
                     0);
    assert_int_equal(m.n_assets, 2);
    assert_string_equal(m.assets[1], "labels_v2.txt");
    assert_int_equal(agora__manifest_asset_index(&m, "model.onnx"), 0);
    assert_int_equal(agora__manifest_asset_index(&m, "other"), -1);
    struct {
        const char *assets, *says;
    } bad[] = {
        {"[{\"name\": \"a\"}, {\"name\": \"a\"}]", "unique"},
        {"[{\"name\": \"../a\"}]", "assets[0].name"},
        {"[{\"name\": \"a\", \"url\": \"x\"}]", "assets[0].url"},
        {"[\"a\"]", "assets[0]"},
        {"{\"name\": \"a\"}", "manifest.assets"},
        {"[{\"name\": \"\"}]", "assets[0].name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[1024];
        const char *cut = strstr(manifest, "\"assets\"");
        int n = snprintf(buf, sizeof buf, "%.*s\"assets\": %s}\n", (int)(cut - manifest), manifest,
                         bad[i].assets);
        assert_int_not_equal(agora__manifest_parse((const uint8_t *)buf, (size_t)n, &m, &err), 0);
        if (strstr(err.msg, bad[i].says) == NULL)
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].assets, err.msg, bad[i].says);
    }
    /* 65 assets: over the bound. */
    char big[8192];
    size_t at = (size_t)snprintf(big, sizeof big, "%.*s\"assets\": [",
                                 (int)(strstr(manifest, "\"assets\"") - manifest), manifest);
    for (int i = 0; i < 65; i++)
        at += (size_t)snprintf(big + at, sizeof big - at, "%s{\"name\": \"a%d\"}", i ? "," : "", i);
    at += (size_t)snprintf(big + at, sizeof big - at, "]}\n");
    assert_int_not_equal(agora__manifest_parse((const uint8_t *)big, at, &m, &err), 0);
    assert_non_null(strstr(err.msg, "at most 64"));
}

static void write_v2(const char *out, const agora__seckey *signer, uint64_t *size)
{
    agora__error err = {0};
    const char *fv[2] = {files[0], files[1]};
    if (agora__bundle_write_assets(out, (const uint8_t *)manifest, strlen(manifest), elf,
                                   sizeof elf, names, fv, 2, signer, size, &err) != 0)
        fail_msg("write: %s", err.msg);
}

static void test_bundle_v2(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/b.agora", dir);
    uint64_t size;
    write_v2(path, &vendor, &size);
    assert_int_equal(size, 136 + 2 * 168 + strlen(manifest) + sizeof elf + 3000 + 17 + 104);
    agora__bundle_file bf;
    agora__error err = {0};
    assert_int_equal(agora__bundle_open(path, &bf, &err), 0);
    assert_int_equal(bf.b.format_version, 2);
    assert_int_equal(bf.b.is_signed, 1);
    assert_int_equal(bf.b.n_assets, 2);
    assert_string_equal(bf.b.assets[0].name, "model.onnx");
    assert_int_equal(bf.b.assets[0].size, 3000);
    assert_int_equal(bf.b.assets[1].size, 17);
    /* Streamed copy: the exact bytes, checked against the table. */
    char copy[300];
    snprintf(copy, sizeof copy, "%s/copy", dir);
    int fd = open(copy, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(agora__bundle_asset_copy(&bf, 1, fd, &err), 0);
    close(fd);
    uint8_t *got;
    size_t got_len;
    assert_int_equal(agora__read_file(copy, 100, &got, &got_len, &err), 0);
    assert_int_equal(got_len, 17);
    assert_memory_equal(got, "background\nliver\n", 17);
    free(got);
    assert_int_equal(agora__bundle_asset_copy(&bf, 0, -1, &err), 0);
    agora__bundle_close(&bf);

    /* Every single-byte change of the signed file is refused, in memory and from the file. */
    uint8_t *b;
    size_t len;
    assert_int_equal(agora__read_file(path, 1 << 20, &b, &len, &err), 0);
    agora__bundle out;
    assert_int_equal(agora__bundle_parse(b, len, &out, &err), 0);
    char flipped[300];
    snprintf(flipped, sizeof flipped, "%s/f.agora", dir);
    for (size_t i = 0; i < len; i++) {
        b[i] ^= 0x01;
        if (agora__bundle_parse(b, len, &out, &err) == 0)
            fail_msg("flip of byte %zu accepted in memory", i);
        /* From the file: a sample of positions in every section, and the asset bytes. */
        if (i % 97 == 0 || (i >= len - 3000 - 17 - 104 && i % 7 == 0)) {
            FILE *f = fopen(flipped, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(b, 1, len, f), len);
            fclose(f);
            int ok = agora__bundle_open(flipped, &bf, &err) == 0;
            for (uint32_t a = 0; ok && a < bf.b.n_assets; a++)
                ok = agora__bundle_asset_copy(&bf, a, -1, &err) == 0;
            if (ok)
                fail_msg("flip of byte %zu accepted from the file", i);
            agora__bundle_close(&bf);
        }
        b[i] ^= 0x01;
    }
    /* Truncated at every section boundary, and one trailing byte. */
    for (size_t cut = 0; cut < len; cut += 211)
        assert_int_not_equal(agora__bundle_parse(b, cut, &out, &err), 0);
    free(b);
}

static void test_write_refuses(void **state)
{
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/r.agora", dir);
    agora__error err = {0};
    uint64_t size;
    const char *fv[2] = {files[0], dir}; /* a directory is not an asset file */
    assert_int_not_equal(agora__bundle_write_assets(path, (const uint8_t *)manifest,
                                                    strlen(manifest), elf, sizeof elf, names, fv,
                                                    2, NULL, &size, &err),
                         0);
    assert_non_null(strstr(err.msg, "not a regular file"));
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* nothing left behind */
    char empty[300];
    snprintf(empty, sizeof empty, "%s/empty", dir);
    write_file(empty, "", 0);
    fv[1] = empty;
    assert_int_not_equal(agora__bundle_write_assets(path, (const uint8_t *)manifest,
                                                    strlen(manifest), elf, sizeof elf, names, fv,
                                                    2, NULL, &size, &err),
                         0);
    assert_non_null(strstr(err.msg, "1.."));
    /* A v1 build of a manifest that declares assets is refused (pack must pass them). */
    uint8_t *b;
    size_t len;
    assert_int_not_equal(agora__bundle_build((const uint8_t *)manifest, strlen(manifest), elf,
                                             sizeof elf, NULL, &b, &len, &err),
                         0);
    assert_non_null(strstr(err.msg, "--asset"));
}

static void test_sealed_memfd(void **state)
{
    (void)state;
    agora__asset a;
    agora__error err = {0};
    assert_int_equal(agora__asset_load_file(files[0], "model.onnx", NULL, 0, &a, &err), 0);
    assert_int_equal(a.size, 3000);
    int seals = fcntl(a.fd, F_GET_SEALS);
    int need = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL;
    assert_int_equal(seals & need, need);
    /* No writable view of any kind: new shared writable mapping, write, resize, mprotect. */
    assert_ptr_equal(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, a.fd, 0), MAP_FAILED);
    assert_int_equal(errno, EPERM);
    assert_int_equal(pwrite(a.fd, "x", 1, 0), -1);
    assert_int_equal(ftruncate(a.fd, 1), -1);
    assert_int_equal(ftruncate(a.fd, 1 << 20), -1);
    void *ro = mmap(NULL, 3000, PROT_READ, MAP_SHARED, a.fd, 0);
    assert_ptr_not_equal(ro, MAP_FAILED);
    assert_int_equal(mprotect(ro, 4096, PROT_READ | PROT_WRITE), -1);
    assert_int_equal(((const uint8_t *)ro)[7], 49); /* 7 * 7 */
    munmap(ro, 3000);
    /* Pinned: the right pin loads, a wrong hash or size is "tampered". */
    uint8_t pin[32];
    memcpy(pin, a.sha256, 32);
    agora__assets_close(&a, 1);
    assert_int_equal(a.fd, -1);
    assert_int_equal(agora__asset_load_file(files[0], "model.onnx", pin, 3000, &a, &err), 0);
    agora__assets_close(&a, 1);
    pin[31] ^= 1;
    assert_int_not_equal(agora__asset_load_file(files[0], "model.onnx", pin, 3000, &a, &err), 0);
    assert_non_null(strstr(err.msg, "tampered"));
    assert_int_equal(a.fd, -1);
    pin[31] ^= 1;
    assert_int_not_equal(agora__asset_load_file(files[0], "model.onnx", pin, 2999, &a, &err), 0);
    assert_non_null(strstr(err.msg, "tampered"));
    assert_int_not_equal(agora__asset_load_file(files[0], "../x", NULL, 0, &a, &err), 0);
}

static void test_catalog_pins(void **state)
{
    (void)state;
    agora__catalog c = {0};
    agora__error err = {0};
    c.version = 3;
    c.issued = 1700000000;
    c.expires = 1800000000;
    strcpy(c.key_id, "0123456789abcdef");
    agora__cat_entry *e = agora__catalog_add(&c, &err);
    assert_non_null(e);
    strcpy(e->id, "com.example.seg");
    strcpy(e->version, "1.0.0");
    strcpy(e->name, "Seg");
    strcpy(e->vendor, "Example");
    strcpy(e->level, "research");
    e->plugin_size = 256;
    e->manifest_size = 100;
    strcpy(e->pricing.model, "free");
    strcpy(e->pricing.currency, "XXX");
    e->n_assets = 2;
    strcpy(e->assets[0].name, "model.onnx");
    e->assets[0].size = (uint64_t)5 << 30; /* several GiB are representable */
    e->assets[0].sha[0] = 0xab;
    strcpy(e->assets[1].name, "labels.txt");
    e->assets[1].size = 17;
    char *text;
    size_t len;
    assert_int_equal(agora__catalog_serialize(&c, &text, &len, &err), 0);
    assert_non_null(strstr(text, "\"assets\""));
    agora__catalog back;
    assert_int_equal(agora__catalog_parse((const uint8_t *)text, len, &back, &err), 0);
    assert_int_equal(back.entries[0].n_assets, 2);
    assert_string_equal(back.entries[0].assets[0].name, "model.onnx");
    assert_int_equal(back.entries[0].assets[0].size, (uint64_t)5 << 30);
    assert_int_equal(back.entries[0].assets[0].sha[0], 0xab);
    assert_int_equal(back.entries[0].assets[1].size, 17);
    agora__catalog_free(&back);
    /* A repeated or invalid name is refused. */
    char *dupl = strdup(text);
    char *p = strstr(dupl, "labels.txt");
    memcpy(p, "model.onnx", 10);
    assert_int_not_equal(agora__catalog_parse((const uint8_t *)dupl, len, &back, &err), 0);
    free(dupl);
    /* An entry without assets serializes without the key (catalogs of older builds unchanged). */
    e->n_assets = 0;
    free(text);
    assert_int_equal(agora__catalog_serialize(&c, &text, &len, &err), 0);
    assert_null(strstr(text, "\"assets\""));
    free(text);
    agora__catalog_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),         cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_bundle_v2),     cmocka_unit_test(test_write_refuses),
        cmocka_unit_test(test_sealed_memfd),  cmocka_unit_test(test_catalog_pins),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
