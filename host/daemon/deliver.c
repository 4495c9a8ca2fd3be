/* Delivery with classified outcomes (deliver.h): the DIMSE path on scu.c, the STOW-RS and FHIR
 * paths on http_client.c; this file only maps what they report to classes and messages. */
#include "deliver.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "http_client.h"
#include "command.h"
#include "pdu.h"
#include "scu.h"

#define DEFAULT_CALLING_AE "AGORA"

agora__deliver_class agora__deliver_classify_dimse(uint16_t status, const char **error_class)
{
    const char *cls;
    agora__deliver_class c;
    /* PS3.4 B.2.3 and PS3.7 C: success, then the warning statuses (delivered with a note),
     * then the failures. */
    if (status == 0x0000 || status == 0x0001 || status == 0x0107 || status == 0x0116 ||
        (status & 0xF000) == 0xB000) {
        c = AGORA__DELIVER_OK;
        cls = "delivered";
    } else if ((status & 0xFF00) == 0xA700) {
        c = AGORA__DELIVER_TRANSIENT;
        cls = "out-of-resources";
    } else if (status == 0x0124) {
        c = AGORA__DELIVER_PERMANENT; /* refused: not authorized */
        cls = "configuration-error";
    } else if (status == 0x0210 || status == 0x0211 || status == 0x0212 ||
               (status & 0xFF00) == 0xFF00) {
        c = AGORA__DELIVER_PERMANENT; /* a protocol slip: ours or the peer's, not a retry */
        cls = "protocol-error";
    } else {
        /* 0xA9xx data set does not match the class, 0xCxxx cannot understand, 0x0122 class
         * not supported, 0x0110 processing failure, 0xFE00 cancel, anything unknown. */
        c = AGORA__DELIVER_PERMANENT;
        cls = "refused-by-peer";
    }
    if (error_class)
        *error_class = cls;
    return c;
}

agora__deliver_class agora__deliver_classify_http(long http_status, const char **error_class)
{
    const char *cls;
    agora__deliver_class c;
    if (http_status >= 200 && http_status < 300) {
        c = AGORA__DELIVER_OK;
        cls = "delivered";
    } else if (http_status == 408 || http_status == 429 || http_status >= 500) {
        c = AGORA__DELIVER_TRANSIENT;
        cls = http_status >= 500 ? "server-error" : "out-of-resources";
    } else if (http_status == 401 || http_status == 403 || http_status == 404 ||
               (http_status >= 300 && http_status < 400)) {
        c = AGORA__DELIVER_PERMANENT; /* wrong URL or credentials, or a redirect we refuse */
        cls = "configuration-error";
    } else if (http_status == 409 || http_status == 415 || http_status == 413 ||
               http_status == 400 || http_status == 422) {
        c = AGORA__DELIVER_PERMANENT;
        cls = "refused-by-peer";
    } else {
        c = AGORA__DELIVER_PERMANENT;
        cls = "http-error";
    }
    if (error_class)
        *error_class = cls;
    return c;
}

uint64_t agora__deliver_backoff_jitter_ms(unsigned attempt, uint32_t r)
{
    uint64_t d = AGORA__DELIVER_BACKOFF_BASE_MS;
    for (unsigned i = 1; i < attempt && d < AGORA__DELIVER_BACKOFF_CAP_MS; i++)
        d *= 2;
    if (d > AGORA__DELIVER_BACKOFF_CAP_MS)
        d = AGORA__DELIVER_BACKOFF_CAP_MS;
    /* Up to 20 % less, uniformly: never later than the documented delay, never below 80 %. */
    uint64_t j = (d / 5) * (uint64_t)r / UINT32_MAX;
    return d - j;
}

uint64_t agora__deliver_backoff_ms(unsigned attempt)
{
    return agora__deliver_backoff_jitter_ms(attempt, randombytes_random());
}

static agora__deliver_class classify_scu(agora__scu_fail f, const agora__scu_result *res,
                                         const char **cls)
{
    switch (f) {
    case AGORA__SCU_OK:
        *cls = "delivered";
        return AGORA__DELIVER_OK;
    case AGORA__SCU_RESOLVE:
        *cls = "host-not-found";
        return AGORA__DELIVER_PERMANENT;
    case AGORA__SCU_REFUSED:
        *cls = "connection-refused";
        return AGORA__DELIVER_TRANSIENT;
    case AGORA__SCU_UNREACHABLE:
        *cls = "network-unreachable";
        return AGORA__DELIVER_TRANSIENT;
    case AGORA__SCU_CONNECT_TIMEOUT:
        *cls = "connection-timeout";
        return AGORA__DELIVER_TRANSIENT;
    case AGORA__SCU_TIMEOUT:
        *cls = "timeout";
        return AGORA__DELIVER_TRANSIENT;
    case AGORA__SCU_RESET:
        *cls = "connection-reset";
        return AGORA__DELIVER_TRANSIENT;
    case AGORA__SCU_ABORTED:
        *cls = "association-aborted";
        return AGORA__DELIVER_TRANSIENT;
    case AGORA__SCU_REJECTED:
        if (res->rj_result == AGORA__RJ_TRANSIENT) {
            *cls = "association-rejected-transient";
            return AGORA__DELIVER_TRANSIENT;
        }
        *cls = "configuration-error";
        return AGORA__DELIVER_PERMANENT;
    case AGORA__SCU_PROTOCOL:
        *cls = "protocol-error";
        return AGORA__DELIVER_PERMANENT;
    case AGORA__SCU_NO_CONTEXT:
        *cls = "no-presentation-context";
        return AGORA__DELIVER_PERMANENT;
    case AGORA__SCU_BAD_FILE:
        *cls = "bad-file";
        return AGORA__DELIVER_PERMANENT;
    case AGORA__SCU_NOT_SENT:
        break;
    }
    *cls = "not-sent";
    return AGORA__DELIVER_TRANSIENT;
}

static void set(agora__deliver_outcome *o, agora__deliver_class c, const char *cls, uint16_t status,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void set(agora__deliver_outcome *o, agora__deliver_class c, const char *cls, uint16_t status,
                const char *fmt, ...)
{
    o->cls = c;
    o->error_class = cls;
    o->last_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->msg, sizeof o->msg, fmt, ap);
    va_end(ap);
}

/* The batch's outcome from the files' (deliver.h): the first permanent file, else the first
 * transient, else delivered. */
static void summarize(const agora__dest *d, const agora__deliver_outcome *each, size_t n,
                      agora__deliver_outcome *out)
{
    size_t first_perm = n, first_trans = n, n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        if (each[i].cls == AGORA__DELIVER_OK)
            n_ok++;
        else if (each[i].cls == AGORA__DELIVER_PERMANENT && first_perm == n)
            first_perm = i;
        else if (each[i].cls == AGORA__DELIVER_TRANSIENT && first_trans == n)
            first_trans = i;
    }
    size_t pick = first_perm < n ? first_perm : first_trans;
    if (pick == n) {
        set(out, AGORA__DELIVER_OK, "delivered", each[n - 1].last_status,
            "%zu file%s delivered to %s", n, n == 1 ? "" : "s", d->name ? d->name : "the peer");
        return;
    }
    set(out, each[pick].cls, each[pick].error_class, each[pick].last_status,
        "%zu of %zu delivered; file %zu: %s", n_ok, n, pick + 1, each[pick].msg);
}

static void scu_config_of(const agora__dest *d, agora__scu_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->host = d->host;
    cfg->port = d->port;
    cfg->called_ae = d->ae_title;
    cfg->calling_ae = d->calling_ae && d->calling_ae[0] ? d->calling_ae : DEFAULT_CALLING_AE;
    cfg->connect_timeout_ms = d->timeout_ms;
    cfg->assoc_timeout_ms = d->timeout_ms;
    cfg->dimse_timeout_ms = d->timeout_ms;
}

static int deliver_dimse(const agora__dest *d, const char *const *paths, size_t n,
                         agora__deliver_outcome *each, agora__error *err)
{
    agora__scu_config cfg;
    scu_config_of(d, &cfg);
    agora__scu_file_result *fr = calloc(n, sizeof *fr);
    if (fr == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for %zu files", n);
    agora__scu_result res;
    int rc = agora__scu_store(&cfg, paths, n, fr, &res, err);
    if (rc != 0) {
        free(fr);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        const char *cls;
        agora__deliver_class c;
        if (fr[i].fail == AGORA__SCU_OK) {
            c = agora__deliver_classify_dimse(fr[i].status, &cls);
            if (c == AGORA__DELIVER_OK)
                set(&each[i], c, cls, fr[i].status, "delivered (status 0x%04x)", fr[i].status);
            else if (c == AGORA__DELIVER_TRANSIENT)
                set(&each[i], c, cls, fr[i].status,
                    "the peer is out of resources (status 0x%04x); it will be retried later",
                    fr[i].status);
            else
                set(&each[i], c, cls, fr[i].status,
                    "the peer refused the file (status 0x%04x); check the peer's log and its "
                    "configuration for this SOP class",
                    fr[i].status);
            continue;
        }
        agora__scu_fail f = fr[i].fail == AGORA__SCU_NOT_SENT ? res.fail : fr[i].fail;
        c = classify_scu(f, &res, &cls);
        set(&each[i], c, cls, 0, "%s", fr[i].msg);
    }
    free(fr);
    return 0;
}

static const char *http_fail_class(agora__http_fail f, agora__deliver_class *c)
{
    *c = AGORA__DELIVER_TRANSIENT;
    switch (f) {
    case AGORA__HTTP_RESOLVE:
        *c = AGORA__DELIVER_PERMANENT;
        return "host-not-found";
    case AGORA__HTTP_REFUSED:
        return "connection-refused";
    case AGORA__HTTP_TIMEOUT:
        return "timeout";
    case AGORA__HTTP_RESET:
        return "connection-reset";
    case AGORA__HTTP_TLS:
        *c = AGORA__DELIVER_PERMANENT;
        return "configuration-error";
    case AGORA__HTTP_TOO_LARGE:
        *c = AGORA__DELIVER_PERMANENT;
        return "protocol-error";
    case AGORA__HTTP_BAD_URL:
        *c = AGORA__DELIVER_PERMANENT;
        return "configuration-error";
    case AGORA__HTTP_BAD_FILE:
        *c = AGORA__DELIVER_PERMANENT;
        return "bad-file";
    case AGORA__HTTP_OK:
    case AGORA__HTTP_OTHER:
        break;
    }
    return "http-error";
}

static int deliver_stow(const agora__dest *d, const char *const *paths, size_t n,
                        agora__deliver_outcome *each, agora__error *err)
{
    agora__stow_file_result *fr = calloc(n, sizeof *fr);
    if (fr == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for %zu files", n);
    agora__http_opts opts = {d->timeout_ms, d->timeout_ms, 0, NULL};
    agora__http_result res;
    size_t bad = n;
    int rc = agora__stow_post(d->url, paths, n, &opts, fr, &res, &bad, err);
    if (rc != 0) {
        free(fr);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        agora__deliver_class c;
        const char *cls;
        if (res.fail != AGORA__HTTP_OK) {
            cls = http_fail_class(res.fail, &c);
            if (res.fail == AGORA__HTTP_BAD_FILE && i != bad)
                set(&each[i], AGORA__DELIVER_TRANSIENT, "not-sent", 0,
                    "not sent: another file of the batch cannot be read");
            else
                set(&each[i], c, cls, 0, "%s", res.msg);
            continue;
        }
        c = agora__deliver_classify_http(res.http_status, &cls);
        uint16_t st =
            (uint16_t)(res.http_status > 0 && res.http_status < 1000 ? res.http_status : 0);
        if (c == AGORA__DELIVER_OK && fr[i].failed) {
            /* 202 (or a 200 that lists it anyway): this part was refused. */
            set(&each[i], AGORA__DELIVER_PERMANENT, "refused-by-peer", st,
                "the STOW-RS server refused this instance (failure reason 0x%04x); check the "
                "server's log",
                fr[i].reason);
        } else if (c == AGORA__DELIVER_OK) {
            set(&each[i], c, cls, st, "delivered (HTTP %ld)", res.http_status);
        } else {
            set(&each[i], c, cls, st, "the STOW-RS server answered HTTP %ld%s%s", res.http_status,
                res.msg[0] ? ": " : "",
                res.msg[0] ? res.msg
                : c == AGORA__DELIVER_TRANSIENT
                    ? "; it will be retried later"
                    : "; check the destination's URL and the server's configuration");
        }
    }
    free(fr);
    return 0;
}

int agora__deliver_files_each(const agora__dest *d, const char *const *paths, size_t n,
                              agora__deliver_outcome *each, agora__deliver_outcome *out,
                              agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (d == NULL || paths == NULL || n == 0) {
        set(out, AGORA__DELIVER_PERMANENT, "configuration-error", 0,
            "nothing to deliver or no destination");
        return agora__error_set(err, AGORA_EINVAL, "%s", out->msg);
    }
    agora__deliver_outcome *own = NULL;
    if (each == NULL) {
        own = calloc(n, sizeof *own);
        if (own == NULL)
            return agora__error_set(err, AGORA_ENOMEM, "out of memory for %zu files", n);
        each = own;
    }
    int rc;
    agora__error e;
    agora__error_clear(&e);
    if (d->kind == AGORA__DEST_DIMSE)
        rc = deliver_dimse(d, paths, n, each, &e);
    else if (d->kind == AGORA__DEST_STOW)
        rc = deliver_stow(d, paths, n, each, &e);
    else
        rc = agora__error_set(&e, AGORA_EINVAL, "unknown destination kind %d", (int)d->kind);
    if (rc == 0) {
        summarize(d, each, n, out);
    } else {
        set(out, rc == AGORA_EINVAL ? AGORA__DELIVER_PERMANENT : AGORA__DELIVER_TRANSIENT,
            rc == AGORA_EINVAL ? "configuration-error" : "out-of-resources", 0,
            "destination %s: %s", d->name ? d->name : "", e.msg);
        agora__error_set(err, rc, "%s", out->msg);
    }
    free(own);
    return rc;
}

int agora__deliver_files(const agora__dest *d, const char *const *paths, size_t n,
                         agora__deliver_outcome *out, agora__error *err)
{
    return agora__deliver_files_each(d, paths, n, NULL, out, err);
}

int agora__deliver_echo(const agora__dest *d, agora__deliver_outcome *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    if (d == NULL || d->kind != AGORA__DEST_DIMSE) {
        set(out, AGORA__DELIVER_PERMANENT, "configuration-error", 0,
            "C-ECHO needs a DICOM (AE@HOST:PORT) destination");
        return agora__error_set(err, AGORA_EINVAL, "%s", out->msg);
    }
    agora__scu_config cfg;
    scu_config_of(d, &cfg);
    agora__scu_result res;
    uint16_t status = 0xFFFF;
    agora__error e;
    int rc = agora__scu_echo(&cfg, &status, &res, &e);
    if (rc != 0) {
        set(out, AGORA__DELIVER_PERMANENT, "configuration-error", 0, "%s", e.msg);
        return agora__error_set(err, rc, "%s", e.msg);
    }
    const char *cls;
    if (res.fail != AGORA__SCU_OK) {
        agora__deliver_class c = classify_scu(res.fail, &res, &cls);
        set(out, c, cls, 0, "%s", res.msg);
    } else if (status != AGORA__DIMSE_SUCCESS) {
        set(out, AGORA__DELIVER_PERMANENT, "refused-by-peer", status,
            "the peer answered C-ECHO with status 0x%04x", status);
    } else {
        set(out, AGORA__DELIVER_OK, "delivered", status, "C-ECHO answered with status 0x0000");
    }
    return 0;
}

int agora__deliver_fhir(const char *url, const char *json, size_t len, unsigned timeout_ms,
                        agora__deliver_outcome *out, agora__error *err)
{
    memset(out, 0, sizeof *out);
    agora__http_opts opts = {timeout_ms, timeout_ms, 0, NULL};
    agora__http_result res;
    int rc = agora__http_post_json(url, json, len, &opts, &res, err);
    if (rc != 0) {
        set(out, AGORA__DELIVER_PERMANENT, "configuration-error", 0, "%s",
            err ? err->msg : "bad FHIR request");
        return rc;
    }
    agora__deliver_class c;
    const char *cls;
    if (res.fail != AGORA__HTTP_OK) {
        cls = http_fail_class(res.fail, &c);
        set(out, c, cls, 0, "%s", res.msg);
        return 0;
    }
    c = agora__deliver_classify_http(res.http_status, &cls);
    set(out, c, cls, (uint16_t)(res.http_status < 1000 ? res.http_status : 0),
        c == AGORA__DELIVER_OK ? "FHIR server accepted the resource (HTTP %ld)"
                               : "FHIR server answered HTTP %ld; check its log and the URL",
        res.http_status);
    return 0;
}
