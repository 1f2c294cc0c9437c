#include "sk_npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "skiff's tensors are little-endian in memory");

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6

/* Tensor files larger than this are refused (weights never come this way). */
#define MAX_TENSOR_FILE (SIZE_MAX > ((uint64_t)1 << 34) ? (size_t)((uint64_t)1 << 34) : SIZE_MAX)

/* ---- files ------------------------------------------------------------ */

sk_status sk_npy_read_file(const char *path, size_t max_len, uint8_t **buf, size_t *len, sk_error *err)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sk_error_set(err, SK_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sk_error_set(err, SK_EIO, "%s: not a regular file", path);
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)max_len) {
        fclose(f);
        return sk_error_set(err, SK_EINVAL, "%s: file of %lld bytes is larger than the limit of %zu bytes", path,
                            (long long)st.st_size, max_len);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
        fclose(f);
        return sk_error_set(err, SK_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = n ? fread(p, 1, n, f) : 0;
    int bad = got != n || ferror(f);
    fclose(f);
    if (bad) {
        free(p);
        return sk_error_set(err, SK_EIO, "%s: read error (got %zu of %zu bytes)", path, got, n);
    }
    *buf = p;
    *len = n;
    return SK_OK;
}

/* Writes len bytes to path through a temporary file in the same folder. */
static sk_status write_atomic(const char *path, const void *data, size_t len, sk_error *err)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) return sk_error_set(err, SK_ENOMEM, "%s: out of memory", path);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        sk_status s = sk_error_set(err, SK_EIO, "%s: cannot create a temporary file: %s", path, strerror(errno));
        free(tmp);
        return s;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        free(tmp);
        return sk_error_set(err, SK_EIO, "%s: cannot open for writing", path);
    }
    int bad = len && fwrite(data, 1, len, f) != len;
    if (fclose(f) != 0) bad = 1;
    if (!bad) {
        /* mkstemp creates 0600; tensor files are ordinary files. */
        mode_t um = umask(0);
        umask(um);
        chmod(tmp, 0666 & ~um);
    }
    if (bad || rename(tmp, path) != 0) {
        sk_status s = sk_error_set(err, SK_EIO, "%s: write failed: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return s;
    }
    free(tmp);
    return SK_OK;
}

/* ---- .npy ------------------------------------------------------------- */

typedef struct npy_header {
    int dtype;
    int fortran;
    int rank;
    int64_t dims[SK_TENSOR_MAX_RANK];
    int have_descr, have_order, have_shape;
} npy_header;

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int accept(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes into out (cap bytes). */
static int parse_str(cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return -1;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return -1;
    c->p++;
    out[n] = 0;
    return 0;
}

static int parse_word(cursor *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, w, n)) {
        c->p += n;
        return 1;
    }
    return 0;
}

static int dtype_from_descr(const char *d, const char *name, sk_error *err, int *dtype)
{
    char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return sk_error_set(err, SK_EUNSUPPORTED, "%s: unsupported numpy dtype '%s'", name, d);
    char kind = d[1];
    if (kind == 'O')
        return sk_error_set(err, SK_EUNSUPPORTED, "%s: numpy object arrays (dtype '%s') are not supported", name, d);
    char *endp;
    long size = strtol(d + 2, &endp, 10);
    if (d[2] == 0 || *endp != 0 || size <= 0)
        return sk_error_set(err, SK_EUNSUPPORTED, "%s: unsupported numpy dtype '%s'", name, d);
    if (order == '>' && size > 1)
        return sk_error_set(err, SK_EUNSUPPORTED,
                            "%s: big-endian data (dtype '%s') is not supported; save it little-endian", name, d);
    int dt = 0;
    switch (kind) {
    case 'f': dt = size == 2 ? SK_FLOAT16 : size == 4 ? SK_FLOAT : size == 8 ? SK_DOUBLE : 0; break;
    case 'i': dt = size == 1 ? SK_INT8 : size == 2 ? SK_INT16 : size == 4 ? SK_INT32 : size == 8 ? SK_INT64 : 0; break;
    case 'u': dt = size == 1 ? SK_UINT8 : size == 2 ? SK_UINT16 : size == 4 ? SK_UINT32 : size == 8 ? SK_UINT64 : 0; break;
    case 'b': dt = size == 1 ? SK_BOOL : 0; break;
    default: break;
    }
    if (!dt) return sk_error_set(err, SK_EUNSUPPORTED, "%s: unsupported numpy dtype '%s'", name, d);
    *dtype = dt;
    return SK_OK;
}

static sk_status parse_header(const char *h, size_t hl, const char *name, npy_header *out, sk_error *err)
{
    cursor c = { h, h + hl };
    memset(out, 0, sizeof *out);
    if (!accept(&c, '{')) goto bad;
    for (;;) {
        if (accept(&c, '}')) break;
        char key[32];
        if (parse_str(&c, key, sizeof key) || !accept(&c, ':')) goto bad;
        if (!strcmp(key, "descr")) {
            char d[32];
            skip_ws(&c);
            if (c.p < c.end && *c.p == '[')
                return sk_error_set(err, SK_EUNSUPPORTED, "%s: structured numpy dtypes are not supported", name);
            if (parse_str(&c, d, sizeof d)) goto bad;
            sk_status s = dtype_from_descr(d, name, err, &out->dtype);
            if (s) return s;
            out->have_descr = 1;
        } else if (!strcmp(key, "fortran_order")) {
            if (parse_word(&c, "True")) out->fortran = 1;
            else if (parse_word(&c, "False")) out->fortran = 0;
            else goto bad;
            out->have_order = 1;
        } else if (!strcmp(key, "shape")) {
            if (!accept(&c, '(')) goto bad;
            out->rank = 0;
            for (;;) {
                if (accept(&c, ')')) break;
                skip_ws(&c);
                int64_t v = 0;
                int digits = 0;
                while (c.p < c.end && *c.p >= '0' && *c.p <= '9') {
                    if (sk_mul_i64(v, 10, &v) || __builtin_add_overflow(v, (int64_t)(*c.p - '0'), &v))
                        return sk_error_set(err, SK_EINVAL, "%s: a dimension of the .npy shape overflows", name);
                    c.p++;
                    digits++;
                }
                if (!digits) goto bad;
                if (out->rank >= SK_TENSOR_MAX_RANK)
                    return sk_error_set(err, SK_EINVAL, "%s: .npy shape has more than %d dimensions", name,
                                        SK_TENSOR_MAX_RANK);
                out->dims[out->rank++] = v;
                if (accept(&c, ')')) break;
                if (!accept(&c, ',')) goto bad;
            }
            out->have_shape = 1;
        } else {
            return sk_error_set(err, SK_EINVAL, "%s: unexpected key '%s' in the .npy header", name, key);
        }
        if (accept(&c, '}')) break;
        if (!accept(&c, ',')) goto bad;
    }
    skip_ws(&c);
    if (c.p != c.end) goto bad;
    if (!out->have_descr || !out->have_order || !out->have_shape)
        return sk_error_set(err, SK_EINVAL, "%s: the .npy header lacks descr, fortran_order or shape", name);
    return SK_OK;
bad:
    return sk_error_set(err, SK_EINVAL, "%s: malformed .npy header at byte %zu", name, (size_t)(c.p - h));
}

sk_status sk_npy_parse(const void *buf, size_t len, const char *name, sk_tensor *t, sk_error *err)
{
    const uint8_t *b = buf;
    char sb[128];
    memset(t, 0, sizeof *t);
    if (!name) name = "npy";
    if (len < 10 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return sk_error_set(err, SK_EINVAL, "%s: not a .npy file (bad magic)", name);
    unsigned major = b[6];
    size_t hl, off;
    if (major == 1) {
        hl = (size_t)b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return sk_error_set(err, SK_EINVAL, "%s: truncated .npy header", name);
        hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    } else {
        return sk_error_set(err, SK_EUNSUPPORTED, "%s: .npy format version %u.%u is not supported", name, major, b[7]);
    }
    if (hl > SK_NPY_MAX_HEADER)
        return sk_error_set(err, SK_EINVAL, "%s: .npy header of %zu bytes is too large", name, hl);
    if (hl > len - off) return sk_error_set(err, SK_EINVAL, "%s: truncated .npy header", name);
    npy_header h;
    sk_status s = parse_header((const char *)b + off, hl, name, &h, err);
    if (s) return s;
    off += hl;
    if (h.fortran)
        return sk_error_set(err, SK_EUNSUPPORTED,
                            "%s: Fortran-order arrays are not supported; save with np.ascontiguousarray", name);
    int64_t n = sk_shape_numel(h.rank, h.dims);
    int64_t nb = n < 0 ? -1 : sk_dtype_nbytes(h.dtype, n);
    if (nb < 0 || (uint64_t)nb > (uint64_t)SIZE_MAX / 2)
        return sk_error_set(err, SK_EINVAL, "%s: .npy shape %s is too large", name,
                            sk_shape_str(h.rank, h.dims, sb, sizeof sb));
    size_t have = len - off;
    if ((uint64_t)nb != (uint64_t)have)
        return sk_error_set(err, SK_EINVAL, "%s: .npy data is %zu bytes but shape %s of %s needs %lld", name, have,
                            sk_shape_str(h.rank, h.dims, sb, sizeof sb), sk_dtype_name(h.dtype), (long long)nb);
    s = sk_tensor_alloc(t, h.dtype, h.rank, h.dims, err);
    if (s) return sk_error_prefix(err, "%s: ", name);
    if (nb) memcpy(t->data, b + off, (size_t)nb);
    if (h.dtype == SK_BOOL) {
        uint8_t *p = t->data;
        for (int64_t i = 0; i < n; i++) p[i] = p[i] != 0;
    }
    return SK_OK;
}

sk_status sk_npy_load(const char *path, sk_tensor *t, sk_error *err)
{
    uint8_t *buf;
    size_t len;
    memset(t, 0, sizeof *t);
    sk_status s = sk_npy_read_file(path, MAX_TENSOR_FILE, &buf, &len, err);
    if (s) return s;
    s = sk_npy_parse(buf, len, path, t, err);
    free(buf);
    return s;
}

static const char *npy_descr(int dtype)
{
    switch (dtype) {
    case SK_FLOAT16: return "<f2";
    case SK_FLOAT: return "<f4";
    case SK_DOUBLE: return "<f8";
    case SK_INT8: return "|i1";
    case SK_INT16: return "<i2";
    case SK_INT32: return "<i4";
    case SK_INT64: return "<i8";
    case SK_UINT8: return "|u1";
    case SK_UINT16: return "<u2";
    case SK_UINT32: return "<u4";
    case SK_UINT64: return "<u8";
    case SK_BOOL: return "|b1";
    default: return NULL;
    }
}

sk_status sk_npy_format(const sk_tensor *t, uint8_t **buf, size_t *len, sk_error *err)
{
    *buf = NULL;
    *len = 0;
    const char *descr = npy_descr(t->dtype);
    if (!descr)
        return sk_error_set(err, SK_EUNSUPPORTED, "%s tensors cannot be saved as .npy (numpy has no such dtype)",
                            sk_dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > SK_TENSOR_MAX_RANK) return sk_error_set(err, SK_EINVAL, "bad tensor rank");
    char h[64 + SK_TENSOR_MAX_RANK * 24];
    size_t hl = (size_t)snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++)
        hl += (size_t)snprintf(h + hl, sizeof h - hl, "%lld,%s", (long long)t->dims[i],
                               i + 1 < t->rank ? " " : "");
    if (t->rank > 1) hl--; /* numpy writes "(2, 3)" but "(3,)" */
    hl += (size_t)snprintf(h + hl, sizeof h - hl, "), }");
    /* Pad with spaces and a final newline so the data starts 64-byte aligned. */
    size_t pre = 10, total = pre + hl + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = hl + pad + 1;
    size_t nb = t->nbytes, out_len;
    if (sk_add_size(pre + hlen, nb, &out_len)) return sk_error_set(err, SK_EINVAL, "tensor too large");
    uint8_t *p = malloc(out_len);
    if (!p) return sk_error_set(err, SK_ENOMEM, "out of memory formatting a .npy of %zu bytes", out_len);
    memcpy(p, NPY_MAGIC, NPY_MAGIC_LEN);
    p[6] = 1;
    p[7] = 0;
    p[8] = (uint8_t)(hlen & 0xff);
    p[9] = (uint8_t)(hlen >> 8);
    memcpy(p + pre, h, hl);
    memset(p + pre + hl, ' ', pad);
    p[pre + hlen - 1] = '\n';
    if (nb) memcpy(p + pre + hlen, t->data, nb);
    *buf = p;
    *len = out_len;
    return SK_OK;
}

sk_status sk_npy_save(const char *path, const sk_tensor *t, sk_error *err)
{
    uint8_t *buf;
    size_t len;
    sk_status s = sk_npy_format(t, &buf, &len, err);
    if (s) return sk_error_prefix(err, "%s: ", path);
    s = write_atomic(path, buf, len, err);
    free(buf);
    return s;
}

/* ---- TensorProto ------------------------------------------------------ */

sk_status sk_npy_from_proto(const Onnx__TensorProto *tp, const char *name, sk_tensor *t, sk_error *err)
{
    char sb[128];
    memset(t, 0, sizeof *t);
    if (!name) name = tp->name && tp->name[0] ? tp->name : "tensor";
    int dt = tp->has_data_type ? tp->data_type : 0;
    if (!sk_dtype_valid(dt))
        return sk_error_set(err, SK_EINVAL, "%s: invalid tensor data type %d", name, dt);
    if (dt == SK_STRING)
        return sk_error_set(err, SK_EUNSUPPORTED, "%s: string tensors are not supported", name);
    if (tp->n_dims > SK_TENSOR_MAX_RANK)
        return sk_error_set(err, SK_EINVAL, "%s: tensor has %zu dimensions (max %d)", name, tp->n_dims,
                            SK_TENSOR_MAX_RANK);
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return sk_error_set(err, SK_EUNSUPPORTED, "%s: tensors with external data are not supported here", name);
    if (tp->segment) return sk_error_set(err, SK_EUNSUPPORTED, "%s: segmented tensors are not supported", name);
    int rank = (int)tp->n_dims;
    int64_t n = sk_shape_numel(rank, tp->dims);
    if (n < 0)
        return sk_error_set(err, SK_EINVAL, "%s: shape %s has a negative dim or too many elements", name,
                            sk_shape_str(rank, tp->dims, sb, sizeof sb));
    sk_status s = sk_tensor_alloc(t, dt, rank, tp->dims, err);
    if (s) return sk_error_prefix(err, "%s: ", name);
    const sk_dtype_traits *tr = &sk_dtype_table[dt];
    uint8_t *out = t->data;
    if (tp->has_raw_data) {
        if (tp->raw_data.len != t->nbytes) {
            sk_tensor_free(t);
            return sk_error_set(err, SK_EINVAL, "%s: raw_data has %zu bytes but %s %s needs %zu", name,
                                tp->raw_data.len, sk_dtype_name(dt), sk_shape_str(rank, tp->dims, sb, sizeof sb),
                                (size_t)sk_dtype_nbytes(dt, n));
        }
        if (t->nbytes) memcpy(out, tp->raw_data.data, t->nbytes);
        return SK_OK;
    }
    /* Typed fields: the number of entries must match the shape exactly. */
    size_t want = tr->per_field == 2 && tr->bits == 4 ? (size_t)(n / 2 + (n & 1))
                  : tr->per_field == 2 ? (size_t)n * 2 : (size_t)n;
    size_t have = 0;
    switch (tr->field) {
    case SK_FIELD_FLOAT: have = tp->n_float_data; break;
    case SK_FIELD_INT32: have = tp->n_int32_data; break;
    case SK_FIELD_INT64: have = tp->n_int64_data; break;
    case SK_FIELD_DOUBLE: have = tp->n_double_data; break;
    case SK_FIELD_UINT64: have = tp->n_uint64_data; break;
    default: break;
    }
    if (have != want) {
        sk_tensor_free(t);
        return sk_error_set(err, SK_EINVAL, "%s: tensor has %zu data entries but %s %s needs %zu", name, have,
                            sk_dtype_name(dt), sk_shape_str(rank, tp->dims, sb, sizeof sb), want);
    }
    switch (tr->field) {
    case SK_FIELD_FLOAT: memcpy(out, tp->float_data, have * sizeof(float)); break;
    case SK_FIELD_DOUBLE: memcpy(out, tp->double_data, have * sizeof(double)); break;
    case SK_FIELD_INT64: memcpy(out, tp->int64_data, have * sizeof(int64_t)); break;
    case SK_FIELD_UINT64:
        if (dt == SK_UINT64) {
            memcpy(out, tp->uint64_data, have * sizeof(uint64_t));
        } else {
            for (size_t i = 0; i < have; i++) ((uint32_t *)out)[i] = (uint32_t)tp->uint64_data[i];
        }
        break;
    case SK_FIELD_INT32: {
        unsigned bytes = tr->bits / 8;
        if (tr->bits == 4) bytes = 1; /* two nibbles already packed in the low byte */
        for (size_t i = 0; i < have; i++) {
            uint32_t v = (uint32_t)tp->int32_data[i];
            if (bytes == 1) out[i] = (uint8_t)(dt == SK_BOOL ? v != 0 : v);
            else if (bytes == 2) ((uint16_t *)out)[i] = (uint16_t)v;
            else ((uint32_t *)out)[i] = v;
        }
        break;
    }
    default:
        sk_tensor_free(t);
        return sk_error_set(err, SK_EUNSUPPORTED, "%s: %s tensors are not supported", name, sk_dtype_name(dt));
    }
    return SK_OK;
}

sk_status sk_npy_parse_pb(const void *buf, size_t len, const char *name, sk_tensor *t, char **tensor_name,
                          sk_error *err)
{
    memset(t, 0, sizeof *t);
    if (tensor_name) *tensor_name = NULL;
    if (!name) name = "pb";
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, buf);
    if (!tp) return sk_error_set(err, SK_EINVAL, "%s: not a valid ONNX TensorProto", name);
    sk_status s = sk_npy_from_proto(tp, name, t, err);
    if (!s && tensor_name) {
        *tensor_name = strdup(tp->name ? tp->name : "");
        if (!*tensor_name) {
            sk_tensor_free(t);
            s = sk_error_set(err, SK_ENOMEM, "%s: out of memory", name);
        }
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return s;
}

sk_status sk_npy_load_pb(const char *path, sk_tensor *t, char **tensor_name, sk_error *err)
{
    uint8_t *buf;
    size_t len;
    memset(t, 0, sizeof *t);
    if (tensor_name) *tensor_name = NULL;
    sk_status s = sk_npy_read_file(path, MAX_TENSOR_FILE, &buf, &len, err);
    if (s) return s;
    s = sk_npy_parse_pb(buf, len, path, t, tensor_name, err);
    free(buf);
    return s;
}

sk_status sk_npy_save_pb(const char *path, const sk_tensor *t, const char *tensor_name, sk_error *err)
{
    if (!sk_dtype_valid(t->dtype) || t->dtype == SK_STRING || t->rank < 0 || t->rank > SK_TENSOR_MAX_RANK)
        return sk_error_set(err, SK_EINVAL, "%s: cannot save a %s tensor", path, sk_dtype_name(t->dtype));
    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    int64_t dims[SK_TENSOR_MAX_RANK];
    memcpy(dims, t->dims, (size_t)t->rank * sizeof dims[0]);
    tp.n_dims = (size_t)t->rank;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = t->dtype;
    tp.name = (char *)(tensor_name ? tensor_name : "");
    tp.has_raw_data = 1;
    tp.raw_data.len = t->nbytes;
    tp.raw_data.data = t->data;
    size_t len = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return sk_error_set(err, SK_ENOMEM, "%s: out of memory", path);
    onnx__tensor_proto__pack(&tp, buf);
    sk_status s = write_atomic(path, buf, len, err);
    free(buf);
    return s;
}

sk_status sk_npy_load_any(const char *path, sk_tensor *t, char **tensor_name, sk_error *err)
{
    uint8_t *buf;
    size_t len;
    memset(t, 0, sizeof *t);
    if (tensor_name) *tensor_name = NULL;
    sk_status s = sk_npy_read_file(path, MAX_TENSOR_FILE, &buf, &len, err);
    if (s) return s;
    if (len >= NPY_MAGIC_LEN && !memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN)) {
        s = sk_npy_parse(buf, len, path, t, err);
        if (!s && tensor_name && !(*tensor_name = strdup(""))) {
            sk_tensor_free(t);
            s = sk_error_set(err, SK_ENOMEM, "%s: out of memory", path);
        }
    } else {
        s = sk_npy_parse_pb(buf, len, path, t, tensor_name, err);
    }
    free(buf);
    return s;
}
