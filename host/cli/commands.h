/*
 * Entry points of the `agora` subcommands. Each is implemented by the module that owns the
 * capability (named in brackets) and takes the argv that follows the command word, with
 * argv[0] being the command word itself. Each returns the process exit status: 0 success,
 * 1 the operation failed (a message was printed), 2 usage error.
 */
#ifndef AGORA_CLI_COMMANDS_H
#define AGORA_CLI_COMMANDS_H

int agora__cmd_dev(int argc, char **argv);       /* [worker] dev new; dev run below */
int agora__cmd_dev_run(int argc, char **argv);   /* [cli] dev run: one plugin, sandboxed */
int agora__cmd_dicom(int argc, char **argv);     /* [dicom] dicom dump|pixels|scan */
int agora__cmd_dicom_synth(int argc, char **argv); /* [cli] dicom synth (host/synth phantoms) */
int agora__cmd_dicom_send(int argc, char **argv); /* [daemon] dicom send (deliver.h) */
int agora__cmd_deid(int argc, char **argv);      /* [deid] de-identified DICOM export */
int agora__cmd_audit(int argc, char **argv);     /* [trust] audit verify|show */
int agora__cmd_dataset(int argc, char **argv);   /* [cli] dataset export|verify (deid + sign) */
int agora__cmd_keygen(int argc, char **argv);    /* [trust] */
int agora__cmd_pack(int argc, char **argv);      /* [trust] */
int agora__cmd_certify(int argc, char **argv);   /* [trust] */
int agora__cmd_revoke(int argc, char **argv);    /* [trust] */
int agora__cmd_catalog(int argc, char **argv);   /* [trust] catalog show */
int agora__cmd_root(int argc, char **argv);      /* [trust] root sign */
int agora__cmd_keys(int argc, char **argv);      /* [trust] keys rotate */
int agora__cmd_init(int argc, char **argv);      /* [trust] clinic home */
int agora__cmd_sync(int argc, char **argv);      /* [trust] */
int agora__cmd_install(int argc, char **argv);   /* [trust] */
int agora__cmd_list(int argc, char **argv);      /* [trust] */
int agora__cmd_remove(int argc, char **argv);    /* [trust] */
int agora__cmd_run(int argc, char **argv);       /* [cli] clinic run: trust + worker + meter */
int agora__cmd_serve(int argc, char **argv);     /* [dimse] clinic daemon: DICOM receive */
int agora__cmd_queue(int argc, char **argv);     /* [daemon] queue [show|retry|cancel JOB] */
int agora__cmd_rules(int argc, char **argv);     /* [daemon] rules test|check: routing rules */
int agora__cmd_results(int argc, char **argv);   /* [results] results show|export */
int agora__cmd_usage(int argc, char **argv);     /* [meter] */
int agora__cmd_statement(int argc, char **argv); /* [meter] */
int agora__cmd_ledger(int argc, char **argv);    /* [meter] ledger verify|export */
int agora__cmd_clinic(int argc, char **argv);    /* [trust] clinic add|list (operator) */
int agora__cmd_user(int argc, char **argv);      /* [dashboard] user add|list|remove|token */

#endif
