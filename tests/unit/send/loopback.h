/* The send tests' loopback listener: a TCP socket bound to 127.0.0.1 on a port the kernel
 * picks, listening (backlog 4). Returns the socket, *port its port; the test closes it. */
#ifndef AGORA_TEST_SEND_LOOPBACK_H
#define AGORA_TEST_SEND_LOOPBACK_H

#include <netinet/in.h>
#include <sys/socket.h>

static inline int loopback_listener(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 4), 0);
    socklen_t l = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return s;
}

#endif
