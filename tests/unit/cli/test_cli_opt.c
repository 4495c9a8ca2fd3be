/* Unit tests for host/cli/opt.c: the one option parser of the agora tool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "opt.h"

typedef struct parsed {
    const char *out;
    const char *home;
    int json;
    agora__cli_list grant;
    size_t n_pos;
    int status;
    int go;
    char *err_text;
    char *out_text;
} parsed;

static int is_upper_word(const char *w)
{
    return w[0] >= 'A' && w[0] <= 'Z';
}

/* Parse a NULL-terminated word list (copied into a writable argv) against a small table. */
static void run(parsed *p, char **argv_out, int legacy, unsigned out_flags,
                const char *const *words)
{
    memset(p, 0, sizeof *p);
    int argc = 0;
    while (words[argc] != NULL) {
        argv_out[argc] = (char *)words[argc];
        argc++;
    }
    const agora__cli_opt opts[] = {
        {"--out", 'o', AGORA__CLI_VALUE, &p->out, "FILE", "write here", out_flags, NULL},
        {"--home", 0, AGORA__CLI_VALUE, &p->home, "DIR", "clinic home", 0, NULL},
        {"--json", 0, AGORA__CLI_FLAG, &p->json, NULL, "print JSON", 0, NULL},
        {"--grant", 0, AGORA__CLI_LIST, &p->grant, "OPT", "grant an option", 0,
         legacy ? is_upper_word : NULL},
    };
    const agora__cli_cmd cmd = {
        "test", "[OPTIONS] A [B]", "Test command.", opts, AGORA__CLI_N(opts), 1, 2};
    size_t elen = 0, olen = 0;
    FILE *err = open_memstream(&p->err_text, &elen);
    FILE *out = open_memstream(&p->out_text, &olen);
    assert_non_null(err);
    assert_non_null(out);
    p->go = agora__cli_parse_to(&cmd, argc, argv_out, &p->n_pos, &p->status, out, err);
    fclose(err);
    fclose(out);
}

static void done(parsed *p)
{
    agora__cli_list_free(&p->grant);
    free(p->err_text);
    free(p->out_text);
}

static void test_spellings(void **state)
{
    (void)state;
    parsed p;
    char *argv[16];
    const char *w[] = {"test", "--out=x.json", "pos1", "--home", "/h", "--json", "--grant",
                       "A",    "--grant=B",    "pos2", NULL};
    run(&p, argv, 0, 0, w);
    assert_int_equal(p.go, 1);
    assert_string_equal(p.out, "x.json");
    assert_string_equal(p.home, "/h");
    assert_int_equal(p.json, 1);
    assert_int_equal(p.grant.n, 2);
    assert_string_equal(p.grant.v[0], "A");
    assert_string_equal(p.grant.v[1], "B");
    assert_int_equal(p.n_pos, 2);
    assert_string_equal(argv[1], "pos1");
    assert_string_equal(argv[2], "pos2");
    assert_string_equal(p.err_text, "");
    done(&p);

    const char *w2[] = {"test", "-o", "a", "-ob", "--", "--json", NULL};
    run(&p, argv, 0, 0, w2);
    assert_int_equal(p.go, 1);
    assert_string_equal(p.out, "b"); /* the later value wins */
    assert_int_equal(p.json, 0);     /* after --: positional */
    assert_int_equal(p.n_pos, 1);
    assert_string_equal(argv[1], "--json");
    done(&p);

    const char *w3[] = {"test", "-", NULL};
    run(&p, argv, 0, 0, w3);
    assert_int_equal(p.go, 1);
    assert_string_equal(argv[1], "-");
    done(&p);
}

static void test_usage_errors(void **state)
{
    (void)state;
    parsed p;
    char *argv[16];
    const char *unknown[] = {"test", "x", "--foo=1", NULL};
    run(&p, argv, 0, 0, unknown);
    assert_int_equal(p.go, 0);
    assert_int_equal(p.status, 2);
    assert_string_equal(p.err_text, "agora test: unknown option --foo (see agora test --help)\n");
    done(&p);

    const char *ushort[] = {"test", "x", "-z", NULL};
    run(&p, argv, 0, 0, ushort);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err_text, "unknown option -z"));
    done(&p);

    const char *novalue[] = {"test", "x", "--out", NULL};
    run(&p, argv, 0, 0, novalue);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err_text, "--out needs a value"));
    done(&p);

    const char *flagval[] = {"test", "x", "--json=1", NULL};
    run(&p, argv, 0, 0, flagval);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err_text, "--json takes no value"));
    done(&p);

    const char *nopos[] = {"test", "--json", NULL};
    run(&p, argv, 0, 0, nopos);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err_text, "missing argument"));
    done(&p);

    const char *many[] = {"test", "a", "b", "c", NULL};
    run(&p, argv, 0, 0, many);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err_text, "unexpected argument 'c'"));
    done(&p);

    const char *req[] = {"test", "a", NULL};
    run(&p, argv, 0, AGORA__CLI_REQUIRED, req);
    assert_int_equal(p.status, 2);
    assert_non_null(strstr(p.err_text, "--out FILE is required"));
    done(&p);

    /* A list parsed before the error is freed by the parser (ASan checks the leak). */
    const char *leak[] = {"test", "--grant", "A", "--bad", NULL};
    run(&p, argv, 0, 0, leak);
    assert_int_equal(p.status, 2);
    assert_null(p.grant.v);
    done(&p);
}

static void test_help(void **state)
{
    (void)state;
    parsed p;
    char *argv[16];
    const char *w[] = {"test", "--grant", "A", "--help", "--foo", NULL};
    run(&p, argv, 0, AGORA__CLI_REQUIRED, w);
    assert_int_equal(p.go, 0);
    assert_int_equal(p.status, 0);
    assert_string_equal(p.err_text, "");
    assert_non_null(strstr(p.out_text, "usage: agora test [OPTIONS] A [B]\n"));
    assert_non_null(strstr(p.out_text, "Test command."));
    assert_non_null(strstr(p.out_text, "-o, --out FILE"));
    assert_non_null(strstr(p.out_text, "--grant OPT"));
    assert_non_null(strstr(p.out_text, "(repeatable)"));
    assert_non_null(strstr(p.out_text, "(required)"));
    assert_non_null(strstr(p.out_text, "-h, --help"));
    assert_null(p.grant.v);
    done(&p);
}

static void test_legacy_list(void **state)
{
    (void)state;
    parsed p;
    char *argv[16];
    const char *w[] = {"test", "--grant", "A", "B", "x", NULL};
    run(&p, argv, 1, 0, w);
    assert_int_equal(p.go, 1);
    assert_int_equal(p.grant.n, 2);
    assert_string_equal(p.grant.v[1], "B");
    assert_int_equal(p.n_pos, 1);
    assert_string_equal(argv[1], "x");
    assert_non_null(strstr(p.err_text, "deprecated"));
    done(&p);

    /* The repeated spelling gives no warning. */
    const char *w2[] = {"test", "--grant", "A", "--grant", "B", "x", NULL};
    run(&p, argv, 1, 0, w2);
    assert_int_equal(p.grant.n, 2);
    assert_string_equal(p.err_text, "");
    done(&p);
}

static int sub_ran;
static int sub_a(int argc, char **argv)
{
    sub_ran = argc;
    return strcmp(argv[0], "a") == 0 ? 7 : 1;
}

static void test_dispatch(void **state)
{
    (void)state;
    const agora__cli_sub subs[] = {{"a", sub_a, "the a subcommand"}};
    char *err_text = NULL, *out_text = NULL;
    size_t el = 0, ol = 0;
    FILE *err = open_memstream(&err_text, &el), *out = open_memstream(&out_text, &ol);
    char *a1[] = {"top", "a", "x"};
    assert_int_equal(agora__cli_dispatch_to("top", "About.", subs, 1, 3, a1, out, err), 7);
    assert_int_equal(sub_ran, 2);
    char *a2[] = {"top", "--help"};
    assert_int_equal(agora__cli_dispatch_to("top", "About.", subs, 1, 2, a2, out, err), 0);
    char *a3[] = {"top", "--nope"};
    assert_int_equal(agora__cli_dispatch_to("top", "About.", subs, 1, 2, a3, out, err), 2);
    char *a4[] = {"top", "zzz"};
    assert_int_equal(agora__cli_dispatch_to("top", "About.", subs, 1, 2, a4, out, err), 2);
    char *a5[] = {"top"};
    assert_int_equal(agora__cli_dispatch_to("top", "About.", subs, 1, 1, a5, out, err), 2);
    fclose(err);
    fclose(out);
    assert_non_null(strstr(out_text, "subcommands:\n  a "));
    assert_non_null(strstr(err_text, "agora top: unknown option --nope (see agora top --help)"));
    assert_non_null(strstr(err_text, "unknown subcommand 'zzz'"));
    assert_non_null(strstr(err_text, "missing subcommand"));
    free(err_text);
    free(out_text);
}

/* Config files: the keys are the table's long names; the words go before argv. */
static void config_words(const char *text, char ***w, size_t *n, int *rc, char **err_text)
{
    char path[] = "/tmp/agora-test-opt-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    int dummy = 0;
    const char *v = NULL;
    agora__cli_list l = {0};
    const agora__cli_opt opts[] = {
        {"--home", 0, AGORA__CLI_VALUE, &v, "DIR", "clinic home", 0, NULL},
        {"--json", 0, AGORA__CLI_FLAG, &dummy, NULL, "print JSON", 0, NULL},
        {"--grant", 0, AGORA__CLI_LIST, &l, "OPT", "grant", 0, NULL},
    };
    const agora__cli_cmd cmd = {"test", "", "", opts, AGORA__CLI_N(opts), 0, 0};
    size_t elen = 0;
    FILE *err = open_memstream(err_text, &elen);
    *rc = agora__cli_config_read(&cmd, path, w, n, err);
    fclose(err);
    unlink(path);
}

static void test_config_file(void **state)
{
    (void)state;
    char **w;
    size_t n;
    int rc;
    char *e = NULL;
    config_words("# comment\n\n  home = /var/lib/agora  # trailing\njson = true\n"
                 "grant = \"A # not a comment\"\ngrant = B\\\"C\njson = false\n",
                 &w, &n, &rc, &e);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 7);
    assert_string_equal(w[0], "--home");
    assert_string_equal(w[1], "/var/lib/agora");
    assert_string_equal(w[2], "--json");
    assert_string_equal(w[3], "--grant");
    assert_string_equal(w[4], "A # not a comment");
    assert_string_equal(w[5], "--grant");
    assert_string_equal(w[6], "B\\\"C"); /* escapes only inside quotes */
    agora__cli_words_free(w, n);
    free(e);

    const char *bad[][2] = {
        {"home = x\nnope = 1\n", "f:2: unknown key 'nope'"},
        {"config = other\n", "unknown key 'config'"},
        {"json = yes\n", "json takes true or false"},
        {"home = \"open\n", "unterminated quoted value"},
        {"home = \"a\" b\n", "text after the closing quote"},
        {"--home = x\n", "unknown key '--home'"},
        {"home\n", "expected key = value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = NULL;
        config_words(bad[i][0], &w, &n, &rc, &e);
        assert_int_equal(rc, 2);
        assert_null(w);
        const char *want = bad[i][1];
        if (strncmp(want, "f:", 2) == 0)
            want += 2;
        if (strstr(e, want) == NULL)
            fail_msg("case %zu: '%s' not in '%s'", i, want, e);
        free(e);
    }
    /* A missing file: 1, with its name. */
    int dummy = 0;
    const agora__cli_opt opts[] = {{"--json", 0, AGORA__CLI_FLAG, &dummy, NULL, "j", 0, NULL}};
    const agora__cli_cmd cmd = {"test", "", "", opts, 1, 0, 0};
    size_t elen = 0;
    FILE *err = open_memstream(&e, &elen);
    assert_int_equal(agora__cli_config_read(&cmd, "/nonexistent/x.conf", &w, &n, err), 1);
    fclose(err);
    assert_non_null(strstr(e, "/nonexistent/x.conf"));
    free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spellings), cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help),      cmocka_unit_test(test_legacy_list),
        cmocka_unit_test(test_dispatch),  cmocka_unit_test(test_config_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
