/* Recipe files (docs/recipe.md): a TOML subset. Lines are `key = value`,
 * `[section]` headers, blank lines and `#` comments. Values: "basic strings"
 * (escapes \" \\ \n \t), 'literal strings', integers, floats, true/false,
 * and one-line arrays of strings. */
#include "sk_build.h"
#include "sk_cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECIPE_MAX_BYTES (1u << 20)
#define RECIPE_MAX_ARRAY 256

typedef enum { V_STR, V_INT, V_FLOAT, V_BOOL, V_ARRAY } vkind;

typedef struct value {
    vkind kind;
    char *s;        /* V_STR */
    int64_t i;      /* V_INT, V_BOOL */
    double f;       /* V_FLOAT (and V_INT as a double) */
    char **items;   /* V_ARRAY of strings */
    size_t n_items;
} value;

static void value_clear(value *v)
{
    free(v->s);
    for (size_t i = 0; i < v->n_items; i++) free(v->items[i]);
    free(v->items);
    memset(v, 0, sizeof *v);
}

typedef struct parser {
    const char *path;
    int line;
    sk_error *err;
} parser;

static sk_status perr(parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static sk_status perr(parser *p, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sk_error_set(p->err, SK_EINVAL, "%s:%d: %s", p->path, p->line, msg);
}

static const char *skip_ws(const char *c)
{
    while (*c == ' ' || *c == '\t') c++;
    return c;
}

/* A string starting at *c (a quote); advances *c past it. */
static sk_status parse_string(parser *p, const char **c, char **out)
{
    char q = **c;
    const char *s = *c + 1;
    size_t cap = strlen(s) + 1, n = 0;
    char *buf = malloc(cap);
    if (!buf) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    for (;; s++) {
        if (!*s) {
            free(buf);
            return perr(p, "a string is not closed (strings end on the line they start)");
        }
        if (*s == q) break;
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 && ch != '\t') {
            free(buf);
            return perr(p, "a control character inside a string");
        }
        if (q == '"' && *s == '\\') {
            s++;
            switch (*s) {
            case '"': buf[n++] = '"'; break;
            case '\\': buf[n++] = '\\'; break;
            case 'n': buf[n++] = '\n'; break;
            case 't': buf[n++] = '\t'; break;
            default:
                free(buf);
                return perr(p, "unknown escape in a string (only \\\" \\\\ \\n \\t)");
            }
            continue;
        }
        buf[n++] = *s;
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        free(buf);
        return perr(p, "a NUL byte inside a string");
    }
    *c = s + 1;
    *out = buf;
    return SK_OK;
}

static sk_status parse_value(parser *p, const char *c, value *v)
{
    memset(v, 0, sizeof *v);
    sk_status s;
    if (*c == '"' || *c == '\'') {
        v->kind = V_STR;
        s = parse_string(p, &c, &v->s);
    } else if (*c == '[') {
        v->kind = V_ARRAY;
        v->items = calloc(RECIPE_MAX_ARRAY, sizeof *v->items);
        if (!v->items) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
        c = skip_ws(c + 1);
        s = SK_OK;
        while (!s && *c != ']') {
            if (*c != '"' && *c != '\'') { s = perr(p, "arrays hold strings only, on one line"); break; }
            if (v->n_items == RECIPE_MAX_ARRAY) { s = perr(p, "an array of more than 256 strings"); break; }
            s = parse_string(p, &c, &v->items[v->n_items]);
            if (s) break;
            v->n_items++;
            c = skip_ws(c);
            if (*c == ',') c = skip_ws(c + 1);
            else if (*c != ']') s = perr(p, "expected ',' or ']' in an array");
        }
        if (!s) c++;
    } else if (!strncmp(c, "true", 4) || !strncmp(c, "false", 5)) {
        v->kind = V_BOOL;
        v->i = *c == 't';
        c += v->i ? 4 : 5;
        s = SK_OK;
    } else if (*c == '-' || *c == '+' || isdigit((unsigned char)*c)) {
        char *end;
        errno = 0;
        long long ll = strtoll(c, &end, 10);
        if (end != c && (*end == 0 || *end == ' ' || *end == '\t' || *end == '#') && !errno) {
            v->kind = V_INT;
            v->i = ll;
            v->f = (double)ll;
        } else {
            errno = 0;
            double d = strtod(c, &end);
            if (end == c || errno || !isfinite(d)) return perr(p, "not a number");
            v->kind = V_FLOAT;
            v->f = d;
        }
        c = end;
        s = SK_OK;
    } else {
        return perr(p, "a value must be a \"string\", a number, true/false or an array of strings");
    }
    if (!s) {
        c = skip_ws(c);
        if (*c && *c != '#') s = perr(p, "unexpected text after the value");
    }
    if (s) value_clear(v);
    return s;
}

/* ---- applying values -------------------------------------------------- */

typedef struct recipe_ctx {
    parser *p;
    sk_build_opts *o;
    const char *dir;       /* the recipe's folder, with a trailing '/', or "" */
    char seen[64][48];     /* "section.key" already set */
    size_t n_seen;
} recipe_ctx;

static sk_status want(parser *p, const value *v, vkind k, const char *key)
{
    static const char *names[] = { "a string", "an integer", "a number", "true or false", "an array of strings" };
    if (v->kind == k || (k == V_FLOAT && v->kind == V_INT)) return SK_OK;
    return perr(p, "%s must be %s", key, names[k]);
}

static sk_status set_path(recipe_ctx *x, char **field, const value *v, const char *key)
{
    sk_status s = want(x->p, v, V_STR, key);
    if (s) return s;
    if (!*v->s) return perr(x->p, "%s is empty", key);
    if (v->s[0] == '/' || !*x->dir) return sk_build_set(field, v->s, x->p->err);
    size_t n = strlen(x->dir) + strlen(v->s) + 1;
    char *j = malloc(n);
    if (!j) return sk_error_set(x->p->err, SK_ENOMEM, "out of memory");
    snprintf(j, n, "%s%s", x->dir, v->s);
    free(*field);
    *field = j;
    return SK_OK;
}

/* "25%" -> 0.25 style shares, or plain numbers. */
static sk_status share(parser *p, const value *v, const char *key, double *out)
{
    if (v->kind == V_INT || v->kind == V_FLOAT) {
        *out = v->f;
        return SK_OK;
    }
    if (v->kind == V_STR) {
        char *end;
        double d = strtod(v->s, &end);
        if (end != v->s && !strcmp(end, "%") && isfinite(d)) {
            *out = d / 100;
            return SK_OK;
        }
    }
    return perr(p, "%s must be a number or a percentage such as \"1%%\"", key);
}

static sk_status apply(recipe_ctx *x, const char *section, const char *key, const value *v)
{
    parser *p = x->p;
    sk_build_opts *o = x->o;
    char full[48];
    snprintf(full, sizeof full, "%s%s%s", section, *section ? "." : "", key);
    for (size_t i = 0; i < x->n_seen; i++)
        if (!strcmp(x->seen[i], full)) return perr(p, "%s is set twice", full);
    if (x->n_seen < 64) snprintf(x->seen[x->n_seen++], sizeof x->seen[0], "%s", full);
    sk_status s;
    if (!*section) {
        if (!strcmp(key, "model")) return set_path(x, &o->model, v, full);
        if (!strcmp(key, "output")) return set_path(x, &o->output, v, full);
        if (!strcmp(key, "name")) {
            if ((s = want(p, v, V_STR, full))) return s;
            if (!sk_manifest_model_name_ok(v->s))
                return perr(p, "name '%s' is not a model name (characters of A-Z a-z 0-9 . _ - + @ /, "
                            "starting with a letter or digit)", v->s);
            return sk_build_set(&o->name, v->s, p->err);
        }
        if (!strcmp(key, "version")) {
            if ((s = want(p, v, V_INT, full))) return s;
            if (v->i < 0 || (uint64_t)v->i > SK_MANIFEST_MAX_INT) return perr(p, "version must be 0 to 2^53 - 1");
            o->version = (uint64_t)v->i;
            return SK_OK;
        }
    } else if (!strcmp(section, "prune")) {
        o->prune = 1;
        if (!strcmp(key, "heads")) {
            if (v->kind == V_INT) {
                if (v->i < 1) return perr(p, "prune.heads must be at least 1 (or a share such as \"25%%\")");
                o->prune_heads = v->i;
                o->prune_percent = -1;
                return SK_OK;
            }
            double d;
            if (v->kind != V_STR || share(p, v, full, &d) || d <= 0 || d >= 1)
                return perr(p, "prune.heads must be a count (8) or a share below 100%% (\"25%%\")");
            o->prune_percent = 100 * d;
            return SK_OK;
        }
        if (!strcmp(key, "calib")) return set_path(x, &o->prune_calib, v, full);
        if (!strcmp(key, "score")) {
            if ((s = want(p, v, V_STR, full))) return s;
            if (!strcmp(v->s, "ablation")) o->prune_score = SK_PRUNE_SCORE_ABLATION;
            else if (!strcmp(v->s, "activation")) o->prune_score = SK_PRUNE_SCORE_ACTIVATION;
            else return perr(p, "prune.score must be \"ablation\" or \"activation\"");
            return SK_OK;
        }
        if (!strcmp(key, "compensate")) {
            if ((s = want(p, v, V_STR, full))) return s;
            if (!strcmp(v->s, "auto")) o->prune_comp = SK_PRUNE_COMP_AUTO;
            else if (!strcmp(v->s, "bias")) o->prune_comp = SK_PRUNE_COMP_BIAS;
            else if (!strcmp(v->s, "lsq")) o->prune_comp = SK_PRUNE_COMP_LSQ;
            else if (!strcmp(v->s, "none")) o->prune_comp = SK_PRUNE_COMP_NONE;
            else return perr(p, "prune.compensate must be \"auto\", \"bias\", \"lsq\" or \"none\"");
            return SK_OK;
        }
        if (!strcmp(key, "min_heads")) {
            if ((s = want(p, v, V_INT, full))) return s;
            if (v->i < 1 || v->i > 1 << 20) return perr(p, "prune.min_heads must be at least 1");
            o->min_heads = v->i;
            return SK_OK;
        }
    } else if (!strcmp(section, "quant")) {
        if (!strcmp(key, "mode")) {
            if ((s = want(p, v, V_STR, full))) return s;
            if (sk_build_quant_from_name(v->s, &o->quant))
                return perr(p, "quant.mode must be \"int8\", \"int8-static\", \"int4\" or \"none\"");
            return SK_OK;
        }
        if (!strcmp(key, "calib")) return set_path(x, &o->quant_calib, v, full);
        if (!strcmp(key, "block")) {
            if ((s = want(p, v, V_INT, full))) return s;
            if (v->i != 16 && v->i != 32 && v->i != 64 && v->i != 128)
                return perr(p, "quant.block must be 16, 32, 64 or 128");
            o->block = v->i;
            return SK_OK;
        }
        if (!strcmp(key, "exclude")) {
            if ((s = want(p, v, V_ARRAY, full))) return s;
            for (size_t i = 0; i < o->n_exclude; i++) free(o->exclude[i]);
            free(o->exclude);
            o->exclude = calloc(v->n_items + 1, sizeof *o->exclude);
            o->n_exclude = 0;
            if (!o->exclude) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
            for (size_t i = 0; i < v->n_items; i++) {
                if (!(o->exclude[i] = strdup(v->items[i]))) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
                o->n_exclude++;
            }
            return SK_OK;
        }
    } else if (!strcmp(section, "eval")) {
        if (!strcmp(key, "samples")) return set_path(x, &o->eval_samples, v, full);
        if (!strcmp(key, "labels")) return set_path(x, &o->eval_labels, v, full);
        if (!strcmp(key, "output")) {
            if ((s = want(p, v, V_STR, full))) return s;
            return sk_build_set(&o->eval_output, v->s, p->err);
        }
        if (!strcmp(key, "max_accuracy_drop")) {
            double d;
            if ((s = share(p, v, full, &d))) return s;
            if (d < 0 || d > 1) return perr(p, "eval.max_accuracy_drop must be between 0 and 1 (or 0%% and 100%%)");
            o->max_accuracy_drop = d;
            return SK_OK;
        }
        if (!strcmp(key, "min_cosine")) {
            if ((s = want(p, v, V_FLOAT, full))) return s;
            if (v->f < -1 || v->f > 1) return perr(p, "eval.min_cosine must be between -1 and 1");
            o->min_cosine = v->f;
            return SK_OK;
        }
    } else if (!strcmp(section, "pack")) {
        if (!strcmp(key, "shard_size") || !strcmp(key, "external_min")) {
            uint64_t sz;
            char buf[32];
            if (v->kind == V_INT && v->i >= 0) snprintf(buf, sizeof buf, "%lld", (long long)v->i);
            else if (v->kind == V_STR) snprintf(buf, sizeof buf, "%s", v->s);
            else return perr(p, "%s must be a size such as \"4MiB\" or a number of bytes", full);
            if (sk_cli_parse_size(buf, &sz)) return perr(p, "%s must be a size such as \"4MiB\" or a number of bytes", full);
            if (key[0] == 's') {
                if (sz < SK_MANIFEST_MIN_SHARD_SIZE || sz > SK_MANIFEST_MAX_FILE_SIZE)
                    return perr(p, "pack.shard_size must be between 4KiB and 1TiB");
                o->shard_size = sz;
            } else {
                o->external_min = sz;
            }
            return SK_OK;
        }
        if (!strcmp(key, "codec")) {
            if ((s = want(p, v, V_STR, full))) return s;
            if (sk_codec_from_name(v->s, &o->codec)) return perr(p, "pack.codec must be \"brotli\", \"zstd\" or \"none\"");
            return SK_OK;
        }
        if (!strcmp(key, "level")) {
            if ((s = want(p, v, V_INT, full))) return s;
            if (v->i < 0 || v->i > 22) return perr(p, "pack.level is out of range");
            o->level = (int)v->i;
            return SK_OK;
        }
    } else if (!strcmp(section, "sign")) {
        if (!strcmp(key, "key")) return set_path(x, &o->key_path, v, full);
    }
    return perr(p, "unknown key '%s' (see docs/recipe.md)", full);
}

sk_status sk_build_recipe_load(const char *path, sk_build_opts *o, sk_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return sk_error_set(err, SK_EIO, "%s: %s", path, strerror(errno));
    char *text = malloc(RECIPE_MAX_BYTES + 1);
    size_t len = text ? fread(text, 1, RECIPE_MAX_BYTES + 1, f) : 0;
    int rerr = ferror(f);
    fclose(f);
    if (!text) return sk_error_set(err, SK_ENOMEM, "out of memory");
    if (rerr) {
        free(text);
        return sk_error_set(err, SK_EIO, "%s: read error", path);
    }
    if (len > RECIPE_MAX_BYTES) {
        free(text);
        return sk_error_set(err, SK_EINVAL, "%s: larger than 1 MiB: not a recipe", path);
    }
    text[len] = 0;
    if (strlen(text) != len) {
        free(text);
        return sk_error_set(err, SK_EINVAL, "%s: holds a NUL byte: not a recipe", path);
    }
    const char *slash = strrchr(path, '/');
    char *dir = strndup(path, slash ? (size_t)(slash - path + 1) : 0);
    parser p = { path, 0, err };
    recipe_ctx x;
    memset(&x, 0, sizeof x);
    x.p = &p;
    x.o = o;
    x.dir = dir ? dir : "";
    char section[16] = "";
    char seen_sections[8][16];
    size_t n_sections = 0;
    sk_status s = dir ? SK_OK : sk_error_set(err, SK_ENOMEM, "out of memory");
    char *save = NULL;
    for (char *ln = text; !s && ln; ln = save) {
        char *nl = strchr(ln, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl) *nl = 0;
        size_t n = strlen(ln);
        if (n && ln[n - 1] == '\r') ln[n - 1] = 0;
        p.line++;
        const char *c = skip_ws(ln);
        if (p.line == 1 && !strncmp(c, "\xef\xbb\xbf", 3)) c = skip_ws(c + 3);
        if (!*c || *c == '#') continue;
        if (*c == '[') {
            const char *e = strchr(c, ']');
            size_t k = e ? (size_t)(e - c - 1) : 0;
            char name[16];
            if (!e || k == 0 || k >= sizeof name) { s = perr(&p, "a malformed [section] line"); break; }
            memcpy(name, c + 1, k);
            name[k] = 0;
            const char *rest = skip_ws(e + 1);
            if (*rest && *rest != '#') { s = perr(&p, "unexpected text after [%s]", name); break; }
            if (strcmp(name, "prune") && strcmp(name, "quant") && strcmp(name, "eval") && strcmp(name, "pack") &&
                strcmp(name, "sign")) {
                s = perr(&p, "unknown section [%s] (prune, quant, eval, pack, sign)", name);
                break;
            }
            for (size_t i = 0; i < n_sections; i++)
                if (!strcmp(seen_sections[i], name)) s = perr(&p, "section [%s] appears twice", name);
            if (s) break;
            snprintf(seen_sections[n_sections++], sizeof seen_sections[0], "%s", name);
            snprintf(section, sizeof section, "%s", name);
            if (!strcmp(name, "prune")) o->prune = 1;
            continue;
        }
        const char *k0 = c;
        while (isalnum((unsigned char)*c) || *c == '_' || *c == '-') c++;
        size_t kl = (size_t)(c - k0);
        char key[32];
        if (!kl || kl >= sizeof key) { s = perr(&p, "expected `key = value`"); break; }
        memcpy(key, k0, kl);
        key[kl] = 0;
        c = skip_ws(c);
        if (*c != '=') { s = perr(&p, "expected '=' after '%s'", key); break; }
        c = skip_ws(c + 1);
        value v;
        s = parse_value(&p, c, &v);
        if (s) break;
        s = apply(&x, section, key, &v);
        value_clear(&v);
    }
    if (!s && o->prune && o->prune_percent < 0 && o->prune_heads <= 0) {
        p.line = 0;
        s = sk_error_set(err, SK_EINVAL, "%s: [prune] needs heads (a count, or a share such as \"25%%\")", path);
    }
    free(dir);
    free(text);
    return s;
}
