/* Errors: the library never exits and never prints. A function that can fail
 * returns an sk_status and, when given a non-NULL sk_error, fills it with one
 * human sentence naming the file, node or tensor at fault. Only cmd/ turns that
 * into a message and an exit code. */
#ifndef SK_ERROR_H
#define SK_ERROR_H

#include <stddef.h>
#include <stdint.h>

typedef enum sk_status {
    SK_OK = 0,
    SK_EINVAL,       /* the input (file, model, tensor, argument) is bad */
    SK_ENOMEM,       /* an allocation failed */
    SK_EIO,          /* reading or writing a file failed */
    SK_EUNSUPPORTED, /* valid input that skiff does not handle (an op, a dtype) */
    SK_EVERIFY,      /* a signature or hash did not verify */
    SK_EINTERNAL     /* a bug in skiff */
} sk_status;

typedef struct sk_error {
    sk_status code;
    char msg[512];
} sk_error;

/* Fills err (if not NULL) and returns code. The message is printf-formatted.
 * A message already set is kept when keep_first is used (sk_error_wrap). */
sk_status sk_error_set(sk_error *err, sk_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message: "model.onnx: " + old message. */
sk_status sk_error_prefix(sk_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A short name for a status ("invalid input", "out of memory", ...). */
const char *sk_status_name(sk_status code);

/* Checked arithmetic for sizes read from files: return 0 and set *out on
 * success, -1 on overflow. */
static inline int sk_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}
static inline int sk_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a) return -1;
    *out = a + b;
    return 0;
}
static inline int sk_mul_i64(int64_t a, int64_t b, int64_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}

#endif
