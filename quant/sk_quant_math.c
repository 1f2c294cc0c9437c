/* Weight math of the quantizer: int8 per-channel, 4-bit blocks with a scale
 * search, 8-bit blocks for embedding tables, and the thread pool running them. */
#include "sk_quant_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- string map --------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static size_t map_find(const sk_qmap *m, const char *key)
{
    size_t mask = m->cap - 1, i = (size_t)hash_str(key) & mask;
    while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & mask;
    return i;
}

static sk_status map_grow(sk_qmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    sk_qmap nm = { calloc(cap, sizeof(char *)), calloc(cap, sizeof(void *)), 0, cap };
    if (!nm.keys || !nm.vals) {
        free(nm.keys);
        free(nm.vals);
        return SK_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            size_t j = map_find(&nm, m->keys[i]);
            nm.keys[j] = m->keys[i];
            nm.vals[j] = m->vals[i];
            nm.n++;
        }
    free(m->keys);
    free(m->vals);
    *m = nm;
    return SK_OK;
}

sk_status sk_qmap_put(sk_qmap *m, const char *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap && map_grow(m)) return SK_ENOMEM;
    size_t i = map_find(m, key);
    if (!m->keys[i]) {
        m->keys[i] = strdup(key);
        if (!m->keys[i]) return SK_ENOMEM;
        m->n++;
    }
    m->vals[i] = val;
    return SK_OK;
}

void *sk_qmap_get(const sk_qmap *m, const char *key, int *found)
{
    if (!m->cap) {
        if (found) *found = 0;
        return NULL;
    }
    size_t i = map_find(m, key);
    if (found) *found = m->keys[i] != NULL;
    return m->keys[i] ? m->vals[i] : NULL;
}

sk_status sk_qmap_add(sk_qmap *m, const char *key, intptr_t delta)
{
    intptr_t v = (intptr_t)sk_qmap_get(m, key, NULL);
    return sk_qmap_put(m, key, (void *)(v + delta));
}

void sk_qmap_free(sk_qmap *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- helpers -------------------------------------------------------------------- */

double sk_qerr_db(const sk_qerr *e)
{
    if (e->noise <= 0) return 200.0;
    if (e->sig <= 0) return 0.0;
    double db = 10.0 * log10(e->sig / e->noise);
    return db > 200.0 ? 200.0 : db;
}

const float *sk_qview_f32(const sk_tensor_view *v, float **copy)
{
    *copy = NULL;
    if (((uintptr_t)v->data & 3) == 0) return v->data;
    *copy = malloc(v->nbytes ? v->nbytes : 4);
    if (!*copy) return NULL;
    memcpy(*copy, v->data, v->nbytes);
    return *copy;
}

int sk_quant_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    return (int)n;
}

void sk_quant_pack4(const uint8_t *codes, size_t n, uint8_t *out)
{
    for (size_t i = 0; i + 1 < n; i += 2) out[i / 2] = (uint8_t)((codes[i] & 15) | (codes[i + 1] << 4));
    if (n & 1) out[n / 2] = codes[n - 1] & 15;
}

/* Round to nearest, ties to even (lrintf in the default rounding mode), as
 * ONNX Runtime's quantizers (numpy.rint) and QuantizeLinear do. */
static inline int32_t rnd(float x)
{
    return (int32_t)lrintf(x);
}

/* Weights are read in place from the model's mapping, where a tensor's
 * data need not be 4-byte aligned: loads go through memcpy (one unaligned
 * load on x86, no copy of the tensor). */
static inline float ldf(const void *w, int64_t i)
{
    float x;
    memcpy(&x, (const uint8_t *)w + i * 4, 4);
    return x;
}

/* ---- int8 per channel ------------------------------------------------------------- */

/* Channels [c0, c1). */
static void q8_chunk(const sk_q8_job *j, int64_t c0, int64_t c1, sk_qerr *e)
{
    int64_t R = j->rows, C = j->cols;
    double sig = 0, noise = 0;
    if (j->axis < 0) { /* per tensor: one channel, the whole matrix */
        float lo = 0, hi = 0;
        for (int64_t i = 0; i < R * C; i++) {
            float x = ldf(j->w, i);
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
        c0 = 0;
        c1 = 1;
        float s, zpf = 0;
        uint8_t zp = 0;
        if (j->unsigned_) {
            s = (hi - lo) / 255.0f;
            if (s > 0) {
                int32_t z = rnd(-lo / s);
                zp = (uint8_t)(z < 0 ? 0 : z > 255 ? 255 : z);
            }
            zpf = zp;
        } else {
            float a = fmaxf(-lo, hi);
            s = a / 127.0f;
        }
        float inv = s > 0 ? 1.0f / s : 0;
        for (int64_t r = 0; r < R; r++)
            for (int64_t k = 0; k < C; k++) {
                float x = ldf(j->w, r * C + k);
                int32_t q = rnd(x * inv + zpf);
                if (j->unsigned_) q = q < 0 ? 0 : q > 255 ? 255 : q;
                else q = q < -127 ? -127 : q > 127 ? 127 : q;
                float d = ((float)q - zpf) * s;
                sig += (double)x * x;
                noise += (double)(x - d) * (x - d);
                int64_t o = j->transpose ? k * R + r : r * C + k;
                if (j->unsigned_) ((uint8_t *)j->q)[o] = (uint8_t)q;
                else ((int8_t *)j->q)[o] = (int8_t)q;
            }
        j->scales[0] = s * j->scale_mul;
        if (j->unsigned_) j->zps[0] = zp;
        e->sig = sig;
        e->noise = noise;
        return;
    }
    for (int64_t ch = c0; ch < c1; ch++) {
        /* channel ch: column ch (axis 1) or row ch (axis 0) */
        int64_t n = j->axis == 1 ? R : C, stride = j->axis == 1 ? C : 1, base = j->axis == 1 ? ch : ch * C;
        float lo = 0, hi = 0;
        for (int64_t i = 0; i < n; i++) {
            float x = ldf(j->w, base + i * stride);
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
        float s, zpf = 0;
        uint8_t zp = 0;
        if (j->unsigned_) {
            s = (hi - lo) / 255.0f;
            if (s > 0) {
                int32_t z = rnd(-lo / s);
                zp = (uint8_t)(z < 0 ? 0 : z > 255 ? 255 : z);
            }
            zpf = zp;
        } else {
            s = fmaxf(-lo, hi) / 127.0f;
        }
        float inv = s > 0 ? 1.0f / s : 0;
        for (int64_t i = 0; i < n; i++) {
            float x = ldf(j->w, base + i * stride);
            int32_t q = rnd(x * inv + zpf);
            if (j->unsigned_) q = q < 0 ? 0 : q > 255 ? 255 : q;
            else q = q < -127 ? -127 : q > 127 ? 127 : q;
            float d = ((float)q - zpf) * s;
            sig += (double)x * x;
            noise += (double)(x - d) * (x - d);
            int64_t r = j->axis == 1 ? i : ch, k = j->axis == 1 ? ch : i;
            int64_t o = j->transpose ? k * R + r : r * C + k;
            if (j->unsigned_) ((uint8_t *)j->q)[o] = (uint8_t)q;
            else ((int8_t *)j->q)[o] = (int8_t)q;
        }
        j->scales[ch] = s * j->scale_mul;
        if (j->unsigned_) j->zps[ch] = zp;
    }
    e->sig = sig;
    e->noise = noise;
}

/* ---- 4-bit blocks ------------------------------------------------------------------ */

/* Rounds to nearest even for |x| < 2^22 without a libm call (vectorizes). */
static inline float round_ne(float x)
{
    const float m = 12582912.0f; /* 1.5 * 2^23 */
    return (x + m) - m;
}

/* Weighted squared error of x quantized with scale s and zero point zp
 * (codes clamped to 0..15); codes written to q when not NULL. Eight partial
 * sums keep the loop vectorizable without reassociating floats. */
static inline float q4_err(const float *x, const float *imp, int64_t n, float s, float zp, uint8_t *q)
{
    float inv = s != 0 ? 1.0f / s : 0, acc[8] = { 0 };
    int64_t i = 0;
    if (!q && !imp) {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) {
                float v = round_ne(x[i + k] * inv) + zp;
                v = v < 0 ? 0 : v;
                v = v > 15 ? 15 : v;
                float d = x[i + k] - (v - zp) * s;
                acc[k] += d * d;
            }
    } else if (!q) {
        for (; i + 8 <= n; i += 8)
            for (int k = 0; k < 8; k++) {
                float v = round_ne(x[i + k] * inv) + zp;
                v = v < 0 ? 0 : v;
                v = v > 15 ? 15 : v;
                float d = x[i + k] - (v - zp) * s;
                acc[k] += imp[i + k] * d * d;
            }
    }
    for (; i < n; i++) {
        float v = round_ne(x[i] * inv) + zp;
        v = v < 0 ? 0 : v;
        v = v > 15 ? 15 : v;
        float d = x[i] - (v - zp) * s;
        acc[0] += (imp ? imp[i] : 1.0f) * d * d;
        if (q) q[i] = (uint8_t)v;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* Least-squares scale for fixed codes: argmin_s sum imp (x - s (q - zp))^2. */
static float q4_refit(const float *x, const float *imp, int64_t n, const uint8_t *q, float zp, float s)
{
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double w = imp ? imp[i] : 1.0, c = (double)q[i] - zp;
        num += w * x[i] * c;
        den += w * c * c;
    }
    return den > 0 ? (float)(num / den) : s;
}

float sk_quant_q4_block(const float *x, const float *imp, int64_t n, int asym, uint8_t *codes, uint8_t *zp_out)
{
    uint8_t tmp[256];
    float lo = 0, hi = 0, amax = 0;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (fabsf(v) > amax) amax = fabsf(v);
    }
    if (amax == 0) {
        for (int64_t i = 0; i < n; i++) codes[i] = 8;
        *zp_out = 8;
        return 0;
    }
    float best_s = 0, best_e = INFINITY, best_zp = 8;
    if (!asym) {
        /* scales stay positive (some kernels assume it): the extreme value
         * maps to d steps, d searched from 6 to 8.5 (past 7 a positive
         * extreme is clipped, which can still lower the block's error) */
        for (int t = 0; t <= 20; t++) {
            float d = 8.5f - 0.125f * (float)t;
            float s = amax / d;
            float e = q4_err(x, imp, n, s, 8, NULL);
            if (e < best_e) { best_e = e; best_s = s; }
        }
        for (int it = 0; it < 2; it++) {
            q4_err(x, imp, n, best_s, 8, tmp);
            float s = q4_refit(x, imp, n, tmp, 8, best_s);
            float e = s > 0 ? q4_err(x, imp, n, s, 8, NULL) : INFINITY;
            if (e < best_e) { best_e = e; best_s = s; }
            else break;
        }
    } else {
        /* the symmetric grid first (zero point 8): asym is never worse */
        for (int t = 0; t <= 20; t += 2) {
            float s = amax / (8.5f - 0.125f * (float)t);
            float e = q4_err(x, imp, n, s, 8, NULL);
            if (e < best_e) { best_e = e; best_s = s; best_zp = 8; }
        }
        float range = hi - lo;
        for (int t = 0; t <= 12; t++) {
            float f = 1.0f - 0.025f * (float)t; /* shrink the range up to 30% */
            float s = range * f / 15.0f;
            /* centre the shrunk range: try zero points around the ideal one */
            float z0 = nearbyintf(-lo / s - (1.0f - f) * 7.5f);
            for (int dz = -1; dz <= 1; dz++) {
                float z = z0 + (float)dz;
                if (z < 0 || z > 15) continue;
                float e = q4_err(x, imp, n, s, z, NULL);
                if (e < best_e) { best_e = e; best_s = s; best_zp = z; }
            }
        }
        for (int it = 0; it < 2; it++) {
            q4_err(x, imp, n, best_s, best_zp, tmp);
            float s = q4_refit(x, imp, n, tmp, best_zp, best_s);
            float e = s > 0 ? q4_err(x, imp, n, s, best_zp, NULL) : INFINITY;
            if (e < best_e) { best_e = e; best_s = s; }
            else break;
        }
    }
    q4_err(x, imp, n, best_s, best_zp, codes);
    *zp_out = (uint8_t)best_zp;
    return best_s;
}

static void q4_chunk(const sk_q4_job *j, int64_t r0, int64_t r1, sk_qerr *e)
{
    int64_t K = j->K, bs = j->bs, nb = (K + bs - 1) / bs;
    float col[256], wimp[256];
    double sig = 0, noise = 0;
    for (int64_t r = r0; r < r1; r++) {
        for (int64_t b = 0; b < nb; b++) {
            int64_t k0 = b * bs, n = K - k0 < bs ? K - k0 : bs;
            for (int64_t i = 0; i < n; i++) col[i] = ldf(j->w, j->src_kn ? (k0 + i) * j->N + r : r * K + k0 + i);
            const float *imp = NULL;
            if (j->imp) {
                for (int64_t i = 0; i < n; i++) wimp[i] = j->imp[k0 + i];
                imp = wimp;
            }
            uint8_t codes[256], zp;
            float s = sk_quant_q4_block(col, imp, n, j->asym, codes, &zp);
            if (j->asym) j->zps[r * nb + b] = zp;
            else zp = 8;
            for (int64_t i = n; i < bs; i++) codes[i] = zp; /* padding dequantizes to 0 */
            sk_quant_pack4(codes, (size_t)bs, j->codes + (r * nb + b) * (bs / 2));
            j->scales[r * nb + b] = s * j->scale_mul;
            for (int64_t i = 0; i < n; i++) {
                float d = col[i] - ((float)codes[i] - (float)zp) * s;
                sig += (double)col[i] * col[i];
                noise += (double)d * d;
            }
        }
    }
    e->sig = sig;
    e->noise = noise;
}

static void qb8_chunk(const sk_qb8_job *j, int64_t r0, int64_t r1, sk_qerr *e)
{
    int64_t K = j->K, bs = j->bs, nb = (K + bs - 1) / bs;
    double sig = 0, noise = 0;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t b = 0; b < nb; b++) {
            int64_t k0 = b * bs, n = K - k0 < bs ? K - k0 : bs;
            float x[256];
            for (int64_t i = 0; i < n; i++) x[i] = ldf(j->w, r * K + k0 + i);
            float amax = 0;
            for (int64_t i = 0; i < n; i++) {
                float a = fabsf(x[i]);
                amax = a > amax ? a : amax;
            }
            float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0;
            for (int64_t i = 0; i < n; i++) {
                int32_t q = rnd(x[i] * inv);
                q = q < -127 ? -127 : q > 127 ? 127 : q;
                j->codes[r * K + k0 + i] = (uint8_t)(q + 128);
                float d = x[i] - (float)q * s;
                sig += (double)x[i] * x[i];
                noise += (double)d * d;
            }
            j->scales[r * nb + b] = s;
        }
    e->sig = sig;
    e->noise = noise;
}

/* ---- job runner -------------------------------------------------------------------- */

typedef struct job_pool {
    sk_qjob *jobs;
    size_t n;
    size_t *starts;      /* first global chunk index of each job */
    size_t total;
    atomic_size_t next;
} job_pool;

static int64_t job_channels(const sk_qjob *j)
{
    switch (j->kind) {
    case SK_QJOB_Q8:
        if (j->u.q8.axis < 0) return 1;
        return j->u.q8.axis == 1 ? j->u.q8.cols : j->u.q8.rows;
    case SK_QJOB_Q4: return j->u.q4.N;
    case SK_QJOB_QB8: return j->u.qb8.N;
    }
    return 0;
}

static void run_chunk(sk_qjob *j, size_t c)
{
    int64_t ch = job_channels(j), c0 = (int64_t)(c * j->chunk), c1 = c0 + (int64_t)j->chunk;
    if (c1 > ch) c1 = ch;
    switch (j->kind) {
    case SK_QJOB_Q8: q8_chunk(&j->u.q8, c0, c1, &j->parts[c]); break;
    case SK_QJOB_Q4: q4_chunk(&j->u.q4, c0, c1, &j->parts[c]); break;
    case SK_QJOB_QB8: qb8_chunk(&j->u.qb8, c0, c1, &j->parts[c]); break;
    }
}

static void *worker(void *arg)
{
    job_pool *p = arg;
    for (;;) {
        size_t g = atomic_fetch_add(&p->next, 1);
        if (g >= p->total) break;
        size_t lo = 0, hi = p->n; /* job holding chunk g: last start <= g */
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (p->starts[mid] <= g) lo = mid;
            else hi = mid;
        }
        run_chunk(&p->jobs[lo], g - p->starts[lo]);
    }
    return NULL;
}

sk_status sk_qjobs_run(sk_qjob *jobs, size_t n, int threads, sk_error *err)
{
    if (!n) return SK_OK;
    job_pool p = { jobs, n, calloc(n, sizeof(size_t)), 0, 0 };
    if (!p.starts) return sk_error_set(err, SK_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        sk_qjob *j = &jobs[i];
        int64_t ch = job_channels(j);
        /* chunks of about 64K weights, fixed per job */
        int64_t per = ch ? (j->kind == SK_QJOB_Q8 ? (j->u.q8.axis < 0 ? 1 : (j->u.q8.axis == 1 ? j->u.q8.rows : j->u.q8.cols))
                            : j->kind == SK_QJOB_Q4 ? j->u.q4.K : j->u.qb8.K) : 1;
        if (per < 1) per = 1;
        int64_t c = 65536 / per;
        if (c < 1) c = 1;
        if (j->kind == SK_QJOB_Q8 && j->u.q8.axis < 0) c = 1;
        j->chunk = (size_t)c;
        j->n_chunks = ch ? (size_t)((ch + c - 1) / c) : 0;
        j->parts = calloc(j->n_chunks ? j->n_chunks : 1, sizeof *j->parts);
        if (!j->parts) {
            for (size_t k = 0; k <= i; k++) { free(jobs[k].parts); jobs[k].parts = NULL; }
            free(p.starts);
            return sk_error_set(err, SK_ENOMEM, "out of memory");
        }
        p.starts[i] = p.total;
        p.total += j->n_chunks;
    }
    atomic_init(&p.next, 0);
    if (threads < 1) threads = 1;
    if ((size_t)threads > p.total) threads = (int)(p.total ? p.total : 1);
    pthread_t tid[64];
    int started = 0;
    for (int t = 1; t < threads && t < 64; t++) {
        if (pthread_create(&tid[started], NULL, worker, &p)) break;
        started++;
    }
    worker(&p);
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    for (size_t i = 0; i < n; i++) {
        sk_qerr e = { 0, 0 };
        for (size_t c = 0; c < jobs[i].n_chunks; c++) {
            e.sig += jobs[i].parts[c].sig;
            e.noise += jobs[i].parts[c].noise;
        }
        jobs[i].err = e;
        free(jobs[i].parts);
        jobs[i].parts = NULL;
    }
    free(p.starts);
    return SK_OK;
}

size_t sk_qjobs_push(sk_qjob **jobs, size_t *n, size_t *cap, const sk_qjob *j)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        sk_qjob *a = realloc(*jobs, nc * sizeof *a);
        if (!a) return (size_t)-1;
        *jobs = a;
        *cap = nc;
    }
    (*jobs)[*n] = *j;
    return (*n)++;
}
