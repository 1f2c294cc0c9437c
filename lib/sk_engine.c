#include "sk_engine.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sk_fuse.h"
#include "sk_model.h"
#include "sk_npy.h"

/* Weights whose data is less aligned than this are copied at plan time. */
#define VIEW_ALIGN 16

/* ---- shared copies of unaligned constants ------------------------------ */

/* Kernels want constants 16-byte aligned; a model's inline (protobuf) or
 * external data often is not, so such a constant is copied. The copies are
 * shared by every engine of the process: keyed by the source's address and
 * size, reference-counted (one reference per engine slot that borrows it),
 * freed when the last engine using it is freed. While an engine holds a
 * reference its model is alive and unchanged (sk_engine.h), so a key in the
 * table always names the same bytes; engines on the same model (skiff-prune's
 * workers) or on models borrowing its tensors (the tails of sk_prune_tail)
 * then hold one copy of the weights between them instead of one each. */
typedef struct const_copy {
    const void *src;
    size_t nbytes;
    void *data; /* 64-byte aligned */
    size_t refs;
    struct const_copy *next;
} const_copy;

#define CONST_BUCKETS 1024
static pthread_mutex_t const_mu = PTHREAD_MUTEX_INITIALIZER;
static const_copy *const_table[CONST_BUCKETS];

static size_t const_bucket(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    x ^= x >> 17;
    x *= (uintptr_t)0x9E3779B97F4A7C15ull;
    return (size_t)(x >> 7) % CONST_BUCKETS;
}

/* The shared aligned copy of src[0..nbytes) (made now if no engine holds
 * one), with one more reference; NULL when out of memory. */
static void *const_copy_acquire(const void *src, size_t nbytes)
{
    size_t b = const_bucket(src);
    pthread_mutex_lock(&const_mu);
    const_copy *c = const_table[b];
    while (c && (c->src != src || c->nbytes != nbytes)) c = c->next;
    if (c) {
        c->refs++;
        pthread_mutex_unlock(&const_mu);
        return c->data;
    }
    c = malloc(sizeof *c);
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    void *d = c && rounded >= nbytes ? aligned_alloc(64, rounded) : NULL;
    if (!d) {
        free(c);
        pthread_mutex_unlock(&const_mu);
        return NULL;
    }
    memcpy(d, src, nbytes);
    *c = (const_copy){ src, nbytes, d, 1, const_table[b] };
    const_table[b] = c;
    pthread_mutex_unlock(&const_mu);
    return d;
}

/* Drops one reference to the copy of src[0..nbytes) (taken with
 * const_copy_acquire); the last one frees it. */
static void const_copy_release(const void *src, size_t nbytes)
{
    pthread_mutex_lock(&const_mu);
    for (const_copy **pp = &const_table[const_bucket(src)]; *pp; pp = &(*pp)->next) {
        const_copy *c = *pp;
        if (c->src != src || c->nbytes != nbytes) continue;
        assert(c->refs > 0);
        if (--c->refs == 0) {
            *pp = c->next;
            free(c->data);
            free(c);
        }
        break;
    }
    pthread_mutex_unlock(&const_mu);
}

/* ---- plan ------------------------------------------------------------- */

typedef enum slot_kind {
    SLOT_NODE,   /* produced by a step, owned by the frame */
    SLOT_INPUT,  /* graph input (maybe with an initializer as default) */
    SLOT_CONST,  /* initializer or Constant node: slot->cst */
    SLOT_OUTER   /* a value of the enclosing graph: parent slot ->outer */
} slot_kind;

typedef struct slot {
    const char *name;
    slot_kind kind;
    int producer;    /* SLOT_NODE: index of the step (in node order before sorting, then in run order) */
    int is_output;   /* a graph output: never freed by the frame */
    int outer;       /* SLOT_OUTER: the parent plan's slot */
    int has_default; /* SLOT_INPUT: cst holds the initializer */
    sk_tensor cst;   /* SLOT_CONST / default of SLOT_INPUT */
    const void *shared; /* cst borrows the shared aligned copy of this source (released when freed) */
} slot;

typedef struct plan plan;

typedef struct step {
    const Onnx__NodeProto *node;
    const sk_op_def *def;
    int64_t opset;
    size_t n_in, n_out;
    int *in;           /* slot per input, -1 for absent */
    int *out;          /* slot per output, -1 for unnamed */
    int *implicit;     /* outer values its subgraphs read (slots of this plan) */
    size_t n_implicit;
    int *frees;        /* slots released after this step */
    size_t n_frees;
    plan **sub;        /* subgraph plans, one per graph attribute */
    const char **sub_attr;
    size_t n_sub;
    int prof;          /* index into the engine's profile table */
    size_t index;      /* position of the node in its graph (for messages) */
    void *state;       /* the kernel's per-node state (sk_op_ctx.state) */
    void (*state_free)(void *);
    int shared;        /* a step of the fused plan that borrows in/out/implicit/sub from the plain plan's */
    int fused;         /* a fused group (lib/sk_fuse.h): its kernel names the failing node itself */
    int view;          /* output 0 may borrow input 0's storage: input 0 lives as long as output 0 */
} step;

struct plan {
    const Onnx__GraphProto *g;
    plan *parent;
    slot *slots;
    size_t n_slots, cap_slots;
    int *map;          /* open addressing: slot index + 1, 0 empty */
    size_t cap_map;
    step *steps;       /* the plain plan: one step per node */
    size_t n_steps;
    step *fsteps;      /* the fused plan (lib/sk_fuse.h); NULL when nothing fuses */
    size_t n_fsteps;
    int *inputs;       /* graph inputs in declaration order (slot) */
    size_t n_inputs;
    int *outputs;
    size_t n_outputs;
};

typedef struct prof_entry {
    const char *domain, *op;
    uint64_t calls;
    double seconds;
} prof_entry;

struct sk_engine {
    sk_model *model;
    plan *root;
    int threads;
    const sk_op_def *extra;
    int profile;
    sk_engine_hook hook;
    void *hook_user;
    /* bindable inputs of the root: required first, then initializer-backed */
    size_t n_required, n_bindable;
    int *bind;         /* root slot per bindable input */
    size_t cur_bytes, peak_bytes;
    uint64_t node_runs;
    prof_entry *prof;
    size_t n_prof;
    int no_fuse;       /* run the plain plans (sk_engine_set_fusion) */
};

typedef struct frame {
    sk_engine *e;
    const plan *p;
    const step *steps;       /* the plan's plain or fused steps */
    size_t n_steps;
    struct frame *parent;
    sk_tensor *store;        /* per slot */
    const sk_tensor **val;   /* per slot: current value or NULL */
    size_t cur_step;
} frame;

static size_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h ^ (h >> 32));
}

static int plan_lookup(const plan *p, const char *name)
{
    if (!p->cap_map) return -1;
    size_t mask = p->cap_map - 1;
    for (size_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
        int v = p->map[i];
        if (!v) return -1;
        if (!strcmp(p->slots[v - 1].name, name)) return v - 1;
    }
}

static sk_status map_grow(plan *p, sk_error *err)
{
    size_t cap = p->cap_map ? p->cap_map * 2 : 64;
    int *m = calloc(cap, sizeof *m);
    if (!m) return sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t s = 0; s < p->n_slots; s++) {
        size_t i = hash_str(p->slots[s].name) & (cap - 1);
        while (m[i]) i = (i + 1) & (cap - 1);
        m[i] = (int)s + 1;
    }
    free(p->map);
    p->map = m;
    p->cap_map = cap;
    return SK_OK;
}

/* Adds a slot named name (must not exist yet) and returns its index. */
static sk_status plan_add(plan *p, const char *name, slot_kind kind, int *idx, sk_error *err)
{
    if (p->n_slots >= INT_MAX / 2) return sk_error_set(err, SK_EINVAL, "graph has too many values");
    if (p->n_slots == p->cap_slots) {
        size_t cap = p->cap_slots ? p->cap_slots * 2 : 32;
        slot *s = realloc(p->slots, cap * sizeof *s);
        if (!s) return sk_error_set(err, SK_ENOMEM, "out of memory");
        p->slots = s;
        p->cap_slots = cap;
    }
    slot *s = &p->slots[p->n_slots];
    memset(s, 0, sizeof *s);
    s->name = name;
    s->kind = kind;
    s->producer = -1;
    s->outer = -1;
    p->n_slots++;
    if ((p->n_slots) * 2 > p->cap_map) {
        sk_status st = map_grow(p, err);
        if (st) return st;
    } else {
        size_t mask = p->cap_map - 1, i = hash_str(name) & mask;
        while (p->map[i]) i = (i + 1) & mask;
        p->map[i] = (int)p->n_slots;
    }
    *idx = (int)p->n_slots - 1;
    return SK_OK;
}

static void plan_free(plan *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_fsteps; i++) {
        step *st = &p->fsteps[i];
        if (!st->shared) {
            free(st->in);
            free(st->out);
        }
        free(st->frees);
        if (st->state_free) st->state_free(st->state);
    }
    free(p->fsteps);
    for (size_t i = 0; i < p->n_steps; i++) {
        step *st = &p->steps[i];
        free(st->in);
        free(st->out);
        free(st->implicit);
        free(st->frees);
        for (size_t j = 0; j < st->n_sub; j++) plan_free(st->sub[j]);
        free(st->sub);
        free(st->sub_attr);
        if (st->state_free) st->state_free(st->state);
    }
    for (size_t i = 0; i < p->n_slots; i++) {
        if (p->slots[i].shared) const_copy_release(p->slots[i].shared, p->slots[i].cst.nbytes);
        sk_tensor_free(&p->slots[i].cst);
    }
    free(p->steps);
    free(p->slots);
    free(p->map);
    free(p->inputs);
    free(p->outputs);
    free(p);
}

static const char *node_label(const Onnx__NodeProto *n, size_t index, char *buf, size_t cap)
{
    if (n->name && n->name[0]) return n->name;
    snprintf(buf, cap, "%s #%zu", n->op_type ? n->op_type : "?", index);
    return buf;
}

static const char *domain_name(const char *d)
{
    return d && d[0] ? d : "ai.onnx";
}

static const sk_op_def *find_in(const sk_op_def *table, const char *domain, const char *name, int64_t opset)
{
    const sk_op_def *best = NULL;
    const char *d = domain && strcmp(domain, "ai.onnx") ? domain : "";
    for (; table && table->name; table++) {
        const char *td = table->domain && strcmp(table->domain, "ai.onnx") ? table->domain : "";
        if (!strcmp(table->name, name) && !strcmp(td, d) && table->since <= opset &&
            (!best || table->since > best->since))
            best = table;
    }
    return best;
}

static const sk_op_def *op_lookup(const sk_op_def *extra, const char *domain, const char *name, int64_t opset)
{
    const sk_op_def *d = find_in(extra, domain, name, opset);
    return d ? d : sk_op_find(domain ? domain : "", name, opset);
}

int sk_engine_op_supported(const sk_engine_opts *opts, const char *domain, const char *op, int64_t opset)
{
    return op_lookup(opts ? opts->extra_ops : NULL, domain, op, opset) != NULL;
}

static int64_t domain_opset(sk_model *m, const char *domain)
{
    int64_t v = sk_model_opset(m, domain && domain[0] ? domain : "");
    /* Contrib domains are often used without an import: treat as version 1. */
    if (v == 0 && domain && domain[0] && strcmp(domain, "ai.onnx")) v = 1;
    return v;
}

/* Makes t a tensor over a TensorProto: a view of the model's data when it is
 * aligned, else a view of the process's shared aligned copy of it (*shared
 * set to the source: the caller releases the copy with const_copy_release). */
static sk_status const_tensor(sk_model *m, const Onnx__TensorProto *tp, sk_tensor *t, const void **shared,
                              sk_error *err)
{
    sk_tensor_view v;
    sk_status s = sk_model_tensor_view(m, tp, &v, err);
    if (s) return s;
    if (v.rank > SK_TENSOR_MAX_RANK)
        return sk_error_set(err, SK_EUNSUPPORTED, "tensor '%s' has rank %d (max %d)", tp->name ? tp->name : "",
                            v.rank, SK_TENSOR_MAX_RANK);
    if (((uintptr_t)v.data % VIEW_ALIGN) == 0 || !v.nbytes)
        return sk_tensor_borrow(t, v.dtype, v.rank, v.dims, v.data, v.nbytes, err);
    void *copy = const_copy_acquire(v.data, v.nbytes);
    if (!copy) return sk_error_set(err, SK_ENOMEM, "out of memory copying tensor '%s' (%zu bytes)",
                                   tp->name ? tp->name : "", v.nbytes);
    s = sk_tensor_borrow(t, v.dtype, v.rank, v.dims, copy, v.nbytes, err);
    if (s) {
        const_copy_release(v.data, v.nbytes);
        return s;
    }
    *shared = v.data;
    return SK_OK;
}

/* The tensor a Constant node defines (any of its value_* attributes). */
static sk_status constant_value(sk_model *m, const Onnx__NodeProto *n, sk_tensor *t, const void **shared,
                                sk_error *err)
{
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        const char *an = a->name ? a->name : "";
        if (!strcmp(an, "value") && a->t) return const_tensor(m, a->t, t, shared, err);
    }
    const sk_op_def *d = find_in(sk_ops_control, "", "Constant", INT64_MAX);
    if (!d) return sk_error_set(err, SK_EINTERNAL, "the Constant kernel is missing");
    sk_op_ctx ctx = { .node = n, .opset = INT64_MAX, .n_out = 1, .out = &t, .threads = 1, .err = err };
    return d->run(&ctx);
}

typedef struct compile_ctx {
    sk_engine *e;
    sk_model *m;
    int missing;              /* ops not found (the first one is reported) */
    sk_error first_missing;
    char scope[256];          /* "node 'L' (Loop), attribute body: " while compiling a subgraph */
} compile_ctx;

static sk_status compile_graph(compile_ctx *cc, const Onnx__GraphProto *g, plan *parent, plan **out,
                               sk_error *err);

/* Finds name in p, asking the enclosing plans (and adding SLOT_OUTER slots on
 * the way) when p does not define it. -1 when no scope has it. */
static sk_status resolve(plan *p, const char *name, int *idx, sk_error *err)
{
    int i = plan_lookup(p, name);
    if (i >= 0 || !p->parent) {
        *idx = i;
        return SK_OK;
    }
    int pi;
    sk_status s = resolve(p->parent, name, &pi, err);
    if (s) return s;
    if (pi < 0) {
        *idx = -1;
        return SK_OK;
    }
    s = plan_add(p, p->parent->slots[pi].name, SLOT_OUTER, &i, err);
    if (s) return s;
    p->slots[i].outer = pi;
    *idx = i;
    return SK_OK;
}

static sk_status add_unique(int **arr, size_t *n, int v, sk_error *err)
{
    for (size_t i = 0; i < *n; i++)
        if ((*arr)[i] == v) return SK_OK;
    int *a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a) return sk_error_set(err, SK_ENOMEM, "out of memory");
    a[(*n)++] = v;
    *arr = a;
    return SK_OK;
}

/* Orders p->steps so every step comes after the producers of what it reads
 * (stable: an already sorted graph keeps its order). */
static sk_status topo_sort(plan *p, sk_error *err)
{
    size_t n = p->n_steps;
    if (n == 0) return SK_OK;
    size_t *indeg = calloc(n, sizeof *indeg), *queue = malloc(n * sizeof *queue), *order = malloc(n * sizeof *order);
    size_t *head = malloc(n * sizeof *head), *cnt = calloc(n, sizeof *cnt);
    sk_status s = SK_OK;
    if (!indeg || !queue || !order || !head || !cnt) {
        s = sk_error_set(err, SK_ENOMEM, "out of memory");
        goto done;
    }
    int sorted = 1;
    for (size_t k = 0; k < n && sorted; k++) {
        step *st = &p->steps[k];
        for (size_t j = 0; j < st->n_in + st->n_implicit; j++) {
            int sl = j < st->n_in ? st->in[j] : st->implicit[j - st->n_in];
            if (sl >= 0 && p->slots[sl].kind == SLOT_NODE && (size_t)p->slots[sl].producer >= k) sorted = 0;
        }
    }
    if (sorted) goto done;
    /* Kahn's algorithm over edges producer -> consumer, counted per consumer. */
    for (size_t k = 0; k < n; k++) {
        step *st = &p->steps[k];
        for (size_t j = 0; j < st->n_in + st->n_implicit; j++) {
            int sl = j < st->n_in ? st->in[j] : st->implicit[j - st->n_in];
            if (sl >= 0 && p->slots[sl].kind == SLOT_NODE) {
                indeg[k]++;
                cnt[p->slots[sl].producer]++;
            }
        }
    }
    /* consumers of each step, flattened */
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        head[k] = total;
        total += cnt[k];
        cnt[k] = 0;
    }
    size_t *cons = malloc((total ? total : 1) * sizeof *cons);
    if (!cons) {
        s = sk_error_set(err, SK_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        step *st = &p->steps[k];
        for (size_t j = 0; j < st->n_in + st->n_implicit; j++) {
            int sl = j < st->n_in ? st->in[j] : st->implicit[j - st->n_in];
            if (sl >= 0 && p->slots[sl].kind == SLOT_NODE) {
                size_t pr = (size_t)p->slots[sl].producer;
                cons[head[pr] + cnt[pr]++] = k;
            }
        }
    }
    size_t qh = 0, qt = 0, no = 0;
    for (size_t k = 0; k < n; k++)
        if (!indeg[k]) queue[qt++] = k;
    while (qh < qt) {
        size_t k = queue[qh++];
        order[no++] = k;
        for (size_t c = 0; c < cnt[k]; c++)
            if (--indeg[cons[head[k] + c]] == 0) queue[qt++] = cons[head[k] + c];
    }
    free(cons);
    if (no != n) {
        char lb[64];
        size_t k = 0;
        while (k < n && !indeg[k]) k++;
        s = sk_error_set(err, SK_EINVAL, "the graph has a cycle through node '%s' (%s)",
                         node_label(p->steps[k].node, p->steps[k].index, lb, sizeof lb), p->steps[k].node->op_type);
        goto done;
    }
    step *ns = malloc(n * sizeof *ns);
    if (!ns) {
        s = sk_error_set(err, SK_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) ns[i] = p->steps[order[i]];
    free(p->steps);
    p->steps = ns;
done:
    if (!s)
        for (size_t k = 0; k < n; k++) /* producers in run order */
            for (size_t j = 0; j < p->steps[k].n_out; j++)
                if (p->steps[k].out[j] >= 0) p->slots[p->steps[k].out[j]].producer = (int)k;
    free(indeg);
    free(queue);
    free(order);
    free(head);
    free(cnt);
    return s;
}

static sk_status prof_index_of(sk_engine *e, const char *d, const char *op, int *idx, sk_error *err)
{
    for (size_t i = 0; i < e->n_prof; i++)
        if (!strcmp(e->prof[i].op, op) && !strcmp(e->prof[i].domain, d)) {
            *idx = (int)i;
            return SK_OK;
        }
    prof_entry *p = realloc(e->prof, (e->n_prof + 1) * sizeof *p);
    if (!p) return sk_error_set(err, SK_ENOMEM, "out of memory");
    e->prof = p;
    p[e->n_prof] = (prof_entry){ d, op, 0, 0 };
    *idx = (int)e->n_prof++;
    return SK_OK;
}

static sk_status prof_index(sk_engine *e, const Onnx__NodeProto *n, int *idx, sk_error *err)
{
    return prof_index_of(e, domain_name(n->domain), n->op_type, idx, err);
}

/* Fills the frees list of steps[0..n) (one of p's plans): each intermediate
 * value is released by the last step reading it, or by its producer when
 * nothing reads it. Values no step of this plan produces are left alone. */
static sk_status plan_frees(plan *p, step *steps, size_t n, sk_error *err)
{
    sk_status s = SK_OK;
    int *prod = malloc((p->n_slots + 1) * sizeof *prod), *last = malloc((p->n_slots + 1) * sizeof *last);
    if (!prod || !last) {
        s = sk_error_set(err, SK_ENOMEM, "out of memory compiling the graph");
        goto done;
    }
    for (size_t i = 0; i < p->n_slots; i++) prod[i] = last[i] = -1;
    for (size_t k = 0; k < n; k++) {
        step *st = &steps[k];
        for (size_t j = 0; j < st->n_out; j++)
            if (st->out[j] >= 0) prod[st->out[j]] = (int)k;
        for (size_t j = 0; j < st->n_in + st->n_implicit; j++) {
            int sl = j < st->n_in ? st->in[j] : st->implicit[j - st->n_in];
            if (sl >= 0) last[sl] = (int)k;
        }
    }
    /* a view's input lives as long as the view (later views first: chains) */
    for (size_t k = n; k-- > 0;) {
        const step *st = &steps[k];
        if (!st->view || st->n_in < 1 || st->n_out < 1 || st->in[0] < 0 || st->out[0] < 0) continue;
        if (last[st->out[0]] > last[st->in[0]]) last[st->in[0]] = last[st->out[0]];
    }
    for (size_t i = 0; i < p->n_slots; i++) {
        slot *sl = &p->slots[i];
        if (sl->kind != SLOT_NODE || sl->is_output || prod[i] < 0) continue;
        step *st = &steps[last[i] > prod[i] ? last[i] : prod[i]];
        int *f = realloc(st->frees, (st->n_frees + 1) * sizeof *f);
        if (!f) {
            s = sk_error_set(err, SK_ENOMEM, "out of memory compiling the graph");
            goto done;
        }
        f[st->n_frees++] = (int)i;
        st->frees = f;
    }
done:
    free(prod);
    free(last);
    return s;
}

/* Builds p's fused plan (lib/sk_fuse.h) from its plain one; p->fsteps stays
 * NULL when no group is found. */
static sk_status plan_fuse(compile_ctx *cc, plan *p, sk_error *err)
{
    size_t n = p->n_steps, ng = 0;
    sk_fuse_group *groups = NULL;
    sk_status s = SK_OK;
    if (n < 2) return SK_OK;
    sk_fuse_value *vals = calloc(p->n_slots + 1, sizeof *vals);
    sk_fuse_step *fs = calloc(n, sizeof *fs);
    int *owner = malloc(n * sizeof *owner);
    if (!vals || !fs || !owner) {
        s = sk_error_set(err, SK_ENOMEM, "out of memory compiling the graph");
        goto done;
    }
    for (size_t i = 0; i < p->n_slots; i++) {
        const slot *sl = &p->slots[i];
        vals[i].cst = sl->kind == SLOT_CONST ? &sl->cst : NULL;
        vals[i].producer = -1;
        vals[i].keep = sl->is_output;
    }
    for (size_t k = 0; k < n; k++) {
        const step *st = &p->steps[k];
        fs[k] = (sk_fuse_step){ .node = st->node, .index = st->index, .def = st->def, .opset = st->opset, .n_in = st->n_in,
                                .n_out = st->n_out, .in = st->in, .out = st->out, .has_subgraphs = st->n_sub > 0 };
        for (size_t j = 0; j < st->n_out; j++)
            if (st->out[j] >= 0) vals[st->out[j]].producer = (int)k;
        for (size_t j = 0; j < st->n_in + st->n_implicit; j++) {
            int sl = j < st->n_in ? st->in[j] : st->implicit[j - st->n_in];
            if (sl >= 0) vals[sl].n_uses++;
        }
        owner[k] = -1;
    }
    if ((s = sk_fuse_find(fs, n, vals, p->n_slots, &groups, &ng, err)) || !ng) goto done;
    size_t removed = 0;
    for (size_t g = 0; g < ng; g++) {
        for (size_t j = 0; j < groups[g].n_members; j++) owner[groups[g].members[j]] = (int)g;
        removed += groups[g].n_members - 1;
    }
    p->fsteps = calloc(n - removed + 1, sizeof *p->fsteps);
    if (!p->fsteps) {
        s = sk_error_set(err, SK_ENOMEM, "out of memory compiling the graph");
        goto done;
    }
    for (size_t k = 0; k < n; k++) {
        const step *st = &p->steps[k];
        step *d = &p->fsteps[p->n_fsteps];
        if (owner[k] < 0) {
            *d = *st;
            d->shared = 1;
            d->frees = NULL;
            d->n_frees = 0;
            d->state = NULL;
            d->state_free = NULL;
            p->n_fsteps++;
            continue;
        }
        sk_fuse_group *g = &groups[owner[k]];
        if (g->members[g->n_members - 1] != k) continue;
        memset(d, 0, sizeof *d);
        d->node = st->node;
        d->def = g->def;
        d->opset = st->opset;
        d->index = st->index;
        d->fused = 1;
        d->view = g->view;
        d->n_in = g->n_in;
        d->n_out = st->n_out;
        d->in = malloc((g->n_in + 1) * sizeof *d->in);
        d->out = malloc((st->n_out + 1) * sizeof *d->out);
        p->n_fsteps++; /* owns in/out from here on, freed with the plan */
        if (!d->in || !d->out) {
            s = sk_error_set(err, SK_ENOMEM, "out of memory compiling the graph");
            goto done;
        }
        memcpy(d->in, g->in, g->n_in * sizeof *d->in);
        memcpy(d->out, st->out, st->n_out * sizeof *d->out);
        d->state = g->state;
        d->state_free = g->state_free;
        g->state = NULL;
        g->state_free = NULL;
        if ((s = prof_index_of(cc->e, domain_name(g->def->domain), g->def->name, &d->prof, err))) goto done;
    }
    s = plan_frees(p, p->fsteps, p->n_fsteps, err);
done:
    sk_fuse_groups_free(groups, ng);
    free(vals);
    free(fs);
    free(owner);
    return s;
}

static sk_status compile_graph(compile_ctx *cc, const Onnx__GraphProto *g, plan *parent, plan **out,
                               sk_error *err)
{
    char lb[64];
    sk_status s = SK_OK;
    plan *p = calloc(1, sizeof *p);
    if (!p) return sk_error_set(err, SK_ENOMEM, "out of memory");
    p->g = g;
    p->parent = parent;
    *out = NULL;
    if ((s = map_grow(p, err))) goto fail;

    if (g->n_sparse_initializer) {
        s = sk_error_set(err, SK_EUNSUPPORTED, "sparse initializers are not supported (graph '%s')",
                         g->name ? g->name : "");
        goto fail;
    }
    /* Graph inputs. */
    p->inputs = calloc(g->n_input + 1, sizeof *p->inputs);
    if (!p->inputs) goto oom;
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        const char *nm = vi->name ? vi->name : "";
        if (!nm[0] || plan_lookup(p, nm) >= 0) {
            s = sk_error_set(err, SK_EINVAL, "graph input #%zu has %s name '%s'", i, nm[0] ? "a duplicate" : "an empty",
                             nm);
            goto fail;
        }
        if (vi->type && vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
            s = sk_error_set(err, SK_EUNSUPPORTED, "graph input '%s' is not a tensor (sequence, map and optional "
                             "values are not supported)", nm);
            goto fail;
        }
        int idx;
        if ((s = plan_add(p, nm, SLOT_INPUT, &idx, err))) goto fail;
        p->inputs[p->n_inputs++] = idx;
    }
    /* Initializers: constants, or defaults of inputs of the same name. */
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        const char *nm = tp->name ? tp->name : "";
        int idx = plan_lookup(p, nm);
        if (!nm[0] || (idx >= 0 && (p->slots[idx].kind != SLOT_INPUT || p->slots[idx].has_default))) {
            s = sk_error_set(err, SK_EINVAL, "initializer #%zu has %s name '%s'", i, nm[0] ? "a duplicate" : "an empty",
                             nm);
            goto fail;
        }
        if (idx < 0 && (s = plan_add(p, nm, SLOT_CONST, &idx, err))) goto fail;
        if ((s = const_tensor(cc->m, tp, &p->slots[idx].cst, &p->slots[idx].shared, err))) {
            sk_error_prefix(err, "initializer '%s': ", nm);
            goto fail;
        }
        if (p->slots[idx].kind == SLOT_INPUT) p->slots[idx].has_default = 1;
    }
    /* Node outputs; Constant nodes are evaluated now. */
    p->steps = calloc(g->n_node + 1, sizeof *p->steps);
    if (!p->steps) goto oom;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        if (!n->op_type || !n->op_type[0]) {
            s = sk_error_set(err, SK_EINVAL, "node #%zu has no op_type", k);
            goto fail;
        }
        int is_const = !strcmp(n->op_type, "Constant") && (!n->domain || !n->domain[0] || !strcmp(n->domain, "ai.onnx"));
        for (size_t j = 0; j < n->n_output; j++) {
            const char *nm = n->output[j] ? n->output[j] : "";
            if (!nm[0]) continue;
            if (plan_lookup(p, nm) >= 0) {
                s = sk_error_set(err, SK_EINVAL, "node '%s' (%s): value '%s' is already defined",
                                 node_label(n, k, lb, sizeof lb), n->op_type, nm);
                goto fail;
            }
            int idx;
            if ((s = plan_add(p, nm, is_const ? SLOT_CONST : SLOT_NODE, &idx, err))) goto fail;
            if (is_const) {
                if (j > 0 || (s = constant_value(cc->m, n, &p->slots[idx].cst, &p->slots[idx].shared, err))) {
                    if (!s) s = sk_error_set(err, SK_EINVAL, "Constant has more than one output");
                    sk_error_prefix(err, "node '%s' (Constant): ", node_label(n, k, lb, sizeof lb));
                    goto fail;
                }
            } else {
                p->slots[idx].producer = (int)p->n_steps;
            }
        }
        if (is_const) continue;
        step *st = &p->steps[p->n_steps++];
        st->node = n;
        st->index = k;
        st->opset = domain_opset(cc->m, n->domain);
        st->def = op_lookup(cc->e->extra, n->domain, n->op_type, st->opset);
        if (!st->def) {
            if (!cc->missing++) {
                const sk_op_def *later = op_lookup(cc->e->extra, n->domain, n->op_type, INT64_MAX);
                char extra[96] = "";
                if (later) snprintf(extra, sizeof extra, " (skiff has it from opset %d)", later->since);
                sk_error_set(&cc->first_missing, SK_EUNSUPPORTED,
                             "%snode '%s' (%s): op %s of domain '%s' (opset %lld) is not implemented%s", cc->scope,
                             node_label(n, k, lb, sizeof lb), n->op_type, n->op_type, domain_name(n->domain),
                             (long long)st->opset, extra);
            }
        }
        if ((s = prof_index(cc->e, n, &st->prof, err))) goto fail;
    }
    /* Subgraphs (they may add SLOT_OUTER slots to this plan), then inputs. */
    for (size_t k = 0; k < p->n_steps; k++) {
        step *st = &p->steps[k];
        const Onnx__NodeProto *n = st->node;
        for (size_t a = 0; a < n->n_attribute; a++) {
            const Onnx__AttributeProto *at = n->attribute[a];
            if (at->n_graphs) {
                s = sk_error_set(err, SK_EUNSUPPORTED, "node '%s' (%s): graphs-valued attributes are not supported",
                                 node_label(n, st->index, lb, sizeof lb), n->op_type);
                goto fail;
            }
            if (!at->g) continue;
            plan **sub = realloc(st->sub, (st->n_sub + 1) * sizeof *sub);
            if (!sub) goto oom;
            st->sub = sub;
            const char **sa = realloc(st->sub_attr, (st->n_sub + 1) * sizeof *sa);
            if (!sa) goto oom;
            st->sub_attr = sa;
            sa[st->n_sub] = at->name ? at->name : "";
            sub[st->n_sub] = NULL;
            size_t sl = strlen(cc->scope);
            snprintf(cc->scope + sl, sizeof cc->scope - sl, "node '%s' (%s), attribute %s: ",
                     node_label(n, st->index, lb, sizeof lb), n->op_type, sa[st->n_sub]);
            s = compile_graph(cc, at->g, p, &sub[st->n_sub], err);
            cc->scope[sl] = 0;
            st->n_sub++;
            if (s) {
                sk_error_prefix(err, "node '%s' (%s), attribute %s: ", node_label(n, st->index, lb, sizeof lb), n->op_type,
                                at->name ? at->name : "");
                goto fail;
            }
            plan *sp = sub[st->n_sub - 1];
            for (size_t i = 0; i < sp->n_slots; i++)
                if (sp->slots[i].kind == SLOT_OUTER && (s = add_unique(&st->implicit, &st->n_implicit, sp->slots[i].outer, err)))
                    goto fail;
        }
        st->n_in = n->n_input;
        st->n_out = n->n_output;
        st->in = malloc((st->n_in + 1) * sizeof *st->in);
        st->out = malloc((st->n_out + 1) * sizeof *st->out);
        if (!st->in || !st->out) goto oom;
        for (size_t j = 0; j < st->n_in; j++) {
            const char *nm = n->input[j] ? n->input[j] : "";
            st->in[j] = -1;
            if (!nm[0]) continue;
            if ((s = resolve(p, nm, &st->in[j], err))) goto fail;
            if (st->in[j] < 0) {
                s = sk_error_set(err, SK_EINVAL, "node '%s' (%s): input '%s' is not produced by any node, nor a "
                                 "graph input or initializer", node_label(n, st->index, lb, sizeof lb), n->op_type, nm);
                goto fail;
            }
        }
        for (size_t j = 0; j < st->n_out; j++)
            st->out[j] = n->output[j] && n->output[j][0] ? plan_lookup(p, n->output[j]) : -1;
    }
    /* Graph outputs. */
    p->outputs = calloc(g->n_output + 1, sizeof *p->outputs);
    if (!p->outputs) goto oom;
    for (size_t i = 0; i < g->n_output; i++) {
        const char *nm = g->output[i]->name ? g->output[i]->name : "";
        int idx;
        if ((s = resolve(p, nm, &idx, err))) goto fail;
        if (idx < 0) {
            s = sk_error_set(err, SK_EINVAL, "graph output '%s' is not produced by any node", nm);
            goto fail;
        }
        if (g->output[i]->type && g->output[i]->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
            s = sk_error_set(err, SK_EUNSUPPORTED, "graph output '%s' is not a tensor (sequence, map and optional "
                             "values are not supported)", nm);
            goto fail;
        }
        p->outputs[p->n_outputs++] = idx;
        p->slots[idx].is_output = 1;
    }
    if ((s = topo_sort(p, err))) goto fail;
    if ((s = plan_frees(p, p->steps, p->n_steps, err))) goto fail;
    if (!cc->missing && (s = plan_fuse(cc, p, err))) goto fail;
    *out = p;
    return SK_OK;
oom:
    s = sk_error_set(err, SK_ENOMEM, "out of memory compiling the graph");
fail:
    plan_free(p);
    return s;
}

/* ---- engine ----------------------------------------------------------- */

static const Onnx__TypeProto__Tensor *tensor_type(const Onnx__ValueInfoProto *vi)
{
    if (!vi || !vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) return NULL;
    return vi->type->tensor_type;
}

sk_status sk_engine_create(sk_model *m, const sk_engine_opts *opts, sk_engine **out, sk_error *err)
{
    *out = NULL;
    const Onnx__GraphProto *g = sk_model_graph(m);
    if (!g) return sk_error_set(err, SK_EINVAL, "the model has no graph");
    sk_engine *e = calloc(1, sizeof *e);
    if (!e) return sk_error_set(err, SK_ENOMEM, "out of memory");
    e->model = m;
    e->threads = opts && opts->threads > 1 ? opts->threads : 1;
    e->extra = opts ? opts->extra_ops : NULL;
    e->profile = opts ? opts->profile : 0;
    compile_ctx cc = { .e = e, .m = m };
    sk_status s = compile_graph(&cc, g, NULL, &e->root, err);
    if (!s && cc.missing) {
        if (err) {
            *err = cc.first_missing;
            if (cc.missing > 1) {
                size_t l = strlen(err->msg);
                snprintf(err->msg + l, sizeof err->msg - l, " (and %d more nodes with missing ops)", cc.missing - 1);
            }
        }
        s = SK_EUNSUPPORTED;
    }
    if (s) {
        sk_engine_free(e);
        return s;
    }
    plan *p = e->root;
    e->bind = malloc((p->n_inputs + 1) * sizeof *e->bind);
    if (!e->bind) {
        sk_engine_free(e);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < p->n_inputs; i++)
            if (p->slots[p->inputs[i]].has_default == pass) e->bind[e->n_bindable++] = p->inputs[i];
    for (size_t i = 0; i < p->n_inputs; i++) e->n_required += !p->slots[p->inputs[i]].has_default;
    *out = e;
    return SK_OK;
}

void sk_engine_free(sk_engine *e)
{
    if (!e) return;
    plan_free(e->root);
    free(e->bind);
    free(e->prof);
    free(e);
}

size_t sk_engine_input_count(const sk_engine *e) { return e->n_required; }

const char *sk_engine_input_name(const sk_engine *e, size_t i)
{
    return i < e->n_bindable ? e->root->slots[e->bind[i]].name : NULL;
}

static const Onnx__ValueInfoProto *input_vi(const sk_engine *e, size_t i)
{
    const char *nm = e->root->slots[e->bind[i]].name;
    for (size_t k = 0; k < e->root->g->n_input; k++)
        if (!strcmp(e->root->g->input[k]->name, nm)) return e->root->g->input[k];
    return NULL;
}

void sk_engine_input_info(const sk_engine *e, size_t i, int *dtype, int *rank, int64_t *dims)
{
    const Onnx__TypeProto__Tensor *tt = i < e->n_bindable ? tensor_type(input_vi(e, i)) : NULL;
    if (dtype) *dtype = tt && tt->has_elem_type ? tt->elem_type : 0;
    if (rank) *rank = tt && tt->shape ? (int)tt->shape->n_dim : -1;
    if (dims && tt && tt->shape)
        for (size_t d = 0; d < tt->shape->n_dim && d < SK_TENSOR_MAX_RANK; d++)
            dims[d] = tt->shape->dim[d]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                          ? tt->shape->dim[d]->dim_value : -1;
}

int64_t sk_engine_input_find(const sk_engine *e, const char *name)
{
    for (size_t i = 0; i < e->n_bindable; i++)
        if (!strcmp(e->root->slots[e->bind[i]].name, name)) return (int64_t)i;
    return -1;
}

size_t sk_engine_output_count(const sk_engine *e) { return e->root->n_outputs; }

const char *sk_engine_output_name(const sk_engine *e, size_t i)
{
    return i < e->root->n_outputs ? e->root->g->output[i]->name : NULL;
}

int sk_engine_output_dtype(const sk_engine *e, size_t i)
{
    const Onnx__TypeProto__Tensor *tt = i < e->root->n_outputs ? tensor_type(e->root->g->output[i]) : NULL;
    return tt && tt->has_elem_type ? tt->elem_type : 0;
}

void sk_engine_set_hook(sk_engine *e, sk_engine_hook hook, void *user)
{
    e->hook = hook;
    e->hook_user = user;
}

size_t sk_engine_peak_bytes(const sk_engine *e) { return e->peak_bytes; }

void sk_engine_set_fusion(sk_engine *e, int on) { e->no_fuse = !on; }

size_t sk_engine_step_count(const sk_engine *e, int fused)
{
    return fused && e->root->fsteps ? e->root->n_fsteps : e->root->n_steps;
}
uint64_t sk_engine_node_runs(const sk_engine *e) { return e->node_runs; }

static int prof_cmp(const void *a, const void *b)
{
    const prof_entry *x = *(prof_entry *const *)a, *y = *(prof_entry *const *)b;
    return x->seconds < y->seconds ? 1 : x->seconds > y->seconds ? -1 : strcmp(x->op, y->op);
}

void sk_engine_profile(const sk_engine *e,
                       void (*fn)(void *arg, const char *domain, const char *op, uint64_t calls, double seconds),
                       void *arg)
{
    const prof_entry **v = malloc((e->n_prof + 1) * sizeof *v);
    if (!v) return;
    for (size_t i = 0; i < e->n_prof; i++) v[i] = &e->prof[i];
    qsort(v, e->n_prof, sizeof *v, prof_cmp);
    for (size_t i = 0; i < e->n_prof; i++)
        if (v[i]->calls) fn(arg, v[i]->domain, v[i]->op, v[i]->calls, v[i]->seconds);
    free(v);
}

/* ---- running ---------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void frame_release(frame *f)
{
    if (!f->store) return;
    for (size_t i = 0; i < f->p->n_slots; i++) {
        if (f->store[i].data) {
            if (f->store[i].owned)
                f->e->cur_bytes -= f->store[i].nbytes < f->e->cur_bytes ? f->store[i].nbytes : f->e->cur_bytes;
            sk_tensor_free(&f->store[i]);
        }
    }
    free(f->store);
    free(f->val);
    f->store = NULL;
    f->val = NULL;
}

static sk_status frame_init(frame *f, sk_engine *e, const plan *p, frame *parent, sk_error *err)
{
    memset(f, 0, sizeof *f);
    f->e = e;
    f->p = p;
    f->parent = parent;
    /* a hook must see every intermediate value: only the plain plan has them */
    int fused = p->fsteps && !e->hook && !e->no_fuse;
    f->steps = fused ? p->fsteps : p->steps;
    f->n_steps = fused ? p->n_fsteps : p->n_steps;
    f->store = calloc(p->n_slots + 1, sizeof *f->store);
    f->val = calloc(p->n_slots + 1, sizeof *f->val);
    if (!f->store || !f->val) {
        frame_release(f);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < p->n_slots; i++) {
        const slot *s = &p->slots[i];
        if (s->kind == SLOT_CONST || (s->kind == SLOT_INPUT && s->has_default)) f->val[i] = &s->cst;
        else if (s->kind == SLOT_OUTER) f->val[i] = parent->val[s->outer];
    }
    return SK_OK;
}

/* A kernel's output must be a consistent tensor. */
static sk_status check_output(const sk_tensor *t, size_t j, sk_error *err)
{
    if (!t->data)
        return sk_error_set(err, SK_EINTERNAL, "the kernel did not produce output %zu", j);
    if (!sk_dtype_valid(t->dtype) || t->rank < 0 || t->rank > SK_TENSOR_MAX_RANK ||
        sk_shape_numel(t->rank, t->dims) != t->numel || sk_dtype_nbytes(t->dtype, t->numel) != (int64_t)t->nbytes)
        return sk_error_set(err, SK_EINTERNAL, "the kernel produced an inconsistent tensor as output %zu", j);
    return SK_OK;
}

static void account(sk_engine *e, size_t add)
{
    e->cur_bytes += add;
    if (e->cur_bytes > e->peak_bytes) e->peak_bytes = e->cur_bytes;
}

static sk_status run_step(frame *f, size_t k, sk_error *err)
{
    const plan *p = f->p;
    const step *st = &f->steps[k];
    sk_engine *e = f->e;
    char lb[64];
    enum { SMALL = 8 };
    const sk_tensor *in_small[SMALL];
    sk_tensor *out_small[SMALL];
    sk_tensor scratch_small[SMALL];
    const sk_tensor **in = st->n_in <= SMALL ? in_small : malloc(st->n_in * sizeof *in);
    sk_tensor **outp = st->n_out <= SMALL ? out_small : malloc(st->n_out * sizeof *outp);
    sk_tensor *scratch = st->n_out <= SMALL ? scratch_small : calloc(st->n_out, sizeof *scratch);
    sk_status s = SK_OK;
    if (!in || !outp || !scratch) {
        s = sk_error_set(err, SK_ENOMEM, "out of memory");
        goto done;
    }
    memset(scratch, 0, st->n_out * sizeof *scratch);
    for (size_t j = 0; j < st->n_in; j++) {
        in[j] = st->in[j] >= 0 ? f->val[st->in[j]] : NULL;
        if (st->in[j] >= 0 && !in[j]) {
            s = sk_error_set(err, SK_EINTERNAL, "input '%s' has no value when the node runs", st->node->input[j]);
            goto wrap;
        }
    }
    for (size_t j = 0; j < st->n_out; j++) {
        int sl = st->out[j];
        outp[j] = sl >= 0 ? &f->store[sl] : &scratch[j];
        sk_tensor_free(outp[j]);
    }
    sk_error kerr = { SK_OK, "" };
    uint64_t cmask = 0;
    for (size_t j = 0; j < st->n_in && j < 64; j++)
        if (st->in[j] >= 0 && in[j] == &p->slots[st->in[j]].cst) cmask |= (uint64_t)1 << j;
    step *mst = (step *)st; /* the kernel state is the one mutable part of a plan */
    sk_op_ctx ctx = {
        .node = st->node, .opset = st->opset, .n_in = st->n_in, .in = in, .n_out = st->n_out, .out = outp,
        .threads = e->threads, .err = &kerr, .engine = f,
        .state = &mst->state, .state_free = &mst->state_free, .const_inputs = cmask,
    };
    f->cur_step = k;
    double t0 = e->profile ? now_seconds() : 0;
    s = st->def->run(&ctx);
    if (e->profile) {
        e->prof[st->prof].calls++;
        e->prof[st->prof].seconds += now_seconds() - t0;
    }
    e->node_runs++;
    if (s) {
        if (!kerr.msg[0]) sk_error_set(&kerr, s, "failed (%s)", sk_status_name(s));
        kerr.code = s;
        if (err) *err = kerr;
        if (st->fused) goto done; /* the fused kernel named the node that failed */
        goto wrap;
    }
    for (size_t j = 0; j < st->n_out; j++)
        if ((st->out[j] >= 0 || scratch[j].data) && (s = check_output(outp[j], j, err))) goto wrap;
    size_t added = 0;
    for (size_t j = 0; j < st->n_out; j++) {
        int sl = st->out[j];
        if (sl < 0) continue;
        if (e->hook) {
            s = e->hook(e->hook_user, p->slots[sl].name, st->node, outp[j]);
            if (s) {
                sk_error_set(err, s, "the hook failed (%s)", sk_status_name(s));
                sk_error_prefix(err, "value '%s': ", p->slots[sl].name);
                goto wrap;
            }
            if ((s = check_output(outp[j], j, err))) {
                sk_error_prefix(err, "value '%s' after the hook: ", p->slots[sl].name);
                goto done;
            }
        }
        f->val[sl] = outp[j];
        if (outp[j]->owned) added += outp[j]->nbytes; /* a view's bytes are its input's */
    }
    for (size_t j = 0; j < st->n_out; j++) added += scratch[j].nbytes;
    account(e, added);
    for (size_t j = 0; j < st->n_out; j++) {
        e->cur_bytes -= scratch[j].nbytes;
        sk_tensor_free(&scratch[j]);
    }
    for (size_t i = 0; i < st->n_frees; i++) {
        int sl = st->frees[i];
        if (f->store[sl].owned)
            e->cur_bytes -= f->store[sl].nbytes < e->cur_bytes ? f->store[sl].nbytes : e->cur_bytes;
        sk_tensor_free(&f->store[sl]);
        f->val[sl] = NULL;
    }
    goto done;
wrap:
    sk_error_prefix(err, "node '%s' (%s): ", node_label(st->node, st->index, lb, sizeof lb), st->node->op_type);
done:
    if (scratch)
        for (size_t j = 0; j < st->n_out; j++) sk_tensor_free(&scratch[j]);
    if (in != in_small) free(in);
    if (outp != out_small) free(outp);
    if (scratch != scratch_small) free(scratch);
    return s;
}

/* Runs the steps of f (inputs already bound) and moves or copies the graph
 * outputs into out[0..n_outputs). */
static sk_status frame_run(frame *f, sk_tensor *out, sk_error *err)
{
    const plan *p = f->p;
    sk_status s = SK_OK;
    for (size_t k = 0; k < f->n_steps; k++)
        if ((s = run_step(f, k, err))) return s;
    for (size_t i = 0; i < p->n_outputs; i++) {
        int sl = p->outputs[i];
        const sk_tensor *v = f->val[sl];
        if (!v) return sk_error_set(err, SK_EINTERNAL, "graph output '%s' has no value", p->slots[sl].name);
        int moved_before = 0;
        for (size_t j = 0; j < i; j++) moved_before |= p->outputs[j] == sl;
        if (p->slots[sl].kind == SLOT_NODE && !moved_before && v == &f->store[sl] && f->store[sl].owned) {
            f->e->cur_bytes -= f->store[sl].nbytes < f->e->cur_bytes ? f->store[sl].nbytes : f->e->cur_bytes;
            sk_tensor_free(&out[i]);
            out[i] = f->store[sl];
            memset(&f->store[sl], 0, sizeof f->store[sl]);
            f->val[sl] = &out[i];
        } else if ((s = sk_tensor_copy(&out[i], v, err))) {
            return s;
        }
    }
    return SK_OK;
}

sk_status sk_engine_run(sk_engine *e, size_t n_in, const char *const *names, const sk_tensor *const *inputs,
                        sk_tensor *outputs, sk_error *err)
{
    const plan *p = e->root;
    char sb[128];
    for (size_t i = 0; i < p->n_outputs; i++) sk_tensor_free(&outputs[i]);
    e->cur_bytes = e->peak_bytes = 0;
    e->node_runs = 0;
    frame f;
    sk_status s = frame_init(&f, e, p, NULL, err);
    if (s) return s;
    /* Bind and check the inputs. */
    struct sym { const char *name; int64_t v; const char *input; } *syms = NULL;
    size_t n_syms = 0;
    for (size_t i = 0; i < n_in && !s; i++) {
        int64_t b = sk_engine_input_find(e, names[i]);
        if (b < 0) {
            s = sk_error_set(err, SK_EINVAL, "the model has no input named '%s'", names[i]);
            break;
        }
        int sl = e->bind[b];
        if (f.val[sl] && f.val[sl] != &p->slots[sl].cst) {
            s = sk_error_set(err, SK_EINVAL, "input '%s' is given twice", names[i]);
            break;
        }
        const sk_tensor *t = inputs[i];
        if (!t || !t->data || !sk_dtype_valid(t->dtype) || t->rank < 0 || t->rank > SK_TENSOR_MAX_RANK ||
            sk_shape_numel(t->rank, t->dims) != t->numel || sk_dtype_nbytes(t->dtype, t->numel) < 0 ||
            sk_dtype_nbytes(t->dtype, t->numel) > (int64_t)t->nbytes) {
            s = sk_error_set(err, SK_EINVAL, "input '%s' is not a valid tensor", names[i]);
            break;
        }
        const Onnx__TypeProto__Tensor *tt = tensor_type(input_vi(e, (size_t)b));
        if (tt && tt->has_elem_type && tt->elem_type && tt->elem_type != t->dtype) {
            s = sk_error_set(err, SK_EINVAL, "input '%s' is %s but the model declares %s", names[i],
                             sk_dtype_name(t->dtype), sk_dtype_name(tt->elem_type));
            break;
        }
        if (tt && tt->shape) {
            const Onnx__TensorShapeProto *sh = tt->shape;
            if ((size_t)t->rank != sh->n_dim) {
                s = sk_error_set(err, SK_EINVAL, "input '%s' has rank %d (shape %s) but the model declares rank %zu",
                                 names[i], t->rank, sk_shape_str(t->rank, t->dims, sb, sizeof sb), sh->n_dim);
                break;
            }
            for (size_t d = 0; d < sh->n_dim && !s; d++) {
                const Onnx__TensorShapeProto__Dimension *dm = sh->dim[d];
                if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
                    if (dm->dim_value != t->dims[d])
                        s = sk_error_set(err, SK_EINVAL, "input '%s' has shape %s but the model requires dim %zu to be %lld",
                                         names[i], sk_shape_str(t->rank, t->dims, sb, sizeof sb), d,
                                         (long long)dm->dim_value);
                } else if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && dm->dim_param &&
                           dm->dim_param[0]) {
                    size_t j = 0;
                    while (j < n_syms && strcmp(syms[j].name, dm->dim_param)) j++;
                    if (j == n_syms) {
                        void *ns = realloc(syms, (n_syms + 1) * sizeof *syms);
                        if (!ns) {
                            s = sk_error_set(err, SK_ENOMEM, "out of memory");
                            break;
                        }
                        syms = ns;
                        syms[n_syms++] = (struct sym){ dm->dim_param, t->dims[d], names[i] };
                    } else if (syms[j].v != t->dims[d]) {
                        s = sk_error_set(err, SK_EINVAL, "input '%s' has shape %s: dim %zu ('%s') is %lld but input "
                                         "'%s' set '%s' to %lld", names[i], sk_shape_str(t->rank, t->dims, sb, sizeof sb),
                                         d, dm->dim_param, (long long)t->dims[d], syms[j].input, dm->dim_param,
                                         (long long)syms[j].v);
                    }
                }
            }
            if (s) break;
        }
        f.val[sl] = t;
    }
    free(syms);
    if (!s) {
        char missing[256] = "";
        size_t nm = 0, l = 0;
        for (size_t i = 0; i < e->n_required; i++) {
            if (f.val[e->bind[i]]) continue;
            if (nm++ < 8) l += (size_t)snprintf(missing + l, l < sizeof missing ? sizeof missing - l : 0, "%s'%s'",
                                                nm > 1 ? ", " : "", p->slots[e->bind[i]].name);
            if (l >= sizeof missing) l = sizeof missing - 1;
        }
        if (nm)
            s = sk_error_set(err, SK_EINVAL, "missing model input%s %s%s", nm > 1 ? "s" : "", missing,
                             nm > 8 ? ", ..." : "");
    }
    if (!s) s = frame_run(&f, outputs, err);
    if (!s) {
        for (size_t i = 0; i < p->n_outputs; i++) {
            int dt = sk_engine_output_dtype(e, i);
            if (dt && dt != outputs[i].dtype) {
                s = sk_error_set(err, SK_EINVAL, "output '%s' is %s but the model declares %s",
                                 sk_engine_output_name(e, i), sk_dtype_name(outputs[i].dtype), sk_dtype_name(dt));
                break;
            }
        }
    }
    frame_release(&f);
    if (s)
        for (size_t i = 0; i < p->n_outputs; i++) sk_tensor_free(&outputs[i]);
    return s;
}

sk_status sk_engine_run_subgraph(sk_op_ctx *ctx, const char *attr, size_t n_in, const sk_tensor *const *in,
                                 size_t n_out, sk_tensor *out)
{
    frame *pf = ctx->engine;
    if (!pf) return sk_error_set(ctx->err, SK_EINTERNAL, "subgraphs can only run inside the engine");
    const step *st = &pf->steps[pf->cur_step];
    const plan *sp = NULL;
    for (size_t i = 0; i < st->n_sub; i++)
        if (!strcmp(st->sub_attr[i], attr)) sp = st->sub[i];
    if (!sp) return sk_error_set(ctx->err, SK_EINVAL, "the node has no graph attribute '%s'", attr);
    if (n_in != sp->n_inputs || n_out != sp->n_outputs)
        return sk_error_set(ctx->err, SK_EINVAL, "subgraph '%s' has %zu inputs and %zu outputs, the op gives %zu and "
                            "expects %zu", attr, sp->n_inputs, sp->n_outputs, n_in, n_out);
    frame f;
    sk_status s = frame_init(&f, pf->e, sp, pf, ctx->err);
    if (s) return s;
    for (size_t i = 0; i < n_in; i++) {
        if (!in[i]) {
            frame_release(&f);
            return sk_error_set(ctx->err, SK_EINVAL, "subgraph '%s': input %zu is missing", attr, i);
        }
        f.val[sp->inputs[i]] = in[i];
    }
    s = frame_run(&f, out, ctx->err);
    frame_release(&f);
    if (s) {
        for (size_t i = 0; i < n_out; i++) sk_tensor_free(&out[i]);
        return sk_error_prefix(ctx->err, "subgraph '%s': ", attr);
    }
    return SK_OK;
}
