/* Ops that need the engine or the node's attributes rather than inputs:
 * Constant (the engine evaluates Constant nodes once, at plan time, through
 * this kernel unless the value is a tensor it can view), If, Loop, Scan. */
#include <stdlib.h>
#include <string.h>

#include "sk_engine.h"
#include "sk_model.h"
#include "sk_npy.h"
#include "sk_op.h"

/* ---- Constant --------------------------------------------------------- */

static sk_status op_constant(sk_op_ctx *ctx)
{
    const Onnx__NodeProto *n = ctx->node;
    if (ctx->n_out < 1) return sk_error_set(ctx->err, SK_EINVAL, "Constant has no output");
    sk_tensor *out = ctx->out[0];
    for (size_t i = 0; i < n->n_attribute; i++) {
        const Onnx__AttributeProto *a = n->attribute[i];
        const char *an = a->name ? a->name : "";
        if (!strcmp(an, "value") && a->t) return sk_npy_from_proto(a->t, "value", out, ctx->err);
        if (!strcmp(an, "value_float") || !strcmp(an, "value_int")) {
            int fl = an[6] == 'f';
            sk_status s = sk_tensor_alloc(out, fl ? SK_FLOAT : SK_INT64, 0, NULL, ctx->err);
            if (s) return s;
            if (fl) *(float *)out->data = a->f;
            else *(int64_t *)out->data = a->i;
            return SK_OK;
        }
        if (!strcmp(an, "value_floats") || !strcmp(an, "value_ints")) {
            int fl = an[6] == 'f';
            int64_t dim = (int64_t)(fl ? a->n_floats : a->n_ints);
            sk_status s = sk_tensor_alloc(out, fl ? SK_FLOAT : SK_INT64, 1, &dim, ctx->err);
            if (s) return s;
            if (dim) memcpy(out->data, fl ? (const void *)a->floats : (const void *)a->ints, out->nbytes);
            return SK_OK;
        }
        if (!strcmp(an, "value_string") || !strcmp(an, "value_strings"))
            return sk_error_set(ctx->err, SK_EUNSUPPORTED, "string constants are not supported");
        if (!strcmp(an, "sparse_value"))
            return sk_error_set(ctx->err, SK_EUNSUPPORTED, "sparse constants are not supported");
    }
    return sk_error_set(ctx->err, SK_EINVAL, "Constant has no value attribute");
}

/* ---- helpers ---------------------------------------------------------- */

static size_t elem_bytes(int dtype)
{
    unsigned bits = sk_dtype_valid(dtype) ? sk_dtype_table[dtype].bits : 0;
    return bits >= 8 ? bits / 8 : 0;
}

/* out = t[..., index, ...] along axis (the axis removed). */
static sk_status take(const sk_tensor *t, int axis, int64_t index, sk_tensor *out, sk_error *err)
{
    size_t es = elem_bytes(t->dtype);
    if (!es) return sk_error_set(err, SK_EUNSUPPORTED, "%s tensors cannot be scanned", sk_dtype_name(t->dtype));
    int64_t dims[SK_TENSOR_MAX_RANK];
    int r = 0;
    for (int d = 0; d < t->rank; d++)
        if (d != axis) dims[r++] = t->dims[d];
    sk_status s = sk_tensor_alloc(out, t->dtype, r, dims, err);
    if (s) return s;
    int64_t outer = 1, inner = 1, len = t->dims[axis];
    for (int d = 0; d < axis; d++) outer *= t->dims[d];
    for (int d = axis + 1; d < t->rank; d++) inner *= t->dims[d];
    size_t ib = (size_t)inner * es;
    const uint8_t *src = t->data;
    uint8_t *dst = out->data;
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + (size_t)o * ib, src + ((size_t)o * (size_t)len + (size_t)index) * ib, ib);
    return SK_OK;
}

/* out = stack(parts[0..n)) along a new axis. All parts have the same dtype and
 * shape. With n == 0 the result has dtype dtype0 and rank rank0 + 1 with
 * every dim 0. */
static sk_status stack(sk_tensor *const *parts, size_t n, int axis, int dtype0, int rank0, sk_tensor *out,
                       sk_error *err)
{
    char s1[128], s2[128];
    if (n == 0) {
        int64_t dims[SK_TENSOR_MAX_RANK] = { 0 };
        if (rank0 + 1 > SK_TENSOR_MAX_RANK) rank0 = SK_TENSOR_MAX_RANK - 1;
        return sk_tensor_alloc(out, dtype0 ? dtype0 : SK_FLOAT, rank0 + 1, dims, err);
    }
    const sk_tensor *p0 = parts[0];
    size_t es = elem_bytes(p0->dtype);
    if (!es) return sk_error_set(err, SK_EUNSUPPORTED, "%s tensors cannot be scanned", sk_dtype_name(p0->dtype));
    if (p0->rank + 1 > SK_TENSOR_MAX_RANK) return sk_error_set(err, SK_EINVAL, "scan output rank too large");
    if (axis < 0 || axis > p0->rank)
        return sk_error_set(err, SK_EINVAL, "scan output axis %d is out of range for rank %d", axis, p0->rank + 1);
    for (size_t i = 1; i < n; i++) {
        const sk_tensor *q = parts[i];
        if (q->dtype != p0->dtype || q->rank != p0->rank ||
            memcmp(q->dims, p0->dims, (size_t)q->rank * sizeof q->dims[0]))
            return sk_error_set(err, SK_EINVAL, "iteration %zu produced %s %s but iteration 0 produced %s %s", i,
                                sk_dtype_name(q->dtype), sk_shape_str(q->rank, q->dims, s1, sizeof s1),
                                sk_dtype_name(p0->dtype), sk_shape_str(p0->rank, p0->dims, s2, sizeof s2));
    }
    int64_t dims[SK_TENSOR_MAX_RANK];
    for (int d = 0, r = 0; d <= p0->rank; d++) dims[d] = d == axis ? (int64_t)n : p0->dims[r++];
    sk_status s = sk_tensor_alloc(out, p0->dtype, p0->rank + 1, dims, err);
    if (s) return s;
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; d++) outer *= p0->dims[d];
    for (int d = axis; d < p0->rank; d++) inner *= p0->dims[d];
    size_t ib = (size_t)inner * es;
    uint8_t *dst = out->data;
    for (size_t i = 0; i < n; i++)
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst + ((size_t)o * n + i) * ib, (const uint8_t *)parts[i]->data + (size_t)o * ib, ib);
    return SK_OK;
}

static void move_tensor(sk_tensor *dst, sk_tensor *src)
{
    sk_tensor_free(dst);
    *dst = *src;
    memset(src, 0, sizeof *src);
}

static int truth(const sk_tensor *t)
{
    return sk_tensor_get_f64(t, 0) != 0;
}

/* Declared element type and rank of output i of a subgraph (0 / 0 unknown). */
static void graph_output_type(const Onnx__GraphProto *g, size_t i, int *dtype, int *rank)
{
    *dtype = 0;
    *rank = 0;
    if (i >= g->n_output || !g->output[i]->type ||
        g->output[i]->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)
        return;
    const Onnx__TypeProto__Tensor *tt = g->output[i]->type->tensor_type;
    *dtype = tt->has_elem_type ? tt->elem_type : 0;
    *rank = tt->shape ? (int)tt->shape->n_dim : 0;
}

/* ---- If --------------------------------------------------------------- */

static sk_status op_if(sk_op_ctx *ctx)
{
    const sk_tensor *c = ctx->n_in ? ctx->in[0] : NULL;
    if (!c || c->numel != 1)
        return sk_error_set(ctx->err, SK_EINVAL, "the condition must be a tensor with one element");
    sk_tensor *res = calloc(ctx->n_out + 1, sizeof *res);
    if (!res) return sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
    sk_status s = sk_engine_run_subgraph(ctx, truth(c) ? "then_branch" : "else_branch", 0, NULL, ctx->n_out, res);
    for (size_t i = 0; i < ctx->n_out; i++) {
        if (!s) move_tensor(ctx->out[i], &res[i]);
        sk_tensor_free(&res[i]);
    }
    free(res);
    return s;
}

/* ---- Loop ------------------------------------------------------------- */

typedef struct tensor_list {
    sk_tensor **v;
    size_t n, cap;
} tensor_list;

static sk_status list_push(tensor_list *l, sk_tensor *t, sk_error *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        sk_tensor **v = realloc(l->v, cap * sizeof *v);
        if (!v) return sk_error_set(err, SK_ENOMEM, "out of memory");
        l->v = v;
        l->cap = cap;
    }
    sk_tensor *c = malloc(sizeof *c);
    if (!c) return sk_error_set(err, SK_ENOMEM, "out of memory");
    *c = *t;
    memset(t, 0, sizeof *t);
    l->v[l->n++] = c;
    return SK_OK;
}

static void list_free(tensor_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        sk_tensor_free(l->v[i]);
        free(l->v[i]);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static sk_status op_loop(sk_op_ctx *ctx)
{
    const Onnx__AttributeProto *ba = sk_node_attr(ctx->node, "body");
    if (!ba || !ba->g) return sk_error_set(ctx->err, SK_EINVAL, "Loop has no body graph");
    const Onnx__GraphProto *body = ba->g;
    if (ctx->n_in < 2) return sk_error_set(ctx->err, SK_EINVAL, "Loop needs at least 2 inputs (M, cond)");
    size_t nc = ctx->n_in - 2;                      /* loop-carried values */
    if (body->n_input != nc + 2 || body->n_output < nc + 1)
        return sk_error_set(ctx->err, SK_EINVAL, "the body has %zu inputs and %zu outputs for %zu loop-carried values",
                            body->n_input, body->n_output, nc);
    size_t nk = body->n_output - 1 - nc;            /* scan outputs */
    if (ctx->n_out > nc + nk)
        return sk_error_set(ctx->err, SK_EINVAL, "Loop has %zu outputs but its body makes %zu", ctx->n_out, nc + nk);
    const sk_tensor *m = ctx->in[0], *c0 = ctx->in[1];
    if ((m && m->numel != 1) || (c0 && c0->numel != 1))
        return sk_error_set(ctx->err, SK_EINVAL, "M and cond must have one element");
    int64_t max = m ? sk_tensor_get_i64(m, 0) : INT64_MAX;
    int keep = c0 ? truth(c0) : 1;
    size_t nbo = body->n_output;
    sk_status s = SK_OK;
    sk_tensor iter = { 0 }, cond = { 0 };
    sk_tensor *carried = calloc(nc + 1, sizeof *carried);   /* owned values after the first iteration */
    const sk_tensor **bin = calloc(nc + 2, sizeof *bin);
    sk_tensor *bout = calloc(nbo, sizeof *bout);
    tensor_list *scans = calloc(nk + 1, sizeof *scans);
    if (!carried || !bin || !bout || !scans) {
        s = sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
        goto done;
    }
    if ((s = sk_tensor_alloc(&iter, SK_INT64, 0, NULL, ctx->err)) ||
        (s = sk_tensor_alloc(&cond, SK_BOOL, 0, NULL, ctx->err)))
        goto done;
    for (size_t i = 0; i < nc; i++) {
        if (!ctx->in[2 + i]) {
            s = sk_error_set(ctx->err, SK_EINVAL, "loop-carried input %zu is missing", i);
            goto done;
        }
        bin[2 + i] = ctx->in[2 + i];
    }
    bin[0] = &iter;
    bin[1] = &cond;
    int64_t it = 0;
    for (; it < max && keep; it++) {
        *(int64_t *)iter.data = it;
        *(uint8_t *)cond.data = (uint8_t)keep;
        s = sk_engine_run_subgraph(ctx, "body", nc + 2, bin, nbo, bout);
        if (s) {
            sk_error_prefix(ctx->err, "iteration %lld: ", (long long)it);
            goto done;
        }
        if (bout[0].numel != 1) {
            s = sk_error_set(ctx->err, SK_EINVAL, "iteration %lld: the body's condition output has %lld elements",
                             (long long)it, (long long)bout[0].numel);
            goto done;
        }
        keep = truth(&bout[0]);
        sk_tensor_free(&bout[0]);
        for (size_t i = 0; i < nc; i++) {
            move_tensor(&carried[i], &bout[1 + i]);
            bin[2 + i] = &carried[i];
        }
        for (size_t k = 0; k < nk; k++)
            if ((s = list_push(&scans[k], &bout[1 + nc + k], ctx->err))) goto done;
    }
    for (size_t i = 0; i < nc && i < ctx->n_out; i++) {
        if (carried[i].data) move_tensor(ctx->out[i], &carried[i]);
        else if ((s = sk_tensor_copy(ctx->out[i], ctx->in[2 + i], ctx->err))) goto done;
    }
    for (size_t k = 0; k < nk && nc + k < ctx->n_out; k++) {
        int dt, rank;
        graph_output_type(body, 1 + nc + k, &dt, &rank);
        if ((s = stack(scans[k].v, scans[k].n, 0, dt, rank, ctx->out[nc + k], ctx->err))) {
            sk_error_prefix(ctx->err, "scan output %zu: ", k);
            goto done;
        }
    }
done:
    sk_tensor_free(&iter);
    sk_tensor_free(&cond);
    if (carried)
        for (size_t i = 0; i < nc; i++) sk_tensor_free(&carried[i]);
    if (bout)
        for (size_t i = 0; i < nbo; i++) sk_tensor_free(&bout[i]);
    if (scans)
        for (size_t k = 0; k < nk; k++) list_free(&scans[k]);
    free(carried);
    free(bin);
    free(bout);
    free(scans);
    return s;
}

/* ---- Scan ------------------------------------------------------------- */

typedef struct scan_spec {
    size_t n_state, n_scan_in, n_scan_out;
    const int64_t *in_axes, *in_dirs, *out_axes, *out_dirs;
    size_t n_in_axes, n_in_dirs, n_out_axes, n_out_dirs;
} scan_spec;

static int64_t spec_at(const int64_t *v, size_t n, size_t i)
{
    return v && i < n ? v[i] : 0;
}

/* One Scan over state[0..n_state) and scan inputs xs[0..n_scan_in), running
 * len iterations (len <= the scanned length); fills out[0..n_state+n_scan_out)
 * with owned tensors. */
static sk_status scan_core(sk_op_ctx *ctx, const scan_spec *sp, const sk_tensor *const *state,
                           const sk_tensor *const *xs, int64_t len, sk_tensor *out)
{
    const Onnx__GraphProto *body = sk_node_attr(ctx->node, "body")->g;
    size_t ns = sp->n_state, nm = sp->n_scan_in, nk = sp->n_scan_out;
    sk_status s = SK_OK;
    const sk_tensor **bin = calloc(ns + nm + 1, sizeof *bin);
    sk_tensor *slices = calloc(nm + 1, sizeof *slices), *cur = calloc(ns + 1, sizeof *cur);
    sk_tensor *bout = calloc(ns + nk + 1, sizeof *bout);
    tensor_list *scans = calloc(nk + 1, sizeof *scans);
    int *axes = calloc(nm + 1, sizeof *axes);
    if (!bin || !slices || !cur || !bout || !scans || !axes) {
        s = sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < nm; j++) {
        int64_t a = spec_at(sp->in_axes, sp->n_in_axes, j);
        int r = xs[j]->rank;
        if (a < 0) a += r;
        if (a < 0 || a >= r) {
            s = sk_error_set(ctx->err, SK_EINVAL, "scan input %zu: axis %lld is out of range for rank %d", j,
                             (long long)spec_at(sp->in_axes, sp->n_in_axes, j), r);
            goto done;
        }
        axes[j] = (int)a;
        if (xs[j]->dims[a] < len) {
            s = sk_error_set(ctx->err, SK_EINVAL, "scan input %zu has %lld entries along axis %lld, expected %lld", j,
                             (long long)xs[j]->dims[a], (long long)a, (long long)len);
            goto done;
        }
    }
    for (size_t i = 0; i < ns; i++) bin[i] = state[i];
    for (int64_t t = 0; t < len; t++) {
        for (size_t j = 0; j < nm; j++) {
            int64_t idx = spec_at(sp->in_dirs, sp->n_in_dirs, j) ? len - 1 - t : t;
            if ((s = take(xs[j], axes[j], idx, &slices[j], ctx->err))) goto done;
            bin[ns + j] = &slices[j];
        }
        s = sk_engine_run_subgraph(ctx, "body", ns + nm, bin, ns + nk, bout);
        if (s) {
            sk_error_prefix(ctx->err, "iteration %lld: ", (long long)t);
            goto done;
        }
        for (size_t i = 0; i < ns; i++) {
            move_tensor(&cur[i], &bout[i]);
            bin[i] = &cur[i];
        }
        for (size_t k = 0; k < nk; k++)
            if ((s = list_push(&scans[k], &bout[ns + k], ctx->err))) goto done;
    }
    for (size_t i = 0; i < ns; i++) {
        if (cur[i].data) move_tensor(&out[i], &cur[i]);
        else if ((s = sk_tensor_copy(&out[i], state[i], ctx->err))) goto done;
    }
    for (size_t k = 0; k < nk; k++) {
        int dt, rank;
        graph_output_type(body, ns + k, &dt, &rank);
        int r = scans[k].n ? scans[k].v[0]->rank : rank;
        int64_t a = spec_at(sp->out_axes, sp->n_out_axes, k);
        if (a < 0) a += r + 1;
        if (a < 0 || a > r) {
            s = sk_error_set(ctx->err, SK_EINVAL, "scan output %zu: axis %lld is out of range", k,
                             (long long)spec_at(sp->out_axes, sp->n_out_axes, k));
            goto done;
        }
        if (spec_at(sp->out_dirs, sp->n_out_dirs, k))
            for (size_t i = 0; i < scans[k].n / 2; i++) {
                sk_tensor *tmp = scans[k].v[i];
                scans[k].v[i] = scans[k].v[scans[k].n - 1 - i];
                scans[k].v[scans[k].n - 1 - i] = tmp;
            }
        if ((s = stack(scans[k].v, scans[k].n, (int)a, dt, rank, &out[ns + k], ctx->err))) goto done;
    }
done:
    if (slices)
        for (size_t j = 0; j < nm; j++) sk_tensor_free(&slices[j]);
    if (cur)
        for (size_t i = 0; i < ns; i++) sk_tensor_free(&cur[i]);
    if (bout)
        for (size_t i = 0; i < ns + nk; i++) sk_tensor_free(&bout[i]);
    if (scans)
        for (size_t k = 0; k < nk; k++) list_free(&scans[k]);
    if (s && out)
        for (size_t i = 0; i < ns + nk; i++) sk_tensor_free(&out[i]);
    free(bin);
    free(slices);
    free(cur);
    free(bout);
    free(scans);
    free(axes);
    return s;
}

static sk_status scan_setup(sk_op_ctx *ctx, size_t first, scan_spec *sp)
{
    const Onnx__AttributeProto *ba = sk_node_attr(ctx->node, "body");
    if (!ba || !ba->g) return sk_error_set(ctx->err, SK_EINVAL, "Scan has no body graph");
    const Onnx__GraphProto *body = ba->g;
    memset(sp, 0, sizeof *sp);
    int64_t m = sk_node_attr_int(ctx->node, "num_scan_inputs", -1);
    size_t n_in = ctx->n_in - first;
    if (m < 1 || (uint64_t)m > n_in)
        return sk_error_set(ctx->err, SK_EINVAL, "num_scan_inputs %lld is out of range for %zu inputs", (long long)m,
                            n_in);
    sp->n_scan_in = (size_t)m;
    sp->n_state = n_in - sp->n_scan_in;
    if (body->n_input != n_in || body->n_output < sp->n_state)
        return sk_error_set(ctx->err, SK_EINVAL, "the body has %zu inputs and %zu outputs, Scan has %zu inputs",
                            body->n_input, body->n_output, n_in);
    sp->n_scan_out = body->n_output - sp->n_state;
    if (ctx->n_out != body->n_output)
        return sk_error_set(ctx->err, SK_EINVAL, "Scan has %zu outputs but its body makes %zu", ctx->n_out,
                            body->n_output);
    for (size_t i = first; i < ctx->n_in; i++)
        if (!ctx->in[i]) return sk_error_set(ctx->err, SK_EINVAL, "input %zu is missing", i);
    sp->in_axes = sk_node_attr_ints(ctx->node, "scan_input_axes", &sp->n_in_axes);
    sp->in_dirs = sk_node_attr_ints(ctx->node, "scan_input_directions", &sp->n_in_dirs);
    if (!sp->in_dirs) sp->in_dirs = sk_node_attr_ints(ctx->node, "directions", &sp->n_in_dirs); /* opset 8 */
    sp->out_axes = sk_node_attr_ints(ctx->node, "scan_output_axes", &sp->n_out_axes);
    sp->out_dirs = sk_node_attr_ints(ctx->node, "scan_output_directions", &sp->n_out_dirs);
    return SK_OK;
}

static sk_status op_scan9(sk_op_ctx *ctx)
{
    scan_spec sp;
    sk_status s = scan_setup(ctx, 0, &sp);
    if (s) return s;
    const sk_tensor *const *xs = ctx->in + sp.n_state;
    int64_t a = spec_at(sp.in_axes, sp.n_in_axes, 0);
    if (a < 0) a += xs[0]->rank;
    if (a < 0 || a >= xs[0]->rank)
        return sk_error_set(ctx->err, SK_EINVAL, "scan input 0: axis %lld is out of range", (long long)a);
    int64_t len = xs[0]->dims[a];
    for (size_t j = 1; j < sp.n_scan_in; j++) {
        int64_t aj = spec_at(sp.in_axes, sp.n_in_axes, j);
        if (aj < 0) aj += xs[j]->rank;
        if (aj >= 0 && aj < xs[j]->rank && xs[j]->dims[aj] != len)
            return sk_error_set(ctx->err, SK_EINVAL, "scan input %zu has %lld entries along its axis, scan input 0 has %lld",
                                j, (long long)xs[j]->dims[aj], (long long)len);
    }
    sk_tensor *out = calloc(ctx->n_out + 1, sizeof *out);
    if (!out) return sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
    s = scan_core(ctx, &sp, ctx->in, xs, len, out);
    for (size_t i = 0; i < ctx->n_out; i++) {
        if (!s) move_tensor(ctx->out[i], &out[i]);
        sk_tensor_free(&out[i]);
    }
    free(out);
    return s;
}

/* Scan-8: every input has a batch axis 0 (scan inputs scan along axis 1),
 * optional sequence_lens per batch entry; shorter sequences leave zeros. */
static sk_status op_scan8(sk_op_ctx *ctx)
{
    scan_spec sp;
    if (ctx->n_in < 1) return sk_error_set(ctx->err, SK_EINVAL, "Scan needs inputs");
    sk_status s = scan_setup(ctx, 1, &sp);
    if (s) return s;
    size_t ns = sp.n_state, nm = sp.n_scan_in, nk = sp.n_scan_out;
    const sk_tensor *const *in = ctx->in + 1;
    const sk_tensor *lens = ctx->in[0];
    int64_t batch = in[0]->rank ? in[0]->dims[0] : 0;
    for (size_t i = 0; i < ns + nm; i++)
        if (in[i]->rank < (i < ns ? 1 : 2) || in[i]->dims[0] != batch)
            return sk_error_set(ctx->err, SK_EINVAL, "input %zu lacks the batch axis of %lld", i + 1, (long long)batch);
    int64_t maxlen = in[ns]->dims[1];
    if (lens && lens->numel != batch)
        return sk_error_set(ctx->err, SK_EINVAL, "sequence_lens has %lld entries for a batch of %lld",
                            (long long)lens->numel, (long long)batch);
    scan_spec inner = sp;
    inner.in_axes = NULL;
    inner.n_in_axes = 0;
    sk_tensor *part = calloc(ns + nm + 1, sizeof *part);
    const sk_tensor **pp = calloc(ns + nm + 1, sizeof *pp);
    sk_tensor *res = calloc(ns + nk + 1, sizeof *res);
    tensor_list *acc = calloc(ns + nk + 1, sizeof *acc);
    if (!part || !pp || !res || !acc) {
        s = sk_error_set(ctx->err, SK_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t b = 0; b < batch; b++) {
        int64_t len = lens ? sk_tensor_get_i64(lens, b) : maxlen;
        if (len < 0 || len > maxlen) {
            s = sk_error_set(ctx->err, SK_EINVAL, "sequence_lens[%lld] = %lld is out of range", (long long)b,
                             (long long)len);
            goto done;
        }
        for (size_t i = 0; i < ns + nm; i++) {
            if ((s = take(in[i], 0, b, &part[i], ctx->err))) goto done;
            pp[i] = &part[i];
        }
        if ((s = scan_core(ctx, &inner, pp, pp + ns, len, res))) goto done;
        for (size_t k = ns; k < ns + nk && len < maxlen; k++) {
            /* pad the scan output to maxlen along axis 0 with zeros */
            sk_tensor padded = { 0 };
            int64_t dims[SK_TENSOR_MAX_RANK];
            memcpy(dims, res[k].dims, sizeof dims);
            dims[0] = maxlen;
            if (res[k].rank < 1 || (s = sk_tensor_alloc(&padded, res[k].dtype, res[k].rank, dims, ctx->err))) {
                if (!s) s = sk_error_set(ctx->err, SK_EINVAL, "bad scan output");
                goto done;
            }
            memcpy(padded.data, res[k].data, res[k].nbytes);
            move_tensor(&res[k], &padded);
        }
        for (size_t i = 0; i < ns + nk; i++)
            if ((s = list_push(&acc[i], &res[i], ctx->err))) goto done;
        for (size_t i = 0; i < ns + nm; i++) sk_tensor_free(&part[i]);
    }
    for (size_t i = 0; i < ns + nk; i++) {
        int dt, rank;
        graph_output_type(sk_node_attr(ctx->node, "body")->g, i, &dt, &rank);
        if ((s = stack(acc[i].v, acc[i].n, 0, dt, rank + (i >= ns), ctx->out[i], ctx->err))) goto done;
    }
done:
    if (part)
        for (size_t i = 0; i < ns + nm; i++) sk_tensor_free(&part[i]);
    if (res)
        for (size_t i = 0; i < ns + nk; i++) sk_tensor_free(&res[i]);
    if (acc)
        for (size_t i = 0; i < ns + nk; i++) list_free(&acc[i]);
    free(part);
    free(pp);
    free(res);
    free(acc);
    return s;
}

const sk_op_def sk_ops_control[] = {
    { "", "Constant", 1, op_constant },
    { "", "If", 1, op_if },
    { "", "Loop", 1, op_loop },
    { "", "Scan", 8, op_scan8 },
    { "", "Scan", 9, op_scan9 },
    { NULL, NULL, 0, NULL },
};
