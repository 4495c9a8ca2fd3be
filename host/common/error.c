/* Error values with actionable messages. */
#include "common.h"

#include <stdio.h>
#include <string.h>

int agora__err_errno(int code)
{
    return code <= -AGORA__ERRNO_BASE - 1 && code > -AGORA__ERRNO_BASE - 4096
               ? -code - AGORA__ERRNO_BASE
               : 0;
}

int agora__err_is_nomem(int code)
{
    return code == AGORA_ENOMEM || code == AGORA__ENOMEM_SYS;
}

const char *agora__strerror(int code)
{
    int e = agora__err_errno(code);
    if (e != 0)
        return strerror(e);
    switch (code) {
    case 0:
        return "success";
    case AGORA_EINVAL:
        return "invalid argument";
    case AGORA_ENOMEM:
        return "out of memory";
    case AGORA_ELIMIT:
        return "a limit was reached";
    case AGORA_EUNSUPPORTED:
        return "not supported";
    case AGORA_ECANCELLED:
        return "cancelled";
    case AGORA_EINPUT:
        return "unsuitable input";
    case AGORA_EVERSION:
        return "version mismatch";
    case AGORA_EINTERNAL:
        return "internal error";
    case AGORA_ESTATE:
        return "not allowed now";
    default:
        return "unknown error";
    }
}

int agora__error_set(agora__error *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int agora__error_prefix(agora__error *err, const char *fmt, ...)
{
    if (err == NULL)
        return AGORA_EINTERNAL;
    char prefix[256];
    char old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return err->code;
}

void agora__error_clear(agora__error *err)
{
    if (err != NULL) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
