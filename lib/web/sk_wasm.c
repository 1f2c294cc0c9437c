/* The WebAssembly face of skiff: what lib/web/skiff-worker.mjs calls.
 *
 * Built by `make wasm` (lib/web/wasm.mk) with the engine (lib/), the model
 * loader (proto/), the protobuf-c runtime and Brotli's decoder into
 * build/web/skiff.wasm, a standalone module without Emscripten's JS glue: the
 * worker instantiates it with a handful of imports and calls these exports.
 *
 * Conventions: every function that can fail returns 0 on success and a
 * nonzero sk_status on failure, with one sentence in skw_error_msg(). Sizes
 * cross the boundary as size_t (32-bit in wasm32, JS numbers), dims as int64
 * (JS BigInt64Array views). Memory handed to JS (skw_alloc) is 64-byte
 * aligned and freed with skw_free; memory handed to C (skw_model_attach) then
 * belongs to C. One thread: the worker calls these one at a time. */
#include <brotli/decode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk_engine.h"
#include "sk_model.h"
#include "sk_tensor.h"

#define SKW_EXPORT __attribute__((visibility("default"), used))

static sk_error skw_err;

/* The model and engine behind one loaded package. */
typedef struct skw_model {
    sk_model *model;
    sk_engine *engine;
    size_t n_in;              /* inputs set for the next run */
    char **in_names;
    sk_tensor *in;            /* one per bindable input of the engine */
    sk_tensor *out;           /* sk_engine_output_count entries, valid after a run */
    size_t n_out;
} skw_model;

/* The browser has no file system, and the library's only callers of these
 * (proto/sk_model.c, for external data files of a model loaded from a
 * folder) never run here: a model comes from memory and its external data
 * is attached. Defining them keeps libc's versions out of skiff.wasm (its
 * table of errno texts and realpath: 3.6 KB). */
char *strerror(int e)
{
    (void)e;
    return (char *)"no file system in the browser";
}

char *realpath(const char *restrict path, char *restrict resolved)
{
    (void)path;
    (void)resolved;
    return NULL;
}

SKW_EXPORT const char *skw_error_msg(void)
{
    return skw_err.msg;
}

static int fail(sk_status s)
{
    if (!skw_err.msg[0]) snprintf(skw_err.msg, sizeof skw_err.msg, "%s", sk_status_name(s));
    return (int)s;
}

static void clear_err(void)
{
    skw_err.code = SK_OK;
    skw_err.msg[0] = 0;
}

SKW_EXPORT void *skw_alloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1)) return NULL;
    return p;
}

SKW_EXPORT void skw_free(void *p)
{
    free(p);
}

/* Brotli's static dictionary ships Brotli-compressed (brotli-dict-br.c, made
 * by wasm.mk with brotli-dict-pack.c). skw_dict_init decodes it into memory
 * kept for the life of the module and gives it to the decoder; call it once,
 * before the first skw_brotli_decode. While the dictionary itself is decoded
 * the decoder's dictionary is all zeros: that stream's dictionary references
 * only use words they omit entirely (transforms such as "omit last 9" add
 * just a prefix or suffix), which brotli-dict-pack.c checks by decoding it
 * the same way. */
extern const unsigned char skw_dict_br_data[];
extern const size_t skw_dict_br_size;
void BrotliSetDictionaryData(const uint8_t *data);
static int dict_set;

#define SKW_DICT_SIZE 122784

SKW_EXPORT int skw_dict_init(void)
{
    clear_err();
    static uint8_t *dict; /* what the decoder's dictionary points to, once set */
    if (dict_set) return 0;
    if (!dict && !(dict = calloc(1, SKW_DICT_SIZE)))
        return fail(sk_error_set(&skw_err, SK_ENOMEM, "out of memory for the Brotli dictionary"));
    BrotliSetDictionaryData(dict);
    uint8_t *tmp = malloc(SKW_DICT_SIZE);
    if (!tmp) return fail(sk_error_set(&skw_err, SK_ENOMEM, "out of memory for the Brotli dictionary"));
    size_t n = SKW_DICT_SIZE;
    memset(dict, 0, SKW_DICT_SIZE);
    if (BrotliDecoderDecompress(skw_dict_br_size, skw_dict_br_data, &n, tmp) != BROTLI_DECODER_RESULT_SUCCESS ||
        n != SKW_DICT_SIZE) {
        free(tmp);
        return fail(sk_error_set(&skw_err, SK_EINTERNAL, "the Brotli dictionary in skiff.wasm does not decode"));
    }
    memcpy(dict, tmp, SKW_DICT_SIZE);
    free(tmp);
    dict_set = 1;
    return 0;
}

/* Decodes the Brotli stream in[0..n) into out[0..raw_len). Succeeds only if
 * the stream is complete, valid, and decodes to exactly raw_len bytes. */
SKW_EXPORT int skw_brotli_decode(const uint8_t *in, size_t n, uint8_t *out, size_t raw_len)
{
    clear_err();
    if (!dict_set) return fail(sk_error_set(&skw_err, SK_EINTERNAL, "Brotli dictionary not set (skw_dict_init)"));
    BrotliDecoderState *st = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    if (!st) return fail(sk_error_set(&skw_err, SK_ENOMEM, "out of memory for the Brotli decoder"));
    size_t avail_in = n, avail_out = raw_len;
    const uint8_t *next_in = in;
    uint8_t *next_out = out;
    BrotliDecoderResult r = BrotliDecoderDecompressStream(st, &avail_in, &next_in, &avail_out, &next_out, NULL);
    sk_status s = SK_OK;
    if (r == BROTLI_DECODER_RESULT_ERROR)
        s = sk_error_set(&skw_err, SK_EINVAL, "corrupt Brotli stream: %s",
                         BrotliDecoderErrorString(BrotliDecoderGetErrorCode(st)));
    else if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT)
        s = sk_error_set(&skw_err, SK_EINVAL, "decodes to more than the %zu bytes the manifest says", raw_len);
    else if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
        s = sk_error_set(&skw_err, SK_EINVAL, "Brotli stream is truncated (%zu of %zu bytes decoded)",
                         raw_len - avail_out, raw_len);
    else if (avail_out != 0)
        s = sk_error_set(&skw_err, SK_EINVAL, "decodes to %zu bytes but the manifest says %zu", raw_len - avail_out,
                         raw_len);
    else if (avail_in != 0)
        s = sk_error_set(&skw_err, SK_EINVAL, "%zu bytes of garbage after the end of the Brotli stream", avail_in);
    BrotliDecoderDestroyInstance(st);
    return s ? fail(s) : 0;
}

/* Parses model.onnx (onnx[0..len), copied) without checking it yet: the
 * external data it refers to is attached next. NULL on failure. */
SKW_EXPORT skw_model *skw_model_create(const uint8_t *onnx, size_t len)
{
    clear_err();
    skw_model *h = calloc(1, sizeof *h);
    if (!h) {
        fail(sk_error_set(&skw_err, SK_ENOMEM, "out of memory"));
        return NULL;
    }
    sk_load_opts lo = { .skip_check = 1, .no_external = 0 };
    sk_status s = sk_model_load_buffer(onnx, len, NULL, "model.onnx", &lo, &h->model, &skw_err);
    if (s) {
        free(h);
        fail(s);
        return NULL;
    }
    return h;
}

/* Gives the model the decoded bytes of external data file location (a
 * shard's raw_path). data must come from skw_alloc; it belongs to the model
 * from now on, also on failure. */
SKW_EXPORT int skw_model_attach(skw_model *h, const char *location, uint8_t *data, size_t len)
{
    clear_err();
    if (h->engine) {
        free(data);
        return fail(sk_error_set(&skw_err, SK_EINVAL, "external data '%s' arrives after the model was made ready",
                                 location));
    }
    sk_status s = sk_model_attach_external(h->model, location, data, len, &skw_err);
    return s ? fail(s) : 0;
}

/* Validates the model with its external data (every tensor against the bytes
 * attached for it: the model has no folder, so a location never attached is
 * an error, never a file read) and compiles the engine (with per-op timing
 * when profile is 1). After this, no external data can be attached. */
SKW_EXPORT int skw_model_ready(skw_model *h, int profile)
{
    clear_err();
    sk_model *m = h->model;
    sk_status s = sk_model_check(m, &skw_err);
    if (s) return fail(s);
    sk_engine_opts eo = { .threads = 1, .profile = profile };
    s = sk_engine_create(m, &eo, &h->engine, &skw_err);
    if (s) return fail(s);
    size_t n = sk_engine_input_count(h->engine);
    h->n_out = sk_engine_output_count(h->engine);
    h->in = calloc(n ? n : 1, sizeof *h->in);
    h->in_names = calloc(n ? n : 1, sizeof *h->in_names);
    h->out = calloc(h->n_out ? h->n_out : 1, sizeof *h->out);
    if (!h->in || !h->in_names || !h->out) return fail(sk_error_set(&skw_err, SK_ENOMEM, "out of memory"));
    return 0;
}

SKW_EXPORT size_t skw_input_count(const skw_model *h)
{
    return sk_engine_input_count(h->engine);
}

SKW_EXPORT const char *skw_input_name(const skw_model *h, size_t i)
{
    return sk_engine_input_name(h->engine, i);
}

/* Declared dtype of input i (0: not declared); rank (-1: unknown) and dims
 * (-1 where symbolic) into rank_dims[0] and rank_dims[1..]. */
SKW_EXPORT int skw_input_info(const skw_model *h, size_t i, int64_t *rank_dims)
{
    int dtype = 0, rank = -1;
    sk_engine_input_info(h->engine, i, &dtype, &rank, rank_dims + 1);
    rank_dims[0] = rank;
    return dtype;
}

SKW_EXPORT size_t skw_output_count(const skw_model *h)
{
    return h->n_out;
}

SKW_EXPORT const char *skw_output_name(const skw_model *h, size_t i)
{
    return sk_engine_output_name(h->engine, i);
}

/* Allocates the input named name for the next run (dtype, rank, dims[rank])
 * and returns where its nbytes of data go; NULL on failure (unknown name, bad
 * shape). Inputs stay set until skw_inputs_clear. */
SKW_EXPORT void *skw_input_alloc(skw_model *h, const char *name, int dtype, int rank, const int64_t *dims)
{
    clear_err();
    int64_t idx = sk_engine_input_find(h->engine, name);
    size_t n = sk_engine_input_count(h->engine);
    if (idx < 0 || (size_t)idx >= n) {
        fail(sk_error_set(&skw_err, SK_EINVAL, "the model has no input named '%s'", name));
        return NULL;
    }
    if (!sk_dtype_valid(dtype) || dtype == SK_STRING) {
        fail(sk_error_set(&skw_err, SK_EINVAL, "input '%s': unsupported element type %d", name, dtype));
        return NULL;
    }
    if (rank < 0 || rank > SK_TENSOR_MAX_RANK) {
        fail(sk_error_set(&skw_err, SK_EINVAL, "input '%s': rank %d is out of range", name, rank));
        return NULL;
    }
    sk_tensor *t = &h->in[idx];
    sk_status s = sk_tensor_alloc(t, dtype, rank, dims, &skw_err);
    if (s) {
        sk_error_prefix(&skw_err, "input '%s': ", name);
        fail(s);
        return NULL;
    }
    h->in_names[idx] = (char *)sk_engine_input_name(h->engine, (size_t)idx);
    return t->data;
}

/* Bytes of the input named name after skw_input_alloc (for the JS copy). */
SKW_EXPORT size_t skw_input_nbytes(const skw_model *h, const char *name)
{
    int64_t idx = sk_engine_input_find(h->engine, name);
    return idx < 0 ? 0 : h->in[idx].nbytes;
}

SKW_EXPORT void skw_inputs_clear(skw_model *h)
{
    size_t n = sk_engine_input_count(h->engine);
    for (size_t i = 0; i < n; i++) {
        sk_tensor_free(&h->in[i]);
        h->in_names[i] = NULL;
    }
}

/* Runs the model on the inputs set. Outputs are read with skw_output_*. */
SKW_EXPORT int skw_run(skw_model *h)
{
    clear_err();
    size_t n = sk_engine_input_count(h->engine), k = 0;
    const char *names[64];
    const sk_tensor *ins[64];
    if (n > 64) return fail(sk_error_set(&skw_err, SK_EUNSUPPORTED, "the model has %zu inputs (at most 64)", n));
    for (size_t i = 0; i < n; i++) {
        if (!h->in_names[i])
            return fail(sk_error_set(&skw_err, SK_EINVAL, "input '%s' is required but was not given",
                                     sk_engine_input_name(h->engine, i)));
        names[k] = h->in_names[i];
        ins[k++] = &h->in[i];
    }
    sk_status s = sk_engine_run(h->engine, k, names, ins, h->out, &skw_err);
    return s ? fail(s) : 0;
}

/* Output i of the last run: dtype returned; rank and dims into rank_dims
 * like skw_input_info; data pointer and byte size through the accessors. */
SKW_EXPORT int skw_output_info(const skw_model *h, size_t i, int64_t *rank_dims)
{
    const sk_tensor *t = &h->out[i];
    rank_dims[0] = t->rank;
    for (int d = 0; d < t->rank; d++) rank_dims[1 + d] = t->dims[d];
    return t->dtype;
}

SKW_EXPORT const void *skw_output_data(const skw_model *h, size_t i)
{
    return h->out[i].data;
}

SKW_EXPORT size_t skw_output_nbytes(const skw_model *h, size_t i)
{
    return h->out[i].nbytes;
}

static void profile_line(void *arg, const char *domain, const char *op, uint64_t calls, double seconds)
{
    char *buf = arg;
    size_t n = strlen(buf);
    if (n < 8000)
        snprintf(buf + n, 8192 - n, "%s%s%s\t%llu\t%.6f\n", domain, *domain ? "." : "", op,
                 (unsigned long long)calls, seconds);
}

/* Time per op type since the engine was made (profile on): a static text of
 * lines "op\tcalls\tseconds", most expensive first. */
SKW_EXPORT const char *skw_profile(const skw_model *h)
{
    static char buf[8192];
    buf[0] = 0;
    sk_engine_profile(h->engine, profile_line, buf);
    return buf;
}

/* The decoded bytes of external data file location (for toOrt), or NULL. */
SKW_EXPORT const uint8_t *skw_model_external(const skw_model *h, const char *location, size_t *len)
{
    return sk_model_external_data(h->model, location, len);
}

/* Frees everything; NULL is a no-op. */
SKW_EXPORT void skw_model_free(skw_model *h)
{
    if (!h) return;
    if (h->engine) {
        skw_inputs_clear(h);
        for (size_t i = 0; i < h->n_out; i++) sk_tensor_free(&h->out[i]);
    }
    sk_engine_free(h->engine);
    sk_model_free(h->model);
    free(h->in);
    free(h->in_names);
    free(h->out);
    free(h);
}
