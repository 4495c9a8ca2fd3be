/*
 * `agora dicom send`: send Part 10 files to a destination the way `agora serve` sends results
 * back (host/daemon/deliver.h), so an operator can test a destination before the daemon uses
 * it. Prints each file's outcome and class; the exit status tells scripts whether a retry can
 * help (75, like sysexits' EX_TEMPFAIL) or not (1).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_util.h"
#include "commands.h"
#include "common.h"
#include "deliver.h"
#include "json_emit.h"
#include "opt.h"

#define NAME          "dicom send"
#define EXIT_TEMPFAIL 75
/* Files per association (DIMSE) or per request (STOW-RS). */
#define DIMSE_BATCH 1000u
#define STOW_BATCH  50u

/* A file found in a folder is sent only when it looks like Part 10 (preamble + "DICM"); files
 * named on the command line are always tried, so a wrong one is reported. */
static int looks_part10(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    unsigned char b[132];
    size_t n = fread(b, 1, sizeof b, f);
    fclose(f);
    return n == sizeof b && memcmp(b + 128, "DICM", 4) == 0;
}

static const char *class_word(agora__deliver_class c)
{
    return c == AGORA__DELIVER_OK          ? "delivered"
           : c == AGORA__DELIVER_TRANSIENT ? "transient"
                                           : "permanent";
}

static int exit_of(agora__deliver_class c)
{
    return c == AGORA__DELIVER_OK ? 0 : c == AGORA__DELIVER_TRANSIENT ? EXIT_TEMPFAIL : 1;
}

static int run_echo(const agora__dest *d, int as_json)
{
    agora__deliver_outcome o;
    agora__error err = {0};
    uint64_t t0 = agora__now_ns();
    int rc = agora__deliver_echo(d, &o, &err);
    double ms = (double)(agora__now_ns() - t0) / 1e6;
    if (rc != 0 && rc != AGORA_EINVAL)
        return agora__fail(NAME, &err);
    if (as_json) {
        json_t *doc = json_pack("{s:s,s:s,s:s,s:i,s:s,s:f}", "destination", d->name, "outcome",
                                class_word(o.cls), "class", o.error_class, "status", o.last_status,
                                "message", o.msg, "ms", ms);
        if (agora__json_emit_new(stdout, doc, AGORA__JSON_DOC) != 0)
            return 1;
    } else {
        printf("C-ECHO %s: %s [%s] %s (%.0f ms)\n", d->name, class_word(o.cls), o.error_class,
               o.msg, ms);
    }
    return exit_of(o.cls);
}

int agora__cmd_dicom_send(int argc, char **argv)
{
    const char *to = NULL, *stow = NULL, *calling = NULL, *timeout = NULL;
    int as_json = 0, echo = 0;
    const agora__cli_opt opts[] = {
        {"--to", 0, AGORA__CLI_VALUE, &to, "AE@HOST:PORT",
         "DICOM destination: its AE title, host and port (C-STORE)", 0, NULL, 0, 0},
        {"--stow", 0, AGORA__CLI_VALUE, &stow, "URL",
         "DICOMweb destination instead: the STOW-RS base URL (\"/studies\" is appended)", 0, NULL,
         0, 0},
        {"--calling-ae", 0, AGORA__CLI_VALUE, &calling, "AE",
         "our AE title in the association (default: AGORA)", 0, NULL, 0, 0},
        {"--timeout", 0, AGORA__CLI_VALUE, &timeout, "SECONDS",
         "limit on each connect, answer and response, 1..86400 (default: 30)", 0, NULL, 0, 0},
        {"--echo", 0, AGORA__CLI_FLAG, &echo, NULL, "only C-ECHO the --to destination (no files)",
         0, NULL, 0, 0},
        AGORA__CLI_OPT_JSON(&as_json, "print the outcome of every file as JSON"),
    };
    const agora__cli_cmd cmd = {
        NAME,
        "FILE|DIR... (--to AE@HOST:PORT | --stow URL) [--calling-ae AE] [--json]",
        "Send DICOM Part 10 files (folders: every Part 10 file under them) to a PACS the way\n"
        "`agora serve` sends results back: one association per batch, presentation contexts\n"
        "from the files' own SOP class and transfer syntax, or one STOW-RS request per batch.\n"
        "Prints each file's outcome: delivered, transient (a retry can help: the peer is\n"
        "down, busy or out of resources) or permanent (fix the configuration or the file),\n"
        "with its class (connection-refused, configuration-error, no-presentation-context...).\n"
        "Exit status: 0 all delivered, 75 only transient failures, 1 a permanent failure.",
        opts,
        AGORA__CLI_N(opts),
        0,
        SIZE_MAX};
    size_t n_pos;
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &st))
        return st;
    if ((to == NULL) == (stow == NULL))
        return agora__cli_usage_error(NAME, "give exactly one of --to and --stow");
    if (echo && to == NULL)
        return agora__cli_usage_error(NAME, "--echo needs --to");
    if (echo != (n_pos == 0))
        return agora__cli_usage_error(NAME, echo ? "--echo takes no files"
                                                 : "name at least one FILE or DIR");
    uint32_t timeout_s = 30;
    st = agora__cli_seconds(NAME, "--timeout", timeout, &timeout_s);
    if (st != 0)
        return st;
    char ae[17], host[256];
    agora__dest d;
    memset(&d, 0, sizeof d);
    d.timeout_ms = timeout_s * 1000u;
    d.calling_ae = calling;
    if (to) {
        if (agora__cli_ae_host_port(to, ae, sizeof ae, host, sizeof host, &d.port) != 0)
            return agora__cli_usage_error(NAME, "--to %s is not AE@HOST:PORT", to);
        d.kind = AGORA__DEST_DIMSE;
        d.name = to;
        d.ae_title = ae;
        d.host = host;
    } else {
        d.kind = AGORA__DEST_STOW;
        d.name = stow;
        d.url = stow;
    }
    if (echo)
        return run_echo(&d, as_json);

    agora__cli_files files = {0}, skipped = {0};
    agora__error err = {0};
    int rc = 0;
    for (size_t i = 0; i < n_pos && rc == 0; i++) {
        struct stat sb;
        if (stat(argv[1 + i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
            agora__cli_files under = {0};
            rc = agora__cli_files_collect(&under, argv[1 + i], 0, &err);
            for (size_t k = 0; k < under.n && rc == 0; k++)
                if (agora__cli_files_add(looks_part10(under.paths[k]) ? &files : &skipped,
                                         under.paths[k]) != 0)
                    rc = agora__error_set(&err, AGORA_ELIMIT, "too many files");
            agora__cli_files_free(&under);
        } else if (agora__cli_files_add(&files, argv[1 + i]) != 0) {
            rc = agora__error_set(&err, AGORA_ELIMIT, "too many files");
        }
    }
    if (rc == 0 && files.n == 0)
        rc = agora__error_set(&err, AGORA_EINVAL,
                              "no DICOM Part 10 file found in what was named; name the files "
                              "or the folder `agora results export` wrote");
    agora__deliver_outcome *each = rc == 0 ? calloc(files.n, sizeof *each) : NULL;
    if (rc == 0 && each == NULL)
        rc = agora__error_set(&err, AGORA_ENOMEM, "out of memory");
    if (rc != 0) {
        agora__cli_files_free(&files);
        agora__cli_files_free(&skipped);
        return agora__fail(NAME, &err);
    }
    size_t batch = d.kind == AGORA__DEST_DIMSE ? DIMSE_BATCH : STOW_BATCH;
    agora__deliver_outcome worst = {AGORA__DELIVER_OK, "delivered", "", 0};
    for (size_t at = 0; at < files.n && rc == 0; at += batch) {
        size_t k = files.n - at < batch ? files.n - at : batch;
        agora__deliver_outcome out;
        rc = agora__deliver_files_each(&d, (const char *const *)files.paths + at, k, each + at,
                                       &out, &err);
        if (rc == 0 && out.cls > worst.cls)
            worst = out;
    }
    if (rc != 0) {
        free(each);
        agora__cli_files_free(&files);
        agora__cli_files_free(&skipped);
        return agora__fail(NAME, &err);
    }
    size_t count[3] = {0, 0, 0};
    for (size_t i = 0; i < files.n; i++)
        count[each[i].cls]++;
    if (as_json) {
        json_t *arr = json_array(), *sk = json_array();
        for (size_t i = 0; i < files.n; i++)
            json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:i,s:s}", "path", files.paths[i],
                                                 "outcome", class_word(each[i].cls), "class",
                                                 each[i].error_class, "status", each[i].last_status,
                                                 "message", each[i].msg));
        for (size_t i = 0; i < skipped.n; i++)
            json_array_append_new(sk, json_string(skipped.paths[i]));
        json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:i,s:i,s:i,s:o,s:o}", "destination", d.name,
                                "kind", d.kind == AGORA__DEST_DIMSE ? "dimse" : "stow", "outcome",
                                class_word(worst.cls), "class", worst.error_class, "delivered",
                                (int)count[0], "transient", (int)count[1], "permanent",
                                (int)count[2], "files", arr, "skipped", sk);
        if (agora__json_emit_new(stdout, doc, AGORA__JSON_DOC) != 0)
            rc = 1;
    } else {
        for (size_t i = 0; i < files.n; i++)
            printf("%s: %s [%s] %s\n", files.paths[i], class_word(each[i].cls), each[i].error_class,
                   each[i].msg);
        for (size_t i = 0; i < skipped.n; i++)
            printf("%s: skipped (not a DICOM Part 10 file)\n", skipped.paths[i]);
        printf("%zu file%s to %s: %zu delivered, %zu transient, %zu permanent", files.n,
               files.n == 1 ? "" : "s", d.name, count[0], count[1], count[2]);
        if (worst.cls != AGORA__DELIVER_OK)
            printf(" (%s)", worst.error_class);
        printf("\n");
    }
    free(each);
    agora__cli_files_free(&files);
    agora__cli_files_free(&skipped);
    return rc ? 1 : exit_of(worst.cls);
}
