/* skiff-run: runs an ONNX model with skiff's engine. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sk_cli.h"
#include "sk_engine.h"
#include "sk_model.h"
#include "sk_npy.h"

static const char usage[] =
    "usage: skiff-run MODEL --input NAME=FILE [--input ...] [--output-dir DIR]\n"
    "                 [--bench N] [--threads N] [--profile] [--json] [-q|-v]\n"
    "       skiff-run MODEL --test-data DIR [--rtol X] [--atol X]\n"
    "       skiff-run MODEL --model-ops\n"
    "       skiff-run --list-ops\n"
    "\n"
    "Runs MODEL with skiff's engine. Input files are NumPy .npy or ONNX\n"
    "TensorProto .pb files; --input FILE without NAME= binds the next input in\n"
    "the model's order (or the .pb's tensor name when it is an input's).\n"
    "\n"
    "  --output-dir DIR  write each output as DIR/<name>.npy (.pb for types numpy\n"
    "                    lacks); without it a short summary is printed\n"
    "  --bench N         run N timed iterations after one warm-up and print\n"
    "                    'median X ms  min Y ms  peak Z MB' (peak: intermediates)\n"
    "  --threads N       threads kernels may use (default 1)\n"
    "  --profile         time per op type, on stderr\n"
    "  --json            machine-readable summary, --bench and --test-data result\n"
    "  --test-data DIR   run an ONNX test_data_set folder (input_N.pb, bound by\n"
    "                    tensor name or position) and compare with output_N.pb:\n"
    "                    |got - want| <= atol + rtol * |want| (float16 and\n"
    "                    bfloat16 outputs get at least one ulp of rtol)\n"
    "  --rtol X, --atol X  tolerances (default 1e-4 and 1e-5)\n"
    "  --model-ops       list the ops MODEL uses: domain, op, opset, ok|missing\n"
    "  --list-ops        list the ops skiff implements: domain, op, since opset\n"
    "  -q, -v            quieter, more verbose\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "Exit status: 0 ok, 1 bad model or input, failed run, or outputs that do not\n"
    "match the test data, 2 usage error.\n";

typedef struct input_arg {
    const char *name;  /* NULL: bind by position */
    const char *file;
} input_arg;

typedef struct bound {
    char *name;
    char *file;
    sk_tensor t;
} bound;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- op lists --------------------------------------------------------- */

static void print_op_row(const sk_op_def *d, void *arg)
{
    (void)arg;
    printf("%s\t%s\t%d\n", d->domain && d->domain[0] ? d->domain : "ai.onnx", d->name, d->since);
}

typedef struct op_use {
    const char *domain, *op;
    int64_t opset;
} op_use;

typedef struct op_uses {
    op_use *v;
    size_t n, cap;
    int oom;
} op_uses;

static void collect_ops(sk_model *m, const Onnx__GraphProto *g, op_uses *u, int depth)
{
    if (depth > 64) return;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        const char *d = n->domain && n->domain[0] ? n->domain : "ai.onnx";
        const char *op = n->op_type ? n->op_type : "";
        int64_t v = sk_model_opset(m, strcmp(d, "ai.onnx") ? d : "");
        if (v == 0 && strcmp(d, "ai.onnx")) v = 1;
        size_t i = 0;
        while (i < u->n && (strcmp(u->v[i].domain, d) || strcmp(u->v[i].op, op))) i++;
        if (i == u->n) {
            if (u->n == u->cap) {
                size_t cap = u->cap ? u->cap * 2 : 32;
                op_use *nv = realloc(u->v, cap * sizeof *nv);
                if (!nv) {
                    u->oom = 1;
                    return;
                }
                u->v = nv;
                u->cap = cap;
            }
            u->v[u->n++] = (op_use){ d, op, v };
        }
        for (size_t a = 0; a < n->n_attribute; a++) {
            if (n->attribute[a]->g) collect_ops(m, n->attribute[a]->g, u, depth + 1);
            for (size_t j = 0; j < n->attribute[a]->n_graphs; j++) collect_ops(m, n->attribute[a]->graphs[j], u, depth + 1);
        }
    }
}

static int model_ops(sk_cli *cli, sk_model *m)
{
    op_uses u = { 0 };
    collect_ops(m, sk_model_graph(m), &u, 0);
    if (u.oom) {
        free(u.v);
        sk_error err = { SK_ENOMEM, "out of memory" };
        return sk_cli_fail(cli, &err);
    }
    for (size_t i = 0; i < u.n; i++)
        printf("%s\t%s\t%" PRId64 "\t%s\n", u.v[i].domain, u.v[i].op, u.v[i].opset,
               sk_engine_op_supported(NULL, u.v[i].domain, u.v[i].op, u.v[i].opset) ? "ok" : "missing");
    free(u.v);
    return SK_EXIT_OK;
}

/* ---- printing and saving outputs -------------------------------------- */

static void print_summary(const char *name, const sk_tensor *t)
{
    char sb[160];
    printf("%s  %s %s ", name, sk_dtype_name(t->dtype), sk_shape_str(t->rank, t->dims, sb, sizeof sb));
    int64_t n = t->numel < 8 ? t->numel : 8;
    int isf = t->dtype == SK_FLOAT || t->dtype == SK_DOUBLE || t->dtype == SK_FLOAT16 || t->dtype == SK_BFLOAT16;
    int known = sk_dtype_valid(t->dtype) && sk_dtype_table[t->dtype].bits > 0 &&
                (isf || (t->dtype >= SK_UINT8 && t->dtype <= SK_INT64) || t->dtype == SK_BOOL ||
                 t->dtype == SK_UINT32 || t->dtype == SK_UINT64 || t->dtype == SK_INT4 || t->dtype == SK_UINT4);
    for (int64_t i = 0; i < n && known; i++) {
        if (isf) printf(" %.6g", sk_tensor_get_f64(t, i));
        else printf(" %" PRId64, sk_tensor_get_i64(t, i));
    }
    printf("%s\n", t->numel > n ? " ..." : "");
}

static void print_json(const sk_engine *e, const sk_tensor *outs, size_t n_out)
{
    printf("{\"outputs\": [");
    for (size_t i = 0; i < n_out; i++) {
        const sk_tensor *t = &outs[i];
        printf("%s{\"name\": ", i ? ", " : "");
        sk_json_str(stdout, sk_engine_output_name(e, i));
        printf(", \"dtype\": \"%s\", \"shape\": [", sk_dtype_name(t->dtype));
        for (int d = 0; d < t->rank; d++) printf(d ? ", %" PRId64 : "%" PRId64, t->dims[d]);
        printf("], \"first\": [");
        int64_t n = t->numel < 8 ? t->numel : 8;
        for (int64_t k = 0; k < n && t->dtype != SK_STRING; k++) {
            double v = sk_tensor_get_f64(t, k);
            if (isfinite(v)) printf(k ? ", %.9g" : "%.9g", v);
            else printf(k ? ", null" : "null");
        }
        printf("]}");
    }
    printf("], \"peak_bytes\": %zu}\n", sk_engine_peak_bytes(e));
}

/* DIR/<name>.npy with characters unsafe in file names replaced. */
static char *output_path(const char *dir, const char *name, const char *ext)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = malloc(dl + nl + 16);
    if (!p) return NULL;
    memcpy(p, dir, dl);
    size_t at = dl;
    if (dl && dir[dl - 1] != '/') p[at++] = '/';
    if (!nl || !strcmp(name, ".") || !strcmp(name, "..")) p[at++] = '_';
    for (size_t i = 0; i < nl; i++) p[at++] = name[i] == '/' || name[i] == '\\' ? '_' : name[i];
    strcpy(p + at, ext);
    return p;
}

/* ---- comparing with test data ----------------------------------------- */

static int is_float(int dt)
{
    return dt == SK_FLOAT || dt == SK_DOUBLE || dt == SK_FLOAT16 || dt == SK_BFLOAT16;
}

/* Compares got with want; prints what differs. Returns 0 when they match. */
static int compare(const sk_cli *cli, const char *file, const char *name, const sk_tensor *got, const sk_tensor *want,
                   double rtol, double atol, int rtol_set, double *max_abs, double *max_rel)
{
    char s1[160], s2[160];
    if (got->dtype != want->dtype) {
        fprintf(stderr, "%s: %s: output '%s' is %s, expected %s\n", cli->prog, file, name, sk_dtype_name(got->dtype),
                sk_dtype_name(want->dtype));
        return 1;
    }
    if (got->rank != want->rank || memcmp(got->dims, want->dims, (size_t)got->rank * sizeof got->dims[0])) {
        fprintf(stderr, "%s: %s: output '%s' has shape %s, expected %s\n", cli->prog, file, name,
                sk_shape_str(got->rank, got->dims, s1, sizeof s1), sk_shape_str(want->rank, want->dims, s2, sizeof s2));
        return 1;
    }
    if (!rtol_set && want->dtype == SK_FLOAT16 && rtol < 1.0 / 1024) rtol = 1.0 / 1024;
    if (!rtol_set && want->dtype == SK_BFLOAT16 && rtol < 1.0 / 128) rtol = 1.0 / 128;
    int64_t bad = 0, first = -1;
    double fg = 0, fw = 0;
    for (int64_t i = 0; i < want->numel; i++) {
        int ok;
        double g, w;
        if (is_float(want->dtype)) {
            g = sk_tensor_get_f64(got, i);
            w = sk_tensor_get_f64(want, i);
            if (isnan(w) || isnan(g)) ok = isnan(w) && isnan(g);
            else if (isinf(w) || isinf(g)) ok = g == w;
            else {
                double d = fabs(g - w);
                ok = d <= atol + rtol * fabs(w);
                if (d > *max_abs) *max_abs = d;
                if (w != 0 && d / fabs(w) > *max_rel) *max_rel = d / fabs(w);
            }
        } else if (want->dtype == SK_UINT64) {
            uint64_t a = ((const uint64_t *)got->data)[i], b = ((const uint64_t *)want->data)[i];
            ok = a == b;
            g = (double)a;
            w = (double)b;
        } else {
            int64_t a = sk_tensor_get_i64(got, i), b = sk_tensor_get_i64(want, i);
            ok = a == b;
            g = (double)a;
            w = (double)b;
            if (!ok && fabs(g - w) > *max_abs) *max_abs = fabs(g - w);
        }
        if (!ok) {
            if (first < 0) {
                first = i;
                fg = g;
                fw = w;
            }
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "%s: %s: output '%s': %" PRId64 " of %" PRId64 " elements differ; first at index %" PRId64
                        ": got %.9g, expected %.9g (rtol %g, atol %g)\n",
                cli->prog, file, name, bad, want->numel, first, fg, fw, rtol, atol);
        return 1;
    }
    return 0;
}

typedef struct pb_file {
    int index;
    char *path;
} pb_file;

static int cmp_pb(const void *a, const void *b)
{
    return ((const pb_file *)a)->index - ((const pb_file *)b)->index;
}

/* Lists DIR/<prefix>N.pb sorted by N. */
static int list_pb(const char *dir, const char *prefix, pb_file **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *de;
    size_t pl = strlen(prefix), cap = 0;
    int rc = 0;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (strncmp(nm, prefix, pl)) continue;
        char *end;
        long idx = strtol(nm + pl, &end, 10);
        if (end == nm + pl || strcmp(end, ".pb") || idx < 0 || idx > 100000) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            pb_file *v = realloc(*out, cap * sizeof *v);
            if (!v) {
                rc = -1;
                break;
            }
            *out = v;
        }
        size_t l = strlen(dir) + strlen(nm) + 2;
        char *p = malloc(l);
        if (!p) {
            rc = -1;
            break;
        }
        snprintf(p, l, "%s/%s", dir, nm);
        (*out)[(*n)++] = (pb_file){ (int)idx, p };
    }
    closedir(d);
    if (*n) qsort(*out, *n, sizeof **out, cmp_pb);
    return rc;
}

static void free_pb(pb_file *v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i].path);
    free(v);
}

/* ---- main ------------------------------------------------------------- */

typedef struct prof_print {
    double total;
} prof_print;

static void print_prof(void *arg, const char *domain, const char *op, uint64_t calls, double seconds)
{
    prof_print *pp = arg;
    fprintf(stderr, "  %-28s %-12s %8" PRIu64 " calls %10.3f ms %5.1f%%\n", op, strcmp(domain, "ai.onnx") ? domain : "",
            calls, seconds * 1e3, pp->total > 0 ? 100 * seconds / pp->total : 0);
}

static void sum_prof(void *arg, const char *domain, const char *op, uint64_t calls, double seconds)
{
    (void)domain, (void)op, (void)calls;
    ((prof_print *)arg)->total += seconds;
}

int main(int argc, char **argv)
{
    sk_cli cli = { "skiff-run", usage, 1, 0 };
    const char *model_path = NULL, *out_dir = NULL, *test_dir = NULL;
    uint64_t bench = 0, threads = 1;
    double rtol = 1e-4, atol = 1e-5;
    int rtol_set = 0, list_ops = 0, want_model_ops = 0, profile = 0, opts_done = 0;
    input_arg *args = calloc((size_t)argc + 1, sizeof *args);
    size_t n_args = 0;
    if (!args) return SK_EXIT_FAIL;
    int rc = SK_EXIT_OK;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1]) {
            if (sk_cli_common(&cli, argc, argv, &i)) continue;
            if (!strcmp(a, "--")) {
                opts_done = 1;
                continue;
            }
            const char *val = NULL;
            char key[32];
            const char *eq = strchr(a, '=');
            if (!strncmp(a, "--", 2) && eq && (size_t)(eq - a) < sizeof key) {
                memcpy(key, a, (size_t)(eq - a));
                key[eq - a] = 0;
                val = eq + 1;
                a = key;
            }
#define NEXT()                                                                               \
    do {                                                                                     \
        if (!val) {                                                                          \
            if (++i >= argc) {                                                               \
                rc = sk_cli_usage_error(&cli, "%s needs a value", a);                        \
                goto out;                                                                    \
            }                                                                                \
            val = argv[i];                                                                   \
        }                                                                                    \
    } while (0)
            if (!strcmp(a, "--input") || !strcmp(a, "-i")) {
                NEXT();
                const char *e2 = strchr(val, '=');
                args[n_args].name = NULL;
                args[n_args].file = val;
                if (e2) {
                    /* NAME=FILE; NAME is checked against the model later */
                    size_t nl = (size_t)(e2 - val);
                    char *nm = malloc(nl + 1);
                    if (!nm) goto out;
                    memcpy(nm, val, nl);
                    nm[nl] = 0;
                    args[n_args].name = nm;
                    args[n_args].file = e2 + 1;
                }
                n_args++;
            } else if (!strcmp(a, "--output-dir") || !strcmp(a, "-o")) {
                NEXT();
                out_dir = val;
            } else if (!strcmp(a, "--test-data")) {
                NEXT();
                test_dir = val;
            } else if (!strcmp(a, "--bench")) {
                NEXT();
                if (sk_cli_parse_u64(val, &bench) || bench < 1 || bench > 1000000) {
                    rc = sk_cli_usage_error(&cli, "--bench needs a number of iterations (1 or more)");
                    goto out;
                }
            } else if (!strcmp(a, "--threads")) {
                NEXT();
                if (sk_cli_parse_u64(val, &threads) || threads < 1 || threads > 256) {
                    rc = sk_cli_usage_error(&cli, "--threads needs a number from 1 to 256");
                    goto out;
                }
            } else if (!strcmp(a, "--rtol") || !strcmp(a, "--atol")) {
                NEXT();
                char *end;
                double v = strtod(val, &end);
                if (end == val || *end || !(v >= 0) || isinf(v)) {
                    rc = sk_cli_usage_error(&cli, "%s needs a non-negative number", a);
                    goto out;
                }
                if (a[2] == 'r') {
                    rtol = v;
                    rtol_set = 1;
                } else {
                    atol = v;
                }
            } else if (!strcmp(a, "--list-ops") && !val) {
                list_ops = 1;
            } else if (!strcmp(a, "--model-ops") && !val) {
                want_model_ops = 1;
            } else if (!strcmp(a, "--profile") && !val) {
                profile = 1;
            } else {
                rc = sk_cli_usage_error(&cli, "unknown option '%s'", argv[i]);
                goto out;
            }
#undef NEXT
            continue;
        }
        if (model_path) {
            rc = sk_cli_usage_error(&cli, "one model at a time ('%s' and '%s')", model_path, a);
            goto out;
        }
        model_path = a;
    }
    if (list_ops) {
        if (model_path || n_args || test_dir) {
            rc = sk_cli_usage_error(&cli, "--list-ops takes no model or inputs");
            goto out;
        }
        sk_op_foreach(print_op_row, NULL);
        goto out;
    }
    if (!model_path) {
        rc = sk_cli_usage_error(&cli, "no model given");
        goto out;
    }
    if (test_dir && n_args) {
        rc = sk_cli_usage_error(&cli, "--test-data and --input cannot be combined");
        goto out;
    }

    sk_error err = { 0 };
    sk_model *m = NULL;
    sk_engine *e = NULL;
    bound *in = NULL;
    size_t n_in = 0;
    sk_tensor *outs = NULL;
    pb_file *pin = NULL, *pout = NULL;
    size_t n_pin = 0, n_pout = 0;
    if (sk_model_load(model_path, NULL, &m, &err)) {
        rc = sk_cli_fail(&cli, &err);
        goto out;
    }
    if (want_model_ops) {
        rc = model_ops(&cli, m);
        goto done;
    }
    sk_engine_opts eo = { .threads = (int)threads, .profile = profile };
    if (sk_engine_create(m, &eo, &e, &err)) {
        sk_error_prefix(&err, "%s: ", model_path);
        rc = sk_cli_fail(&cli, &err);
        goto done;
    }

    /* Gather the input files. */
    if (test_dir) {
        if (list_pb(test_dir, "input_", &pin, &n_pin) || list_pb(test_dir, "output_", &pout, &n_pout)) {
            fprintf(stderr, "%s: %s: cannot read the folder: %s\n", cli.prog, test_dir, strerror(errno));
            rc = SK_EXIT_FAIL;
            goto done;
        }
        if (!n_pout) {
            fprintf(stderr, "%s: %s: no output_N.pb files\n", cli.prog, test_dir);
            rc = SK_EXIT_FAIL;
            goto done;
        }
    }
    size_t n_files = test_dir ? n_pin : n_args;
    in = calloc(n_files + 1, sizeof *in);
    if (!in) goto oom;
    size_t next_pos = 0;
    for (size_t i = 0; i < n_files; i++) {
        const char *file = test_dir ? pin[i].path : args[i].file;
        char *tname = NULL;
        if (sk_npy_load_any(file, &in[i].t, &tname, &err)) {
            rc = sk_cli_fail(&cli, &err);
            n_in = i;
            goto done;
        }
        n_in = i + 1;
        in[i].file = (char *)file;
        const char *name = test_dir ? NULL : args[i].name;
        if (name && sk_engine_input_find(e, name) < 0) {
            free(tname);
            fprintf(stderr, "%s: %s: the model has no input named '%s' (see --input)\n", cli.prog, model_path, name);
            rc = SK_EXIT_USAGE;
            goto done;
        }
        if (!name && tname && tname[0] && sk_engine_input_find(e, tname) >= 0) name = tname;
        if (!name) {
            /* next input of the model not yet bound */
            for (;; next_pos++) {
                const char *cand = sk_engine_input_name(e, next_pos);
                if (!cand || next_pos >= sk_engine_input_count(e)) break;
                int used = 0;
                for (size_t j = 0; j < i; j++) used |= !strcmp(in[j].name, cand);
                if (!used) break;
            }
            if (next_pos >= sk_engine_input_count(e)) {
                free(tname);
                fprintf(stderr, "%s: %s: more input files than model inputs (%s is left over)\n", cli.prog, model_path,
                        file);
                rc = test_dir ? SK_EXIT_FAIL : SK_EXIT_USAGE;
                goto done;
            }
            name = sk_engine_input_name(e, next_pos++);
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(in[j].name, name)) {
                fprintf(stderr, "%s: input '%s' is given twice (%s and %s)\n", cli.prog, name, in[j].file, file);
                free(tname);
                rc = test_dir ? SK_EXIT_FAIL : SK_EXIT_USAGE;
                goto done;
            }
        if (test_dir && in[i].t.dtype == SK_UINT16) {
            /* ONNX's older test data stores bfloat16 as uint16 (same bits) */
            int dt;
            sk_engine_input_info(e, (size_t)sk_engine_input_find(e, name), &dt, NULL, NULL);
            if (dt == SK_BFLOAT16) in[i].t.dtype = SK_BFLOAT16;
        }
        in[i].name = strdup(name);
        free(tname);
        if (!in[i].name) goto oom;
    }
    /* Every required input bound? */
    {
        char missing[512] = "";
        size_t l = 0, nm = 0;
        for (size_t k = 0; k < sk_engine_input_count(e); k++) {
            const char *cand = sk_engine_input_name(e, k);
            int have = 0;
            for (size_t j = 0; j < n_in; j++) have |= !strcmp(in[j].name, cand);
            if (have) continue;
            nm++;
            if (l < sizeof missing) l += (size_t)snprintf(missing + l, sizeof missing - l, "%s'%s'", nm > 1 ? ", " : "", cand);
        }
        if (nm) {
            fprintf(stderr, "%s: %s: missing input%s %s (give --input NAME=FILE)\n", cli.prog, model_path,
                    nm > 1 ? "s" : "", missing);
            rc = test_dir ? SK_EXIT_FAIL : SK_EXIT_USAGE;
            goto done;
        }
    }
    const char **names = calloc(n_in + 1, sizeof *names);
    const sk_tensor **tens = calloc(n_in + 1, sizeof *tens);
    size_t n_out = sk_engine_output_count(e);
    outs = calloc(n_out + 1, sizeof *outs);
    if (!names || !tens || !outs) {
        free(names);
        free(tens);
        goto oom;
    }
    for (size_t i = 0; i < n_in; i++) {
        names[i] = in[i].name;
        tens[i] = &in[i].t;
    }
    uint64_t iters = bench ? bench + 1 : 1;
    double *times = calloc(iters, sizeof *times);
    if (!times) {
        free(names);
        free(tens);
        goto oom;
    }
    sk_status st = SK_OK;
    for (uint64_t it = 0; it < iters && !st; it++) {
        double t0 = now_ms();
        st = sk_engine_run(e, n_in, names, tens, outs, &err);
        times[it] = now_ms() - t0;
    }
    free(names);
    free(tens);
    if (st) {
        sk_error_prefix(&err, "%s: ", model_path);
        rc = sk_cli_fail(&cli, &err);
        free(times);
        goto done;
    }
    if (bench) {
        qsort(times + 1, bench, sizeof *times, cmp_double);
        double med = bench % 2 ? times[1 + bench / 2] : (times[bench / 2] + times[1 + bench / 2]) / 2;
        if (cli.json)
            printf("{\"iterations\": %" PRIu64 ", \"median_ms\": %.3f, \"min_ms\": %.3f, \"peak_bytes\": %zu}\n", bench,
                   med, times[1], sk_engine_peak_bytes(e));
        else
            printf("median %.2f ms  min %.2f ms  peak %.1f MB\n", med, times[1], sk_engine_peak_bytes(e) / 1e6);
    } else {
        sk_cli_info(&cli, 2, "%s: ran in %.2f ms, %" PRIu64 " kernel calls, peak intermediates %.1f MB\n", cli.prog,
                    times[0], sk_engine_node_runs(e), sk_engine_peak_bytes(e) / 1e6);
    }
    free(times);
    if (profile) {
        prof_print pp = { 0 };
        sk_engine_profile(e, sum_prof, &pp);
        fprintf(stderr, "profile (%" PRIu64 " runs, %.3f ms total)\n", iters, pp.total * 1e3);
        sk_engine_profile(e, print_prof, &pp);
    }

    if (test_dir) {
        int bad = 0;
        double max_abs = 0, max_rel = 0;
        for (size_t i = 0; i < n_pout; i++) {
            sk_tensor want = { 0 };
            char *tname = NULL;
            if (sk_npy_load_pb(pout[i].path, &want, &tname, &err)) {
                rc = sk_cli_fail(&cli, &err);
                goto done;
            }
            size_t k = (size_t)pout[i].index;
            for (size_t j = 0; j < n_out && tname && tname[0]; j++)
                if (!strcmp(sk_engine_output_name(e, j), tname)) k = j;
            free(tname);
            if (k >= n_out) {
                fprintf(stderr, "%s: %s: the model has no output #%zu\n", cli.prog, pout[i].path, k);
                bad = 1;
            } else {
                if (want.dtype == SK_UINT16 && outs[k].dtype == SK_BFLOAT16) want.dtype = SK_BFLOAT16; /* as above */
                bad |= compare(&cli, pout[i].path, sk_engine_output_name(e, k), &outs[k], &want, rtol, atol, rtol_set, &max_abs,
                               &max_rel);
            }
            sk_tensor_free(&want);
        }
        if (cli.json)
            printf("{\"match\": %s, \"outputs\": %zu, \"max_abs_err\": %.6g, \"max_rel_err\": %.6g}\n",
                   bad ? "false" : "true", n_pout, max_abs, max_rel);
        if (bad) {
            rc = SK_EXIT_FAIL;
        } else if (!cli.json) {
            sk_cli_info(&cli, 1, "%s: %zu output%s match (max abs err %.3g, max rel err %.3g)\n", test_dir, n_pout,
                        n_pout > 1 ? "s" : "", max_abs, max_rel);
        }
    } else if (out_dir) {
        if (mkdir(out_dir, 0777) && errno != EEXIST) {
            fprintf(stderr, "%s: %s: cannot create the folder: %s\n", cli.prog, out_dir, strerror(errno));
            rc = SK_EXIT_FAIL;
            goto done;
        }
        for (size_t i = 0; i < n_out; i++) {
            const char *nm = sk_engine_output_name(e, i);
            uint8_t *tmp;
            size_t tl;
            int npy_ok = sk_npy_format(&outs[i], &tmp, &tl, NULL) == SK_OK;
            if (npy_ok) free(tmp);
            char *path = output_path(out_dir, nm, npy_ok ? ".npy" : ".pb");
            if (!path) goto oom;
            sk_status ss = npy_ok ? sk_npy_save(path, &outs[i], &err) : sk_npy_save_pb(path, &outs[i], nm, &err);
            if (!ss) sk_cli_info(&cli, 2, "wrote %s\n", path);
            free(path);
            if (ss) {
                rc = sk_cli_fail(&cli, &err);
                goto done;
            }
        }
    } else if (!bench && cli.verbosity > 0) {
        if (cli.json) print_json(e, outs, n_out);
        else
            for (size_t i = 0; i < n_out; i++) print_summary(sk_engine_output_name(e, i), &outs[i]);
    }
    goto done;
oom:
    err.code = SK_ENOMEM;
    snprintf(err.msg, sizeof err.msg, "out of memory");
    rc = sk_cli_fail(&cli, &err);
done:
    if (outs)
        for (size_t i = 0; i < sk_engine_output_count(e); i++) sk_tensor_free(&outs[i]);
    free(outs);
    for (size_t i = 0; i < n_in; i++) {
        free(in[i].name);
        sk_tensor_free(&in[i].t);
    }
    free(in);
    free_pb(pin, n_pin);
    free_pb(pout, n_pout);
    sk_engine_free(e);
    sk_model_free(m);
out:
    for (size_t i = 0; i < n_args; i++) free((char *)args[i].name);
    free(args);
    return rc;
}
