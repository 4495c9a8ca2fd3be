/*
 * `agora dicom dump|pixels|scan|synth`: inspect DICOM files and decode their pixels.
 *
 * Rule of two: dump, pixels and scan never parse a file in this process. The file is opened
 * here and its descriptor handed to a sandboxed agora-runner (MODE_INGEST, host/ingest), which
 * parses it and renders the dump, decodes the frames into a memfd or returns the metadata.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "json_emit.h"
#include "opt.h"
#include "dicom.h"
#include "ingest.h"
#include "pixels.h"
#include "study.h"

#define MAX_FILE_BYTES ((size_t)4 << 30) /* refuse files over 4 GiB */
/* A dump is a few KiB per element at most (binary values print as a hex prefix); the memfd the
 * worker renders into is sparse, so the cap costs only what is written. */
#define MAX_DUMP_BYTES  ((uint64_t)256 << 20)
#define MAX_PIXEL_BYTES ((uint64_t)8 << 30) /* decoded output of one `dicom pixels` */

/* The sandboxed parser for one command (defaults: 512 MiB, 30 s per request). */
static agora__ingest *open_parser(const char *cmd)
{
    agora__ingest_options io;
    agora__ingest_options_default(&io);
    io.max_file_bytes = MAX_FILE_BYTES;
    agora__ingest *ing = NULL;
    agora__error err = {0};
    if (agora__ingest_open(&io, &ing, &err) != 0) {
        fprintf(stderr, "agora dicom %s: %s\n", cmd, err.msg);
        return NULL;
    }
    return ing;
}

static int cmd_dump(int argc, char **argv)
{
    int as_json = 0;
    const agora__cli_opt opts[] = {
        {"--json", 0, AGORA__CLI_FLAG, &as_json, NULL, "print the elements as JSON", 0, NULL},
    };
    const agora__cli_cmd cmd = {
        "dicom dump",
        "FILE [--json]",
        "Print every element of FILE: tag, keyword, VR, length and value (text as text,\n"
        "numbers as numbers, sequences nested, binary values as a hex prefix).",
        opts,
        AGORA__CLI_N(opts),
        1,
        1};
    size_t n_pos;
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &st))
        return st;
    const char *path = argv[1];
    agora__ingest *ing = open_parser("dump");
    if (ing == NULL)
        return 1;
    char *text = NULL;
    size_t len = 0;
    agora__error err = {0};
    int rc = agora__ingest_dump(ing, path, as_json, MAX_DUMP_BYTES, &text, &len, &err);
    agora__ingest_close(ing);
    if (rc != 0) {
        fprintf(stderr, "agora dicom dump: %s\n", err.msg);
        return 1;
    }
    if (as_json) {
        /* The worker's JSON is untrusted bytes: parsed (it must be one JSON document) and
         * written again through the one emitter, never copied through. */
        json_error_t je;
        json_t *doc = json_loadb(text, len, 0, &je);
        free(text);
        if (doc == NULL) {
            fprintf(stderr, "agora dicom dump: the DICOM reader returned malformed JSON (%s)\n",
                    je.text);
            return 1;
        }
        return agora__json_emit_new(stdout, doc, AGORA__JSON_DOC);
    }
    if (fwrite(text, 1, len, stdout) != len)
        rc = 1;
    free(text);
    if (fflush(stdout) != 0 || rc != 0) {
        fprintf(stderr, "agora dicom dump: writing output failed: %s\n", strerror(errno));
        rc = 1;
    }
    return rc;
}

static const char *type_name(int32_t t)
{
    switch (t) {
    case AGORA_PIXEL_U8:
        return "u8";
    case AGORA_PIXEL_I8:
        return "i8";
    case AGORA_PIXEL_U16:
        return "u16";
    case AGORA_PIXEL_I16:
        return "i16";
    case AGORA_PIXEL_U32:
        return "u32";
    case AGORA_PIXEL_I32:
        return "i32";
    default:
        return "unknown";
    }
}

static int cmd_pixels(int argc, char **argv)
{
    const char *outp = NULL, *frame_s = NULL;
    int raw = 0;
    const agora__cli_opt opts[] = {
        {"--out", 'o', AGORA__CLI_VALUE, &outp, "OUT",
         "write the samples to OUT, the description to OUT.json", AGORA__CLI_REQUIRED, NULL},
        {"--raw", 0, AGORA__CLI_FLAG, &raw, NULL,
         "keep the stored samples (no color conversion, no masking)", 0, NULL},
        {"--frame", 0, AGORA__CLI_VALUE, &frame_s, "N", "decode frame N only (0-based)", 0, NULL},
    };
    const agora__cli_cmd cmd = {
        "dicom pixels",
        "FILE -o OUT [--raw] [--frame N]",
        "Decode the frames of FILE into OUT (little-endian samples, interleaved, frame\n"
        "after frame) and write OUT.json with rows, columns, frames, samples, bits\n"
        "allocated, signedness and photometric interpretation. Default output is the\n"
        "normalized form plugins see (YBR and PALETTE COLOR as RGB, samples shifted,\n"
        "masked and sign-extended); --raw keeps the stored samples.",
        opts,
        AGORA__CLI_N(opts),
        1,
        1};
    size_t n_pos;
    int status;
    if (!agora__cli_parse(&cmd, argc, argv, &n_pos, &status))
        return status;
    const char *path = argv[1];
    long frame = -1;
    if (frame_s != NULL) {
        char *end;
        errno = 0;
        frame = strtol(frame_s, &end, 10);
        if (errno || *end || frame < 0 || frame_s[0] == '\0')
            return agora__cli_usage_error(cmd.name, "--frame needs a frame index >= 0");
    }
    agora__ingest *ing = open_parser("pixels");
    if (ing == NULL)
        return 1;
    agora__error err = {0};
    int mode = raw ? AGORA__DICOM_DECODE_RAW : AGORA__DICOM_DECODE_NORMALIZED;
    int rc = 1, mfd = -1;
    const uint8_t *frames = NULL;
    uint64_t total = 0;
    json_t *j = NULL;
    agora__ingest_meta meta;
    if (agora__ingest_metadata(ing, path, &meta, &err) != 0) {
        fprintf(stderr, "agora dicom pixels: %s\n", err.msg);
        agora__ingest_close(ing);
        return 1;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        st.st_size = 0;
    if (meta.rows == 0 || meta.columns == 0) {
        fprintf(stderr, "agora dicom pixels: %s: no image (no Rows/Columns)\n", path);
        goto out;
    }
    if (frame >= (long)meta.frames) {
        fprintf(stderr, "agora dicom pixels: --frame %ld but the image has %u frames\n", frame,
                meta.frames);
        rc = 2;
        goto out;
    }
    uint32_t first = frame >= 0 ? (uint32_t)frame : 0;
    uint32_t n = frame >= 0 ? 1 : meta.frames;
    /* The decoded size from the header, before the worker writes anything: the stored size,
     * and an upper bound for the normalized form (palette and YBR become three samples, up to
     * eight bytes each) that sizes the sparse output memfd. Capped at 8 GiB. */
    uint64_t bytes = meta.bits_allocated <= 8    ? 1
                     : meta.bits_allocated <= 16 ? 2
                     : meta.bits_allocated <= 32 ? 4
                                                 : 8;
    uint64_t spp = meta.samples_per_pixel ? meta.samples_per_pixel : 1;
    uint64_t stored = (uint64_t)meta.rows * meta.columns * spp * bytes * n;
    uint64_t bound = (uint64_t)meta.rows * meta.columns * (spp < 3 ? 3 : spp) * 8 * n;
    if (stored > MAX_PIXEL_BYTES) {
        fprintf(stderr, "agora dicom pixels: %s: decoded size out of range\n", path);
        goto out;
    }
    if (bound > MAX_PIXEL_BYTES)
        bound = MAX_PIXEL_BYTES;
    /* Compressed data may expand, but not beyond any plausible ratio: a header claiming more is
     * refused before the worker decodes into host memory. */
    if (!agora__dicom_ts_is_native(meta.transfer_syntax) &&
        stored / 4096 > (uint64_t)st.st_size + ((uint64_t)1 << 20)) {
        fprintf(stderr,
                "agora dicom pixels: %s: the header claims %llu decoded bytes from a %lld-byte "
                "file; refusing\n",
                path, (unsigned long long)stored, (long long)st.st_size);
        goto out;
    }
    mfd = memfd_create("agora-pixels", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0 || ftruncate(mfd, (off_t)bound) != 0) {
        fprintf(stderr, "agora dicom pixels: memfd for %llu bytes: %s\n", (unsigned long long)bound,
                strerror(errno));
        goto out;
    }
    agora__dicom_pixel_format fmt;
    if (agora__ingest_decode(ing, path, first, n, mode, mfd, 0, bound, &fmt, &err) != 0) {
        fprintf(stderr, "agora dicom pixels: %s\n", err.msg);
        goto out;
    }
    total = fmt.frame_bytes * n; /* checked by the client: fits bound */
    if (fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
        fprintf(stderr,
                "agora dicom pixels: %s: the DICOM parser worker kept its output "
                "writable; refused\n",
                path);
        goto out;
    }
    void *map = mmap(NULL, (size_t)total, PROT_READ, MAP_PRIVATE, mfd, 0);
    if (map == MAP_FAILED) {
        fprintf(stderr, "agora dicom pixels: mapping the decoded frames: %s\n", strerror(errno));
        goto out;
    }
    frames = map;
    if (agora__write_file_atomic(outp, frames, (size_t)total, 0644, &err)) {
        fprintf(stderr, "agora dicom pixels: %s\n", err.msg);
        goto out;
    }
    j = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:b,s:s,s:s,s:s,s:s,s:I,s:i}", "rows", meta.rows,
                  "columns", meta.columns, "frames", n, "samples_per_pixel", fmt.samples_per_pixel,
                  "bits_allocated", meta.bits_allocated, "bits_stored", meta.bits_stored,
                  "bytes_per_sample", fmt.bytes_per_sample, "signed",
                  meta.pixel_representation == 1, "pixel_type", type_name(fmt.pixel_type),
                  "photometric", fmt.photometric_name, "mode", raw ? "raw" : "normalized",
                  "transfer_syntax", meta.transfer_syntax, "frame_bytes",
                  (json_int_t)fmt.frame_bytes, "first_frame", first);
    size_t tlen = 0;
    char *text = agora__json_text(j, AGORA__JSON_DOC, &tlen);
    size_t plen = strlen(outp);
    char *jpath = malloc(plen + 6);
    if (!text || !jpath) {
        free(text);
        free(jpath);
        fprintf(stderr, "agora dicom pixels: out of memory\n");
        goto out;
    }
    memcpy(jpath, outp, plen);
    memcpy(jpath + plen, ".json", 6);
    int wr = agora__write_file_atomic(jpath, text, tlen, 0644, &err);
    free(text);
    free(jpath);
    if (wr) {
        fprintf(stderr, "agora dicom pixels: %s\n", err.msg);
        goto out;
    }
    rc = 0;
out:
    json_decref(j);
    if (frames)
        munmap((void *)(uintptr_t)frames, (size_t)total);
    if (mfd >= 0)
        close(mfd);
    agora__ingest_meta_free(&meta);
    agora__ingest_close(ing);
    return rc;
}

static const char *warning_name(agora__dicom_warning_code c)
{
    switch (c) {
    case AGORA__DICOM_WARN_GAP:
        return "gap";
    case AGORA__DICOM_WARN_DUPLICATE_POSITION:
        return "duplicate_position";
    case AGORA__DICOM_WARN_DUPLICATE_SOP:
        return "duplicate_sop";
    case AGORA__DICOM_WARN_INCONSISTENT_GEOMETRY:
        return "inconsistent_geometry";
    case AGORA__DICOM_WARN_NO_GEOMETRY:
        return "no_geometry";
    case AGORA__DICOM_WARN_INCONSISTENT_PIXELS:
        return "inconsistent_pixels";
    }
    return "unknown";
}

static json_t *scan_json(const agora__dicom_scan *sc)
{
    json_t *series = json_array(), *notes = json_array();
    for (size_t i = 0; i < sc->n_series; i++) {
        const agora__dicom_series *s = &sc->series[i];
        json_t *w = json_array(), *fr = json_array();
        for (uint32_t k = 0; k < s->n_warnings; k++) {
            const agora__dicom_warning *x = &s->warnings[k];
            json_array_append_new(w, json_pack("{s:s,s:i,s:i,s:f,s:f,s:s}", "code",
                                               warning_name(x->code), "a", x->frame_a, "b",
                                               x->frame_b, "value", x->value, "expected",
                                               x->expected, "message", x->message));
        }
        for (uint32_t k = 0; k < s->n_frames; k++) {
            const agora__dicom_series_frame *f = &s->frames[k];
            json_array_append_new(fr, json_pack("{s:s,s:i,s:f,s:[f,f]}", "file",
                                                s->instances[f->instance].path, "frame", f->frame,
                                                "distance", f->distance, "rescale", f->rescale[0],
                                                f->rescale[1]));
        }
        const agora__dicom_instance *in0 = &s->instances[0];
        json_array_append_new(
            series, json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:i,s:[f,f,f],s:f,s:b,s:o,s:o}",
                              "study_uid", s->study_uid, "series_uid", s->series_uid, "modality",
                              s->modality, "instances", s->n_instances, "frames", s->n_frames,
                              "rows", in0->rows, "columns", in0->columns, "normal", s->normal[0],
                              s->normal[1], s->normal[2], "median_spacing", s->median_spacing,
                              "decodable", s->decodable, "warnings", w, "frame_order", fr));
        /* Enhanced multi-frame objects of several volumes: one entry per volume. */
        json_object_set_new(json_array_get(series, json_array_size(series) - 1), "volume",
                            json_pack("{s:i,s:i,s:i,s:i}", "index", s->volume, "count",
                                      s->n_volumes, "stack", s->stack, "temporal", s->temporal));
    }
    for (size_t i = 0; i < sc->n_notes; i++)
        json_array_append_new(notes, json_pack("{s:s,s:s}", "path", sc->notes[i].path, "reason",
                                               sc->notes[i].reason));
    return json_pack("{s:i,s:o,s:o}", "files_examined", sc->files_examined, "series", series,
                     "skipped", notes);
}

static int cmd_scan(int argc, char **argv)
{
    int as_json = 0;
    const agora__cli_opt opts[] = {
        {"--json", 0, AGORA__CLI_FLAG, &as_json, NULL, "print the series as JSON", 0, NULL},
    };
    const agora__cli_cmd cmd = {
        "dicom scan",
        "PATH... [--json]",
        "Scan files and folders (recursively, symlinks not followed), group images into\n"
        "studies and series, order frames along the slice normal and report gaps,\n"
        "duplicates and inconsistent geometry. Non-DICOM files are listed as skipped.",
        opts,
        AGORA__CLI_N(opts),
        1,
        SIZE_MAX};
    size_t n;
    int st;
    if (!agora__cli_parse(&cmd, argc, argv, &n, &st))
        return st;
    const char **paths = calloc(n, sizeof *paths);
    if (!paths) {
        fprintf(stderr, "agora dicom scan: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        paths[i] = argv[1 + i];
    agora__ingest *ing = open_parser("scan");
    if (ing == NULL) {
        free(paths);
        return 1;
    }
    agora__dicom_scan_options opt;
    agora__dicom_scan_options_default(&opt);
    opt.extract = agora__ingest_extract; /* every file is parsed in the sandbox */
    opt.extract_ctx = ing;
    agora__dicom_scan *sc = NULL;
    agora__error err = {0};
    int rc = agora__dicom_scan_paths(paths, n, &opt, &sc, &err);
    agora__ingest_close(ing);
    free(paths);
    if (rc) {
        fprintf(stderr, "agora dicom scan: %s\n", err.msg);
        return 1;
    }
    if (as_json) {
        rc = agora__json_emit_new(stdout, scan_json(sc), AGORA__JSON_DOC);
    } else {
        printf("%u files examined, %zu series, %zu skipped\n", sc->files_examined, sc->n_series,
               sc->n_notes);
        for (size_t i = 0; i < sc->n_series; i++) {
            const agora__dicom_series *s = &sc->series[i];
            printf("series %zu: %s, %u instances, %u frames, %ux%u, spacing %.3f mm%s\n", i,
                   s->modality[0] ? s->modality : "?", s->n_instances, s->n_frames,
                   s->instances[0].rows, s->instances[0].columns, s->median_spacing,
                   s->decodable ? "" : " (not decodable as one volume)");
            for (uint32_t k = 0; k < s->n_warnings; k++)
                printf("  warning %s: %s\n", warning_name(s->warnings[k].code),
                       s->warnings[k].message);
        }
        for (size_t i = 0; i < sc->n_notes; i++)
            printf("skipped %s: %s\n", sc->notes[i].path, sc->notes[i].reason);
    }
    agora__dicom_scan_free(sc);
    return rc;
}

static int cmd_synth(int argc, char **argv)
{
    return agora__cmd_dicom_synth(argc, argv); /* cmd_synth.c */
}

int agora__cmd_dicom(int argc, char **argv)
{
    static const agora__cli_sub subs[] = {
        {"dump", cmd_dump, "print every element (tag, keyword, VR, length, value)"},
        {"pixels", cmd_pixels, "decode frames to a raw file described by a JSON file"},
        {"scan", cmd_scan, "group files/folders into series, order frames, report gaps"},
        {"send", agora__cmd_dicom_send, "send files to a PACS (C-STORE or STOW-RS), per-file outcome"},
        {"synth", cmd_synth, "write a synthetic phantom series with fake identity"},
    };
    return agora__cli_dispatch(
        "dicom", "Inspect DICOM files (parsed in the ingest sandbox) and make test files.", subs,
        AGORA__CLI_N(subs), argc, argv);
}
