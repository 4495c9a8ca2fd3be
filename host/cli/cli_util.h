/* Helpers the trust commands share (keygen, pack, certify, revoke, catalog, init, sync, install,
 * list, remove, clinic). CLI code: they print. */
#ifndef AGORA_CLI_UTIL_H
#define AGORA_CLI_UTIL_H

#include <stdio.h>

#include "trust_int.h"

/* Print "agora CMD: <err msg>" to stderr and return 1. */
int agora__fail(const char *cmd, const agora__error *err);
/* Print a JSON string literal (escaped) to f. */
void agora__json_str(FILE *f, const char *s);
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

#endif
