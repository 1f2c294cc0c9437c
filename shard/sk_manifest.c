/* manifest.json: writer, strict single-pass parser, invariants. */
#include "sk_manifest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_dtype.h"

/* ---- names and times ------------------------------------------------------ */

int sk_manifest_file_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SK_MANIFEST_MAX_FILE_NAME || s[0] == '.' || s[0] == '-') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

int sk_manifest_model_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SK_MANIFEST_MAX_MODEL_NAME) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (i == 0 && !alnum) return 0;
        if (!alnum && !strchr("._+@/-", c)) return 0;
    }
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (the
 * algorithms of H. Hinnant's "chrono-compatible low-level date algorithms"). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

#define SK_TIME_MAX ((int64_t)253402300799) /* 9999-12-31T23:59:59Z */

int sk_manifest_time_format(int64_t t, char out[SK_MANIFEST_TIME_SIZE])
{
    if (t < 0 || t > SK_TIME_MAX) return -1;
    int64_t y;
    unsigned mo, d;
    civil_from_days(t / 86400, &y, &mo, &d);
    int64_t s = t % 86400;
    snprintf(out, SK_MANIFEST_TIME_SIZE, "%04d-%02u-%02uT%02d:%02d:%02dZ", (int)y, mo, d, (int)(s / 3600),
             (int)(s / 60 % 60), (int)(s % 60));
    return 0;
}

/* Strict inverse of sk_manifest_time_format. */
static int time_parse(const char *s, int64_t *out)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";
    if (strlen(s) != sizeof pat - 1) return -1;
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i]) return -1;
    }
    int v[6], pos[6] = { 0, 5, 8, 11, 14, 17 }, len[6] = { 4, 2, 2, 2, 2, 2 };
    for (int k = 0; k < 6; k++) {
        v[k] = 0;
        for (int i = 0; i < len[k]; i++) v[k] = v[k] * 10 + (s[pos[k] + i] - '0');
    }
    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23 || v[4] > 59 || v[5] > 59) return -1;
    int64_t days = days_from_civil(v[0], (unsigned)v[1], (unsigned)v[2]);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y != v[0] || m != (unsigned)v[1] || d != (unsigned)v[2]) return -1; /* Feb 30 and the like */
    *out = days * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
    return 0;
}

/* ---- free ------------------------------------------------------------------ */

static void values_free(sk_manifest_value *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].name);
        for (int k = 0; v[i].dims && k < v[i].rank; k++) free(v[i].dims[k].param);
        free(v[i].dims);
    }
    free(v);
}

void sk_manifest_free(sk_manifest *m)
{
    if (!m) return;
    free(m->name);
    free(m->generator);
    for (size_t i = 0; m->opsets && i < m->n_opsets; i++) free(m->opsets[i].domain);
    free(m->opsets);
    values_free(m->inputs, m->n_inputs);
    values_free(m->outputs, m->n_outputs);
    for (size_t i = 0; m->files && i < m->n_files; i++) {
        free(m->files[i].path);
        free(m->files[i].raw_path);
    }
    free(m->files);
    for (size_t i = 0; m->tensors && i < m->n_tensors; i++) {
        free(m->tensors[i].name);
        free(m->tensors[i].dims);
    }
    free(m->tensors);
    free(m);
}

size_t sk_manifest_find_path(const sk_manifest *m, const char *path)
{
    for (size_t i = 0; i < m->n_files; i++)
        if (!strcmp(m->files[i].path, path)) return i;
    return SIZE_MAX;
}

/* ---- validation ------------------------------------------------------------ */

static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n;
        unsigned cp;
        if (c < 0x80) { p++; continue; }
        if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
        else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
        else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
        else return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

static int text_ok(const char *s)
{
    return s && strlen(s) <= SK_MANIFEST_MAX_STRING && utf8_ok(s);
}

static sk_status check_values(const sk_manifest_value *v, size_t n, const char *what, sk_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!text_ok(v[i].name) || !v[i].name[0])
            return sk_error_set(err, SK_EINVAL, "model.%s[%zu].name: empty or not valid text", what, i);
        if (v[i].dtype && (!sk_dtype_valid(v[i].dtype)))
            return sk_error_set(err, SK_EINVAL, "model.%s[%zu].dtype: unknown element type", what, i);
        if (v[i].rank < -1 || v[i].rank > SK_MANIFEST_MAX_RANK)
            return sk_error_set(err, SK_EINVAL, "model.%s[%zu].shape: more than %d dimensions", what, i,
                                SK_MANIFEST_MAX_RANK);
        for (int k = 0; k < v[i].rank; k++) {
            const sk_manifest_dim *d = &v[i].dims[k];
            if (d->value < -1 || (d->value >= 0 && (uint64_t)d->value > SK_MANIFEST_MAX_DIM) ||
                (d->value >= 0 && d->param) || (d->param && (!text_ok(d->param) || !d->param[0])))
                return sk_error_set(err, SK_EINVAL, "model.%s[%zu].shape[%d]: bad dimension", what, i, k);
        }
        for (size_t j = 0; j < i; j++)
            if (!strcmp(v[i].name, v[j].name))
                return sk_error_set(err, SK_EINVAL, "model.%s: '%s' is listed twice", what, v[i].name);
    }
    return SK_OK;
}

static int reserved_name(const char *s)
{
    return !strcmp(s, SK_MANIFEST_NAME) || !strcmp(s, SK_MANIFEST_MINISIG) || !strcmp(s, SK_MANIFEST_SIG);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct span { size_t file; uint64_t off, end; size_t idx; } span;

static int cmp_span(const void *a_, const void *b_)
{
    const span *a = a_, *b = b_;
    if (a->file != b->file) return a->file < b->file ? -1 : 1;
    if (a->off != b->off) return a->off < b->off ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Everything but the tensors. */
static sk_status validate_files(const sk_manifest *m, sk_error *err)
{
    if (m->format_version != SK_MANIFEST_FORMAT_VERSION)
        return sk_error_set(err, SK_EINVAL, "format_version %" PRIu64 " is not supported (this skiff reads %d)",
                            m->format_version, SK_MANIFEST_FORMAT_VERSION);
    if (!sk_manifest_model_name_ok(m->name))
        return sk_error_set(err, SK_EINVAL,
                            "name: a model name is 1 to %d characters of A-Z a-z 0-9 . _ - + @ /, starting with a "
                            "letter or digit",
                            SK_MANIFEST_MAX_MODEL_NAME);
    if (m->version < 1 || m->version > SK_MANIFEST_MAX_INT)
        return sk_error_set(err, SK_EINVAL, "version: must be between 1 and 2^53 - 1");
    char tb[SK_MANIFEST_TIME_SIZE];
    if (sk_manifest_time_format(m->created, tb))
        return sk_error_set(err, SK_EINVAL, "created: the time is outside the years 1970 to 9999");
    if (!text_ok(m->generator)) return sk_error_set(err, SK_EINVAL, "generator: not valid text");
    if (m->ir_version > SK_MANIFEST_MAX_INT) return sk_error_set(err, SK_EINVAL, "model.ir_version: too large");
    for (size_t i = 0; i < m->n_opsets; i++) {
        if (!text_ok(m->opsets[i].domain) || m->opsets[i].version > SK_MANIFEST_MAX_INT)
            return sk_error_set(err, SK_EINVAL, "model.opsets[%zu]: bad domain or version", i);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(m->opsets[i].domain, m->opsets[j].domain))
                return sk_error_set(err, SK_EINVAL, "model.opsets: domain '%s' is listed twice", m->opsets[i].domain);
    }
    sk_status s = check_values(m->inputs, m->n_inputs, "inputs", err);
    if (!s) s = check_values(m->outputs, m->n_outputs, "outputs", err);
    if (s) return s;
    if (m->shard_size < SK_MANIFEST_MIN_SHARD_SIZE || m->shard_size > SK_MANIFEST_MAX_FILE_SIZE)
        return sk_error_set(err, SK_EINVAL, "shard_size: must be between %d bytes and 1 TiB", SK_MANIFEST_MIN_SHARD_SIZE);
    if (m->alignment < 1 || m->alignment > 4096 || (m->alignment & (m->alignment - 1)))
        return sk_error_set(err, SK_EINVAL, "alignment: must be a power of two from 1 to 4096");

    /* files */
    if (m->n_files < 1 || m->files[0].role != SK_ROLE_MODEL)
        return sk_error_set(err, SK_EINVAL, "files: the first file must be the model (role \"model\")");
    if (m->n_files - 1 > SK_MANIFEST_MAX_SHARDS)
        return sk_error_set(err, SK_EINVAL, "files: more than %d shards", SK_MANIFEST_MAX_SHARDS);
    for (size_t i = 0; i < m->n_files; i++) {
        const sk_manifest_file *f = &m->files[i];
        if (!sk_manifest_file_name_ok(f->path) || !sk_manifest_file_name_ok(f->raw_path))
            return sk_error_set(err, SK_EINVAL,
                                "files[%zu].path: a file name is 1 to 255 characters of A-Z a-z 0-9 . _ - (no "
                                "folders, not starting with '.' or '-')",
                                i);
        if (reserved_name(f->path) || reserved_name(f->raw_path))
            return sk_error_set(err, SK_EINVAL, "files[%zu].path: '%s' is reserved for the manifest", i, f->path);
        if ((unsigned)f->codec >= SK_CODEC_COUNT)
            return sk_error_set(err, SK_EINVAL, "files[%zu].codec: unknown codec", i);
        if (f->size > SK_MANIFEST_MAX_FILE_SIZE || f->raw_size > SK_MANIFEST_MAX_FILE_SIZE)
            return sk_error_set(err, SK_EINVAL, "files[%zu] (%s): size larger than 1 TiB", i, f->path);
        if (i == 0) {
            if (strcmp(f->path, SK_MANIFEST_MODEL) || strcmp(f->raw_path, SK_MANIFEST_MODEL) ||
                f->codec != SK_CODEC_NONE)
                return sk_error_set(err, SK_EINVAL, "files[0]: the model is stored as model.onnx with codec none");
        } else {
            char want[64];
            snprintf(want, sizeof want, "shard-%05zu.bin", i - 1);
            if (f->role != SK_ROLE_SHARD)
                return sk_error_set(err, SK_EINVAL, "files[%zu]: only the first file has role \"model\"", i);
            if (strcmp(f->raw_path, want))
                return sk_error_set(err, SK_EINVAL, "files[%zu].raw_path: '%s' should be '%s' (shards are numbered in order)",
                                    i, f->raw_path, want);
            strncat(want, sk_codec_suffix(f->codec), sizeof want - strlen(want) - 1);
            if (strcmp(f->path, want))
                return sk_error_set(err, SK_EINVAL, "files[%zu].path: '%s' should be '%s' for codec %s", i, f->path,
                                    want, sk_codec_name(f->codec));
        }
        if (f->codec == SK_CODEC_NONE &&
            (f->size != f->raw_size || memcmp(f->sha256, f->raw_sha256, SK_SHA256_BYTES) ||
             memcmp(f->sha384, f->raw_sha384, SK_SHA384_BYTES)))
            return sk_error_set(err, SK_EINVAL, "files[%zu] (%s): codec none, but the raw size or hashes differ from the stored ones",
                                i, f->path);
    }
    /* path names are fixed by index above, so they are distinct; raw names too */
    return SK_OK;
}

static sk_status validate_tensors(const sk_manifest *m, sk_error *err)
{
    sk_status s = SK_OK;
    if (m->n_tensors > SK_MANIFEST_MAX_TENSORS)
        return sk_error_set(err, SK_EINVAL, "tensors: more than %d", SK_MANIFEST_MAX_TENSORS);
    char **names = m->n_tensors ? malloc(m->n_tensors * sizeof *names) : NULL;
    span *spans = m->n_tensors ? malloc(m->n_tensors * sizeof *spans) : NULL;
    if (m->n_tensors && (!names || !spans)) {
        free(names);
        free(spans);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n_tensors && !s; i++) {
        const sk_manifest_tensor *t = &m->tensors[i];
        if (!text_ok(t->name) || !t->name[0]) {
            s = sk_error_set(err, SK_EINVAL, "tensors[%zu].name: empty or not valid text", i);
            break;
        }
        if (t->file < 1 || t->file >= m->n_files) {
            s = sk_error_set(err, SK_EINVAL, "tensors[%zu] ('%s'): its shard is not a shard of the package", i, t->name);
            break;
        }
        if (!sk_dtype_valid(t->dtype) || t->dtype == SK_STRING || t->rank < 0 || t->rank > SK_MANIFEST_MAX_RANK) {
            s = sk_error_set(err, SK_EINVAL, "tensors[%zu] ('%s'): bad dtype or shape", i, t->name);
            break;
        }
        int64_t numel = 1;
        for (int k = 0; k < t->rank && !s; k++)
            if (t->dims[k] < 0 || (uint64_t)t->dims[k] > SK_MANIFEST_MAX_DIM || sk_mul_i64(numel, t->dims[k], &numel))
                s = sk_error_set(err, SK_EINVAL, "tensors[%zu] ('%s'): shape[%d] is out of range", i, t->name, k);
        if (s) break;
        int64_t nb = sk_dtype_nbytes(t->dtype, numel);
        if (nb < 0 || (uint64_t)nb != t->length) {
            s = sk_error_set(err, SK_EINVAL, "tensors[%zu] ('%s'): length %" PRIu64 " does not match %s %s", i,
                             t->name, t->length, sk_dtype_name(t->dtype), "and its shape");
            break;
        }
        const sk_manifest_file *f = &m->files[t->file];
        if (t->offset % m->alignment || t->offset > f->raw_size || t->length > f->raw_size - t->offset) {
            s = sk_error_set(err, SK_EINVAL, "tensors[%zu] ('%s'): offset %" PRIu64 " + length %" PRIu64
                             " is not an aligned range inside %s (%" PRIu64 " bytes)",
                             i, t->name, t->offset, t->length, f->raw_path, f->raw_size);
            break;
        }
        names[i] = t->name;
        spans[i] = (span){ t->file, t->offset, t->offset + t->length, i };
    }
    if (!s && m->n_tensors) {
        qsort(names, m->n_tensors, sizeof *names, cmp_str);
        for (size_t i = 1; i < m->n_tensors && !s; i++)
            if (!strcmp(names[i], names[i - 1]))
                s = sk_error_set(err, SK_EINVAL, "tensors: '%s' is listed twice", names[i]);
    }
    if (!s && m->n_tensors) {
        qsort(spans, m->n_tensors, sizeof *spans, cmp_span);
        for (size_t i = 1; i < m->n_tensors && !s; i++)
            if (spans[i].file == spans[i - 1].file && spans[i].off < spans[i - 1].end && spans[i].end > spans[i].off)
                s = sk_error_set(err, SK_EINVAL, "tensors: '%s' and '%s' overlap in %s",
                                 m->tensors[spans[i - 1].idx].name, m->tensors[spans[i].idx].name,
                                 m->files[spans[i].file].raw_path);
    }
    free(names);
    free(spans);
    return s;
}

sk_status sk_manifest_validate(const sk_manifest *m, sk_error *err)
{
    sk_status s = validate_files(m, err);
    return s ? s : validate_tensors(m, err);
}

/* ---- writer ---------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (n + 1 > b->cap - b->n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (n + 1 > cap - b->n) {
            if (cap > SIZE_MAX / 2) { b->oom = 1; return; }
            cap *= 2;
        }
        char *q = realloc(b->p, cap);
        if (!q) { b->oom = 1; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) { b->oom = 1; return; }
    sb_add(b, tmp, (size_t)n);
}

static void sb_str(sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    const char *run = s;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\' || *c < 0x20) {
            sb_add(b, run, (size_t)((const char *)c - run));
            if (*c == '"') sb_puts(b, "\\\"");
            else if (*c == '\\') sb_puts(b, "\\\\");
            else sb_printf(b, "\\u%04x", *c);
            run = (const char *)c + 1;
        }
    }
    sb_puts(b, run);
    sb_add(b, "\"", 1);
}

static void sb_key(sbuf *b, const char *indent, const char *key)
{
    sb_puts(b, indent);
    sb_str(b, key);
    sb_puts(b, ": ");
}

static void sb_hex(sbuf *b, const uint8_t *h)
{
    char hex[SK_SHA256_HEX_SIZE];
    sk_sha256_hex(h, hex);
    sb_str(b, hex);
}

static void sb_sri(sbuf *b, const uint8_t *h)
{
    char sri[SK_SRI_SIZE];
    sk_sri_format(h, sri);
    sb_str(b, sri);
}

static void write_values(sbuf *b, const char *key, const sk_manifest_value *v, size_t n, int last)
{
    sb_key(b, "    ", key);
    if (!n) {
        sb_puts(b, last ? "[]\n" : "[],\n");
        return;
    }
    sb_puts(b, "[\n");
    for (size_t i = 0; i < n; i++) {
        sb_puts(b, "      {\"name\": ");
        sb_str(b, v[i].name);
        sb_puts(b, ", \"dtype\": ");
        if (v[i].dtype) sb_str(b, sk_dtype_name(v[i].dtype));
        else sb_puts(b, "null");
        sb_puts(b, ", \"shape\": ");
        if (v[i].rank < 0) {
            sb_puts(b, "null");
        } else {
            sb_puts(b, "[");
            for (int k = 0; k < v[i].rank; k++) {
                if (k) sb_puts(b, ", ");
                if (v[i].dims[k].value >= 0) sb_printf(b, "%" PRId64, v[i].dims[k].value);
                else if (v[i].dims[k].param) sb_str(b, v[i].dims[k].param);
                else sb_puts(b, "null");
            }
            sb_puts(b, "]");
        }
        sb_puts(b, i + 1 < n ? "},\n" : "}\n");
    }
    sb_puts(b, last ? "    ]\n" : "    ],\n");
}

sk_status sk_manifest_write(const sk_manifest *m, char **out, size_t *len, sk_error *err)
{
    *out = NULL;
    *len = 0;
    sk_status s = sk_manifest_validate(m, err);
    if (s) return s;
    sbuf b = { 0 };
    char tb[SK_MANIFEST_TIME_SIZE];
    sk_manifest_time_format(m->created, tb);
    sb_puts(&b, "{\n");
    sb_key(&b, "  ", "format"); sb_puts(&b, "\"skiff-package\",\n");
    sb_key(&b, "  ", "format_version"); sb_printf(&b, "%" PRIu64 ",\n", m->format_version);
    sb_key(&b, "  ", "name"); sb_str(&b, m->name); sb_puts(&b, ",\n");
    sb_key(&b, "  ", "version"); sb_printf(&b, "%" PRIu64 ",\n", m->version);
    sb_key(&b, "  ", "created"); sb_str(&b, tb); sb_puts(&b, ",\n");
    sb_key(&b, "  ", "generator"); sb_str(&b, m->generator); sb_puts(&b, ",\n");
    sb_key(&b, "  ", "model"); sb_puts(&b, "{\n");
    sb_key(&b, "    ", "ir_version"); sb_printf(&b, "%" PRIu64 ",\n", m->ir_version);
    sb_key(&b, "    ", "opsets");
    if (!m->n_opsets) sb_puts(&b, "[],\n");
    else {
        sb_puts(&b, "[\n");
        for (size_t i = 0; i < m->n_opsets; i++) {
            sb_puts(&b, "      {\"domain\": ");
            sb_str(&b, m->opsets[i].domain);
            sb_printf(&b, ", \"version\": %" PRIu64 "}%s\n", m->opsets[i].version, i + 1 < m->n_opsets ? "," : "");
        }
        sb_puts(&b, "    ],\n");
    }
    write_values(&b, "inputs", m->inputs, m->n_inputs, 0);
    write_values(&b, "outputs", m->outputs, m->n_outputs, 1);
    sb_puts(&b, "  },\n");
    sb_key(&b, "  ", "shard_size"); sb_printf(&b, "%" PRIu64 ",\n", m->shard_size);
    sb_key(&b, "  ", "alignment"); sb_printf(&b, "%" PRIu64 ",\n", m->alignment);
    sb_key(&b, "  ", "files"); sb_puts(&b, "[\n");
    for (size_t i = 0; i < m->n_files; i++) {
        const sk_manifest_file *f = &m->files[i];
        sb_puts(&b, "    {\n");
        sb_key(&b, "      ", "path"); sb_str(&b, f->path); sb_puts(&b, ",\n");
        sb_key(&b, "      ", "role"); sb_str(&b, f->role == SK_ROLE_MODEL ? "model" : "shard"); sb_puts(&b, ",\n");
        sb_key(&b, "      ", "codec"); sb_str(&b, sk_codec_name(f->codec)); sb_puts(&b, ",\n");
        sb_key(&b, "      ", "size"); sb_printf(&b, "%" PRIu64 ",\n", f->size);
        sb_key(&b, "      ", "sha256"); sb_hex(&b, f->sha256); sb_puts(&b, ",\n");
        sb_key(&b, "      ", "integrity"); sb_sri(&b, f->sha384); sb_puts(&b, ",\n");
        sb_key(&b, "      ", "raw_path"); sb_str(&b, f->raw_path); sb_puts(&b, ",\n");
        sb_key(&b, "      ", "raw_size"); sb_printf(&b, "%" PRIu64 ",\n", f->raw_size);
        sb_key(&b, "      ", "raw_sha256"); sb_hex(&b, f->raw_sha256); sb_puts(&b, ",\n");
        sb_key(&b, "      ", "raw_integrity"); sb_sri(&b, f->raw_sha384); sb_puts(&b, "\n");
        sb_puts(&b, i + 1 < m->n_files ? "    },\n" : "    }\n");
    }
    sb_puts(&b, "  ],\n");
    sb_key(&b, "  ", "tensors");
    if (!m->n_tensors) sb_puts(&b, "[]\n");
    else {
        sb_puts(&b, "[\n");
        for (size_t i = 0; i < m->n_tensors; i++) {
            const sk_manifest_tensor *t = &m->tensors[i];
            sb_puts(&b, "    {\"name\": ");
            sb_str(&b, t->name);
            sb_puts(&b, ", \"shard\": ");
            sb_str(&b, m->files[t->file].raw_path);
            sb_printf(&b, ", \"offset\": %" PRIu64 ", \"length\": %" PRIu64 ", \"dtype\": ", t->offset, t->length);
            sb_str(&b, sk_dtype_name(t->dtype));
            sb_puts(&b, ", \"shape\": [");
            for (int k = 0; k < t->rank; k++) sb_printf(&b, "%s%" PRId64, k ? ", " : "", t->dims[k]);
            sb_puts(&b, i + 1 < m->n_tensors ? "]},\n" : "]}\n");
        }
        sb_puts(&b, "  ]\n");
    }
    sb_puts(&b, "}\n");
    if (b.oom) {
        free(b.p);
        return sk_error_set(err, SK_ENOMEM, "out of memory writing the manifest");
    }
    if (b.n > SK_MANIFEST_MAX_BYTES) {
        free(b.p);
        return sk_error_set(err, SK_EINVAL, "the manifest would be larger than %zu MiB", SK_MANIFEST_MAX_BYTES >> 20);
    }
    *out = b.p;
    *len = b.n;
    return SK_OK;
}

/* ---- parser ---------------------------------------------------------------- */

typedef struct jp {
    const char *s, *p, *end;
    sk_error *err;
    int depth;
    char **shard_of;     /* tensors[i].shard as written, resolved at the end */
    size_t shard_cap;
} jp;

static size_t jp_line(const jp *j)
{
    size_t line = 1;
    for (const char *q = j->s; q < j->p && q < j->end; q++) line += *q == '\n';
    return line;
}

__attribute__((format(printf, 3, 4))) static sk_status jp_fail(jp *j, const char *where, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sk_error_set(j->err, SK_EINVAL, "line %zu: %s%s%s", jp_line(j), where, *where ? ": " : "", msg);
}

static void jp_ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

/* Consumes c (after whitespace) or fails. */
static sk_status jp_expect(jp *j, const char *where, char c)
{
    jp_ws(j);
    if (j->p >= j->end) return jp_fail(j, where, "the manifest ends early (expected '%c')", c);
    if (*j->p != c) return jp_fail(j, where, "expected '%c'", c);
    j->p++;
    return SK_OK;
}

static int jp_peek(jp *j)
{
    jp_ws(j);
    return j->p < j->end ? (unsigned char)*j->p : -1;
}

static int jp_null(jp *j)
{
    if (jp_peek(j) == 'n' && j->end - j->p >= 4 && !memcmp(j->p, "null", 4)) {
        j->p += 4;
        return 1;
    }
    return 0;
}

static const char *jp_type_name(int c)
{
    if (c == '"') return "a string";
    if (c == '{') return "an object";
    if (c == '[') return "an array";
    if (c == 't' || c == 'f') return "a boolean";
    if (c == 'n') return "null";
    if (c == '-' || (c >= '0' && c <= '9')) return "a number";
    return "something that is not JSON";
}

static void put_utf8(char *o, size_t *n, unsigned cp)
{
    if (cp < 0x80) o[(*n)++] = (char)cp;
    else if (cp < 0x800) { o[(*n)++] = (char)(0xc0 | cp >> 6); o[(*n)++] = (char)(0x80 | (cp & 0x3f)); }
    else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xe0 | cp >> 12);
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        o[(*n)++] = (char)(0xf0 | cp >> 18);
        o[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[(*n)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16;
        if (d > 15) return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

/* A JSON string, decoded into *out (malloc'd), at most max bytes. */
static sk_status jp_string(jp *j, const char *where, size_t max, char **out)
{
    *out = NULL;
    int c = jp_peek(j);
    if (c != '"') return c < 0 ? jp_fail(j, where, "the manifest ends early") : jp_fail(j, where, "expected a string, found %s", jp_type_name(c));
    j->p++;
    /* the decoded string is never longer than its source */
    const char *q = j->p;
    while (q < j->end && *q != '"') q += (*q == '\\' && q + 1 < j->end) ? 2 : 1;
    if (q >= j->end) return jp_fail(j, where, "unterminated string");
    size_t src_len = (size_t)(q - j->p);
    char *o = malloc(src_len + 1);
    if (!o) return sk_error_set(j->err, SK_ENOMEM, "out of memory");
    size_t n = 0;
    while (j->p < q) {
        unsigned char ch = (unsigned char)*j->p;
        if (ch < 0x20) { free(o); return jp_fail(j, where, "control character in a string"); }
        if (ch != '\\') { o[n++] = (char)ch; j->p++; continue; }
        char e = j->p[1];
        j->p += 2;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (q - j->p < 4 || hex4(j->p, &cp)) { free(o); return jp_fail(j, where, "bad \\u escape"); }
            j->p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (q - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' || hex4(j->p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
                    free(o);
                    return jp_fail(j, where, "unpaired surrogate in a \\u escape");
                }
                j->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                free(o);
                return jp_fail(j, where, "unpaired surrogate in a \\u escape");
            }
            if (cp == 0) { free(o); return jp_fail(j, where, "NUL character in a string"); }
            put_utf8(o, &n, cp);
            break;
        }
        default: free(o); return jp_fail(j, where, "bad escape '\\%c'", e);
        }
    }
    j->p = q + 1;
    o[n] = 0;
    if (n > max) { free(o); return jp_fail(j, where, "string longer than %zu bytes", max); }
    if (!utf8_ok(o)) { free(o); return jp_fail(j, where, "string is not valid UTF-8"); }
    *out = o;
    return SK_OK;
}

/* A non-negative integer in plain decimal, at most 2^53 - 1. */
static sk_status jp_uint(jp *j, const char *where, uint64_t *out)
{
    int c = jp_peek(j);
    if (c < 0) return jp_fail(j, where, "the manifest ends early");
    if (c == '-') return jp_fail(j, where, "must be a non-negative integer");
    if (c < '0' || c > '9') return jp_fail(j, where, "expected an integer, found %s", jp_type_name(c));
    const char *q = j->p;
    uint64_t v = 0;
    while (q < j->end && *q >= '0' && *q <= '9') {
        v = v * 10 + (uint64_t)(*q - '0');
        if (v > SK_MANIFEST_MAX_INT) return jp_fail(j, where, "number larger than 2^53 - 1");
        q++;
    }
    if (q < j->end && (*q == '.' || *q == 'e' || *q == 'E')) return jp_fail(j, where, "must be an integer (no fraction or exponent)");
    if (q - j->p > 1 && *j->p == '0') return jp_fail(j, where, "number with a leading zero");
    j->p = q;
    *out = v;
    return SK_OK;
}

static sk_status jp_open(jp *j, const char *where, char c)
{
    sk_status s = jp_expect(j, where, c);
    if (s) {
        int k = jp_peek(j);
        if (k >= 0 && k != c) return jp_fail(j, where, "expected %s, found %s", c == '{' ? "an object" : "an array", jp_type_name(k));
        return s;
    }
    if (++j->depth > SK_MANIFEST_MAX_DEPTH) return jp_fail(j, where, "nested more than %d levels deep", SK_MANIFEST_MAX_DEPTH);
    return SK_OK;
}

/* Iterates over an array: returns 1 when an element follows, 0 at ']' (and
 * consumes it), -1 on error. first must start at 1. */
static int jp_arr_next(jp *j, const char *where, int *first)
{
    int c = jp_peek(j);
    if (c == ']') { j->p++; j->depth--; return 0; }
    if (!*first) {
        if (c != ',') { jp_fail(j, where, c < 0 ? "the manifest ends early" : "expected ',' or ']'"); return -1; }
        j->p++;
    }
    *first = 0;
    if (jp_peek(j) < 0) { jp_fail(j, where, "the manifest ends early"); return -1; }
    return 1;
}

/* Iterates over an object with the given keys: returns the index of the next
 * key (its ':' consumed), -1 at '}' (after checking every key was there), -2
 * on error (unknown, duplicate or missing key, syntax). */
static int jp_obj_next(jp *j, const char *where, const char *const *keys, size_t nkeys, unsigned *seen, int *first)
{
    int c = jp_peek(j);
    if (c == '}') {
        for (size_t k = 0; k < nkeys; k++)
            if (!(*seen & (1u << k))) { jp_fail(j, where, "the key \"%s\" is missing", keys[k]); return -2; }
        j->p++;
        j->depth--;
        return -1;
    }
    if (!*first) {
        if (c != ',') { jp_fail(j, where, c < 0 ? "the manifest ends early" : "expected ',' or '}'"); return -2; }
        j->p++;
    }
    *first = 0;
    char *key;
    if (jp_string(j, where, SK_MANIFEST_MAX_STRING, &key)) return -2;
    int idx = -1;
    for (size_t k = 0; k < nkeys; k++)
        if (!strcmp(key, keys[k])) idx = (int)k;
    if (idx < 0) {
        jp_fail(j, where, "unknown key \"%.64s\"", key);
        free(key);
        return -2;
    }
    free(key);
    if (*seen & (1u << idx)) { jp_fail(j, where, "the key \"%s\" appears twice", keys[idx]); return -2; }
    *seen |= 1u << idx;
    if (jp_expect(j, where, ':')) return -2;
    return idx;
}

/* Grows an array of elem-sized items to hold n + 1. */
static int grow(void **a, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 8, bytes;
    if (sk_mul_size(c, elem, &bytes)) return -1;
    void *q = realloc(*a, bytes);
    if (!q) return -1;
    memset((char *)q + *cap * elem, 0, (c - *cap) * elem);
    *a = q;
    *cap = c;
    return 0;
}

static sk_status jp_dtype(jp *j, const char *where, int *dtype, int allow_null)
{
    if (allow_null && jp_null(j)) { *dtype = 0; return SK_OK; }
    char *s;
    sk_status st = jp_string(j, where, 64, &s);
    if (st) return st;
    *dtype = 0;
    for (int d = 1; d < SK_DTYPE_COUNT; d++)
        if (sk_dtype_valid(d) && !strcmp(s, sk_dtype_name(d))) *dtype = d;
    if (!*dtype) st = jp_fail(j, where, "unknown element type \"%.32s\"", s);
    free(s);
    return st;
}

static sk_status jp_value_shape(jp *j, const char *where, sk_manifest_value *v)
{
    if (jp_null(j)) { v->rank = -1; return SK_OK; }
    sk_status s = jp_open(j, where, '[');
    if (s) return s;
    size_t cap = 0, n = 0;
    int first = 1, r;
    char w[256];
    while ((r = jp_arr_next(j, where, &first)) == 1) {
        if (n >= SK_MANIFEST_MAX_RANK) return jp_fail(j, where, "more than %d dimensions", SK_MANIFEST_MAX_RANK);
        if (grow((void **)&v->dims, &cap, n, sizeof *v->dims)) return sk_error_set(j->err, SK_ENOMEM, "out of memory");
        sk_manifest_dim *d = &v->dims[n];
        v->rank = (int)++n;
        d->value = -1;
        snprintf(w, sizeof w, "%s[%zu]", where, n - 1);
        int c = jp_peek(j);
        if (jp_null(j)) continue;
        if (c == '"') s = jp_string(j, w, SK_MANIFEST_MAX_STRING, &d->param);
        else {
            uint64_t u;
            s = jp_uint(j, w, &u);
            if (!s && u > SK_MANIFEST_MAX_DIM) s = jp_fail(j, w, "dimension larger than 2^40");
            d->value = (int64_t)u;
        }
        if (s) return s;
    }
    if (r < 0) return SK_EINVAL;
    v->rank = (int)n;
    return SK_OK;
}

static sk_status jp_values(jp *j, const char *where, sk_manifest_value **out, size_t *count)
{
    static const char *const keys[] = { "name", "dtype", "shape" };
    sk_status s = jp_open(j, where, '[');
    if (s) return s;
    size_t cap = 0;
    int first = 1, r;
    char w[128];
    while ((r = jp_arr_next(j, where, &first)) == 1) {
        if (*count >= 100000) return jp_fail(j, where, "too many entries");
        if (grow((void **)out, &cap, *count, sizeof **out)) return sk_error_set(j->err, SK_ENOMEM, "out of memory");
        sk_manifest_value *v = &(*out)[(*count)++];
        snprintf(w, sizeof w, "model.%s[%zu]", where, *count - 1);
        if ((s = jp_open(j, w, '{'))) return s;
        unsigned seen = 0;
        int f = 1, k;
        char kw[160];
        while ((k = jp_obj_next(j, w, keys, 3, &seen, &f)) >= 0) {
            snprintf(kw, sizeof kw, "%s.%s", w, keys[k]);
            if (k == 0) s = jp_string(j, kw, SK_MANIFEST_MAX_STRING, &v->name);
            else if (k == 1) s = jp_dtype(j, kw, &v->dtype, 1);
            else s = jp_value_shape(j, kw, v);
            if (s) return s;
        }
        if (k == -2) return SK_EINVAL;
    }
    return r < 0 ? SK_EINVAL : SK_OK;
}

static sk_status jp_model(jp *j, sk_manifest *m)
{
    static const char *const keys[] = { "ir_version", "opsets", "inputs", "outputs" };
    static const char *const okeys[] = { "domain", "version" };
    sk_status s = jp_open(j, "model", '{');
    if (s) return s;
    unsigned seen = 0;
    int first = 1, k;
    while ((k = jp_obj_next(j, "model", keys, 4, &seen, &first)) >= 0) {
        if (k == 0) s = jp_uint(j, "model.ir_version", &m->ir_version);
        else if (k == 1) {
            if ((s = jp_open(j, "model.opsets", '['))) return s;
            size_t cap = 0;
            int f = 1, r;
            char w[64];
            while ((r = jp_arr_next(j, "model.opsets", &f)) == 1) {
                if (m->n_opsets >= 1000) return jp_fail(j, "model.opsets", "too many entries");
                if (grow((void **)&m->opsets, &cap, m->n_opsets, sizeof *m->opsets))
                    return sk_error_set(j->err, SK_ENOMEM, "out of memory");
                sk_manifest_opset *o = &m->opsets[m->n_opsets++];
                snprintf(w, sizeof w, "model.opsets[%zu]", m->n_opsets - 1);
                if ((s = jp_open(j, w, '{'))) return s;
                unsigned os = 0;
                int of = 1, ok;
                while ((ok = jp_obj_next(j, w, okeys, 2, &os, &of)) >= 0) {
                    s = ok == 0 ? jp_string(j, w, SK_MANIFEST_MAX_STRING, &o->domain) : jp_uint(j, w, &o->version);
                    if (s) return s;
                }
                if (ok == -2) return SK_EINVAL;
            }
            if (r < 0) return SK_EINVAL;
        } else if (k == 2) s = jp_values(j, "inputs", &m->inputs, &m->n_inputs);
        else s = jp_values(j, "outputs", &m->outputs, &m->n_outputs);
        if (s) return s;
    }
    return k == -2 ? SK_EINVAL : SK_OK;
}

static sk_status jp_hex(jp *j, const char *where, uint8_t out[SK_SHA256_BYTES])
{
    char *s;
    sk_status st = jp_string(j, where, 128, &s);
    if (st) return st;
    int ok = strlen(s) == 64;
    for (size_t i = 0; ok && i < 64; i++) ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    size_t bin_len = 0;
    if (ok) ok = sodium_hex2bin(out, SK_SHA256_BYTES, s, 64, NULL, &bin_len, NULL) == 0 && bin_len == SK_SHA256_BYTES;
    free(s);
    return ok ? SK_OK : jp_fail(j, where, "expected 64 lower-case hex digits");
}

static sk_status jp_sri(jp *j, const char *where, uint8_t out[SK_SHA384_BYTES])
{
    char *s;
    sk_status st = jp_string(j, where, 128, &s);
    if (st) return st;
    size_t bin_len = 0;
    int ok = strlen(s) == 71 && !strncmp(s, "sha384-", 7) &&
             sodium_base642bin(out, SK_SHA384_BYTES, s + 7, 64, NULL, &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
             bin_len == SK_SHA384_BYTES;
    if (ok) { /* canonical form only */
        char again[SK_SRI_SIZE];
        sk_sri_format(out, again);
        ok = !strcmp(again, s);
    }
    free(s);
    return ok ? SK_OK : jp_fail(j, where, "expected \"sha384-\" and 64 base64 characters");
}

static sk_status jp_files(jp *j, sk_manifest *m)
{
    static const char *const keys[] = { "path", "role", "codec", "size", "sha256", "integrity",
                                         "raw_path", "raw_size", "raw_sha256", "raw_integrity" };
    sk_status s = jp_open(j, "files", '[');
    if (s) return s;
    size_t cap = 0;
    int first = 1, r;
    char w[64], kw[96];
    while ((r = jp_arr_next(j, "files", &first)) == 1) {
        if (m->n_files > SK_MANIFEST_MAX_SHARDS) return jp_fail(j, "files", "more than %d shards", SK_MANIFEST_MAX_SHARDS);
        if (grow((void **)&m->files, &cap, m->n_files, sizeof *m->files))
            return sk_error_set(j->err, SK_ENOMEM, "out of memory");
        sk_manifest_file *f = &m->files[m->n_files++];
        snprintf(w, sizeof w, "files[%zu]", m->n_files - 1);
        if ((s = jp_open(j, w, '{'))) return s;
        unsigned seen = 0;
        int of = 1, k;
        while ((k = jp_obj_next(j, w, keys, 10, &seen, &of)) >= 0) {
            snprintf(kw, sizeof kw, "%s.%s", w, keys[k]);
            char *str = NULL;
            switch (k) {
            case 0: s = jp_string(j, kw, SK_MANIFEST_MAX_FILE_NAME, &f->path); break;
            case 6: s = jp_string(j, kw, SK_MANIFEST_MAX_FILE_NAME, &f->raw_path); break;
            case 1:
                s = jp_string(j, kw, 16, &str);
                if (!s && !strcmp(str, "model")) f->role = SK_ROLE_MODEL;
                else if (!s && !strcmp(str, "shard")) f->role = SK_ROLE_SHARD;
                else if (!s) s = jp_fail(j, kw, "must be \"model\" or \"shard\"");
                free(str);
                break;
            case 2:
                s = jp_string(j, kw, 16, &str);
                if (!s && sk_codec_from_name(str, &f->codec)) s = jp_fail(j, kw, "unknown codec \"%s\"", str);
                free(str);
                break;
            case 3: s = jp_uint(j, kw, &f->size); break;
            case 7: s = jp_uint(j, kw, &f->raw_size); break;
            case 4: s = jp_hex(j, kw, f->sha256); break;
            case 8: s = jp_hex(j, kw, f->raw_sha256); break;
            case 5: s = jp_sri(j, kw, f->sha384); break;
            default: s = jp_sri(j, kw, f->raw_sha384); break;
            }
            if (s) return s;
            if ((k == 3 || k == 7) && (k == 3 ? f->size : f->raw_size) > SK_MANIFEST_MAX_FILE_SIZE)
                return jp_fail(j, kw, "larger than 1 TiB");
        }
        if (k == -2) return SK_EINVAL;
    }
    return r < 0 ? SK_EINVAL : SK_OK;
}

/* "shard-NNNNN.bin" -> its index in files[] (shard i is files[i + 1]). */
static size_t shard_file_index(const sk_manifest *m, const char *raw)
{
    if (strlen(raw) != 15 || strncmp(raw, "shard-", 6) || strcmp(raw + 11, ".bin")) return SIZE_MAX;
    size_t i = 0;
    for (int k = 6; k < 11; k++) {
        if (raw[k] < '0' || raw[k] > '9') return SIZE_MAX;
        i = i * 10 + (size_t)(raw[k] - '0');
    }
    if (i + 1 >= m->n_files || strcmp(m->files[i + 1].raw_path ? m->files[i + 1].raw_path : "", raw)) return SIZE_MAX;
    return i + 1;
}

static sk_status jp_tensors(jp *j, sk_manifest *m)
{
    static const char *const keys[] = { "name", "shard", "offset", "length", "dtype", "shape" };
    sk_status s = jp_open(j, "tensors", '[');
    if (s) return s;
    size_t cap = 0;
    int first = 1, r;
    char w[64], kw[96];
    while ((r = jp_arr_next(j, "tensors", &first)) == 1) {
        if (m->n_tensors >= SK_MANIFEST_MAX_TENSORS) return jp_fail(j, "tensors", "more than %d", SK_MANIFEST_MAX_TENSORS);
        if (grow((void **)&m->tensors, &cap, m->n_tensors, sizeof *m->tensors))
            return sk_error_set(j->err, SK_ENOMEM, "out of memory");
        sk_manifest_tensor *t = &m->tensors[m->n_tensors++];
        snprintf(w, sizeof w, "tensors[%zu]", m->n_tensors - 1);
        if ((s = jp_open(j, w, '{'))) return s;
        unsigned seen = 0;
        int of = 1, k;
        while ((k = jp_obj_next(j, w, keys, 6, &seen, &of)) >= 0) {
            snprintf(kw, sizeof kw, "%s.%s", w, keys[k]);
            switch (k) {
            case 0: s = jp_string(j, kw, SK_MANIFEST_MAX_STRING, &t->name); break;
            case 1:
                if (grow((void **)&j->shard_of, &j->shard_cap, m->n_tensors - 1, sizeof *j->shard_of))
                    return sk_error_set(j->err, SK_ENOMEM, "out of memory");
                s = jp_string(j, kw, SK_MANIFEST_MAX_FILE_NAME, &j->shard_of[m->n_tensors - 1]);
                break;
            case 2: s = jp_uint(j, kw, &t->offset); break;
            case 3: s = jp_uint(j, kw, &t->length); break;
            case 4: s = jp_dtype(j, kw, &t->dtype, 0); break;
            default: {
                if ((s = jp_open(j, kw, '['))) return s;
                int f = 1, rr;
                size_t dcap = 0, n = 0;
                while ((rr = jp_arr_next(j, kw, &f)) == 1) {
                    if (n >= SK_MANIFEST_MAX_RANK) return jp_fail(j, kw, "more than %d dimensions", SK_MANIFEST_MAX_RANK);
                    if (grow((void **)&t->dims, &dcap, n, sizeof *t->dims))
                        return sk_error_set(j->err, SK_ENOMEM, "out of memory");
                    uint64_t u;
                    if ((s = jp_uint(j, kw, &u))) return s;
                    if (u > SK_MANIFEST_MAX_DIM) return jp_fail(j, kw, "dimension larger than 2^40");
                    t->dims[n++] = (int64_t)u;
                    t->rank = (int)n;
                }
                if (rr < 0) return SK_EINVAL;
                break;
            }
            }
            if (s) return s;
        }
        if (k == -2) return SK_EINVAL;
    }
    return r < 0 ? SK_EINVAL : SK_OK;
}

static sk_status jp_manifest(jp *j, sk_manifest *m)
{
    static const char *const keys[] = { "format", "format_version", "name", "version", "created", "generator",
                                        "model", "shard_size", "alignment", "files", "tensors" };
    sk_status s = jp_open(j, "", '{');
    if (s) return s;
    unsigned seen = 0;
    int first = 1, k;
    while ((k = jp_obj_next(j, "", keys, 11, &seen, &first)) >= 0) {
        char *str = NULL;
        switch (k) {
        case 0:
            s = jp_string(j, keys[k], 64, &str);
            if (!s && strcmp(str, "skiff-package")) s = jp_fail(j, keys[k], "not a skiff package (format \"%s\")", str);
            free(str);
            break;
        case 1:
            s = jp_uint(j, keys[k], &m->format_version);
            if (!s && m->format_version != SK_MANIFEST_FORMAT_VERSION)
                s = jp_fail(j, keys[k], "format version %" PRIu64 " is not supported (this skiff reads %d)",
                            m->format_version, SK_MANIFEST_FORMAT_VERSION);
            break;
        case 2: s = jp_string(j, keys[k], SK_MANIFEST_MAX_MODEL_NAME, &m->name); break;
        case 3: s = jp_uint(j, keys[k], &m->version); break;
        case 4:
            s = jp_string(j, keys[k], 64, &str);
            if (!s && time_parse(str, &m->created)) s = jp_fail(j, keys[k], "expected a UTC time YYYY-MM-DDTHH:MM:SSZ");
            free(str);
            break;
        case 5: s = jp_string(j, keys[k], SK_MANIFEST_MAX_STRING, &m->generator); break;
        case 6: s = jp_model(j, m); break;
        case 7: s = jp_uint(j, keys[k], &m->shard_size); break;
        case 8: s = jp_uint(j, keys[k], &m->alignment); break;
        case 9: s = jp_files(j, m); break;
        default: s = jp_tensors(j, m); break;
        }
        if (s) return s;
    }
    if (k == -2) return SK_EINVAL;
    jp_ws(j);
    if (j->p != j->end) return jp_fail(j, "", "data after the end of the manifest");
    s = validate_files(m, j->err);
    if (s) return s;
    /* keys come in any order: tensors name their shard, resolved now */
    for (size_t i = 0; i < m->n_tensors; i++) {
        m->tensors[i].file = shard_file_index(m, j->shard_of[i]);
        if (m->tensors[i].file == SIZE_MAX)
            return sk_error_set(j->err, SK_EINVAL, "tensors[%zu].shard: \"%.64s\" is not the raw_path of a shard in files",
                                i, j->shard_of[i]);
    }
    return SK_OK;
}

sk_status sk_manifest_parse(const void *buf, size_t len, sk_manifest **out, sk_error *err)
{
    *out = NULL;
    if (len > SK_MANIFEST_MAX_BYTES)
        return sk_error_set(err, SK_EINVAL, "larger than %zu MiB", SK_MANIFEST_MAX_BYTES >> 20);
    if (len == 0) return sk_error_set(err, SK_EINVAL, "empty");
    sk_manifest *m = calloc(1, sizeof *m);
    if (!m) return sk_error_set(err, SK_ENOMEM, "out of memory");
    jp j = { buf, buf, (const char *)buf + len, err, 0, NULL, 0 };
    sk_status s = jp_manifest(&j, m);
    for (size_t i = 0; i < j.shard_cap; i++) free(j.shard_of[i]);
    free(j.shard_of);
    if (!s) s = validate_tensors(m, err);
    if (s) {
        sk_manifest_free(m);
        return s;
    }
    *out = m;
    return SK_OK;
}

char *sk_manifest_default_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".onnx")) n -= 5;
    char *name;
    if (n == 5 && !strncmp(base, "model", 5) && slash && slash > path) {
        const char *end = slash, *start = slash;
        while (start > path && start[-1] != '/') start--;
        name = strndup(start, (size_t)(end - start));
    } else {
        name = strndup(base, n);
    }
    if (!name) return NULL;
    size_t len = strlen(name);
    if (len > SK_MANIFEST_MAX_MODEL_NAME) name[len = SK_MANIFEST_MAX_MODEL_NAME] = 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || !strchr("._+@/-", c))) name[i] = '_';
    }
    if (!len || name[0] == '_' || name[0] == '.') {
        free(name);
        return strdup("model");
    }
    return name;
}
