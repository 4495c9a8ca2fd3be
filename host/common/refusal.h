/*
 * Marks a refusal message: a DICOM object or stream that is valid (or plausible) but that Agora
 * does not decode, reported with AGORA_EUNSUPPORTED. Every such message in host/dicom and
 * host/codec is written as AGORA_REFUSAL("literal text") so that tests/integration/dicom/
 * refusals_check.py can extract them all and keep docs/dicom-coverage.md (what is refused, why,
 * what the user can do) equal to the code. The macro is the literal itself; adding a refusal
 * means wrapping its format string in AGORA_REFUSAL(...) and adding a row to the doc.
 */
#ifndef AGORA_HOST_COMMON_REFUSAL_H
#define AGORA_HOST_COMMON_REFUSAL_H

#define AGORA_REFUSAL(literal) literal

#endif
