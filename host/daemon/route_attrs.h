/*
 * The routing attributes of one series: the allow-list of non-identifying values that routing
 * rules (rules.h) may read. Owned by the intake module (intake.c fills it from the sandboxed
 * reader); this header only defines the type so that rules and intake agree on it.
 */
#ifndef AGORA_DAEMON_ROUTE_ATTRS_H
#define AGORA_DAEMON_ROUTE_ATTRS_H

#include <stdint.h>

typedef struct agora__route_attrs { /* the routing allow-list; rules.h owns the type */
    char modality[17], body_part[17], sop_class[65], calling_ae[17], called_ae[17];
    double slice_thickness; /* NAN when absent */
    uint32_t n_frames, rows, columns;
    const char *origin; /* "dimse" | "stow" */
} agora__route_attrs;

#endif
