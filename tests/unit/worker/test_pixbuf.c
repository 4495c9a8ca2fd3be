/* Pixel buffers: writable until sealed; after sealing nobody can write, resize or unseal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "worker.h"

static void test_create_fill_seal(void **state)
{
    (void)state;
    agora__pixbuf pb;
    agora__error err;
    assert_int_equal(agora__pixbuf_create(8192, &pb, &err), 0);
    assert_non_null(pb.data);
    memset(pb.data, 0x5a, 8192);
    assert_int_equal(agora__pixbuf_seal(&pb, &err), 0);
    assert_null(pb.data);
    assert_true(pb.sealed);

    int seals = fcntl(pb.fd, F_GET_SEALS);
    assert_true(seals & F_SEAL_WRITE);
    assert_true(seals & F_SEAL_SHRINK);
    assert_true(seals & F_SEAL_GROW);
    assert_true(seals & F_SEAL_SEAL);

    /* write(2) after sealing fails with EPERM. */
    uint8_t b = 1;
    assert_int_equal(pwrite(pb.fd, &b, 1, 0), -1);
    assert_int_equal(errno, EPERM);
    /* A writable shared mapping is refused. */
    void *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, pb.fd, 0);
    assert_true(p == MAP_FAILED);
    /* Resizing either way is refused. */
    assert_int_equal(ftruncate(pb.fd, 4096), -1);
    assert_int_equal(ftruncate(pb.fd, 16384), -1);
    /* Seals cannot be removed or extended. */
    assert_int_equal(fcntl(pb.fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
    /* The content is what was written before sealing. */
    const uint8_t *ro = mmap(NULL, 8192, PROT_READ, MAP_SHARED, pb.fd, 0);
    assert_true(ro != MAP_FAILED);
    assert_int_equal(ro[0], 0x5a);
    assert_int_equal(ro[8191], 0x5a);
    munmap((void *)ro, 8192);
    /* Sealing twice is harmless. */
    assert_int_equal(agora__pixbuf_seal(&pb, &err), 0);
    agora__pixbuf_free(&pb);
    assert_int_equal(pb.fd, -1);
}

static void test_write_through_dup_after_seal(void **state)
{
    (void)state;
    agora__pixbuf pb;
    agora__error err;
    assert_int_equal(agora__pixbuf_create(4096, &pb, &err), 0);
    int dup_fd = dup(pb.fd);
    assert_int_equal(agora__pixbuf_seal(&pb, &err), 0);
    /* Seals belong to the file, not the descriptor: a duplicate (what a worker gets) is just as
     * read-only. */
    uint8_t b = 1;
    assert_int_equal(pwrite(dup_fd, &b, 1, 0), -1);
    assert_int_equal(errno, EPERM);
    close(dup_fd);
    agora__pixbuf_free(&pb);
}

static void test_sizes_and_free(void **state)
{
    (void)state;
    agora__pixbuf pb;
    agora__error err;
    assert_int_equal(agora__pixbuf_create(0, &pb, &err), AGORA_EINVAL);
    assert_int_equal(pb.fd, -1);
    assert_int_equal(agora__pixbuf_create(AGORA__PIXBUF_MAX + 1, &pb, &err), AGORA_EINVAL);
    /* Sealing an empty or zeroed buffer is refused; freeing one is harmless and does not close
     * descriptor 0. */
    int fd0_before = fcntl(0, F_GETFD) >= 0;
    agora__pixbuf zero = {0};
    assert_int_equal(agora__pixbuf_seal(&zero, &err), AGORA_EINVAL);
    agora__pixbuf_free(&zero);
    assert_int_equal(fcntl(0, F_GETFD) >= 0, fd0_before);
    agora__pixbuf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_fill_seal),
        cmocka_unit_test(test_write_through_dup_after_seal),
        cmocka_unit_test(test_sizes_and_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
