/* Test helper: writes the key `agora run` pseudonymises the plugin view's UIDs with
 * (derived from the clinic home, "deid-uid") as 64 hex digits to FILE (mode 600), so that
 * `agora deid --secret FILE` reproduces exactly the UIDs a plugin saw.
 * usage: view_key HOME FILE */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "trust.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: view_key HOME FILE\n");
        return 2;
    }
    uint8_t key[32];
    char hex[65];
    agora__trust_home *home = NULL;
    agora__error err = {0};
    if (agora__trust_home_open(argv[1], &home, &err) != 0 ||
        agora__trust_derive_key(home, AGORA__KEY_UID, key) != 0) {
        fprintf(stderr, "view_key: cannot derive the key from the home: %s\n", err.msg);
        agora__trust_home_close(home);
        return 1;
    }
    agora__trust_home_close(home);
    agora__hex(key, 32, hex);
    int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, hex, 64) != 64 || close(fd) != 0) {
        fprintf(stderr, "view_key: cannot write the key file\n");
        return 1;
    }
    return 0;
}
