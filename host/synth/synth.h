/*
 * `agora dicom synth`: a synthetic phantom series with realistic but FAKE identity, for tests
 * and demos. Its own module so that dicom/ does not depend on deid/: it writes with the deid
 * Part 10 writer and plants everything the de-identifier must remove, and `agora dicom`
 * (host/cli/cmd_dicom.c) reaches it through the CLI's command table (cli/commands.h).
 */
#ifndef AGORA_SYNTH_H
#define AGORA_SYNTH_H

/* argv[0] is the subcommand word ("synth"); options follow. Returns 0, 1 (failed, message
 * printed) or 2 (usage). */
int agora__cmd_dicom_synth(int argc, char **argv);

#endif
