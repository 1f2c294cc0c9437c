/* libFuzzer target: the ONNX model loader (wire pre-pass, protobuf-c,
 * validation), then stats and a save/reload of whatever loads. */
#include <stdint.h>
#include <stdlib.h>

#include "sk_model.h"
#include "sk_stats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sk_model *m;
    sk_error err;
    if (sk_model_load_buffer(data, size, NULL, "fuzz.onnx", NULL, &m, &err)) return 0;
    sk_model_stats st;
    if (!sk_model_stats_compute(m, 4, &st, &err)) sk_model_stats_free(&st);
    uint8_t *buf;
    size_t len;
    if (!sk_model_save_buffer(m, &buf, &len, &err)) {
        sk_model *m2;
        if (sk_model_load_buffer(buf, len, NULL, "fuzz2.onnx", NULL, &m2, &err)) abort(); /* what we save must load */
        sk_model_free(m2);
        free(buf);
    }
    sk_model_free(m);
    return 0;
}
