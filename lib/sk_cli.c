#include "sk_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int sk_cli_common(sk_cli *cli, int argc, char **argv, int *i)
{
    (void)argc;
    const char *a = argv[*i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
        fputs(cli->usage, stdout);
        exit(SK_EXIT_OK);
    }
    if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
        printf("%s %s\n", cli->prog, SK_VERSION);
        exit(SK_EXIT_OK);
    }
    if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) { cli->verbosity = 0; return 1; }
    if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { cli->verbosity++; return 1; }
    if (!strcmp(a, "--json")) { cli->json = 1; return 1; }
    return 0;
}

int sk_cli_usage_error(const sk_cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli->prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see %s --help)\n", cli->prog);
    va_end(ap);
    return SK_EXIT_USAGE;
}

int sk_cli_fail(const sk_cli *cli, const sk_error *err)
{
    /* one line: newlines inside a message would break log parsers */
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg[0] ? err->msg : sk_status_name(err->code));
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    fprintf(stderr, "%s: %s\n", cli->prog, msg);
    return SK_EXIT_FAIL;
}

void sk_cli_info(const sk_cli *cli, int level, const char *fmt, ...)
{
    if (cli->verbosity < level) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

int sk_cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int sk_cli_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return -1;
    double mul = 1;
    if (*end) {
        char u = (char)(*end | 0x20);
        mul = u == 'k' ? 1024.0 : u == 'm' ? 1048576.0 : u == 'g' ? 1073741824.0 : u == 'b' ? 1 : 0;
        if (mul == 0) return -1;
        end++;
        if (u != 'b' && (!strcmp(end, "iB") || !strcmp(end, "ib") || !strcmp(end, "B") || !strcmp(end, "b"))) end += strlen(end);
        if (*end) return -1;
    }
    double r = v * mul;
    if (r >= 18446744073709551615.0) return -1;
    *out = (uint64_t)r;
    return 0;
}

void sk_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c < 0x20) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

const char *sk_human_bytes(uint64_t n, char *buf, size_t cap)
{
    if (n < 1000) snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else if (n < 1000000) snprintf(buf, cap, "%.1f kB", n / 1e3);
    else if (n < 1000000000) snprintf(buf, cap, "%.1f MB", n / 1e6);
    else snprintf(buf, cap, "%.2f GB", n / 1e9);
    return buf;
}

/* ---- progress bars ------------------------------------------------------- */

#include <pthread.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;
static double progress_last;  /* when the bar was last drawn */
static int progress_shown;    /* a bar is on the line */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress_draw(void *user, const char *step, uint64_t done, uint64_t total)
{
    (void)user;
    pthread_mutex_lock(&progress_lock);
    double t = now_seconds();
    if (total && done >= total) {
        if (progress_shown) fputs("\r\033[K", stderr);
        progress_shown = 0;
    } else if (!progress_shown || t - progress_last >= 0.1) {
        enum { WIDTH = 30 };
        int fill = total ? (int)((double)WIDTH * (double)done / (double)total) : 0;
        char bar[WIDTH + 1];
        for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[WIDTH] = 0;
        fprintf(stderr, "\r\033[K%.40s [%s] %3d%%", step, bar, total ? (int)(100.0 * (double)done / (double)total) : 0);
        progress_shown = 1;
        progress_last = t;
    }
    fflush(stderr);
    pthread_mutex_unlock(&progress_lock);
}

void sk_cli_progress(sk_cli *cli, sk_progress *p)
{
    p->fn = NULL;
    p->user = cli;
    const char *term = getenv("TERM");
    if (cli->verbosity < 1 || !isatty(STDERR_FILENO) || (term && !strcmp(term, "dumb"))) return;
    p->fn = progress_draw;
}
