/*
 * deny_ns KIND PROGRAM [ARGS...]: run PROGRAM under a seccomp filter that makes the kernel appear
 * to refuse one kind of namespace (KIND = net, mount or user: clone/unshare with that flag fail
 * with EPERM). Used to test the runner's weak-isolation path on a machine whose kernel allows
 * everything. Descriptors (notably fd 3) are inherited unchanged.
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
    if (argc < 3) {
        fprintf(stderr, "usage: deny_ns net|mount|user PROGRAM [ARGS...]\n");
        return 2;
    }
    unsigned long flag = !strcmp(argv[1], "net")     ? CLONE_NEWNET
                         : !strcmp(argv[1], "mount") ? CLONE_NEWNS
                         : !strcmp(argv[1], "user")  ? CLONE_NEWUSER
                                                     : 0;
    if (flag == 0) {
        fprintf(stderr, "deny_ns: unknown namespace kind '%s'\n", argv[1]);
        return 2;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag)) != 0 ||
        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0) != 0 ||
        seccomp_load(ctx) != 0) {
        fprintf(stderr, "deny_ns: installing the filter failed\n");
        return 1;
    }
    execv(argv[2], argv + 2);
    fprintf(stderr, "deny_ns: exec %s failed: %s\n", argv[2], strerror(errno));
    return 127;
}
