#include "sk_codec.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <brotli/decode.h>
#include <brotli/encode.h>
#include <zstd.h>

#define SK_CODEC_PIECE ((size_t)1 << 20)

static const struct {
    const char *name, *suffix;
    int def, min, max;
} codecs[SK_CODEC_COUNT] = {
    [SK_CODEC_NONE] = { "none", "", 0, 0, 0 },
    [SK_CODEC_BROTLI] = { "brotli", ".br", 9, BROTLI_MIN_QUALITY, BROTLI_MAX_QUALITY },
    [SK_CODEC_ZSTD] = { "zstd", ".zst", 19, 1, 22 },
};

const char *sk_codec_name(sk_codec c)
{
    return (unsigned)c < SK_CODEC_COUNT ? codecs[c].name : "unknown";
}

const char *sk_codec_suffix(sk_codec c)
{
    return (unsigned)c < SK_CODEC_COUNT ? codecs[c].suffix : "";
}

int sk_codec_from_name(const char *name, sk_codec *out)
{
    for (int c = 0; c < SK_CODEC_COUNT; c++)
        if (name && !strcmp(name, codecs[c].name)) {
            *out = (sk_codec)c;
            return 0;
        }
    return -1;
}

int sk_codec_default_level(sk_codec c)
{
    return (unsigned)c < SK_CODEC_COUNT ? codecs[c].def : 0;
}

void sk_codec_level_range(sk_codec c, int *min, int *max)
{
    *min = (unsigned)c < SK_CODEC_COUNT ? codecs[c].min : 0;
    *max = (unsigned)c < SK_CODEC_COUNT ? codecs[c].max : 0;
}

int sk_codec_brotli_window(uint64_t n)
{
    int w = BROTLI_MIN_WINDOW_BITS;
    while (w < BROTLI_MAX_WINDOW_BITS && ((uint64_t)1 << w) - 16 < n) w++;
    return w;
}

/* Appends what the encoder has ready to *buf (*len bytes, *cap allocated). */
static int brotli_take(BrotliEncoderState *e, uint8_t **buf, size_t *len, size_t *cap)
{
    while (BrotliEncoderHasMoreOutput(e)) {
        size_t k = 0;
        const uint8_t *p = BrotliEncoderTakeOutput(e, &k);
        if (k > *cap - *len) {
            size_t c = *cap ? *cap : 4096;
            while (c - *len < k) {
                if (c > SIZE_MAX / 2) return -1;
                c *= 2;
            }
            uint8_t *b = realloc(*buf, c);
            if (!b) return -1;
            *buf = b;
            *cap = c;
        }
        memcpy(*buf + *len, p, k);
        *len += k;
    }
    return 0;
}

sk_status sk_codec_brotli_part(int level, int lgwin, const void *src, size_t n, uint64_t offset, int last,
                               uint8_t **out, size_t *out_len, sk_error *err)
{
    *out = NULL;
    *out_len = 0;
    int whole = offset == 0 && last;
    if (level < (whole ? BROTLI_MIN_QUALITY : 2) || level > BROTLI_MAX_QUALITY)
        return sk_error_set(err, SK_EINVAL, "Brotli level %d cannot compress part of a stream (2 to %d)", level,
                            BROTLI_MAX_QUALITY);
    if (lgwin < BROTLI_MIN_WINDOW_BITS || lgwin > BROTLI_MAX_WINDOW_BITS)
        return sk_error_set(err, SK_EINVAL, "Brotli window %d is out of range (%d to %d)", lgwin,
                            BROTLI_MIN_WINDOW_BITS, BROTLI_MAX_WINDOW_BITS);
    BrotliEncoderState *e = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (!e) return sk_error_set(err, SK_ENOMEM, "out of memory for a Brotli encoder");
    /* Offsets past the window all act alike; the encoder takes at most 2^30. */
    uint32_t off = offset > ((uint32_t)1 << 30) ? (uint32_t)1 << 30 : (uint32_t)offset;
    uint32_t hint = n > ((size_t)1 << 30) ? (uint32_t)1 << 30 : (uint32_t)n;
    sk_status s = SK_OK;
    if (!BrotliEncoderSetParameter(e, BROTLI_PARAM_QUALITY, (uint32_t)level) ||
        !BrotliEncoderSetParameter(e, BROTLI_PARAM_LGWIN, (uint32_t)lgwin) ||
        !BrotliEncoderSetParameter(e, BROTLI_PARAM_MODE, BROTLI_MODE_GENERIC) ||
        !BrotliEncoderSetParameter(e, BROTLI_PARAM_SIZE_HINT, hint))
        s = sk_error_set(err, SK_EINVAL, "the Brotli encoder refused level %d, window %d", level, lgwin);
    else if (off && !BrotliEncoderSetParameter(e, BROTLI_PARAM_STREAM_OFFSET, off))
        s = sk_error_set(err, SK_EUNSUPPORTED, "this libbrotlienc cannot continue a Brotli stream (1.0.8 or later needed)");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    const uint8_t *next = src;
    size_t avail = n;
    BrotliEncoderOperation op = last ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
    while (!s) {
        size_t zero = 0;
        if (!BrotliEncoderCompressStream(e, op, &avail, &next, &zero, NULL, NULL)) {
            s = sk_error_set(err, SK_ENOMEM, "Brotli compression failed (out of memory)");
            break;
        }
        /* Output pending right after the call means the encoder may still
         * hold input (it buffers while output waits): call it again. */
        int more = BrotliEncoderHasMoreOutput(e);
        if (brotli_take(e, &buf, &len, &cap)) {
            s = sk_error_set(err, SK_ENOMEM, "out of memory (%zu bytes for a compressed part)", len);
            break;
        }
        if (avail == 0 && !more && (!last || BrotliEncoderIsFinished(e))) break;
    }
    BrotliEncoderDestroyInstance(e);
    if (s) {
        free(buf);
        return s;
    }
    if (!buf && !(buf = malloc(1))) return sk_error_set(err, SK_ENOMEM, "out of memory");
    *out = buf;
    *out_len = len;
    return SK_OK;
}

static sk_status compress_brotli(int level, const void *src, size_t n, uint8_t **out, size_t *out_len, sk_error *err)
{
    size_t cap = BrotliEncoderMaxCompressedSize(n);
    if (cap == 0) return sk_error_set(err, SK_EINVAL, "%zu bytes are too many for one Brotli stream", n);
    uint8_t *buf = malloc(cap);
    if (!buf) return sk_error_set(err, SK_ENOMEM, "out of memory (%zu bytes for a compressed shard)", cap);
    size_t len = cap;
    if (!BrotliEncoderCompress(level, sk_codec_brotli_window(n), BROTLI_MODE_GENERIC, n, src, &len, buf)) {
        free(buf);
        return sk_error_set(err, SK_ENOMEM, "Brotli compression failed (out of memory)");
    }
    *out = buf;
    *out_len = len;
    return SK_OK;
}

static sk_status compress_zstd(int level, const void *src, size_t n, uint8_t **out, size_t *out_len, sk_error *err)
{
    size_t cap = ZSTD_compressBound(n);
    if (ZSTD_isError(cap)) return sk_error_set(err, SK_EINVAL, "%zu bytes are too many for one Zstandard frame", n);
    uint8_t *buf = malloc(cap ? cap : 1);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (!buf || !cc) {
        free(buf);
        ZSTD_freeCCtx(cc);
        return sk_error_set(err, SK_ENOMEM, "out of memory (%zu bytes for a compressed shard)", cap);
    }
    ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0);
    size_t r = ZSTD_compress2(cc, buf, cap, src, n);
    ZSTD_freeCCtx(cc);
    if (ZSTD_isError(r)) {
        free(buf);
        return sk_error_set(err, SK_ENOMEM, "Zstandard compression failed: %s", ZSTD_getErrorName(r));
    }
    *out = buf;
    *out_len = r;
    return SK_OK;
}

sk_status sk_codec_compress(sk_codec c, int level, const void *src, size_t n, uint8_t **out, size_t *out_len,
                            sk_error *err)
{
    *out = NULL;
    *out_len = 0;
    if ((unsigned)c >= SK_CODEC_COUNT) return sk_error_set(err, SK_EINVAL, "unknown codec %d", (int)c);
    if (level < codecs[c].min || level > codecs[c].max)
        return sk_error_set(err, SK_EINVAL, "%s level %d is out of range (%d to %d)", codecs[c].name, level,
                            codecs[c].min, codecs[c].max);
    switch (c) {
    case SK_CODEC_BROTLI: return compress_brotli(level, src, n, out, out_len, err);
    case SK_CODEC_ZSTD: return compress_zstd(level, src, n, out, out_len, err);
    default: {
        uint8_t *buf = malloc(n ? n : 1);
        if (!buf) return sk_error_set(err, SK_ENOMEM, "out of memory");
        if (n) memcpy(buf, src, n);
        *out = buf;
        *out_len = n;
        return SK_OK;
    }
    }
}

/* Hands len decoded bytes to the sink after checking they fit raw_len. */
static sk_status emit(sk_codec_sink sink, void *arg, const uint8_t *data, size_t len, uint64_t *done, uint64_t raw_len,
                      const char *what, sk_error *err)
{
    if (!len) return SK_OK;
    if (len > raw_len - *done)
        return sk_error_set(err, SK_EINVAL, "the %s stream decodes to more than the %llu bytes the manifest says", what,
                            (unsigned long long)raw_len);
    *done += len;
    if (sink && sink(arg, data, len, err)) return SK_EIO;
    return SK_OK;
}

static sk_status decode_brotli(const uint8_t *src, size_t n, uint64_t raw_len, sk_codec_sink sink, void *arg,
                               uint8_t *piece, sk_error *err)
{
    BrotliDecoderState *d = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    if (!d) return sk_error_set(err, SK_ENOMEM, "out of memory");
    const uint8_t *in = src;
    size_t avail_in = n;
    uint64_t done = 0;
    sk_status s = SK_OK;
    for (;;) {
        uint8_t *next_out = piece;
        size_t avail_out = SK_CODEC_PIECE;
        BrotliDecoderResult r = BrotliDecoderDecompressStream(d, &avail_in, &in, &avail_out, &next_out, NULL);
        s = emit(sink, arg, piece, SK_CODEC_PIECE - avail_out, &done, raw_len, "Brotli", err);
        if (s) break;
        if (r == BROTLI_DECODER_RESULT_SUCCESS) {
            if (avail_in) s = sk_error_set(err, SK_EINVAL, "%zu bytes follow the end of the Brotli stream", avail_in);
            break;
        }
        if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
            s = sk_error_set(err, SK_EINVAL, "the Brotli stream is truncated");
            break;
        }
        if (r == BROTLI_DECODER_RESULT_ERROR) {
            s = sk_error_set(err, SK_EINVAL, "corrupt Brotli stream (%s)",
                             BrotliDecoderErrorString(BrotliDecoderGetErrorCode(d)));
            break;
        }
    }
    BrotliDecoderDestroyInstance(d);
    if (!s && done != raw_len)
        s = sk_error_set(err, SK_EINVAL, "the Brotli stream decodes to %llu bytes, the manifest says %llu",
                         (unsigned long long)done, (unsigned long long)raw_len);
    return s;
}

static sk_status decode_zstd(const uint8_t *src, size_t n, uint64_t raw_len, sk_codec_sink sink, void *arg,
                             uint8_t *piece, sk_error *err)
{
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d) return sk_error_set(err, SK_ENOMEM, "out of memory");
    ZSTD_inBuffer in = { src, n, 0 };
    uint64_t done = 0;
    sk_status s = SK_OK;
    size_t r = 1;
    while (!s) {
        ZSTD_outBuffer out = { piece, SK_CODEC_PIECE, 0 };
        r = ZSTD_decompressStream(d, &out, &in);
        if (ZSTD_isError(r)) {
            s = sk_error_set(err, SK_EINVAL, "corrupt Zstandard frame (%s)", ZSTD_getErrorName(r));
            break;
        }
        s = emit(sink, arg, piece, out.pos, &done, raw_len, "Zstandard", err);
        if (s) break;
        if (r == 0) { /* a frame ended */
            if (in.pos < in.size)
                s = sk_error_set(err, SK_EINVAL, "%zu bytes follow the end of the Zstandard frame", in.size - in.pos);
            break;
        }
        if (in.pos == in.size && out.pos < out.size) {
            s = sk_error_set(err, SK_EINVAL, "the Zstandard frame is truncated");
            break;
        }
    }
    ZSTD_freeDCtx(d);
    if (!s && done != raw_len)
        s = sk_error_set(err, SK_EINVAL, "the Zstandard frame decodes to %llu bytes, the manifest says %llu",
                         (unsigned long long)done, (unsigned long long)raw_len);
    return s;
}

sk_status sk_codec_decode(sk_codec c, const void *src, size_t n, uint64_t raw_len, sk_codec_sink sink, void *arg,
                          sk_error *err)
{
    const uint8_t *p = src;
    if (c == SK_CODEC_NONE) {
        if (n != raw_len)
            return sk_error_set(err, SK_EINVAL, "%zu stored bytes, the manifest says %llu raw bytes for codec none", n,
                                (unsigned long long)raw_len);
        uint64_t done = 0;
        for (size_t off = 0; off < n; off += SK_CODEC_PIECE) {
            size_t k = n - off < SK_CODEC_PIECE ? n - off : SK_CODEC_PIECE;
            sk_status s = emit(sink, arg, p + off, k, &done, raw_len, "raw", err);
            if (s) return s;
        }
        return SK_OK;
    }
    if ((unsigned)c >= SK_CODEC_COUNT) return sk_error_set(err, SK_EINVAL, "unknown codec %d", (int)c);
    uint8_t *piece = malloc(SK_CODEC_PIECE);
    if (!piece) return sk_error_set(err, SK_ENOMEM, "out of memory");
    sk_status s = c == SK_CODEC_BROTLI ? decode_brotli(p, n, raw_len, sink, arg, piece, err)
                                       : decode_zstd(p, n, raw_len, sink, arg, piece, err);
    free(piece);
    return s;
}

/* ---- the thread pool ---------------------------------------------------- */

typedef struct pool {
    pthread_mutex_t mu;
    size_t next, n;
    int stop;
    sk_codec_job job;
    void *arg;
    size_t failed;      /* lowest failed index, or SIZE_MAX */
    sk_status status;
    sk_error err;
} pool;

static void *worker(void *p_)
{
    pool *p = p_;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next;
        int go = !p->stop && i < p->n;
        if (go) p->next++;
        pthread_mutex_unlock(&p->mu);
        if (!go) break;
        sk_error e = { 0 };
        sk_status s = p->job(p->arg, i, &e);
        if (s) {
            if (!e.code) sk_error_set(&e, s, "%s", sk_status_name(s));
            pthread_mutex_lock(&p->mu);
            p->stop = 1;
            if (i < p->failed) {
                p->failed = i;
                p->status = s;
                p->err = e;
            }
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

unsigned sk_codec_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

sk_status sk_codec_run_jobs(size_t n, unsigned threads, sk_codec_job job, void *arg, sk_error *err)
{
    pool p;
    memset(&p, 0, sizeof p);
    p.n = n;
    p.job = job;
    p.arg = arg;
    p.failed = SIZE_MAX;
    if (pthread_mutex_init(&p.mu, NULL)) return sk_error_set(err, SK_ENOMEM, "cannot create a mutex");
    if (!threads) threads = sk_codec_cores();
    if (threads > n) threads = n ? (unsigned)n : 1;
    pthread_t *tid = calloc(threads, sizeof *tid);
    size_t started = 0;
    if (tid)
        for (unsigned t = 1; t < threads; t++) {
            if (pthread_create(&tid[t], NULL, worker, &p)) break;
            started = t;
        }
    worker(&p); /* the calling thread works too (alone if threads could not start) */
    for (size_t t = 1; t <= started; t++) pthread_join(tid[t], NULL);
    free(tid);
    pthread_mutex_destroy(&p.mu);
    if (p.failed == SIZE_MAX) return SK_OK;
    if (err) *err = p.err;
    return p.status;
}
