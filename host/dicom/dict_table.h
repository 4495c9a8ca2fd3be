/* The generated dictionary tables (dict_table.c, built from data/dictionary.tsv). Private to
 * dict.c and the generator. */
#ifndef AGORA_HOST_DICOM_DICT_TABLE_H
#define AGORA_HOST_DICOM_DICT_TABLE_H

#include "dicom.h"

/* Exact tags sorted ascending by tag. */
extern const agora__dicom_dict_entry agora__dicom_dict_exact[];
extern const size_t agora__dicom_dict_exact_n;
/* Repeating-group patterns, most specific first. */
extern const agora__dicom_dict_entry agora__dicom_dict_masked[];
extern const size_t agora__dicom_dict_masked_n;
/* Indexes into agora__dicom_dict_exact sorted by keyword (strcmp order). */
extern const uint16_t agora__dicom_dict_by_kw[];

#endif
