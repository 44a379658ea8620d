/*
 * cli_conf: the options aiload reads besides its command line, as Locust's
 * configargparse setup reads them: LOCUST_* environment variables and config
 * files (~/.locust.conf, ./locust.conf, --config FILE).
 *
 * Precedence (Locust 2.12 with configargparse 1.5): command line, then the
 * environment, then --config, then ./locust.conf, then ~/.locust.conf, then
 * the defaults. It is reproduced the way configargparse does it: every source
 * is turned into command-line arguments that are added to the real ones only
 * for options not already there, and cli_parse() then reads the whole list.
 * That keeps configargparse's quirks too: a flag set to true in a lower
 * source cannot be turned off by "false" in a higher one (use --headful).
 */
#ifndef LOADGEN_CLI_CONF_H
#define LOADGEN_CLI_CONF_H

#include <stddef.h>

#include "lib/buf.h"

/* One "key = value" of a config file. A list value ("[a, b]") has
 * is_list set; a plain value is vals[0]. */
typedef struct cli_conf_item {
    char *key;
    char **vals;
    size_t nvals;
    int is_list;
    int line; /* 1-based, of the last assignment */
} cli_conf_item;

typedef struct cli_conf {
    cli_conf_item *items; /* file order of first appearance; a repeated key keeps its
                           * place and takes the later value, as configargparse does */
    size_t n;
} cli_conf;

/* Parses text with configargparse's DefaultConfigFileParser rules: "key
 * value", "key = value", "key: value", "--key value", a bare "key" (= true),
 * quotes around a value, comments after " #" or " ;", lines starting with #,
 * ; or [ (sections) and --- ignored; "[a, b]" is a list (JSON, else split at
 * commas). name is used in messages. Returns 0, or -1 with "name:line: what"
 * in err (c is then empty). */
int cli_conf_parse(const char *text, size_t len, const char *name, cli_conf *c, char *err,
                   size_t errlen);
void cli_conf_free(cli_conf *c);

/* An argument vector that owns its strings; argv[argc] is NULL. */
typedef struct cli_args {
    char **argv;
    int argc;
    size_t cap;
} cli_args;

void cli_args_free(cli_args *a);

/* Where the extra sources are: envp (NULL-terminated "K=V" strings), the
 * home directory for ~/.locust.conf (NULL: none) and the directory holding
 * locust.conf (NULL: the current one). */
typedef struct cli_conf_env {
    char *const *envp;
    const char *home;
    const char *cwd;
} cli_conf_env;

/* Builds the full argument list: argv plus what the environment and the
 * config files add (argv[0] first). Notes (an ignored Locust-only key) are
 * appended to notes, one line each (may be NULL). Returns 0, or -1 with a
 * message naming the file and line, or the variable, in err. */
int cli_conf_merge(int argc, char **argv, const cli_conf_env *env, cli_args *out, buf *notes,
                   char *err, size_t errlen);

#endif
