/*
 * `agora dicom synth`: a synthetic phantom series with realistic but FAKE identity, for tests
 * and demos. Implemented by the deid module (it writes with the deid Part 10 writer and plants
 * everything the de-identifier must remove); called by the dicom module's `agora dicom`.
 */
#ifndef AGORA_DEID_SYNTH_H
#define AGORA_DEID_SYNTH_H

/* argv[0] is the subcommand word ("synth"); options follow. Returns 0, 1 (failed, message
 * printed) or 2 (usage). */
int agora__deid_cmd_synth(int argc, char **argv);

#endif
