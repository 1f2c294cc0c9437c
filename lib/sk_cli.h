/* Shared plumbing of the command-line tools: the common options (--help,
 * --version, -q, -v, --json), size arguments, JSON output and the mapping of
 * library errors to exit codes (0 ok, 1 bad input or failed verification,
 * 2 usage). The library itself never prints; only cmd/ uses this. */
#ifndef SK_CLI_H
#define SK_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "sk_error.h"
#include "sk_progress.h"

enum { SK_EXIT_OK = 0, SK_EXIT_FAIL = 1, SK_EXIT_USAGE = 2 };

typedef struct sk_cli {
    const char *prog;
    const char *usage;  /* full --help text */
    int verbosity;      /* 0 quiet, 1 normal, 2+ verbose */
    int json;
} sk_cli;

/* Handles a common option at argv[*i]; returns 1 if it was one (and may exit
 * for --help/--version), 0 if not. */
int sk_cli_common(sk_cli *cli, int argc, char **argv, int *i);

/* Prints "prog: message" and returns 2. */
int sk_cli_usage_error(const sk_cli *cli, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "prog: err->msg" and returns 1 (2 if err->code is a usage error). */
int sk_cli_fail(const sk_cli *cli, const sk_error *err);
/* Informational message on stderr at verbosity >= level. */
void sk_cli_info(const sk_cli *cli, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses "123", "4K", "4M", "4KiB", "1.5MiB", "2G" (K/M/G are 1024-based
 * like zstd's). Returns 0 on success, -1 on a malformed or overflowing size. */
int sk_cli_parse_size(const char *s, uint64_t *out);
/* Parses a non-negative decimal integer; -1 on error. */
int sk_cli_parse_u64(const char *s, uint64_t *out);

/* A progress bar on stderr for p: drawn only when stderr is a terminal
 * (and TERM is not "dumb") and cli is not quiet (-q);
 * otherwise p->fn is left NULL and nothing is ever drawn. The bar redraws at
 * most 10 times a second, on one line ("\r"), and is erased when a step
 * ends. Thread-safe. cli must outlive the reports. */
void sk_cli_progress(sk_cli *cli, sk_progress *p);

/* Writes s as a JSON string literal. */
void sk_json_str(FILE *f, const char *s);
/* "12.3 MB" style human size. */
const char *sk_human_bytes(uint64_t n, char *buf, size_t cap);

#endif
