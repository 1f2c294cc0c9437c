/* Progress reports from long library steps (calibration, scoring,
 * compression) to whoever draws them. The library only counts; cmd/ draws
 * (sk_cli_progress in sk_cli.h, only when stderr is a terminal).
 *
 * A step reports (done, total) in its own units (samples, heads, bytes) as
 * it advances, and once more with done == total when it ends. The callback
 * may be called from worker threads, never from two at once for the same
 * sk_progress unless the callback itself is thread-safe (sk_cli's is). */
#ifndef SK_PROGRESS_H
#define SK_PROGRESS_H

#include <stdint.h>

typedef void (*sk_progress_fn)(void *user, const char *step, uint64_t done, uint64_t total);

typedef struct sk_progress {
    sk_progress_fn fn; /* NULL: nobody listens */
    void *user;
} sk_progress;

static inline void sk_progress_report(const sk_progress *p, const char *step, uint64_t done, uint64_t total)
{
    if (p && p->fn) p->fn(p->user, step, done, total);
}

#endif
