/* The receive spool (spool.h): files first, then the row. */
#include "spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "pdu.h"
#include "writer.h" /* the project's implementation class UID and version name */

#define SPOOL_PATH_MAX 4096

struct agora__spool {
    char dir[SPOOL_PATH_MAX];
    sqlite3 *db;
    sqlite3_stmt *has, *insert, *usage;
    uint64_t bytes, count, orphans;
    /* agora__spool_usage's cache: the database's totals at usage_at_ns, and bytes/count then. */
    uint64_t usage_bytes, usage_count, usage_own_bytes, usage_own_count, usage_at_ns;
    int reap_armed; /* agora__spool_reap was called once: it may reap from now on */
    uint64_t max_instance;
    uint8_t made[256];           /* in/HH known to exist */
    int64_t (*clock)(void *arg); /* NULL: the wall clock (tests inject one) */
    void *clock_arg;
};

struct agora__spool_txn {
    agora__spool *sp;
    int fd;
    char tmp[SPOOL_PATH_MAX];
    char rel[80]; /* in/HH/<sha>.dcm */
    char hh[3];
    uint64_t meta_len, data_len;
    crypto_hash_sha256_state sha;
    char sop_class[AGORA__PDU_UID_MAX + 1], sop_instance[AGORA__PDU_UID_MAX + 1];
    char ts[AGORA__PDU_UID_MAX + 1];
    char calling[AGORA__PDU_AE_MAX + 1], called[AGORA__PDU_AE_MAX + 1];
    const char *origin; /* static: "dimse" or "stow" */
};

/* Plain SQL types only, so the same text creates the tables in PostgreSQL. Version 1 is the
 * first slice's table; migrate() takes a version-1 spool to the current version in place. */
static const char schema_v1_sql[] =
    "CREATE TABLE IF NOT EXISTS spool_meta (k VARCHAR(32) PRIMARY KEY, v VARCHAR(64) NOT NULL);"
    "INSERT INTO spool_meta (k, v) VALUES ('format', 'agora.spool/1') ON CONFLICT (k) DO NOTHING;"
    "CREATE TABLE IF NOT EXISTS spool_instance ("
    " sop_instance_uid VARCHAR(64) PRIMARY KEY," /* as the C-STORE command / STOW part said */
    " sop_class_uid VARCHAR(64) NOT NULL,"
    " transfer_syntax_uid VARCHAR(64) NOT NULL,"
    " study_instance_uid VARCHAR(64),"  /* NULL until the sandboxed reader reads the file */
    " series_instance_uid VARCHAR(64)," /* likewise */
    " calling_ae VARCHAR(16) NOT NULL,"
    " called_ae VARCHAR(16) NOT NULL,"
    " path VARCHAR(96) NOT NULL,"  /* relative to the spool directory */
    " size_bytes BIGINT NOT NULL," /* of the file (meta group + data set) */
    " dataset_bytes BIGINT NOT NULL,"
    " dataset_sha256 CHAR(64) NOT NULL," /* of the data set bytes as received */
    " received_at_ms BIGINT NOT NULL,"   /* UTC, milliseconds since 1970 */
    " state VARCHAR(16) NOT NULL DEFAULT 'received')";

/* Version 2 (issue 12 intake, host/daemon/intake.h): what the sandboxed reader found in each
 * instance, its outcome (state received -> grouped | rejected), and the completion state of
 * studies and series. Additive only: a version-1 spool keeps every row. */
static const char migrate_v2_sql[] =
    "ALTER TABLE spool_instance ADD COLUMN origin VARCHAR(8) NOT NULL DEFAULT 'dimse';"
    "ALTER TABLE spool_instance ADD COLUMN ds_sop_class_uid VARCHAR(64);" /* the data set's */
    "ALTER TABLE spool_instance ADD COLUMN modality VARCHAR(16);"
    "ALTER TABLE spool_instance ADD COLUMN body_part VARCHAR(16);"
    "ALTER TABLE spool_instance ADD COLUMN slice_thickness DOUBLE PRECISION;" /* NULL: absent */
    "ALTER TABLE spool_instance ADD COLUMN n_frames INTEGER;"
    "ALTER TABLE spool_instance ADD COLUMN image_rows INTEGER;"
    "ALTER TABLE spool_instance ADD COLUMN image_columns INTEGER;"
    "ALTER TABLE spool_instance ADD COLUMN generation INTEGER;"   /* of its study, when grouped */
    "ALTER TABLE spool_instance ADD COLUMN grouped_at_ms BIGINT;" /* grouped or rejected at */
    "ALTER TABLE spool_instance ADD COLUMN reject_reason VARCHAR(32);"
    "ALTER TABLE spool_instance ADD COLUMN read_failures INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX IF NOT EXISTS spool_instance_by_state"
    " ON spool_instance (state, received_at_ms);"
    "CREATE INDEX IF NOT EXISTS spool_instance_by_study"
    " ON spool_instance (study_instance_uid, series_instance_uid);"
    "CREATE TABLE IF NOT EXISTS spool_study ("
    " study_instance_uid VARCHAR(64) PRIMARY KEY,"
    " study_key CHAR(16) NOT NULL,"      /* hex SHA-256 prefix: what listings show */
    " state VARCHAR(16) NOT NULL,"       /* receiving | complete | dispatched | held | discarded */
    " reason VARCHAR(16),"               /* complete: quiet | forced | operator */
    " generation INTEGER NOT NULL,"      /* 1, +1 per reopening after a dispatch */
    " first_arrival_ms BIGINT NOT NULL," /* of the current generation */
    " last_arrival_ms BIGINT NOT NULL,"
    " created_at_ms BIGINT NOT NULL," /* first arrival of generation 1 */
    " updated_at_ms BIGINT NOT NULL,"
    " dispatched_at_ms BIGINT,"
    " n_instances INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS spool_study_by_key ON spool_study (study_key);"
    "CREATE INDEX IF NOT EXISTS spool_study_by_state ON spool_study (state, last_arrival_ms);"
    "CREATE TABLE IF NOT EXISTS spool_series ("
    " study_instance_uid VARCHAR(64) NOT NULL,"
    " series_instance_uid VARCHAR(64) NOT NULL,"
    " generation INTEGER NOT NULL," /* of the study when its first instance arrived */
    " first_arrival_ms BIGINT NOT NULL,"
    " last_arrival_ms BIGINT NOT NULL,"
    " n_instances INTEGER NOT NULL,"
    /* routing attributes: the first grouped instance's (n_frames: the largest) */
    " modality VARCHAR(16) NOT NULL,"
    " body_part VARCHAR(16) NOT NULL,"
    " sop_class_uid VARCHAR(64) NOT NULL,"
    " slice_thickness DOUBLE PRECISION,"
    " n_frames INTEGER NOT NULL,"
    " image_rows INTEGER NOT NULL,"
    " image_columns INTEGER NOT NULL,"
    " calling_ae VARCHAR(16) NOT NULL,"
    " called_ae VARCHAR(16) NOT NULL,"
    " origin VARCHAR(8) NOT NULL,"
    " PRIMARY KEY (study_instance_uid, series_instance_uid));"
    "UPDATE spool_meta SET v = 'agora.spool/2' WHERE k = 'format';";

static int db_fail(sqlite3 *db, const char *what, agora__error *err)
{
    return agora__error_set(err, AGORA__EIO, "spool database: %s: %s", what,
                            db ? sqlite3_errmsg(db) : "out of memory");
}

/* The format row into buf ("" when absent). */
static int read_format(sqlite3 *db, char *buf, size_t size, agora__error *err)
{
    sqlite3_stmt *st = NULL;
    buf[0] = '\0';
    if (sqlite3_prepare_v2(db, "SELECT v FROM spool_meta WHERE k = 'format'", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(db, "reading the format", err);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
        agora__strlcpy(buf, (const char *)sqlite3_column_text(st, 0), size);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(db, "reading the format", err);
}

/* Create or migrate under one IMMEDIATE transaction, so that two processes opening a version-1
 * spool at once migrate it once. */
static int migrate(sqlite3 *db, agora__error *err)
{
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(db, "locking the spool for its schema", err);
    int rc = 0;
    char fmt[64];
    if (sqlite3_exec(db, schema_v1_sql, NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(db, "creating the schema", err);
    if (rc == 0)
        rc = read_format(db, fmt, sizeof fmt, err);
    if (rc == 0 && strcmp(fmt, "agora.spool/1") == 0 &&
        sqlite3_exec(db, migrate_v2_sql, NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(db, "migrating the spool to agora.spool/2", err);
    if (rc == 0)
        rc = read_format(db, fmt, sizeof fmt, err);
    if (rc == 0 && strcmp(fmt, AGORA__SPOOL_FORMAT) != 0)
        rc = agora__error_set(err, AGORA_EUNSUPPORTED,
                              "spool.db has an unknown format; use a matching agora");
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_fail(db, "committing the schema", err);
    if (rc != 0)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int agora__spool_db_open(const char *home, sqlite3 **db, char *dir, size_t dir_size,
                         agora__error *err)
{
    *db = NULL;
    char p[SPOOL_PATH_MAX];
    int rc = agora__home_path(home, AGORA__HOME_SPOOL, dir, dir_size, err);
    if (rc == 0)
        rc = agora__mkdirs(dir, 0700, err);
    const char *subs[] = {"in", "tmp", "spool.db"};
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        int n = snprintf(p, sizeof p, "%s/%s", dir, subs[i]);
        if (n < 0 || n >= (int)sizeof p)
            rc = agora__error_set(err, AGORA_ELIMIT, "spool path too long; use a shorter home");
        else if (i < 2)
            rc = agora__mkdirs(p, 0700, err);
    }
    if (rc == 0) {
        /* Created 0600 here so SQLite (and its -wal/-shm, which copy the mode) never widen it. */
        rc = agora__create_private_file(p, err);
    }
    if (rc != 0)
        return rc;
    if (sqlite3_open_v2(p, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        rc = db_fail(*db, "cannot open spool.db (check the home's permissions)", err);
    /* WAL + FULL: a committed row survives power loss. */
    if (rc == 0 && sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL,
                                NULL, NULL) != SQLITE_OK)
        rc = db_fail(*db, "setting WAL mode", err);
    if (rc == 0) {
        sqlite3_busy_timeout(*db, 10000);
        rc = migrate(*db, err);
    }
    if (rc != 0) {
        sqlite3_close(*db);
        *db = NULL;
    }
    return rc;
}

static int db_error(agora__spool *sp, const char *what, agora__error *err)
{
    return agora__error_set(err, AGORA__EIO, "spool database: %s: %s", what,
                            sp->db ? sqlite3_errmsg(sp->db) : "out of memory");
}

static int path_of(const agora__spool *sp, const char *rel, char *out, agora__error *err)
{
    int n = snprintf(out, SPOOL_PATH_MAX, "%s/%s", sp->dir, rel);
    if (n < 0 || n >= SPOOL_PATH_MAX)
        return agora__error_set(err, AGORA_ELIMIT, "spool path too long; use a shorter home");
    return 0;
}

static int fsync_dir(const char *path, agora__error *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return agora__error_set(err, AGORA__ERR(e), "cannot fsync the spool directory: %s",
                                strerror(e));
    }
    close(fd);
    return 0;
}

/* Files under in/ (orphans = files - rows: what a crash between rename and commit left). */
static uint64_t count_files(const char *in)
{
    uint64_t n = 0;
    DIR *d = opendir(in);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char sub[SPOOL_PATH_MAX];
        if (snprintf(sub, sizeof sub, "%s/%s", in, e->d_name) >= (int)sizeof sub)
            continue;
        DIR *s = opendir(sub);
        if (s == NULL)
            continue;
        struct dirent *f;
        while ((f = readdir(s)) != NULL)
            if (f->d_name[0] != '.')
                n++;
        closedir(s);
    }
    closedir(d);
    return n;
}

int agora__spool_open(const char *home, uint64_t max_instance_bytes, agora__spool **out,
                      agora__error *err)
{
    *out = NULL;
    if (sodium_init() < 0)
        return agora__error_set(err, AGORA_EINVAL, "libsodium failed to initialise");
    agora__spool *sp = calloc(1, sizeof *sp);
    if (sp == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory opening the spool");
    sp->max_instance = max_instance_bytes;
    char p[SPOOL_PATH_MAX];
    int rc = agora__spool_db_open(home, &sp->db, sp->dir, sizeof sp->dir, err);
    sqlite3_stmt *st = NULL;
    if (rc == 0 &&
        sqlite3_prepare_v2(sp->db,
                           "SELECT COALESCE(SUM(size_bytes), 0), COUNT(*) FROM spool_instance", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        sp->bytes = (uint64_t)sqlite3_column_int64(st, 0);
        sp->count = (uint64_t)sqlite3_column_int64(st, 1);
    } else if (rc == 0) {
        rc = db_error(sp, "summing the spool", err);
    }
    sqlite3_finalize(st);
    if (rc == 0 &&
        (sqlite3_prepare_v2(sp->db, "SELECT 1 FROM spool_instance WHERE sop_instance_uid = ?", -1,
                            &sp->has, NULL) != SQLITE_OK ||
         sqlite3_prepare_v2(sp->db,
                            "INSERT INTO spool_instance (sop_instance_uid, sop_class_uid,"
                            " transfer_syntax_uid, calling_ae, called_ae, path, size_bytes,"
                            " dataset_bytes, dataset_sha256, received_at_ms, origin)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                            " ON CONFLICT (sop_instance_uid) DO NOTHING",
                            -1, &sp->insert, NULL) != SQLITE_OK))
        rc = db_error(sp, "preparing statements", err);
    if (rc == 0 && path_of(sp, "in", p, err) == 0) {
        uint64_t files = count_files(p);
        sp->orphans = files > sp->count ? files - sp->count : 0;
    }
    if (rc != 0) {
        agora__spool_close(sp);
        return rc;
    }
    *out = sp;
    return 0;
}

void agora__spool_close(agora__spool *sp)
{
    if (sp == NULL)
        return;
    sqlite3_finalize(sp->has);
    sqlite3_finalize(sp->insert);
    sqlite3_finalize(sp->usage);
    sqlite3_close(sp->db);
    free(sp);
}

int agora__spool_usage(agora__spool *sp, uint64_t *bytes, uint64_t *count, agora__error *err)
{
    int rc = 0;
    uint64_t now = agora__now_ns();
    if (sp->usage_at_ns == 0 || now - sp->usage_at_ns >= AGORA__SPOOL_USAGE_TTL_MS * 1000000ull) {
        if (sp->usage == NULL &&
            sqlite3_prepare_v2(sp->db,
                               "SELECT COALESCE(SUM(size_bytes), 0), COUNT(*) FROM spool_instance",
                               -1, &sp->usage, NULL) != SQLITE_OK) {
            rc = db_error(sp, "reading the spool's usage", err);
        } else if (sqlite3_step(sp->usage) == SQLITE_ROW) {
            sp->usage_bytes = (uint64_t)sqlite3_column_int64(sp->usage, 0);
            sp->usage_count = (uint64_t)sqlite3_column_int64(sp->usage, 1);
            sp->usage_own_bytes = sp->bytes;
            sp->usage_own_count = sp->count;
            sp->usage_at_ns = now == 0 ? 1 : now;
        } else {
            rc = db_error(sp, "reading the spool's usage", err);
        }
        if (sp->usage != NULL)
            sqlite3_reset(sp->usage);
    }
    if (bytes != NULL)
        *bytes = sp->usage_bytes + (sp->bytes - sp->usage_own_bytes);
    if (count != NULL)
        *count = sp->usage_count + (sp->count - sp->usage_own_count);
    return rc;
}

/* ---- retention ---- */

typedef struct reap_study {
    char uid[AGORA__PDU_UID_MAX + 1];
    char state[16];
    int64_t updated;
} reap_study;

static int reap_candidates(agora__spool *sp, int64_t cutoff, reap_study *out, size_t *n,
                           agora__error *err)
{
    sqlite3_stmt *st = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(sp->db,
                           "SELECT study_instance_uid, state, updated_at_ms FROM spool_study"
                           " WHERE state IN ('dispatched', 'discarded') AND updated_at_ms <= ?1"
                           " ORDER BY updated_at_ms LIMIT ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(sp, "preparing the retention pass", err);
    sqlite3_bind_int64(st, 1, cutoff);
    sqlite3_bind_int(st, 2, (int)AGORA__SPOOL_REAP_MAX_STUDIES);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < AGORA__SPOOL_REAP_MAX_STUDIES) {
        const char *u = (const char *)sqlite3_column_text(st, 0);
        const char *stt = (const char *)sqlite3_column_text(st, 1);
        if (u == NULL || stt == NULL || strlen(u) > AGORA__PDU_UID_MAX)
            continue;
        snprintf(out[*n].uid, sizeof out[*n].uid, "%s", u);
        snprintf(out[*n].state, sizeof out[*n].state, "%s", stt);
        out[*n].updated = sqlite3_column_int64(st, 2);
        (*n)++;
    }
    sqlite3_finalize(st);
    return r == SQLITE_DONE || r == SQLITE_ROW ? 0 : db_error(sp, "the retention pass", err);
}

/* Remove one study's rows in one transaction (only if it is still as listed), then its files. */
static int reap_one(agora__spool *sp, const reap_study *c, agora__spool_reap_stats *rs,
                    agora__error *err)
{
    if (sqlite3_exec(sp->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_error(sp, "starting a retention transaction", err);
    char(*paths)[80] = NULL;
    size_t n = 0, cap = 0;
    uint64_t bytes = 0;
    int rc = 0, gone = 0;
    sqlite3_stmt *st = NULL;
    /* The study row first: a late instance (reopened), a state change or an update since the
     * candidate was listed leaves it in place. */
    if (sqlite3_prepare_v2(sp->db,
                           "DELETE FROM spool_study WHERE study_instance_uid = ?1 AND state = ?2"
                           " AND updated_at_ms = ?3",
                           -1, &st, NULL) != SQLITE_OK)
        rc = db_error(sp, "preparing a retention delete", err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, c->uid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c->state, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, c->updated);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = db_error(sp, "removing a study", err);
        else
            gone = sqlite3_changes(sp->db) > 0;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == 0 && gone &&
        sqlite3_prepare_v2(
            sp->db,
            "SELECT path, size_bytes FROM spool_instance WHERE study_instance_uid = ?1"
            " AND state = 'grouped'",
            -1, &st, NULL) != SQLITE_OK)
        rc = db_error(sp, "preparing a retention read", err);
    if (rc == 0 && gone) {
        sqlite3_bind_text(st, 1, c->uid, -1, SQLITE_STATIC);
        int r;
        while (rc == 0 && (r = sqlite3_step(st)) == SQLITE_ROW) {
            const char *p = (const char *)sqlite3_column_text(st, 0);
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                void *np = realloc(paths, nc * sizeof *paths);
                if (np == NULL) {
                    rc = agora__error_set(err, AGORA_ENOMEM, "out of memory for the retention");
                    break;
                }
                paths = np;
                cap = nc;
            }
            snprintf(paths[n], sizeof paths[n], "%s", p ? p : "");
            n++;
            bytes += (uint64_t)sqlite3_column_int64(st, 1);
        }
        if (rc == 0 && r != SQLITE_DONE)
            rc = db_error(sp, "reading a study's instances", err);
    }
    sqlite3_finalize(st);
    static const char *const del[2] = {
        "DELETE FROM spool_instance WHERE study_instance_uid = ?1 AND state = 'grouped'",
        "DELETE FROM spool_series WHERE study_instance_uid = ?1"};
    for (int i = 0; rc == 0 && gone && i < 2; i++) {
        st = NULL;
        if (sqlite3_prepare_v2(sp->db, del[i], -1, &st, NULL) != SQLITE_OK)
            rc = db_error(sp, "preparing a retention delete", err);
        else {
            sqlite3_bind_text(st, 1, c->uid, -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = db_error(sp, "removing a study's rows", err);
        }
        sqlite3_finalize(st);
    }
    if (rc == 0 && sqlite3_exec(sp->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = db_error(sp, "committing a retention", err);
    if (rc != 0) {
        sqlite3_exec(sp->db, "ROLLBACK", NULL, NULL, NULL);
        free(paths);
        return rc;
    }
    /* The rows are gone (durably): now the files. One that cannot be removed stays an orphan. */
    for (size_t i = 0; i < n; i++) {
        char full[SPOOL_PATH_MAX];
        agora__error ignored = {0};
        if (strncmp(paths[i], "in/", 3) != 0 || strstr(paths[i], "..") != NULL ||
            path_of(sp, paths[i], full, &ignored) != 0)
            continue;
        if (unlink(full) != 0 && errno == ENOENT)
            rs->files_missing++;
    }
    free(paths);
    if (gone) {
        rs->studies++;
        rs->instances += n;
        rs->bytes += bytes;
        sp->bytes = sp->bytes > bytes ? sp->bytes - bytes : 0;
        sp->count = sp->count > n ? sp->count - n : 0;
    }
    return 0;
}

int agora__spool_reap(agora__spool *sp, int64_t now_ms, uint64_t retention_ms,
                      agora__spool_study_jobs_fn study_jobs, void *arg,
                      agora__spool_reap_stats *stats, agora__error *err)
{
    agora__spool_reap_stats rs = {0};
    if (stats != NULL)
        *stats = rs;
    if (study_jobs == NULL)
        return agora__error_set(err, AGORA_EINVAL,
                                "the spool's retention needs the queue (to keep studies with "
                                "live jobs)");
    if (retention_ms < AGORA__SPOOL_RETENTION_MIN_MS || retention_ms > (uint64_t)INT64_MAX / 2)
        return agora__error_set(err, AGORA_EINVAL,
                                "the spool retention must be at least one hour (default 3 days)");
    if (!sp->reap_armed) {
        sp->reap_armed = 1;
        rs.armed = 1;
        if (stats != NULL)
            *stats = rs;
        return 0;
    }
    int64_t cutoff = now_ms - (int64_t)retention_ms;
    reap_study *cands = calloc(AGORA__SPOOL_REAP_MAX_STUDIES, sizeof *cands);
    if (cands == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for the retention");
    size_t n = 0;
    int rc = reap_candidates(sp, cutoff, cands, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t live = 0;
        int64_t last = 0;
        rc = study_jobs(arg, cands[i].uid, &live, &last, err);
        if (rc != 0)
            break;
        if (live > 0 || last > cutoff) {
            rs.kept_busy++;
            continue;
        }
        rc = reap_one(sp, &cands[i], &rs, err);
    }
    free(cands);
    if (rs.studies > 0)
        sp->usage_at_ns = 0; /* the watermark sees the space at once */
    if (stats != NULL)
        *stats = rs;
    return rc;
}

void agora__spool_usage_invalidate(agora__spool *sp)
{
    sp->usage_at_ns = 0;
}

uint64_t agora__spool_bytes(const agora__spool *sp)
{
    return sp->bytes;
}

uint64_t agora__spool_count(const agora__spool *sp)
{
    return sp->count;
}

uint64_t agora__spool_orphans(const agora__spool *sp)
{
    return sp->orphans;
}

int agora__spool_has(agora__spool *sp, const char *sop_instance, agora__error *err)
{
    sqlite3_reset(sp->has);
    sqlite3_bind_text(sp->has, 1, sop_instance, -1, SQLITE_STATIC);
    int rc = sqlite3_step(sp->has);
    sqlite3_reset(sp->has);
    sqlite3_clear_bindings(sp->has);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 0;
    return db_error(sp, "looking an instance up", err);
}

/* Part 10 file meta group (PS3.10 7.1), Explicit VR Little Endian. */
static size_t put_meta(uint8_t *o, uint16_t elem, const char vr[2], const char *v, char pad)
{
    size_t n = strlen(v), padded = n + (n & 1u);
    o[0] = 2;
    o[1] = 0;
    o[2] = (uint8_t)elem;
    o[3] = (uint8_t)(elem >> 8);
    o[4] = (uint8_t)vr[0];
    o[5] = (uint8_t)vr[1];
    o[6] = (uint8_t)padded;
    o[7] = (uint8_t)(padded >> 8);
    memcpy(o + 8, v, n);
    if (padded != n)
        o[8 + n] = (uint8_t)pad;
    return 8 + padded;
}

static size_t encode_meta(const agora__spool_txn *t, uint8_t *o /* >= 1024 */)
{
    memset(o, 0, 128);
    memcpy(o + 128, "DICM", 4);
    size_t at = 132;
    static const uint8_t group_len[8] = {2, 0, 0, 0, 'U', 'L', 4, 0};
    static const uint8_t version[14] = {2, 0, 1, 0, 'O', 'B', 0, 0, 2, 0, 0, 0, 0, 1};
    memcpy(o + at, group_len, 8);
    size_t len_at = at + 8;
    at += 12;
    memcpy(o + at, version, sizeof version);
    at += sizeof version;
    at += put_meta(o + at, 0x0002, "UI", t->sop_class, 0);
    at += put_meta(o + at, 0x0003, "UI", t->sop_instance, 0);
    at += put_meta(o + at, 0x0010, "UI", t->ts, 0);
    at += put_meta(o + at, 0x0012, "UI", AGORA__DEID_IMPL_CLASS_UID, 0);
    at += put_meta(o + at, 0x0013, "SH", AGORA__DEID_IMPL_VERSION, ' ');
    at += put_meta(o + at, 0x0016, "AE", t->calling, ' ');
    uint32_t g = (uint32_t)(at - len_at - 4);
    o[len_at] = (uint8_t)g;
    o[len_at + 1] = (uint8_t)(g >> 8);
    o[len_at + 2] = (uint8_t)(g >> 16);
    o[len_at + 3] = (uint8_t)(g >> 24);
    return at;
}

static int write_all(int fd, const void *p, size_t n, agora__error *err)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return agora__error_set(err, AGORA__ERR(w < 0 ? errno : EIO),
                                    "cannot write to the spool: %s", strerror(w < 0 ? errno : EIO));
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int agora__spool_begin(agora__spool *sp, const agora__spool_instance *inst, agora__spool_txn **out,
                       agora__error *err)
{
    *out = NULL;
    agora__spool_txn *t = calloc(1, sizeof *t);
    if (t == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory receiving an instance");
    t->sp = sp;
    t->fd = -1;
    agora__strlcpy(t->sop_class, inst->sop_class, sizeof t->sop_class);
    agora__strlcpy(t->sop_instance, inst->sop_instance, sizeof t->sop_instance);
    agora__strlcpy(t->ts, inst->transfer_syntax, sizeof t->ts);
    agora__strlcpy(t->calling, inst->calling_ae, sizeof t->calling);
    agora__strlcpy(t->called, inst->called_ae, sizeof t->called);
    /* Without an explicit origin, an empty called AE means STOW-RS: a DIMSE receipt always has
     * our AE title there (host/http/stow.h records calling "STOW", called ""). */
    if (inst->origin != NULL)
        t->origin = strcmp(inst->origin, "stow") == 0 ? "stow" : "dimse";
    else
        t->origin = inst->called_ae == NULL || inst->called_ae[0] == '\0' ? "stow" : "dimse";
    uint8_t h[32];
    char hex[65];
    agora__sha256(t->sop_instance, strlen(t->sop_instance), h);
    agora__hex(h, 32, hex);
    memcpy(t->hh, hex, 2);
    snprintf(t->rel, sizeof t->rel, "in/%.2s/%s.dcm", hex, hex);
    /* The temporary name must be unique in the process, not only in this handle: the DIMSE
     * listener and the STOW-RS thread each hold a spool handle on the same directory. A
     * process-wide counter makes the names distinct and O_EXCL makes a collision (a leftover of
     * an earlier process with our pid) an error rather than two receipts sharing one file. */
    static _Atomic unsigned long long tmp_seq;
    char rel[64];
    snprintf(rel, sizeof rel, "tmp/%ld-%llu.part", (long)getpid(), ++tmp_seq);
    int rc = path_of(sp, rel, t->tmp, err);
    if (rc == 0) {
        t->fd = open(t->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (t->fd < 0 && errno == EEXIST) {
            /* a leftover of an earlier process that had our pid: a fresh name */
            snprintf(rel, sizeof rel, "tmp/%ld-%llu-%u.part", (long)getpid(), ++tmp_seq,
                     (unsigned)randombytes_random());
            rc = path_of(sp, rel, t->tmp, err);
            if (rc == 0)
                t->fd = open(t->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        }
    }
    if (rc == 0) {
        if (t->fd < 0)
            rc = agora__error_set(err, AGORA__ERR(errno), "cannot create a spool file: %s",
                                  strerror(errno));
    }
    if (rc == 0) {
        uint8_t meta[1024];
        size_t n = encode_meta(t, meta);
        t->meta_len = n;
        rc = write_all(t->fd, meta, n, err);
    }
    crypto_hash_sha256_init(&t->sha);
    if (rc != 0) {
        agora__spool_abandon(t);
        return rc;
    }
    *out = t;
    return 0;
}

int agora__spool_write(agora__spool_txn *t, const void *p, size_t n, agora__error *err)
{
    if (n > t->sp->max_instance - t->data_len)
        return agora__error_set(err, AGORA_ELIMIT,
                                "an instance is larger than the limit of %llu bytes",
                                (unsigned long long)t->sp->max_instance);
    int rc = write_all(t->fd, p, n, err);
    if (rc == 0) {
        crypto_hash_sha256_update(&t->sha, p, n);
        t->data_len += n;
    }
    return rc;
}

void agora__spool_abandon(agora__spool_txn *t)
{
    if (t == NULL)
        return;
    if (t->fd >= 0)
        close(t->fd);
    if (t->tmp[0])
        unlink(t->tmp);
    free(t);
}

/* Wall-clock milliseconds since the epoch (UTC): a plain BIGINT in any SQL database. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ensure_subdir(agora__spool *sp, const agora__spool_txn *t, agora__error *err)
{
    unsigned idx = (unsigned)strtoul(t->hh, NULL, 16) & 0xFFu;
    if (sp->made[idx])
        return 0;
    char d[SPOOL_PATH_MAX], rel[8];
    snprintf(rel, sizeof rel, "in/%s", t->hh);
    int rc = path_of(sp, rel, d, err);
    if (rc != 0)
        return rc;
    if (mkdir(d, 0700) == 0) {
        char in[SPOOL_PATH_MAX];
        rc = path_of(sp, "in", in, err);
        if (rc == 0)
            rc = fsync_dir(in, err); /* the new directory's entry is durable too */
    } else if (errno != EEXIST) {
        return agora__error_set(err, AGORA__ERR(errno), "cannot create a spool directory: %s",
                                strerror(errno));
    }
    if (rc == 0)
        sp->made[idx] = 1;
    return rc;
}

int agora__spool_commit(agora__spool_txn *t, int *duplicate, agora__error *err)
{
    agora__spool *sp = t->sp;
    *duplicate = 0;
    int rc = agora__spool_has(sp, t->sop_instance, err);
    if (rc == 1) {
        /* Received twice (another association was faster): keep the first copy. */
        *duplicate = 1;
        agora__spool_abandon(t);
        return 0;
    }
    if (rc == 0 && fsync(t->fd) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot fsync a spool file: %s",
                              strerror(errno));
    if (rc == 0) {
        int fd = t->fd;
        t->fd = -1;
        if (close(fd) != 0)
            rc = agora__error_set(err, AGORA__ERR(errno), "cannot close a spool file: %s",
                                  strerror(errno));
    }
    char final[SPOOL_PATH_MAX], dir[SPOOL_PATH_MAX], rel[8];
    if (rc == 0)
        rc = ensure_subdir(sp, t, err);
    if (rc == 0)
        rc = path_of(sp, t->rel, final, err);
    if (rc == 0 && rename(t->tmp, final) != 0)
        rc = agora__error_set(err, AGORA__ERR(errno), "cannot move a spool file in place: %s",
                              strerror(errno));
    if (rc == 0) {
        t->tmp[0] = 0; /* renamed: nothing to unlink on failure below */
        snprintf(rel, sizeof rel, "in/%s", t->hh);
        rc = path_of(sp, rel, dir, err);
    }
    if (rc == 0)
        rc = fsync_dir(dir, err);
    uint8_t digest[32];
    char hex[65];
    crypto_hash_sha256_final(&t->sha, digest);
    agora__hex(digest, 32, hex);
    uint64_t size = t->meta_len + t->data_len;
    if (rc == 0) {
        sqlite3_stmt *s = sp->insert;
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, t->sop_instance, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, t->sop_class, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, t->ts, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, t->calling, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, t->called, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, t->rel, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 7, (sqlite3_int64)size);
        sqlite3_bind_int64(s, 8, (sqlite3_int64)t->data_len);
        sqlite3_bind_text(s, 9, hex, -1, SQLITE_STATIC);
        int64_t at = sp->clock ? sp->clock(sp->clock_arg) : now_ms();
        sqlite3_bind_int64(s, 10, (sqlite3_int64)at);
        sqlite3_bind_text(s, 11, t->origin, -1, SQLITE_STATIC);
        /* Autocommit: with synchronous=FULL the row is durable when step returns DONE. */
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = db_error(sp, "recording an instance", err);
        else if (sqlite3_changes(sp->db) == 0)
            *duplicate = 1;
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    if (rc == 0 && !*duplicate) {
        sp->bytes += size;
        sp->count++;
    }
    agora__spool_abandon(t);
    return rc;
}

void agora__spool_debug_clock(agora__spool *sp, int64_t (*clock)(void *arg), void *arg)
{
    sp->clock = clock;
    sp->clock_arg = arg;
}
