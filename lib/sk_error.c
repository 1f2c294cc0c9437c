#include "sk_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sk_status sk_error_set(sk_error *err, sk_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

sk_status sk_error_prefix(sk_error *err, const char *fmt, ...)
{
    if (!err) return SK_OK;
    char head[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t hl = strlen(head);
    if (hl >= sizeof err->msg) hl = sizeof err->msg - 1;
    memcpy(err->msg, head, hl);
    size_t ol = strnlen(old, sizeof old - 1);
    if (ol > sizeof err->msg - 1 - hl) ol = sizeof err->msg - 1 - hl;
    memcpy(err->msg + hl, old, ol);
    err->msg[hl + ol] = 0;
    return err->code;
}

const char *sk_status_name(sk_status code)
{
    switch (code) {
    case SK_OK: return "ok";
    case SK_EINVAL: return "invalid input";
    case SK_ENOMEM: return "out of memory";
    case SK_EIO: return "I/O error";
    case SK_EUNSUPPORTED: return "unsupported";
    case SK_EVERIFY: return "verification failed";
    case SK_EINTERNAL: return "internal error";
    }
    return "unknown error";
}
