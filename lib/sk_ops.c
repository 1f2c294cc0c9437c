#include "sk_op.h"

#include <string.h>

extern const sk_op_def sk_ops_attention[]; /* lib/sk_ops_attention.c: com.microsoft Attention, MultiHeadAttention */

static const sk_op_def *const tables[] = {
    sk_ops_elementwise, sk_ops_shape, sk_ops_reduce, sk_ops_nn, sk_ops_quant, sk_ops_control,
    sk_ops_attention,
};

static int domain_eq(const char *a, const char *b)
{
    if (!a || !strcmp(a, "ai.onnx")) a = "";
    if (!b || !strcmp(b, "ai.onnx")) b = "";
    return !strcmp(a, b);
}

const sk_op_def *sk_op_find(const char *domain, const char *name, int64_t opset)
{
    const sk_op_def *best = NULL;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const sk_op_def *d = tables[t]; d->name; d++)
            if (!strcmp(d->name, name) && domain_eq(d->domain, domain) && d->since <= opset &&
                (!best || d->since > best->since))
                best = d;
    return best;
}

void sk_op_foreach(void (*fn)(const sk_op_def *def, void *arg), void *arg)
{
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const sk_op_def *d = tables[t]; d->name; d++)
            fn(d, arg);
}
