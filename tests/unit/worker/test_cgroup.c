/* cgroup v2 detection and parsing (host/worker/cgroup.c). These machines have cgroup v1 only,
 * so the v2 path is exercised here on recorded /proc texts; detection on this host must fall
 * back to rlimits and say why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "worker_internal.h"

/* A systemd host with only the unified hierarchy. */
static const char mi_v2[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";
/* This VM: v1 controllers plus a hybrid unified mount. */
static const char mi_v1[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";
static const char mi_hybrid[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 31 0:35 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n";

static void test_parse(void **state)
{
    (void)state;
    char dir[512], why[256];
    assert_int_equal(agora__cgroup_parse(mi_v2, "0::/system.slice/agora.service\n", dir, sizeof dir,
                                         why, sizeof why),
                     1);
    assert_string_equal(dir, "/sys/fs/cgroup/system.slice/agora.service");
    assert_int_equal(agora__cgroup_parse(mi_v2, "0::/\n", dir, sizeof dir, why, sizeof why), 1);
    assert_string_equal(dir, "/sys/fs/cgroup");
    assert_int_equal(agora__cgroup_parse(mi_hybrid, "4:memory:/x\n1:cpu:/\n0::/user.slice\n", dir,
                                         sizeof dir, why, sizeof why),
                     1);
    assert_string_equal(dir, "/sys/fs/cgroup/unified/user.slice");
    /* v1 only: no cgroup2 mount */
    assert_int_equal(
        agora__cgroup_parse(mi_v1, "4:memory:/x\n0::/\n", dir, sizeof dir, why, sizeof why), 0);
    assert_non_null(strstr(why, "cgroup v1 only"));
    /* a v2 mount but this process is not in it */
    assert_int_equal(agora__cgroup_parse(mi_v2, "4:memory:/x\n", dir, sizeof dir, why, sizeof why),
                     0);
    assert_non_null(strstr(why, "not in the cgroup v2 hierarchy"));
    /* hostile or odd paths */
    assert_int_equal(
        agora__cgroup_parse(mi_v2, "0::/a/../../etc\n", dir, sizeof dir, why, sizeof why), 0);
    assert_int_equal(agora__cgroup_parse(mi_v2, "0::relative\n", dir, sizeof dir, why, sizeof why),
                     0);
    assert_int_equal(agora__cgroup_parse("", "", dir, sizeof dir, why, sizeof why), 0);
}

static void test_controllers_and_events(void **state)
{
    (void)state;
    assert_true(agora__cgroup_controllers_ok("cpuset cpu io memory hugetlb pids rdma misc\n"));
    assert_true(agora__cgroup_controllers_ok("memory pids"));
    assert_false(agora__cgroup_controllers_ok("cpu io memory\n"));
    assert_false(agora__cgroup_controllers_ok("cpu pidsx memoryy\n"));
    assert_false(agora__cgroup_controllers_ok(""));
    assert_int_equal(agora__cgroup_oom_kills_text("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\n"
                                                  "oom_group_kill 0\n"),
                     2);
    assert_int_equal(agora__cgroup_oom_kills_text("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"), 0);
    assert_int_equal(agora__cgroup_oom_kills_text("oom_group_kill 5\n"), 0);
    assert_int_equal(agora__cgroup_oom_kills_text(""), 0);
}

/* On this host: whatever it has, detection answers, and rlimit comes with a reason. */
static void test_detect_here(void **state)
{
    (void)state;
    const agora__cgroup_env *c = agora__cgroup_detect();
    assert_non_null(c);
    assert_true(c->why[0] != '\0');
    assert_string_equal(agora__cgroup_mechanism(c), c->usable ? "cgroup-v2" : "rlimit");
    assert_ptr_equal(agora__cgroup_detect(), c); /* cached */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_controllers_and_events),
        cmocka_unit_test(test_detect_here),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
