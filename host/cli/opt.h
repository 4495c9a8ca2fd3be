/*
 * The one option parser of the `agora` tool. Every command describes its options in one table of
 * agora__cli_opt (long name, optional short alias, kind, destination, help line) plus an
 * agora__cli_cmd (name, argument synopsis, description, positional bounds); the parser reads
 * argv against it and generates `--help` from the same table, so the help cannot drift from what
 * is accepted.
 *
 * Accepted spellings: `--opt value`, `--opt=value`, `-o value`, `-ovalue` (short aliases only
 * where a table gives one), `--flag`, `--` (everything after is positional), `-` (positional:
 * stdin/stdout). Options and positionals may be interleaved. A repeatable option (LIST) is
 * repeated by repeating the flag: `--grant A --grant B`. A VALUE option given twice keeps the
 * later value (as getopt does).
 *
 * Usage errors print one line to stderr, naming the command and the option:
 *   agora certify: unknown option --foo (see agora certify --help)
 * and make the command exit 2. `--help`/`-h` prints the generated help to stdout; exit 0.
 *
 * Lifetime: values are pointers into argv (never copied); LIST destinations own a malloc'ed array
 * of those pointers, released with agora__cli_list_free. Positionals are compacted in place into
 * argv[1..n_pos] (argv's slots are permuted, its strings untouched).
 */
#ifndef AGORA_CLI_OPT_H
#define AGORA_CLI_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum agora__cli_kind {
    AGORA__CLI_FLAG,  /* no value; dest is int *, set to 1 */
    AGORA__CLI_VALUE, /* one value; dest is const char ** */
    AGORA__CLI_LIST,  /* repeatable; dest is agora__cli_list *, each occurrence appends */
} agora__cli_kind;

/* flags of an option */
#define AGORA__CLI_REQUIRED 1u /* a usage error when absent */

typedef struct agora__cli_list {
    const char **v; /* malloc'ed; the strings are argv's */
    size_t n;
} agora__cli_list;

typedef struct agora__cli_opt {
    const char *name; /* long name with its dashes: "--out" */
    char short_name;  /* 'o' for -o, or 0 */
    agora__cli_kind kind;
    void *dest;          /* see agora__cli_kind */
    const char *metavar; /* value placeholder in help ("FILE"); NULL for flags */
    const char *help;    /* one line for --help */
    unsigned flags;      /* AGORA__CLI_REQUIRED */
    /* LIST only, for a deprecated spelling kept for one release (`--grant A B`): following
     * words for which this returns 1 are appended too, with a deprecation warning. NULL: none. */
    int (*legacy_more)(const char *word);
    size_t max; /* LIST only: at most this many occurrences (a usage error past it); 0: no cap */
    /* In a table several commands share (one table per file, as curl has one for its tool): the
     * commands that take this row, as agora__cli_cmd.which bits. 0: every command of the table.
     * A row a command does not take is an unknown option there and is not in its --help. */
    unsigned only;
} agora__cli_opt;

/* The rows several commands share, so that they are spelled and explained once. */
/* The _ONLY forms are for a shared table where some of its commands take the row (`only`, the
 * commands' agora__cli_cmd.which bits). */
#define AGORA__CLI_OPT_HOME_ONLY(dest, only_)                                                      \
    {                                                                                              \
        "--home", 0, AGORA__CLI_VALUE, (dest), "DIR",                                              \
            "clinic home (default: $AGORA_HOME, then ~/.local/share/agora)", 0, NULL, 0, (only_)   \
    }
#define AGORA__CLI_OPT_HOME(dest) AGORA__CLI_OPT_HOME_ONLY(dest, 0)
#define AGORA__CLI_OPT_JSON_ONLY(dest, help, only_)                                                \
    {                                                                                              \
        "--json", 0, AGORA__CLI_FLAG, (dest), NULL, (help), 0, NULL, 0, (only_)                    \
    }
#define AGORA__CLI_OPT_JSON(dest, help) AGORA__CLI_OPT_JSON_ONLY(dest, help, 0)
/* run and dev run: the per-job time limit (read with agora__cli_seconds) and burned-in images. */
#define AGORA__CLI_OPT_TIMEOUT(dest, dflt)                                                         \
    {                                                                                              \
        "--timeout", 0, AGORA__CLI_VALUE, (dest), "SECONDS",                                       \
            "per-job time limit, 1..86400 (default: " dflt ")", 0, NULL, 0, 0                      \
    }
#define AGORA__CLI_OPT_BURNED_IN(dest)                                                             \
    {                                                                                              \
        "--allow-burned-in", 0, AGORA__CLI_FLAG, (dest), NULL,                                     \
            "accept images that declare burned-in annotations", 0, NULL, 0, 0                      \
    }
#define AGORA__CLI_OPT_QUIET(dest)                                                                 \
    {                                                                                              \
        "--quiet", 'q', AGORA__CLI_FLAG, (dest), NULL, "no progress lines", 0, NULL, 0, 0          \
    }

typedef struct agora__cli_cmd {
    const char *name;  /* as typed after `agora`: "certify", "results export" */
    const char *args;  /* synopsis after the name: "[OPTIONS] BUNDLE" */
    const char *about; /* description printed under the synopsis (may hold newlines) */
    const agora__cli_opt *opts;
    size_t n_opts;
    size_t min_pos; /* positional arguments accepted: [min_pos, max_pos] */
    size_t max_pos; /* SIZE_MAX: unbounded */
    unsigned which; /* this command's bit in a shared table (agora__cli_opt.only); 0: none */
} agora__cli_cmd;

#define AGORA__CLI_N(arr) (sizeof(arr) / sizeof((arr)[0]))

/* Parse argv[1..argc-1] (argv[0] is the command word) against cmd. Returns 1 when the command
 * should go on (*n_pos positionals are in argv[1..], *status is 0), 0 when it should return *status
 * at once: 0 after --help was printed, 2 after a usage error was printed. On 0 every LIST
 * destination has been freed already. n_pos may be NULL when cmd's bounds are all the command
 * needs to know of its positionals. */
int agora__cli_parse(const agora__cli_cmd *cmd, int argc, char **argv, size_t *n_pos, int *status);
/* The same, printing help to out and errors to err (for tests). */
int agora__cli_parse_to(const agora__cli_cmd *cmd, int argc, char **argv, size_t *n_pos,
                        int *status, FILE *out, FILE *err);

/* The same with the table given apart from the command's description (desc->opts and
 * desc->n_opts are not read): a description can then be a file-level constant while its table
 * points at the caller's variables. */
int agora__cli_parse_with(const agora__cli_cmd *desc, const agora__cli_opt *opts, size_t n_opts,
                          int argc, char **argv, size_t *n_pos, int *status);

/* Print the generated help of cmd. */
void agora__cli_help(const agora__cli_cmd *cmd, FILE *out);

/* Print "agora NAME: <message> (see agora NAME --help)" to stderr; returns 2, the exit status of
 * a usage error. For checks the table cannot express (two options that exclude each other). */
int agora__cli_usage_error(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void agora__cli_list_free(agora__cli_list *l);
/* Free every LIST destination of a table (after a parse that went on, when a later check of
 * the command fails). */
void agora__cli_lists_free(const agora__cli_opt *opts, size_t n_opts);

/* A command made of subcommands (`agora results show|export|studies`). */
typedef struct agora__cli_sub {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand word */
    const char *summary;
} agora__cli_sub;

/* Run the subcommand named by argv[1]. `agora CMD --help` lists the subcommands under a
 * "subcommands:" heading (exit 0); a missing or unknown one is a usage error (exit 2). */
int agora__cli_dispatch(const char *cmd, const char *about, const agora__cli_sub *subs, size_t n,
                        int argc, char **argv);
int agora__cli_dispatch_to(const char *cmd, const char *about, const agora__cli_sub *subs, size_t n,
                           int argc, char **argv, FILE *out, FILE *err);

/* A config file for cmd's table: one `key = value` per line, key a long option's name without
 * its dashes ("listen-dicom = 127.0.0.1:11113"), `#` starts a comment (outside quotes), blank
 * lines are skipped; a value may be "double quoted" (\" and \\ inside) to keep spaces or a #.
 * A FLAG takes true|false; a LIST key may be repeated. Unknown keys (or keys the command does
 * not take, or `config` itself) are an error naming the file and line. The result is argv words
 * ("--key", "value", ...) to put BEFORE the command line's own, so that flags override the file
 * (a VALUE given twice keeps the later one; LIST values accumulate).
 * On success *words (malloc'ed array of malloc'ed strings, *n of them) is the caller's: free
 * with agora__cli_words_free. 0, or 2 after printing the error to err ("agora NAME: FILE:LINE:
 * ..."), or 1 when the file cannot be read (printed too). At most 1 MiB, lines of 4 KiB. */
int agora__cli_config_read(const agora__cli_cmd *cmd, const char *path, char ***words, size_t *n,
                           FILE *err);
void agora__cli_words_free(char **words, size_t n);

#endif
