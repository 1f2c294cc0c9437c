#include "sk_attn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_prune_graph.h"

#define MAX_TRACE 96   /* values visited when tracing Q, K or V back to a projection */
#define MAX_PIECES 16

/* ---- small helpers ------------------------------------------------------ */

static int is_op(const sk_node_proto *n, const char *op)
{
    return n && !strcmp(n->op_type, op) && (!n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx"));
}

static int is_ms_op(const sk_node_proto *n, const char *op)
{
    return n && !strcmp(n->op_type, op) && n->domain && !strcmp(n->domain, "com.microsoft");
}

static const char *in_name(const sk_node_proto *n, size_t k)
{
    return k < n->n_input && n->input[k] && *n->input[k] ? n->input[k] : NULL;
}

static int is_const(const sk_prune_index *ix, const char *v)
{
    sk_prune_const c;
    return v && sk_prune_index_const(ix, v, &c);
}

typedef struct nodeset {
    sk_node_proto **v;
    int *flag;
    size_t n, cap;
} nodeset;

static int nodeset_add(nodeset *s, sk_node_proto *n, int flag)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == n) return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        sk_node_proto **v = realloc(s->v, cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        int *f = realloc(s->flag, cap * sizeof *f);
        if (!f) return -1;
        s->flag = f;
        s->cap = cap;
    }
    s->v[s->n] = n;
    s->flag[s->n++] = flag;
    return 0;
}

static int nodeset_has(const nodeset *s, const sk_node_proto *n)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == n) return 1;
    return 0;
}

static void nodeset_free(nodeset *s)
{
    free(s->v);
    free(s->flag);
    memset(s, 0, sizeof *s);
}

/* ---- projections -------------------------------------------------------- */

typedef struct proj_hit {
    sk_node_proto *mm;        /* MatMul or Gemm */
    sk_node_proto *bias_node;
    size_t bias_input;
    const char *bias;         /* root name of the bias constant */
    const char *weight;
    int transposed;
    int64_t in, out;
    const char *value;        /* where the trace stopped: the projection's output (after the bias) */
    sk_node_proto *split;     /* Split the trace came through, or NULL */
    size_t split_out;
} proj_hit;

/* Is v the output of a linear projection with a constant weight (and bias)? */
static int is_projection(const sk_prune_index *ix, const char *v, proj_hit *h)
{
    memset(h, 0, sizeof *h);
    sk_node_proto *p = sk_prune_index_producer(ix, v, NULL);
    if (!p) return 0;
    sk_node_proto *mm = p, *add = NULL;
    size_t add_in = 0;
    if (is_op(p, "Add") && p->n_input == 2) {
        for (size_t k = 0; k < 2; k++) {
            sk_node_proto *q = sk_prune_index_producer(ix, p->input[1 - k], NULL);
            if (is_const(ix, p->input[k]) && (is_op(q, "MatMul") || is_op(q, "Gemm"))) {
                mm = q;
                add = p;
                add_in = k;
                break;
            }
        }
        if (!add) return 0;
    }
    sk_prune_const w;
    if (is_op(mm, "MatMul")) {
        if (mm->n_input != 2 || !sk_prune_index_const(ix, mm->input[1], &w) || w.rank != 2) return 0;
        if (is_const(ix, mm->input[0])) return 0;
        h->transposed = 0;
    } else if (is_op(mm, "Gemm")) {
        if (mm->n_input < 2 || !sk_prune_index_const(ix, mm->input[1], &w) || w.rank != 2) return 0;
        if (sk_node_attr_int(mm, "transA", 0) != 0 || is_const(ix, mm->input[0])) return 0;
        h->transposed = sk_node_attr_int(mm, "transB", 0) != 0;
    } else {
        return 0;
    }
    if (w.dtype != SK_FLOAT && w.dtype != SK_FLOAT16 && w.dtype != SK_DOUBLE && w.dtype != SK_BFLOAT16) return 0;
    h->mm = mm;
    h->weight = w.root;
    h->in = h->transposed ? w.dims[1] : w.dims[0];
    h->out = h->transposed ? w.dims[0] : w.dims[1];
    h->value = v;
    if (add) {
        sk_prune_const b;
        if (!sk_prune_index_const(ix, add->input[add_in], &b) || b.numel != h->out) return 0;
        for (int d = 0; d + 1 < b.rank; d++)
            if (b.dims[d] != 1) return 0;
        h->bias_node = add;
        h->bias_input = add_in;
        h->bias = b.root;
    } else if (is_op(mm, "Gemm") && in_name(mm, 2)) {
        sk_prune_const b;
        if (!sk_prune_index_const(ix, mm->input[2], &b) || b.numel != h->out) return 0;
        for (int d = 0; d + 1 < b.rank; d++)
            if (b.dims[d] != 1) return 0;
        h->bias_node = mm;
        h->bias_input = 2;
        h->bias = b.root;
    }
    return 1;
}

/* Ops a trace from Q/K/V back to its projection may cross. data_inputs: 1
 * means input 0 only, 2 every non-constant input. */
static int layout_op(const sk_node_proto *n)
{
    static const char *const one[] = { "Transpose", "Reshape", "Expand", "Slice", "Unsqueeze", "Squeeze",
                                       "Cast", "Identity", "Dropout", "Neg", "Split", "Flatten", "Gather", NULL };
    static const char *const all[] = { "Add", "Sub", "Mul", "Div", "Concat", NULL };
    for (size_t i = 0; one[i]; i++)
        if (is_op(n, one[i])) return 1;
    for (size_t i = 0; all[i]; i++)
        if (is_op(n, all[i])) return 2;
    return 0;
}

enum { FLAG_BEFORE_REPEAT = 1, FLAG_PRESPLIT = 2 };

typedef struct trace_item {
    const char *value;
    int flags;
    sk_node_proto *split;
    size_t split_out;
} trace_item;

/* Traces value v back to its projection. path gets the nodes crossed (flag:
 * FLAG_BEFORE_REPEAT for nodes between the projection and a head repeat). rep
 * gets the head-repeat Unsqueeze if one is crossed. Returns 1 with *hit set, 0
 * with why set. */
static int trace_projection(const sk_prune_index *ix, const char *v, nodeset *path, sk_attn_repeat *rep,
                            proj_hit *hit, const char **why)
{
    trace_item q[MAX_TRACE];
    size_t head = 0, tail = 0, visited = 0;
    int found = 0;
    *why = "no projection with a constant weight found";
    memset(rep, 0, sizeof *rep);
    q[tail++] = (trace_item){ v, 0, NULL, 0 };
    while (head < tail) {
        trace_item it = q[head++];
        if (++visited > MAX_TRACE) {
            *why = "the path to the projection is too long";
            return 0;
        }
        proj_hit h;
        if (is_projection(ix, it.value, &h)) {
            h.split = it.split;
            h.split_out = it.split_out;
            if (found && (hit->mm != h.mm || hit->split_out != h.split_out)) {
                *why = "it comes from more than one projection";
                return 0;
            }
            *hit = h;
            found = 1;
            continue;
        }
        size_t pos;
        sk_node_proto *p = sk_prune_index_producer(ix, it.value, &pos);
        int kind = layout_op(p);
        if (!kind) continue;
        int flags = it.flags;
        sk_node_proto *split = it.split;
        size_t split_out = it.split_out;
        if (is_op(p, "Split")) {
            if (split) {
                *why = "it crosses two Splits";
                return 0;
            }
            split = p;
            for (size_t k = 0; k < p->n_output; k++)
                if (!strcmp(p->output[k], it.value)) split_out = k;
            flags |= FLAG_PRESPLIT;
        }
        if (is_op(p, "Unsqueeze")) {
            /* Unsqueeze feeding an Expand (in the path already): repeated kv heads */
            sk_node_proto *const *c;
            size_t nc = sk_prune_index_consumers(ix, p->output[0], &c);
            if (nc == 1 && is_op(c[0], "Expand") && nodeset_has(path, c[0]) && !rep->unsqueeze) {
                int64_t axis = -1;
                sk_prune_const ax;
                if (in_name(p, 1) && sk_prune_index_const(ix, p->input[1], &ax) && ax.numel == 1)
                    axis = sk_prune_const_int(&ax, 0, -1);
                else {
                    size_t na;
                    const int64_t *a = sk_node_attr_ints(p, "axes", &na);
                    if (na == 1) axis = a[0];
                }
                if (axis >= 1) {
                    rep->unsqueeze = p;
                    rep->axis = axis;
                    flags |= FLAG_BEFORE_REPEAT;
                }
            }
        }
        if (nodeset_add(path, p, flags)) {
            *why = "out of memory";
            return 0;
        }
        for (size_t k = 0; k < p->n_input; k++) {
            const char *in = in_name(p, k);
            if (!in || is_const(ix, in)) continue;
            if (kind == 1 && k != 0) continue;
            if (tail == MAX_TRACE) {
                *why = "the path to the projection is too long";
                return 0;
            }
            q[tail++] = (trace_item){ in, flags, split, split_out };
        }
    }
    return found;
}

/* ---- reshape targets ---------------------------------------------------- */

typedef struct piece {
    sk_node_proto *node;   /* the node reading the constant */
    size_t input;
    int known;             /* constant */
    sk_prune_const c;
    int64_t start;         /* element offset from the start, -1 if unknown */
    int64_t from_end;      /* offset of the first element from the end (negative), 0 if unknown */
} piece;

/* Length of a 1-D shape piece computed at run time, or -1. */
static int64_t dynamic_len(const sk_prune_index *ix, const char *v)
{
    sk_node_proto *p = sk_prune_index_producer(ix, v, NULL);
    if (!p) return -1;
    if (is_op(p, "Shape")) {
        const sk_attr_proto *s = sk_node_attr(p, "start"), *e = sk_node_attr(p, "end");
        if (s && e && s->i >= 0 && e->i > s->i) return e->i - s->i;
        return -1;
    }
    if (is_op(p, "Unsqueeze")) {
        sk_prune_const ax;
        size_t na = 0;
        if (in_name(p, 1) && sk_prune_index_const(ix, p->input[1], &ax)) na = (size_t)ax.numel;
        else sk_node_attr_ints(p, "axes", &na);
        if (na != 1) return -1;
        sk_node_proto *q = sk_prune_index_producer(ix, p->input[0], NULL);
        while (q && (is_op(q, "Cast") || is_op(q, "Identity"))) q = sk_prune_index_producer(ix, q->input[0], NULL);
        if (q && is_op(q, "Gather") && q->n_input == 2) {
            sk_prune_const idx;
            if (sk_prune_index_const(ix, q->input[1], &idx) && idx.rank == 0) return 1;
        }
        if (q && is_op(q, "Squeeze")) return 1;
        return -1;
    }
    if (is_op(p, "Cast") || is_op(p, "Identity")) return dynamic_len(ix, p->input[0]);
    if (is_op(p, "Slice")) { /* one run of a 1-D shape */
        int64_t st, en;
        size_t ns, ne;
        const int64_t *s0 = sk_node_attr_ints(p, "starts", &ns), *e0 = sk_node_attr_ints(p, "ends", &ne);
        sk_prune_const c;
        int as;
        if (s0 && e0 && ns == 1 && ne == 1) {
            st = s0[0];
            en = e0[0];
        } else if (in_name(p, 1) && in_name(p, 2) && !in_name(p, 4) && sk_prune_index_int_const(ix, p->input[1], &c, &as) &&
                   c.numel == 1) {
            st = sk_prune_const_int(&c, 0, -1);
            if (!sk_prune_index_int_const(ix, p->input[2], &c, &as) || c.numel != 1) return -1;
            en = sk_prune_const_int(&c, 0, -1);
        } else {
            return -1;
        }
        sk_node_proto *q = sk_prune_index_producer(ix, p->input[0], NULL);
        while (q && (is_op(q, "Cast") || is_op(q, "Identity"))) q = sk_prune_index_producer(ix, q->input[0], NULL);
        if (!q || !is_op(q, "Shape") || st < 0 || en <= st || en > SK_MAX_RANK) return -1;
        return en - st;
    }
    return -1;
}

/* The pieces of the shape read by node n as input k: one constant, or the
 * inputs of a Concat. Returns the count (0: unknown). */
static size_t shape_pieces(const sk_prune_index *ix, sk_node_proto *n, size_t k, piece *out)
{
    const char *v = in_name(n, k);
    if (!v) return 0;
    sk_prune_const c;
    int as;
    if (sk_prune_index_int_const(ix, v, &c, &as)) {
        if (c.rank > 1) return 0;
        out[0] = (piece){ n, k, 1, c, 0, -c.numel };
        return 1;
    }
    sk_node_proto *cat = sk_prune_index_producer(ix, v, NULL);
    if (!is_op(cat, "Concat") || cat->n_input > MAX_PIECES || cat->n_input == 0) return 0;
    size_t np = cat->n_input;
    int64_t len[MAX_PIECES];
    for (size_t i = 0; i < np; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].node = cat;
        out[i].input = i;
        if (in_name(cat, i) && sk_prune_index_int_const(ix, cat->input[i], &out[i].c, &as) && out[i].c.rank <= 1) {
            out[i].known = 1;
            len[i] = out[i].c.numel;
        } else {
            len[i] = dynamic_len(ix, cat->input[i]);
        }
    }
    int64_t at = 0;
    for (size_t i = 0; i < np; i++) {
        out[i].start = at;
        at = at >= 0 && len[i] >= 0 ? at + len[i] : -1;
    }
    int64_t acc = 0;
    int ok = 1;
    for (size_t i = np; i-- > 0;) {
        ok = ok && len[i] >= 0;
        acc += ok ? len[i] : 0;
        out[i].from_end = ok ? -acc : 0;
    }
    return np;
}

/* ---- building blocks ---------------------------------------------------- */

typedef struct builder {
    sk_attn_block *b;
    int oom;
    sk_node_proto *skip_node[3]; /* target entries that are not head counts (the parts axis of a */
    int64_t skip_at[3];          /* fused [.., 3, H, D] reshape) */
} builder;

static void add_ref_full(builder *bd, sk_node_proto *n, size_t input, const char *attr, int64_t elem, sk_attn_dim dim,
                         sk_node_proto *user, size_t user_input, int repeat)
{
    sk_attn_block *b = bd->b;
    for (size_t i = 0; i < b->n_refs; i++)
        if (b->refs[i].node == n && b->refs[i].input == input && b->refs[i].elem == elem && b->refs[i].attr == attr &&
            b->refs[i].user == user && b->refs[i].user_input == user_input)
            return;
    sk_attn_ref *r = realloc(b->refs, (b->n_refs + 1) * sizeof *r);
    if (!r) {
        bd->oom = 1;
        return;
    }
    b->refs = r;
    r[b->n_refs++] = (sk_attn_ref){ n, input, attr, elem, dim, user, user_input, repeat };
}

static void add_ref(builder *bd, sk_node_proto *n, size_t input, const char *attr, int64_t elem, sk_attn_dim dim)
{
    add_ref_full(bd, n, input, attr, elem, dim, n, input, 0);
}

static void add_value(builder *bd, const char *v)
{
    sk_attn_block *b = bd->b;
    if (!v || !*v) return;
    for (size_t i = 0; i < b->n_values; i++)
        if (!strcmp(b->values[i], v)) return;
    char **a = realloc(b->values, (b->n_values + 1) * sizeof *a);
    if (!a) {
        bd->oom = 1;
        return;
    }
    b->values = a;
    if (!(a[b->n_values] = strdup(v))) {
        bd->oom = 1;
        return;
    }
    b->n_values++;
}

static char *dup_or_null(const char *s, int *oom)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

static void proj_from_hit(sk_attn_proj *p, const proj_hit *h, int *oom)
{
    p->node = h->mm;
    p->w_input = 1;
    p->weight = dup_or_null(h->weight, oom);
    p->transposed = h->transposed;
    p->in = h->in;
    p->out = h->out;
    p->col = 0;
    p->width = h->out;
    p->bias_node = h->bias_node;
    p->bias_input = h->bias_input;
    p->bias = dup_or_null(h->bias, oom);
    p->bias_col = 0;
    p->output = dup_or_null(h->value, oom);
}

static void proj_clear(sk_attn_proj *p)
{
    free(p->weight);
    free(p->bias);
    free(p->output);
    memset(p, 0, sizeof *p);
}

static void block_clear(sk_attn_block *b)
{
    proj_clear(&b->q);
    proj_clear(&b->k);
    proj_clear(&b->v);
    proj_clear(&b->o);
    free(b->context);
    free(b->refs);
    free(b->headwise);
    for (size_t i = 0; i < b->n_values; i++) free(b->values[i]);
    free(b->values);
    memset(b, 0, sizeof *b);
}

/* The output projection reading the context value v (through layout ops).
 * path gets the nodes crossed. */
static int find_out_projection(const sk_prune_index *ix, const char *v, nodeset *path, proj_hit *o,
                               const char **ctx)
{
    for (int depth = 0; depth < 8; depth++) {
        sk_node_proto *const *c;
        size_t nc = sk_prune_index_consumers(ix, v, &c);
        for (size_t i = 0; i < nc; i++) {
            sk_node_proto *n = c[i];
            if ((is_op(n, "MatMul") || is_op(n, "Gemm")) && n->n_input >= 2 && !strcmp(n->input[0], v)) {
                /* its output (after a bias Add) must look like a projection */
                const char *outv = n->output[0];
                sk_node_proto *const *c2;
                size_t n2 = sk_prune_index_consumers(ix, outv, &c2);
                if (n2 == 1 && is_op(c2[0], "Add")) {
                    proj_hit h;
                    if (is_projection(ix, c2[0]->output[0], &h) && h.mm == n) {
                        *o = h;
                        *ctx = v;
                        return 1;
                    }
                }
                proj_hit h;
                if (is_projection(ix, outv, &h)) {
                    *o = h;
                    *ctx = v;
                    return 1;
                }
                return 0;
            }
        }
        if (nc != 1) return 0;
        sk_node_proto *n = c[0];
        if (!(is_op(n, "Transpose") || is_op(n, "Reshape") || is_op(n, "Cast") || is_op(n, "Identity") ||
              is_op(n, "Dropout") || is_op(n, "Flatten")) ||
            strcmp(n->input[0], v))
            return 0;
        if (nodeset_add(path, n, 0)) return 0;
        v = n->output[0];
    }
    return 0;
}

/* Split sizes of a fused projection's Split, or 0. */
static size_t split_sizes(const sk_prune_index *ix, sk_node_proto *split, int64_t total, int64_t *sizes,
                          size_t cap, int *from_input, int *from_attr)
{
    size_t n = split->n_output;
    *from_input = *from_attr = 0;
    if (n == 0 || n > cap) return 0;
    sk_prune_const c;
    size_t na;
    const int64_t *a = sk_node_attr_ints(split, "split", &na);
    if (in_name(split, 1) && sk_prune_index_const(ix, split->input[1], &c)) {
        if ((size_t)c.numel != n) return 0;
        for (size_t i = 0; i < n; i++) sizes[i] = sk_prune_const_int(&c, (int64_t)i, -1);
        *from_input = 1;
    } else if (in_name(split, 1)) {
        return 0;
    } else if (a) {
        if (na != n) return 0;
        for (size_t i = 0; i < n; i++) sizes[i] = a[i];
        *from_attr = 1;
    } else {
        if (total % (int64_t)n) return 0;
        for (size_t i = 0; i < n; i++) sizes[i] = total / (int64_t)n;
    }
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (sizes[i] <= 0) return 0;
        sum += sizes[i];
    }
    return sum == total ? n : 0;
}

/* Records the constants of every Reshape/Expand on a path. */
static void collect_shape_refs(builder *bd, const sk_prune_index *ix, const nodeset *path, int role,
                               const sk_attn_repeat *rep, int64_t fused_width)
{
    sk_attn_block *b = bd->b;
    int64_t H = b->heads, Hkv = b->kv_heads, group = b->kv_heads ? b->heads / b->kv_heads : 1;
    int64_t qw = b->heads * b->head_size, kvw = b->kv_heads * b->head_size, vw = b->heads * b->v_head_size;
    int64_t kvvw = b->kv_heads * b->v_head_size;
    for (size_t i = 0; i < path->n; i++) {
        sk_node_proto *n = path->v[i];
        int flags = path->flag[i];
        int is_reshape = is_op(n, "Reshape"), is_expand = is_op(n, "Expand");
        if (!is_reshape && !is_expand) continue;
        piece pc[MAX_PIECES];
        size_t np = shape_pieces(ix, n, 1, pc);
        /* the repeat Expand: [.., kv_heads, group, seq, head] */
        int repeat_expand = 0;
        if (is_expand && rep && rep->unsqueeze) {
            sk_node_proto *p = sk_prune_index_producer(ix, n->input[0], NULL);
            repeat_expand = p == rep->unsqueeze;
        }
        for (size_t k = 0; k < np; k++) {
            if (!pc[k].known) continue;
            for (int64_t e = 0; e < pc[k].c.numel; e++) {
                int64_t val = sk_prune_const_int(&pc[k].c, e, 0);
                int64_t at = pc[k].start >= 0 ? pc[k].start + e : -1;
                int64_t from_end = pc[k].from_end < 0 ? pc[k].from_end + e : 0;
                int last = from_end == -1;
                int dim = -1, skip = 0;
                for (int q = 0; q < 3; q++) skip |= bd->skip_node[q] == n && at == bd->skip_at[q];
                if (skip) continue;
                if (flags & FLAG_PRESPLIT) {
                    if (val == fused_width) dim = SK_ATTN_DIM_FUSED;
                } else if (repeat_expand) {
                    if (at >= 0 && at == rep->axis - 1 && val == Hkv) dim = SK_ATTN_DIM_KV_HEADS;
                    else if (at >= 0 && at == rep->axis && val == group) dim = SK_ATTN_DIM_GROUP;
                } else if (role == 0 || role == 3 || (!(flags & FLAG_BEFORE_REPEAT) && rep && rep->unsqueeze)) {
                    /* query side, context side, or keys/values after the repeat: query heads */
                    int64_t w = role == 3 || role == 2 ? vw : qw;
                    if (val == H && H > 1 && !last) dim = SK_ATTN_DIM_HEADS;
                    else if (val == w && w > 0) dim = role == 3 || role == 2 ? SK_ATTN_DIM_VWIDTH : SK_ATTN_DIM_QWIDTH;
                } else {
                    int64_t w = role == 2 ? kvvw : kvw;
                    if (val == Hkv && Hkv > 1 && !last) dim = SK_ATTN_DIM_KV_HEADS;
                    else if (val == w && w > 0) dim = role == 2 ? SK_ATTN_DIM_KVVWIDTH : SK_ATTN_DIM_KVWIDTH;
                }
                if (dim >= 0) add_ref_full(bd, pc[k].node, pc[k].input, NULL, e, (sk_attn_dim)dim, n, 1, repeat_expand);
            }
        }
    }
}

static void collect_values(builder *bd, const nodeset *path)
{
    for (size_t i = 0; i < path->n; i++)
        for (size_t k = 0; k < path->v[i]->n_output; k++) add_value(bd, path->v[i]->output[k]);
}

/* Head size from the reshapes on the query path: the last entry of the
 * first target whose last entry divides the query width. */
static int64_t head_size_from_path(const sk_prune_index *ix, const nodeset *path, int64_t width, int64_t *heads_hint)
{
    *heads_hint = 0;
    /* a reshape whose last entry divides the width; one head (last == width)
     * only when nothing splits it further */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = path->n; i-- > 0;) { /* closest to the projection first */
            sk_node_proto *n = path->v[i];
            if (!is_op(n, "Reshape") || (path->flag[i] & FLAG_PRESPLIT)) continue;
            piece pc[MAX_PIECES];
            size_t np = shape_pieces(ix, n, 1, pc);
            if (!np) continue;
            int64_t last = 0, second = 0;
            for (size_t k = 0; k < np; k++) {
                if (!pc[k].known || pc[k].from_end >= 0) continue;
                for (int64_t e = 0; e < pc[k].c.numel; e++) {
                    if (pc[k].from_end + e == -1) last = sk_prune_const_int(&pc[k].c, e, 0);
                    if (pc[k].from_end + e == -2) second = sk_prune_const_int(&pc[k].c, e, 0);
                }
            }
            if (last > 0 && (pass ? last == width : last < width) && width % last == 0) {
                if (second > 0 && second * last != width) continue;
                return last;
            }
            if (!pass && second > 1 && width % second == 0 && last <= 0) *heads_hint = second;
        }
    if (*heads_hint > 1) return width / *heads_hint;
    return 0;
}

static void record_miss(sk_attn_info *info, const sk_node_proto *n, const char *why, int *oom)
{
    sk_attn_miss *m = realloc(info->misses, (info->n_misses + 1) * sizeof *m);
    if (!m) {
        *oom = 1;
        return;
    }
    info->misses = m;
    char lb[300];
    sk_node_label(n, lb, sizeof lb);
    m[info->n_misses].node = strdup(lb);
    m[info->n_misses].reason = strdup(why);
    if (!m[info->n_misses].node || !m[info->n_misses].reason) {
        free(m[info->n_misses].node);
        free(m[info->n_misses].reason);
        *oom = 1;
        return;
    }
    info->n_misses++;
}

static int push_block(sk_attn_info *info, sk_attn_block *b)
{
    sk_attn_block *a = realloc(info->blocks, (info->n_blocks + 1) * sizeof *a);
    if (!a) return -1;
    info->blocks = a;
    a[info->n_blocks++] = *b;
    memset(b, 0, sizeof *b);
    return 0;
}

/* Finds the MatMul producing the scores that reach Softmax s (through mask
 * adds, scaling, casts). */
static sk_node_proto *scores_matmul(const sk_prune_index *ix, sk_node_proto *s, nodeset *path)
{
    const char *q[32];
    size_t head = 0, tail = 0;
    q[tail++] = s->input[0];
    while (head < tail) {
        sk_node_proto *p = sk_prune_index_producer(ix, q[head++], NULL);
        if (!p) continue;
        if (is_op(p, "MatMul") && p->n_input == 2 && !is_const(ix, p->input[0]) && !is_const(ix, p->input[1])) return p;
        if (!(is_op(p, "Add") || is_op(p, "Sub") || is_op(p, "Mul") || is_op(p, "Div") || is_op(p, "Where") ||
              is_op(p, "Cast") || is_op(p, "Identity") || is_op(p, "Reshape")))
            continue;
        if (nodeset_add(path, p, 0)) return NULL;
        for (size_t k = 0; k < p->n_input && tail < 32; k++) {
            if (!in_name(p, k) || is_const(ix, p->input[k])) continue;
            if ((is_op(p, "Reshape") && k) || (is_op(p, "Where") && k == 0)) continue;
            q[tail++] = p->input[k];
        }
    }
    return NULL;
}

/* The MatMul reading the probabilities of Softmax s as its first input. */
static sk_node_proto *probs_matmul(const sk_prune_index *ix, sk_node_proto *s, nodeset *path)
{
    const char *q[32];
    size_t head = 0, tail = 0;
    q[tail++] = s->output[0];
    while (head < tail) {
        const char *v = q[head++];
        sk_node_proto *const *c;
        size_t nc = sk_prune_index_consumers(ix, v, &c);
        for (size_t i = 0; i < nc; i++) {
            sk_node_proto *n = c[i];
            if (is_op(n, "MatMul") && n->n_input == 2 && !strcmp(n->input[0], v) && !is_const(ix, n->input[1]))
                return n;
            if (!(is_op(n, "Where") || is_op(n, "Cast") || is_op(n, "Dropout") || is_op(n, "Identity") ||
                  is_op(n, "Mul") || is_op(n, "Reshape")))
                continue;
            if (is_op(n, "Where") && !strcmp(n->input[0], v)) continue;
            if (nodeset_has(path, n)) continue;
            if (nodeset_add(path, n, 0)) return NULL;
            if (tail < 32) q[tail++] = n->output[0];
        }
    }
    return NULL;
}

/* Constants with one entry per head on the scores: axis -3 of [.., H, q, k]. */
static void collect_headwise(builder *bd, const sk_prune_index *ix, const nodeset *path)
{
    sk_attn_block *b = bd->b;
    if (b->heads <= 1) return;
    for (size_t i = 0; i < path->n; i++) {
        sk_node_proto *n = path->v[i];
        if (!(is_op(n, "Add") || is_op(n, "Mul") || is_op(n, "Sub") || is_op(n, "Div") || is_op(n, "Where"))) continue;
        for (size_t k = 0; k < n->n_input; k++) {
            sk_prune_const c;
            if (!in_name(n, k) || !sk_prune_index_const(ix, n->input[k], &c) || c.rank < 3) continue;
            if (c.dims[c.rank - 3] != b->heads) continue;
            sk_attn_headwise *h = realloc(b->headwise, (b->n_headwise + 1) * sizeof *h);
            if (!h) {
                bd->oom = 1;
                return;
            }
            b->headwise = h;
            h[b->n_headwise++] = (sk_attn_headwise){ n, k, -3 };
        }
    }
}

/* Fused QKV cut by indexing instead of a Split (timm's ViT, Paddle): the
 * projection's output reshaped to [.., parts, heads, head size], maybe
 * transposed, then one index of the parts axis taken (Slice of one and
 * Squeeze, or Gather of a scalar). Walks from v back to the projection's
 * output proj_out (width features); returns the part index, with the parts
 * count, the reshape and the position of the parts count in its target, or -1. */
static int64_t fused_part(const sk_prune_index *ix, const char *v, const char *proj_out, int64_t width, int64_t *parts,
                          sk_node_proto **reshape, int64_t *parts_at)
{
    int64_t axis = -1, index = -1;
    for (int depth = 0; depth < 24 && strcmp(v, proj_out); depth++) {
        sk_node_proto *p = sk_prune_index_producer(ix, v, NULL);
        if (!p || !p->n_input) return -1;
        if (is_op(p, "Mul") || is_op(p, "Div") || is_op(p, "Add") || is_op(p, "Sub")) {
            if (p->n_input != 2) return -1;
            int c0 = is_const(ix, p->input[0]), c1 = is_const(ix, p->input[1]);
            if (c0 == c1) return -1;
            v = c0 ? p->input[1] : p->input[0];
            continue;
        }
        if (is_op(p, "Cast") || is_op(p, "Identity") || is_op(p, "Neg") || is_op(p, "Dropout") ||
            (is_op(p, "Squeeze") && index < 0)) {
            v = p->input[0];
            continue;
        }
        if (is_op(p, "Slice") && index < 0) {
            int64_t st = 0, en = 0, ax = -1, step = 1;
            sk_prune_const c;
            size_t na, ns, ne;
            const int64_t *a = sk_node_attr_ints(p, "axes", &na), *s0 = sk_node_attr_ints(p, "starts", &ns),
                          *e0 = sk_node_attr_ints(p, "ends", &ne);
            if (s0 && e0) { /* opset < 10 */
                if (ns != 1 || ne != 1 || (a && na != 1)) return -1;
                st = s0[0];
                en = e0[0];
                ax = a ? a[0] : 0;
            } else {
                if (!in_name(p, 1) || !in_name(p, 2) || !sk_prune_index_const(ix, p->input[1], &c) || c.numel != 1) return -1;
                st = sk_prune_const_int(&c, 0, -1);
                if (!sk_prune_index_const(ix, p->input[2], &c) || c.numel != 1) return -1;
                en = sk_prune_const_int(&c, 0, -1);
                ax = 0;
                if (in_name(p, 3)) {
                    if (!sk_prune_index_const(ix, p->input[3], &c) || c.numel != 1) return -1;
                    ax = sk_prune_const_int(&c, 0, -1);
                }
                if (in_name(p, 4)) {
                    if (!sk_prune_index_const(ix, p->input[4], &c) || c.numel != 1) return -1;
                    step = sk_prune_const_int(&c, 0, 0);
                }
            }
            if (st < 0 || en != st + 1 || ax < 0 || step != 1) return -1;
            axis = ax;
            index = st;
            v = p->input[0];
            continue;
        }
        if (is_op(p, "Gather") && index < 0 && p->n_input == 2) {
            sk_prune_const c;
            int64_t ax = sk_node_attr_int(p, "axis", 0);
            if (!sk_prune_index_const(ix, p->input[1], &c) || c.rank != 0 || ax < 0) return -1;
            axis = ax;
            index = sk_prune_const_int(&c, 0, -1);
            if (index < 0) return -1;
            v = p->input[0];
            continue;
        }
        if (is_op(p, "Transpose")) {
            if (index >= 0) {
                size_t np;
                const int64_t *perm = sk_node_attr_ints(p, "perm", &np);
                if (!perm || axis >= (int64_t)np) return -1;
                axis = perm[axis];
            }
            v = p->input[0];
            continue;
        }
        if (is_op(p, "Reshape") && index >= 0) {
            /* the target from the parts axis on: [parts, heads, head size], all constant */
            piece pc[MAX_PIECES];
            size_t n = shape_pieces(ix, p, 1, pc);
            int64_t prod = 1, count = 0;
            int seen = 0;
            for (size_t k = 0; k < n; k++) {
                if (pc[k].start < 0) return -1;
                if (!pc[k].known) {
                    if (seen) return -1;
                    continue;
                }
                for (int64_t e = 0; e < pc[k].c.numel; e++) {
                    int64_t pos = pc[k].start + e, val = sk_prune_const_int(&pc[k].c, e, 0);
                    if (pos < axis) continue;
                    if (pos == axis) {
                        count = val;
                        seen = 1;
                    }
                    if (val <= 0) return -1;
                    prod *= val;
                }
            }
            if (!seen || prod != width || count < 2 || index >= count || strcmp(p->input[0], proj_out)) return -1;
            *parts = count;
            *reshape = p;
            *parts_at = axis;
            return index;
        }
        if (is_op(p, "Reshape")) {
            v = p->input[0];
            continue;
        }
        return -1;
    }
    return -1;
}

/* Attention written out in ONNX ops around Softmax s. Returns 1 if a block
 * was added, 0 (with *why) if s is not (recognisable) attention, -1 on
 * memory. *looked is set when s sits between two activation MatMuls. */
static int graph_block(sk_attn_info *info, const sk_prune_index *ix, sk_node_proto *s, int *looked, const char **why)
{
    *looked = 0;
    nodeset spath = { 0 }, qp = { 0 }, kp = { 0 }, vp = { 0 }, op = { 0 };
    sk_attn_block blk;
    memset(&blk, 0, sizeof blk);
    builder bd;
    memset(&bd, 0, sizeof bd);
    bd.b = &blk;
    int ret = 0;
    sk_node_proto *qk = scores_matmul(ix, s, &spath);
    sk_node_proto *pv = qk ? probs_matmul(ix, s, &spath) : NULL;
    if (!qk || !pv) {
        *why = "not between two MatMuls";
        goto done;
    }
    *looked = 1;
    proj_hit hq, hk, hv, ho;
    sk_attn_repeat rq, rk, rv;
    if (!trace_projection(ix, qk->input[0], &qp, &rq, &hq, why) || !trace_projection(ix, qk->input[1], &kp, &rk, &hk, why) ||
        !trace_projection(ix, pv->input[1], &vp, &rv, &hv, why)) {
        goto done;
    }
    const char *ctx = NULL;
    if (!find_out_projection(ix, pv->output[0], &op, &ho, &ctx)) {
        *why = "no output projection with a constant weight after the context";
        goto done;
    }
    blk.kind = SK_ATTN_GRAPH;
    blk.core = s;
    proj_from_hit(&blk.q, &hq, &bd.oom);
    proj_from_hit(&blk.k, &hk, &bd.oom);
    proj_from_hit(&blk.v, &hv, &bd.oom);
    proj_from_hit(&blk.o, &ho, &bd.oom);
    blk.o.width = ho.in; /* the output projection's heads are its input features */
    blk.context = dup_or_null(ctx, &bd.oom);
    blk.hidden = hq.in;
    int64_t fused_width = 0;
    if (hq.split || hk.split || hv.split) {
        if (!(hq.split && hq.split == hk.split && hk.split == hv.split && hq.mm == hk.mm && hk.mm == hv.mm)) {
            *why = "only some of Q, K and V come through the Split";
            goto done;
        }
        int64_t sizes[16];
        int from_input, from_attr;
        size_t n = split_sizes(ix, hq.split, hq.out, sizes, 16, &from_input, &from_attr);
        if (!n || hq.split_out >= n || hk.split_out >= n || hv.split_out >= n || hq.split_out == hk.split_out ||
            hk.split_out == hv.split_out || hq.split_out == hv.split_out || n != 3) {
            *why = "the fused projection's Split is not three parts along the features";
            goto done;
        }
        int64_t off[16];
        off[0] = 0;
        for (size_t i = 1; i < n; i++) off[i] = off[i - 1] + sizes[i - 1];
        blk.q.col = blk.q.bias_col = off[hq.split_out];
        blk.q.width = sizes[hq.split_out];
        blk.k.col = blk.k.bias_col = off[hk.split_out];
        blk.k.width = sizes[hk.split_out];
        blk.v.col = blk.v.bias_col = off[hv.split_out];
        blk.v.width = sizes[hv.split_out];
        blk.split = hq.split;
        fused_width = hq.out;
        if (from_input) add_ref(&bd, hq.split, 1, NULL, -1, SK_ATTN_DIM_SPLIT);
        if (from_attr) add_ref(&bd, hq.split, 0, "split", -1, SK_ATTN_DIM_SPLIT);
    } else if (hq.mm == hk.mm && hk.mm == hv.mm) {
        int64_t np[3] = { 0, 0, 0 }, at[3] = { 0, 0, 0 };
        sk_node_proto *rs[3] = { NULL, NULL, NULL };
        int64_t iq = fused_part(ix, qk->input[0], hq.value, hq.out, &np[0], &rs[0], &at[0]);
        int64_t ik = fused_part(ix, qk->input[1], hq.value, hq.out, &np[1], &rs[1], &at[1]);
        int64_t iv = fused_part(ix, pv->input[1], hq.value, hq.out, &np[2], &rs[2], &at[2]);
        if (iq < 0 || ik < 0 || iv < 0 || np[0] != 3 || np[1] != 3 || np[2] != 3 || iq == ik || ik == iv || iq == iv) {
            *why = "Q, K and V share a projection that is neither cut by a Split nor reshaped to [.., 3, heads, head size]";
            goto done;
        }
        int64_t w = hq.out / 3;
        blk.q.col = blk.q.bias_col = iq * w;
        blk.k.col = blk.k.bias_col = ik * w;
        blk.v.col = blk.v.bias_col = iv * w;
        blk.q.width = blk.k.width = blk.v.width = w;
        for (int q = 0; q < 3; q++) {
            bd.skip_node[q] = rs[q];
            bd.skip_at[q] = at[q];
        }
    } else if (hq.mm == hk.mm || hk.mm == hv.mm || hq.mm == hv.mm) {
        *why = "two of Q, K and V share a projection";
        goto done;
    }
    int64_t hint;
    int64_t D = head_size_from_path(ix, &qp, blk.q.width, &hint);
    if (D <= 0) {
        *why = "no reshape splits the query into heads";
        goto done;
    }
    blk.head_size = D;
    blk.heads = blk.q.width / D;
    if (blk.k.width % D) {
        *why = "the key width is not a multiple of the head size";
        goto done;
    }
    blk.kv_heads = blk.k.width / D;
    if (blk.kv_heads <= 0 || blk.heads % blk.kv_heads || blk.v.width % blk.kv_heads) {
        *why = "the key/value heads do not divide the query heads";
        goto done;
    }
    blk.v_head_size = blk.v.width / blk.kv_heads;
    if (blk.kv_heads != blk.heads && (!rk.unsqueeze || !rv.unsqueeze)) {
        *why = "fewer key/value heads than query heads, but no head repeat (Unsqueeze, Expand, Reshape) found";
        goto done;
    }
    if (blk.o.width != blk.heads * blk.v_head_size || blk.o.col != 0) {
        *why = "the output projection's input width is not heads x head size";
        goto done;
    }
    blk.rep_k = rk;
    blk.rep_v = rv;
    collect_shape_refs(&bd, ix, &qp, 0, NULL, fused_width);
    collect_shape_refs(&bd, ix, &kp, 1, &rk, fused_width);
    collect_shape_refs(&bd, ix, &vp, 2, &rv, fused_width);
    collect_shape_refs(&bd, ix, &op, 3, NULL, fused_width);
    collect_headwise(&bd, ix, &spath);
    collect_values(&bd, &qp);
    collect_values(&bd, &kp);
    collect_values(&bd, &vp);
    collect_values(&bd, &op);
    collect_values(&bd, &spath);
    add_value(&bd, s->output[0]);
    add_value(&bd, qk->output[0]);
    add_value(&bd, pv->output[0]);
    const sk_attn_proj *pr[3] = { &blk.q, &blk.k, &blk.v };
    for (size_t i = 0; i < 3; i++) {
        add_value(&bd, pr[i]->node->output[0]);
        add_value(&bd, pr[i]->output);
    }
    if (bd.oom) {
        ret = -1;
        goto done;
    }
    ret = push_block(info, &blk) ? -1 : 1;
done:
    block_clear(&blk);
    nodeset_free(&spath);
    nodeset_free(&qp);
    nodeset_free(&kp);
    nodeset_free(&vp);
    nodeset_free(&op);
    return ret;
}

/* com.microsoft Attention / MultiHeadAttention. */
static int ms_block(sk_attn_info *info, const sk_prune_index *ix, sk_node_proto *n, const char **why)
{
    sk_attn_block blk;
    memset(&blk, 0, sizeof blk);
    builder bd;
    memset(&bd, 0, sizeof bd);
    bd.b = &blk;
    nodeset op = { 0 }, qp = { 0 }, kp = { 0 }, vp = { 0 };
    int ret = 0;
    int64_t H = sk_node_attr_int(n, "num_heads", 0);
    if (H <= 0) {
        *why = "no num_heads attribute";
        goto done;
    }
    blk.core = n;
    blk.heads = blk.kv_heads = H;
    if (is_ms_op(n, "Attention")) {
        blk.kind = SK_ATTN_MS_ATTENTION;
        sk_prune_const w;
        if (!in_name(n, 1) || !sk_prune_index_const(ix, n->input[1], &w) || w.rank != 2 ||
            (w.dtype != SK_FLOAT && w.dtype != SK_FLOAT16)) {
            *why = "the weights are not a constant matrix";
            goto done;
        }
        if (in_name(n, 4) || sk_node_attr(n, "past_present_share_buffer") || sk_node_attr_int(n, "do_rotary", 0)) {
            *why = "past state and rotary embeddings are not supported";
            goto done;
        }
        int64_t sizes[3];
        size_t ns;
        const int64_t *qkv = sk_node_attr_ints(n, "qkv_hidden_sizes", &ns);
        if (qkv && ns == 3) memcpy(sizes, qkv, sizeof sizes);
        else if (w.dims[1] % 3 == 0) sizes[0] = sizes[1] = sizes[2] = w.dims[1] / 3;
        else {
            *why = "the weights are not three equal parts";
            goto done;
        }
        if (sizes[0] + sizes[1] + sizes[2] != w.dims[1] || sizes[0] % H || sizes[1] != sizes[0] || sizes[2] % H) {
            *why = "qkv_hidden_sizes does not match the weights";
            goto done;
        }
        sk_prune_const bc;
        int has_bias = in_name(n, 2) != NULL;
        if (has_bias && (!sk_prune_index_const(ix, n->input[2], &bc) || bc.numel != w.dims[1])) {
            *why = "the bias is not a constant of the weights' width";
            goto done;
        }
        sk_attn_proj *pr[3] = { &blk.q, &blk.k, &blk.v };
        int64_t off = 0;
        for (size_t i = 0; i < 3; i++) {
            sk_attn_proj *p = pr[i];
            p->node = n;
            p->w_input = 1;
            p->weight = dup_or_null(w.root, &bd.oom);
            p->in = w.dims[0];
            p->out = w.dims[1];
            p->col = p->bias_col = off;
            p->width = sizes[i];
            if (has_bias) {
                p->bias_node = n;
                p->bias_input = 2;
                p->bias = dup_or_null(bc.root, &bd.oom);
            }
            off += sizes[i];
        }
        blk.hidden = w.dims[0];
        blk.head_size = sizes[0] / H;
        blk.v_head_size = sizes[2] / H;
        add_ref(&bd, n, 0, "num_heads", 0, SK_ATTN_DIM_HEADS);
        if (qkv) add_ref(&bd, n, 0, "qkv_hidden_sizes", -1, SK_ATTN_DIM_SPLIT);
    } else {
        blk.kind = SK_ATTN_MS_MHA;
        if (!in_name(n, 0) || !in_name(n, 1) || !in_name(n, 2) || in_name(n, 6) || in_name(n, 7)) {
            *why = "packed query/key/value and past state are not supported";
            goto done;
        }
        proj_hit h[3];
        sk_attn_repeat r;
        nodeset *paths[3] = { &qp, &kp, &vp };
        for (size_t i = 0; i < 3; i++)
            if (!trace_projection(ix, n->input[i], paths[i], &r, &h[i], why) || h[i].split) goto done;
        if (h[0].mm == h[1].mm || h[1].mm == h[2].mm || h[0].mm == h[2].mm) {
            *why = "query, key and value share a projection";
            goto done;
        }
        proj_from_hit(&blk.q, &h[0], &bd.oom);
        proj_from_hit(&blk.k, &h[1], &bd.oom);
        proj_from_hit(&blk.v, &h[2], &bd.oom);
        if (blk.q.width % H || blk.k.width != blk.q.width || blk.v.width % H) {
            *why = "the projection widths are not multiples of num_heads";
            goto done;
        }
        if (in_name(n, 3)) {
            sk_prune_const bc;
            int64_t total = blk.q.width + blk.k.width + blk.v.width;
            if (!sk_prune_index_const(ix, n->input[3], &bc) || bc.numel != total) {
                *why = "the bias is not a constant of the three widths";
                goto done;
            }
            if (blk.q.bias || blk.k.bias || blk.v.bias) {
                *why = "the projections and the op both add a bias";
                goto done;
            }
            sk_attn_proj *pr[3] = { &blk.q, &blk.k, &blk.v };
            int64_t off = 0;
            for (size_t i = 0; i < 3; i++) {
                pr[i]->bias_node = n;
                pr[i]->bias_input = 3;
                pr[i]->bias = dup_or_null(bc.root, &bd.oom);
                pr[i]->bias_col = off;
                off += pr[i]->width;
            }
        }
        blk.hidden = blk.q.in;
        blk.head_size = blk.q.width / H;
        blk.v_head_size = blk.v.width / H;
        add_ref(&bd, n, 0, "num_heads", 0, SK_ATTN_DIM_HEADS);
        collect_values(&bd, &qp);
        collect_values(&bd, &kp);
        collect_values(&bd, &vp);
        const sk_attn_proj *pr[3] = { &blk.q, &blk.k, &blk.v };
        for (size_t i = 0; i < 3; i++) {
            add_value(&bd, pr[i]->node->output[0]);
            add_value(&bd, pr[i]->output);
        }
    }
    /* attention_bias (relative position bias): [.., H, q, k] */
    const size_t ab = 5; /* attention_bias of both ops */
    sk_prune_const c;
    if (in_name(n, ab) && sk_prune_index_const(ix, n->input[ab], &c) && c.rank >= 3 && c.dims[c.rank - 3] == H && H > 1) {
        sk_attn_headwise *hw = malloc(sizeof *hw);
        if (!hw) bd.oom = 1;
        else {
            hw[0] = (sk_attn_headwise){ n, ab, -3 };
            blk.headwise = hw;
            blk.n_headwise = 1;
        }
    }
    proj_hit ho;
    const char *ctx;
    if (!find_out_projection(ix, n->output[0], &op, &ho, &ctx)) {
        *why = "no output projection with a constant weight after the op";
        goto done;
    }
    proj_from_hit(&blk.o, &ho, &bd.oom);
    blk.o.width = ho.in;
    blk.context = dup_or_null(ctx, &bd.oom);
    if (blk.o.width != H * blk.v_head_size) {
        *why = "the output projection's input width is not heads x head size";
        goto done;
    }
    collect_shape_refs(&bd, ix, &op, 3, NULL, 0);
    collect_values(&bd, &op);
    add_value(&bd, n->output[0]);
    if (bd.oom) {
        ret = -1;
        goto done;
    }
    ret = push_block(info, &blk) ? -1 : 1;
done:
    block_clear(&blk);
    nodeset_free(&op);
    nodeset_free(&qp);
    nodeset_free(&kp);
    nodeset_free(&vp);
    return ret;
}

sk_status sk_attn_find(sk_model *m, sk_attn_info **out, sk_error *err)
{
    *out = NULL;
    sk_prune_index *ix;
    sk_status s = sk_prune_index_build(m, &ix, err);
    if (s) return s;
    sk_attn_info *info = calloc(1, sizeof *info);
    if (!info) {
        sk_prune_index_free(ix);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    sk_graph_proto *g = sk_model_graph(m);
    int oom = 0;
    for (size_t i = 0; i < g->n_node && !oom; i++) {
        sk_node_proto *n = g->node[i];
        const char *why = NULL;
        int r, looked = 1;
        if (is_op(n, "Softmax") && n->n_input >= 1 && n->n_output >= 1) r = graph_block(info, ix, n, &looked, &why);
        else if (is_ms_op(n, "Attention") || is_ms_op(n, "MultiHeadAttention")) r = ms_block(info, ix, n, &why);
        else continue;
        if (r < 0) oom = 1;
        else if (r == 0 && looked) record_miss(info, n, why ? why : "not recognised", &oom);
    }
    sk_prune_index_free(ix);
    if (oom) {
        sk_attn_info_free(info);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < info->n_blocks; i++) info->blocks[i].layer = (int64_t)i;
    *out = info;
    return SK_OK;
}

void sk_attn_info_free(sk_attn_info *info)
{
    if (!info) return;
    for (size_t i = 0; i < info->n_blocks; i++) block_clear(&info->blocks[i]);
    free(info->blocks);
    for (size_t i = 0; i < info->n_misses; i++) {
        free(info->misses[i].node);
        free(info->misses[i].reason);
    }
    free(info->misses);
    free(info);
}

const char *sk_attn_kind_name(sk_attn_kind k)
{
    switch (k) {
    case SK_ATTN_GRAPH: return "graph";
    case SK_ATTN_MS_ATTENTION: return "com.microsoft.Attention";
    case SK_ATTN_MS_MHA: return "com.microsoft.MultiHeadAttention";
    }
    return "?";
}

int64_t sk_attn_kv_of(const sk_attn_block *b, int64_t h)
{
    int64_t group = b->kv_heads > 0 ? b->heads / b->kv_heads : 1;
    return group > 0 ? h / group : h;
}

int64_t sk_attn_block_params(const sk_attn_block *b)
{
    int64_t n = 0;
    const sk_attn_proj *pr[3] = { &b->q, &b->k, &b->v };
    for (size_t i = 0; i < 3; i++) n += pr[i]->in * pr[i]->width + (pr[i]->bias ? pr[i]->width : 0);
    n += b->o.width * b->o.out;
    return n;
}
