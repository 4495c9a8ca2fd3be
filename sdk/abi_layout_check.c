/*
 * Build-time ABI layout check: every pinned offset and size of sdk/abi_pins.h as a
 * _Static_assert, compiled with the normal build, so a change that moves a field of a public
 * struct fails the build instead of breaking every plugin in the field (docs/abi.md). The
 * object file is empty; nothing links it.
 */
#include <stddef.h>

#include "abi_pins.h"
#include "agora/agora.h"

#define PIN(s, f, off)                                                                             \
    _Static_assert(offsetof(s, f) == (off), #s "." #f " moved from offset " #off                   \
                                               ": append new fields instead (docs/abi.md)");
AGORA__ABI_PINS(PIN)

#define FLOOR(s, size)                                                                             \
    _Static_assert(sizeof(s) >= (size), "sizeof(" #s ") shrank below its ABI 1.0 size " #size);
AGORA__ABI_SIZE_FLOORS(FLOOR)

#define EXACT(s, size)                                                                             \
    _Static_assert(sizeof(s) == (size), "sizeof(" #s ") is not its ABI 1.1 size " #size            \
                                        ": a minor that appends fields updates sdk/abi_pins.h");
AGORA__ABI_SIZES_1_1(EXACT)

_Static_assert(AGORA_ABI_VERSION == 0x00010001u, "ABI version changed: update sdk/abi_pins.h");
_Static_assert(AGORA_EINVAL == -1 && AGORA_ENOMEM == -2 && AGORA_ELIMIT == -3 &&
                   AGORA_EUNSUPPORTED == -4 && AGORA_ECANCELLED == -5 && AGORA_EINPUT == -6 &&
                   AGORA_EVERSION == -7 && AGORA_EINTERNAL == -8 && AGORA_ESTATE == -9,
               "ABI error codes are numbers that never change");

/* ISO C forbids an empty translation unit. */
typedef int agora__abi_layout_checked;
