/* skiff-pack's library half: which tensors go to shards, in which order
 * (first use), the shard layout, model.onnx with external data, parallel
 * compression, the manifest and its signatures, all in a temporary folder
 * renamed into place at the end. docs/format.md section 2 is the spec. */
#include "sk_pack.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_model_internal.h"
#include "sk_pack_internal.h"

void sk_pack_opts_init(sk_pack_opts *o)
{
    memset(o, 0, sizeof *o);
    o->shard_size = SK_PACK_DEFAULT_SHARD_SIZE;
    o->external_min = SK_PACK_DEFAULT_EXTERNAL_MIN;
    o->codec = SK_CODEC_BROTLI;
    o->level = sk_codec_default_level(SK_CODEC_BROTLI);
    o->float_level = SK_PACK_FLOAT_LEVEL_AUTO;
}

/* ---- a string -> index map (open addressing, FNV-1a) ------------------------ */

typedef struct strmap {
    const char **keys;
    size_t *vals;
    size_t cap; /* a power of two */
} strmap;

static uint64_t fnv(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int strmap_init(strmap *m, size_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n + 2) m->cap *= 2;
    m->keys = calloc(m->cap, sizeof *m->keys);
    m->vals = calloc(m->cap, sizeof *m->vals);
    return m->keys && m->vals ? 0 : -1;
}

static void strmap_free(strmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* Index stored for key, or SIZE_MAX. */
static size_t strmap_get(const strmap *m, const char *key)
{
    for (size_t i = fnv(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) return SIZE_MAX;
        if (!strcmp(m->keys[i], key)) return m->vals[i];
    }
}

/* Adds key (not copied) unless present; returns 1 if added, 0 if present. The
 * map never fills: it is sized for the most keys it will get. */
static int strmap_add(strmap *m, const char *key, size_t val)
{
    for (size_t i = fnv(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            return 1;
        }
        if (!strcmp(m->keys[i], key)) return 0;
    }
}

/* ---- the plan ------------------------------------------------------------- */

typedef struct cand {
    sk_tensor_proto *t;
    const char *name;
    sk_tensor_view v;
    size_t order;   /* position in the layout, SIZE_MAX until placed */
    size_t shard;
    uint64_t offset;
} cand;

typedef struct shard {
    size_t first, count;  /* range of plan.order */
    uint64_t raw_size;
    sk_codec codec;
    uint64_t size;
    uint8_t sha256[SK_SHA256_BYTES], sha384[SK_SHA384_BYTES];
    uint8_t raw_sha256[SK_SHA256_BYTES], raw_sha384[SK_SHA384_BYTES];
    char raw_path[32], path[40];
    size_t first_piece, n_pieces; /* range of plan.pieces */
    atomic_size_t left;           /* pieces not yet compressed */
    int lgwin;                    /* Brotli window of the stream */
} shard;

/* A stretch of a shard compressed by one job. */
typedef struct piece {
    size_t shard;
    uint64_t offset, len;
    int level;
    uint8_t *out; /* compressed bytes, until the shard is written */
    size_t out_len;
} piece;

typedef struct plan {
    sk_model *m;
    const sk_pack_opts *o;
    sk_error *err;
    cand *cands;
    size_t n_cands, cap_cands;
    size_t n_weights;       /* initializers and Constant tensors seen */
    strmap names;           /* candidate name -> index */
    size_t *order;          /* candidate indices in layout order */
    size_t n_order;
    shard *shards;
    size_t n_shards;
    piece *pieces;
    size_t n_pieces, cap_pieces;
    sk_pack_tmpdir dir;
    pthread_mutex_t prog_mu; /* progress: raw bytes compressed so far */
    uint64_t prog_done, prog_total;
} plan;

static int is_constant(const sk_node_proto *n)
{
    return n->op_type && !strcmp(n->op_type, "Constant") && (!n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx"));
}

static sk_tensor_proto *constant_value(const sk_node_proto *n)
{
    for (size_t k = 0; k < n->n_attribute; k++)
        if (n->attribute[k]->name && !strcmp(n->attribute[k]->name, "value")) return n->attribute[k]->t;
    return NULL;
}

static sk_status add_cand(plan *p, sk_tensor_proto *t, const char *name)
{
    p->n_weights++;
    if (!t || t->data_type == SK_STRING || !name || !*name) return SK_OK;
    int64_t nb = sk_tensor_proto_nbytes(t, p->err);
    if (nb < 0) return sk_error_prefix(p->err, "tensor '%s': ", name);
    if (nb == 0 || (uint64_t)nb < p->o->external_min) return SK_OK;
    if (strmap_get(&p->names, name) != SIZE_MAX) return SK_OK; /* a name taken twice stays inline */
    if (p->n_cands == p->cap_cands) {
        size_t cap = p->cap_cands ? p->cap_cands * 2 : 256;
        cand *c = realloc(p->cands, cap * sizeof *c);
        if (!c) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
        p->cands = c;
        p->cap_cands = cap;
    }
    cand *c = &p->cands[p->n_cands];
    memset(c, 0, sizeof *c);
    c->t = t;
    c->name = name;
    c->order = SIZE_MAX;
    sk_status s = sk_model_tensor_view(p->m, t, &c->v, p->err);
    if (s) return sk_error_prefix(p->err, "tensor '%s': ", name);
    strmap_add(&p->names, name, p->n_cands++);
    return SK_OK;
}

/* Initializers and Constant tensors of g and its subgraphs, in file order. */
static sk_status collect(plan *p, sk_graph_proto *g, int depth)
{
    if (!g) return SK_OK;
    if (depth > 64) return sk_error_set(p->err, SK_EUNSUPPORTED, "subgraphs nested more than 64 deep");
    for (size_t i = 0; i < g->n_initializer; i++) {
        sk_status s = add_cand(p, g->initializer[i], g->initializer[i]->name);
        if (s) return s;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        sk_node_proto *n = g->node[i];
        if (is_constant(n)) {
            sk_tensor_proto *t = constant_value(n);
            if (t) {
                sk_status s = add_cand(p, t, n->n_output ? n->output[0] : NULL);
                if (s) return s;
            }
        }
        for (size_t k = 0; k < n->n_attribute; k++) {
            sk_attr_proto *a = n->attribute[k];
            sk_status s = collect(p, a->g, depth + 1);
            for (size_t j = 0; !s && j < a->n_graphs; j++) s = collect(p, a->graphs[j], depth + 1);
            if (s) return s;
        }
    }
    return SK_OK;
}

static size_t count_names(const sk_graph_proto *g)
{
    if (!g) return 0;
    size_t n = g->n_initializer;
    for (size_t i = 0; i < g->n_node; i++) {
        n++;
        for (size_t k = 0; k < g->node[i]->n_attribute; k++) {
            n += count_names(g->node[i]->attribute[k]->g);
            for (size_t j = 0; j < g->node[i]->attribute[k]->n_graphs; j++)
                n += count_names(g->node[i]->attribute[k]->graphs[j]);
        }
    }
    return n;
}

static void place(plan *p, const char *name)
{
    if (!name || !*name) return;
    size_t i = strmap_get(&p->names, name);
    if (i == SIZE_MAX || p->cands[i].order != SIZE_MAX) return;
    p->cands[i].order = p->n_order;
    p->order[p->n_order++] = i;
}

/* A min-heap of node indices, so that among ready nodes the earliest in the
 * file runs first (an already sorted graph keeps its order). */
static void heap_push(size_t *h, size_t *n, size_t v)
{
    size_t i = (*n)++;
    while (i && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static size_t heap_pop(size_t *h, size_t *n)
{
    size_t top = h[0], v = h[--*n], i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = v;
    return top;
}

/* The nodes of g in topological order (Kahn's algorithm over the edges of
 * direct inputs); nodes left over by a cycle follow in file order. */
static sk_status topo_order(plan *p, const sk_graph_proto *g, size_t **out)
{
    size_t n = g->n_node, n_edges = 0;
    for (size_t i = 0; i < n; i++) n_edges += g->node[i]->n_input;
    size_t *ord = malloc((n + 1) * sizeof *ord), *indeg = calloc(n + 1, sizeof *indeg);
    size_t *first = calloc(n + 2, sizeof *first), *edges = malloc((n_edges + 1) * sizeof *edges);
    size_t *heap = malloc((n + 1) * sizeof *heap), *fill = calloc(n + 1, sizeof *fill);
    unsigned char *done = calloc(n + 1, 1);
    strmap prod = { 0 };
    sk_status s = SK_OK;
    if (!ord || !indeg || !first || !edges || !heap || !fill || !done || strmap_init(&prod, n * 2)) {
        s = sk_error_set(p->err, SK_ENOMEM, "out of memory");
        goto out;
    }
    size_t n_out = 0;
    for (size_t i = 0; i < n; i++) n_out += g->node[i]->n_output;
    if (n_out > n * 2) {
        strmap_free(&prod);
        if (strmap_init(&prod, n_out)) {
            s = sk_error_set(p->err, SK_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < g->node[i]->n_output; k++)
            if (g->node[i]->output[k] && *g->node[i]->output[k]) strmap_add(&prod, g->node[i]->output[k], i);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++) {
            const char *in = g->node[i]->input[k];
            size_t pr = in && *in ? strmap_get(&prod, in) : SIZE_MAX;
            if (pr != SIZE_MAX && pr != i) {
                first[pr + 1]++;
                indeg[i]++;
            }
        }
    for (size_t i = 0; i < n; i++) first[i + 1] += first[i];
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++) {
            const char *in = g->node[i]->input[k];
            size_t pr = in && *in ? strmap_get(&prod, in) : SIZE_MAX;
            if (pr != SIZE_MAX && pr != i) edges[first[pr] + fill[pr]++] = i;
        }
    size_t hn = 0, no = 0;
    for (size_t i = 0; i < n; i++)
        if (!indeg[i]) heap_push(heap, &hn, i);
    while (hn) {
        size_t v = heap_pop(heap, &hn);
        ord[no++] = v;
        done[v] = 1;
        for (size_t e = first[v]; e < first[v + 1]; e++)
            if (--indeg[edges[e]] == 0) heap_push(heap, &hn, edges[e]);
    }
    for (size_t i = 0; i < n && no < n; i++)
        if (!done[i]) ord[no++] = i;
out:
    free(indeg);
    free(first);
    free(edges);
    free(heap);
    free(fill);
    free(done);
    strmap_free(&prod);
    if (s) {
        free(ord);
        return s;
    }
    *out = ord;
    return SK_OK;
}

/* Places tensors as the nodes of g first read them. */
static sk_status walk(plan *p, const sk_graph_proto *g, int depth)
{
    if (!g) return SK_OK;
    if (depth > 64) return sk_error_set(p->err, SK_EUNSUPPORTED, "subgraphs nested more than 64 deep");
    size_t *ord;
    sk_status s = topo_order(p, g, &ord);
    if (s) return s;
    for (size_t i = 0; !s && i < g->n_node; i++) {
        const sk_node_proto *n = g->node[ord[i]];
        for (size_t k = 0; k < n->n_input; k++) place(p, n->input[k]);
        for (size_t k = 0; !s && k < n->n_attribute; k++) {
            s = walk(p, n->attribute[k]->g, depth + 1);
            for (size_t j = 0; !s && j < n->attribute[k]->n_graphs; j++) s = walk(p, n->attribute[k]->graphs[j], depth + 1);
        }
    }
    for (size_t i = 0; !s && i < g->n_output; i++) place(p, g->output[i]->name);
    free(ord);
    return s;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

static sk_status layout(plan *p, sk_pack_result *res)
{
    uint64_t limit = p->o->shard_size, cur = 0;
    p->shards = calloc(p->n_order ? p->n_order : 1, sizeof *p->shards);
    if (!p->shards) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    uint64_t biggest = 0;
    for (size_t k = 0; k < p->n_order; k++) {
        cand *c = &p->cands[p->order[k]];
        uint64_t nb = c->v.nbytes, off = align_up(cur, SK_PACK_ALIGNMENT);
        if (p->n_shards == 0 || (cur > 0 && (nb > limit || off + nb > limit))) {
            if (p->n_shards == SK_MANIFEST_MAX_SHARDS)
                return sk_error_set(p->err, SK_EINVAL, "more than %d shards: use a larger --shard-size", SK_MANIFEST_MAX_SHARDS);
            shard *sh = &p->shards[p->n_shards++];
            sh->first = k;
            snprintf(sh->raw_path, sizeof sh->raw_path, "shard-%05zu.bin", p->n_shards - 1);
            off = 0;
        }
        shard *sh = &p->shards[p->n_shards - 1];
        c->shard = p->n_shards - 1;
        c->offset = off;
        sh->count++;
        cur = off + nb;
        sh->raw_size = cur;
        if (nb > limit) {
            res->n_oversized++;
            if (nb > biggest) {
                biggest = nb;
                snprintf(res->oversized, sizeof res->oversized, "%s", c->name);
            }
        }
    }
    return SK_OK;
}

/* ---- compression ----------------------------------------------------------- */

/* With Brotli, a shard is one stream compressed in parts (docs/format.md
 * section 2): runs of float and of other tensors, runs under PART_MIN bytes
 * joined to a neighbour and leveled by their majority, runs longer than
 * PIECE_MAX split into equal pieces so that one large tensor uses every
 * core. Each piece is one job; the job that completes a shard's last piece
 * joins the pieces, hashes and writes the shard. */
#define PART_MIN ((uint64_t)64 << 10)
#define PIECE_MAX ((uint64_t)4 << 20)

static int is_float(int32_t dtype)
{
    return dtype == SK_FLOAT || dtype == SK_FLOAT16 || dtype == SK_BFLOAT16 || dtype == SK_DOUBLE;
}

static sk_status add_piece(plan *p, size_t shard_i, uint64_t off, uint64_t len, int level)
{
    if (p->n_pieces == p->cap_pieces) {
        size_t cap = p->cap_pieces ? p->cap_pieces * 2 : 64;
        piece *n = realloc(p->pieces, cap * sizeof *n);
        if (!n) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
        p->pieces = n;
        p->cap_pieces = cap;
    }
    piece *pc = &p->pieces[p->n_pieces++];
    memset(pc, 0, sizeof *pc);
    pc->shard = shard_i;
    pc->offset = off;
    pc->len = len;
    pc->level = level;
    return SK_OK;
}

/* Adds the pieces of run [a, b) of a shard: one, or equal pieces (multiples
 * of the alignment) of at most PIECE_MAX bytes. */
static sk_status add_run(plan *p, size_t shard_i, uint64_t a, uint64_t b, int level)
{
    uint64_t k = (b - a + PIECE_MAX - 1) / PIECE_MAX;
    uint64_t step = k > 1 ? align_up((b - a + k - 1) / k, SK_PACK_ALIGNMENT) : b - a;
    for (uint64_t off = a; off < b; off += step) {
        sk_status s = add_piece(p, shard_i, off, b - off < step ? b - off : step, level);
        if (s) return s;
    }
    return SK_OK;
}

typedef struct run {
    uint64_t start, end, float_bytes;
} run;

/* The level of float tensors, SK_PACK_FLOAT_LEVEL_AUTO resolved. */
static int float_level(const plan *p)
{
    const sk_pack_opts *o = p->o;
    if (o->codec != SK_CODEC_BROTLI) return o->level;
    if (o->float_level != SK_PACK_FLOAT_LEVEL_AUTO) return o->float_level;
    uint64_t fl = 0, all = 0;
    for (size_t k = 0; k < p->n_order; k++) {
        const cand *c = &p->cands[p->order[k]];
        all += c->v.nbytes;
        if (is_float(c->v.dtype)) fl += c->v.nbytes;
    }
    return fl <= all / 4 && o->level < SK_PACK_FLOAT_LEVEL ? SK_PACK_FLOAT_LEVEL : o->level;
}

static sk_status plan_pieces(plan *p, int flevel)
{
    const sk_pack_opts *o = p->o;
    int can_part = o->codec == SK_CODEC_BROTLI && o->level >= 2 && flevel >= 2;
    int parts = can_part && flevel != o->level;
    run *runs = malloc((p->n_order ? p->n_order : 1) * sizeof *runs);
    if (!runs) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    sk_status s = SK_OK;
    for (size_t i = 0; !s && i < p->n_shards; i++) {
        shard *sh = &p->shards[i];
        sh->first_piece = p->n_pieces;
        sh->lgwin = sk_codec_brotli_window(sh->raw_size);
        if (!can_part) {
            s = add_piece(p, i, 0, sh->raw_size, o->level);
        } else {
            /* runs of float and of other tensors; a gap belongs to the run before it */
            size_t n = 0;
            for (size_t k = sh->first; k < sh->first + sh->count; k++) {
                const cand *c = &p->cands[p->order[k]];
                int fl = parts && is_float(c->v.dtype);
                if (n && (runs[n - 1].float_bytes > 0) == fl) {
                    runs[n - 1].end = c->offset + c->v.nbytes;
                } else {
                    if (n) runs[n - 1].end = c->offset;
                    runs[n].start = n ? c->offset : 0;
                    runs[n].end = c->offset + c->v.nbytes;
                    runs[n++].float_bytes = 0;
                }
                if (fl) runs[n - 1].float_bytes += c->v.nbytes;
            }
            /* short runs join their neighbour; then equal levels merge */
            size_t m = 0;
            for (size_t k = 0; k < n; k++) {
                if (m && (runs[k].end - runs[k].start < PART_MIN || runs[m - 1].end - runs[m - 1].start < PART_MIN)) {
                    runs[m - 1].end = runs[k].end;
                    runs[m - 1].float_bytes += runs[k].float_bytes;
                } else {
                    runs[m++] = runs[k];
                }
            }
            uint64_t start = 0;
            int level = -1;
            for (size_t k = 0; !s && k < m; k++) {
                int lv = 2 * runs[k].float_bytes >= runs[k].end - runs[k].start && parts ? flevel : o->level;
                if (k && lv != level) {
                    s = add_run(p, i, start, runs[k].start, level);
                    start = runs[k].start;
                }
                level = lv;
            }
            if (!s) s = add_run(p, i, start, sh->raw_size, level);
        }
        sh->n_pieces = p->n_pieces - sh->first_piece;
        atomic_init(&sh->left, sh->n_pieces);
    }
    free(runs);
    return s;
}

/* Bytes [off, off + len) of shard sh: a pointer into a tensor when they lie
 * in one, else a zero-filled copy (*buf, to free) with the tensors' bytes. */
static sk_status shard_bytes(const plan *p, const shard *sh, uint64_t off, uint64_t len, const uint8_t **out,
                             uint8_t **buf, sk_error *err)
{
    *buf = NULL;
    for (size_t k = sh->first; k < sh->first + sh->count; k++) {
        const cand *c = &p->cands[p->order[k]];
        if (c->offset <= off && off + len <= c->offset + c->v.nbytes) {
            *out = (const uint8_t *)c->v.data + (off - c->offset);
            return SK_OK;
        }
    }
    if (len > SIZE_MAX - 1) return sk_error_set(err, SK_ENOMEM, "shard too large for memory");
    uint8_t *b = calloc((size_t)len ? (size_t)len : 1, 1);
    if (!b) return sk_error_set(err, SK_ENOMEM, "out of memory (%" PRIu64 " bytes for %s)", len, sh->raw_path);
    for (size_t k = sh->first; k < sh->first + sh->count; k++) {
        const cand *c = &p->cands[p->order[k]];
        uint64_t a = c->offset > off ? c->offset : off;
        uint64_t e = c->offset + c->v.nbytes < off + len ? c->offset + c->v.nbytes : off + len;
        if (a < e) memcpy(b + (a - off), (const uint8_t *)c->v.data + (a - c->offset), (size_t)(e - a));
    }
    *out = b;
    *buf = b;
    return SK_OK;
}

/* Joins the compressed pieces of sh (or keeps its raw bytes when they are
 * not smaller), hashes both forms and writes the stored file. */
static sk_status shard_finish(plan *p, shard *sh, sk_error *err)
{
    const uint8_t *raw;
    uint8_t *rawbuf = NULL, *joined = NULL;
    sk_status s = shard_bytes(p, sh, 0, sh->raw_size, &raw, &rawbuf, err);
    if (s) return s;
    size_t raw_len = (size_t)sh->raw_size;
    sk_sha_pair hp;
    sk_sha_pair_init(&hp);
    sk_sha_pair_update(&hp, raw, raw_len);
    sk_sha_pair_final(&hp, sh->raw_sha256, sh->raw_sha384);
    piece *pcs = &p->pieces[sh->first_piece];
    uint64_t packed_len = 0;
    for (size_t k = 0; k < sh->n_pieces; k++) packed_len += pcs[k].out_len;
    sh->codec = p->o->codec;
    const uint8_t *stored = raw;
    sh->size = raw_len;
    if (sh->codec != SK_CODEC_NONE && packed_len < raw_len) {
        if (sh->n_pieces == 1) {
            stored = pcs[0].out;
        } else {
            joined = malloc((size_t)packed_len);
            if (!joined) s = sk_error_set(err, SK_ENOMEM, "out of memory (%" PRIu64 " bytes for %s)", packed_len, sh->raw_path);
            for (size_t k = 0, at = 0; !s && k < sh->n_pieces; at += pcs[k].out_len, k++)
                memcpy(joined + at, pcs[k].out, pcs[k].out_len);
            stored = joined;
        }
        sh->size = (size_t)packed_len;
        sk_sha_pair_init(&hp);
        sk_sha_pair_update(&hp, stored, sh->size);
        sk_sha_pair_final(&hp, sh->sha256, sh->sha384);
    } else { /* incompressible: store as is */
        sh->codec = SK_CODEC_NONE;
        memcpy(sh->sha256, sh->raw_sha256, sizeof sh->sha256);
        memcpy(sh->sha384, sh->raw_sha384, sizeof sh->sha384);
    }
    if (!s) {
        snprintf(sh->path, sizeof sh->path, "%s%s", sh->raw_path, sk_codec_suffix(sh->codec));
        s = sk_pack_file_write(p->dir.fd, p->dir.final_path, sh->path, stored, sh->size, err);
    }
    for (size_t k = 0; k < sh->n_pieces; k++) {
        free(pcs[k].out);
        pcs[k].out = NULL;
    }
    free(joined);
    free(rawbuf);
    return s;
}

static sk_status piece_job(void *arg, size_t i, sk_error *err)
{
    plan *p = arg;
    piece *pc = &p->pieces[i];
    shard *sh = &p->shards[pc->shard];
    sk_status s = SK_OK;
    if (p->o->codec != SK_CODEC_NONE) {
        const uint8_t *src;
        uint8_t *buf;
        s = shard_bytes(p, sh, pc->offset, pc->len, &src, &buf, err);
        if (!s && sh->n_pieces == 1)
            s = sk_codec_compress(p->o->codec, pc->level, src, (size_t)pc->len, &pc->out, &pc->out_len, err);
        else if (!s)
            s = sk_codec_brotli_part(pc->level, sh->lgwin, src, (size_t)pc->len, pc->offset,
                                     pc == &p->pieces[sh->first_piece + sh->n_pieces - 1], &pc->out, &pc->out_len, err);
        free(buf);
        if (s) return sk_error_prefix(err, "%s: ", sh->raw_path);
    }
    if (atomic_fetch_sub(&sh->left, 1) == 1) s = shard_finish(p, sh, err);
    if (!s && p->o->progress.fn) {
        pthread_mutex_lock(&p->prog_mu);
        p->prog_done += pc->len;
        sk_progress_report(&p->o->progress, "compressing", p->prog_done, p->prog_total);
        pthread_mutex_unlock(&p->prog_mu);
    }
    return s;
}

/* ---- model.onnx ------------------------------------------------------------ */

typedef struct edit {
    sk_tensor_proto *t;
    sk_tensor_proto orig;
    Onnx__StringStringEntryProto *ent[3];
    Onnx__StringStringEntryProto *ptr[3];
} edit;

typedef struct edits {
    edit *e;
    size_t n, cap;
    plan *p;
    const sk_tensor_proto **moved; /* candidate tensors, sorted by address */
} edits;

static void clear_data(sk_tensor_proto *t)
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

static edit *edit_new(edits *ed, sk_tensor_proto *t)
{
    if (ed->n == ed->cap) {
        size_t cap = ed->cap ? ed->cap * 2 : 256;
        edit *e = realloc(ed->e, cap * sizeof *e);
        if (!e) return NULL;
        ed->e = e;
        ed->cap = cap;
    }
    edit *e = &ed->e[ed->n++];
    memset(e, 0, sizeof *e);
    e->t = t;
    e->orig = *t;
    return e;
}

/* Makes room for n more edits, so that pointers into ed->e (external_data
 * arrays) stay valid while they are added. */
static int edits_reserve(edits *ed, size_t n)
{
    if (ed->cap - ed->n >= n) return 0;
    if (n > SIZE_MAX / sizeof *ed->e - ed->n) return -1;
    edit *e = realloc(ed->e, (ed->n + n) * sizeof *e);
    if (!e) return -1;
    ed->e = e;
    ed->cap = ed->n + n;
    return 0;
}

static void edits_restore(edits *ed)
{
    for (size_t i = ed->n; i-- > 0;) {
        edit *e = &ed->e[i];
        *e->t = e->orig;
        for (int k = 0; k < 3; k++)
            if (e->ent[k]) {
                free(e->ent[k]->key);
                free(e->ent[k]->value);
                free(e->ent[k]);
            }
    }
    free(ed->e);
    ed->e = NULL;
    ed->n = ed->cap = 0;
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

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (const void *const *)a, y = (uintptr_t) * (const void *const *)b;
    return x < y ? -1 : x > y;
}

/* Tensors that stay in model.onnx but were external in the input come inline. */
static sk_status inline_rest(sk_model *m, sk_tensor_proto *t, sk_tensor_place place, const sk_node_proto *n, void *arg)
{
    (void)place; (void)n;
    edits *ed = arg;
    if (sk_tensor_proto_storage(t) != SK_STORE_EXTERNAL) return SK_OK;
    const sk_tensor_proto *key = t;
    if (bsearch(&key, ed->moved, ed->p->n_order, sizeof *ed->moved, cmp_ptr)) return SK_OK;
    sk_tensor_view v;
    sk_status s = sk_model_tensor_view(m, t, &v, ed->p->err);
    if (s) return sk_error_prefix(ed->p->err, "tensor '%s': ", t->name ? t->name : "");
    edit *e = edit_new(ed, t);
    if (!e) return sk_error_set(ed->p->err, SK_ENOMEM, "out of memory");
    clear_data(t);
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)v.data;
    t->raw_data.len = v.nbytes;
    return SK_OK;
}

/* Serialises the model with every planned tensor as external data in its
 * shard; the protos are restored before returning. */
static sk_status model_bytes(plan *p, uint8_t **out, size_t *out_len)
{
    edits ed = { 0 };
    ed.p = p;
    ed.moved = malloc((p->n_order ? p->n_order : 1) * sizeof *ed.moved);
    if (!ed.moved) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    for (size_t k = 0; k < p->n_order; k++) ed.moved[k] = p->cands[p->order[k]].t;
    qsort(ed.moved, p->n_order, sizeof *ed.moved, cmp_ptr);
    sk_status s = sk_model_visit_tensors(p->m, inline_rest, &ed);
    if (!s && edits_reserve(&ed, p->n_order)) s = sk_error_set(p->err, SK_ENOMEM, "out of memory");
    for (size_t k = 0; !s && k < p->n_order; k++) {
        cand *c = &p->cands[p->order[k]];
        edit *e = edit_new(&ed, c->t);
        if (!e) {
            s = sk_error_set(p->err, SK_ENOMEM, "out of memory");
            break;
        }
        char off[32], len[32];
        snprintf(off, sizeof off, "%" PRIu64, c->offset);
        snprintf(len, sizeof len, "%zu", c->v.nbytes);
        e->ent[0] = entry("location", p->shards[c->shard].raw_path);
        e->ent[1] = entry("offset", off);
        e->ent[2] = entry("length", len);
        if (!e->ent[0] || !e->ent[1] || !e->ent[2]) {
            s = sk_error_set(p->err, SK_ENOMEM, "out of memory");
            break;
        }
        memcpy(e->ptr, e->ent, sizeof e->ptr);
        clear_data(c->t);
        c->t->external_data = e->ptr;
        c->t->n_external_data = 3;
        c->t->has_data_location = 1;
        c->t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    }
    if (!s) {
        ProtobufCMessage *msg = &sk_model_proto_of(p->m)->base;
        size_t n = protobuf_c_message_get_packed_size(msg);
        uint8_t *b = malloc(n ? n : 1);
        if (!b) s = sk_error_set(p->err, SK_ENOMEM, "out of memory (%zu bytes for model.onnx)", n);
        else {
            protobuf_c_message_pack(msg, b);
            *out = b;
            *out_len = n;
        }
    }
    edits_restore(&ed);
    free(ed.moved);
    return s;
}

/* ---- the manifest ---------------------------------------------------------- */

static char *xstrdup(const char *s, int *oom)
{
    char *r = strdup(s ? s : "");
    if (!r) *oom = 1;
    return r;
}

static void fill_value(sk_manifest_value *v, const sk_value_info *vi, int *oom)
{
    v->name = xstrdup(vi->name, oom);
    v->rank = -1;
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) return;
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    v->dtype = tt->has_elem_type && sk_dtype_valid(tt->elem_type) ? tt->elem_type : 0;
    if (!tt->shape || tt->shape->n_dim > SK_MANIFEST_MAX_RANK) return;
    v->rank = (int)tt->shape->n_dim;
    v->dims = calloc(tt->shape->n_dim ? tt->shape->n_dim : 1, sizeof *v->dims);
    if (!v->dims) {
        *oom = 1;
        v->rank = 0;
        return;
    }
    for (size_t k = 0; k < tt->shape->n_dim; k++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[k];
        v->dims[k].value = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0 &&
            (uint64_t)d->dim_value <= SK_MANIFEST_MAX_DIM)
            v->dims[k].value = d->dim_value;
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param && *d->dim_param)
            v->dims[k].param = xstrdup(d->dim_param, oom);
    }
}

static sk_status build_manifest(plan *p, const uint8_t model_sha256[32], const uint8_t model_sha384[48],
                                size_t model_len, sk_manifest **out)
{
    const sk_pack_opts *o = p->o;
    sk_model_proto *mp = sk_model_proto_of(p->m);
    sk_graph_proto *g = mp->graph;
    sk_manifest *m = calloc(1, sizeof *m);
    if (!m) return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    int oom = 0;
    m->format_version = SK_MANIFEST_FORMAT_VERSION;
    m->name = xstrdup(o->name, &oom);
    m->created = o->created;
    m->version = o->version ? o->version : (uint64_t)(o->created > 0 ? o->created : 1);
    m->generator = xstrdup("skiff " SK_VERSION, &oom);
    m->ir_version = mp->has_ir_version && mp->ir_version > 0 ? (uint64_t)mp->ir_version : 0;
    m->opsets = calloc(mp->n_opset_import ? mp->n_opset_import : 1, sizeof *m->opsets);
    if (!m->opsets) oom = 1;
    for (size_t i = 0; !oom && i < mp->n_opset_import; i++) {
        m->opsets[m->n_opsets].domain = xstrdup(mp->opset_import[i]->domain, &oom);
        m->opsets[m->n_opsets++].version = mp->opset_import[i]->version > 0 ? (uint64_t)mp->opset_import[i]->version : 0;
    }
    m->inputs = calloc(g->n_input ? g->n_input : 1, sizeof *m->inputs);
    m->outputs = calloc(g->n_output ? g->n_output : 1, sizeof *m->outputs);
    if (!m->inputs || !m->outputs) oom = 1;
    for (size_t i = 0; !oom && i < g->n_input; i++) {
        if (g->input[i]->name && sk_graph_initializer(g, g->input[i]->name)) continue; /* IR < 4 style */
        fill_value(&m->inputs[m->n_inputs++], g->input[i], &oom);
    }
    for (size_t i = 0; !oom && i < g->n_output; i++) fill_value(&m->outputs[m->n_outputs++], g->output[i], &oom);
    m->shard_size = o->shard_size;
    m->alignment = SK_PACK_ALIGNMENT;
    m->files = calloc(p->n_shards + 1, sizeof *m->files);
    if (!m->files) oom = 1;
    if (!oom) {
        sk_manifest_file *f = &m->files[m->n_files++];
        f->path = xstrdup(SK_MANIFEST_MODEL, &oom);
        f->raw_path = xstrdup(SK_MANIFEST_MODEL, &oom);
        f->role = SK_ROLE_MODEL;
        f->codec = SK_CODEC_NONE;
        f->size = f->raw_size = model_len;
        memcpy(f->sha256, model_sha256, 32);
        memcpy(f->raw_sha256, model_sha256, 32);
        memcpy(f->sha384, model_sha384, 48);
        memcpy(f->raw_sha384, model_sha384, 48);
    }
    for (size_t i = 0; !oom && i < p->n_shards; i++) {
        const shard *sh = &p->shards[i];
        sk_manifest_file *f = &m->files[m->n_files++];
        f->path = xstrdup(sh->path, &oom);
        f->raw_path = xstrdup(sh->raw_path, &oom);
        f->role = SK_ROLE_SHARD;
        f->codec = sh->codec;
        f->size = sh->size;
        f->raw_size = sh->raw_size;
        memcpy(f->sha256, sh->sha256, 32);
        memcpy(f->sha384, sh->sha384, 48);
        memcpy(f->raw_sha256, sh->raw_sha256, 32);
        memcpy(f->raw_sha384, sh->raw_sha384, 48);
    }
    m->tensors = calloc(p->n_order ? p->n_order : 1, sizeof *m->tensors);
    if (!m->tensors) oom = 1;
    for (size_t k = 0; !oom && k < p->n_order; k++) {
        const cand *c = &p->cands[p->order[k]];
        sk_manifest_tensor *t = &m->tensors[m->n_tensors++];
        t->name = xstrdup(c->name, &oom);
        t->file = c->shard + 1;
        t->offset = c->offset;
        t->length = c->v.nbytes;
        t->dtype = c->v.dtype;
        t->rank = c->v.rank;
        t->dims = calloc(c->v.rank ? (size_t)c->v.rank : 1, sizeof *t->dims);
        if (!t->dims) oom = 1;
        else if (c->v.rank) memcpy(t->dims, c->v.dims, (size_t)c->v.rank * sizeof *t->dims);
    }
    if (oom) {
        sk_manifest_free(m);
        return sk_error_set(p->err, SK_ENOMEM, "out of memory");
    }
    *out = m;
    return SK_OK;
}

/* ---- pack ------------------------------------------------------------------ */

sk_status sk_pack_write(sk_model *model, const char *pkgdir, const sk_pack_opts *o, sk_pack_result *res_out,
                        sk_error *err)
{
    sk_pack_result res;
    memset(&res, 0, sizeof res);
    if (o->shard_size < SK_MANIFEST_MIN_SHARD_SIZE || o->shard_size > SK_MANIFEST_MAX_FILE_SIZE)
        return sk_error_set(err, SK_EINVAL, "the shard size must be between 4 KiB and 1 TiB");
    int lmin, lmax;
    sk_codec_level_range(o->codec, &lmin, &lmax);
    if ((unsigned)o->codec >= SK_CODEC_COUNT || o->level < lmin || o->level > lmax)
        return sk_error_set(err, SK_EINVAL, "%s level %d is out of range (%d to %d)", sk_codec_name(o->codec), o->level, lmin, lmax);
    if (!sk_manifest_model_name_ok(o->name))
        return sk_error_set(err, SK_EINVAL, "'%s' is not a usable model name: 1 to %d characters of A-Z a-z 0-9 . _ - + @ /, starting with a letter or digit (--name)",
                            o->name ? o->name : "", SK_MANIFEST_MAX_MODEL_NAME);
    if (o->version > SK_MANIFEST_MAX_INT) return sk_error_set(err, SK_EINVAL, "the version must be at most 2^53 - 1");
    char tb[SK_MANIFEST_TIME_SIZE];
    if (o->codec == SK_CODEC_BROTLI && o->float_level != SK_PACK_FLOAT_LEVEL_AUTO && (o->float_level < lmin || o->float_level > lmax))
        return sk_error_set(err, SK_EINVAL, "brotli float level %d is out of range (%d to %d)", o->float_level, lmin, lmax);
    if (sk_manifest_time_format(o->created, tb))
        return sk_error_set(err, SK_EINVAL, "the creation time %" PRId64 " is outside the years 1970 to 9999", o->created);

    plan p;
    memset(&p, 0, sizeof p);
    p.m = model;
    p.o = o;
    p.err = err;
    p.dir.fd = -1;
    p.dir.slot = -1;
    sk_graph_proto *g = sk_model_graph(model);
    uint8_t *mbytes = NULL;
    char *manifest_text = NULL;
    size_t mlen = 0, manifest_len = 0;
    sk_manifest *man = NULL;
    sk_status s = strmap_init(&p.names, count_names(g)) ? sk_error_set(err, SK_ENOMEM, "out of memory") : SK_OK;
    if (!s) s = collect(&p, g, 0);
    if (!s) {
        p.order = malloc((p.n_cands ? p.n_cands : 1) * sizeof *p.order);
        if (!p.order) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    if (!s) s = walk(&p, g, 0);
    for (size_t i = 0; !s && i < p.n_cands; i++) /* unread tensors last, in file order */
        if (p.cands[i].order == SIZE_MAX) {
            p.cands[i].order = p.n_order;
            p.order[p.n_order++] = i;
        }
    if (!s) s = layout(&p, &res);
    int flevel = float_level(&p);
    if (!s) s = plan_pieces(&p, flevel);
    if (!s) s = model_bytes(&p, &mbytes, &mlen);
    if (!s) s = sk_pack_tmpdir_create(&p.dir, pkgdir, o->force, err);
    if (!s) {
        pthread_mutex_init(&p.prog_mu, NULL);
        for (size_t i = 0; i < p.n_shards; i++) p.prog_total += p.shards[i].raw_size;
        sk_progress_report(&o->progress, "compressing", 0, p.prog_total);
        s = sk_codec_run_jobs(p.n_pieces, o->threads, piece_job, &p, err);
        pthread_mutex_destroy(&p.prog_mu);
    }
    uint8_t msha256[32], msha384[48];
    if (!s) {
        sk_sha_pair hp;
        sk_sha_pair_init(&hp);
        sk_sha_pair_update(&hp, mbytes, mlen);
        sk_sha_pair_final(&hp, msha256, msha384);
        s = sk_pack_file_write(p.dir.fd, p.dir.final_path, SK_MANIFEST_MODEL, mbytes, mlen, err);
    }
    if (!s) s = build_manifest(&p, msha256, msha384, mlen, &man);
    if (!s) {
        s = sk_manifest_write(man, &manifest_text, &manifest_len, err);
        if (s) sk_error_prefix(err, "manifest: ");
    }
    if (!s) s = sk_pack_file_write(p.dir.fd, p.dir.final_path, SK_MANIFEST_NAME, manifest_text, manifest_len, err);
    if (!s && o->key) s = sk_pack_sign_files(p.dir.fd, p.dir.final_path, manifest_text, manifest_len, man, o->key, err);
    if (!s) s = sk_pack_tmpdir_commit(&p.dir, o->force, err);
    if (s) sk_pack_tmpdir_abort(&p.dir);

    if (!s) {
        res.n_tensors = p.n_order;
        res.n_inline = p.n_weights - p.n_order;
        res.n_shards = p.n_shards;
        for (size_t i = 0; i < p.n_shards; i++) {
            res.raw_bytes += p.shards[i].raw_size;
            res.stored_bytes += p.shards[i].size;
        }
        res.model_bytes = mlen;
        res.manifest_bytes = manifest_len;
        res.version = man->version;
        res.float_level = o->codec == SK_CODEC_BROTLI && o->level >= 2 && flevel >= 2 ? flevel : o->level;
        if (res_out) *res_out = res;
    }
    sk_manifest_free(man);
    free(manifest_text);
    free(mbytes);
    free(p.cands);
    free(p.order);
    for (size_t i = 0; i < p.n_pieces; i++) free(p.pieces[i].out); /* left by a failed job */
    free(p.pieces);
    free(p.shards);
    strmap_free(&p.names);
    return s;
}
