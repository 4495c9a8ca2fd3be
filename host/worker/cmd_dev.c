#include <stdio.h>

#include "../cli/commands.h"

int agora__cmd_dev(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 2;
}
