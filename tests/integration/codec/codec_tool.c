/*
 * Test driver: decode frames given on the command line with agora__codec_decode_frame and write
 * the decoded bytes to a file, so scripts can compare them with DCMTK/GDCM output.
 *
 *   codec_tool TS ROWS COLS SPP BA BS PR PC PHOTOMETRIC OUT FRAMES [REPEAT]
 *
 * FRAMES is a file of frames, each "u32 LE fragment count, then per fragment u32 LE length +
 * bytes". OUT receives the decoded frames concatenated. Prints the output photometric.
 * REPEAT (bench) decodes everything that many times and prints the median seconds per pass.
 * Exit: 0 ok, 1 decode error (message on stderr), 3 unsupported, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define MAX_FRAGS 4096

typedef struct frame {
    size_t n;
    const uint8_t *frag[MAX_FRAGS];
    size_t len[MAX_FRAGS];
} frame;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 12 && argc != 13) {
        fprintf(stderr, "usage: codec_tool TS ROWS COLS SPP BA BS PR PC PHOTOMETRIC OUT FRAMES "
                        "[REPEAT]\n");
        return 2;
    }
    agora__codec_params p = {0};
    p.rows = (uint32_t)strtoul(argv[2], NULL, 10);
    p.columns = (uint32_t)strtoul(argv[3], NULL, 10);
    p.samples_per_pixel = (uint32_t)strtoul(argv[4], NULL, 10);
    p.bits_allocated = (uint32_t)strtoul(argv[5], NULL, 10);
    p.bits_stored = (uint32_t)strtoul(argv[6], NULL, 10);
    p.pixel_representation = (uint32_t)strtoul(argv[7], NULL, 10);
    p.planar_configuration = (uint32_t)strtoul(argv[8], NULL, 10);
    p.photometric = argv[9];
    int repeat = argc == 13 ? atoi(argv[12]) : 1;
    if (repeat < 1 || repeat > 1000)
        return 2;
    agora__error err = {0};
    uint8_t *in;
    size_t in_len;
    if (agora__read_file(argv[11], (size_t)1 << 32, &in, &in_len, &err) < 0) {
        fprintf(stderr, "codec_tool: %s\n", err.msg);
        return 1;
    }
    size_t frame_bytes = (size_t)p.rows * p.columns * p.samples_per_pixel * (p.bits_allocated / 8);
    /* Count frames first. */
    size_t nframes = 0;
    for (size_t off = 0; off < in_len;) {
        if (in_len - off < 4)
            return 2;
        uint32_t nf = rd32(in + off);
        off += 4;
        for (uint32_t i = 0; i < nf; i++) {
            if (in_len - off < 4)
                return 2;
            uint32_t l = rd32(in + off);
            if (in_len - off - 4 < l)
                return 2;
            off += 4 + l;
        }
        nframes++;
    }
    uint8_t *out = malloc(frame_bytes * (nframes ? nframes : 1));
    frame *f = malloc(sizeof *f);
    uint64_t *times = calloc((size_t)repeat, sizeof *times);
    if (out == NULL || f == NULL || times == NULL)
        return 1;
    char pm[17] = "";
    int status = 0;
    for (int r = 0; r < repeat; r++) {
        uint64_t t0 = agora__now_ns();
        size_t off = 0;
        for (size_t k = 0; k < nframes; k++) {
            f->n = rd32(in + off);
            off += 4;
            if (f->n > MAX_FRAGS)
                return 2;
            for (size_t i = 0; i < f->n; i++) {
                f->len[i] = rd32(in + off);
                f->frag[i] = in + off + 4;
                off += 4 + f->len[i];
            }
            int rc = agora__codec_decode_frame(argv[1], f->frag, f->len, f->n, &p,
                                               out + k * frame_bytes, frame_bytes, pm, &err);
            if (rc < 0) {
                fprintf(stderr, "codec_tool: frame %zu: %s\n", k, err.msg);
                status = rc == AGORA_EUNSUPPORTED ? 3 : 1;
                goto done;
            }
        }
        times[r] = agora__now_ns() - t0;
    }
    /* Plain stdio (no fsync): the bench compares with dcmdjpeg, which does not sync either. */
    FILE *fo = fopen(argv[10], "wb");
    int wrote = fo != NULL && fwrite(out, 1, frame_bytes * nframes, fo) == frame_bytes * nframes;
    if (fo != NULL && fclose(fo) != 0)
        wrote = 0;
    if (!wrote) {
        fprintf(stderr, "codec_tool: cannot write %s\n", argv[10]);
        status = 1;
        goto done;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp_u64);
    printf("%s\n", pm);
    if (repeat > 1)
        printf("median_s %.6f\n", (double)times[repeat / 2] / 1e9);
done:
    free(times);
    free(f);
    free(out);
    free(in);
    return status;
}
