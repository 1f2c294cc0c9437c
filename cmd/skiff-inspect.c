/* skiff-inspect: what is in an ONNX model. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sk_attn.h"
#include "sk_cli.h"
#include "sk_model.h"
#include "sk_stats.h"

static const char usage[] =
    "usage: skiff-inspect MODEL [--json] [--top N] [-q|-v]\n"
    "\n"
    "Prints an ONNX model's IR version, producer, opsets, inputs and outputs\n"
    "(dtype and shape, symbolic dims by name), operator histogram, weight count\n"
    "and bytes by dtype and by storage (initializer, Constant, external), the\n"
    "largest tensors, and the multi-head attention blocks (layer, heads, head\n"
    "size, and the nodes and weights that carry the heads).\n"
    "\n"
    "  --json     machine-readable output (keys: ir_version, producer, opsets,\n"
    "             inputs, outputs, ops, nodes, params, bytes, by_dtype,\n"
    "             by_storage, largest, attention)\n"
    "  --top N    how many of the largest tensors to list (default 10)\n"
    "  -q, -v     quieter, more verbose\n"
    "  -h, --help, -V, --version\n"
    "\n"
    "Exit status: 0 ok, 1 the model is bad, 2 usage error.\n";

static void print_shape(FILE *f, const sk_value_info *vi, int json)
{
    const Onnx__TypeProto *tp = vi->type;
    const Onnx__TensorShapeProto *sh =
        tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->tensor_type ? tp->tensor_type->shape : NULL;
    if (!sh) {
        fputs(json ? "null" : "?", f);
        return;
    }
    fputc('[', f);
    for (size_t i = 0; i < sh->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sh->dim[i];
        if (i) fputs(json ? ", " : ",", f);
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) fprintf(f, "%" PRId64, d->dim_value);
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM) {
            if (json) sk_json_str(f, d->dim_param);
            else fputs(d->dim_param, f);
        } else fputs(json ? "null" : "?", f);
    }
    fputc(']', f);
}

static int elem_type(const sk_value_info *vi)
{
    const Onnx__TypeProto *tp = vi->type;
    if (tp && tp->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && tp->tensor_type) return tp->tensor_type->elem_type;
    return 0;
}

static void print_values_json(FILE *f, size_t n, sk_value_info **v)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", {\"name\": " : "{\"name\": ", f);
        sk_json_str(f, v[i]->name);
        fprintf(f, ", \"dtype\": \"%s\", \"shape\": ", sk_dtype_name(elem_type(v[i])));
        print_shape(f, v[i], 1);
        fputc('}', f);
    }
    fputc(']', f);
}

static void print_bucket_json(FILE *f, const sk_weight_bucket *b)
{
    fprintf(f, "{\"tensors\": %" PRIu64 ", \"params\": %" PRIu64 ", \"bytes\": %" PRIu64 "}", b->tensors, b->params, b->bytes);
}

static const char *node_name(const sk_node_proto *n, char *buf, size_t cap)
{
    if (!n) return "";
    if (n->name && *n->name) return n->name;
    snprintf(buf, cap, "%s -> %s", n->op_type, n->n_output ? n->output[0] : "?");
    return buf;
}

static void print_proj_json(FILE *f, const char *key, const sk_attn_proj *p, int rows)
{
    char nb[512];
    fprintf(f, ", ");
    sk_json_str(f, key);
    fputs(": {\"node\": ", f);
    sk_json_str(f, node_name(p->node, nb, sizeof nb));
    fputs(", \"op\": ", f);
    sk_json_str(f, p->node ? p->node->op_type : "");
    fputs(", \"weight\": ", f);
    sk_json_str(f, p->weight ? p->weight : "");
    fprintf(f, ", \"%s\": [%" PRId64 ", %" PRId64 "], \"transposed\": %s, \"bias\": ", rows ? "rows" : "columns", p->col,
            p->col + p->width, p->transposed ? "true" : "false");
    if (p->bias) sk_json_str(f, p->bias);
    else fputs("null", f);
    fputc('}', f);
}

static void print_attention_json(FILE *f, const sk_attn_info *a)
{
    char nb[512];
    fputs(",\n  \"attention\": {\"blocks\": [", f);
    for (size_t i = 0; a && i < a->n_blocks; i++) {
        const sk_attn_block *b = &a->blocks[i];
        fprintf(f, "%s\n    {\"layer\": %" PRId64 ", \"kind\": ", i ? "," : "", b->layer);
        sk_json_str(f, sk_attn_kind_name(b->kind));
        fprintf(f, ", \"heads\": %" PRId64 ", \"kv_heads\": %" PRId64 ", \"head_size\": %" PRId64
                   ", \"v_head_size\": %" PRId64 ", \"hidden\": %" PRId64 ", \"head_params\": %" PRId64 ", \"core\": ",
                b->heads, b->kv_heads, b->head_size, b->v_head_size, b->hidden, sk_attn_block_params(b));
        sk_json_str(f, node_name(b->core, nb, sizeof nb));
        print_proj_json(f, "q", &b->q, 0);
        print_proj_json(f, "k", &b->k, 0);
        print_proj_json(f, "v", &b->v, 0);
        print_proj_json(f, "o", &b->o, 1);
        fputs(", \"split\": ", f);
        if (b->split) sk_json_str(f, node_name(b->split, nb, sizeof nb));
        else fputs("null", f);
        fputs(", \"context\": ", f);
        sk_json_str(f, b->context);
        fprintf(f, ", \"head_constants\": %zu, \"headwise_constants\": %zu}", b->n_refs, b->n_headwise);
    }
    fputs(a && a->n_blocks ? "\n  ], \"unrecognised\": [" : "], \"unrecognised\": [", f);
    for (size_t i = 0; a && i < a->n_misses; i++) {
        fputs(i ? ", {\"node\": " : "{\"node\": ", f);
        sk_json_str(f, a->misses[i].node);
        fputs(", \"reason\": ", f);
        sk_json_str(f, a->misses[i].reason);
        fputc('}', f);
    }
    fputs("]}", f);
}

static void print_attention_text(FILE *f, const sk_attn_info *a, int verbosity)
{
    char nb[512];
    if (!a->n_blocks) {
        if (a->n_misses)
            fprintf(f, "\nattention  none recognised (%zu Softmax node%s between MatMuls could not be resolved)\n",
                    a->n_misses, a->n_misses == 1 ? "" : "s");
        else
            fputs("\nattention  none recognised (no Softmax between two MatMuls, no com.microsoft Attention or "
                  "MultiHeadAttention)\n", f);
    } else {
        int64_t total = 0;
        for (size_t i = 0; i < a->n_blocks; i++) total += a->blocks[i].heads;
        fprintf(f, "\nattention  %zu block%s, %" PRId64 " heads\n", a->n_blocks, a->n_blocks == 1 ? "" : "s", total);
        fputs("  layer heads kv  head  kind          core\n", f);
    }
    for (size_t i = 0; i < a->n_blocks; i++) {
        const sk_attn_block *b = &a->blocks[i];
        fprintf(f, "  %-5" PRId64 " %-5" PRId64 " %-3" PRId64 " %-5" PRId64 " %-13s %s\n", b->layer, b->heads, b->kv_heads,
                b->head_size,
                b->kind == SK_ATTN_GRAPH ? "graph" : b->kind == SK_ATTN_MS_ATTENTION ? "ms.Attention" : "ms.MHA",
                node_name(b->core, nb, sizeof nb));
        if (verbosity < 1) continue;
        const struct { const char *k; const sk_attn_proj *p; } pr[4] = { { "q", &b->q }, { "k", &b->k }, { "v", &b->v }, { "o", &b->o } };
        for (size_t r = 0; r < 4; r++) {
            const sk_attn_proj *p = pr[r].p;
            fprintf(f, "        %s %-9s %s  weight %s %s %" PRId64 "..%" PRId64 "%s%s\n", pr[r].k, p->node->op_type,
                    node_name(p->node, nb, sizeof nb), p->weight, r == 3 ? "rows" : "cols", p->col, p->col + p->width,
                    p->bias ? "  bias " : "", p->bias ? p->bias : "");
        }
        if (verbosity < 2) continue;
        fprintf(f, "        context %s, %zu head-count constant%s, %zu per-head constant%s\n", b->context, b->n_refs,
                b->n_refs == 1 ? "" : "s", b->n_headwise, b->n_headwise == 1 ? "" : "s");
        static const char *const dims[] = { "heads", "kv_heads", "group", "q width", "v width", "kv width",
                                            "kv v width", "fused width", "split sizes" };
        for (size_t r = 0; r < b->n_refs; r++) {
            const sk_attn_ref *rf = &b->refs[r];
            if (rf->attr) fprintf(f, "          %s: attribute %s of %s\n", dims[rf->dim], rf->attr, node_name(rf->node, nb, sizeof nb));
            else fprintf(f, "          %s: %s input %zu [%" PRId64 "]\n", dims[rf->dim], node_name(rf->node, nb, sizeof nb),
                         rf->input, rf->elem);
        }
    }
    for (size_t i = 0; i < a->n_misses && (verbosity >= 1 || !a->n_blocks); i++)
        fprintf(f, "  not recognised: %s: %s\n", a->misses[i].node, a->misses[i].reason);
}

static void print_json(FILE *f, sk_model *m, const sk_model_stats *st, const sk_attn_info *attn)
{
    sk_model_proto *p = sk_model_proto_of(m);
    sk_graph_proto *g = sk_model_graph(m);
    fprintf(f, "{\n  \"ir_version\": %" PRId64 ",\n  \"producer\": ", p->ir_version);
    sk_json_str(f, p->producer_name);
    fputs(",\n  \"producer_version\": ", f);
    sk_json_str(f, p->producer_version);
    fputs(",\n  \"opsets\": {", f);
    for (size_t i = 0; i < p->n_opset_import; i++) {
        if (i) fputs(", ", f);
        sk_json_str(f, p->opset_import[i]->domain && *p->opset_import[i]->domain ? p->opset_import[i]->domain : "ai.onnx");
        fprintf(f, ": %" PRId64, p->opset_import[i]->version);
    }
    fputs("},\n  \"inputs\": ", f);
    print_values_json(f, g->n_input, g->input);
    fputs(",\n  \"outputs\": ", f);
    print_values_json(f, g->n_output, g->output);
    fputs(",\n  \"ops\": {", f);
    for (size_t i = 0; i < st->n_ops; i++) {
        if (i) fputs(", ", f);
        sk_json_str(f, st->ops[i].op);
        fprintf(f, ": %" PRIu64, st->ops[i].count);
    }
    fprintf(f, "},\n  \"nodes\": %" PRIu64 ",\n  \"params\": %" PRIu64 ",\n  \"bytes\": %" PRIu64 ",\n  \"file_bytes\": %" PRIu64 ",\n  \"by_dtype\": {",
            st->n_nodes, st->total.params, st->total.bytes, sk_model_file_size(m));
    int first = 1;
    for (int d = 0; d < SK_DTYPE_COUNT; d++) {
        if (!st->by_dtype[d].tensors) continue;
        fprintf(f, "%s\"%s\": ", first ? "" : ", ", sk_dtype_name(d));
        print_bucket_json(f, &st->by_dtype[d]);
        first = 0;
    }
    fputs("},\n  \"by_storage\": {\"initializer\": ", f);
    print_bucket_json(f, &st->initializer);
    fputs(", \"constant\": ", f);
    print_bucket_json(f, &st->constant);
    fputs(", \"external\": ", f);
    print_bucket_json(f, &st->external);
    fputs("},\n  \"largest\": [", f);
    for (size_t i = 0; i < st->n_largest; i++) {
        const sk_tensor_proto *t = st->largest[i].t;
        fputs(i ? ", {\"name\": " : "{\"name\": ", f);
        sk_json_str(f, t->name);
        fprintf(f, ", \"dtype\": \"%s\", \"shape\": [", sk_dtype_name(t->data_type));
        for (size_t k = 0; k < t->n_dims; k++) fprintf(f, k ? ", %" PRId64 : "%" PRId64, t->dims[k]);
        fprintf(f, "], \"bytes\": %" PRIu64 ", \"storage\": \"%s\"}", st->largest[i].bytes,
                sk_tensor_proto_storage(t) == SK_STORE_EXTERNAL ? "external" : st->largest[i].place ? "constant" : "initializer");
    }
    fputc(']', f);
    print_attention_json(f, attn);
    fputs("\n}\n", f);
}

static void print_text(FILE *f, sk_model *m, const sk_model_stats *st, const sk_attn_info *attn, int verbosity)
{
    char hb[32];
    sk_model_proto *p = sk_model_proto_of(m);
    sk_graph_proto *g = sk_model_graph(m);
    fprintf(f, "model      %s (%s)\n", sk_model_path(m), sk_human_bytes(sk_model_file_size(m), hb, sizeof hb));
    fprintf(f, "ir_version %" PRId64 "\nproducer   %s %s\nopsets    ", p->ir_version,
            p->producer_name ? p->producer_name : "", p->producer_version ? p->producer_version : "");
    for (size_t i = 0; i < p->n_opset_import; i++)
        fprintf(f, " %s=%" PRId64, p->opset_import[i]->domain && *p->opset_import[i]->domain ? p->opset_import[i]->domain : "ai.onnx",
                p->opset_import[i]->version);
    fputs("\n\ninputs\n", f);
    for (size_t i = 0; i < g->n_input; i++) {
        fprintf(f, "  %-28s %-8s ", g->input[i]->name, sk_dtype_name(elem_type(g->input[i])));
        print_shape(f, g->input[i], 0);
        fputc('\n', f);
    }
    fputs("outputs\n", f);
    for (size_t i = 0; i < g->n_output; i++) {
        fprintf(f, "  %-28s %-8s ", g->output[i]->name, sk_dtype_name(elem_type(g->output[i])));
        print_shape(f, g->output[i], 0);
        fputc('\n', f);
    }
    fprintf(f, "\nops (%" PRIu64 " nodes)\n", st->n_nodes);
    for (size_t i = 0; i < st->n_ops; i++) fprintf(f, "  %-28s %" PRIu64 "\n", st->ops[i].op, st->ops[i].count);
    fprintf(f, "\nweights    %" PRIu64 " params in %" PRIu64 " tensors, %s\n", st->total.params, st->total.tensors,
            sk_human_bytes(st->total.bytes, hb, sizeof hb));
    for (int d = 0; d < SK_DTYPE_COUNT; d++)
        if (st->by_dtype[d].tensors)
            fprintf(f, "  %-10s %12" PRIu64 " params %6" PRIu64 " tensors %12s\n", sk_dtype_name(d), st->by_dtype[d].params,
                    st->by_dtype[d].tensors, sk_human_bytes(st->by_dtype[d].bytes, hb, sizeof hb));
    const struct { const char *n; const sk_weight_bucket *b; } s[] = {
        { "initializer", &st->initializer }, { "Constant", &st->constant }, { "external", &st->external } };
    fputs("storage\n", f);
    for (size_t i = 0; i < 3; i++)
        fprintf(f, "  %-10s %12" PRIu64 " params %6" PRIu64 " tensors %12s\n", s[i].n, s[i].b->params, s[i].b->tensors,
                sk_human_bytes(s[i].b->bytes, hb, sizeof hb));
    if (st->n_largest) fputs("\nlargest tensors\n", f);
    for (size_t i = 0; i < st->n_largest && (verbosity > 0); i++) {
        const sk_tensor_proto *t = st->largest[i].t;
        char shape[128];
        size_t at = 0;
        shape[0] = 0;
        for (size_t k = 0; k < t->n_dims && at < sizeof shape; k++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, k ? "x%" PRId64 : "%" PRId64, t->dims[k]);
        fprintf(f, "  %-40s %-8s %-16s %s\n", t->name ? t->name : "", sk_dtype_name(t->data_type), shape,
                sk_human_bytes(st->largest[i].bytes, hb, sizeof hb));
    }
    print_attention_text(f, attn, verbosity);
}

int main(int argc, char **argv)
{
    sk_cli cli = { "skiff-inspect", usage, 1, 0 };
    const char *path = NULL;
    uint64_t top = 10;
    int opts_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1]) {
            if (sk_cli_common(&cli, argc, argv, &i)) continue;
            if (!strcmp(a, "--")) { opts_done = 1; continue; }
            if (!strcmp(a, "--top")) {
                if (++i >= argc || sk_cli_parse_u64(argv[i], &top) || top > 100000)
                    return sk_cli_usage_error(&cli, "--top needs a number");
                continue;
            }
            return sk_cli_usage_error(&cli, "unknown option '%s'", a);
        }
        if (path) return sk_cli_usage_error(&cli, "one model at a time ('%s' and '%s')", path, a);
        path = a;
    }
    if (!path) return sk_cli_usage_error(&cli, "no model given");
    sk_error err = { 0 };
    sk_model *m;
    if (sk_model_load(path, NULL, &m, &err)) return sk_cli_fail(&cli, &err);
    sk_model_stats st;
    if (sk_model_stats_compute(m, (size_t)top, &st, &err)) {
        sk_model_free(m);
        return sk_cli_fail(&cli, &err);
    }
    sk_attn_info *attn;
    if (sk_attn_find(m, &attn, &err)) {
        sk_model_stats_free(&st);
        sk_model_free(m);
        return sk_cli_fail(&cli, &err);
    }
    if (cli.json) print_json(stdout, m, &st, attn);
    else print_text(stdout, m, &st, attn, cli.verbosity);
    sk_attn_info_free(attn);
    sk_model_stats_free(&st);
    sk_model_free(m);
    if (fflush(stdout) != 0) return SK_EXIT_FAIL;
    return SK_EXIT_OK;
}
