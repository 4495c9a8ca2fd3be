/*
 * The operator's revenue-share statement across clinics, from the clinics' signed period
 * exports (see statement_clinics.c for what is checked, docs/results-and-billing.md for the
 * layout). Private to the meter module and its tests.
 */
#ifndef AGORA_METER_STATEMENT_CLINICS_H
#define AGORA_METER_STATEMENT_CLINICS_H

#include <jansson.h>

#include "common.h"

/* Verify every export in paths (n files) against the clinics registered in catalog_dir and the
 * chain accepted from each before, then compute the statement for period. trust_pub (may be
 * NULL) verifies the catalog's signature (*verified = 1). On success the accepted segments are
 * recorded in catalog_dir/clinics/NAME.accepted.json and *out is a new object. On refusal
 * nothing is recorded and err says which file and why. */
int agora__statement_clinics(const char *catalog_dir, const char *trust_pub, const char *period,
                             const char *const *paths, size_t n, json_t **out, int *verified,
                             agora__error *err);

#endif
