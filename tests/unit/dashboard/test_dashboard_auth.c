/* Unit tests: dashboard users (argon2id hashes, tokens), sessions, CSRF, login rate limit, HTML
 * escaping (host/dashboard). Every test works in its own temporary home. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "html.h"
#include "session.h"
#include "users.h"

static char home[256];

static int setup(void **state)
{
    (void)state;
    snprintf(home, sizeof home, "/tmp/agora-dash-unit-XXXXXX");
    return mkdtemp(home) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
    return system(cmd) == 0 ? 0 : -1;
}

static void file_text(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
}

static void test_user_store(void **state)
{
    (void)state;
    agora__error err = {0};
    assert_int_equal(agora__user_add(home, "alice", AGORA__ROLE_ADMIN, "correct horse", 13, &err),
                     0);
    assert_int_equal(agora__user_add(home, "bob", AGORA__ROLE_VIEWER, "battery staple", 14, &err),
                     0);
    assert_int_equal(agora__user_add(home, "alice", AGORA__ROLE_VIEWER, "whatever1", 9, &err),
                     AGORA__EEXIST);
    assert_int_equal(agora__user_add(home, "Bad Name", AGORA__ROLE_VIEWER, "whatever1", 9, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__user_add(home, "carol", AGORA__ROLE_VIEWER, "short", 5, &err),
                     AGORA_EINVAL);

    /* stored as argon2id, never in clear, mode 0600 */
    char path[512], text[8192];
    snprintf(path, sizeof path, "%s/users.json", home);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    file_text(path, text, sizeof text);
    assert_non_null(strstr(text, "$argon2id$"));
    assert_null(strstr(text, "correct horse"));
    assert_null(strstr(text, "battery staple"));

    agora__user u;
    assert_int_equal(agora__user_check_password(home, "alice", "correct horse", 13, &u, &err), 0);
    assert_string_equal(u.name, "alice");
    assert_int_equal(u.role, AGORA__ROLE_ADMIN);
    assert_int_equal(agora__user_check_password(home, "alice", "correct horsf", 13, &u, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__user_check_password(home, "nobody", "correct horse", 13, &u, &err),
                     AGORA_EINVAL);
    /* a password of another user does not open this one */
    assert_int_equal(agora__user_check_password(home, "alice", "battery staple", 14, &u, &err),
                     AGORA_EINVAL);

    agora__user *list = NULL;
    size_t n = 0;
    assert_int_equal(agora__user_list(home, &list, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[1].name, "bob");
    assert_int_equal(list[1].role, AGORA__ROLE_VIEWER);
    assert_false(list[1].has_token);
    free(list);

    assert_int_equal(agora__user_remove(home, "bob", &err), 0);
    assert_int_equal(agora__user_remove(home, "bob", &err), AGORA__ENOENT);
    assert_int_equal(agora__user_check_password(home, "bob", "battery staple", 14, &u, &err),
                     AGORA_EINVAL);
}

static void test_token(void **state)
{
    (void)state;
    agora__error err = {0};
    assert_int_equal(agora__user_add(home, "ops", AGORA__ROLE_OPERATOR, "op-password", 11, &err),
                     0);
    char t1[65], t2[65];
    assert_int_equal(agora__user_token_new(home, "ops", t1, &err), 0);
    assert_int_equal(strlen(t1), 64);
    agora__user u;
    assert_int_equal(agora__user_check_token(home, t1, &u, &err), 0);
    assert_string_equal(u.name, "ops");
    /* only the hash is stored */
    char path[512], text[8192];
    snprintf(path, sizeof path, "%s/users.json", home);
    file_text(path, text, sizeof text);
    assert_null(strstr(text, t1));
    /* a new token replaces the old one */
    assert_int_equal(agora__user_token_new(home, "ops", t2, &err), 0);
    assert_int_equal(agora__user_check_token(home, t1, &u, &err), AGORA_EINVAL);
    assert_int_equal(agora__user_check_token(home, t2, &u, &err), 0);
    t2[0] = t2[0] == 'a' ? 'b' : 'a';
    assert_int_equal(agora__user_check_token(home, t2, &u, &err), AGORA_EINVAL);
    assert_int_equal(agora__user_check_token(home, "", &u, &err), AGORA_EINVAL);
    assert_int_equal(agora__user_token_new(home, "nobody", t2, &err), AGORA__ENOENT);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_password_file(void **state)
{
    (void)state;
    char path[512], buf[AGORA__USER_PW_MAX + 2];
    size_t len = 0;
    agora__error err = {0};
    snprintf(path, sizeof path, "%s/pw", home);
    write_file(path, "s3cret-pass\nsecond line\n", 0600);
    assert_int_equal(agora__user_read_password_file(path, buf, sizeof buf, &len, &err), 0);
    assert_int_equal(len, 11);
    assert_memory_equal(buf, "s3cret-pass", 11);
    write_file(path, "s3cret-pass\n", 0644);
    assert_int_equal(agora__user_read_password_file(path, buf, sizeof buf, &len, &err),
                     AGORA_EINVAL);
    assert_non_null(strstr(err.msg, "chmod 600"));
    write_file(path, "short\n", 0600);
    assert_int_equal(agora__user_read_password_file(path, buf, sizeof buf, &len, &err),
                     AGORA_EINVAL);
    assert_int_equal(agora__user_read_password_file("/nonexistent/pw", buf, sizeof buf, &len, &err),
                     AGORA__ENOENT);
}

static void test_sessions(void **state)
{
    (void)state;
    agora__sessions *s = NULL;
    assert_int_equal(agora__sessions_new(&s, NULL), 0);
    agora__sessions_set_now(s, 1000000);
    agora__user u = {.name = "alice", .role = AGORA__ROLE_OPERATOR};
    agora__session a, b, got;
    assert_int_equal(agora__session_create(s, &u, &a, NULL), 0);
    assert_int_equal(agora__session_create(s, &u, &b, NULL), 0);
    assert_int_equal(strlen(a.id), 64);
    assert_int_equal(strlen(a.csrf), 64);
    assert_string_not_equal(a.id, b.id);
    assert_string_not_equal(a.id, a.csrf);
    assert_int_equal(agora__session_get(s, a.id, &got), 0);
    assert_string_equal(got.user, "alice");
    assert_int_equal(got.role, AGORA__ROLE_OPERATOR);

    /* CSRF: only this session's token */
    assert_true(agora__session_csrf_ok(&got, a.csrf));
    assert_false(agora__session_csrf_ok(&got, b.csrf));
    assert_false(agora__session_csrf_ok(&got, NULL));
    assert_false(agora__session_csrf_ok(&got, ""));
    assert_false(agora__session_csrf_ok(&got, a.id));

    /* malformed and unknown ids */
    assert_int_equal(agora__session_get(s, "", &got), AGORA__ENOENT);
    assert_int_equal(agora__session_get(s, "zz", &got), AGORA__ENOENT);
    char other[65];
    memcpy(other, a.id, 65);
    other[10] = other[10] == '0' ? '1' : '0';
    assert_int_equal(agora__session_get(s, other, &got), AGORA__ENOENT);

    /* idle expiry; a request keeps a session alive */
    agora__sessions_set_now(s, 1000000 + AGORA__SESSION_IDLE_MS - 1);
    assert_int_equal(agora__session_get(s, b.id, &got), 0);
    agora__sessions_set_now(s, 1000000 + AGORA__SESSION_IDLE_MS + 1);
    assert_int_equal(agora__session_get(s, a.id, &got), AGORA__ENOENT);
    assert_int_equal(agora__session_get(s, b.id, &got), 0);

    /* logout */
    agora__session_end(s, b.id);
    assert_int_equal(agora__session_get(s, b.id, &got), AGORA__ENOENT);

    /* absolute expiry even when used */
    agora__session c;
    uint64_t t = 5000000;
    agora__sessions_set_now(s, t);
    assert_int_equal(agora__session_create(s, &u, &c, NULL), 0);
    for (uint64_t at = t; at < t + AGORA__SESSION_MAX_MS; at += AGORA__SESSION_IDLE_MS / 2) {
        agora__sessions_set_now(s, at);
        assert_int_equal(agora__session_get(s, c.id, &got), 0);
    }
    agora__sessions_set_now(s, t + AGORA__SESSION_MAX_MS + 1);
    assert_int_equal(agora__session_get(s, c.id, &got), AGORA__ENOENT);
    agora__sessions_free(s);
}

static void test_login_rate_limit(void **state)
{
    (void)state;
    agora__sessions *s = NULL;
    assert_int_equal(agora__sessions_new(&s, NULL), 0);
    uint64_t t = 10000000;
    agora__sessions_set_now(s, t);
    for (unsigned i = 0; i < AGORA__LOGIN_FREE_FAILS; i++) {
        assert_int_equal(agora__login_wait_ms(s, "alice", "127.0.0.1"), 0);
        agora__login_failed(s, "alice", "127.0.0.1");
    }
    assert_int_equal(agora__login_wait_ms(s, "alice", "127.0.0.1"), 0);
    agora__login_failed(s, "alice", "127.0.0.1"); /* the fifth */
    assert_int_equal(agora__login_wait_ms(s, "alice", "127.0.0.1"), 1000);
    /* per user: another address waits too; per address: another user waits too */
    assert_int_equal(agora__login_wait_ms(s, "alice", "127.0.0.2"), 1000);
    assert_int_equal(agora__login_wait_ms(s, "bob", "127.0.0.1"), 1000);
    assert_int_equal(agora__login_wait_ms(s, "bob", "127.0.0.2"), 0);
    /* doubling, capped */
    agora__login_failed(s, "alice", "127.0.0.1");
    assert_int_equal(agora__login_wait_ms(s, "alice", "127.0.0.1"), 2000);
    for (int i = 0; i < 20; i++)
        agora__login_failed(s, "alice", "127.0.0.1");
    assert_int_equal(agora__login_wait_ms(s, "alice", "127.0.0.1"), AGORA__LOGIN_MAX_WAIT_MS);
    agora__sessions_set_now(s, t + AGORA__LOGIN_MAX_WAIT_MS + 1);
    assert_int_equal(agora__login_wait_ms(s, "alice", "127.0.0.1"), 0);
    /* a success clears the user's count, not the address's */
    agora__login_succeeded(s, "alice");
    agora__login_failed(s, "alice", "127.0.0.9");
    assert_int_equal(agora__login_wait_ms(s, "alice", "127.0.0.9"), 0);
    agora__login_failed(s, "carol", "127.0.0.1");
    assert_true(agora__login_wait_ms(s, "carol", "127.0.0.1") > 0);
    /* forgotten after a quiet period */
    agora__sessions_set_now(s, t + AGORA__LOGIN_MAX_WAIT_MS + AGORA__LOGIN_FORGET_MS + 10);
    agora__login_failed(s, "dave", "127.0.0.1");
    assert_int_equal(agora__login_wait_ms(s, "dave", "127.0.0.1"), 0);
    agora__sessions_free(s);
}

static void test_html_escape(void **state)
{
    (void)state;
    agora__html h;
    agora__html_init(&h);
    agora__html_raw(&h, "<td>");
    agora__html_text(&h, "<script>alert('x')</script> & \"q\"");
    agora__html_rawf(&h, "</td><td>%d</td>", 42);
    agora__html_text(&h, NULL);
    assert_false(agora__html_failed(&h));
    assert_string_equal(h.p, "<td>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; "
                             "&quot;q&quot;</td><td>42</td>");
    agora__html_free(&h);

    char out[16];
    assert_int_equal(agora__html_escape("a<b", out, sizeof out), 6);
    assert_string_equal(out, "a&lt;b");
    /* truncation keeps whole entities and nothing after the cut */
    assert_int_equal(agora__html_escape("abcdefghij<klm", out, 14), 17);
    assert_string_equal(out, "abcdefghij");
    assert_int_equal(agora__html_escape("", out, sizeof out), 0);
    assert_string_equal(out, "");

    /* a long page grows; the cap is sticky */
    agora__html_init(&h);
    for (int i = 0; i < 10000; i++)
        agora__html_text(&h, "<>");
    assert_int_equal(h.len, 80000);
    agora__html_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_user_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_login_rate_limit),
        cmocka_unit_test(test_html_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
