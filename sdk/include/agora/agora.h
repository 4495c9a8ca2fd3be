/*
 * agora.h — the Agora plugin ABI, version 1.1.
 *
 * This header is the whole contract between an Agora host and a plugin. What is not declared
 * here is not API: do not rely on anything else you observe about the host. It compiles as C11
 * and as C++ (any standard from C++11).
 *
 * STABILITY PROMISE (see docs/abi.md for the full text)
 *   - A plugin built against ABI major M and minor n loads in every host of major M whose minor
 *     is >= n. A host refuses a plugin of another major, or of a newer minor, with a message.
 *   - Every struct that crosses the boundary starts with `struct_size` (the size the writer of
 *     the struct was compiled with). Structs only ever grow at the end; a reader never touches a
 *     field that lies beyond `struct_size`. Function tables (agora_host, agora_plugin) follow the
 *     same rule: a new service is appended, and a host built before it simply reports a smaller
 *     struct_size (use AGORA_HAS() to check).
 *   - Only fixed-width integer types, double, and pointers cross the boundary. Enumerations are
 *     int32_t values with named constants, never C enum types, so their size is pinned.
 *   - Error codes are stable negative int32_t values (AGORA_E*); new codes may be added, so treat
 *     any unknown negative value as failure.
 *   - Optional capabilities are extensions, looked up by a string id carrying a revision, e.g.
 *     "org.agora.example/1". An unknown id returns NULL; a plugin must cope with NULL.
 *
 * MEMORY OWNERSHIP
 *   - Everything the host hands to the plugin (agora_host, agora_image, frames, attributes,
 *     strings) is owned by the host and valid only for the duration of the call it was handed in
 *     (agora_host: from init until fini). Pixel buffers are mapped read-only: writing to them
 *     faults.
 *   - Results are built only through host functions (add_finding, add_measurement, add_region,
 *     add_mask, set_summary). The host copies what it is given before returning; the plugin keeps
 *     ownership of its own memory and frees it when it likes. The host never frees plugin memory
 *     and the plugin never frees host memory.
 *   - Strings are NUL-terminated UTF-8. Host functions reject invalid UTF-8 with AGORA_EINVAL.
 *
 * THREADS
 *   - init, process and fini are called from one thread, one call at a time. Inside process the
 *     plugin may start threads; every host function is safe to call from any of them while
 *     process is running. Threads must be joined before process returns.
 *
 * ERRORS
 *   - No exception or longjmp may cross the boundary. C++ plugins catch everything in process.
 */
#ifndef AGORA_AGORA_H
#define AGORA_AGORA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versioning ------------------------------------------------------------------------------ */

#define AGORA_ABI_VERSION_MAJOR 1
#define AGORA_ABI_VERSION_MINOR 1
/* Packed as (major << 16) | minor. */
#define AGORA_ABI_VERSION ((uint32_t)((AGORA_ABI_VERSION_MAJOR << 16) | AGORA_ABI_VERSION_MINOR))
#define AGORA_ABI_MAJOR(v) ((uint32_t)(v) >> 16)
#define AGORA_ABI_MINOR(v) ((uint32_t)(v)&0xffffu)

/* True when a struct that begins with `struct_size` is large enough to contain `field`. Use it
 * before touching any field added after ABI 1.0. */
#define AGORA_HAS(ptr, type, field)                                                                \
    ((ptr) != NULL && (ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* The one symbol a plugin exports. Use AGORA_PLUGIN_EXPORT on its definition. */
#define AGORA_PLUGIN_ENTRY_SYMBOL "agora_plugin_entry"

#if defined(__GNUC__) || defined(__clang__)
#define AGORA_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define AGORA_PLUGIN_EXPORT
#endif

/* ---- Error codes (stable) -------------------------------------------------------------------- */

#define AGORA_OK 0
#define AGORA_EINVAL (-1)      /* an argument is invalid (NULL, out of range, bad UTF-8) */
#define AGORA_ENOMEM (-2)      /* out of memory */
#define AGORA_ELIMIT (-3)      /* a host limit was reached (too many results, string too long) */
#define AGORA_EUNSUPPORTED (-4) /* the input or request is not supported by this plugin/host */
#define AGORA_ECANCELLED (-5)  /* the job was cancelled; return from process promptly */
#define AGORA_EINPUT (-6)      /* the image is unsuitable for this plugin (say why via set_error) */
#define AGORA_EVERSION (-7)    /* ABI version mismatch */
#define AGORA_EINTERNAL (-8)   /* a bug in the plugin or the host */
#define AGORA_ESTATE (-9)      /* call not allowed now (e.g. add_finding outside process) */

/* ---- Enumerations (int32_t values) ----------------------------------------------------------- */

/* Sample type of the normalized pixel buffers. Values are always stored little-endian, one
 * sample per element, samples of a pixel interleaved (R,G,B,R,G,B...). Signed data is sign
 * extended from BitsStored; unused high bits are cleared. Single-bit data is expanded to U8. */
#define AGORA_PIXEL_U8 1
#define AGORA_PIXEL_I8 2
#define AGORA_PIXEL_U16 3
#define AGORA_PIXEL_I16 4
#define AGORA_PIXEL_U32 5
#define AGORA_PIXEL_I32 6
#define AGORA_PIXEL_F32 7
#define AGORA_PIXEL_F64 8

/* Photometric interpretation after decoding. YBR_* and PALETTE COLOR are converted to RGB by the
 * host. MONOCHROME1 is passed through unchanged (minimum value is white); check it. */
#define AGORA_PHOTOMETRIC_MONOCHROME1 1
#define AGORA_PHOTOMETRIC_MONOCHROME2 2
#define AGORA_PHOTOMETRIC_RGB 3

/* Log levels for agora_host.log. */
#define AGORA_LOG_DEBUG 10
#define AGORA_LOG_INFO 20
#define AGORA_LOG_WARN 30
#define AGORA_LOG_ERROR 40

/* Region kinds. */
#define AGORA_REGION_POINT 1   /* 1 point */
#define AGORA_REGION_BOX 2     /* 2 points: top-left, bottom-right (inclusive) */
#define AGORA_REGION_POLYGON 3 /* >= 3 points, closed implicitly */

/* "No frame" / "no region" for optional references. */
#define AGORA_NONE (-1)

/* ---- Inputs: the image view ------------------------------------------------------------------ */

/* One frame (2-D image) of the series, in the order of position along the slice normal. */
typedef struct agora_frame {
    uint32_t struct_size;
    uint32_t index;          /* 0-based position in the series */
    const void *data;        /* rows * columns * samples_per_pixel samples; read-only */
    uint64_t size_bytes;     /* bytes at data */
    double position[3];      /* ImagePositionPatient (mm); NaN when the input had none */
    double orientation[6];   /* ImageOrientationPatient: row cosines then column cosines; NaN
                                when unknown */
    const char *sop_instance_uid; /* pseudonymous UID of the instance holding this frame */
    /* Since 1.1 (check AGORA_HAS(frame, agora_frame, rescale_slope)): this frame's rescale,
     * physical value = stored * rescale_slope + rescale_intercept. Frames of one series may
     * differ (enhanced multi-frame Pixel Value Transformation per frame, PET instances); when
     * they do, agora_image.rescale_* are frame 0's. Equal to the image's when they agree. */
    double rescale_slope;
    double rescale_intercept;
} agora_frame;

/* What a plugin is given for one job: one series, decoded and de-identified. Geometry fields are
 * NaN when the input does not carry them. */
typedef struct agora_image {
    uint32_t struct_size;
    uint32_t rows;
    uint32_t columns;
    uint32_t frames;
    uint32_t samples_per_pixel; /* 1 or 3 */
    int32_t pixel_type;         /* AGORA_PIXEL_* */
    uint32_t bits_stored;       /* significant bits of the original data */
    int32_t photometric;        /* AGORA_PHOTOMETRIC_* */
    double pixel_spacing[2];    /* row spacing, column spacing (mm) */
    double slice_thickness;     /* mm */
    double spacing_between_slices; /* mm, computed from positions when they are regular */
    double rescale_slope;          /* 1.0 when absent; frame 0's when frames differ (see
                                      agora_frame.rescale_slope, since 1.1) */
    double rescale_intercept;      /* 0.0 when absent; frame 0's when frames differ */
    const char *rescale_type;   /* e.g. "HU"; "" when absent */
    const char *modality;       /* e.g. "CT", "MR"; never NULL */
    const char *study_uid;      /* pseudonymous Study Instance UID (keyed hash) */
    const char *series_uid;     /* pseudonymous Series Instance UID (keyed hash) */
} agora_image;

/* ---- Outputs: what a plugin reports ---------------------------------------------------------- */

/* A coded finding, e.g. scheme "SCT", code "126713003", meaning "Mass of lung". */
typedef struct agora_finding {
    uint32_t struct_size;
    const char *scheme;  /* coding scheme designator (SCT, LN, DCM, 99VENDOR...) */
    const char *code;
    const char *meaning; /* human-readable */
    double confidence;   /* 0..1 */
    int32_t frame;       /* AGORA_NONE or a frame index */
    int32_t region;      /* AGORA_NONE or a region id returned by add_region/add_mask */
} agora_finding;

/* A numeric measurement with a UCUM unit, e.g. name "volume", unit "mL". */
typedef struct agora_measurement {
    uint32_t struct_size;
    const char *name;
    double value;        /* must be finite */
    const char *unit;    /* UCUM, e.g. "mm", "mL", "[hnsf'U]", "1" for dimensionless */
    int32_t frame;       /* AGORA_NONE or a frame index */
    int32_t region;      /* AGORA_NONE or a region id */
    const char *code_scheme; /* optional coded concept for the quantity (may be NULL) */
    const char *code;
    const char *code_meaning;
} agora_measurement;

/* A geometric region on one frame. Coordinates are in pixels: x = column, y = row, with (0,0)
 * the centre of the top-left pixel. */
typedef struct agora_region {
    uint32_t struct_size;
    int32_t kind;          /* AGORA_REGION_* */
    uint32_t frame;
    const double *points;  /* x0,y0,x1,y1,... (n_points pairs) */
    uint32_t n_points;
    const char *label;     /* may be NULL */
} agora_region;

/* A label mask over a run of consecutive frames: labels[f][row][column], 0 is background. */
typedef struct agora_mask {
    uint32_t struct_size;
    uint32_t first_frame;
    uint32_t n_frames;
    uint32_t rows;         /* must equal the image's rows */
    uint32_t columns;      /* must equal the image's columns */
    uint32_t bits;         /* 8 or 16 */
    const void *labels;    /* n_frames*rows*columns elements of `bits` width, little-endian */
    const char *label;     /* may be NULL */
} agora_mask;

/* ---- Host services --------------------------------------------------------------------------- */

typedef struct agora_job agora_job; /* opaque, owned by the host, valid during process() */

/* The table of services the host offers. Handed to init; valid until fini returns. A service may
 * be NULL in a future host that dropped it within the same major only if documented as optional;
 * every v1.0 service is always present. Check AGORA_HAS() before using services added later. */
typedef struct agora_host {
    uint32_t struct_size;
    uint32_t abi_version; /* the host's AGORA_ABI_VERSION */

    /* Log a line (UTF-8, truncated at 1 KiB; rate limited). job may be NULL outside process. */
    void (*log)(const struct agora_host *host, agora_job *job, int32_t level, const char *msg);

    /* Look up an optional capability by id ("org.agora.<name>/<revision>"). NULL if unknown. */
    const void *(*get_extension)(const struct agora_host *host, const char *id);

    /* -- inputs of the job (valid during process) -- */

    /* The frame at index (0 <= index < image->frames), or NULL when out of range. */
    const agora_frame *(*frame)(agora_job *job, uint32_t index);
    /* Number of granted attributes. */
    uint32_t (*attr_count)(agora_job *job);
    /* The index-th granted attribute as DICOM keyword and value text. AGORA_EINVAL out of range. */
    int32_t (*attr_at)(agora_job *job, uint32_t index, const char **keyword, const char **value);
    /* The value of a granted attribute by DICOM keyword, or NULL when not granted or absent. */
    const char *(*attr_get)(agora_job *job, const char *keyword);

    /* -- results (copied by the host before returning) -- */

    int32_t (*add_finding)(agora_job *job, const agora_finding *finding);
    int32_t (*add_measurement)(agora_job *job, const agora_measurement *measurement);
    /* On success *region_id receives the id (>= 1) to reference from findings and measurements. */
    int32_t (*add_region)(agora_job *job, const agora_region *region, int32_t *region_id);
    int32_t (*add_mask)(agora_job *job, const agora_mask *mask, int32_t *region_id);
    /* Replace the job's free-text summary (UTF-8, at most 64 KiB; every limit of a result is
     * listed in docs/abi.md, "Result limits"). */
    int32_t (*set_summary)(agora_job *job, const char *text);
    /* Explain a failure: call before returning a negative code from process. */
    void (*set_error)(agora_job *job, const char *message);

    /* -- progress and cancellation -- */

    /* Report progress in [0,1]. Returns AGORA_ECANCELLED when the job was cancelled. */
    int32_t (*progress)(agora_job *job, double fraction);
    /* Non-zero when the job was cancelled; return AGORA_ECANCELLED from process soon after. */
    int32_t (*cancelled)(agora_job *job);
} agora_host;

/* ---- Extension "org.agora.triage/1" (since 1.1) -------------------------------------------- */

/* Triage: mark the job's result urgent ("read this study first") with a short reason. Look it up
 * with host->get_extension(host, AGORA_EXT_TRIAGE); NULL from a host without it (a 1.0 host), so
 * a plugin must cope. The host copies the reason before returning. Calling it again replaces the
 * reason. The flag reaches the stored result, FHIR (DiagnosticReport priority), the SR and
 * `agora results studies` (urgent first); see docs/abi.md. */
#define AGORA_EXT_TRIAGE "org.agora.triage/1"
#define AGORA_TRIAGE_MAX_REASON 256 /* bytes of UTF-8, excluding the NUL */

typedef struct agora_triage_ext {
    uint32_t struct_size;
    /* reason: NUL-terminated UTF-8, 1..AGORA_TRIAGE_MAX_REASON bytes, no control characters
     * (not even tab or newline). AGORA_EINVAL for a bad reason, AGORA_ESTATE outside process. */
    int32_t (*set_urgent)(agora_job *job, const char *reason);
} agora_triage_ext;

/* ---- Extension "org.agora.study/1" (since 1.1) --------------------------------------------- */

/* Study scope: a plugin whose manifest says "inputs": {"scope": "study"} gets one job per study
 * and reaches every series of it here (e.g. T2, DWI and ADC of a prostate MRI). Series 0 is the
 * image handed to process; the others follow in scan order. Frames are numbered job-wide:
 * series s's frames carry agora_frame.index = (frames of the series before s) + k, and that
 * index is what findings, measurements, regions and masks reference (a mask lies within one
 * series and has that series' rows and columns). host->frame(job, i) accepts any job-wide
 * index. For a series-scope job series_count is 1. Everything returned is owned by the host
 * and valid during process(); thread-safe like the other host functions. Look it up with
 * host->get_extension(host, AGORA_EXT_STUDY); NULL from a host without it. */
#define AGORA_EXT_STUDY        "org.agora.study/1"
#define AGORA_STUDY_MAX_SERIES 16 /* series of one study-scope job */

typedef struct agora_study_ext {
    uint32_t struct_size;
    /* Number of series of the job (1..AGORA_STUDY_MAX_SERIES); 0 outside process. */
    uint32_t (*series_count)(agora_job *job);
    /* *image receives series i's view (its own rows, columns, frames, pixel type, rescale,
     * pseudonymous series UID). AGORA_EINVAL when i >= series_count, AGORA_ESTATE outside
     * process. */
    int32_t (*series_image)(agora_job *job, uint32_t i, const agora_image **image);
    /* Frame k (0-based within series i) of series i, or NULL when out of range. */
    const agora_frame *(*series_frame)(agora_job *job, uint32_t i, uint32_t k);
} agora_study_ext;

/* ---- The plugin descriptor ------------------------------------------------------------------- */

typedef struct agora_plugin {
    uint32_t struct_size;
    uint32_t abi_version;  /* AGORA_ABI_VERSION the plugin was compiled with */
    const char *id;        /* reverse-DNS id; must equal the manifest's */
    const char *version;   /* semver; must equal the manifest's */

    /* Called once per worker, before any patient data. May load models (seconds are fine).
     * *state receives whatever the plugin wants back in process/fini (may stay NULL).
     * Return AGORA_OK or a negative code. Optional: NULL means nothing to do. */
    int32_t (*init)(const agora_host *host, void **state);

    /* Process one series. Return AGORA_OK, or a negative code after host->set_error(). */
    int32_t (*process)(void *state, agora_job *job, const agora_image *image);

    /* Called once before the worker exits (not called when it is killed). Optional. */
    void (*fini)(void *state);

    /* Plugin-side extensions offered to the host. Optional (NULL: none). */
    const void *(*get_extension)(void *state, const char *id);
} agora_plugin;

/* The entry point every plugin defines, exactly once, with AGORA_PLUGIN_EXPORT:
 *
 *     AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version);
 *
 * It is called after the sandbox is in place, before init. Return a pointer to a static
 * descriptor (it must stay valid until the library is unloaded), or NULL to refuse the host's
 * version. Keep it trivial: no allocation, no I/O. */
typedef const agora_plugin *(*agora_plugin_entry_fn)(uint32_t host_abi_version);
AGORA_PLUGIN_EXPORT const agora_plugin *agora_plugin_entry(uint32_t host_abi_version);

/* ---- Extension "org.agora.assets/1" (since 1.1) -------------------------------------------- */

/* Assets: the files the plugin's bundle carries beside the binary (model weights, label maps,
 * configuration), declared in its manifest ("assets": [{"name": "model.onnx"}]) and packed with
 * `agora pack --asset NAME=FILE`. Look it up with host->get_extension(host, AGORA_EXT_ASSETS);
 * NULL from a host without it (a 1.0 host), so a plugin must cope.
 *
 * Lifetime: the bytes are the verified, sealed asset (the host checked them against the sha256
 * the operator's catalog pins), mapped read-only: writing to them faults. They stay mapped from
 * init until fini returns; the pointer is the same on every call. Thread rule: get may be called
 * from init, process and fini, and from any thread the plugin runs during process. */
#define AGORA_EXT_ASSETS "org.agora.assets/1"
#define AGORA_ASSET_NAME_MAX 128 /* bytes of [A-Za-z0-9._-], excluding the NUL */

typedef struct agora_assets {
    uint32_t struct_size;
    /* The asset NAME from the plugin's bundle: *data receives `*size` read-only bytes, valid
       from init until fini. AGORA_EINVAL if no such asset. Callable from init. */
    int32_t (*get)(const agora_host *host, const char *name, const void **data, uint64_t *size);
} agora_assets;

#ifdef __cplusplus
}
#endif

#endif /* AGORA_AGORA_H */
