/* HTTP client on libcurl (http_client.h). The STOW-RS body is produced by a read callback that
 * walks (part head, file bytes, part tail) for each file and the closing boundary, so memory
 * stays at one read buffer whatever the batch size; its length is computed up front from the
 * files' sizes so the request is not chunked (not every STOW server takes chunked bodies). */
#include "http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "filemeta.h"

#define URL_MAX            2048u
#define DEFAULT_CONNECT_MS 10000u
#define DEFAULT_TOTAL_MS   600000u
#define DEFAULT_STALL_MS   30000u

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_OK;

static void do_init(void)
{
    init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int agora__http_global_init(agora__error *err)
{
    pthread_once(&init_once, do_init);
    if (init_rc != CURLE_OK)
        return agora__error_set(err, AGORA_EINTERNAL, "libcurl initialisation failed: %s",
                                curl_easy_strerror(init_rc));
    return 0;
}

typedef struct body {
    char *data;
    size_t len, cap;
    int over;
    /* stall watch (on_progress): the last time a byte moved, and the limit */
    uint64_t last_move_ms, stall_ms;
    curl_off_t moved;
    int stalled;
} body;

static uint64_t mono_ms(void)
{
    return agora__now_ns() / 1000000u;
}

/* Fails the transfer when no byte moved either way for stall_ms (libcurl's low-speed check
 * averages over a window and reacts seconds late). */
static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    body *b = ud;
    (void)dltotal;
    (void)ultotal;
    uint64_t now = mono_ms();
    if (dlnow + ulnow != b->moved) {
        b->moved = dlnow + ulnow;
        b->last_move_ms = now;
        return 0;
    }
    if (now - b->last_move_ms > b->stall_ms) {
        b->stalled = 1;
        return 1;
    }
    return 0;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    body *b = ud;
    size_t n = size * nmemb;
    if (n > AGORA__HTTP_MAX_RESPONSE - b->len) {
        b->over = 1;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

static int url_ok(const char *url)
{
    size_t n = url ? strlen(url) : 0;
    if (n == 0 || n > URL_MAX)
        return 0;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7F)
            return 0;
    return 1;
}

static void set_common(CURL *h, const agora__http_opts *o, char *errbuf, body *resp)
{
    unsigned cms = o && o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS;
    unsigned tms = o && o->timeout_ms ? o->timeout_ms : DEFAULT_TOTAL_MS;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)cms);
    unsigned sms = o && o->stall_timeout_ms ? o->stall_timeout_ms : DEFAULT_STALL_MS;
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)tms);
    resp->stall_ms = sms;
    resp->last_move_ms = mono_ms();
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, resp);
    /* A 3xx is reported, never followed: a destination cannot send us to another host. */
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (o && o->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "agora");
}

/* Map a libcurl result into res (fail and msg). */
static void finish(CURL *h, CURLcode cc, const char *errbuf, const body *resp, int file_bad,
                   agora__http_result *res)
{
    memset(res, 0, sizeof *res);
    if (cc == CURLE_OK) {
        long st = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
        res->http_status = st;
        res->fail = AGORA__HTTP_OK;
        return;
    }
    const char *what = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    const char *todo = "";
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        res->fail = AGORA__HTTP_RESOLVE;
        todo = "; check the host name in the URL";
        break;
    case CURLE_COULDNT_CONNECT:
        res->fail = AGORA__HTTP_REFUSED;
        todo = "; check that the server is running and the URL's port";
        break;
    case CURLE_OPERATION_TIMEDOUT:
        res->fail = AGORA__HTTP_TIMEOUT;
        todo = "; the server did not answer in time";
        break;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        res->fail = AGORA__HTTP_RESET;
        todo = "; check the server's log";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        res->fail = AGORA__HTTP_TLS;
        todo = "; the server's certificate must verify against the CA store (or the "
               "configured CA file)";
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        res->fail = AGORA__HTTP_BAD_URL;
        todo = "; use an http:// or https:// URL";
        break;
    case CURLE_WRITE_ERROR:
        res->fail = resp->over ? AGORA__HTTP_TOO_LARGE : AGORA__HTTP_OTHER;
        if (resp->over)
            what = "the response is larger than the 4 MiB we read";
        break;
    case CURLE_ABORTED_BY_CALLBACK:
        if (resp->stalled) {
            res->fail = AGORA__HTTP_TIMEOUT;
            what = "no byte moved for the stall timeout";
            todo = "; the server stopped reading or answering";
            break;
        }
        /* fall through */
    case CURLE_READ_ERROR:
        res->fail = file_bad ? AGORA__HTTP_BAD_FILE : AGORA__HTTP_OTHER;
        if (file_bad)
            what = "a file changed or could not be read while it was sent";
        break;
    default:
        res->fail = AGORA__HTTP_OTHER;
        break;
    }
    snprintf(res->msg, sizeof res->msg, "%s%s", what, todo);
}

/* One POST of len bytes, from data or (data NULL) from read(read_ud); the headers a
 * NULL-terminated list. The answer is in resp (the caller frees resp->data) and res. *file_bad
 * (when given) is read after the transfer: the read callback's "a file failed" flag. */
typedef struct post_req {
    const char *url;
    const char *const *headers;
    const char *data;
    curl_off_t len;
    curl_read_callback read;
    void *read_ud;
    const int *file_bad;
} post_req;

static int post(const post_req *r, const agora__http_opts *opts, body *resp,
                agora__http_result *res, agora__error *err)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    int oom = h == NULL;
    for (size_t i = 0; !oom && r->headers[i]; i++) {
        struct curl_slist *n = curl_slist_append(hdr, r->headers[i]);
        if (n == NULL)
            oom = 1;
        else
            hdr = n;
    }
    if (oom) {
        curl_easy_cleanup(h);
        curl_slist_free_all(hdr);
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for an HTTP request");
    }
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = 0;
    set_common(h, opts, errbuf, resp);
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    if (r->data) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->data);
    } else {
        curl_easy_setopt(h, CURLOPT_READFUNCTION, r->read);
        curl_easy_setopt(h, CURLOPT_READDATA, r->read_ud);
    }
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, r->len);
    CURLcode cc = curl_easy_perform(h);
    finish(h, cc, errbuf, resp, r->file_bad ? *r->file_bad : 0, res);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return 0;
}

/* ---- STOW-RS ---- */

typedef struct stow_src {
    const char *const *paths;
    const agora__filemeta *meta;
    size_t n, i;
    int phase; /* 0 head, 1 file, 2 tail, 3 closing, 4 done */
    char head[160], tail[8], closing[64];
    size_t head_len, closing_len, pos;
    int fd;
    uint64_t left;
    int bad; /* a file failed: the transfer is aborted */
} stow_src;

static size_t copy_out(char *dst, size_t cap, const char *src, size_t len, size_t *pos)
{
    size_t k = len - *pos;
    if (k > cap)
        k = cap;
    memcpy(dst, src + *pos, k);
    *pos += k;
    return k;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
    stow_src *s = ud;
    size_t cap = size * nmemb;
    for (;;) {
        if (s->phase == 0) {
            if (s->pos < s->head_len)
                return copy_out(dst, cap, s->head, s->head_len, &s->pos);
            s->pos = 0;
            s->fd = open(s->paths[s->i], O_RDONLY | O_CLOEXEC);
            if (s->fd < 0) {
                s->bad = 1;
                return CURL_READFUNC_ABORT;
            }
            s->left = s->meta[s->i].file_size;
            s->phase = 1;
        }
        if (s->phase == 1) {
            if (s->left > 0) {
                size_t k = s->left < cap ? (size_t)s->left : cap;
                ssize_t r;
                do
                    r = read(s->fd, dst, k);
                while (r < 0 && errno == EINTR);
                if (r <= 0) {
                    s->bad = 1; /* shorter than its size: the length we announced is wrong */
                    return CURL_READFUNC_ABORT;
                }
                s->left -= (uint64_t)r;
                return (size_t)r;
            }
            close(s->fd);
            s->fd = -1;
            s->phase = 2;
        }
        if (s->phase == 2) {
            if (s->pos < 2)
                return copy_out(dst, cap, "\r\n", 2, &s->pos);
            s->pos = 0;
            s->i++;
            s->phase = s->i < s->n ? 0 : 3;
            continue;
        }
        if (s->phase == 3) {
            if (s->pos < s->closing_len)
                return copy_out(dst, cap, s->closing, s->closing_len, &s->pos);
            s->phase = 4;
        }
        return 0;
    }
}

/* The UIDs listed in a sequence attribute of a DICOM JSON object. Returns the item array. */
static json_t *seq_items(json_t *root, const char *tag)
{
    json_t *a = json_object_get(root, tag);
    json_t *v = a ? json_object_get(a, "Value") : NULL;
    return json_is_array(v) ? v : NULL;
}

static const char *item_uid(json_t *item)
{
    json_t *a = json_object_get(item, "00081155");
    json_t *v = a ? json_object_get(a, "Value") : NULL;
    json_t *s = json_is_array(v) ? json_array_get(v, 0) : NULL;
    return json_is_string(s) ? json_string_value(s) : NULL;
}

static uint16_t item_reason(json_t *item)
{
    json_t *a = json_object_get(item, "00081197");
    json_t *v = a ? json_object_get(a, "Value") : NULL;
    json_t *s = json_is_array(v) ? json_array_get(v, 0) : NULL;
    json_int_t r = json_is_integer(s) ? json_integer_value(s) : 0;
    return (uint16_t)(r >= 0 && r <= 0xFFFF ? r : 0);
}

/* Read the answer's Failed SOP Sequence (and, for 202, the Referenced SOP Sequence: a file not
 * listed as stored is counted as failed). A body that is not DICOM JSON leaves files alone. */
static void read_stow_answer(const body *resp, long status, const agora__filemeta *meta, size_t n,
                             agora__stow_file_result *files)
{
    if (resp->len == 0)
        return;
    json_error_t je;
    json_t *root = json_loadb(resp->data, resp->len, 0, &je);
    if (json_is_array(root) && json_array_size(root) == 1) {
        json_t *first = json_incref(json_array_get(root, 0));
        json_decref(root);
        root = first;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    json_t *failed = seq_items(root, "00081198");
    json_t *stored = seq_items(root, "00081199");
    for (size_t i = 0; i < n; i++) {
        size_t k;
        json_t *it;
        json_array_foreach(failed, k, it)
        {
            const char *u = item_uid(it);
            if (u && strcmp(u, meta[i].sop_instance) == 0) {
                files[i].failed = 1;
                files[i].reason = item_reason(it);
            }
        }
        if (status == 202 && stored && !files[i].failed) {
            int found = 0;
            json_array_foreach(stored, k, it)
            {
                const char *u = item_uid(it);
                if (u && strcmp(u, meta[i].sop_instance) == 0)
                    found = 1;
            }
            if (!found)
                files[i].failed = 1;
        }
    }
    json_decref(root);
}

int agora__stow_post(const char *base_url, const char *const *paths, size_t n,
                     const agora__http_opts *opts, agora__stow_file_result *files,
                     agora__http_result *res, size_t *bad_file, agora__error *err)
{
    if (res == NULL || files == NULL || paths == NULL)
        return agora__error_set(err, AGORA_EINVAL, "STOW-RS: missing arguments");
    memset(res, 0, sizeof *res);
    if (!url_ok(base_url))
        return agora__error_set(err, AGORA_EINVAL,
                                "the STOW-RS URL must be an http:// or https:// URL of at most "
                                "%u printable characters",
                                URL_MAX);
    if (n == 0 || n > AGORA__HTTP_MAX_FILES)
        return agora__error_set(err, AGORA_EINVAL, "between 1 and %u files per STOW-RS request",
                                AGORA__HTTP_MAX_FILES);
    int rc = agora__http_global_init(err);
    if (rc != 0)
        return rc;
    agora__filemeta *meta = calloc(n, sizeof *meta);
    if (meta == NULL)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory for %zu files", n);
    memset(files, 0, n * sizeof *files);
    stow_src src;
    memset(&src, 0, sizeof src);
    src.fd = -1;
    unsigned char rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    char boundary[40];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(boundary + 2 * i, 3, "%02x", rnd[i]);
    src.head_len = (size_t)snprintf(src.head, sizeof src.head,
                                    "--%s\r\nContent-Type: application/dicom\r\n\r\n", boundary);
    src.closing_len = (size_t)snprintf(src.closing, sizeof src.closing, "--%s--\r\n", boundary);
    uint64_t total = src.closing_len;
    for (size_t i = 0; i < n; i++) {
        agora__error e;
        if (agora__filemeta_read(paths[i], &meta[i], &e) != 0) {
            res->fail = AGORA__HTTP_BAD_FILE;
            snprintf(res->msg, sizeof res->msg, "file %zu: %s", i + 1, e.msg);
            if (bad_file)
                *bad_file = i;
            free(meta);
            return 0;
        }
        total += src.head_len + meta[i].file_size + 2;
    }
    src.paths = paths;
    src.meta = meta;
    src.n = n;

    char url[URL_MAX + 16];
    size_t bl = strlen(base_url);
    snprintf(url, sizeof url, "%s%s", base_url,
             bl && base_url[bl - 1] == '/' ? "studies" : "/studies");
    char ctype[128];
    snprintf(ctype, sizeof ctype,
             "Content-Type: multipart/related; type=\"application/dicom\"; boundary=%s", boundary);
    /* "Expect:" off: no 100-continue round trip before the body. */
    const char *const headers[] = {ctype, "Accept: application/dicom+json", "Expect:", NULL};
    post_req r = {url, headers, NULL, (curl_off_t)total, on_read, &src, &src.bad};
    body resp = {0};
    rc = post(&r, opts, &resp, res, err);
    if (src.fd >= 0)
        close(src.fd);
    if (rc == 0 && res->fail == AGORA__HTTP_BAD_FILE && bad_file)
        *bad_file = src.i;
    if (rc == 0 && res->fail == AGORA__HTTP_OK)
        read_stow_answer(&resp, res->http_status, meta, n, files);
    free(resp.data);
    free(meta);
    return rc;
}

int agora__http_post_json(const char *url, const char *data, size_t len,
                          const agora__http_opts *opts, agora__http_result *res, agora__error *err)
{
    if (res == NULL || data == NULL)
        return agora__error_set(err, AGORA_EINVAL, "HTTP POST: missing arguments");
    memset(res, 0, sizeof *res);
    if (!url_ok(url))
        return agora__error_set(err, AGORA_EINVAL,
                                "the FHIR URL must be an http:// or https:// URL of at most %u "
                                "printable characters",
                                URL_MAX);
    if (len > AGORA__HTTP_MAX_RESPONSE)
        return agora__error_set(err, AGORA_EINVAL, "the JSON document is larger than %u bytes",
                                AGORA__HTTP_MAX_RESPONSE);
    int rc = agora__http_global_init(err);
    if (rc != 0)
        return rc;
    const char *const headers[] = {"Content-Type: application/fhir+json",
                                   "Accept: application/fhir+json", NULL};
    post_req r = {url, headers, data, (curl_off_t)len, NULL, NULL, NULL};
    body resp = {0};
    rc = post(&r, opts, &resp, res, err);
    free(resp.data);
    return rc;
}
