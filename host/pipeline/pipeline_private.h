/* The pipeline object's state, shared by pipeline.c and settle.c. Not part of the API. */
#ifndef AGORA_PIPELINE_PRIVATE_H
#define AGORA_PIPELINE_PRIVATE_H

#include "jobs.h"
#include "pipeline.h"

/* The invocation id a job that is never recorded (dev run: no home, no ledger) is re-identified
 * under: re-identification derives result UIDs from some id, and nothing keeps these. */
#define AGORA__PIPELINE_UNRECORDED_INVOCATION "00000000000000000000000000000000"

typedef struct agora__pipeline__slot {
    agora__pipeline_plugin desc; /* the caller's description, copied (pointees borrowed) */
    agora__pool *pool;           /* owned */
} agora__pipeline__slot;

struct agora__pipeline {
    agora__pipeline_config cfg;
    uv_loop_t *loop;   /* the caller's or own_loop */
    uv_loop_t own_loop;
    int owns_loop;
    agora__pipeline__slot *plugins; /* [n_plugins], owned */
    size_t n_plugins, cap_plugins;
    agora__ingest *ing;       /* the sandboxed reader, owned, started by the first scan */
    agora__dicom_scan *scan;  /* owned */
    size_t done;              /* jobs numbered so far in this dispatch */
    int cancelled;
    const agora__pipeline_job *job; /* agora__pipeline_dispatch_job's, NULL otherwise */
    agora__pool *running;     /* the pool of the job in flight, NULL between jobs */
    uint64_t running_id;
    char why[512];            /* the outcome's error text while its callback runs */
    char ledger_why[512];     /* the outcome's ledger_error text */
};

/* Validate, re-identify, store and meter a job that ran; fills o's status, validated, error,
 * charge and ledger fields (the texts live in p->why / p->ledger_why until the next job). */
void agora__pipeline__settle(agora__pipeline *p, const agora__pipeline_plugin *pl,
                             const agora__prepared *prep, agora__job_outcome *out,
                             agora__pipeline_outcome *o);

#endif
