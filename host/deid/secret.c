/* Parsing PS3.15 option names into the rules mask. (The clinic secret: common/home.h.) */
#include "deid.h"
#include "rules.h"

int agora__deid_options_parse(const char *const *names, size_t count, uint32_t *mask,
                              agora__error *err)
{
    *mask = 0;
    for (size_t i = 0; i < count; i++) {
        int o = agora__deid_option_from_name(names[i]);
        if (o < 0)
            return agora__error_set(err, AGORA_EINVAL,
                                    "unknown option '%.64s'; use a PS3.15 option name such as "
                                    "rtnPatCharsOpt",
                                    names[i]);
        const char *why = agora__deid_option_refusal(o);
        if (why != NULL)
            return agora__error_set(err, AGORA_EUNSUPPORTED, "%s", why);
        *mask |= 1u << o;
    }
    return 0;
}
