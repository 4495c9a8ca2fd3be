/*
 * The process-wide host channel. Plugin threads may log or report progress while the main thread
 * sends, so every write holds one mutex: frames never interleave on the stream.
 */
#include "runner.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_mutex_t chan_mu = PTHREAD_MUTEX_INITIALIZER;
static int chan_fd = AGORA__RUNNER_FD;

void agora__runner_channel_set_fd(int fd)
{
    chan_fd = fd;
}

int agora__runner_channel_fd(void)
{
    return chan_fd;
}

int agora__runner_send(const Agora__Ipc__Frame *frame)
{
    pthread_mutex_lock(&chan_mu);
    int rc = agora__runner_frame_write(chan_fd, frame, AGORA__FRAME_RUNNER_TO_HOST_MAX);
    pthread_mutex_unlock(&chan_mu);
    return rc;
}

int agora__runner_channel_trywrite(const uint8_t *buf, size_t len)
{
    /* From a signal handler: never wait for a thread that may be stopped mid-frame. */
    if (pthread_mutex_trylock(&chan_mu) != 0)
        return -EBUSY;
    int rc = 0;
    while (len > 0) {
        ssize_t n = write(chan_fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            break;
        }
        buf += n;
        len -= (size_t)n;
    }
    pthread_mutex_unlock(&chan_mu);
    return rc;
}

static int stage_exit(int stage)
{
    switch (stage) {
    case AGORA__IPC__STAGE__STAGE_SETUP:
        return AGORA__RUNNER_EXIT_SETUP;
    case AGORA__IPC__STAGE__STAGE_CONFINE:
        return AGORA__RUNNER_EXIT_CONFINE;
    case AGORA__IPC__STAGE__STAGE_LOAD:
        return AGORA__RUNNER_EXIT_LOAD;
    case AGORA__IPC__STAGE__STAGE_INIT:
        return AGORA__RUNNER_EXIT_INIT;
    default:
        return AGORA__RUNNER_EXIT_INTERNAL;
    }
}

/* The public variadic wrappers carry the printf attribute (runner.h); this one says so too, so
 * clang's -Wformat-nonliteral can follow the format through the va_list. */
__attribute__((format(printf, 3, 0))) static void send_error_v(int stage, int code,
                                                               const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    Agora__Ipc__Error e = AGORA__IPC__ERROR__INIT;
    e.stage = (Agora__Ipc__Stage)stage;
    e.code = code;
    e.message = msg;
    Agora__Ipc__Frame f = AGORA__IPC__FRAME__INIT;
    f.msg_case = AGORA__IPC__FRAME__MSG_ERROR;
    f.error = &e;
    /* Best effort: if the host is gone the exit status still says what happened. */
    (void)agora__runner_send(&f);
}

void agora__runner_send_error(int stage, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(stage, code, fmt, ap);
    va_end(ap);
}

void agora__runner_fail(int stage, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error_v(stage, code, fmt, ap);
    va_end(ap);
    _exit(code == -EPROTO ? AGORA__RUNNER_EXIT_PROTOCOL : stage_exit(stage));
}
