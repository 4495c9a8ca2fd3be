/*
 * libFuzzer: what a hostile agora-runner can send the host, decoded and checked exactly as the
 * host does, with the host's caps.
 *
 * Input: byte 0 selects the channel and parameters, bytes 1..7 the geometry / request the host
 * would have sent; the rest is what the runner wrote.
 *   - plugin channel (byte0 bit 0 = 0): the bytes are a stream fed to host/proto/frame.c's
 *     reader (8 MiB frames, 64 MiB unpack budget, no descriptors); every frame is handled as
 *     host/worker/pool.c does: Result through agora__result_validate (validate.c) against the
 *     geometry and a mask memfd, Ready through agora__ready_check and its warnings, Error and Log
 *     texts through agora__sanitize_message.
 *   - ingest channel (bit 0 = 1): the bytes are one frame body for host/proto/frame.c's
 *     agora__frame_decode (the ingest client's decoder); an IngestReply goes through
 *     agora__ingest_check_reply for the request op chosen by byte 1 (METADATA, DECODE,
 *     DEID_UIDS, DEID_WRITE, DUMP) and then the deid/dump checks of host/ingest/deid.c, as the client does.
 * Nothing may crash, leak, or read outside its buffers; memory stays within the budgets.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agora/agora.h"
#include "frame.h"
#include "ingest_internal.h"
#include "runner_proc.h"
#include "worker_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MASK_BYTES (1u << 20)

static int mask_fd(void)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz-masks", MFD_CLOEXEC);
        if (fd >= 0 && ftruncate(fd, MASK_BYTES) != 0) {
            close(fd);
            fd = -1;
        }
    }
    return fd;
}

static void plugin_frame(const Agora__Ipc__Frame *f, const agora__result_geom *g)
{
    char line[AGORA__MAX_ERROR_LEN + 1];
    agora__error err = {0};
    switch (f->msg_case) {
    case AGORA__IPC__FRAME__MSG_RESULT: {
        agora__validated v;
        if (agora__result_validate(f->result, g, mask_fd(), &v, &err) == 0)
            agora__validated_free(&v);
        agora__sanitize_message(err.msg, line, sizeof line);
        if (f->result->error)
            agora__sanitize_message(f->result->error, line, sizeof line);
        break;
    }
    case AGORA__IPC__FRAME__MSG_READY: {
        /* pool.c on_ready: the real checks (host/proto/ready.c), then the warnings logged. */
        const Agora__Ipc__Ready *r = f->ready;
        if (agora__ready_check(r, AGORA__PROTO_VERSION, "org.example.fuzz", "1.0.0", &err) < 0) {
            agora__sanitize_message(err.msg, line, sizeof line);
            break;
        }
        for (size_t i = 0; i < r->n_isolation_warnings && i < 16; i++)
            agora__sanitize_message(r->isolation_warnings[i], line, sizeof line);
        break;
    }
    case AGORA__IPC__FRAME__MSG_ERROR:
        agora__sanitize_message(f->error->message, line, sizeof line);
        break;
    case AGORA__IPC__FRAME__MSG_LOG:
        agora__sanitize_message(f->log->text, line, sizeof line);
        break;
    default:
        break; /* Progress carries numbers only; anything else is a protocol error */
    }
}

static void plugin_channel(const uint8_t *p, size_t n, const uint8_t hdr[8])
{
    agora__result_geom g = {(uint32_t)hdr[1] + 1, (uint32_t)hdr[2] + 1, (uint32_t)(hdr[3] & 7) + 1,
                            ((uint64_t)hdr[4] << 8 | hdr[5]) * 16, 10000};
    if (g.output_bytes > MASK_BYTES)
        g.output_bytes = MASK_BYTES;
    agora__frame_reader r;
    agora__frame_reader_init(&r, AGORA__FRAME_RUNNER_TO_HOST_MAX, 0);
    agora__error err = {0};
    if (agora__frame_reader_feed(&r, p, n, &err) == 0) {
        for (int i = 0; i < 64; i++) {
            Agora__Ipc__Frame *f = NULL;
            if (agora__frame_reader_next(&r, &f, &err) != 1)
                break;
            plugin_frame(f, &g);
            agora__frame_free(&r, f);
        }
    }
    agora__frame_reader_free(&r);
}

static void ingest_channel(const uint8_t *p, size_t n, const uint8_t hdr[8])
{
    agora__error err = {0};
    Agora__Ipc__Frame *f = agora__frame_decode(p, n, AGORA__FRAME_RUNNER_TO_HOST_MAX, &err);
    if (f == NULL)
        return;
    if (f->msg_case != AGORA__IPC__FRAME__MSG_INGEST_REPLY) {
        agora__frame_decoded_free(f);
        return;
    }
    const Agora__Ipc__IngestReply *r = f->ingest_reply;
    int op = hdr[1] % 5 + 1;
    uint32_t n_frames = (uint32_t)(hdr[2] & 15) + 1;
    uint64_t out_len = ((uint64_t)hdr[3] << 16 | (uint64_t)hdr[4] << 8 | hdr[5]) + 1;
    /* The request id matches when hdr[6] is even: both outcomes are worth exploring. */
    uint64_t request_id = (hdr[6] & 1) ? (uint64_t)hdr[7] : r->request_id;
    agora__ingest_meta meta;
    memset(&meta, 0, sizeof meta);
    agora__dicom_pixel_format fmt;
    int code = 0;
    int verdict = agora__ingest_check_reply(r, request_id, op, n_frames, out_len,
                                            op <= 2 ? &meta : NULL, &fmt, &code, &err);
    if (op <= 2) {
        if (verdict == AGORA__INGEST_REPLY_OK)
            agora__ingest_meta_free(&meta);
    } else if (verdict != AGORA__INGEST_REPLY_HOSTILE) {
        static const char *const issued[] = {"2.25.1", "2.25.339960131139516219436419112327"};
        agora__ingest_deid_uids uids;
        agora__ingest_deid_written w;
        agora__ingest_deid_check dc = {0, NULL, NULL, issued, 2, out_len};
        agora__ingest_dump_check pc = {out_len, 0};
        if (op == AGORA__IPC__INGEST_OP__INGEST_DEID_UIDS) {
            dc.uids = &uids;
            memset(&uids, 0, sizeof uids);
            (void)agora__ingest_check_deid(r, verdict, &dc, &err);
            agora__ingest_deid_uids_free(&uids);
        } else if (op == AGORA__IPC__INGEST_OP__INGEST_DEID_WRITE) {
            dc.written = &w;
            (void)agora__ingest_check_deid(r, verdict, &dc, &err);
        } else {
            (void)agora__ingest_check_dump(r, verdict, &pc, &err);
        }
    }
    agora__frame_decoded_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint8_t hdr[8];
    memcpy(hdr, data, 8);
    if (hdr[0] & 1)
        ingest_channel(data + 8, size - 8, hdr);
    else
        plugin_channel(data + 8, size - 8, hdr);
    return 0;
}
