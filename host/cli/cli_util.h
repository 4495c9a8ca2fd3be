/* Helpers the trust commands share (keygen, pack, certify, revoke, catalog, init, sync, install,
 * list, remove, clinic). CLI code: they print. */
#ifndef AGORA_CLI_UTIL_H
#define AGORA_CLI_UTIL_H

#include <stdio.h>

#include "opt.h"
#include "trust.h"

/* The clinic home of a command that reads it in place (no agora__trust_home_open): --home DIR,
 * else AGORA_HOME, else $XDG_DATA_HOME/agora, else ~/.local/share/agora, the resolution every
 * clinic command shares. Writes the path into out; 0, or 1 (the exit status) after printing
 * what was wrong: no home at all, or one that is not a directory (create it with agora init). */
int agora__cli_home(const char *cmd, const char *dir, char *out, size_t size);

/* A decimal number 1..max, digits only (no sign, space or suffix): 0 with *out, or -1. */
int agora__cli_number(const char *text, uint64_t max, uint64_t *out);
/* A --timeout value: NULL leaves *out as it is; else 1..AGORA__CLI_SECONDS_MAX seconds into *out.
 * 0, or 2 (the exit status) after a usage error naming the option. */
#define AGORA__CLI_SECONDS_MAX 86400u
int agora__cli_seconds(const char *cmd, const char *opt, const char *text, uint32_t *out);

/* run and dev run: parse argv against desc and its table, then the --timeout text the table
 * filled (*timeout, NULL when not given) into *timeout_s. 1 to go on, with *n_inputs INPUTs in
 * argv[1..]; else 0 with *status the exit status (the table's lists freed). */
int agora__cli_parse_job(const agora__cli_cmd *desc, const agora__cli_opt *opts, size_t n_opts,
                         int argc, char **argv, const char *const *timeout, uint32_t *timeout_s,
                         size_t *n_inputs, int *status);

/* Print "agora CMD: <err msg>" to stderr and return 1. */
int agora__fail(const char *cmd, const agora__error *err);
/* Read a passphrase file when path is not NULL (buf gets it), else leave *len = 0. */
int agora__load_seckey(const char *key_path, const char *pass_path, agora__seckey *key,
                       agora__error *err);

/* 1 when w names a PS3.15 option (the deprecated `--grant A B` spelling's continuation test). */
int agora__cli_option_word(const char *w);
/* Map option names (each value may hold several, comma-separated) to AGORA__OPT_* bits; 2 after
 * printing "agora CMD: 'X' is not WHAT; use ..." for an unknown name. */
int agora__cli_option_bits(const char *cmd, const char *what, const char **vals, size_t n,
                           uint32_t *bits);

/* The --asset NAME=FILE values of pack and dev run, checked against the manifest's "assets":
 * each NAME declared there and given once, every declared asset given. names[i] receives a copy
 * of the name, files[i] points into args[i]. 0, or AGORA_EINVAL/AGORA_ELIMIT with err saying
 * what to change (the caller prints it with agora__fail). */
int agora__cli_assets(const agora__manifest *m, const char *const *args, size_t n,
                      char (*names)[AGORA__ASSET_NAME_MAX + 1], const char **files,
                      agora__error *err);

/* A list of input paths (strdup'ed, owned by the list) gathered from FILE|DIR arguments. */
#define AGORA__CLI_MAX_FILES 1000000u
#define AGORA__CLI_MAX_DEPTH 16
typedef struct agora__cli_files {
    char **paths;
    size_t n, cap;
} agora__cli_files;
/* Append a copy of path; -1 when full (AGORA__CLI_MAX_FILES) or out of memory. */
int agora__cli_files_add(agora__cli_files *l, const char *path);
/* Append path if it is a regular file, or every regular file under it (sorted per folder,
 * hidden entries skipped, at most AGORA__CLI_MAX_DEPTH levels). 0 or an error in err. */
int agora__cli_files_collect(agora__cli_files *l, const char *path, int depth, agora__error *err);
void agora__cli_files_free(agora__cli_files *l);

/* HOST:PORT or [V6]:PORT: host copied into host (NUL-terminated), port 1..65535. 0 or -1. */
int agora__cli_host_port(const char *s, char *host, size_t host_size, int *port);
/* AE@HOST:PORT (a destination): the AE title (1..ae_size-1 bytes, checked by its user) copied
 * into ae, then as agora__cli_host_port. 0 or -1. */
int agora__cli_ae_host_port(const char *s, char *ae, size_t ae_size, char *host, size_t host_size,
                            int *port);

#endif
