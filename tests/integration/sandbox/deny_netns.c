/*
 * deny_netns PROGRAM [ARGS...]: run PROGRAM under a seccomp filter that makes the kernel appear
 * to refuse network namespaces (clone/unshare with CLONE_NEWNET fail with EPERM). Used to test
 * the runner's weak-isolation path on a machine whose kernel allows everything.
 * Descriptors (notably fd 3) are inherited unchanged.
 */
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: deny_netns PROGRAM [ARGS...]\n");
        return 2;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWNET, CLONE_NEWNET)) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWNET, CLONE_NEWNET)) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0 ||
        seccomp_load(ctx) != 0) {
        fprintf(stderr, "deny_netns: installing the filter failed\n");
        return 1;
    }
    execv(argv[1], argv + 1);
    fprintf(stderr, "deny_netns: exec %s failed: %s\n", argv[1], strerror(errno));
    return 127;
}
