/* libFuzzer: the DIMSE command set parser (host/dimse/command.c), and the encoder on what it
 * accepted (a parsed set re-encodes and parses to the same fields). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agora__dimse_cmd c, back;
    agora__error err = {0};
    if (agora__dimse_cmd_parse(data, size, &c, &err) != 0)
        return 0;
    uint8_t buf[1024];
    size_t n = agora__dimse_cmd_encode(&c, buf, sizeof buf);
    if (n == 0)
        abort();
    if (agora__dimse_cmd_parse(buf, n, &back, &err) != 0 || back.field != c.field ||
        back.data_set != c.data_set || strcmp(back.sop_class, c.sop_class) != 0 ||
        strcmp(back.sop_instance, c.sop_instance) != 0)
        abort();
    return 0;
}
