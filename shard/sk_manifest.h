/* manifest.json of a skiff package (docs/format.md section 3): the in-memory
 * form, a deterministic writer, and a strict, bounds-checked parser. The
 * parser is a single pass over the bytes straight into the struct (no
 * document tree, so memory stays proportional to what the manifest
 * describes); it rejects wrong types, unknown, missing and duplicate keys,
 * numbers that are not integers in [0, 2^53 - 1], absurd sizes, file names
 * with a path in them, and duplicate files or tensors, naming the key at
 * fault ("files[3].sha256: ...").
 *
 * Both directions run sk_manifest_validate, so the writer never produces a
 * manifest the parser would refuse. */
#ifndef SK_MANIFEST_H
#define SK_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "sk_codec.h"
#include "sk_error.h"
#include "sk_sha.h"

#define SK_MANIFEST_FORMAT_VERSION 1
#define SK_MANIFEST_NAME "manifest.json"
#define SK_MANIFEST_MINISIG "manifest.json.minisig"
#define SK_MANIFEST_SIG "manifest.json.sig"
#define SK_MANIFEST_MODEL "model.onnx"

/* Limits (docs/format.md, "Limits a reader enforces"). */
#define SK_MANIFEST_MAX_BYTES ((size_t)64 << 20)
#define SK_MANIFEST_MAX_DEPTH 16
#define SK_MANIFEST_MAX_STRING 4096
#define SK_MANIFEST_MAX_FILE_NAME 255
#define SK_MANIFEST_MAX_MODEL_NAME 128
#define SK_MANIFEST_MAX_INT ((uint64_t)9007199254740991) /* 2^53 - 1 */
#define SK_MANIFEST_MAX_SHARDS 100000
#define SK_MANIFEST_MAX_TENSORS 10000000
#define SK_MANIFEST_MAX_RANK 16
#define SK_MANIFEST_MAX_DIM ((uint64_t)1 << 40)
#define SK_MANIFEST_MAX_FILE_SIZE ((uint64_t)1 << 40)
#define SK_MANIFEST_MIN_SHARD_SIZE 4096

typedef enum sk_manifest_role { SK_ROLE_MODEL = 0, SK_ROLE_SHARD = 1 } sk_manifest_role;

/* A dimension of a model input/output: value >= 0, or value -1 with param the
 * symbolic name, or value -1 and param NULL when unknown. */
typedef struct sk_manifest_dim {
    int64_t value;
    char *param;
} sk_manifest_dim;

typedef struct sk_manifest_value {
    char *name;
    int dtype;             /* sk_dtype; 0 for a non-tensor type (JSON null) */
    int rank;              /* -1: unknown (JSON null) */
    sk_manifest_dim *dims; /* rank entries */
} sk_manifest_value;

typedef struct sk_manifest_opset {
    char *domain; /* "" for ONNX */
    uint64_t version;
} sk_manifest_opset;

typedef struct sk_manifest_file {
    char *path;            /* stored name */
    sk_manifest_role role;
    sk_codec codec;
    uint64_t size;
    uint8_t sha256[SK_SHA256_BYTES];
    uint8_t sha384[SK_SHA384_BYTES];
    char *raw_path;        /* decoded name */
    uint64_t raw_size;
    uint8_t raw_sha256[SK_SHA256_BYTES];
    uint8_t raw_sha384[SK_SHA384_BYTES];
} sk_manifest_file;

typedef struct sk_manifest_tensor {
    char *name;
    size_t file;           /* index in files[] of its shard */
    uint64_t offset, length;
    int dtype;
    int rank;
    int64_t *dims;
} sk_manifest_tensor;

/* Every pointer is malloc'd and owned by the manifest. */
typedef struct sk_manifest {
    uint64_t format_version;
    char *name;
    uint64_t version;
    int64_t created;       /* Unix seconds (the JSON holds it as UTC text) */
    char *generator;
    uint64_t ir_version;
    sk_manifest_opset *opsets;
    size_t n_opsets;
    sk_manifest_value *inputs, *outputs;
    size_t n_inputs, n_outputs;
    uint64_t shard_size;
    uint64_t alignment;
    sk_manifest_file *files;
    size_t n_files;
    sk_manifest_tensor *tensors;
    size_t n_tensors;
} sk_manifest;

/* Frees m and everything it points to; NULL is a no-op. */
void sk_manifest_free(sk_manifest *m);

/* Checks every invariant of docs/format.md section 3 on an in-memory
 * manifest. SK_EINVAL with a sentence naming the entry at fault. */
sk_status sk_manifest_validate(const sk_manifest *m, sk_error *err);

/* Validates, then writes the JSON into *out (malloc'd, NUL-terminated, the
 * caller frees it; length in *len). Deterministic: the same manifest gives
 * the same bytes. */
sk_status sk_manifest_write(const sk_manifest *m, char **out, size_t *len, sk_error *err);

/* Parses and validates len bytes of JSON. *out is the caller's
 * (sk_manifest_free), NULL on error. SK_EINVAL for anything malformed, with
 * the line or key at fault; SK_ENOMEM. */
sk_status sk_manifest_parse(const void *buf, size_t len, sk_manifest **out, sk_error *err);

/* 1 if s is an acceptable file name in a package (1-255 bytes of
 * [A-Za-z0-9._-], not starting with '.' or '-'), else 0. */
int sk_manifest_file_name_ok(const char *s);
/* 1 if s is an acceptable model name (1-128 bytes of [A-Za-z0-9._+@/-],
 * starting with a letter or digit), else 0. */
int sk_manifest_model_name_ok(const char *s);
/* The default model name for the model file at path: the file's stem, or its
 * folder's name for model.onnx, with characters a name cannot hold replaced
 * by '_' ("model" when nothing usable is left). malloc'd; NULL when out of
 * memory. */
char *sk_manifest_default_name(const char *path);

/* Index of the file whose path (stored name) is path, or SIZE_MAX. */
size_t sk_manifest_find_path(const sk_manifest *m, const char *path);

/* "2026-11-23T00:00:00Z" from Unix seconds (buffer of 21 bytes); -1 when the
 * year is outside 1970..9999. */
#define SK_MANIFEST_TIME_SIZE 21
int sk_manifest_time_format(int64_t t, char out[SK_MANIFEST_TIME_SIZE]);

#endif
