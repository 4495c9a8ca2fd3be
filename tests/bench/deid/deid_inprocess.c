/*
 * The "before" of bench_deid.py: `agora deid` as it was when the host parsed the files itself
 * (read the file into a reused buffer, agora__dicom_read, agora__deid_apply, write with the
 * Pixel Data by reference, rename), one thread, the Basic Profile. Benchmarks only: the agora
 * host no longer parses DICOM (the rule of two); this measures what that costs.
 *   deid_inprocess SECRET_FILE OUTDIR INPUT_DIR
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deid.h"
#include "dicom.h"
#include "outfile.h"
#include "profile.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: deid_inprocess SECRET_FILE OUTDIR INPUT_DIR\n");
        return 2;
    }
    agora__error err = {0};
    uint8_t secret[32];
    if (agora__key_file_read(argv[1], secret, &err) != 0 ||
        agora__mkdirs(argv[2], 0755, &err) != 0) {
        fprintf(stderr, "deid_inprocess: %s\n", err.msg);
        return 1;
    }
    DIR *d = opendir(argv[3]);
    if (d == NULL) {
        perror(argv[3]);
        return 1;
    }
    agora__deid_profile prof = {secret, 0, 0, 0};
    agora__deid_buf out;
    agora__deid_buf_init(&out, 0);
    uint8_t *in = NULL;
    size_t cap = 0;
    int failed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[3], de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            failed++;
            continue;
        }
        size_t len = (size_t)st.st_size;
        if (len + 1 > cap) {
            in = realloc(in, len + 1);
            cap = len + 1;
        }
        size_t got = 0;
        while (got < len) {
            ssize_t n = read(fd, in + got, len - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        close(fd);
        agora__dicom_file *f = NULL;
        if (agora__dicom_read(in, got, NULL, &f, &err) != 0) {
            failed++;
            continue;
        }
        agora__deid_buf_reset(&out, 6 * got + (1u << 20));
        out.refs_allowed = 1;
        agora__deid_stats stats = {0};
        char name[65], dst[4200];
        if (agora__deid_apply(f, &prof, &out, &stats, name, &err) != 0) {
            failed++;
        } else {
            snprintf(dst, sizeof dst, "%s/%s.dcm", argv[2], name);
            if (agora__deid_write_buf(dst, &out, &err) != 0)
                failed++;
        }
        agora__dicom_file_free(f);
    }
    closedir(d);
    free(in);
    agora__deid_buf_free(&out);
    return failed ? 1 : 0;
}
