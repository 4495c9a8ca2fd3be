/*
 * `agora dataset export|verify`: de-identified datasets as a product (issue 16).
 *
 * export: the inputs go through the same sandboxed PS3.15 de-identification as `agora deid`
 * (agora__deid_run, deid_run.h) into DIR/files/<pseudonymous SOP Instance UID>.dcm; then
 * DIR/manifest.json (canonical JSON: sorted keys, compact, ASCII) lists every file's relative
 * path, size and sha256, the PS3.15 options applied, the clinic (its signing key), the
 * recipient's key, the purpose and the data-use terms, and DIR/manifest.sig holds the clinic's
 * Ed25519 signature over those exact bytes (HOME/clinic.key, the key ledger exports are
 * signed with). The export is one metered ledger row (plugin id "agora.dataset", billing units
 * the exported instances) so `agora usage`, `agora ledger` and `agora statement` show it.
 *
 * verify: the signature (against --clinic-key, else the key the manifest names: then only
 * integrity, not origin, is shown), then every listed file's size and sha256, and no file in
 * DIR that the manifest does not list. Every problem is reported, naming the file.
 *
 * The manifest never holds a real UID, name or date of the inputs: file names are pseudonyms,
 * the --study values are not written.
 */
#include "audit.h"
#include "commands.h"
#include "deid_run.h"
#include "json_emit.h"
#include "opt.h"
#include "ledger.h"
#include "trust.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DATASET_FORMAT     "agora-dataset v1"
#define DATASET_PLUGIN_ID  "agora.dataset"
#define DATASET_VENDOR     "agora-platform"
#define MANIFEST_NAME      "manifest.json"
#define SIG_NAME           "manifest.sig"
#define FILES_DIR          "files"
#define MAX_MANIFEST_BYTES ((size_t)64 << 20) /* 100,000 entries of ~200 bytes, with room */
#define MAX_TERMS_BYTES    ((size_t)64 << 10)
#define MAX_PURPOSE        64
#define MAX_DATASET_FILES  AGORA__LEDGER_MAX_UNITS /* one billing unit per instance */
#define DEFAULT_TERMS                                                                              \
    "The recipient uses this de-identified dataset only for the stated purpose, makes no "         \
    "attempt to re-identify any person, and does not pass it on."

/* ---- file names and hashing ---------------------------------------------------------------- */

/* A name the export writes: <UID>.dcm, digits and dots only (so a hostile manifest cannot point
 * outside DIR/files). */
static int file_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 5 || n > 64 + 4 || strcmp(name + n - 4, ".dcm") != 0)
        return 0;
    for (size_t i = 0; i < n - 4; i++)
        if (!(name[i] == '.' || (name[i] >= '0' && name[i] <= '9')))
            return 0;
    return name[0] != '.';
}

static int sha256_file(const char *path, uint8_t out[32], uint64_t *size, agora__error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return agora__error_set(err, AGORA_EINVAL, "%s is not a regular file", path);
    }
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    static uint8_t buf[1 << 16];
    uint64_t total = 0;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return agora__error_set(err, AGORA__ERR(e), "%s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        crypto_hash_sha256_update(&h, buf, (size_t)r);
        total += (uint64_t)r;
    }
    close(fd);
    crypto_hash_sha256_final(&h, out);
    *size = total;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir (no hidden ones), sorted; *names malloc'ed, each strdup'ed. At most max. */
static int list_dir(const char *dir, size_t max, char ***names, size_t *n, agora__error *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return agora__error_set(err, AGORA__ERR(errno), "cannot list %s: %s", dir, strerror(errno));
    size_t cap = 0;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (*n >= max) {
            rc = agora__error_set(err, AGORA_ELIMIT, "%s holds more than %zu entries", dir, max);
            break;
        }
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **p = realloc(*names, ncap * sizeof *p);
            if (p == NULL) {
                rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
                break;
            }
            *names = p;
            cap = ncap;
        }
        (*names)[*n] = strdup(de->d_name);
        if ((*names)[*n] == NULL)
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory");
        else
            (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(*names, *n, sizeof **names, cmp_str);
    return rc;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void pub_json(json_t *obj, const char *key, const agora__pubkey *pub)
{
    char hex[65];
    agora__hex(pub->pk, 32, hex);
    json_object_set_new(obj, key, json_pack("{s:s,s:s}", "key_id", pub->id, "public_key", hex));
}

/* ---- export -----------------------------------------------------------------------------------
 */

typedef struct export_opts {
    const char *out, *purpose, *recipient, *terms, *secret;
    agora__cli_list studies, keep;
    int allow_burned_in, defined_lengths, json, quiet;
} export_opts;

static int purpose_valid(const char *p)
{
    size_t n = strlen(p);
    return n > 0 && n <= MAX_PURPOSE && p[0] != '-' &&
           strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* DIR must be new or empty: a dataset is one export, never merged into another. */
static int fresh_dir(const char *dir, agora__error *err)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT)
            return agora__mkdirs(dir, 0755, err);
        return agora__error_set(err, AGORA__ERR(errno), "cannot open %s: %s", dir, strerror(errno));
    }
    struct dirent *de;
    int empty = 1;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    if (!empty)
        return agora__error_set(err, AGORA__EEXIST,
                                "%s is not empty; choose a new -o directory for each export", dir);
    return 0;
}

/* The terms: --terms FILE (UTF-8 text, at most 64 KiB), else the default above. *text is
 * malloc'ed. */
static int read_terms(const char *path, char **text, agora__error *err)
{
    if (path == NULL) {
        *text = strdup(DEFAULT_TERMS);
        return *text ? 0 : agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = agora__read_file(path, MAX_TERMS_BYTES, &buf, &len, err);
    if (rc != 0)
        return agora__error_prefix(err, "--terms (a text file of at most %zu bytes)",
                                   MAX_TERMS_BYTES);
    json_t *probe = json_stringn((const char *)buf, len); /* NULL unless valid UTF-8, no NUL */
    if (probe == NULL || memchr(buf, '\0', len) != NULL) {
        json_decref(probe);
        free(buf);
        return agora__error_set(err, AGORA_EINVAL, "--terms %s is not UTF-8 text", path);
    }
    json_decref(probe);
    *text = malloc(len + 1);
    if (*text == NULL) {
        free(buf);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    }
    memcpy(*text, buf, len);
    (*text)[len] = '\0';
    free(buf);
    return 0;
}

/* Hash every written file into the manifest's "files" array; the pseudonymous SOP Instance
 * UIDs (file names less ".dcm") become the billing units. */
static int hash_files(const char *files_dir, json_t *arr, char ***units, size_t *n_units,
                      agora__error *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = list_dir(files_dir, MAX_DATASET_FILES, &names, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!file_name_valid(names[i])) {
            rc = agora__error_set(err, AGORA_EINTERNAL, "%s/%s: not a file the export wrote",
                                  files_dir, names[i]);
            break;
        }
        char path[4096];
        uint8_t h[32];
        uint64_t size = 0;
        char hex[65], rel[128];
        rc = agora__path(path, sizeof path, err, "%s/%s", files_dir, names[i]);
        if (rc == 0)
            rc = sha256_file(path, h, &size, err);
        if (rc != 0)
            break;
        agora__hex(h, 32, hex);
        snprintf(rel, sizeof rel, FILES_DIR "/%s", names[i]);
        json_array_append_new(
            arr, json_pack("{s:s,s:I,s:s}", "path", rel, "size", (json_int_t)size, "sha256", hex));
        names[i][strlen(names[i]) - 4] = '\0'; /* the unit: the pseudonymous UID */
    }
    if (rc != 0) {
        free_names(names, n);
        return rc;
    }
    *units = names;
    *n_units = n;
    return 0;
}

/* One ledger row for the export. There is no dataset product in the catalog: the row is priced
 * as a free line (model "free", units counted), vendor the platform (docs/clinic-guide.md). */
static int meter(const char *home, char **units, size_t n, char id[AGORA__LEDGER_ID_LEN + 1],
                 agora__error *err)
{
    agora__trust_home *th = NULL;
    int rc = agora__trust_home_open(home, &th, err);
    uint8_t key[32];
    agora__ledger *l = NULL;
    if (rc == 0)
        rc = agora__trust_derive_key(th, AGORA__KEY_BILLING, key) != 0
                 ? agora__error_set(err, AGORA_EINTERNAL, "cannot derive the billing key")
                 : 0;
    if (rc == 0)
        rc = agora__ledger_open(agora__trust_home_dir(th), key, &l, err);
    sodium_memzero(key, sizeof key);
    if (rc == 0)
        rc = agora__ledger_mint(id, err);
    if (rc == 0) {
        agora__ledger_pricing p = {DATASET_PLUGIN_ID, "1", DATASET_VENDOR, 0,
                                   AGORA__MODEL_FREE, 0,   "XXX",          0};
        agora__ledger_outcome o = {id, "ok", 1, (const char *const *)units, n, 0, 0, 0, &p};
        rc = agora__ledger_record(l, &o, NULL, err);
    }
    agora__ledger_close(l);
    agora__trust_home_close(th);
    return rc;
}

static int export_fail(const char *msg)
{
    fprintf(stderr, "agora dataset export: %s\n", msg);
    return 1;
}

static int do_export(export_opts *o, const char *const *inputs, size_t n_inputs)
{
    agora__error err = {0};
    if (!purpose_valid(o->purpose))
        return agora__cli_usage_error("dataset export",
                                      "--purpose must be 1..%d of a-z 0-9 '-' (research, "
                                      "teaching, quality-improvement ...)",
                                      MAX_PURPOSE);
    agora__pubkey recipient;
    if (agora__pubkey_read(o->recipient, &recipient, &err) != 0) {
        fprintf(stderr,
                "agora dataset export: --recipient %s: %s; pass the recipient's public "
                "key file (agora keygen makes one)\n",
                o->recipient, err.msg);
        return 1;
    }
    char *terms = NULL;
    if (read_terms(o->terms, &terms, &err) != 0)
        return export_fail(err.msg);
    char home[4096], files_dir[4096];
    int rc = agora__home_dir(NULL, home, sizeof home, &err);
    agora__trust_home *th = NULL;
    if (rc == 0)
        rc = agora__trust_home_open(home, &th, &err); /* an initialised clinic home, first */
    agora__trust_home_close(th);
    if (rc == 0)
        rc = fresh_dir(o->out, &err);
    if (rc == 0)
        rc = agora__path(files_dir, sizeof files_dir, &err, "%s/" FILES_DIR, o->out);
    if (rc != 0) {
        free(terms);
        return export_fail(err.msg);
    }
    agora__deid_request r = {
        .inputs = inputs,
        .n_inputs = n_inputs,
        .outdir = files_dir,
        .secret_path = o->secret,
        .keep = o->keep.v,
        .n_keep = o->keep.n,
        .studies = o->studies.v,
        .n_studies = o->studies.n,
        .allow_burned_in = o->allow_burned_in,
        .defined_lengths = o->defined_lengths,
        .quiet = o->quiet,
        .sync = 1,
        .who = "agora dataset export",
    };
    agora__deid_summary sum;
    rc = agora__deid_run(&r, &sum);
    if (rc != 0) {
        free(terms);
        return rc;
    }
    if (sum.failed || sum.refused) {
        free(terms);
        fprintf(stderr,
                "agora dataset export: %llu files failed and %llu were refused (above); no "
                "manifest was written, so %s is not a dataset; fix the inputs and export again "
                "into a new directory\n",
                (unsigned long long)sum.failed, (unsigned long long)sum.refused, o->out);
        return 1;
    }
    if (sum.written == 0) {
        free(terms);
        return export_fail("no DICOM instance of the inputs is in the --study selection; "
                           "nothing was exported");
    }

    json_t *files = json_array();
    char **units = NULL;
    size_t n_units = 0;
    char id[AGORA__LEDGER_ID_LEN + 1] = "";
    rc = hash_files(files_dir, files, &units, &n_units, &err);
    if (rc == 0)
        rc = meter(home, units, n_units, id, &err);
    free_names(units, n_units);
    if (rc != 0) {
        json_decref(files);
        free(terms);
        return export_fail(err.msg);
    }

    json_t *opts = json_array();
    for (int i = 0; i < AGORA__PS315_COUNT; i++)
        if (sum.options & (1u << i))
            json_array_append_new(opts, json_string(agora__ps315(i)->name));
    uint8_t th_hash[32];
    char terms_hex[65], created[AGORA__TIME_TEXT];
    agora__sha256(terms, strlen(terms), th_hash);
    agora__hex(th_hash, 32, terms_hex);
    agora__time_format(agora__trust_now(), created);
    json_t *m = json_pack(
        "{s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:s,s:o,s:b,s:b},s:o,s:I,s:s}", "format", DATASET_FORMAT,
        "created", created, "purpose", o->purpose, "terms", "text", terms, "sha256", terms_hex,
        "source", o->terms ? "file" : "default", "deidentification", "profile",
        "PS3.15 Annex E Basic Application Level Confidentiality Profile", "options", opts,
        "allow_burned_in", o->allow_burned_in, "defined_lengths", o->defined_lengths, "files",
        files, "instances", (json_int_t)n_units, "ledger_invocation", id);
    free(terms);
    pub_json(m, "recipient", &recipient);

    /* The clinic key (made when missing) is named in the manifest it signs. */
    char sig_line[AGORA__SIG_TEXT_MAX], key_id[AGORA__KEY_ID_HEX], pub_path[4096];
    int created_key = 0;
    agora__pubkey clinic;
    rc = agora__trust_clinic_key_ensure(home, &created_key, key_id, &err);
    if (rc == 0)
        rc = agora__home_path(home, AGORA__HOME_CLINIC_PUB, pub_path, sizeof pub_path, &err);
    if (rc == 0)
        rc = agora__pubkey_read(pub_path, &clinic, &err);
    char *bytes = NULL;
    if (rc == 0) {
        pub_json(m, "clinic", &clinic);
        bytes = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        if (bytes == NULL)
            rc = agora__error_set(&err, AGORA_ENOMEM, "out of memory");
    }
    if (rc == 0)
        rc = agora__trust_clinic_sign(home, (const uint8_t *)bytes, strlen(bytes), sig_line,
                                      sizeof sig_line, NULL, NULL, NULL, &err);
    char mpath[4096], spath[4096];
    if (rc == 0)
        rc = agora__path(mpath, sizeof mpath, &err, "%s/" MANIFEST_NAME, o->out);
    if (rc == 0)
        rc = agora__path(spath, sizeof spath, &err, "%s/" SIG_NAME, o->out);
    if (rc == 0)
        rc = agora__write_file_atomic(mpath, bytes, strlen(bytes), 0644, &err);
    if (rc == 0)
        rc = agora__write_file_atomic(spath, sig_line, strlen(sig_line), 0644, &err);
    if (rc == 0) {
        /* The audit names the export by ids only: the ledger row, the manifest's hash. */
        uint8_t mh[32];
        char mhex[65], what[256];
        agora__sha256(bytes, strlen(bytes), mh);
        agora__hex(mh, 32, mhex);
        snprintf(what, sizeof what, "ledger %s manifest sha256 %s recipient %s instances %zu", id,
                 mhex, recipient.id, n_units);
        rc = agora__audit_home(home, "dataset-export", "clinic", what, &err);
        if (rc != 0)
            agora__error_prefix(&err, "the dataset was written, but the audit log was not "
                                      "appended");
    }
    free(bytes);
    if (rc != 0) {
        json_decref(m);
        return export_fail(err.msg);
    }
    if (created_key)
        fprintf(stderr,
                "agora dataset export: made the clinic signing key %s (clinic.pub in the "
                "home: give it to recipients so they can check the dataset)\n",
                key_id);
    if (o->json) {
        json_t *j =
            json_pack("{s:b,s:s,s:I,s:I,s:s,s:s,s:s}", "ok", 1, "output", o->out, "instances",
                      (json_int_t)n_units, "bytes", (json_int_t)sum.bytes_out, "clinic_key", key_id,
                      "recipient_key", recipient.id, "ledger_invocation", id);
        json_decref(m);
        return agora__json_emit_new(stdout, j, AGORA__JSON_DOC) ? 1 : 0;
    }
    json_decref(m);
    printf("agora dataset export: %zu instances -> %s (manifest signed by clinic key %s, for "
           "recipient %s, purpose %s; ledger row %s)\n",
           n_units, o->out, key_id, recipient.id, o->purpose, id);
    return 0;
}

static int dataset_export(int argc, char **argv)
{
    export_opts o = {0};
    const agora__cli_opt opts[] = {
        {"--output", 'o', AGORA__CLI_VALUE, &o.out, "DIR", "write the dataset here (new or empty)",
         AGORA__CLI_REQUIRED, NULL, 0, 0},
        {"--study", 0, AGORA__CLI_LIST, &o.studies, "UID",
         "export only this study (repeatable; default: every instance of the inputs)", 0, NULL,
         AGORA__DEID_MAX_STUDIES, 0},
        {"--purpose", 0, AGORA__CLI_VALUE, &o.purpose, "WORD",
         "what the recipient may use it for: research, teaching, ...", AGORA__CLI_REQUIRED, NULL, 0,
         0},
        {"--recipient", 0, AGORA__CLI_VALUE, &o.recipient, "KEY.pub",
         "the recipient's public key (its fingerprint goes into the manifest)", AGORA__CLI_REQUIRED,
         NULL, 0, 0},
        {"--terms", 0, AGORA__CLI_VALUE, &o.terms, "FILE",
         "data-use terms (UTF-8 text, at most 64 KiB; default: the built-in terms)", 0, NULL, 0, 0},
        {"--keep", 0, AGORA__CLI_LIST, &o.keep, "OPTION",
         "apply a PS3.15 option, as agora deid --keep", 0, NULL, AGORA__PS315_COUNT, 0},
        {"--secret", 0, AGORA__CLI_VALUE, &o.secret, "FILE",
         "UID secret, as agora deid --secret (default: the clinic home's)", 0, NULL, 0, 0},
        AGORA__CLI_OPT_BURNED_IN(&o.allow_burned_in),
        {"--defined-lengths", 0, AGORA__CLI_FLAG, &o.defined_lengths, NULL,
         "encode sequences and items with explicit lengths", 0, NULL, 0, 0},
        AGORA__CLI_OPT_JSON(&o.json, "print the outcome as JSON"),
        AGORA__CLI_OPT_QUIET(&o.quiet),
    };
    const agora__cli_cmd cmd = {
        "dataset export",
        "INPUT... -o DIR --purpose WORD --recipient KEY.pub [--study UID]... [--terms FILE]\n"
        "                  [--keep OPTION]... [--secret FILE] [--allow-burned-in] [--json]",
        "De-identifies the inputs (PS3.15 Basic Profile, in the sandbox, as agora deid) into\n"
        "DIR/files/, writes DIR/manifest.json (every file's sha256, the options applied, the\n"
        "clinic, the recipient, the purpose and terms) and DIR/manifest.sig (the clinic's\n"
        "signature), and records the export in the ledger (AGORA_HOME: an initialised home).\n"
        "Check it with agora dataset verify DIR --clinic-key clinic.pub.",
        opts,
        AGORA__CLI_N(opts),
        1,
        SIZE_MAX,
        0};
    size_t n_pos;
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &st))
        return st;
    int rc = do_export(&o, (const char *const *)argv + 1, n_pos);
    agora__cli_lists_free(opts, AGORA__CLI_N(opts));
    return rc;
}

/* ---- verify ------------------------------------------------------------------------------------
 */

typedef struct verify_report {
    json_t *problems; /* [{file, problem}] */
    int json;
} verify_report;

__attribute__((format(printf, 3, 4))) static void problem(verify_report *v, const char *file,
                                                          const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_array_append_new(v->problems, json_pack("{s:s,s:s}", "file", file, "problem", msg));
    if (!v->json)
        fprintf(stderr, "agora dataset verify: %s: %s\n", file, msg);
}

/* The signature of the manifest bytes. 0 when it verifies; *signer gets the key id. */
static int check_signature(const char *dir, const uint8_t *mbytes, size_t mlen,
                           const json_t *manifest, const char *clinic_key, char *signer,
                           int *origin_checked, agora__error *err)
{
    char spath[4096];
    uint8_t *sbytes = NULL;
    size_t slen = 0;
    int rc = agora__path(spath, sizeof spath, err, "%s/" SIG_NAME, dir);
    if (rc == 0)
        rc = agora__read_file(spath, AGORA__SIG_TEXT_MAX, &sbytes, &slen, err);
    char key_id[AGORA__KEY_ID_HEX];
    uint8_t sig[64];
    if (rc == 0)
        rc = agora__sig_parse(sbytes, slen, key_id, sig, err);
    free(sbytes);
    if (rc != 0)
        return rc;
    agora__pubkey pub;
    *origin_checked = clinic_key != NULL;
    if (clinic_key != NULL) {
        rc = agora__pubkey_read(clinic_key, &pub, err);
        if (rc != 0)
            return rc;
    } else {
        const char *hex =
            json_string_value(json_object_get(json_object_get(manifest, "clinic"), "public_key"));
        if (hex == NULL || strlen(hex) != 64 || agora__unhex(hex, pub.pk, 32) != 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "the manifest names no clinic public key; pass --clinic-key");
        agora__key_id(pub.pk, pub.id);
    }
    if (strcmp(pub.id, key_id) != 0)
        return agora__error_set(err, AGORA_EINVAL, "signed by key %s, not by the clinic key %s",
                                key_id, pub.id);
    if (crypto_sign_verify_detached(sig, mbytes, mlen, pub.pk) != 0)
        return agora__error_set(err, AGORA_EINVAL,
                                "the signature does not verify: the manifest was changed after "
                                "the clinic signed it");
    memcpy(signer, key_id, AGORA__KEY_ID_HEX);
    return 0;
}

/* Every listed file: present, the size and sha256 the manifest says. Returns the count of
 * listed files; problems go to v. */
static size_t check_files(const char *dir, const json_t *files, verify_report *v)
{
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *rel = json_string_value(json_object_get(f, "path"));
        const char *want = json_string_value(json_object_get(f, "sha256"));
        json_t *size = json_object_get(f, "size");
        if (rel == NULL || want == NULL || !json_is_integer(size) ||
            strncmp(rel, FILES_DIR "/", sizeof FILES_DIR) != 0 ||
            !file_name_valid(rel + sizeof FILES_DIR)) {
            problem(v, rel ? rel : "?", "%s", "malformed manifest entry");
            continue;
        }
        char path[4096];
        agora__error err = {0};
        uint8_t h[32];
        uint64_t got_size = 0;
        char hex[65];
        if (agora__path(path, sizeof path, &err, "%s/%s", dir, rel) != 0 ||
            sha256_file(path, h, &got_size, &err) != 0) {
            problem(v, rel, "missing or unreadable (%s)", err.msg);
            continue;
        }
        agora__hex(h, 32, hex);
        if (got_size != (uint64_t)json_integer_value(size))
            problem(v, rel, "%s", "size differs from the manifest: the file was changed");
        else if (strcmp(hex, want) != 0)
            problem(v, rel, "%s", "sha256 differs from the manifest: the file was changed");
    }
    return json_array_size(files);
}

/* Nothing in DIR or DIR/files that the manifest does not list. */
static void check_extra(const char *dir, const json_t *files, verify_report *v)
{
    char **names = NULL;
    size_t n = 0;
    agora__error err = {0};
    if (list_dir(dir, MAX_DATASET_FILES + 3, &names, &n, &err) != 0) {
        problem(v, dir, "%s", err.msg);
        free_names(names, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], MANIFEST_NAME) != 0 && strcmp(names[i], SIG_NAME) != 0 &&
            strcmp(names[i], FILES_DIR) != 0)
            problem(v, names[i], "%s", "not listed in the manifest (an extra file)");
    free_names(names, n);
    char fdir[4096];
    if (agora__path(fdir, sizeof fdir, &err, "%s/" FILES_DIR, dir) != 0 ||
        list_dir(fdir, MAX_DATASET_FILES + 1, &names, &n, &err) != 0) {
        problem(v, FILES_DIR, "%s", err.msg);
        free_names(names, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char rel[4096];
        snprintf(rel, sizeof rel, FILES_DIR "/%s", names[i]);
        int listed = 0;
        size_t k;
        json_t *f;
        json_array_foreach(files, k, f)
        {
            const char *p = json_string_value(json_object_get(f, "path"));
            if (p != NULL && strcmp(p, rel) == 0) {
                listed = 1;
                break;
            }
        }
        if (!listed)
            problem(v, rel, "%s", "not listed in the manifest (an extra file)");
    }
    free_names(names, n);
}

static int dataset_verify(int argc, char **argv)
{
    const char *clinic_key = NULL;
    int json = 0;
    const agora__cli_opt opts[] = {
        {"--clinic-key", 0, AGORA__CLI_VALUE, &clinic_key, "PUB",
         "the exporting clinic's public key (clinic.pub); without it only integrity is shown", 0,
         NULL, 0, 0},
        AGORA__CLI_OPT_JSON(&json, "print the outcome as JSON"),
    };
    const agora__cli_cmd cmd = {"dataset verify",
                                "DIR [--clinic-key PUB] [--json]",
                                "Checks DIR/manifest.sig over DIR/manifest.json, then every "
                                "listed file's size and\nsha256, and that DIR holds no file the "
                                "manifest does not list. Exit 0 when all holds.",
                                opts,
                                AGORA__CLI_N(opts),
                                1,
                                1,
                                0};
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, NULL, &st))
        return st;
    const char *dir = argv[1];
    verify_report v = {json_array(), json};
    agora__error err = {0};
    char mpath[4096], signer[AGORA__KEY_ID_HEX] = "";
    uint8_t *mbytes = NULL;
    size_t mlen = 0;
    json_t *m = NULL;
    int origin = 0, sig_ok = 0;
    size_t listed = 0;
    if (agora__path(mpath, sizeof mpath, &err, "%s/" MANIFEST_NAME, dir) != 0 ||
        agora__read_file(mpath, MAX_MANIFEST_BYTES, &mbytes, &mlen, &err) != 0) {
        problem(&v, MANIFEST_NAME, "cannot read it (%s)", err.msg);
    } else if ((m = json_loadb((const char *)mbytes, mlen, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
               !json_is_array(json_object_get(m, "files")) ||
               !json_is_string(json_object_get(m, "format")) ||
               strcmp(json_string_value(json_object_get(m, "format")), DATASET_FORMAT) != 0) {
        problem(&v, MANIFEST_NAME, "%s", "not an " DATASET_FORMAT " manifest");
    } else if (json_array_size(json_object_get(m, "files")) > MAX_DATASET_FILES) {
        problem(&v, MANIFEST_NAME, "%s", "lists more files than an export writes");
    } else {
        if (check_signature(dir, mbytes, mlen, m, clinic_key, signer, &origin, &err) != 0)
            problem(&v, SIG_NAME, "%s", err.msg);
        else
            sig_ok = 1;
        listed = check_files(dir, json_object_get(m, "files"), &v);
        check_extra(dir, json_object_get(m, "files"), &v);
    }
    free(mbytes);
    size_t n_problems = json_array_size(v.problems);
    int ok = n_problems == 0;
    if (json) {
        json_t *j = json_pack("{s:b,s:b,s:b,s:s,s:I,s:O}", "ok", ok, "signature", sig_ok,
                              "origin_checked", origin, "signer", signer, "files",
                              (json_int_t)listed, "problems", v.problems);
        agora__json_emit_new(stdout, j, AGORA__JSON_DOC);
    } else if (ok) {
        printf("dataset ok: %zu files, manifest signed by %s%s\n", listed, signer,
               origin ? " (the --clinic-key)"
                      : " (the key the manifest names: pass --clinic-key "
                        "to check who signed)");
    } else {
        fprintf(stderr, "agora dataset verify: %zu problems; the dataset is not as signed\n",
                n_problems);
    }
    json_decref(v.problems);
    json_decref(m);
    return ok ? 0 : 1;
}

int agora__cmd_dataset(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"export", dataset_export, "de-identify studies into a signed, metered dataset"},
        {"verify", dataset_verify, "check a dataset's signature and every file's sha256"},
    };
    return agora__cli_dispatch("dataset", "De-identified datasets (PS3.15) as a product.", subs,
                               AGORA__CLI_N(subs), argc, argv);
}
