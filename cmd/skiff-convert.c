/* skiff-convert: round trip an ONNX model, move weights to or from external
 * data, or store float32 weights as float16. */
#include <stdio.h>
#include <string.h>

#include "sk_atomic.h"
#include "sk_cli.h"
#include "sk_fp16.h"
#include "sk_model.h"

static const char usage[] =
    "usage: skiff-convert IN -o OUT [--external-data FILE] [--inline] [--fp16] [options]\n"
    "\n"
    "Loads an ONNX model and saves it again (deterministic; written atomically).\n"
    "\n"
    "  -o OUT                 output model (required)\n"
    "  --external-data FILE   move weights of at least --external-min bytes to FILE,\n"
    "                         a plain file name next to OUT\n"
    "  --external-min SIZE    threshold for --external-data (default 1KiB)\n"
    "  --inline               bring external data back into the model\n"
    "  --fp16                 store float32 weights as float16, with a Cast back to\n"
    "                         float32 after each (compute, inputs and outputs stay\n"
    "                         float32; about half the weight bytes)\n"
    "  --json                 print a summary as JSON\n"
    "  -q, -v, -h/--help, -V/--version\n"
    "\n"
    "Exit status: 0 ok, 1 bad input or failure, 2 usage error.\n";

int main(int argc, char **argv)
{
    sk_cli cli = { "skiff-convert", usage, 1, 0 };
    const char *in = NULL, *out = NULL, *ext = NULL;
    int inline_all = 0, fp16 = 0, opts_done = 0;
    uint64_t ext_min = 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!opts_done && a[0] == '-' && a[1]) {
            if (sk_cli_common(&cli, argc, argv, &i)) continue;
            if (!strcmp(a, "--")) { opts_done = 1; continue; }
            if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
                if (++i >= argc) return sk_cli_usage_error(&cli, "-o needs a file");
                out = argv[i];
            } else if (!strcmp(a, "--external-data")) {
                if (++i >= argc) return sk_cli_usage_error(&cli, "--external-data needs a file name");
                ext = argv[i];
            } else if (!strcmp(a, "--external-min")) {
                if (++i >= argc || sk_cli_parse_size(argv[i], &ext_min))
                    return sk_cli_usage_error(&cli, "--external-min needs a size");
            } else if (!strcmp(a, "--inline")) {
                inline_all = 1;
            } else if (!strcmp(a, "--fp16")) {
                fp16 = 1;
            } else {
                return sk_cli_usage_error(&cli, "unknown option '%s'", a);
            }
            continue;
        }
        if (in) return sk_cli_usage_error(&cli, "one input model at a time");
        in = a;
    }
    if (!in) return sk_cli_usage_error(&cli, "no input model given");
    if (!out) return sk_cli_usage_error(&cli, "no output given (-o OUT)");
    if (ext && inline_all) return sk_cli_usage_error(&cli, "--external-data and --inline exclude each other");
    sk_atomic_install_signal_handlers();

    sk_error err = { 0 };
    sk_model *m;
    if (sk_model_load(in, NULL, &m, &err)) return sk_cli_fail(&cli, &err);
    size_t converted = 0;
    if (fp16 && sk_model_to_fp16(m, NULL, &converted, &err)) {
        sk_error_prefix(&err, "%s: ", in);
        sk_model_free(m);
        return sk_cli_fail(&cli, &err);
    }
    sk_save_opts so = { 0 };
    so.external_data = ext;
    so.external_min = (size_t)ext_min;
    so.inline_all = inline_all;
    if (sk_model_save(m, out, &so, &err)) {
        sk_model_free(m);
        return sk_cli_fail(&cli, &err);
    }
    sk_model_free(m);
    if (cli.json) {
        printf("{\"input\": ");
        sk_json_str(stdout, in);
        printf(", \"output\": ");
        sk_json_str(stdout, out);
        printf(", \"fp16_tensors\": %zu}\n", converted);
    } else if (fp16) {
        sk_cli_info(&cli, 1, "%s: %zu tensors stored as float16\n", out, converted);
    }
    return SK_EXIT_OK;
}
