/* The fusion pass and the fused kernels (see sk_fuse.h).
 *
 * Matching works on the plain plan in run order. A group is a set of steps
 * whose outputs, except the last step's, are read by members only; the
 * matchers below propose member sets and the roles of their outside inputs,
 * make_group checks the set and builds the fused step's program (fz_prog):
 * the members as the fallback runs them, and which input is which for the
 * fast path. Matchers only look at constants and the graph's wiring; shapes
 * and dtypes of non-constant values are checked by the kernels at run time. */
#include "sk_fuse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_gemm.h"
#include "sk_kernels_ew.h"
#include "sk_model.h"
#include "sk_qgemm.h"

/* Row kernels of lib/sk_ops_reduce.c, the ones its Softmax and
 * LayerNormalization kernels call (no header declares them yet). */
void sk_softmax_row(const float *x, float *y, int64_t n, int log_softmax);
void sk_layernorm_row(const float *x, float *y, int64_t n, const float *scale, const float *bias, float eps, int rms,
                      float *mean_out, float *rstd_out);

/* ======================================================================= */
/* programs                                                                */
/* ======================================================================= */

typedef enum fz_kind { FZ_GELU, FZ_MATMUL, FZ_QMATMUL, FZ_SOFTMAX, FZ_VIEW } fz_kind;

#define FZ_MEMBER_IN 6
#define FZ_MEMBER_OUT 4
#define FZ_MAX_VALS (SK_FUSE_MAX_IN + SK_FUSE_MAX_MEMBERS * FZ_MEMBER_OUT)

/* One member as the fallback runs it. in[j] indexes the value table (the
 * fused step's inputs first, then the members' temporaries), -1 when absent;
 * out[j] is a temporary, or -1 for the anchor (its outputs are the step's). */
typedef struct fz_member {
    const Onnx__NodeProto *node;
    const sk_op_def *def;
    int64_t opset;
    size_t index;
    size_t n_in, n_out;
    int in[FZ_MEMBER_IN];
    int out[FZ_MEMBER_OUT];
} fz_member;

/* Roles of the fused step's inputs: which of its inputs is which (an index
 * into its inputs, -1 when absent). */
enum {
    R_X,      /* the activation: MatMul's A, the quantized A, DynamicQuantizeLinear's input, gelu's x,
                 the softmax's input (or the Add's first operand) */
    R_B,      /* the constant right-hand matrix */
    R_AZP,    /* A's zero point (int8, not dq) */
    R_BZP,    /* B's zero point */
    R_SCALE,  /* per-column multiplier: the Mul's other operand, or the weight scale when R_ASCALE or dq */
    R_BIAS,   /* the first Add's other operand (a bias, mostly) */
    R_RES,    /* the second Add's other operand (a residual, mostly) */
    R_LNS,    /* LayerNormalization's scale and bias */
    R_LNB,
    R_MASK,   /* softmax: the Add's second operand */
    R_NANV,   /* softmax: the value Where puts for NaN */
    R_ASCALE, /* int8, not dq: A's scale, multiplied by the weight scale in R_SCALE */
    R_COUNT
};

typedef struct fz_prog {
    fz_kind kind;
    size_t n_in, n_vals, n_members;
    fz_member m[SK_FUSE_MAX_MEMBERS];
    int r[R_COUNT];
    int dq;        /* FZ_QMATMUL: x is float32, quantized here */
    int gelu, ln;  /* epilogue stages */
    sk_ew_gelu_graph g;
    float ln_eps;
    int64_t ln_axis;
    int64_t sm_axis; /* Softmax's axis attribute as given (default filled in) */
    sk_qgemm_packed *packed; /* FZ_QMATMUL: B packed at the first run */
    const void *packed_from;
} fz_prog;

static void fz_prog_free(void *p)
{
    if (!p) return;
    sk_qgemm_packed_free(((fz_prog *)p)->packed);
    free(p);
}

/* ======================================================================= */
/* matching                                                                */
/* ======================================================================= */

typedef struct fz_ctx {
    const sk_fuse_step *st;
    size_t n;
    const sk_fuse_value *v;
    size_t nv;
    size_t *cstart; /* consumers of value i: cons[cstart[i] .. cstart[i + 1]) */
    size_t *cons;
    unsigned char *taken;
    sk_fuse_group *groups;
    size_t n_groups, cap_groups;
} fz_ctx;

static int is_onnx_domain(const char *d) { return !d || !d[0] || !strcmp(d, "ai.onnx"); }

/* Step k runs the ONNX op named op and may join a group. */
static int is_op(const fz_ctx *c, int k, const char *op)
{
    if (k < 0 || (size_t)k >= c->n || c->taken[k]) return 0;
    const sk_fuse_step *s = &c->st[k];
    return s->def && !s->has_subgraphs && s->node->op_type && !strcmp(s->node->op_type, op) &&
           is_onnx_domain(s->node->domain) && s->n_in <= FZ_MEMBER_IN && s->n_out <= FZ_MEMBER_OUT;
}

static int in_of(const fz_ctx *c, int k, size_t j) { return j < c->st[k].n_in ? c->st[k].in[j] : -1; }
static int out0(const fz_ctx *c, int k) { return c->st[k].n_out ? c->st[k].out[0] : -1; }

/* The one step reading v (once), or -1. */
static int sole_consumer(const fz_ctx *c, int v)
{
    if (v < 0 || c->v[v].keep || c->v[v].n_uses != 1 || c->cstart[v + 1] - c->cstart[v] != 1) return -1;
    return (int)c->cons[c->cstart[v]];
}

static int producer(const fz_ctx *c, int v) { return v < 0 ? -1 : c->v[v].producer; }

/* The other operand of binary step k, which reads v; -1 when it does not. */
static int other_in(const fz_ctx *c, int k, int v)
{
    if (c->st[k].n_in != 2) return -1;
    if (c->st[k].in[0] == v) return c->st[k].in[1];
    if (c->st[k].in[1] == v) return c->st[k].in[0];
    return -1;
}

static const sk_tensor *cst(const fz_ctx *c, int v) { return v >= 0 ? c->v[v].cst : NULL; }

/* v is a float32 constant with one value near want. */
static int cst_near(const fz_ctx *c, int v, double want)
{
    const sk_tensor *t = cst(c, v);
    if (!t || t->dtype != SK_FLOAT || t->numel != 1) return 0;
    double x = *(const float *)t->data;
    return fabs(x - want) <= 1e-6 * fabs(want);
}

/* t has n values along its last dim and 1 elsewhere (or is one value). */
static int lastdim_vector(const sk_tensor *t, int64_t n)
{
    if (t->numel == 1) return 1;
    if (t->rank < 1 || t->numel != n || t->dims[t->rank - 1] != n) return 0;
    return 1;
}

static float cst_value(const fz_ctx *c, int v) { return *(const float *)cst(c, v)->data; }

/* Gelu around Erf step e: members (5), x and the constants and order of its
 * arithmetic. */
static int match_gelu(const fz_ctx *c, int e, size_t mem[5], int *xo, sk_ew_gelu_graph *g)
{
    if (!is_op(c, e, "Erf") || c->st[e].n_in != 1 || c->st[e].n_out != 1) return 0;
    int dv = in_of(c, e, 0), d = producer(c, dv), x, kv;
    if (d < 0 || sole_consumer(c, dv) != e) return 0;
    if (is_op(c, d, "Div") && c->st[d].n_in == 2 && cst_near(c, in_of(c, d, 1), M_SQRT2)) {
        x = in_of(c, d, 0);
        kv = in_of(c, d, 1);
        g->pre_div = 1;
    } else if (is_op(c, d, "Mul") && c->st[d].n_in == 2 && cst_near(c, in_of(c, d, 1), M_SQRT1_2)) {
        x = in_of(c, d, 0);
        kv = in_of(c, d, 1);
        g->pre_div = 0;
    } else if (is_op(c, d, "Mul") && c->st[d].n_in == 2 && cst_near(c, in_of(c, d, 0), M_SQRT1_2)) {
        x = in_of(c, d, 1);
        kv = in_of(c, d, 0);
        g->pre_div = 0;
    } else {
        return 0;
    }
    if (x < 0 || cst(c, x)) return 0;
    g->k = cst_value(c, kv);
    int ev = out0(c, e), a = sole_consumer(c, ev);
    if (!is_op(c, a, "Add") || !cst_near(c, other_in(c, a, ev), 1.0)) return 0;
    g->one = cst_value(c, other_in(c, a, ev));
    int av = out0(c, a), m1 = sole_consumer(c, av);
    if (!is_op(c, m1, "Mul")) return 0;
    int o = other_in(c, m1, av), m1v = out0(c, m1);
    mem[0] = (size_t)d;
    mem[1] = (size_t)e;
    mem[2] = (size_t)a;
    mem[3] = (size_t)m1;
    if (o == x) { /* (x * (1 + erf)) * 0.5 */
        int m2 = sole_consumer(c, m1v);
        if (!is_op(c, m2, "Mul") || !cst_near(c, other_in(c, m2, m1v), 0.5)) return 0;
        g->half = cst_value(c, other_in(c, m2, m1v));
        g->order = 0;
        mem[4] = (size_t)m2;
    } else if (cst_near(c, o, 0.5)) { /* ((1 + erf) * 0.5) * x */
        int m2 = sole_consumer(c, m1v);
        if (!is_op(c, m2, "Mul") || other_in(c, m2, m1v) != x) return 0;
        g->half = cst_value(c, o);
        g->order = 1;
        mem[4] = (size_t)m2;
    } else { /* (x * 0.5) * (1 + erf) */
        int h = producer(c, o);
        if (!is_op(c, h, "Mul") || sole_consumer(c, o) != m1) return 0;
        if (in_of(c, h, 0) == x && cst_near(c, in_of(c, h, 1), 0.5)) g->half = cst_value(c, in_of(c, h, 1));
        else if (in_of(c, h, 1) == x && cst_near(c, in_of(c, h, 0), 0.5)) g->half = cst_value(c, in_of(c, h, 0));
        else return 0;
        g->order = 2;
        mem[4] = (size_t)h;
    }
    *xo = x;
    return 1;
}

/* The gelu whose x is v, read by two of its members and nothing else, or 0. */
static int match_gelu_of(const fz_ctx *c, int v, size_t mem[5], int *out, sk_ew_gelu_graph *g)
{
    if (v < 0 || c->v[v].keep || c->v[v].n_uses != 2 || c->cstart[v + 1] - c->cstart[v] != 2) return 0;
    for (size_t i = c->cstart[v]; i < c->cstart[v + 1]; i++) {
        int k = (int)c->cons[i];
        if (!is_op(c, k, "Div") && !is_op(c, k, "Mul")) continue;
        int e = sole_consumer(c, out0(c, k)), x;
        if (e >= 0 && match_gelu(c, e, mem, &x, g) && x == v) {
            size_t last = 0;
            for (int j = 0; j < 5; j++) last = mem[j] > last ? mem[j] : last;
            *out = out0(c, (int)last);
            return 1;
        }
    }
    return 0;
}

typedef struct fz_cand {
    size_t mem[SK_FUSE_MAX_MEMBERS];
    size_t n;
    int role_v[R_COUNT]; /* value per role; -1 absent */
    int dq, gelu, ln;
    sk_ew_gelu_graph g;
    float ln_eps;
    int64_t ln_axis, sm_axis;
} fz_cand;


static void cand_init(fz_cand *k)
{
    memset(k, 0, sizeof *k);
    for (int i = 0; i < R_COUNT; i++) k->role_v[i] = -1;
}

static int cand_add(fz_cand *k, size_t step)
{
    if (k->n >= SK_FUSE_MAX_MEMBERS) return 0;
    k->mem[k->n++] = step;
    return 1;
}

/* An Add (bias), gelu, an Add (residual) and layer norm after a product
 * whose output is *cur. The Adds' other operands may be anything the group
 * does not compute (a constant bias, a bias that is a graph input because the
 * exporter kept initializers as inputs, a residual): the kernel looks at
 * their shapes at run time. */
static void match_epilogue(const fz_ctx *c, fz_cand *k, int *cur)
{
    int s = sole_consumer(c, *cur);
    if (is_op(c, s, "Add")) {
        int o = other_in(c, s, *cur);
        if (o >= 0 && o != *cur && cand_add(k, (size_t)s)) {
            k->role_v[R_BIAS] = o;
            *cur = out0(c, s);
        }
    }
    size_t gm[5];
    int gout;
    if (k->n + 5 <= SK_FUSE_MAX_MEMBERS && match_gelu_of(c, *cur, gm, &gout, &k->g)) {
        for (int j = 0; j < 5; j++) cand_add(k, gm[j]);
        k->gelu = 1;
        *cur = gout;
    }
    s = sole_consumer(c, *cur);
    if (is_op(c, s, "Add")) {
        int o = other_in(c, s, *cur);
        if (o >= 0 && o != *cur && cand_add(k, (size_t)s)) {
            k->role_v[R_RES] = o;
            *cur = out0(c, s);
        }
    }
    s = sole_consumer(c, *cur);
    if (is_op(c, s, "LayerNormalization") && in_of(c, s, 0) == *cur &&
        sk_node_attr_int(c->st[s].node, "stash_type", 1) == 1) {
        int extra = 0; /* Mean and InvStdDev: the group only makes Y */
        for (size_t j = 1; j < c->st[s].n_out; j++) extra |= c->st[s].out[j] >= 0;
        if (in_of(c, s, 1) >= 0 && !extra && cand_add(k, (size_t)s)) {
            k->role_v[R_LNS] = in_of(c, s, 1);
            k->role_v[R_LNB] = in_of(c, s, 2);
            k->ln = 1;
            k->ln_eps = sk_node_attr_float(c->st[s].node, "epsilon", 1e-5f);
            k->ln_axis = sk_node_attr_int(c->st[s].node, "axis", -1);
            *cur = out0(c, s);
        }
    }
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static sk_status fz_run(sk_op_ctx *ctx);
static const sk_op_def fz_defs[] = {
    { "skiff", "FusedGelu", 1, fz_run },
    { "skiff", "FusedMatMul", 1, fz_run },
    { "skiff", "FusedMatMulInteger", 1, fz_run },
    { "skiff", "FusedSoftmax", 1, fz_run },
    { "skiff", "View", 1, fz_run },
};

/* Checks candidate k and records it as a group of kind kind. Returns 0 when
 * it does not qualify, -1 when out of memory, 1 when added. */
static int make_group(fz_ctx *c, fz_kind kind, fz_cand *k)
{
    if (k->n < (kind == FZ_VIEW ? 1u : 2u)) return 0;
    qsort(k->mem, k->n, sizeof *k->mem, cmp_size);
    for (size_t i = 0; i < k->n; i++)
        if (c->taken[k->mem[i]] || (i && k->mem[i] == k->mem[i - 1])) return 0;
    /* every output of a non-anchor member is read by members only */
    for (size_t i = 0; i + 1 < k->n; i++) {
        const sk_fuse_step *s = &c->st[k->mem[i]];
        for (size_t j = 0; j < s->n_out; j++) {
            int v = s->out[j];
            if (v < 0) continue;
            if (c->v[v].keep || (size_t)c->v[v].n_uses != c->cstart[v + 1] - c->cstart[v]) return 0;
            for (size_t u = c->cstart[v]; u < c->cstart[v + 1]; u++)
                if (!bsearch(&c->cons[u], k->mem, k->n, sizeof *k->mem, cmp_size)) return 0;
        }
    }
    fz_prog *pg = calloc(1, sizeof *pg);
    if (!pg) return -1;
    pg->kind = kind;
    int vals[SK_FUSE_MAX_IN];
    size_t n_in = 0;
    int tmp_of[FZ_MAX_VALS]; /* value index of each temporary (or -1 for unnamed) */
    size_t n_tmp = 0;
    for (size_t i = 0; i < k->n; i++) {
        const sk_fuse_step *s = &c->st[k->mem[i]];
        fz_member *m = &pg->m[i];
        m->node = s->node;
        m->def = s->def;
        m->opset = s->opset;
        m->index = s->index;
        m->n_in = s->n_in;
        m->n_out = s->n_out;
        for (size_t j = 0; j < s->n_in; j++) {
            int v = s->in[j], ref = -1;
            if (v >= 0) {
                for (size_t t = 0; t < n_tmp && ref < 0; t++)
                    if (tmp_of[t] == v) ref = (int)(SK_FUSE_MAX_IN + t);
                for (size_t t = 0; t < n_in && ref < 0; t++)
                    if (vals[t] == v) ref = (int)t;
                if (ref < 0) {
                    if (n_in == SK_FUSE_MAX_IN) goto reject;
                    /* a value produced by a later member would be read before it exists */
                    int pr = producer(c, v);
                    if (pr >= 0 && bsearch(&(size_t){ (size_t)pr }, k->mem, k->n, sizeof *k->mem, cmp_size)) goto reject;
                    vals[n_in] = v;
                    ref = (int)n_in++;
                }
            }
            m->in[j] = ref;
        }
        for (size_t j = 0; j < s->n_out; j++) {
            if (i + 1 == k->n) {
                m->out[j] = -1;
                continue;
            }
            tmp_of[n_tmp] = s->out[j];
            m->out[j] = (int)(SK_FUSE_MAX_IN + n_tmp++);
        }
    }
    /* temporaries are numbered after the inputs in the value table */
    for (size_t i = 0; i < k->n; i++) {
        fz_member *m = &pg->m[i];
        for (size_t j = 0; j < m->n_in; j++)
            if (m->in[j] >= SK_FUSE_MAX_IN) m->in[j] = m->in[j] - SK_FUSE_MAX_IN + (int)n_in;
        for (size_t j = 0; j < m->n_out; j++)
            if (m->out[j] >= SK_FUSE_MAX_IN) m->out[j] = m->out[j] - SK_FUSE_MAX_IN + (int)n_in;
    }
    for (int r = 0; r < R_COUNT; r++) {
        pg->r[r] = -1;
        if (k->role_v[r] < 0) continue;
        for (size_t t = 0; t < n_in; t++)
            if (vals[t] == k->role_v[r]) pg->r[r] = (int)t;
        if (pg->r[r] < 0) goto reject; /* a role filled by a member's output */
    }
    pg->n_in = n_in;
    pg->n_vals = n_in + n_tmp;
    pg->n_members = k->n;
    pg->dq = k->dq;
    pg->gelu = k->gelu;
    pg->g = k->g;
    pg->ln = k->ln;
    pg->ln_eps = k->ln_eps;
    pg->ln_axis = k->ln_axis;
    pg->sm_axis = k->sm_axis;
    if (c->n_groups == c->cap_groups) {
        size_t cap = c->cap_groups ? 2 * c->cap_groups : 16;
        sk_fuse_group *g = realloc(c->groups, cap * sizeof *g);
        if (!g) {
            free(pg);
            return -1;
        }
        c->groups = g;
        c->cap_groups = cap;
    }
    sk_fuse_group *g = &c->groups[c->n_groups++];
    memset(g, 0, sizeof *g);
    g->n_members = k->n;
    memcpy(g->members, k->mem, k->n * sizeof *k->mem);
    g->def = &fz_defs[kind];
    g->n_in = n_in;
    memcpy(g->in, vals, n_in * sizeof *vals);
    g->state = pg;
    g->state_free = fz_prog_free;
    g->view = kind == FZ_VIEW;
    for (size_t i = 0; i < k->n; i++) c->taken[k->mem[i]] = 1;
    return 1;
reject:
    free(pg);
    return 0;
}

/* MatMul(A, B const 2-D float32) and its epilogue. */
static int try_matmul(fz_ctx *c, int s)
{
    if (!is_op(c, s, "MatMul") || c->st[s].n_in != 2) return 0;
    const sk_tensor *b = cst(c, in_of(c, s, 1));
    if (!b || b->dtype != SK_FLOAT || b->rank != 2 || cst(c, in_of(c, s, 0))) return 0;
    fz_cand k;
    cand_init(&k);
    cand_add(&k, (size_t)s);
    k.role_v[R_X] = in_of(c, s, 0);
    k.role_v[R_B] = in_of(c, s, 1);
    int cur = out0(c, s);
    match_epilogue(c, &k, &cur);
    return make_group(c, FZ_MATMUL, &k);
}

/* [DynamicQuantizeLinear ->] MatMulInteger(A, B const) -> Cast(float) ->
 * Mul(scale) and the epilogue. */
static int try_qmatmul(fz_ctx *c, int s)
{
    if (!is_op(c, s, "MatMulInteger") || c->st[s].n_in < 2 || c->st[s].n_out != 1) return 0;
    int bv = in_of(c, s, 1), zbv = in_of(c, s, 3), av = in_of(c, s, 0), zav = in_of(c, s, 2);
    const sk_tensor *b = cst(c, bv);
    if (!b || (b->dtype != SK_INT8 && b->dtype != SK_UINT8) || b->rank != 2) return 0;
    if (zbv >= 0 && !cst(c, zbv)) return 0;
    int cv = out0(c, s), cs = sole_consumer(c, cv);
    if (!is_op(c, cs, "Cast") || sk_node_attr_int(c->st[cs].node, "to", 0) != SK_FLOAT) return 0;
    int mv = out0(c, cs), ms = sole_consumer(c, mv);
    if (!is_op(c, ms, "Mul")) return 0;
    int sv = other_in(c, ms, mv);
    if (sv < 0 || sv == mv) return 0;
    fz_cand k;
    cand_init(&k);
    cand_add(&k, (size_t)s);
    cand_add(&k, (size_t)cs);
    cand_add(&k, (size_t)ms);
    k.role_v[R_B] = bv;
    k.role_v[R_BZP] = zbv;
    /* DynamicQuantizeLinear whose outputs only this product reads: scale
     * through one Mul with a constant (the weight's scale) into sv */
    int dq = producer(c, av);
    if (is_op(c, dq, "DynamicQuantizeLinear") && c->st[dq].n_out == 3 && c->st[dq].out[0] == av &&
        c->st[dq].out[2] == zav && sole_consumer(c, av) == s && sole_consumer(c, zav) == s) {
        int asv = c->st[dq].out[1], sm = sole_consumer(c, asv);
        int ws = sm >= 0 ? other_in(c, sm, asv) : -1;
        const sk_tensor *w = cst(c, ws);
        if (is_op(c, sm, "Mul") && out0(c, sm) == sv && sole_consumer(c, sv) == ms && w && w->dtype == SK_FLOAT &&
            lastdim_vector(w, b->dims[1])) {
            cand_add(&k, (size_t)dq);
            cand_add(&k, (size_t)sm);
            k.dq = 1;
            k.role_v[R_X] = in_of(c, dq, 0);
            k.role_v[R_SCALE] = ws;
        }
    }
    if (!k.dq) {
        k.role_v[R_X] = av;
        k.role_v[R_AZP] = zav;
        k.role_v[R_SCALE] = sv;
        /* the multiplier made here by a Mul of A's scale and the weight's */
        int sm = producer(c, sv);
        if (is_op(c, sm, "Mul") && sole_consumer(c, sv) == ms && c->st[sm].n_in == 2) {
            for (int j = 0; j < 2; j++) {
                const sk_tensor *w = cst(c, in_of(c, sm, (size_t)j));
                int o = in_of(c, sm, (size_t)(1 - j));
                if (w && w->dtype == SK_FLOAT && lastdim_vector(w, b->dims[1]) && o >= 0 && !cst(c, o) &&
                    cand_add(&k, (size_t)sm)) {
                    k.role_v[R_SCALE] = in_of(c, sm, (size_t)j);
                    k.role_v[R_ASCALE] = o;
                    break;
                }
            }
        }
    }
    int cur = out0(c, ms);
    match_epilogue(c, &k, &cur);
    return make_group(c, FZ_QMATMUL, &k);
}

static int try_gelu(fz_ctx *c, int s)
{
    size_t mem[5];
    int x;
    fz_cand k;
    cand_init(&k);
    if (!match_gelu(c, s, mem, &x, &k.g)) return 0;
    for (int j = 0; j < 5; j++) cand_add(&k, mem[j]);
    k.role_v[R_X] = x;
    return make_group(c, FZ_GELU, &k);
}

/* [Add(x, mask) ->] Softmax [-> IsNaN -> Where(isnan, c, softmax)]. */
static int try_softmax(fz_ctx *c, int s)
{
    if (!is_op(c, s, "Softmax") || c->st[s].n_in != 1 || c->st[s].n_out != 1) return 0;
    fz_cand k;
    cand_init(&k);
    cand_add(&k, (size_t)s);
    k.sm_axis = sk_node_attr_int(c->st[s].node, "axis", c->st[s].opset >= 13 ? -1 : 1);
    int xv = in_of(c, s, 0), a = producer(c, xv);
    if (is_op(c, a, "Add") && c->st[a].n_in == 2 && sole_consumer(c, xv) == s) {
        cand_add(&k, (size_t)a);
        k.role_v[R_X] = in_of(c, a, 0);
        k.role_v[R_MASK] = in_of(c, a, 1);
    } else {
        k.role_v[R_X] = xv;
    }
    /* softmax read by IsNaN and by Where as its false branch */
    int sv = out0(c, s);
    if (sv >= 0 && !c->v[sv].keep && c->v[sv].n_uses == 2 && c->cstart[sv + 1] - c->cstart[sv] == 2) {
        int u0 = (int)c->cons[c->cstart[sv]], u1 = (int)c->cons[c->cstart[sv] + 1];
        int isn = is_op(c, u0, "IsNaN") ? u0 : u1, wh = isn == u0 ? u1 : u0;
        if (is_op(c, isn, "IsNaN") && is_op(c, wh, "Where") && c->st[wh].n_in == 3 && in_of(c, wh, 2) == sv &&
            in_of(c, wh, 0) == out0(c, isn) && sole_consumer(c, out0(c, isn)) == wh) {
            const sk_tensor *nv = cst(c, in_of(c, wh, 1));
            if (nv && nv->dtype == SK_FLOAT && nv->numel == 1) {
                cand_add(&k, (size_t)isn);
                cand_add(&k, (size_t)wh);
                k.role_v[R_NANV] = in_of(c, wh, 1);
            }
        }
    }
    return make_group(c, FZ_SOFTMAX, &k);
}

/* Views save a copy per Reshape (about 1% of BERT's time) for 2 KB of
 * code: left out of the browser runtime, which has a byte budget. */
#if defined(__wasm__) && !defined(SK_FUSE_VIEWS)
#define SK_FUSE_VIEWS 0
#elif !defined(SK_FUSE_VIEWS)
#define SK_FUSE_VIEWS 1
#endif

/* Reshape (from opset 5), Squeeze, Unsqueeze, Flatten whose output is not
 * a graph output: the output can borrow the input's bytes. */
static int try_view(fz_ctx *c, int s)
{
    if (!SK_FUSE_VIEWS) return 0;
    if (!(is_op(c, s, "Reshape") && c->st[s].opset >= 5) && !is_op(c, s, "Squeeze") && !is_op(c, s, "Unsqueeze") &&
        !is_op(c, s, "Flatten"))
        return 0;
    int v = out0(c, s);
    if (c->st[s].n_out != 1 || v < 0 || c->v[v].keep || in_of(c, s, 0) < 0) return 0;
    fz_cand k;
    cand_init(&k);
    cand_add(&k, (size_t)s);
    k.role_v[R_X] = in_of(c, s, 0);
    return make_group(c, FZ_VIEW, &k);
}

sk_status sk_fuse_find(const sk_fuse_step *steps, size_t n_steps, const sk_fuse_value *values, size_t n_values,
                       sk_fuse_group **groups, size_t *n_groups, sk_error *err)
{
    *groups = NULL;
    *n_groups = 0;
    fz_ctx c = { .st = steps, .n = n_steps, .v = values, .nv = n_values };
    size_t total = 0;
    sk_status s = SK_OK;
    c.cstart = calloc(n_values + 2, sizeof *c.cstart);
    c.taken = calloc(n_steps + 1, 1);
    if (!c.cstart || !c.taken) goto oom;
    for (size_t k = 0; k < n_steps; k++)
        for (size_t j = 0; j < steps[k].n_in; j++)
            if (steps[k].in[j] >= 0 && (size_t)steps[k].in[j] < n_values) {
                c.cstart[steps[k].in[j] + 1]++;
                total++;
            }
    for (size_t i = 0; i < n_values; i++) c.cstart[i + 1] += c.cstart[i];
    c.cons = malloc((total + 1) * sizeof *c.cons);
    size_t *fill = calloc(n_values + 1, sizeof *fill);
    if (!c.cons || !fill) {
        free(fill);
        goto oom;
    }
    for (size_t k = 0; k < n_steps; k++)
        for (size_t j = 0; j < steps[k].n_in; j++) {
            int v = steps[k].in[j];
            if (v >= 0 && (size_t)v < n_values) c.cons[c.cstart[v] + fill[v]++] = k;
        }
    free(fill);
    /* products first (they take a gelu, a residual and a layer norm along),
     * then the gelus and softmaxes left */
    int (*const tries[])(fz_ctx *, int) = { try_qmatmul, try_matmul, try_gelu, try_softmax, try_view };
    for (size_t t = 0; t < sizeof tries / sizeof *tries; t++)
        for (size_t k = 0; k < n_steps; k++)
            if (tries[t](&c, (int)k) < 0) goto oom;
    *groups = c.groups;
    *n_groups = c.n_groups;
    c.groups = NULL;
    goto done;
oom:
    s = sk_error_set(err, SK_ENOMEM, "out of memory fusing the graph");
done:
    sk_fuse_groups_free(c.groups, c.n_groups);
    free(c.cstart);
    free(c.cons);
    free(c.taken);
    return s;
}

void sk_fuse_groups_free(sk_fuse_group *groups, size_t n)
{
    for (size_t i = 0; groups && i < n; i++)
        if (groups[i].state_free) groups[i].state_free(groups[i].state);
    free(groups);
}

/* ======================================================================= */
/* kernels                                                                 */
/* ======================================================================= */

static const char *member_label(const fz_member *m, char *buf, size_t cap)
{
    if (m->node->name && m->node->name[0]) return m->node->name;
    snprintf(buf, cap, "%s #%zu", m->node->op_type, m->index);
    return buf;
}

/* The group's members one after the other with their own kernels: the
 * results, and the errors, of the plain plan. */
static sk_status fz_run_members(const fz_prog *pg, sk_op_ctx *ctx)
{
    sk_tensor tmp[FZ_MAX_VALS];
    const sk_tensor *val[FZ_MAX_VALS];
    sk_status s = SK_OK;
    memset(tmp, 0, sizeof tmp);
    for (size_t i = 0; i < pg->n_in; i++) val[i] = i < ctx->n_in ? ctx->in[i] : NULL;
    for (size_t i = pg->n_in; i < pg->n_vals; i++) val[i] = &tmp[i];
    for (size_t i = 0; i < pg->n_members && !s; i++) {
        const fz_member *m = &pg->m[i];
        const sk_tensor *in[FZ_MEMBER_IN];
        sk_tensor *out[FZ_MEMBER_OUT];
        for (size_t j = 0; j < m->n_in; j++) in[j] = m->in[j] >= 0 ? val[m->in[j]] : NULL;
        for (size_t j = 0; j < m->n_out; j++) {
            out[j] = m->out[j] >= 0 ? &tmp[m->out[j]] : ctx->out[j];
            sk_tensor_free(out[j]);
        }
        sk_error e = { SK_OK, "" };
        sk_op_ctx mc = { .node = m->node, .opset = m->opset, .n_in = m->n_in, .in = in, .n_out = m->n_out,
                         .out = out, .threads = ctx->threads, .err = &e };
        s = m->def->run(&mc);
        if (s) {
            char lb[64];
            if (!e.msg[0]) sk_error_set(&e, s, "failed (%s)", sk_status_name(s));
            e.code = s;
            sk_error_prefix(&e, "node '%s' (%s): ", member_label(m, lb, sizeof lb), m->node->op_type);
            if (ctx->err) *ctx->err = e;
        }
    }
    for (size_t i = 0; i < FZ_MAX_VALS; i++) sk_tensor_free(&tmp[i]);
    return s;
}

static const sk_tensor *fz_in(const sk_op_ctx *ctx, int r)
{
    return r >= 0 && (size_t)r < ctx->n_in ? ctx->in[r] : NULL;
}

/* A failure of the fast path (out of memory, mostly), named after the
 * group's last node. */
static sk_status fz_fail(const fz_prog *pg, sk_op_ctx *ctx, sk_status s)
{
    char lb[64];
    const fz_member *m = &pg->m[pg->n_members - 1];
    if (s == SK_ENOMEM || !ctx->err || !ctx->err->msg[0]) sk_error_set(ctx->err, s, "%s", sk_status_name(s));
    return sk_error_prefix(ctx->err, "node '%s' (%s): ", member_label(m, lb, sizeof lb), m->node->op_type);
}

/* The fast paths return 1 when the tensors do not fit them (nothing done),
 * else 0 with *st set. */

static int gelu_fast(const fz_prog *pg, sk_op_ctx *ctx, sk_status *st)
{
    const sk_tensor *x = fz_in(ctx, pg->r[R_X]);
    if (!x || x->dtype != SK_FLOAT) return 1;
    if ((*st = sk_tensor_alloc_uninit(ctx->out[0], SK_FLOAT, x->rank, x->dims, NULL))) return 0;
    sk_ew_gelu_graph_f32(ctx->out[0]->data, x->data, x->numel, &pg->g);
    return 0;
}

/* t is float32 with one value or n along the last dim, rank <= rank. */
static int f32_lastdim(const sk_tensor *t, int64_t n, int rank)
{
    return t && t->dtype == SK_FLOAT && t->rank <= rank && lastdim_vector(t, n);
}

/* Row helpers of the epilogues, for 4 lanes and, on x86-64, 16 (AVX-512):
 *   acc_to_float: y[i] = (float)acc[i] * s[i]; acc may be y's own memory
 *                 (the int32 bits the product wrote there): Cast, then Mul;
 *   nan_to: y[i] = v where y[i] is NaN: IsNaN, then Where. */
#define FZ_DEFINE_ROWS(SFX, ATTR, VF, VI, W)                                                  \
    ATTR static void acc_to_float_##SFX(float *y, const int32_t *acc, const float *s, int64_t n) \
    {                                                                                        \
        int64_t i = 0;                                                                       \
        for (; i + W <= n; i += W) {                                                         \
            VI a;                                                                            \
            VF m;                                                                            \
            memcpy(&a, acc + i, sizeof a);                                                   \
            memcpy(&m, s + i, sizeof m);                                                     \
            VF r = __builtin_convertvector(a, VF) * m;                                       \
            memcpy(y + i, &r, sizeof r);                                                     \
        }                                                                                    \
        for (; i < n; i++) {                                                                 \
            int32_t a;                                                                       \
            memcpy(&a, acc + i, sizeof a);                                                   \
            float r = (float)a * s[i];                                                       \
            memcpy(y + i, &r, sizeof r);                                                     \
        }                                                                                    \
    }                                                                                        \
    ATTR static void nan_to_##SFX(float *y, int64_t n, float v)                              \
    {                                                                                        \
        VI any = { 0 };                                                                      \
        int64_t i = 0;                                                                       \
        for (; i + W <= n; i += W) {                                                         \
            VF x;                                                                            \
            memcpy(&x, y + i, sizeof x);                                                     \
            any |= x != x;                                                                   \
        }                                                                                    \
        int found = 0;                                                                       \
        for (int l = 0; l < W; l++) found |= any[l] != 0;                                    \
        for (; i < n; i++) found |= y[i] != y[i];                                            \
        if (found)                                                                           \
            for (i = 0; i < n; i++)                                                          \
                if (y[i] != y[i]) y[i] = v;                                                  \
    }

typedef float fz_v4f __attribute__((vector_size(16)));
typedef int32_t fz_v4i __attribute__((vector_size(16)));
FZ_DEFINE_ROWS(v4, , fz_v4f, fz_v4i, 4)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(SK_NO_DISPATCH)
#define SK_FZ_X86 1
typedef float fz_v16f __attribute__((vector_size(64)));
typedef int32_t fz_v16i __attribute__((vector_size(64)));
FZ_DEFINE_ROWS(v16, __attribute__((target("avx512f"))), fz_v16f, fz_v16i, 16)
#endif

#ifdef SK_FZ_X86
static int fz_wide(void)
{
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        __builtin_cpu_init();
        c = __builtin_cpu_supports("avx512f");
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c;
}
#endif

static void acc_to_float(float *y, const int32_t *acc, const float *s, int64_t n)
{
#ifdef SK_FZ_X86
    if (fz_wide()) {
        acc_to_float_v16(y, acc, s, n);
        return;
    }
#endif
    acc_to_float_v4(y, acc, s, n);
}

static void nan_to(float *y, int64_t n, float v)
{
#ifdef SK_FZ_X86
    if (fz_wide()) {
        nan_to_v16(y, n, v);
        return;
    }
#endif
    nan_to_v4(y, n, v);
}

/* How the other operand t of an Add of the epilogue maps onto the rows of
 * the product's output (shape od): all of it (row stride N, column stride 1),
 * one row for all (0, 1) or one value (0, 0). 0 when it is none of these
 * (then the Add would change the output's shape, or broadcast otherwise). */
static int add_operand(const sk_tensor *t, const int64_t *od, int rank, int64_t *rs, int64_t *cs)
{
    const int64_t N = od[rank - 1];
    if (t->dtype != SK_FLOAT || t->rank > rank) return 0;
    if (t->rank == rank && !memcmp(t->dims, od, (size_t)rank * sizeof *od)) {
        *rs = N;
        *cs = 1;
        return 1;
    }
    if (!lastdim_vector(t, N)) return 0;
    *rs = 0;
    *cs = t->numel == 1 ? 0 : 1;
    return 1;
}

/* B's zero points as sk_qmat wants them: one value in *one, or a malloc'd
 * array of n in *many (NULL zb: none). 0 on allocation failure. */
static int zp_values(const sk_tensor *zb, int64_t n, int32_t *one, int32_t **many)
{
    *many = NULL;
    if (!zb) return 1;
    if (zb->numel == 1) {
        *one = (int32_t)sk_tensor_get_i64(zb, 0);
        return 1;
    }
    if (!(*many = malloc((size_t)n * sizeof **many))) return 0;
    for (int64_t i = 0; i < n; i++) (*many)[i] = (int32_t)sk_tensor_get_i64(zb, i);
    return 1;
}

/* The int8 product of a FZ_QMATMUL group into C (M x N int32, in the output's
 * memory), and its per-column multipliers into sv: A quantized here (dq) or
 * given with its zero point; B packed at the first run when it is a
 * constant (the same data at every run) and multiplied packed after. */
static sk_status qproduct(fz_prog *pg, sk_op_ctx *ctx, size_t M, size_t N, size_t K, void *C, float *sv)
{
    const sk_tensor *A = fz_in(ctx, pg->r[R_X]), *B = fz_in(ctx, pg->r[R_B]), *zb = fz_in(ctx, pg->r[R_BZP]);
    const sk_tensor *sc = fz_in(ctx, pg->r[R_SCALE]), *za_t = fz_in(ctx, pg->r[R_AZP]);
    float a_scale = 1;
    int32_t za = 0, zbs = 0, *zbv = NULL;
    uint8_t *qa = NULL;
    if (pg->dq) {
        uint8_t zp;
        if (!(qa = malloc((size_t)A->numel + 1))) return SK_ENOMEM;
        sk_quantize_dynamic_u8(A->data, (size_t)A->numel, &a_scale, &zp, qa);
        za = zp;
    } else if (za_t) {
        za = (int32_t)sk_tensor_get_i64(za_t, 0);
    }
    if (pg->r[R_ASCALE] >= 0) a_scale = *(const float *)fz_in(ctx, pg->r[R_ASCALE])->data;
    const float *scd = sc->data;
    const int mul_scales = pg->dq || pg->r[R_ASCALE] >= 0;
    for (size_t n = 0; n < N; n++) {
        float w = scd[sc->numel == 1 ? 0 : n];
        sv[n] = mul_scales ? a_scale * w : w; /* the Mul of the two scales, as the graph does it */
    }
    sk_qmat QA = { qa ? qa : A->data, K, !qa && A->dtype == SK_INT8, qa || za_t ? &za : NULL, 1 };
    int is_const = ((ctx->const_inputs >> pg->r[R_B]) & 1) && (!zb || ((ctx->const_inputs >> pg->r[R_BZP]) & 1));
    if (is_const && pg->packed_from != B->data) {
        sk_qgemm_packed_free(pg->packed);
        pg->packed = NULL;
        pg->packed_from = NULL;
        if (zp_values(zb, (int64_t)N, &zbs, &zbv)) {
            sk_qmat QB = { B->data, N, B->dtype == SK_INT8, zb ? (zbv ? zbv : &zbs) : NULL, zbv ? N : 1 };
            if (!sk_qgemm_pack(K, N, &QB, &pg->packed, NULL)) pg->packed_from = B->data;
            free(zbv);
        }
    }
    sk_status s;
    if (is_const && pg->packed) {
        s = sk_qgemm_packed_run(M, &QA, pg->packed, C, N, ctx->err);
    } else if (!zp_values(zb, (int64_t)N, &zbs, &zbv)) {
        s = SK_ENOMEM;
    } else {
        sk_qmat QB = { B->data, N, B->dtype == SK_INT8, zb ? (zbv ? zbv : &zbs) : NULL, zbv ? N : 1 };
        s = sk_qgemm(M, N, K, &QA, &QB, C, N, ctx->err);
        free(zbv);
    }
    free(qa);
    return s;
}

/* MatMul and MatMulInteger groups. */
static int matmul_fast(fz_prog *pg, sk_op_ctx *ctx, sk_status *st)
{
    const int q = pg->kind == FZ_QMATMUL;
    const sk_tensor *A = fz_in(ctx, pg->r[R_X]), *B = fz_in(ctx, pg->r[R_B]);
    if (!A || !B || A->rank < 2 || B->rank != 2) return 1;
    const int rank = A->rank;
    const int64_t K = A->dims[rank - 1], N = B->dims[1];
    if (B->dims[0] != K || K == 0) return 1;
    if (!q && (A->dtype != SK_FLOAT || B->dtype != SK_FLOAT)) return 1;
    if (q) {
        if (B->dtype != SK_INT8 && B->dtype != SK_UINT8) return 1;
        if (pg->dq ? A->dtype != SK_FLOAT : A->dtype != SK_INT8 && A->dtype != SK_UINT8) return 1;
        const sk_tensor *za = fz_in(ctx, pg->r[R_AZP]), *zb = fz_in(ctx, pg->r[R_BZP]), *sc = fz_in(ctx, pg->r[R_SCALE]);
        const sk_tensor *as = fz_in(ctx, pg->r[R_ASCALE]);
        if (za && (za->dtype != A->dtype || za->numel != 1)) return 1;
        if (zb && (zb->dtype != B->dtype || !(zb->numel == 1 || (zb->rank == 1 && zb->numel == N)))) return 1;
        if (!f32_lastdim(sc, N, rank)) return 1;
        if (pg->r[R_ASCALE] >= 0 && (!as || as->dtype != SK_FLOAT || as->numel != 1 || as->rank > rank)) return 1;
    }
    int64_t od[SK_TENSOR_MAX_RANK];
    memcpy(od, A->dims, (size_t)rank * sizeof *od);
    od[rank - 1] = N;
    const int64_t M = sk_shape_numel(rank - 1, A->dims);
    if (M < 0) return 1;
    const sk_tensor *bias = fz_in(ctx, pg->r[R_BIAS]), *res = fz_in(ctx, pg->r[R_RES]);
    const sk_tensor *lns = fz_in(ctx, pg->r[R_LNS]), *lnb = fz_in(ctx, pg->r[R_LNB]);
    int64_t bias_rs, bias_cs, res_rs, res_cs;
    if (bias && !add_operand(bias, od, rank, &bias_rs, &bias_cs)) return 1;
    if (res && !add_operand(res, od, rank, &res_rs, &res_cs)) return 1;
    if (pg->ln) {
        int64_t ax = pg->ln_axis < 0 ? pg->ln_axis + rank : pg->ln_axis;
        if (ax != rank - 1 || !lns || lns->dtype != SK_FLOAT || lns->numel != N) return 1;
        if (lnb && (lnb->dtype != SK_FLOAT || lnb->numel != N)) return 1;
    }
    sk_tensor *Y = ctx->out[0];
    if (sk_tensor_alloc_uninit(Y, SK_FLOAT, rank, od, NULL)) {
        *st = SK_ENOMEM;
        return 0;
    }
    if (M == 0 || N == 0) return 0;
    float *sv = NULL; /* per-column multiplier of the int8 product */
    if (!q) {
        *st = sk_gemm_f32(0, 0, (size_t)M, (size_t)N, (size_t)K, 1.0f, A->data, (size_t)K, B->data, (size_t)N, 0.0f,
                          Y->data, (size_t)N, ctx->threads, ctx->err);
    } else if (!(sv = malloc((size_t)N * sizeof *sv))) {
        *st = SK_ENOMEM;
    } else {
        *st = qproduct(pg, ctx, (size_t)M, (size_t)N, (size_t)K, Y->data, sv);
    }
    if (*st) {
        free(sv);
        return 0;
    }
    /* epilogue, a row at a time while it is in cache */
    float *y = Y->data;
    const float *bd = bias ? bias->data : NULL, *rd = res ? res->data : NULL;
    const float *lsd = lns ? lns->data : NULL, *lbd = lnb ? lnb->data : NULL;
    for (int64_t m = 0; m < M; m++) {
        float *yr = y + m * N;
        if (sv) acc_to_float(yr, (const int32_t *)(void *)yr, sv, N);
        if (bd) sk_ew_binary_f32(SK_EW_ADD, yr, yr, 1, bd + m * bias_rs, bias_cs, N);
        if (pg->gelu) sk_ew_gelu_graph_f32(yr, yr, N, &pg->g);
        if (rd) sk_ew_binary_f32(SK_EW_ADD, yr, yr, 1, rd + m * res_rs, res_cs, N);
        if (pg->ln) sk_layernorm_row(yr, yr, N, lsd, lbd, pg->ln_eps, 0, NULL, NULL);
    }
    free(sv);
    return 0;
}

/* Softmax groups. */
static int softmax_fast(const fz_prog *pg, sk_op_ctx *ctx, sk_status *st)
{
    const sk_tensor *x = fz_in(ctx, pg->r[R_X]), *mk = fz_in(ctx, pg->r[R_MASK]), *nv = fz_in(ctx, pg->r[R_NANV]);
    if (!x || x->dtype != SK_FLOAT) return 1;
    if (pg->r[R_MASK] >= 0) {
        if (!mk || mk->dtype != SK_FLOAT) return 1;
        int r;
        int64_t bd[SK_TENSOR_MAX_RANK];
        if (sk_shape_broadcast(x->rank, x->dims, mk->rank, mk->dims, &r, bd, NULL)) return 1;
        if (r == x->rank && !memcmp(bd, x->dims, (size_t)r * sizeof *bd)) {
            /* x is the full operand */
        } else if (r == mk->rank && !memcmp(bd, mk->dims, (size_t)r * sizeof *bd)) {
            const sk_tensor *t = x;
            x = mk;
            mk = t;
        } else {
            return 1;
        }
    }
    const int rank = x->rank;
    if (rank < 1) return 1;
    int64_t ax = pg->sm_axis < 0 ? pg->sm_axis + rank : pg->sm_axis;
    if (ax != rank - 1) return 1;
    if (pg->r[R_NANV] >= 0 && (!nv || nv->dtype != SK_FLOAT || nv->numel != 1 || nv->rank > rank)) return 1;
    sk_tensor *Y = ctx->out[0];
    if (sk_tensor_alloc_uninit(Y, SK_FLOAT, rank, x->dims, NULL)) {
        *st = SK_ENOMEM;
        return 0;
    }
    const int64_t n = x->dims[rank - 1];
    if (Y->numel == 0) return 0;
    const int64_t rows = Y->numel / n;
    /* the mask's offset per row: its strides over x's leading dims */
    int64_t mstr[SK_TENSOR_MAX_RANK] = { 0 }, idx[SK_TENSOR_MAX_RANK] = { 0 }, mlast = 0, moff = 0;
    if (mk) {
        int64_t s = 1;
        for (int d = rank - 1; d >= 0; d--) {
            int md = d - (rank - mk->rank);
            int64_t e = md >= 0 ? mk->dims[md] : 1;
            mstr[d] = e == 1 ? 0 : s;
            s *= e;
        }
        mlast = mstr[rank - 1];
    }
    const float *xd = x->data, *md = mk ? mk->data : NULL;
    float *y = Y->data;
    const float nanv = nv ? *(const float *)nv->data : 0;
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * n;
        const float *xr = xd + r * n;
        if (md) {
            sk_ew_binary_f32(SK_EW_ADD, yr, xr, 1, md + moff, mlast, n);
            xr = yr;
            for (int d = rank - 2; d >= 0; d--) {
                moff += mstr[d];
                if (++idx[d] < x->dims[d]) break;
                moff -= mstr[d] * x->dims[d];
                idx[d] = 0;
            }
        }
        sk_softmax_row(xr, yr, n, 0);
        if (nv) nan_to(yr, n, nanv);
    }
    return 0;
}

/* Input j of member m (NULL when absent). */
static const sk_tensor *member_in(const sk_op_ctx *ctx, const fz_member *m, size_t j)
{
    return j < m->n_in && m->in[j] >= 0 && (size_t)m->in[j] < ctx->n_in ? ctx->in[m->in[j]] : NULL;
}

/* Axes from an int64 tensor (or the axes attribute before opset 13) into
 * a[0..*n), at most SK_TENSOR_MAX_RANK; 0 when absent or malformed. */
static int view_axes(const sk_op_ctx *ctx, const fz_member *m, int64_t *a, size_t *n)
{
    *n = 0;
    if (m->opset < 13) {
        size_t cnt;
        const int64_t *v = sk_node_attr_ints(m->node, "axes", &cnt);
        if (!v || cnt > SK_TENSOR_MAX_RANK) return 0;
        memcpy(a, v, cnt * sizeof *a);
        *n = cnt;
        return 1;
    }
    const sk_tensor *t = member_in(ctx, m, 1);
    if (!t || t->dtype != SK_INT64 || t->rank > 1 || t->numel > SK_TENSOR_MAX_RANK) return 0;
    memcpy(a, t->data, (size_t)t->numel * sizeof *a);
    *n = (size_t)t->numel;
    return 1;
}

/* The output shape of a view op, as its kernel in lib/sk_ops_shape.c would
 * make it, or 0 for anything unusual (that kernel then runs and reports). */
static int view_shape(const sk_op_ctx *ctx, const fz_member *m, const sk_tensor *x, int *rank, int64_t *dims)
{
    const char *op = m->node->op_type;
    int64_t ax[SK_TENSOR_MAX_RANK];
    size_t na;
    if (!strcmp(op, "Reshape")) {
        const sk_tensor *sh = member_in(ctx, m, 1);
        if (!sh || sh->dtype != SK_INT64 || sh->rank != 1 || sh->numel > SK_TENSOR_MAX_RANK) return 0;
        const int64_t *v = sh->data;
        int allowzero = (int)sk_node_attr_int(m->node, "allowzero", 0), infer = -1;
        int64_t known = 1;
        for (int64_t i = 0; i < sh->numel; i++) {
            int64_t d = v[i];
            if (d == 0 && !allowzero) {
                if (i >= x->rank) return 0;
                d = x->dims[i];
            } else if (d == -1) {
                if (infer >= 0) return 0;
                infer = (int)i;
                d = 1;
            } else if (d < 0 || (d == 0 && allowzero)) {
                return 0; /* zeros with allowzero: rare, left to the kernel */
            }
            dims[i] = d;
            if (sk_mul_i64(known, d, &known)) return 0;
        }
        if (infer >= 0) {
            if (known == 0 || x->numel % known) return 0;
            dims[infer] = x->numel / known;
        }
        *rank = (int)sh->numel;
    } else if (!strcmp(op, "Flatten")) {
        int64_t a = sk_node_attr_int(m->node, "axis", 1), lo = 1, hi = 1;
        if (a < 0) a += x->rank;
        if (a < 0 || a > x->rank) return 0;
        for (int i = 0; i < x->rank; i++) {
            if (sk_mul_i64(i < a ? lo : hi, x->dims[i], i < a ? &lo : &hi)) return 0;
        }
        dims[0] = lo;
        dims[1] = hi;
        *rank = 2;
    } else if (!strcmp(op, "Unsqueeze")) {
        if (!view_axes(ctx, m, ax, &na) || na == 0) return 0;
        int r = x->rank + (int)na, ins[SK_TENSOR_MAX_RANK] = { 0 };
        if (r > SK_TENSOR_MAX_RANK) return 0;
        for (size_t i = 0; i < na; i++) {
            int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
            if (a < 0 || a >= r || ins[a]) return 0;
            ins[a] = 1;
        }
        for (int i = 0, j = 0; i < r; i++) dims[i] = ins[i] ? 1 : x->dims[j++];
        *rank = r;
    } else { /* Squeeze */
        int drop[SK_TENSOR_MAX_RANK] = { 0 }, r = 0;
        if (m->opset >= 13 && !member_in(ctx, m, 1)) {
            na = 0; /* no axes: every dim of 1 */
            for (int i = 0; i < x->rank; i++) drop[i] = x->dims[i] == 1;
        } else if (m->opset < 13 && !sk_node_attr(m->node, "axes")) {
            for (int i = 0; i < x->rank; i++) drop[i] = x->dims[i] == 1;
        } else {
            if (!view_axes(ctx, m, ax, &na) || na == 0) return 0;
            for (size_t i = 0; i < na; i++) {
                int64_t a = ax[i] < 0 ? ax[i] + x->rank : ax[i];
                if (a < 0 || a >= x->rank || drop[a] || x->dims[a] != 1) return 0;
                drop[a] = 1;
            }
        }
        for (int i = 0; i < x->rank; i++)
            if (!drop[i]) dims[r++] = x->dims[i];
        *rank = r;
    }
    return sk_shape_numel(*rank, dims) == x->numel;
}

static int view_fast(const fz_prog *pg, sk_op_ctx *ctx, sk_status *st)
{
    const sk_tensor *x = member_in(ctx, &pg->m[0], 0);
    int rank;
    int64_t dims[SK_TENSOR_MAX_RANK];
    if (!x || !x->data || x->numel <= 0 || !view_shape(ctx, &pg->m[0], x, &rank, dims)) return 1;
    *st = sk_tensor_borrow(ctx->out[0], x->dtype, rank, dims, x->data, x->nbytes, ctx->err);
    return 0;
}

static uint64_t fallbacks;

uint64_t sk_fuse_fallback_count(void) { return __atomic_load_n(&fallbacks, __ATOMIC_RELAXED); }

static sk_status fz_run(sk_op_ctx *ctx)
{
    fz_prog *pg = ctx->state ? *ctx->state : NULL;
    if (!pg) return sk_error_set(ctx->err, SK_EINTERNAL, "a fused kernel ran without its program");
    if (ctx->n_in != pg->n_in || ctx->n_out < 1) return sk_error_set(ctx->err, SK_EINTERNAL, "a fused kernel got the wrong inputs");
    sk_status s = SK_OK;
    int fallback = 1;
    switch (pg->kind) {
    case FZ_GELU: fallback = gelu_fast(pg, ctx, &s); break;
    case FZ_MATMUL: case FZ_QMATMUL: fallback = matmul_fast(pg, ctx, &s); break;
    case FZ_SOFTMAX: fallback = softmax_fast(pg, ctx, &s); break;
    case FZ_VIEW: fallback = SK_FUSE_VIEWS ? view_fast(pg, ctx, &s) : 1; break;
    }
    if (s) return fz_fail(pg, ctx, s);
    if (!fallback) return SK_OK;
    __atomic_add_fetch(&fallbacks, 1, __ATOMIC_RELAXED);
    return fz_run_members(pg, ctx);
}
