/* Study assembly: scan, group, order along the slice normal, check geometry, decode a series. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "study.h"

#define T(g, e) AGORA__DICOM_TAG(g, e)

void agora__dicom_scan_options_default(agora__dicom_scan_options *opt)
{
    opt->max_depth = 8;
    opt->max_files = 100000;
    opt->max_file_bytes = (uint64_t)4 << 30;
    agora__dicom_limits_default(&opt->limits);
    opt->extract = NULL;
    opt->extract_ctx = NULL;
}

/* ---- mapping one file ---------------------------------------------------------------------- */

typedef struct mapped {
    const uint8_t *data;
    size_t len;
} mapped;

static int map_file(const char *path, uint64_t max, mapped *m, agora__error *err)
{
    m->data = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0)
        return agora__error_set(err, AGORA__ERR(errno), "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return agora__error_set(err, AGORA_EINPUT, "not a regular file");
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return agora__error_set(err, AGORA_ELIMIT, "larger than %llu bytes",
                                (unsigned long long)max);
    }
    if (st.st_size == 0) {
        close(fd);
        return agora__error_set(err, AGORA_EINPUT, "empty file");
    }
    /* A mapping, not a read: pages of Pixel Data the scan does not touch never become resident,
     * and untouched file-backed pages are released with the mapping. */
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return agora__error_set(err, AGORA__ERR(errno), "cannot map: %s", strerror(errno));
    m->data = p;
    m->len = (size_t)st.st_size;
    return 0;
}

static void unmap_file(mapped *m)
{
    if (m->data)
        munmap((void *)(uintptr_t)m->data, m->len);
    m->data = NULL;
}

/* ---- scan state ------------------------------------------------------------------------------ */

typedef struct scanner {
    agora__dicom_scan *scan;
    const agora__dicom_scan_options *opt;
    size_t cap_series, cap_notes;
    uint32_t *cap_instances; /* per series */
    agora__error *err;
} scanner;

static int add_note(scanner *s, const char *path, const char *reason)
{
    if (s->scan->n_notes == s->cap_notes) {
        size_t nc = s->cap_notes ? s->cap_notes * 2 : 16;
        agora__dicom_note *nn = realloc(s->scan->notes, nc * sizeof *nn);
        if (!nn)
            return agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
        s->scan->notes = nn;
        s->cap_notes = nc;
    }
    agora__dicom_note *n = &s->scan->notes[s->scan->n_notes];
    n->path = strdup(path);
    if (!n->path)
        return agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
    agora__strlcpy(n->reason, reason, sizeof n->reason);
    s->scan->n_notes++;
    return 0;
}

static int get_doubles(const agora__dicom_dataset *ds, uint32_t tag, double *out, size_t n)
{
    const agora__dicom_element *e = agora__dicom_find(ds, tag);
    if (!e)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (agora__dicom_el_double(e, i, &out[i]))
            return 0;
    return 1;
}

/* Geometry from the top level, else from the enhanced multi-frame functional groups
 * (fgroups.c, the same reading as the sandboxed ingest worker's). */
static int read_geometry(const agora__dicom_dataset *ds, agora__dicom_instance *in)
{
    in->has_position = get_doubles(ds, T(0x0020, 0x0032), in->position, 3);
    in->has_orientation = get_doubles(ds, T(0x0020, 0x0037), in->orientation, 6);
    in->has_spacing = get_doubles(ds, T(0x0028, 0x0030), in->pixel_spacing, 2);
    agora__dicom_fg fg;
    if (agora__dicom_fg_read(ds, in->frames, &fg) != 0)
        return -1;
    in->has_rescale = fg.has_rescale;
    memcpy(in->rescale, fg.rescale, sizeof in->rescale);
    agora__strlcpy(in->rescale_type, fg.rescale_type, sizeof in->rescale_type);
    if (!in->has_orientation && fg.has_orientation) {
        memcpy(in->orientation, fg.orientation, sizeof in->orientation);
        in->has_orientation = 1;
    }
    if (!in->has_spacing && fg.has_spacing) {
        memcpy(in->pixel_spacing, fg.spacing, sizeof in->pixel_spacing);
        in->has_spacing = 1;
    }
    agora__dicom_frame_meta *fm = fg.frames;
    if (fm == NULL)
        return 0;
    int all = in->frames > 1;
    for (uint32_t f = 0; f < in->frames && all; f++)
        all = fm[f].has_position;
    if (all) {
        double *pos = calloc((size_t)in->frames * 3, sizeof *pos);
        if (!pos) {
            agora__dicom_fg_free(&fg);
            return -1;
        }
        for (uint32_t f = 0; f < in->frames; f++)
            memcpy(&pos[f * 3], fm[f].position, sizeof in->position);
        in->frame_positions = pos;
        memcpy(in->position, pos, sizeof in->position);
        in->has_position = 1;
    } else if (!in->has_position && fm[0].has_position) {
        memcpy(in->position, fm[0].position, sizeof in->position);
        in->has_position = 1;
    }
    in->frame_meta = fm; /* ownership passes to the instance */
    return 0;
}

static agora__dicom_series *find_series(scanner *s, const char *study, const char *series)
{
    agora__dicom_scan *sc = s->scan;
    for (size_t i = 0; i < sc->n_series; i++)
        if (strcmp(sc->series[i].series_uid, series) == 0 &&
            strcmp(sc->series[i].study_uid, study) == 0)
            return &sc->series[i];
    if (sc->n_series == s->cap_series) {
        size_t nc = s->cap_series ? s->cap_series * 2 : 8;
        agora__dicom_series *ns = realloc(sc->series, nc * sizeof *ns);
        uint32_t *ci = realloc(s->cap_instances, nc * sizeof *ci);
        if (ci)
            s->cap_instances = ci;
        if (ns)
            sc->series = ns;
        if (!ns || !ci)
            return NULL;
        s->cap_series = nc;
    }
    agora__dicom_series *se = &sc->series[sc->n_series];
    memset(se, 0, sizeof *se);
    s->cap_instances[sc->n_series] = 0;
    agora__strlcpy(se->study_uid, study, sizeof se->study_uid);
    agora__strlcpy(se->series_uid, series, sizeof se->series_uid);
    sc->n_series++;
    return se;
}

/* Append an extracted instance to its series. Takes ownership of in->frame_positions. */
static int add_instance(scanner *s, const char *path, const char *study, const char *series,
                        const char *modality, agora__dicom_instance *in)
{
    agora__dicom_series *se = find_series(s, study, series);
    if (!se) {
        free(in->frame_positions);
        free(in->frame_meta);
        return agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
    }
    size_t si = (size_t)(se - s->scan->series);
    if (se->n_instances == s->cap_instances[si]) {
        uint32_t nc = se->n_instances ? se->n_instances * 2 : 8;
        agora__dicom_instance *ni = realloc(se->instances, nc * sizeof *ni);
        if (!ni) {
            free(in->frame_positions);
            free(in->frame_meta);
            return agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
        }
        se->instances = ni;
        s->cap_instances[si] = nc;
    }
    if (!se->modality[0])
        agora__strlcpy(se->modality, modality, sizeof se->modality);
    in->path = strdup(path);
    if (!in->path) {
        free(in->frame_positions);
        free(in->frame_meta);
        return agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
    }
    se->instances[se->n_instances++] = *in;
    return 0;
}

/* The hooked path: metadata comes from opt->extract (the sandboxed ingest worker). */
static int scan_file_extract(scanner *s, const char *path)
{
    agora__dicom_extracted x;
    memset(&x, 0, sizeof x);
    agora__error e = {0};
    int rc = s->opt->extract(s->opt->extract_ctx, path, &x, &e);
    if (rc == AGORA_ENOMEM || rc == AGORA_EINTERNAL)
        return agora__error_set(s->err, rc, "%s", e.msg);
    if (rc != 0)
        return add_note(s, path, e.msg[0] ? e.msg : "unreadable");
    x.instance.path = NULL;
    return add_instance(s, path, x.study_uid, x.series_uid, x.modality, &x.instance);
}

static int scan_file(scanner *s, const char *path)
{
    if (s->opt->extract)
        return scan_file_extract(s, path);
    agora__error e = {0};
    mapped m;
    if (map_file(path, s->opt->max_file_bytes, &m, &e))
        return add_note(s, path, e.msg);
    if (!agora__dicom_sniff(m.data, m.len)) {
        unmap_file(&m);
        return add_note(s, path, "not DICOM");
    }
    agora__dicom_limits lim = s->opt->limits;
    lim.flags |= AGORA__DICOM_READ_STOP_AT_PIXELS;
    agora__dicom_file *f = NULL;
    int rc = 0;
    if (agora__dicom_read(m.data, m.len, &lim, &f, &e)) {
        char reason[200];
        snprintf(reason, sizeof reason, "unreadable: %s", e.msg);
        rc = add_note(s, path, reason);
        goto out;
    }
    const agora__dicom_dataset *ds = &f->dataset;
    int64_t rows = 0, cols = 0;
    if (agora__dicom_get_int(ds, T(0x0028, 0x0010), 0, &rows) ||
        agora__dicom_get_int(ds, T(0x0028, 0x0011), 0, &cols) || rows <= 0 || cols <= 0) {
        rc = add_note(s, path, "no image (no Rows/Columns)");
        goto out;
    }
    char study[65], series[65];
    agora__dicom_get_string(ds, T(0x0020, 0x000D), 0, study, sizeof study);
    agora__dicom_get_string(ds, T(0x0020, 0x000E), 0, series, sizeof series);
    agora__dicom_series *se = find_series(s, study, series);
    if (!se) {
        rc = agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
        goto out;
    }
    size_t si = (size_t)(se - s->scan->series);
    if (se->n_instances == s->cap_instances[si]) {
        uint32_t nc = se->n_instances ? se->n_instances * 2 : 8;
        agora__dicom_instance *ni = realloc(se->instances, nc * sizeof *ni);
        if (!ni) {
            rc = agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
            goto out;
        }
        se->instances = ni;
        s->cap_instances[si] = nc;
    }
    agora__dicom_instance *in = &se->instances[se->n_instances];
    memset(in, 0, sizeof *in);
    in->rows = (uint32_t)(rows > 65535 ? 65535 : rows);
    in->columns = (uint32_t)(cols > 65535 ? 65535 : cols);
    int64_t v;
    in->samples_per_pixel = agora__dicom_get_int(ds, T(0x0028, 0x0002), 0, &v) ? 1 : (uint32_t)v;
    in->bits_allocated = agora__dicom_get_int(ds, T(0x0028, 0x0100), 0, &v) ? 0 : (uint32_t)v;
    in->bits_stored = agora__dicom_get_int(ds, T(0x0028, 0x0101), 0, &v) ? 0 : (uint32_t)v;
    in->pixel_representation = agora__dicom_get_int(ds, T(0x0028, 0x0103), 0, &v) ? 0 : (uint32_t)v;
    in->frames = 1;
    if (agora__dicom_get_int(ds, T(0x0028, 0x0008), 0, &v) == 0 && v > 1 && v <= 1000000)
        in->frames = (uint32_t)v;
    in->instance_number = agora__dicom_get_int(ds, T(0x0020, 0x0013), 0, &v) == 0 ? v : INT64_MIN;
    agora__dicom_get_string(ds, T(0x0008, 0x0018), 0, in->sop_uid, sizeof in->sop_uid);
    agora__dicom_get_string(ds, T(0x0028, 0x0004), 0, in->photometric, sizeof in->photometric);
    agora__strlcpy(in->transfer_syntax, f->transfer_syntax, sizeof in->transfer_syntax);
    if (!se->modality[0])
        agora__dicom_get_string(ds, T(0x0008, 0x0060), 0, se->modality, sizeof se->modality);
    if (read_geometry(ds, in)) {
        rc = agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
        goto out;
    }
    in->path = strdup(path);
    if (!in->path) {
        free(in->frame_positions);
        free(in->frame_meta);
        rc = agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
        goto out;
    }
    se->n_instances++;
out:
    agora__dicom_file_free(f);
    unmap_file(&m);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int scan_path(scanner *s, const char *path, uint32_t depth)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return add_note(s, path, "cannot stat");
    if (S_ISLNK(st.st_mode))
        return add_note(s, path, "symbolic link (not followed)");
    if (S_ISREG(st.st_mode)) {
        if (++s->scan->files_examined > s->opt->max_files)
            return agora__error_set(s->err, AGORA_ELIMIT,
                                    "more than %u files; scan a smaller folder", s->opt->max_files);
        return scan_file(s, path);
    }
    if (!S_ISDIR(st.st_mode))
        return add_note(s, path, "not a regular file or folder");
    if (depth >= s->opt->max_depth)
        return add_note(s, path, "folder nested too deep (not scanned)");
    DIR *d = opendir(path);
    if (!d)
        return add_note(s, path, "cannot open folder");
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                rc = agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
                break;
            }
            names = nn;
            cap = nc;
        }
        size_t need = strlen(path) + strlen(de->d_name) + 2;
        names[n] = malloc(need);
        if (!names[n]) {
            rc = agora__error_set(s->err, AGORA_ENOMEM, "out of memory");
            break;
        }
        snprintf(names[n], need, "%s/%s", path, de->d_name);
        n++;
        if (n > s->opt->max_files) {
            rc = agora__error_set(s->err, AGORA_ELIMIT, "more than %u entries in a folder",
                                  s->opt->max_files);
            break;
        }
    }
    closedir(d);
    if (rc == 0) {
        /* Sorted for a deterministic scan order (notes, tie-breaks). */
        if (n > 1) /* qsort(NULL, 0) is undefined behaviour */
            qsort(names, n, sizeof *names, cmp_str);
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = scan_path(s, names[i], depth + 1);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- ordering and checks ------------------------------------------------------------------- */

static int add_warning(agora__dicom_series *s, size_t *cap, agora__dicom_warning_code code,
                       uint32_t a, uint32_t b, double value, double expected, const char *msg)
{
    if (s->n_warnings == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        agora__dicom_warning *nw = realloc(s->warnings, nc * sizeof *nw);
        if (!nw)
            return -1;
        s->warnings = nw;
        *cap = nc;
    }
    agora__dicom_warning *w = &s->warnings[s->n_warnings++];
    w->code = code;
    w->frame_a = a;
    w->frame_b = b;
    w->value = value;
    w->expected = expected;
    agora__strlcpy(w->message, msg, sizeof w->message);
    return 0;
}

static int cmp_frame(const void *x, const void *y)
{
    const agora__dicom_series_frame *a = x, *b = y;
    if (a->distance != b->distance)
        return a->distance < b->distance ? -1 : 1;
    if (a->in_stack != b->in_stack) /* the Dimension Organization's spatial index */
        return a->in_stack < b->in_stack ? -1 : 1;
    if (a->instance != b->instance)
        return a->instance < b->instance ? -1 : 1;
    return a->frame < b->frame ? -1 : (a->frame > b->frame);
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : (a > b);
}

static int cmp_instance(const void *x, const void *y)
{
    const agora__dicom_instance *a = x, *b = y;
    if (a->instance_number != b->instance_number)
        return a->instance_number < b->instance_number ? -1 : 1;
    return strcmp(a->path, b->path);
}

/* Phase 1: instance order, duplicates, per-instance consistency, and every frame with its own
 * values (position, orientation, rescale, window, volume), in instance then file order. */
static int assemble_instances(agora__dicom_series *s, size_t *wcap)
{
    char msg[160];
    /* Instance order first (instance number, then path): the fallback order and tie-break. */
    qsort(s->instances, s->n_instances, sizeof *s->instances, cmp_instance);
    /* Duplicate SOP Instance UIDs: keep the first. */
    for (uint32_t i = 0; i < s->n_instances; i++) {
        for (uint32_t j = i + 1; j < s->n_instances;) {
            if (s->instances[i].sop_uid[0] &&
                strcmp(s->instances[i].sop_uid, s->instances[j].sop_uid) == 0) {
                snprintf(msg, sizeof msg,
                         "instances %u and %u have the same SOP Instance UID; "
                         "the second is ignored",
                         i, j);
                if (add_warning(s, wcap, AGORA__DICOM_WARN_DUPLICATE_SOP, i, j, 0, 0, msg))
                    return -1;
                free(s->instances[j].path);
                free(s->instances[j].frame_positions);
                free(s->instances[j].frame_meta);
                memmove(&s->instances[j], &s->instances[j + 1],
                        (s->n_instances - j - 1) * sizeof *s->instances);
                s->n_instances--;
            } else {
                j++;
            }
        }
    }
    const agora__dicom_instance *ref = &s->instances[0];
    s->decodable = 1;
    for (uint32_t i = 0; i < s->n_instances; i++) {
        const agora__dicom_instance *in = &s->instances[i];
        int geo_diff = in->rows != ref->rows || in->columns != ref->columns;
        for (int k = 0; k < 6 && in->has_orientation && ref->has_orientation; k++)
            geo_diff |= fabs(in->orientation[k] - ref->orientation[k]) > 1e-4;
        for (int k = 0; k < 2 && in->has_spacing && ref->has_spacing; k++)
            geo_diff |= fabs(in->pixel_spacing[k] - ref->pixel_spacing[k]) > 1e-4;
        if (geo_diff) {
            snprintf(msg, sizeof msg,
                     "instance %u differs from instance 0 in rows, columns, "
                     "orientation or pixel spacing",
                     i);
            if (add_warning(s, wcap, AGORA__DICOM_WARN_INCONSISTENT_GEOMETRY, 0, i, 0, 0, msg))
                return -1;
        }
        if (in->rows != ref->rows || in->columns != ref->columns ||
            in->samples_per_pixel != ref->samples_per_pixel ||
            in->bits_allocated != ref->bits_allocated ||
            in->pixel_representation != ref->pixel_representation ||
            strcmp(in->photometric, ref->photometric) != 0) {
            s->decodable = 0;
            snprintf(msg, sizeof msg,
                     "instance %u has a different pixel layout from instance "
                     "0; the series cannot be decoded as one volume",
                     i);
            if (add_warning(s, wcap, AGORA__DICOM_WARN_INCONSISTENT_PIXELS, 0, i, 0, 0, msg))
                return -1;
        }
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->n_instances; i++)
        total += s->instances[i].frames;
    if (total > UINT32_MAX / 2)
        return -1;
    s->frames = calloc(total ? (size_t)total : 1, sizeof *s->frames);
    if (!s->frames)
        return -1;
    s->n_frames = (uint32_t)total;
    s->n_volumes = 1;
    uint32_t fi = 0;
    for (uint32_t i = 0; i < s->n_instances; i++) {
        const agora__dicom_instance *in = &s->instances[i];
        for (uint32_t f = 0; f < in->frames; f++, fi++) {
            agora__dicom_series_frame *fr = &s->frames[fi];
            const agora__dicom_frame_meta *fm = in->frame_meta ? &in->frame_meta[f] : NULL;
            fr->instance = i;
            fr->frame = f;
            /* A multi-frame file without per-frame positions has none past frame 0: such
             * frames keep file order (no geometry). */
            const double *p = in->frame_positions         ? &in->frame_positions[f * 3]
                              : f == 0 || in->frames == 1 ? in->position
                                                          : NULL;
            if (p && in->has_position) {
                fr->has_position = 1;
                memcpy(fr->position, p, sizeof fr->position);
            }
            if (fm && fm->has_orientation) {
                fr->has_orientation = 1;
                memcpy(fr->orientation, fm->orientation, sizeof fr->orientation);
            } else if (in->has_orientation) {
                fr->has_orientation = 1;
                memcpy(fr->orientation, in->orientation, sizeof fr->orientation);
            }
            if (fm) {
                fr->functional_groups = 1;
                fr->has_rescale = fm->has_rescale;
                memcpy(fr->rescale, fm->rescale, sizeof fr->rescale);
                memcpy(fr->window, fm->window, sizeof fr->window);
                fr->volume = fm->volume;
                fr->in_stack = fm->in_stack;
            } else {
                fr->has_rescale = in->has_rescale;
                memcpy(fr->rescale, in->rescale, sizeof fr->rescale);
                fr->window[0] = fr->window[1] = (double)NAN;
            }
            if (fr->volume + 1 > s->n_volumes)
                s->n_volumes = fr->volume + 1;
        }
    }
    return 0;
}

/* Phase 2, on one volume: slice normal, order along it, duplicates and gaps, and whether the
 * frames agree in rescale. Without geometry the frames keep instance order (or in-stack
 * position order when every frame has one). */
static int order_volume(agora__dicom_series *s)
{
    size_t wcap = s->n_warnings; /* add_warning grows the array when full */
    char msg[160];
    s->rescale_varies = 0;
    for (uint32_t i = 1; i < s->n_frames; i++)
        if (s->frames[i].rescale[0] != s->frames[0].rescale[0] ||
            s->frames[i].rescale[1] != s->frames[0].rescale[1])
            s->rescale_varies = 1;
    int geometry = s->n_frames > 0;
    for (uint32_t i = 0; i < s->n_frames; i++)
        if (!s->frames[i].has_position || !s->frames[i].has_orientation)
            geometry = 0;
    memset(s->normal, 0, sizeof s->normal);
    if (geometry) {
        const double *o = s->frames[0].orientation;
        s->normal[0] = o[1] * o[5] - o[2] * o[4];
        s->normal[1] = o[2] * o[3] - o[0] * o[5];
        s->normal[2] = o[0] * o[4] - o[1] * o[3];
        double len = sqrt(s->normal[0] * s->normal[0] + s->normal[1] * s->normal[1] +
                          s->normal[2] * s->normal[2]);
        if (len < 1e-6) {
            geometry = 0;
            memset(s->normal, 0, sizeof s->normal);
        } else {
            for (int k = 0; k < 3; k++)
                s->normal[k] /= len;
        }
    }
    if (geometry) {
        for (uint32_t i = 1; i < s->n_frames; i++) {
            int diff = 0;
            for (int k = 0; k < 6; k++)
                diff |= fabs(s->frames[i].orientation[k] - s->frames[0].orientation[k]) > 1e-4;
            if (diff) {
                snprintf(msg, sizeof msg,
                         "frame %u of instance %u has another orientation than the first frame",
                         s->frames[i].frame, s->frames[i].instance);
                if (add_warning(s, &wcap, AGORA__DICOM_WARN_INCONSISTENT_GEOMETRY, 0, i, 0, 0, msg))
                    return -1;
                break;
            }
        }
    }
    for (uint32_t i = 0; i < s->n_frames; i++) {
        agora__dicom_series_frame *fr = &s->frames[i];
        fr->distance = geometry ? fr->position[0] * s->normal[0] + fr->position[1] * s->normal[1] +
                                      fr->position[2] * s->normal[2]
                                : 0;
    }
    if (!geometry) {
        int by_index = s->n_frames > 1;
        for (uint32_t i = 0; i < s->n_frames; i++)
            by_index &= s->frames[i].in_stack > 0;
        if (by_index) /* cmp_frame: equal distances, then in-stack position */
            qsort(s->frames, s->n_frames, sizeof *s->frames, cmp_frame);
        if (s->n_frames > 1 &&
            add_warning(s, &wcap, AGORA__DICOM_WARN_NO_GEOMETRY, 0, 0, 0, 0,
                        by_index ? "frames lack position or orientation; ordered by in-stack "
                                   "position number"
                                 : "frames lack position or orientation; ordered by instance "
                                   "number"))
            return -1;
        return 0;
    }
    qsort(s->frames, s->n_frames, sizeof *s->frames, cmp_frame);
    if (s->n_frames < 2)
        return 0;
    double *gaps = malloc((s->n_frames - 1) * sizeof *gaps);
    if (!gaps)
        return -1;
    for (uint32_t i = 1; i < s->n_frames; i++)
        gaps[i - 1] = s->frames[i].distance - s->frames[i - 1].distance;
    for (uint32_t i = 1; i < s->n_frames; i++) {
        if (gaps[i - 1] < 1e-3) {
            snprintf(msg, sizeof msg, "frames %u and %u are at the same position", i - 1, i);
            if (add_warning(s, &wcap, AGORA__DICOM_WARN_DUPLICATE_POSITION, i - 1, i, gaps[i - 1],
                            0, msg)) {
                free(gaps);
                return -1;
            }
        }
    }
    qsort(gaps, s->n_frames - 1, sizeof *gaps, cmp_double);
    uint32_t ng = s->n_frames - 1;
    double median = ng % 2 ? gaps[ng / 2] : (gaps[ng / 2 - 1] + gaps[ng / 2]) / 2;
    free(gaps);
    s->median_spacing = median;
    if (median > 1e-3) {
        for (uint32_t i = 1; i < s->n_frames; i++) {
            double g = s->frames[i].distance - s->frames[i - 1].distance;
            if (g >= 1e-3 && fabs(g - median) > 0.1 * median + 0.01) {
                snprintf(msg, sizeof msg,
                         "spacing between frames %u and %u is %.3f mm, the median is %.3f mm",
                         i - 1, i, g, median);
                if (add_warning(s, &wcap, AGORA__DICOM_WARN_GAP, i - 1, i, g, median, msg))
                    return -1;
            }
        }
    }
    return 0;
}

/* Copy of s's instances for a volume of a split series: paths duplicated, the per-frame arrays
 * left out (phase 1 already copied every frame's values into the series frames), so a volume
 * costs its own frames plus one small record per instance, however many volumes there are. */
static int copy_instances(const agora__dicom_series *s, agora__dicom_instance **out)
{
    agora__dicom_instance *ins = calloc(s->n_instances, sizeof *ins);
    if (!ins)
        return -1;
    for (uint32_t i = 0; i < s->n_instances; i++) {
        ins[i] = s->instances[i];
        ins[i].frame_positions = NULL;
        ins[i].frame_meta = NULL;
        ins[i].path = strdup(s->instances[i].path);
        if (!ins[i].path) {
            for (uint32_t k = 0; k < i; k++)
                free(ins[k].path);
            free(ins);
            return -1;
        }
    }
    *out = ins;
    return 0;
}

static void series_free(agora__dicom_series *s)
{
    for (uint32_t k = 0; k < s->n_instances; k++) {
        free(s->instances[k].path);
        free(s->instances[k].frame_positions);
        free(s->instances[k].frame_meta);
    }
    free(s->instances);
    free(s->frames);
    free(s->warnings);
    memset(s, 0, sizeof *s);
}

/* Volume v of the assembled (phase 1) series s as a series of its own: its frames, copies of
 * every instance (frames keep their instance indexes) and of the warnings so far. An empty
 * volume (a gap in the volume numbers) yields n_frames 0. */
static int volume_of(const agora__dicom_series *s, uint32_t v, agora__dicom_series *out)
{
    *out = *s;
    out->instances = NULL;
    out->frames = NULL;
    out->warnings = NULL;
    out->n_frames = 0;
    out->volume = v;
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n_frames; i++)
        n += s->frames[i].volume == v;
    if (n == 0)
        return 0;
    if (copy_instances(s, &out->instances) != 0)
        return -1;
    out->frames = calloc(n, sizeof *out->frames);
    out->warnings = calloc(s->n_warnings ? s->n_warnings : 1, sizeof *out->warnings);
    if (!out->frames || !out->warnings) {
        series_free(out);
        return -1;
    }
    if (s->n_warnings)
        memcpy(out->warnings, s->warnings, s->n_warnings * sizeof *s->warnings);
    for (uint32_t i = 0; i < s->n_frames; i++)
        if (s->frames[i].volume == v)
            out->frames[out->n_frames++] = s->frames[i];
    const agora__dicom_series_frame *f0 = &out->frames[0];
    const agora__dicom_instance *in = &s->instances[f0->instance];
    out->stack = in->frame_meta ? in->frame_meta[f0->frame].stack : 0;
    out->temporal = in->frame_meta ? in->frame_meta[f0->frame].temporal : 0;
    return 0;
}

/* Assemble every series; a series whose frames form several volumes becomes one entry per
 * non-empty volume, in volume order, right where the series was. */
static int assemble_all(agora__dicom_scan *scan)
{
    size_t total = 0;
    for (size_t i = 0; i < scan->n_series; i++) {
        size_t wcap = scan->series[i].n_warnings;
        if (assemble_instances(&scan->series[i], &wcap))
            return -1;
        total += scan->series[i].n_volumes;
    }
    if (total == scan->n_series) {
        for (size_t i = 0; i < scan->n_series; i++)
            if (order_volume(&scan->series[i]))
                return -1;
        return 0;
    }
    agora__dicom_series *out = calloc(total, sizeof *out);
    if (!out)
        return -1;
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < scan->n_series && rc == 0; i++) {
        agora__dicom_series *s = &scan->series[i];
        if (s->n_volumes == 1) {
            out[n++] = *s;
            memset(s, 0, sizeof *s);
            continue;
        }
        uint32_t first = (uint32_t)n;
        for (uint32_t v = 0; v < s->n_volumes && rc == 0; v++) {
            rc = volume_of(s, v, &out[n]);
            if (rc == 0 && out[n].n_frames > 0)
                n++; /* an empty volume (a gap in the numbers) holds nothing */
        }
        for (size_t k = first; k < n; k++)
            out[k].n_volumes = (uint32_t)(n - first);
        for (size_t k = first; k < n; k++)
            out[k].volume = (uint32_t)(k - first);
        series_free(s);
    }
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = order_volume(&out[i]);
    /* The scan owns the new array either way (scan_free releases what is in it). */
    for (size_t i = 0; i < scan->n_series; i++)
        series_free(&scan->series[i]);
    free(scan->series);
    scan->series = out;
    scan->n_series = n;
    return rc;
}

static int cmp_series(const void *x, const void *y)
{
    const agora__dicom_series *a = x, *b = y;
    int c = strcmp(a->study_uid, b->study_uid);
    return c ? c : strcmp(a->series_uid, b->series_uid);
}

int agora__dicom_scan_paths(const char *const *paths, size_t n_paths,
                            const agora__dicom_scan_options *opt, agora__dicom_scan **out,
                            agora__error *err)
{
    agora__dicom_scan_options dopt;
    if (!out || (n_paths && !paths))
        return agora__error_set(err, AGORA_EINVAL, "NULL argument");
    *out = NULL;
    if (!opt) {
        agora__dicom_scan_options_default(&dopt);
        opt = &dopt;
    }
    agora__dicom_scan *scan = calloc(1, sizeof *scan);
    if (!scan)
        return agora__error_set(err, AGORA_ENOMEM, "out of memory");
    scanner s = {.scan = scan, .opt = opt, .err = err};
    int rc = 0;
    for (size_t i = 0; i < n_paths && rc == 0; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0) {
            rc = agora__error_set(err, AGORA_EINVAL, "%s does not exist; check the path", paths[i]);
            break;
        }
        rc = scan_path(&s, paths[i], 0);
    }
    free(s.cap_instances);
    if (rc == 0) {
        if (scan->n_series > 1)
            qsort(scan->series, scan->n_series, sizeof *scan->series, cmp_series);
        if (assemble_all(scan))
            rc = agora__error_set(err, AGORA_ENOMEM, "out of memory assembling series");
    }
    if (rc) {
        agora__dicom_scan_free(scan);
        return rc;
    }
    *out = scan;
    return 0;
}

void agora__dicom_scan_free(agora__dicom_scan *scan)
{
    if (!scan)
        return;
    for (size_t i = 0; i < scan->n_series; i++)
        series_free(&scan->series[i]);
    free(scan->series);
    for (size_t i = 0; i < scan->n_notes; i++)
        free(scan->notes[i].path);
    free(scan->notes);
    free(scan);
}

/* ---- decoding ------------------------------------------------------------------------------ */

typedef struct opened {
    mapped m;
    agora__dicom_file *f;
    agora__dicom_pixel_desc d;
    uint32_t instance;
} opened;

static void close_opened(opened *o)
{
    agora__dicom_file_free(o->f);
    o->f = NULL;
    unmap_file(&o->m);
}

static int open_instance(const agora__dicom_series *s, uint32_t i, const agora__dicom_limits *lim,
                         opened *o, agora__error *err)
{
    const agora__dicom_instance *in = &s->instances[i];
    int rc = map_file(in->path, (uint64_t)SIZE_MAX, &o->m, err);
    if (rc == 0)
        rc = agora__dicom_read(o->m.data, o->m.len, lim, &o->f, err);
    if (rc == 0)
        rc = agora__dicom_pixel_describe(o->f, &o->d, err);
    if (rc == 0) {
        char sop[65];
        agora__dicom_get_string(&o->f->dataset, T(0x0008, 0x0018), 0, sop, sizeof sop);
        if (strcmp(sop, in->sop_uid) != 0 || o->d.rows != in->rows || o->d.columns != in->columns ||
            o->d.frames != in->frames)
            rc = agora__error_set(err, AGORA_EINPUT, "the file changed since it was scanned");
    }
    if (rc) {
        agora__error_prefix(err, "%s", in->path);
        close_opened(o);
        return rc;
    }
    o->instance = i;
    return 0;
}

int agora__dicom_series_format(const agora__dicom_series *s, int mode,
                               agora__dicom_pixel_format *fmt, agora__error *err)
{
    if (!s || !fmt || s->n_instances == 0)
        return agora__error_set(err, AGORA_EINVAL, "empty series");
    opened o = {0};
    int rc = open_instance(s, 0, NULL, &o, err);
    if (rc)
        return rc;
    rc = agora__dicom_pixel_format_for(o.f, &o.d, mode, fmt, err);
    close_opened(&o);
    return rc;
}

int agora__dicom_series_decode(const agora__dicom_series *s, int mode, uint8_t *out, size_t out_len,
                               const agora__dicom_limits *limits, agora__error *err)
{
    if (!s || !out)
        return agora__error_set(err, AGORA_EINVAL, "NULL argument");
    if (!s->decodable)
        return agora__error_set(err, AGORA_EINPUT,
                                "the series mixes pixel layouts; it cannot be decoded as one "
                                "volume (see its warnings)");
    agora__dicom_pixel_format fmt;
    int rc = agora__dicom_series_format(s, mode, &fmt, err);
    if (rc)
        return rc;
    if (fmt.frame_bytes == 0 || (uint64_t)s->n_frames > UINT64_MAX / fmt.frame_bytes ||
        fmt.frame_bytes * s->n_frames > out_len)
        return agora__error_set(err, AGORA_EINVAL,
                                "output buffer of %zu bytes is smaller than the series", out_len);
    opened o = {0};
    for (uint32_t i = 0; i < s->n_frames && rc == 0; i++) {
        const agora__dicom_series_frame *fr = &s->frames[i];
        if (!o.f || o.instance != fr->instance) {
            close_opened(&o);
            if ((rc = open_instance(s, fr->instance, limits, &o, err)))
                break;
            agora__dicom_pixel_format f2;
            if ((rc = agora__dicom_pixel_format_for(o.f, &o.d, mode, &f2, err)))
                break;
            if (f2.frame_bytes != fmt.frame_bytes || f2.pixel_type != fmt.pixel_type) {
                rc = agora__error_set(err, AGORA_EINPUT,
                                      "instance %u decodes to a different layout than instance "
                                      "0",
                                      fr->instance);
                break;
            }
        }
        rc = agora__dicom_decode_frame(o.f, &o.d, fr->frame, mode, out + fmt.frame_bytes * i,
                                       (size_t)fmt.frame_bytes, err);
    }
    close_opened(&o);
    return rc;
}
