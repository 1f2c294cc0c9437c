#include "sk_model_internal.h"
#include "sk_wire.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- mappings ----------------------------------------------------------- */

static sk_status map_add(sk_model *m, const char *name, const uint8_t *base, size_t len, int owned, int fd)
{
    if (m->n_maps == m->cap_maps) {
        size_t cap = m->cap_maps ? 2 * m->cap_maps : 4;
        sk_map *p = realloc(m->maps, cap * sizeof *p);
        if (!p) return SK_ENOMEM;
        m->maps = p;
        m->cap_maps = cap;
    }
    sk_map *mp = &m->maps[m->n_maps];
    mp->name = name ? strdup(name) : NULL;
    if (name && !mp->name) return SK_ENOMEM;
    mp->base = base;
    mp->len = len;
    mp->owned = owned;
    mp->fd = fd;
    m->n_maps++;
    return SK_OK;
}

const sk_map *sk_model_map_of(const sk_model *m, const void *p, uint64_t *offset)
{
    const uint8_t *q = p;
    for (size_t i = 0; i < m->n_maps; i++)
        if (q >= m->maps[i].base && q < m->maps[i].base + m->maps[i].len) {
            *offset = (uint64_t)(q - m->maps[i].base);
            return &m->maps[i];
        }
    return NULL;
}

int sk_model_in_map(const sk_model *m, const void *p)
{
    const uint8_t *q = p;
    for (size_t i = 0; i < m->n_maps; i++)
        if (q >= m->maps[i].base && q < m->maps[i].base + m->maps[i].len) return 1;
    return 0;
}

/* mmaps path read-only and keeps it open in *fdp (for copy_file_range when
 * saving). An empty file maps to a dummy non-NULL pointer. */
static sk_status map_file(const char *path, const uint8_t **base, size_t *len, int *fdp, sk_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sk_error_set(err, SK_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return sk_error_set(err, SK_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sk_error_set(err, SK_EIO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        *base = (const uint8_t *)"";
        *len = 0;
        *fdp = -1;
        return SK_OK;
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return sk_error_set(err, SK_EIO, "%s: file too large to map", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    if (p == MAP_FAILED) {
        close(fd);
        return sk_error_set(err, SK_EIO, "%s: cannot map: %s", path, strerror(e));
    }
    *fdp = fd;
    *base = p;
    *len = (size_t)st.st_size;
    return SK_OK;
}

static void map_release(sk_map *mp)
{
    if (mp->fd >= 0) close(mp->fd);
    if (mp->owned) free((void *)mp->base);
    else if (mp->len) munmap((void *)mp->base, mp->len);
    free(mp->name);
}

/* A location must be a relative path of plain components, no "..", that
 * resolves (after symlinks) inside the model's folder. */
static sk_status check_location(const sk_model *m, const char *loc, char **full, sk_error *err)
{
    if (!m->dir) return sk_error_set(err, SK_EINVAL, "external data '%s' but the model was not loaded from a folder", loc);
    size_t n = strlen(loc);
    if (n == 0 || n > SK_MAX_NAME) return sk_error_set(err, SK_EINVAL, "external data location is empty or too long");
    if (loc[0] == '/' || loc[0] == '\\' || strchr(loc, ':'))
        return sk_error_set(err, SK_EINVAL, "external data location '%s' is absolute", loc);
    for (const char *c = loc; *c;) {
        const char *e = c + strcspn(c, "/\\");
        if ((e - c == 2 && c[0] == '.' && c[1] == '.'))
            return sk_error_set(err, SK_EINVAL, "external data location '%s' leaves the model's folder", loc);
        c = *e ? e + 1 : e;
    }
    size_t len = strlen(m->dir) + 1 + n + 1;
    char *p = malloc(len);
    if (!p) return sk_error_set(err, SK_ENOMEM, "out of memory");
    snprintf(p, len, "%s/%s", m->dir, loc);
    char *rd = realpath(m->dir, NULL), *rp = realpath(p, NULL);
    if (!rp) {
        int e = errno;
        free(rd);
        sk_status s = sk_error_set(err, SK_EINVAL, "external data file '%s' is missing: %s", loc, strerror(e));
        free(p);
        return s;
    }
    size_t dl = rd ? strlen(rd) : 0;
    int inside = rd && strncmp(rp, rd, dl) == 0 && (rp[dl] == '/' || (dl == 1 && rd[0] == '/'));
    free(rd);
    free(rp);
    if (!inside) {
        free(p);
        return sk_error_set(err, SK_EINVAL, "external data location '%s' resolves outside the model's folder", loc);
    }
    *full = p;
    return SK_OK;
}

sk_status sk_model_external_map(sk_model *m, const char *location, const sk_map **out, sk_error *err)
{
    for (size_t i = 0; i < m->n_maps; i++)
        if (m->maps[i].name && !strcmp(m->maps[i].name, location)) {
            *out = &m->maps[i];
            return SK_OK;
        }
    if (m->no_external)
        return sk_error_set(err, SK_EUNSUPPORTED, "external data '%s' not opened", location);
    char *full = NULL;
    sk_status s = check_location(m, location, &full, err);
    if (s) return s;
    const uint8_t *base;
    size_t len;
    int fd;
    s = map_file(full, &base, &len, &fd, err);
    free(full);
    if (s) return s;
    if (map_add(m, location, base, len, 0, fd)) {
        sk_map tmp = { NULL, base, len, 0, fd };
        map_release(&tmp);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    *out = &m->maps[m->n_maps - 1];
    return SK_OK;
}

/* ---- tensor walk -------------------------------------------------------- */

struct walk {
    sk_model *m;
    sk_tensor_visit_fn fn;
    void *arg;
};

static sk_status walk_graph(struct walk *w, sk_graph_proto *g, int depth);

static sk_status walk_sparse(struct walk *w, Onnx__SparseTensorProto *sp, const sk_node_proto *n)
{
    sk_status s = SK_OK;
    if (sp && sp->values) s = w->fn(w->m, sp->values, SK_PLACE_SPARSE, n, w->arg);
    if (!s && sp && sp->indices) s = w->fn(w->m, sp->indices, SK_PLACE_SPARSE, n, w->arg);
    return s;
}

static sk_status walk_nodes(struct walk *w, size_t n_node, sk_node_proto **nodes, int depth)
{
    for (size_t i = 0; i < n_node; i++) {
        sk_node_proto *n = nodes[i];
        int is_const = n->op_type && !strcmp(n->op_type, "Constant") && (!n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx"));
        for (size_t a = 0; a < n->n_attribute; a++) {
            Onnx__AttributeProto *at = n->attribute[a];
            sk_status s = SK_OK;
            if (at->t) s = w->fn(w->m, at->t, is_const && at->name && !strcmp(at->name, "value") ? SK_PLACE_CONSTANT : SK_PLACE_ATTRIBUTE, n, w->arg);
            for (size_t k = 0; !s && k < at->n_tensors; k++) s = w->fn(w->m, at->tensors[k], SK_PLACE_ATTRIBUTE, n, w->arg);
            if (!s && at->sparse_tensor) s = walk_sparse(w, at->sparse_tensor, n);
            for (size_t k = 0; !s && k < at->n_sparse_tensors; k++) s = walk_sparse(w, at->sparse_tensors[k], n);
            if (!s && at->g) s = walk_graph(w, at->g, depth + 1);
            for (size_t k = 0; !s && k < at->n_graphs; k++) s = walk_graph(w, at->graphs[k], depth + 1);
            if (s) return s;
        }
    }
    return SK_OK;
}

static sk_status walk_graph(struct walk *w, sk_graph_proto *g, int depth)
{
    if (!g || depth > 64) return SK_OK;
    for (size_t i = 0; i < g->n_initializer; i++) {
        sk_status s = w->fn(w->m, g->initializer[i], SK_PLACE_INITIALIZER, NULL, w->arg);
        if (s) return s;
    }
    for (size_t i = 0; i < g->n_sparse_initializer; i++) {
        sk_status s = walk_sparse(w, g->sparse_initializer[i], NULL);
        if (s) return s;
    }
    return walk_nodes(w, g->n_node, g->node, depth);
}

sk_status sk_model_visit_tensors(sk_model *m, sk_tensor_visit_fn fn, void *arg)
{
    struct walk w = { m, fn, arg };
    sk_model_proto *p = m->proto;
    sk_status s = walk_graph(&w, p->graph, 0);
    for (size_t i = 0; !s && i < p->n_training_info; i++) {
        s = walk_graph(&w, p->training_info[i]->initialization, 0);
        if (!s) s = walk_graph(&w, p->training_info[i]->algorithm, 0);
    }
    for (size_t i = 0; !s && i < p->n_functions; i++) s = walk_nodes(&w, p->functions[i]->n_node, p->functions[i]->node, 0);
    return s;
}

/* ---- load --------------------------------------------------------------- */

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Puts raw_data back: the placeholder's offset and length point into the
 * model's own mapping (maps[0]). */
static sk_status reattach(sk_model *m, sk_tensor_proto *t, sk_tensor_place place, const sk_node_proto *n, void *arg)
{
    (void)place; (void)n; (void)arg;
    ProtobufCMessage *b = &t->base;
    size_t keep = 0;
    for (size_t i = 0; i < b->n_unknown_fields; i++) {
        ProtobufCMessageUnknownField *u = &b->unknown_fields[i];
        /* protobuf-c keeps a length-prefixed unknown field with its length varint */
        if (u->tag == SK_WIRE_PLACEHOLDER_FIELD && u->wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED && u->len == 17 &&
            u->data[0] == 16) {
            uint64_t off = le64(u->data + 1), len = le64(u->data + 9);
            const sk_map *mp = &m->maps[0];
            if (off > mp->len || len > mp->len - off) return SK_EINTERNAL;
            if (t->raw_data.data && !sk_model_in_map(m, t->raw_data.data)) free(t->raw_data.data);
            t->has_raw_data = 1;
            t->raw_data.data = (uint8_t *)(mp->base + off);
            t->raw_data.len = (size_t)len;
            free(u->data);
            continue;
        }
        b->unknown_fields[keep++] = *u;
    }
    b->n_unknown_fields = keep;
    if (!keep) {
        free(b->unknown_fields);
        b->unknown_fields = NULL;
    }
    return SK_OK;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

static sk_status model_parse(sk_model *m, const sk_load_opts *opts, sk_error *err)
{
    const sk_map *mp = &m->maps[0];
    if (mp->len == 0) return sk_error_set(err, SK_EINVAL, "empty file, not an ONNX model");
    sk_wire_buf wb;
    sk_status s = sk_wire_strip_model(mp->base, mp->len, &wb, err);
    if (s) return s;
    m->proto = onnx__model_proto__unpack(NULL, wb.len, wb.data ? wb.data : (const uint8_t *)"");
    sk_wire_buf_free(&wb);
    if (!m->proto) return sk_error_set(err, SK_EINVAL, "not a valid ONNX protobuf (protobuf-c could not parse it)");
    s = sk_model_visit_tensors(m, reattach, NULL);
    if (s) return sk_error_set(err, SK_EINTERNAL, "internal error reattaching tensor data");
    if (!m->proto->graph)
        return sk_error_set(err, SK_EINVAL, "not an ONNX model: no graph");
    if (!m->proto->has_ir_version && m->proto->n_opset_import == 0)
        return sk_error_set(err, SK_EINVAL, "not an ONNX model: no IR version and no opset import");
    if (opts && opts->no_external) m->no_external = 1;
    if (!(opts && opts->skip_check)) return sk_model_check(m, err);
    return SK_OK;
}

static sk_model *model_new(void)
{
    return calloc(1, sizeof(sk_model));
}

sk_status sk_model_load(const char *path, const sk_load_opts *opts, sk_model **out, sk_error *err)
{
    *out = NULL;
    sk_model *m = model_new();
    if (!m) return sk_error_set(err, SK_ENOMEM, "out of memory");
    m->path = strdup(path);
    m->dir = dir_of(path);
    if (!m->path || !m->dir) {
        sk_model_free(m);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    const uint8_t *base;
    size_t len;
    int fd;
    sk_status s = map_file(path, &base, &len, &fd, err);
    if (s) {
        sk_model_free(m);
        return s;
    }
    if (map_add(m, NULL, base, len, 0, fd)) {
        sk_map tmp = { NULL, base, len, 0, fd };
        map_release(&tmp);
        sk_model_free(m);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    m->file_size = len;
    s = model_parse(m, opts, err);
    if (s) {
        if (err && strncmp(err->msg, path, strlen(path)) != 0) sk_error_prefix(err, "%s: ", path);
        sk_model_free(m);
        return s;
    }
    *out = m;
    return SK_OK;
}

sk_status sk_model_load_buffer(const void *buf, size_t len, const char *dir, const char *name,
                               const sk_load_opts *opts, sk_model **out, sk_error *err)
{
    *out = NULL;
    sk_model *m = model_new();
    if (!m) return sk_error_set(err, SK_ENOMEM, "out of memory");
    m->path = strdup(name ? name : "");
    m->dir = dir ? strdup(dir) : NULL;
    uint8_t *copy = malloc(len ? len : 1);
    if (!m->path || (dir && !m->dir) || !copy) {
        free(copy);
        sk_model_free(m);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (len) memcpy(copy, buf, len);
    if (map_add(m, NULL, copy, len, 1, -1)) {
        free(copy);
        sk_model_free(m);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    m->file_size = len;
    sk_status s = model_parse(m, opts, err);
    if (s) {
        if (name) sk_error_prefix(err, "%s: ", name);
        sk_model_free(m);
        return s;
    }
    *out = m;
    return SK_OK;
}

sk_status sk_model_wrap(sk_model_proto *proto, const char *dir, sk_model **out, sk_error *err)
{
    *out = NULL;
    sk_model *m = model_new();
    if (!m) return sk_error_set(err, SK_ENOMEM, "out of memory");
    m->path = strdup("");
    m->dir = dir ? strdup(dir) : NULL;
    if (!m->path || (dir && !m->dir)) {
        sk_model_free(m);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    m->proto = proto;
    *out = m;
    return SK_OK;
}

static sk_status detach(sk_model *m, sk_tensor_proto *t, sk_tensor_place place, const sk_node_proto *n, void *arg)
{
    (void)place; (void)n; (void)arg;
    if (t->raw_data.data && sk_model_in_map(m, t->raw_data.data)) {
        t->raw_data.data = NULL;
        t->raw_data.len = 0;
    }
    return SK_OK;
}

void sk_model_free(sk_model *m)
{
    if (!m) return;
    if (m->proto) {
        sk_model_visit_tensors(m, detach, NULL);
        protobuf_c_message_free_unpacked(&m->proto->base, NULL);
    }
    for (size_t i = 0; i < m->cap_cache; i++) free(m->cache ? m->cache[i].data : NULL);
    free(m->cache);
    for (size_t i = 0; i < m->n_maps; i++) map_release(&m->maps[i]);
    free(m->maps);
    free(m->path);
    free(m->dir);
    free(m);
}

sk_model_proto *sk_model_proto_of(sk_model *m) { return m->proto; }
sk_graph_proto *sk_model_graph(sk_model *m) { return m->proto->graph; }
const char *sk_model_path(const sk_model *m) { return m->path ? m->path : ""; }
const char *sk_model_dir(const sk_model *m) { return m->dir; }
uint64_t sk_model_file_size(const sk_model *m) { return m->file_size; }

int64_t sk_model_opset(const sk_model *m, const char *domain)
{
    int onnx = !domain || !*domain || !strcmp(domain, "ai.onnx");
    for (size_t i = 0; i < m->proto->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->proto->opset_import[i];
        const char *d = o->domain ? o->domain : "";
        int o_onnx = !*d || !strcmp(d, "ai.onnx");
        if (onnx ? o_onnx : !strcmp(d, domain)) return o->version;
    }
    return 0;
}

/* ---- tensors ------------------------------------------------------------ */

int64_t sk_tensor_proto_numel(const sk_tensor_proto *t)
{
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++)
        if (t->dims[i] < 0 || __builtin_mul_overflow(n, t->dims[i], &n)) return -1;
    return n;
}

sk_storage sk_tensor_proto_storage(const sk_tensor_proto *t)
{
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) return SK_STORE_EXTERNAL;
    if (t->has_raw_data) return SK_STORE_RAW;
    return SK_STORE_TYPED;
}

int64_t sk_tensor_proto_nbytes(const sk_tensor_proto *t, sk_error *err)
{
    const char *name = t->name ? t->name : "";
    if (!sk_dtype_valid(t->data_type)) {
        sk_error_set(err, SK_EINVAL, "tensor '%s' has unknown data type %d", name, t->data_type);
        return -1;
    }
    if (t->n_dims > SK_MAX_RANK) {
        sk_error_set(err, SK_EINVAL, "tensor '%s' has %zu dims (max %d)", name, t->n_dims, SK_MAX_RANK);
        return -1;
    }
    for (size_t i = 0; i < t->n_dims; i++)
        if (t->dims[i] < 0 || t->dims[i] > SK_MAX_DIM) {
            sk_error_set(err, SK_EINVAL, "tensor '%s' has an invalid dim %" PRId64, name, t->dims[i]);
            return -1;
        }
    int64_t n = sk_tensor_proto_numel(t);
    int64_t nb = n < 0 ? -1 : t->data_type == SK_STRING ? 0 : sk_dtype_nbytes(t->data_type, n);
    if (n < 0 || nb < 0 || (uint64_t)nb > (uint64_t)SIZE_MAX / 2) {
        sk_error_set(err, SK_EINVAL, "tensor '%s' has too many elements", name);
        return -1;
    }
    return nb;
}

sk_status sk_tensor_external_info(const sk_tensor_proto *t, const char **location, uint64_t *offset,
                                  uint64_t *length, int *has_length, sk_error *err)
{
    const char *name = t->name ? t->name : "";
    *location = NULL;
    *offset = 0;
    *length = 0;
    *has_length = 0;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const char *k = t->external_data[i]->key, *v = t->external_data[i]->value;
        if (!k || !v) continue;
        if (!strcmp(k, "location")) {
            *location = v;
        } else if (!strcmp(k, "offset") || !strcmp(k, "length")) {
            char *end;
            errno = 0;
            if (!*v || *v == '-' || *v == '+') goto badnum;
            unsigned long long x = strtoull(v, &end, 10);
            if (errno || *end) goto badnum;
            if (k[0] == 'o') *offset = x;
            else { *length = x; *has_length = 1; }
            continue;
        badnum:
            return sk_error_set(err, SK_EINVAL, "tensor '%s': external data %s '%s' is not a number", name, k, v);
        }
    }
    if (!*location) return sk_error_set(err, SK_EINVAL, "tensor '%s': external data has no location", name);
    return SK_OK;
}

/* ---- view cache (typed-field tensors converted to raw layout) ---------- */

static size_t ptr_hash(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= 0x9E3779B97F4A7C15ull;
    return (size_t)(x ^ (x >> 29));
}

static void **cache_slot(sk_model *m, const sk_tensor_proto *t, int insert)
{
    if (insert && (m->n_cache + 1) * 2 > m->cap_cache) {
        size_t cap = m->cap_cache ? m->cap_cache * 2 : 64;
        sk_view_cache_entry *c = calloc(cap, sizeof *c);
        if (!c) return NULL;
        for (size_t i = 0; i < m->cap_cache; i++)
            if (m->cache[i].t) {
                size_t h = ptr_hash(m->cache[i].t) & (cap - 1);
                while (c[h].t) h = (h + 1) & (cap - 1);
                c[h] = m->cache[i];
            }
        free(m->cache);
        m->cache = c;
        m->cap_cache = cap;
    }
    if (!m->cap_cache) return NULL;
    size_t h = ptr_hash(t) & (m->cap_cache - 1);
    while (m->cache[h].t && m->cache[h].t != t) h = (h + 1) & (m->cap_cache - 1);
    if (!m->cache[h].t) {
        if (!insert) return NULL;
        m->cache[h].t = t;
        m->n_cache++;
    }
    return &m->cache[h].data;
}

void sk_model_cache_drop(sk_model *m, const sk_tensor_proto *t)
{
    void **slot = cache_slot(m, t, 0);
    if (slot) { /* keep the entry (tombstone-free table): just drop the data */
        free(*slot);
        *slot = NULL;
    }
}

static sk_status typed_to_raw(const sk_tensor_proto *t, int64_t numel, size_t nbytes, void **out, sk_error *err)
{
    const char *name = t->name ? t->name : "";
    int dt = t->data_type;
    const sk_dtype_traits *tr = &sk_dtype_table[dt];
    size_t want = (size_t)(tr->per_field == 2 && tr->bits == 4 ? (numel + 1) / 2 : numel * tr->per_field);
    size_t have = 0;
    switch (tr->field) {
    case SK_FIELD_FLOAT: have = t->n_float_data; break;
    case SK_FIELD_INT32: have = t->n_int32_data; break;
    case SK_FIELD_INT64: have = t->n_int64_data; break;
    case SK_FIELD_DOUBLE: have = t->n_double_data; break;
    case SK_FIELD_UINT64: have = t->n_uint64_data; break;
    default: return sk_error_set(err, SK_EUNSUPPORTED, "tensor '%s' of type %s has no raw form", name, tr->name);
    }
    if (have != want)
        return sk_error_set(err, SK_EINVAL, "tensor '%s' has %zu values but its shape needs %zu", name, have, want);
    uint8_t *p = malloc(nbytes ? nbytes : 1);
    if (!p) return sk_error_set(err, SK_ENOMEM, "out of memory");
    size_t esz = tr->bits >= 8 ? tr->bits / 8 / tr->per_field : 1;
    for (size_t i = 0; i < want; i++) {
        switch (tr->field) {
        case SK_FIELD_FLOAT: memcpy(p + 4 * i, &t->float_data[i], 4); break;
        case SK_FIELD_DOUBLE: memcpy(p + 8 * i, &t->double_data[i], 8); break;
        case SK_FIELD_INT64: memcpy(p + 8 * i, &t->int64_data[i], 8); break;
        case SK_FIELD_UINT64:
            if (esz == 4) { uint32_t v = (uint32_t)t->uint64_data[i]; memcpy(p + 4 * i, &v, 4); }
            else memcpy(p + 8 * i, &t->uint64_data[i], 8);
            break;
        case SK_FIELD_INT32: {
            int32_t v = t->int32_data[i];
            if (esz == 4) memcpy(p + 4 * i, &v, 4);
            else if (esz == 2) { uint16_t h = (uint16_t)v; memcpy(p + 2 * i, &h, 2); }
            else p[i] = (uint8_t)v;
            break;
        }
        default: break;
        }
    }
    *out = p;
    return SK_OK;
}

sk_status sk_model_tensor_view(sk_model *m, const sk_tensor_proto *t, sk_tensor_view *v, sk_error *err)
{
    const char *name = t->name ? t->name : "";
    int64_t nb = sk_tensor_proto_nbytes(t, err);
    if (nb < 0) return SK_EINVAL;
    if (t->data_type == SK_STRING)
        return sk_error_set(err, SK_EUNSUPPORTED, "tensor '%s' holds strings", name);
    v->dtype = t->data_type;
    v->rank = (int)t->n_dims;
    v->dims = t->dims;
    v->numel = sk_tensor_proto_numel(t);
    v->nbytes = (size_t)nb;
    v->storage = sk_tensor_proto_storage(t);
    switch (v->storage) {
    case SK_STORE_EXTERNAL: {
        const char *loc;
        uint64_t off, len;
        int has_len;
        sk_status s = sk_tensor_external_info(t, &loc, &off, &len, &has_len, err);
        if (s) return s;
        const sk_map *mp;
        s = sk_model_external_map(m, loc, &mp, err);
        if (s) return s;
        if (!has_len) len = (uint64_t)nb;
        if (len != (uint64_t)nb)
            return sk_error_set(err, SK_EINVAL, "tensor '%s': external length %" PRIu64 " but its shape needs %" PRId64 " bytes",
                                name, len, nb);
        if (off > mp->len || len > mp->len - off)
            return sk_error_set(err, SK_EINVAL, "tensor '%s': external data [%" PRIu64 ", +%" PRIu64 ") is past the end of '%s' (%zu bytes)",
                                name, off, len, loc, mp->len);
        v->data = mp->base + off;
        return SK_OK;
    }
    case SK_STORE_RAW:
        if (t->raw_data.len != (size_t)nb)
            return sk_error_set(err, SK_EINVAL, "tensor '%s' has %zu bytes of data but its shape needs %" PRId64,
                                name, t->raw_data.len, nb);
        v->data = t->raw_data.data ? t->raw_data.data : (const uint8_t *)"";
        return SK_OK;
    case SK_STORE_TYPED: {
        void **slot = cache_slot(m, t, 0);
        if (slot && *slot) {
            v->data = *slot;
            return SK_OK;
        }
        void *p = NULL;
        sk_status s = typed_to_raw(t, v->numel, (size_t)nb, &p, err);
        if (s) return s;
        slot = cache_slot(m, t, 1);
        if (!slot) {
            free(p);
            return sk_error_set(err, SK_ENOMEM, "out of memory");
        }
        *slot = p;
        v->data = p;
        return SK_OK;
    }
    }
    return SK_EINTERNAL;
}

static void free_entries(size_t n, Onnx__StringStringEntryProto **e)
{
    for (size_t i = 0; i < n; i++) protobuf_c_message_free_unpacked(&e[i]->base, NULL);
    free(e);
}

sk_status sk_tensor_proto_set_raw(sk_model *m, sk_tensor_proto *t, int dtype, int rank, const int64_t *dims,
                                  void *data, size_t nbytes, int take, sk_error *err)
{
    if (!sk_dtype_valid(dtype) || dtype == SK_STRING || rank < 0 || rank > SK_MAX_RANK)
        return sk_error_set(err, SK_EINVAL, "bad dtype or rank for tensor '%s'", t->name ? t->name : "");
    int64_t n = 1;
    for (int i = 0; i < rank; i++)
        if (dims[i] < 0 || __builtin_mul_overflow(n, dims[i], &n))
            return sk_error_set(err, SK_EINVAL, "bad shape for tensor '%s'", t->name ? t->name : "");
    int64_t nb = sk_dtype_nbytes(dtype, n);
    if (nb < 0 || (size_t)nb != nbytes)
        return sk_error_set(err, SK_EINVAL, "tensor '%s': %zu bytes given, shape needs %" PRId64, t->name ? t->name : "", nbytes, nb);
    void *buf = data;
    if (!take) {
        buf = malloc(nbytes ? nbytes : 1);
        if (!buf) return sk_error_set(err, SK_ENOMEM, "out of memory");
        if (nbytes) memcpy(buf, data, nbytes);
    }
    int64_t *d = malloc((rank ? (size_t)rank : 1) * sizeof *d);
    if (!d) {
        if (!take) free(buf);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (rank) memcpy(d, dims, (size_t)rank * sizeof *d);
    if (m) sk_model_cache_drop(m, t);
    if (t->raw_data.data && !(m && sk_model_in_map(m, t->raw_data.data))) free(t->raw_data.data);
    free(t->dims);
    free(t->float_data); free(t->int32_data); free(t->int64_data); free(t->double_data); free(t->uint64_data);
    t->float_data = NULL; t->n_float_data = 0;
    t->int32_data = NULL; t->n_int32_data = 0;
    t->int64_data = NULL; t->n_int64_data = 0;
    t->double_data = NULL; t->n_double_data = 0;
    t->uint64_data = NULL; t->n_uint64_data = 0;
    free_entries(t->n_external_data, t->external_data);
    t->external_data = NULL;
    t->n_external_data = 0;
    t->has_data_location = 0;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
    t->dims = d;
    t->n_dims = (size_t)rank;
    t->data_type = dtype;
    t->has_data_type = 1;
    t->has_raw_data = 1;
    t->raw_data.data = buf;
    t->raw_data.len = nbytes;
    return SK_OK;
}
