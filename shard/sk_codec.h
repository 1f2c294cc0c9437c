/* Codecs of package shards (docs/format.md section 2): Brotli (libbrotlienc,
 * libbrotlidec), Zstandard (libzstd) and none, each shard one independent
 * stream; and the small thread pool that compresses and checks shards on all
 * cores. */
#ifndef SK_CODEC_H
#define SK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"

typedef enum sk_codec {
    SK_CODEC_NONE = 0,
    SK_CODEC_BROTLI,
    SK_CODEC_ZSTD,
    SK_CODEC_COUNT
} sk_codec;

/* "none", "brotli", "zstd" (the manifest's names). */
const char *sk_codec_name(sk_codec c);
/* Stored-name suffix: "", ".br", ".zst". */
const char *sk_codec_suffix(sk_codec c);
/* Parses a manifest/CLI name; -1 if unknown. */
int sk_codec_from_name(const char *name, sk_codec *out);
/* Default level and the accepted range (0..0 for none). */
int sk_codec_default_level(sk_codec c);
void sk_codec_level_range(sk_codec c, int *min, int *max);

/* Compresses n bytes at src into a malloc'd buffer (*out, *out_len; the
 * caller frees it). Deterministic: the same bytes, codec and level give the
 * same output on any machine and thread. SK_ENOMEM, or SK_EINVAL for a level
 * out of range. Codec none copies. */
sk_status sk_codec_compress(sk_codec c, int level, const void *src, size_t n, uint8_t **out, size_t *out_len,
                            sk_error *err);

/* Brotli's window for a stream of n bytes: the smallest lgwin from 10 to 24
 * with 2^lgwin - 16 >= n, as `brotli` picks it. */
int sk_codec_brotli_window(uint64_t n);

/* One part of a Brotli stream compressed in parts (docs/format.md section 2,
 * "Brotli in parts"): the n bytes at src that start offset bytes into the
 * stream. The part at offset 0 begins with the stream header (window lgwin);
 * every other part continues a stream whose earlier parts are flushed, which
 * is what every part but the last is (last = 0); the last part ends the
 * stream. Concatenated in order, the parts of one stream, each compressed
 * separately (in parallel, each at its own level) with the same lgwin, are
 * one ordinary Brotli stream of the concatenated bytes. A part that is the
 * whole stream (offset 0, last) may have any level; others need levels 2 to
 * 11 (levels 0 and 1 cannot continue a stream). *out is malloc'd (the caller
 * frees it). Deterministic. SK_EINVAL for a level or window out of range,
 * SK_EUNSUPPORTED when libbrotlienc cannot continue streams (before 1.0.8),
 * SK_ENOMEM. */
sk_status sk_codec_brotli_part(int level, int lgwin, const void *src, size_t n, uint64_t offset, int last,
                               uint8_t **out, size_t *out_len, sk_error *err);

/* Receives decoded bytes in order; returns 0 to go on, nonzero to stop (the
 * decoder then fails with SK_EIO and the message the sink left in err). */
typedef int (*sk_codec_sink)(void *arg, const uint8_t *data, size_t len, sk_error *err);

/* Decodes the n stored bytes at src, which must decode to exactly raw_len
 * bytes, handing them to sink in pieces of at most 1 MiB (memory stays flat
 * whatever raw_len claims). SK_EINVAL names what is wrong: corrupt stream,
 * more or fewer bytes than raw_len, data after the end of the stream. */
sk_status sk_codec_decode(sk_codec c, const void *src, size_t n, uint64_t raw_len, sk_codec_sink sink, void *arg,
                          sk_error *err);

/* Runs job(arg, i, err_i) for i in [0, n) on up to threads threads (0: one per
 * online core). Jobs start in index order; once one fails no new job starts.
 * Returns SK_OK if all succeeded, else the status and message of the failed
 * job with the lowest index: every job before a failed one has started, so
 * the error reported does not depend on the scheduling. job must be safe to
 * run concurrently with itself for different i. */
typedef sk_status (*sk_codec_job)(void *arg, size_t i, sk_error *err);
sk_status sk_codec_run_jobs(size_t n, unsigned threads, sk_codec_job job, void *arg, sk_error *err);

/* Number of online cores (at least 1). */
unsigned sk_codec_cores(void);

#endif
