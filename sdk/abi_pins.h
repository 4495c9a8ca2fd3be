/*
 * The pinned layout of ABI 1 (x86_64 / LP64): the offset of every field of every struct that
 * crosses the plugin boundary, and the 1.0 size floor of each struct. One list, read by the
 * build-time check (sdk/abi_layout_check.c, _Static_assert: a moved field fails the build) and by
 * the unit test (tests/unit/sdk/abi_layout.c, which prints what moved). Offsets were recorded
 * from ABI 1.0 and never change within major 1; fields of a later minor are pinned where they
 * were appended (marked with the minor). Not installed: it describes the SDK, it is not part of it.
 */
#ifndef AGORA_SDK_ABI_PINS_H
#define AGORA_SDK_ABI_PINS_H

/* X(struct, field, offset) */
#define AGORA__ABI_PINS(X) \
    X(agora_frame, struct_size, 0) \
    X(agora_frame, index, 4) \
    X(agora_frame, data, 8) \
    X(agora_frame, size_bytes, 16) \
    X(agora_frame, position, 24) \
    X(agora_frame, orientation, 48) \
    X(agora_frame, sop_instance_uid, 96) \
    X(agora_frame, rescale_slope, 104)     /* 1.1 */ \
    X(agora_frame, rescale_intercept, 112) /* 1.1 */ \
    X(agora_image, struct_size, 0) \
    X(agora_image, rows, 4) \
    X(agora_image, columns, 8) \
    X(agora_image, frames, 12) \
    X(agora_image, samples_per_pixel, 16) \
    X(agora_image, pixel_type, 20) \
    X(agora_image, bits_stored, 24) \
    X(agora_image, photometric, 28) \
    X(agora_image, pixel_spacing, 32) \
    X(agora_image, slice_thickness, 48) \
    X(agora_image, spacing_between_slices, 56) \
    X(agora_image, rescale_slope, 64) \
    X(agora_image, rescale_intercept, 72) \
    X(agora_image, rescale_type, 80) \
    X(agora_image, modality, 88) \
    X(agora_image, study_uid, 96) \
    X(agora_image, series_uid, 104) \
    X(agora_finding, struct_size, 0) \
    X(agora_finding, scheme, 8) \
    X(agora_finding, code, 16) \
    X(agora_finding, meaning, 24) \
    X(agora_finding, confidence, 32) \
    X(agora_finding, frame, 40) \
    X(agora_finding, region, 44) \
    X(agora_measurement, struct_size, 0) \
    X(agora_measurement, name, 8) \
    X(agora_measurement, value, 16) \
    X(agora_measurement, unit, 24) \
    X(agora_measurement, frame, 32) \
    X(agora_measurement, region, 36) \
    X(agora_measurement, code_scheme, 40) \
    X(agora_measurement, code, 48) \
    X(agora_measurement, code_meaning, 56) \
    X(agora_region, struct_size, 0) \
    X(agora_region, kind, 4) \
    X(agora_region, frame, 8) \
    X(agora_region, points, 16) \
    X(agora_region, n_points, 24) \
    X(agora_region, label, 32) \
    X(agora_mask, struct_size, 0) \
    X(agora_mask, first_frame, 4) \
    X(agora_mask, n_frames, 8) \
    X(agora_mask, rows, 12) \
    X(agora_mask, columns, 16) \
    X(agora_mask, bits, 20) \
    X(agora_mask, labels, 24) \
    X(agora_mask, label, 32) \
    X(agora_host, struct_size, 0) \
    X(agora_host, abi_version, 4) \
    X(agora_host, log, 8) \
    X(agora_host, get_extension, 16) \
    X(agora_host, frame, 24) \
    X(agora_host, attr_count, 32) \
    X(agora_host, attr_at, 40) \
    X(agora_host, attr_get, 48) \
    X(agora_host, add_finding, 56) \
    X(agora_host, add_measurement, 64) \
    X(agora_host, add_region, 72) \
    X(agora_host, add_mask, 80) \
    X(agora_host, set_summary, 88) \
    X(agora_host, set_error, 96) \
    X(agora_host, progress, 104) \
    X(agora_host, cancelled, 112) \
    X(agora_plugin, struct_size, 0) \
    X(agora_plugin, abi_version, 4) \
    X(agora_plugin, id, 8) \
    X(agora_plugin, version, 16) \
    X(agora_plugin, init, 24) \
    X(agora_plugin, process, 32) \
    X(agora_plugin, fini, 40) \
    X(agora_plugin, get_extension, 48) \
    /* extension org.agora.triage/1 (1.1): a published revision never changes */ \
    X(agora_triage_ext, struct_size, 0) \
    X(agora_triage_ext, set_urgent, 8) \
    /* extension org.agora.study/1 (1.1) */ \
    X(agora_study_ext, struct_size, 0) \
    X(agora_study_ext, series_count, 8) \
    X(agora_study_ext, series_image, 16) \
    X(agora_study_ext, series_frame, 24) \
    X(agora_assets, struct_size, 0) /* 1.1: extension org.agora.assets/1 */ \
    X(agora_assets, get, 8)         /* 1.1 */

/* X(struct, 1.0 size): sizes may only grow (a new minor appends fields). */
#define AGORA__ABI_SIZE_FLOORS(X) \
    X(agora_frame, 104) \
    X(agora_image, 112) \
    X(agora_finding, 48) \
    X(agora_measurement, 64) \
    X(agora_region, 40) \
    X(agora_mask, 40) \
    X(agora_host, 120) \
    X(agora_plugin, 56)

/* X(struct, exact size at the current minor, 1.1): update with the pins when a minor appends. */
#define AGORA__ABI_SIZES_1_1(X) \
    X(agora_frame, 120) X(agora_triage_ext, 16) X(agora_study_ext, 32) X(agora_assets, 16)

#endif /* AGORA_SDK_ABI_PINS_H */
