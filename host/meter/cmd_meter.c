/* Placeholder until the meter module lands; replaced by the module's own implementation. */
#include <stdio.h>

#include "../cli/commands.h"

int agora__cmd_usage(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora usage: not available in this build yet\n");
    return 2;
}

int agora__cmd_statement(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora statement: not available in this build yet\n");
    return 2;
}

int agora__cmd_ledger(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora ledger: not available in this build yet\n");
    return 2;
}

