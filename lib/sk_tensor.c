#include "sk_tensor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer cache --------------------------------------------------------
 * Tensor storage comes from size classes (powers of two split in four, so at
 * most 25% is wasted) and freed buffers are kept per class for reuse: the
 * engine frees and reallocates the same shapes at every node and every run,
 * and fresh large blocks would each cost page faults (glibc maps blocks over
 * 128 KiB anew every time). A 64-byte header before the data holds the class. */

#if defined(__SANITIZE_ADDRESS__)
#define SK_BUF_NO_CACHE 1 /* exact-size blocks, so ASan sees every overflow */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SK_BUF_NO_CACHE 1
#endif
#endif

#define SK_BUF_HDR 64
#define SK_BUF_CLASSES 160
#define SK_BUF_KEEP 8                     /* buffers kept per class */
#define SK_BUF_CACHE_MAX ((size_t)512 << 20) /* bytes kept in all */

static pthread_mutex_t buf_lock = PTHREAD_MUTEX_INITIALIZER;
static void *buf_free_list[SK_BUF_CLASSES][SK_BUF_KEEP];
static unsigned buf_count[SK_BUF_CLASSES];
static size_t buf_cached;

static size_t class_size(unsigned c)
{
    /* classes 0..7: 64, 128, ..., 512 by 64; then four steps per power of two */
    if (c < 8) return (size_t)(c + 1) * 64;
    unsigned k = c - 8, p = k / 4 + 9, q = k % 4; /* 2^p * (1 + q/4) */
    if (p >= sizeof(size_t) * 8 - 1) return SIZE_MAX;
    return ((size_t)1 << p) + ((size_t)q << (p - 2));
}

static int class_of(size_t n, unsigned *c)
{
    if (n <= 512) {
        *c = n ? (unsigned)((n - 1) / 64) : 0;
        return 0;
    }
    unsigned p = 9;
    while (p < sizeof(size_t) * 8 - 1 && ((size_t)1 << (p + 1)) < n) p++;
    for (unsigned q = 0; q < 4; q++) {
        unsigned cc = 8 + (p - 9) * 4 + q;
        if (cc >= SK_BUF_CLASSES) return -1;
        if (class_size(cc) >= n) { *c = cc; return 0; }
    }
    unsigned cc = 8 + (p - 8) * 4;
    if (cc >= SK_BUF_CLASSES) return -1;
    *c = cc;
    return 0;
}

static void *buf_alloc(size_t n, int zero)
{
#ifdef SK_BUF_NO_CACHE
    size_t sz = (n + 63) & ~(size_t)63;
    void *q = aligned_alloc(64, sz ? sz : 64);
    if (q && zero) memset(q, 0, n);
    return q;
#endif
    unsigned c;
    if (class_of(n, &c)) return NULL;
    size_t cap = class_size(c);
    void *p = NULL;
    pthread_mutex_lock(&buf_lock);
    if (buf_count[c]) {
        p = buf_free_list[c][--buf_count[c]];
        buf_cached -= cap;
    }
    pthread_mutex_unlock(&buf_lock);
    if (!p) {
        if (cap > SIZE_MAX - SK_BUF_HDR) return NULL;
        uint8_t *raw = aligned_alloc(64, cap + SK_BUF_HDR);
        if (!raw) return NULL;
        memcpy(raw, &c, sizeof c);
        p = raw + SK_BUF_HDR;
    }
    if (zero) memset(p, 0, n);
    return p;
}

static void buf_free(void *p)
{
    if (!p) return;
#ifdef SK_BUF_NO_CACHE
    free(p);
    return;
#endif
    uint8_t *raw = (uint8_t *)p - SK_BUF_HDR;
    unsigned c;
    memcpy(&c, raw, sizeof c);
    size_t cap = class_size(c);
    pthread_mutex_lock(&buf_lock);
    if (buf_count[c] < SK_BUF_KEEP && buf_cached + cap <= SK_BUF_CACHE_MAX) {
        buf_free_list[c][buf_count[c]++] = p;
        buf_cached += cap;
        p = NULL;
    }
    pthread_mutex_unlock(&buf_lock);
    if (p) free(raw);
}

void sk_tensor_cache_trim(void)
{
    pthread_mutex_lock(&buf_lock);
    for (unsigned c = 0; c < SK_BUF_CLASSES; c++) {
        while (buf_count[c]) free((uint8_t *)buf_free_list[c][--buf_count[c]] - SK_BUF_HDR);
    }
    buf_cached = 0;
    pthread_mutex_unlock(&buf_lock);
}

int64_t sk_shape_numel(int rank, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || __builtin_mul_overflow(n, dims[i], &n)) return -1;
    }
    return n;
}

const char *sk_shape_str(int rank, const int64_t *dims, char *buf, size_t cap)
{
    size_t at = 0;
    if (cap == 0) return buf;
    buf[0] = 0;
    at += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
    return buf;
}

static sk_status set_shape(sk_tensor *t, int dtype, int rank, const int64_t *dims, int64_t *nbytes, sk_error *err)
{
    char sb[128];
    if (rank < 0 || rank > SK_TENSOR_MAX_RANK)
        return sk_error_set(err, SK_EINVAL, "rank %d is out of range (max %d)", rank, SK_TENSOR_MAX_RANK);
    int64_t n = sk_shape_numel(rank, dims);
    if (n < 0)
        return sk_error_set(err, SK_EINVAL, "shape %s has a negative dim or too many elements",
                            sk_shape_str(rank, dims, sb, sizeof sb));
    int64_t nb = sk_dtype_nbytes(dtype, n);
    if (nb < 0 || (uint64_t)nb > (uint64_t)SIZE_MAX / 2)
        return sk_error_set(err, SK_EINVAL, "tensor of %s %s is too large or has no fixed size",
                            sk_dtype_name(dtype), sk_shape_str(rank, dims, sb, sizeof sb));
    t->dtype = dtype;
    t->rank = rank;
    if (rank) memcpy(t->dims, dims, (size_t)rank * sizeof *dims);
    t->numel = n;
    *nbytes = nb;
    return SK_OK;
}

static sk_status tensor_alloc(sk_tensor *t, int dtype, int rank, const int64_t *dims, int zero, sk_error *err)
{
    int64_t nb;
    int64_t d[SK_TENSOR_MAX_RANK];
    if (rank > 0 && rank <= SK_TENSOR_MAX_RANK) memcpy(d, dims, (size_t)rank * sizeof *d); /* dims may alias t->dims */
    sk_tensor_free(t);
    sk_status s = set_shape(t, dtype, rank, d, &nb, err);
    if (s) return s;
    void *p = buf_alloc((size_t)nb, zero);
    if (!p) return sk_error_set(err, SK_ENOMEM, "out of memory allocating %lld bytes", (long long)nb);
    t->data = p;
    t->nbytes = (size_t)nb;
    t->owned = 1;
    return SK_OK;
}

sk_status sk_tensor_alloc(sk_tensor *t, int dtype, int rank, const int64_t *dims, sk_error *err)
{
    return tensor_alloc(t, dtype, rank, dims, 1, err);
}

sk_status sk_tensor_alloc_uninit(sk_tensor *t, int dtype, int rank, const int64_t *dims, sk_error *err)
{
    return tensor_alloc(t, dtype, rank, dims, 0, err);
}

sk_status sk_tensor_borrow(sk_tensor *t, int dtype, int rank, const int64_t *dims,
                           const void *data, size_t nbytes, sk_error *err)
{
    int64_t nb;
    int64_t d[SK_TENSOR_MAX_RANK];
    if (rank > 0 && rank <= SK_TENSOR_MAX_RANK) memcpy(d, dims, (size_t)rank * sizeof *d);
    sk_tensor_free(t);
    sk_status s = set_shape(t, dtype, rank, d, &nb, err);
    if (s) return s;
    if ((size_t)nb > nbytes)
        return sk_error_set(err, SK_EINVAL, "data of %zu bytes is shorter than its shape needs (%lld bytes)",
                            nbytes, (long long)nb);
    t->data = (void *)data;
    t->nbytes = (size_t)nb;
    t->owned = 0;
    return SK_OK;
}

void sk_tensor_free(sk_tensor *t)
{
    if (!t) return;
    if (t->owned) buf_free(t->data);
    memset(t, 0, sizeof *t);
}

sk_status sk_tensor_copy(sk_tensor *dst, const sk_tensor *src, sk_error *err)
{
    sk_tensor tmp = { 0 };
    sk_status s = sk_tensor_alloc_uninit(&tmp, src->dtype, src->rank, src->dims, err);
    if (s) return s;
    if (src->nbytes) memcpy(tmp.data, src->data, src->nbytes);
    sk_tensor_free(dst);
    *dst = tmp;
    return SK_OK;
}

double sk_tensor_get_f64(const sk_tensor *t, int64_t i)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case SK_FLOAT: return ((const float *)p)[i];
    case SK_DOUBLE: return ((const double *)p)[i];
    case SK_FLOAT16: return sk_half_to_float(((const uint16_t *)p)[i]);
    case SK_BFLOAT16: return sk_bf16_to_float(((const uint16_t *)p)[i]);
    case SK_UINT8: case SK_BOOL: return p[i];
    case SK_INT8: return (int8_t)p[i];
    case SK_UINT16: return ((const uint16_t *)p)[i];
    case SK_INT16: return ((const int16_t *)p)[i];
    case SK_INT32: return ((const int32_t *)p)[i];
    case SK_UINT32: return ((const uint32_t *)p)[i];
    case SK_INT64: return (double)((const int64_t *)p)[i];
    case SK_UINT64: return (double)((const uint64_t *)p)[i];
    case SK_UINT4: return (p[i >> 1] >> ((i & 1) * 4)) & 15;
    case SK_INT4: { int v = (p[i >> 1] >> ((i & 1) * 4)) & 15; return v >= 8 ? v - 16 : v; }
    default: return 0;
    }
}

int64_t sk_tensor_get_i64(const sk_tensor *t, int64_t i)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case SK_INT64: return ((const int64_t *)p)[i];
    case SK_INT32: return ((const int32_t *)p)[i];
    case SK_UINT64: return (int64_t)((const uint64_t *)p)[i];
    case SK_FLOAT: case SK_DOUBLE: case SK_FLOAT16: case SK_BFLOAT16: {
        double d = sk_tensor_get_f64(t, i);
        if (d != d) return 0;
        if (d >= 9.2e18) return INT64_MAX;
        if (d <= -9.2e18) return INT64_MIN;
        return (int64_t)d;
    }
    default: return (int64_t)sk_tensor_get_f64(t, i);
    }
}

sk_status sk_shape_broadcast(int ra, const int64_t *a, int rb, const int64_t *b,
                             int *out_rank, int64_t *out, sk_error *err)
{
    int r = ra > rb ? ra : rb;
    char s1[128], s2[128];
    if (r > SK_TENSOR_MAX_RANK) return sk_error_set(err, SK_EINVAL, "rank %d is out of range", r);
    for (int i = 0; i < r; i++) {
        int64_t da = i < r - ra ? 1 : a[i - (r - ra)];
        int64_t db = i < r - rb ? 1 : b[i - (r - rb)];
        if (da == db || db == 1) out[i] = da;
        else if (da == 1) out[i] = db;
        else
            return sk_error_set(err, SK_EINVAL, "shapes %s and %s cannot be broadcast",
                                sk_shape_str(ra, a, s1, sizeof s1), sk_shape_str(rb, b, s2, sizeof s2));
    }
    *out_rank = r;
    return SK_OK;
}
