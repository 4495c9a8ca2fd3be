/* Placeholder until the worker module lands; replaced by the module's own implementation. */
#include <stdio.h>

#include "../cli/commands.h"

int agora__cmd_dev(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora dev: not available in this build yet\n");
    return 2;
}

