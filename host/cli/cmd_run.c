/* Placeholder until the cli module lands; replaced by the module's own implementation. */
#include <stdio.h>

#include "../cli/commands.h"

int agora__cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora run: not available in this build yet\n");
    return 2;
}

