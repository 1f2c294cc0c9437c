/* Runtime tensors of the engine: dense, row-major, little-endian, in ONNX's raw
 * layout (4-bit types packed two per byte, low nibble first; float16 and
 * bfloat16 as uint16). */
#ifndef SK_TENSOR_H
#define SK_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "sk_dtype.h"
#include "sk_error.h"

#define SK_TENSOR_MAX_RANK 16

typedef struct sk_tensor {
    int dtype;                          /* sk_dtype */
    int rank;
    int64_t dims[SK_TENSOR_MAX_RANK];
    int64_t numel;
    void *data;                         /* 64-byte aligned when owned */
    size_t nbytes;
    int owned;                          /* 1: data is ours (sk_tensor_free frees it) */
} sk_tensor;

/* Sets dtype/shape and allocates zeroed storage (64-byte aligned, never NULL,
 * from the buffer cache). Fails with SK_EINVAL on a negative dim, a rank
 * over the limit or a size that overflows. Frees storage t already owned. */
sk_status sk_tensor_alloc(sk_tensor *t, int dtype, int rank, const int64_t *dims, sk_error *err);

/* Same without zeroing, for outputs the kernel overwrites entirely. */
sk_status sk_tensor_alloc_uninit(sk_tensor *t, int dtype, int rank, const int64_t *dims, sk_error *err);

/* Storage comes from a cache of freed buffers (by size class; at most 512 MiB
 * kept). This releases the cached buffers to the system. */
void sk_tensor_cache_trim(void);

/* Makes t a borrowed view of data (not freed by sk_tensor_free). */
sk_status sk_tensor_borrow(sk_tensor *t, int dtype, int rank, const int64_t *dims,
                           const void *data, size_t nbytes, sk_error *err);

/* Frees owned storage and resets t to an empty tensor. NULL is a no-op. */
void sk_tensor_free(sk_tensor *t);

/* Deep copy of src into dst (dst gets owned storage). */
sk_status sk_tensor_copy(sk_tensor *dst, const sk_tensor *src, sk_error *err);

/* Product of dims[0..rank), -1 on overflow or a negative dim. */
int64_t sk_shape_numel(int rank, const int64_t *dims);

/* "[1,128,256]" into buf. */
const char *sk_shape_str(int rank, const int64_t *dims, char *buf, size_t cap);

/* Element i of t converted to double / int64 (float16, bfloat16, int4 decoded).
 * For shape-like inputs and tests; not for hot loops. */
double sk_tensor_get_f64(const sk_tensor *t, int64_t i);
int64_t sk_tensor_get_i64(const sk_tensor *t, int64_t i);

/* Numpy broadcasting of two shapes into out (rank *out_rank). SK_EINVAL when
 * they are incompatible. */
sk_status sk_shape_broadcast(int ra, const int64_t *a, int rb, const int64_t *b,
                             int *out_rank, int64_t *out, sk_error *err);

#endif
