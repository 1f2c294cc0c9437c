/* Packages (docs/format.md): pack an ONNX model into a package folder
 * (sharded, compressed, optionally signed), sign a package, verify one, and
 * unpack one into a plain ONNX model with external data.
 *
 * shard/ uses sign/ (sk_sign.h) because a package is signed; that is the one
 * dependency between pipeline stages.
 *
 * Every function writes its output folder atomically: everything goes into a
 * hidden temporary folder next to the destination (".NAME.XXXXXX"), renamed
 * into place at the end. A failure removes the temporary folder; a signal
 * handled by sk_pack_install_signal_handlers() does too; SIGKILL or a crash
 * leaves at worst that hidden folder, never a partial package under the
 * final name. Nothing is ever written outside the destination folder and its
 * temporary sibling; names read from a manifest are plain file names
 * (sk_manifest_file_name_ok) and files are opened relative to the folder
 * without following symbolic links. */
#ifndef SK_PACK_H
#define SK_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "sk_codec.h"
#include "sk_error.h"
#include "sk_progress.h"
#include "sk_manifest.h"
#include "sk_model.h"
#include "sk_sign.h"

#define SK_PACK_DEFAULT_SHARD_SIZE ((uint64_t)4 << 20)
#define SK_PACK_DEFAULT_EXTERNAL_MIN 1024
#define SK_PACK_ALIGNMENT 64
#define SK_PACK_FLOAT_LEVEL 10 /* Brotli level of float tensors in quantized models (docs/format.md section 8) */
#define SK_PACK_FLOAT_LEVEL_AUTO (-1)

typedef struct sk_pack_opts {
    uint64_t shard_size;   /* bytes, at least SK_MANIFEST_MIN_SHARD_SIZE */
    uint64_t external_min; /* tensors of at least this many bytes go to shards */
    sk_codec codec;
    int level;             /* the codec's level */
    int float_level;       /* Brotli: the level of float tensors, or SK_PACK_FLOAT_LEVEL_AUTO (below) */
    const char *name;      /* model name (sk_manifest_model_name_ok) */
    uint64_t version;      /* 0: use created */
    int64_t created;       /* Unix seconds */
    unsigned threads;      /* 0: one per core */
    const sk_key_sec *key; /* NULL: an unsigned package */
    int force;             /* replace an existing folder */
    sk_progress progress;  /* compression reports raw bytes done here */
} sk_pack_opts;

/* Defaults: 4 MiB shards, 1 KiB external minimum, Brotli at its default
 * level (9) with float_level SK_PACK_FLOAT_LEVEL_AUTO, all cores, unsigned,
 * created = 0 (set it), no name (set it).
 *
 * With Brotli, each shard is one stream compressed in parts (docs/format.md
 * section 2): stretches of float tensors (float32, float16, bfloat16,
 * float64) at float_level, the rest at level, long stretches split so that
 * all cores work. SK_PACK_FLOAT_LEVEL_AUTO: SK_PACK_FLOAT_LEVEL (or level,
 * if higher) when float tensors are at most a quarter of the bytes going to
 * shards (a quantized model: block scales, biases, norms), else level (a
 * float model, where level 10 costs 25 times the time for about 1%). Set
 * float_level = level to compress everything at one level. float_level is
 * ignored when either level is below 2 (Brotli's levels 0 and 1 cannot
 * continue a stream) and for the other codecs. */
void sk_pack_opts_init(sk_pack_opts *o);

typedef struct sk_pack_result {
    size_t n_tensors;      /* tensors moved to shards */
    size_t n_inline;       /* weights left in model.onnx (small, strings, name clashes) */
    size_t n_shards;
    size_t n_oversized;    /* shards larger than shard_size (one tensor each) */
    char oversized[256];   /* the largest such tensor's name, for a message */
    uint64_t raw_bytes;    /* sum of raw shard sizes */
    uint64_t stored_bytes; /* sum of stored shard sizes */
    uint64_t model_bytes;  /* model.onnx */
    uint64_t manifest_bytes;
    uint64_t version;      /* the version written */
    int float_level;       /* Brotli: the level float tensors got (level when not different) */
} sk_pack_result;

/* Packs model m into the folder pkgdir (which must not exist unless
 * opts->force). m is changed during the call and restored before it returns.
 * res may be NULL. SK_EINVAL for bad options or a model that cannot be
 * packed, SK_EIO when writing fails (a full disk: nothing is left behind). */
sk_status sk_pack_write(sk_model *m, const char *pkgdir, const sk_pack_opts *opts, sk_pack_result *res,
                        sk_error *err);

typedef struct sk_pack_verify_opts {
    const sk_key_pub *pub; /* NULL: check integrity only, not who signed */
    const char *name;      /* the manifest's name must equal it; NULL: any */
    uint64_t min_version;  /* refuse a lower version (rollback rule) */
    int skip_raw;          /* 1: don't decode shards to check raw hashes */
    unsigned threads;      /* 0: one per core */
} sk_pack_verify_opts;

/* What a verification found; free with sk_pack_report_free. */
typedef struct sk_pack_report {
    sk_manifest *manifest;   /* set once the manifest parsed */
    int minisig_checked;     /* manifest.json.minisig verified */
    int sig_checked;         /* manifest.json.sig verified */
    int signed_files;        /* signature files present (0, 1 or 2) */
    uint8_t key_id[SK_KEY_ID_BYTES];
    char trusted_comment[SK_SIGN_TRUSTED_COMMENT_MAX + 1];
    uint64_t stored_bytes, raw_bytes;
} sk_pack_report;

void sk_pack_report_free(sk_pack_report *r);

/* Verifies the package folder pkgdir (docs/format.md section 6): signature
 * (when o->pub), manifest, name and version, no file missing or unlisted,
 * every file's size and SHA-256, decoded sizes and hashes (unless
 * o->skip_raw), and model.onnx against the tensor map. Stops at the first
 * failure: SK_EVERIFY (signature, hash, size, missing or extra file,
 * rollback) or SK_EINVAL (malformed manifest or model), with a sentence that
 * starts with the file at fault. rep may be NULL; otherwise zero it first and
 * free it after, whatever the result. */
sk_status sk_pack_verify(const char *pkgdir, const sk_pack_verify_opts *o, sk_pack_report *rep, sk_error *err);

/* Signs the package pkgdir with key: verifies its integrity first (as
 * sk_pack_verify without a key), then writes manifest.json.minisig and
 * manifest.json.sig, replacing existing ones. rep as for sk_pack_verify. */
sk_status sk_pack_sign(const char *pkgdir, const sk_key_sec *key, unsigned threads, sk_pack_report *rep,
                       sk_error *err);

/* Verifies pkgdir as sk_pack_verify does, then writes outdir: model.onnx and
 * the decoded shards under their raw names, a plain ONNX model with external
 * data. outdir must not exist unless force. Decoded bytes are checked
 * against the manifest before the folder is renamed into place. */
sk_status sk_pack_unpack(const char *pkgdir, const char *outdir, const sk_pack_verify_opts *o, int force,
                         sk_pack_report *rep, sk_error *err);

/* For cmd/: sk_atomic_install_signal_handlers() plus removal of the
 * temporary folders of this module on SIGINT, SIGTERM and SIGHUP. SIGXFSZ
 * is ignored, so exceeding a file size limit fails the write (and the
 * function) instead of killing the process half way. */
void sk_pack_install_signal_handlers(void);

/* The trusted comment skiff writes for a manifest (docs/format.md section 4);
 * out has SK_SIGN_TRUSTED_COMMENT_MAX + 1 bytes. */
void sk_pack_trusted_comment(const sk_manifest *m, char *out, size_t cap);

#endif
