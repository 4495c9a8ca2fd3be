/* Unit tests for host/cli/opt.c: the one option parser of the agora tool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spellings), cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help),      cmocka_unit_test(test_legacy_list),
        cmocka_unit_test(test_dispatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
