/* agora: the one command-line tool for developers, operators and clinics. */
#include <stdio.h>
#include <string.h>

#include "agora/agora.h"
#include "commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *who;
    const char *summary;
} command;

static const command commands[] = {
    {"dev", agora__cmd_dev, "developer", "dev new NAME | dev run --plugin FILE.so INPUT..."},
    {"dicom", agora__cmd_dicom, "developer", "dicom dump|pixels|synth: inspect and make DICOM"},
    {"deid", agora__cmd_deid, "clinic", "write de-identified DICOM (PS3.15 Basic Profile)"},
    {"dataset", agora__cmd_dataset, "clinic",
     "dataset export|verify: a signed, metered de-identified dataset"},
    {"keygen", agora__cmd_keygen, "all", "make an Ed25519 signing key pair"},
    {"pack", agora__cmd_pack, "developer", "pack a plugin and its manifest into a bundle"},
    {"certify", agora__cmd_certify, "operator", "certify a bundle into a signed catalog"},
    {"revoke", agora__cmd_revoke, "operator", "revoke a certified build"},
    {"catalog", agora__cmd_catalog, "operator",
     "catalog show|refresh DIR: print or re-sign a catalog"},
    {"root", agora__cmd_root, "operator", "root sign: publish a new root (who signs catalogs)"},
    {"keys", agora__cmd_keys, "operator", "keys rotate: replace the catalog-signing key"},
    {"init", agora__cmd_init, "clinic", "create a clinic home trusting an operator key"},
    {"sync", agora__cmd_sync, "clinic", "accept a newer signed catalog"},
    {"install", agora__cmd_install, "clinic", "install a certified plugin"},
    {"list", agora__cmd_list, "clinic", "list installed plugins"},
    {"remove", agora__cmd_remove, "clinic", "remove an installed plugin"},
    {"run", agora__cmd_run, "clinic", "run installed plugins on DICOM studies"},
    {"serve", agora__cmd_serve, "clinic", "receive studies from a PACS (DICOM C-STORE SCP)"},
    {"queue", agora__cmd_queue, "clinic", "the daemon's jobs | show|retry|cancel JOB"},
    {"user", agora__cmd_user, "clinic", "user add|list|remove|token: dashboard users"},
    {"rules", agora__cmd_rules, "clinic", "rules test|check: routing rules of agora serve"},
    {"results", agora__cmd_results, "clinic", "results studies | show|export STUDY"},
    {"usage", agora__cmd_usage, "clinic", "usage per plugin for a period"},
    {"statement", agora__cmd_statement, "all", "revenue share: a home's, or --from clinic exports"},
    {"ledger", agora__cmd_ledger, "clinic", "ledger verify | export [--period P -o FILE]"},
    {"audit", agora__cmd_audit, "all", "audit verify|show: the hash-chained trust audit log"},
    {"clinic", agora__cmd_clinic, "operator", "clinic add|list: clinics whose exports count"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: agora COMMAND [ARGS...]   (agora COMMAND --help for details)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %-10s %s\n", commands[i].name, commands[i].who, commands[i].summary);
    fprintf(out, "\nEnvironment: AGORA_HOME (clinic home), AGORA_LOG=debug|info|warn|error, "
                 "AGORA_LOG_JSON=1.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("agora %s (plugin ABI %d.%d)\n", AGORA_VERSION, AGORA_ABI_VERSION_MAJOR,
               AGORA_ABI_VERSION_MINOR);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "agora: unknown command '%s'; run 'agora --help' for the list\n", argv[1]);
    return 2;
}
