/* Saving: protobuf-c packs the model straight into a buffered file (weights
 * are appended from their mappings, never gathered in memory), under a
 * temporary name renamed at the end. Moving tensors to or from external data
 * edits the protos only for the duration of the pack, then restores them. */
#include "sk_model_internal.h"
#include "sk_atomic.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct file_sink {
    ProtobufCBuffer base;
    FILE *f;
    const sk_model *m;
    int failed;
} file_sink;

/* Large blocks that come from a mapped file are copied file to file by the
 * kernel (copy_file_range), not through the page faults of the mapping. */
#define SK_SAVE_DIRECT_MIN (256u << 10)

static int copy_range(FILE *f, const sk_model *m, const uint8_t *data, size_t len)
{
    uint64_t off;
    const sk_map *mp = sk_model_map_of(m, data, &off);
    if (!mp || mp->fd < 0 || fflush(f) != 0) return -1;
    int out = fileno(f);
    loff_t in_off = (loff_t)off;
    size_t done = 0;
    while (done < len) {
        ssize_t n = copy_file_range(mp->fd, &in_off, out, NULL, len - done, 0);
        if (n <= 0) break;
        done += (size_t)n;
    }
    if (done == len) return 0;
    /* fall back (another file system, an old kernel): the rest by write */
    if (lseek(out, 0, SEEK_END) < 0) return -2;
    return fwrite(data + done, 1, len - done, f) == len - done ? 0 : -2;
}

static void sink_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    file_sink *s = (file_sink *)b;
    if (s->failed || !len) return;
    if (len >= SK_SAVE_DIRECT_MIN && s->m) {
        int r = copy_range(s->f, s->m, data, len);
        if (r == 0) return;
        if (r == -2) { s->failed = 1; return; }
    }
    if (fwrite(data, 1, len, s->f) != len) s->failed = 1;
}

static int write_block(FILE *f, const sk_model *m, const void *data, size_t len)
{
    if (len >= SK_SAVE_DIRECT_MIN) {
        int r = copy_range(f, m, data, len);
        if (r == 0) return 0;
        if (r == -2) return -1;
    }
    return fwrite(data, 1, len, f) == len ? 0 : -1;
}

/* A tensor edited for this save, and what to put back. */
typedef struct saved_tensor {
    sk_tensor_proto *t;
    sk_tensor_proto orig;
    Onnx__StringStringEntryProto **ext; /* entries we allocated */
    size_t n_ext;
} saved_tensor;

typedef struct save_plan {
    const sk_save_opts *opts;
    size_t min, align;
    saved_tensor *items;
    size_t n, cap;
    FILE *ext;          /* external data being written, or NULL */
    uint64_t ext_off;
    char **copy_files;  /* external files referenced as they are (keep mode) */
    size_t n_copy;
    sk_error *err;
} save_plan;

static saved_tensor *remember(save_plan *p, sk_tensor_proto *t)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        saved_tensor *a = realloc(p->items, cap * sizeof *a);
        if (!a) return NULL;
        p->items = a;
        p->cap = cap;
    }
    saved_tensor *s = &p->items[p->n++];
    s->t = t;
    s->orig = *t;
    s->ext = NULL;
    s->n_ext = 0;
    return s;
}

static Onnx__StringStringEntryProto *entry(const char *k, const char *v)
{
    Onnx__StringStringEntryProto *e = malloc(sizeof *e);
    if (!e) return NULL;
    onnx__string_string_entry_proto__init(e);
    e->key = strdup(k);
    e->value = strdup(v);
    if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        free(e);
        return NULL;
    }
    return e;
}

static void clear_data_fields(sk_tensor_proto *t)
{
    t->has_raw_data = 0;
    t->raw_data.data = NULL;
    t->raw_data.len = 0;
    t->n_float_data = 0; t->float_data = NULL;
    t->n_int32_data = 0; t->int32_data = NULL;
    t->n_int64_data = 0; t->int64_data = NULL;
    t->n_double_data = 0; t->double_data = NULL;
    t->n_uint64_data = 0; t->uint64_data = NULL;
    t->n_external_data = 0; t->external_data = NULL;
    t->has_data_location = 0;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
}

static sk_status to_external(save_plan *p, sk_model *m, sk_tensor_proto *t, const sk_tensor_view *v)
{
    static const uint8_t zeros[4096];
    uint64_t pad = (p->align - p->ext_off % p->align) % p->align;
    while (pad) {
        size_t k = pad > sizeof zeros ? sizeof zeros : (size_t)pad;
        if (fwrite(zeros, 1, k, p->ext) != k) return sk_error_set(p->err, SK_EIO, "writing external data failed: %s", strerror(errno));
        p->ext_off += k;
        pad -= k;
    }
    if (v->nbytes && write_block(p->ext, m, v->data, v->nbytes))
        return sk_error_set(p->err, SK_EIO, "writing external data failed: %s", strerror(errno));
    saved_tensor *s = remember(p, t);
    if (!s) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    char off[32], len[32];
    snprintf(off, sizeof off, "%" PRIu64, p->ext_off);
    snprintf(len, sizeof len, "%zu", v->nbytes);
    p->ext_off += v->nbytes;
    s->ext = calloc(3, sizeof *s->ext);
    if (!s->ext) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    s->ext[0] = entry("location", p->opts->external_data);
    s->ext[1] = entry("offset", off);
    s->ext[2] = entry("length", len);
    s->n_ext = 3;
    if (!s->ext[0] || !s->ext[1] || !s->ext[2]) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    clear_data_fields(t);
    t->external_data = s->ext;
    t->n_external_data = 3;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    return SK_OK;
}

static sk_status to_inline(save_plan *p, sk_tensor_proto *t, const sk_tensor_view *v)
{
    saved_tensor *s = remember(p, t);
    if (!s) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    clear_data_fields(t);
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)v->data;
    t->raw_data.len = v->nbytes;
    return SK_OK;
}

static sk_status plan_tensor(sk_model *m, sk_tensor_proto *t, sk_tensor_place place, const sk_node_proto *n, void *arg)
{
    (void)n;
    save_plan *p = arg;
    sk_storage st = sk_tensor_proto_storage(t);
    if (t->data_type == SK_STRING) {
        if (st == SK_STORE_EXTERNAL)
            return sk_error_set(p->err, SK_EUNSUPPORTED, "string tensor '%s' in external data", t->name ? t->name : "");
        return SK_OK;
    }
    int movable = place == SK_PLACE_INITIALIZER || place == SK_PLACE_CONSTANT;
    if (p->opts && p->opts->external_data) {
        int64_t nb = sk_tensor_proto_nbytes(t, p->err);
        if (nb < 0) return SK_EINVAL;
        if (movable && (size_t)nb >= p->min) {
            sk_tensor_view v;
            sk_status s = sk_model_tensor_view(m, t, &v, p->err);
            return s ? s : to_external(p, m, t, &v);
        }
    }
    if (st != SK_STORE_EXTERNAL) return SK_OK;
    if ((p->opts && (p->opts->inline_all || p->opts->external_data)) || !m->dir) {
        sk_tensor_view v;
        sk_status s = sk_model_tensor_view(m, t, &v, p->err);
        return s ? s : to_inline(p, t, &v);
    }
    /* keep: the file is referenced as it is */
    const char *loc; uint64_t off, len; int hl;
    sk_status s = sk_tensor_external_info(t, &loc, &off, &len, &hl, p->err);
    if (s) return s;
    for (size_t i = 0; i < p->n_copy; i++)
        if (!strcmp(p->copy_files[i], loc)) return SK_OK;
    char **a = realloc(p->copy_files, (p->n_copy + 1) * sizeof *a);
    if (!a) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    p->copy_files = a;
    a[p->n_copy++] = (char *)loc;
    return SK_OK;
}

static void restore(save_plan *p)
{
    for (size_t i = p->n; i-- > 0;) {
        saved_tensor *s = &p->items[i];
        for (size_t k = 0; k < s->n_ext; k++)
            if (s->ext[k]) protobuf_c_message_free_unpacked(&s->ext[k]->base, NULL);
        free(s->ext);
        *s->t = s->orig;
    }
    free(p->items);
    free(p->copy_files);
}

static char *path_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) { memcpy(d, path, n); d[n] = 0; }
    return d;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

static int same_dir(const char *a, const char *b)
{
    char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
    int same = ra && rb && !strcmp(ra, rb);
    free(ra);
    free(rb);
    return same;
}

static sk_status pack_to(sk_model *m, FILE *f, sk_error *err)
{
    file_sink sink = { { sink_append }, f, m, 0 };
    protobuf_c_message_pack_to_buffer(&m->proto->base, &sink.base);
    if (sink.failed || ferror(f)) return sk_error_set(err, SK_EIO, "write failed: %s", strerror(errno));
    return SK_OK;
}

sk_status sk_model_save(sk_model *m, const char *path, const sk_save_opts *opts, sk_error *err)
{
    save_plan p = { 0 };
    p.opts = opts;
    p.err = err;
    p.min = opts && opts->external_min ? opts->external_min : 1024;
    p.align = opts && opts->external_align ? opts->external_align : 64;
    sk_atomic_file ext = { 0 }, mf = { 0 }, *copies = NULL;
    ext.slot = mf.slot = -1;
    size_t n_copies = 0;
    char *outdir = path_dir(path);
    sk_status s = outdir ? SK_OK : sk_error_set(err, SK_ENOMEM, "out of memory");
    if (!s && opts && opts->external_data) {
        const char *e = opts->external_data;
        if (!*e || strchr(e, '/') || strchr(e, '\\') || !strcmp(e, ".") || !strcmp(e, ".."))
            s = sk_error_set(err, SK_EINVAL, "external data name '%s' must be a plain file name", e);
        char *ep = s ? NULL : join(outdir, e);
        if (!s && !ep) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        if (!s) s = sk_atomic_open(&ext, ep, 0644, err);
        free(ep);
        p.ext = ext.f;
    }
    if (!s) s = sk_model_visit_tensors(m, plan_tensor, &p);
    /* keep mode: external files referenced as they are come along, unless the
     * output is in the model's own folder */
    if (!s && p.n_copy && !same_dir(outdir, m->dir)) {
        copies = calloc(p.n_copy, sizeof *copies);
        if (!copies) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        for (size_t i = 0; !s && i < p.n_copy; i++) {
            const sk_map *mp;
            s = sk_model_external_map(m, p.copy_files[i], &mp, err);
            char *cp = s ? NULL : join(outdir, p.copy_files[i]);
            if (!s && !cp) s = sk_error_set(err, SK_ENOMEM, "out of memory");
            if (!s && strchr(p.copy_files[i], '/'))
                s = sk_error_set(err, SK_EUNSUPPORTED, "external data '%s' is in a subfolder: save with --external-data or --inline", p.copy_files[i]);
            if (!s) s = sk_atomic_open(&copies[i], cp, 0644, err);
            if (!s) {
                n_copies = i + 1;
                if (mp->len && write_block(copies[i].f, m, mp->base, mp->len))
                    s = sk_error_set(err, SK_EIO, "%s: write failed: %s", cp, strerror(errno));
            }
            free(cp);
        }
    }
    if (!s) s = sk_atomic_open(&mf, path, 0644, err);
    if (!s) {
        s = pack_to(m, mf.f, err);
        if (s) sk_error_prefix(err, "%s: ", path);
    }
    restore(&p);
    if (!s && ext.f) s = sk_atomic_commit(&ext, 0, err);
    for (size_t i = 0; !s && i < n_copies; i++) s = sk_atomic_commit(&copies[i], 0, err);
    if (!s) s = sk_atomic_commit(&mf, 0, err);
    if (s) {
        sk_atomic_abort(&ext);
        for (size_t i = 0; i < n_copies; i++) sk_atomic_abort(&copies[i]);
        sk_atomic_abort(&mf);
    }
    free(copies);
    free(outdir);
    return s;
}

sk_status sk_model_save_buffer(sk_model *m, uint8_t **buf, size_t *len, sk_error *err)
{
    sk_save_opts o = { 0 };
    o.inline_all = 1;
    save_plan p = { 0 };
    p.opts = &o;
    p.err = err;
    p.min = 1024;
    p.align = 64;
    *buf = NULL;
    *len = 0;
    sk_status s = sk_model_visit_tensors(m, plan_tensor, &p);
    if (!s) {
        size_t n = protobuf_c_message_get_packed_size(&m->proto->base);
        uint8_t *b = malloc(n ? n : 1);
        if (!b) s = sk_error_set(err, SK_ENOMEM, "out of memory");
        else {
            protobuf_c_message_pack(&m->proto->base, b);
            *buf = b;
            *len = n;
        }
    }
    restore(&p);
    return s;
}
