/* Where the clinic home is, for every command that uses one (init, sync, run, results, usage,
 * ledger, deid, ...): one rule, so a newcomer with nothing set finds the home `agora init`
 * made. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

int agora__home_dir(const char *dir, char *out, size_t size, agora__error *err)
{
    const char *env = getenv("AGORA_HOME");
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int n;
    if (dir != NULL && dir[0] != '\0')
        n = snprintf(out, size, "%s", dir);
    else if (env != NULL && env[0] != '\0')
        n = snprintf(out, size, "%s", env);
    else if (xdg != NULL && xdg[0] == '/')
        n = snprintf(out, size, "%s/agora", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(out, size, "%s/.local/share/agora", home);
    else
        return agora__error_set(err, AGORA_EINVAL,
                                "no clinic home: pass --home DIR or set AGORA_HOME");
    if (n < 0 || (size_t)n >= size)
        return agora__error_set(err, AGORA_ELIMIT,
                                "clinic home path too long (%d bytes); use a shorter one", n);
    return 0;
}
