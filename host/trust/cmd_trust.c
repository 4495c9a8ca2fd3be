/* Placeholder until the trust module lands; replaced by the module's own implementation. */
#include <stdio.h>

#include "../cli/commands.h"

int agora__cmd_keygen(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora keygen: not available in this build yet\n");
    return 2;
}

int agora__cmd_pack(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora pack: not available in this build yet\n");
    return 2;
}

int agora__cmd_certify(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora certify: not available in this build yet\n");
    return 2;
}

int agora__cmd_revoke(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora revoke: not available in this build yet\n");
    return 2;
}

int agora__cmd_catalog(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora catalog: not available in this build yet\n");
    return 2;
}

int agora__cmd_init(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora init: not available in this build yet\n");
    return 2;
}

int agora__cmd_sync(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora sync: not available in this build yet\n");
    return 2;
}

int agora__cmd_install(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora install: not available in this build yet\n");
    return 2;
}

int agora__cmd_list(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora list: not available in this build yet\n");
    return 2;
}

int agora__cmd_remove(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "agora remove: not available in this build yet\n");
    return 2;
}

