/* ONNX model I/O: load an ONNX file into memory, inspect and change it, save it.
 *
 * The in-memory graph is protobuf-c's generated ModelProto (build/gen/onnx.pb-c.h,
 * generated from the onnx.proto that libonnx-dev installs), so everything a model
 * holds (metadata, doc strings, value_info, subgraphs of If/Loop, functions,
 * unknown fields) survives a round trip untouched. sk_model owns it and adds what
 * protobuf-c does not do: zero-copy weights (raw_data of large tensors and
 * external data point into read-only file mappings), validation of everything
 * read from the file, tensor data views over all the places exporters put
 * weights, and deterministic, atomic saving.
 *
 * Memory: a TensorProto's raw_data.data either belongs to protobuf-c's malloc
 * (freed with the model) or points into one of the model's mappings (never
 * freed); sk_model_free tells them apart. To give a tensor new data, use
 * sk_tensor_proto_set_raw, never assign raw_data directly. */
#ifndef SK_MODEL_H
#define SK_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "sk_dtype.h"
#include "sk_error.h"

typedef Onnx__ModelProto sk_model_proto;
typedef Onnx__GraphProto sk_graph_proto;
typedef Onnx__NodeProto sk_node_proto;
typedef Onnx__TensorProto sk_tensor_proto;
typedef Onnx__AttributeProto sk_attr_proto;
typedef Onnx__ValueInfoProto sk_value_info;

typedef struct sk_model sk_model;

/* Limits applied to everything read from a file. */
#define SK_MAX_RANK 16
#define SK_MAX_DIM ((int64_t)1 << 40)
#define SK_MAX_NAME 4096

typedef struct sk_load_opts {
    int skip_check;   /* 1: don't validate the graph (tensor data is always checked) */
    int no_external;  /* 1: don't open external data files (inspect of a lone .onnx) */
} sk_load_opts;

/* Loads path. *out is set on success and must be freed with sk_model_free.
 * External data is resolved relative to the model's folder and must stay inside
 * it. opts may be NULL. On failure err names the file and what is wrong. */
sk_status sk_model_load(const char *path, const sk_load_opts *opts, sk_model **out, sk_error *err);

/* Loads from memory; buf is copied. dir is the folder for external data (NULL:
 * external data is an error). name is used in messages. */
sk_status sk_model_load_buffer(const void *buf, size_t len, const char *dir, const char *name,
                               const sk_load_opts *opts, sk_model **out, sk_error *err);

/* Wraps a ModelProto built in memory (allocated with malloc, as protobuf-c's
 * default allocator does); the model takes ownership. */
sk_status sk_model_wrap(sk_model_proto *proto, const char *dir, sk_model **out, sk_error *err);

void sk_model_free(sk_model *m); /* NULL is a no-op */

sk_model_proto *sk_model_proto_of(sk_model *m);
sk_graph_proto *sk_model_graph(sk_model *m);
const char *sk_model_path(const sk_model *m); /* "" for a model from memory */
const char *sk_model_dir(const sk_model *m);  /* folder of external data, or NULL */
uint64_t sk_model_file_size(const sk_model *m); /* bytes of the .onnx file itself */

/* Gives the model the bytes of its external data file location (the name its
 * tensors' external_data "location" entries use, a plain file name), for a
 * model that has no folder to read them from (loaded with
 * sk_model_load_buffer, dir NULL: the browser runtime, which gets them from a
 * package). Tensors stored in location are then read from data[0..len) and
 * checked against it by sk_model_check like a file's. data must come from
 * malloc and belongs to the model from this call on, also when it fails
 * (SK_EINVAL: location is empty, too long or already attached or opened;
 * SK_ENOMEM). Attach before sk_model_check and before any tensor of location
 * is viewed. */
sk_status sk_model_attach_external(sk_model *m, const char *location, void *data, size_t len, sk_error *err);

/* The bytes of external data file location, attached or already opened (the
 * model keeps them; valid until sk_model_free), with their length in *len; NULL
 * (and *len 0) when the model has none under that name. Never opens a file. */
const void *sk_model_external_data(const sk_model *m, const char *location, size_t *len);

/* Opset version the model imports for domain ("" or "ai.onnx" for ONNX), or 0. */
int64_t sk_model_opset(const sk_model *m, const char *domain);

/* Validates the whole model: tensors (dtype, dims, data length, external data
 * bounds), value_info dims, every graph's topology (no cycle, no dangling
 * input, outer-scope names for subgraphs). Called by sk_model_load. */
sk_status sk_model_check(sk_model *m, sk_error *err);

typedef struct sk_save_opts {
    /* If set: move every tensor of at least external_min bytes (initializers and
     * Constant-node tensors) into this file, named relative to the output's
     * folder (a plain file name, no path components). */
    const char *external_data;
    size_t external_min;  /* 0 means the default, 1024 bytes */
    size_t external_align; /* offsets aligned to this (0: 64 bytes) */
    int inline_all;       /* 1: bring external data back into the model */
} sk_save_opts;

/* Saves to path atomically (temporary name, then rename; a failure leaves
 * nothing behind). Deterministic: same model and options, same bytes. The
 * in-memory model is not changed. opts may be NULL (keep every tensor where it
 * is: external tensors are copied into an external file of the same name next
 * to path, unless path is in the model's own folder). */
sk_status sk_model_save(sk_model *m, const char *path, const sk_save_opts *opts, sk_error *err);

/* Serialises to a malloc'd buffer (all tensors inline). */
sk_status sk_model_save_buffer(sk_model *m, uint8_t **buf, size_t *len, sk_error *err);

/* ---- tensors ---------------------------------------------------------- */

typedef enum sk_storage {
    SK_STORE_RAW,      /* raw_data */
    SK_STORE_TYPED,    /* float_data, int32_data, ... */
    SK_STORE_EXTERNAL  /* data_location = EXTERNAL */
} sk_storage;

/* A read-only view of a tensor's data in ONNX's raw layout: little-endian,
 * row-major, 4-bit types packed two per byte (low nibble first), float16 and
 * bfloat16 as uint16. For typed-field tensors the data is converted once and
 * cached in the model. data stays valid until the model is freed or the tensor
 * changed. String tensors are not viewable (SK_EUNSUPPORTED). */
typedef struct sk_tensor_view {
    int dtype;
    int rank;
    const int64_t *dims;
    int64_t numel;
    const void *data;
    size_t nbytes;
    sk_storage storage;
} sk_tensor_view;

sk_status sk_model_tensor_view(sk_model *m, const sk_tensor_proto *t, sk_tensor_view *v, sk_error *err);

/* Replaces t's data with nbytes of raw data (copied unless take is 1, in
 * which case data must come from malloc and now belongs to the model). Clears
 * typed fields and external-data entries and sets data_type and dims. */
sk_status sk_tensor_proto_set_raw(sk_model *m, sk_tensor_proto *t, int dtype, int rank, const int64_t *dims,
                                  void *data, size_t nbytes, int take, sk_error *err);

/* Number of elements (product of dims), or -1 on overflow or a negative dim. */
int64_t sk_tensor_proto_numel(const sk_tensor_proto *t);
sk_storage sk_tensor_proto_storage(const sk_tensor_proto *t);

/* ---- graph helpers ---------------------------------------------------- */

/* Initializer of g named name, or NULL. */
sk_tensor_proto *sk_graph_initializer(sk_graph_proto *g, const char *name);
/* The attribute of node named name, or NULL. */
const sk_attr_proto *sk_node_attr(const sk_node_proto *n, const char *name);
int64_t sk_node_attr_int(const sk_node_proto *n, const char *name, int64_t def);
float sk_node_attr_float(const sk_node_proto *n, const char *name, float def);
/* String attribute (NUL-terminated copy not needed: returns pointer and len), or def. */
const char *sk_node_attr_string(const sk_node_proto *n, const char *name, const char *def, size_t *len);
/* Ints attribute: returns the array and sets *count; NULL (count 0) if absent. */
const int64_t *sk_node_attr_ints(const sk_node_proto *n, const char *name, size_t *count);
const float *sk_node_attr_floats(const sk_node_proto *n, const char *name, size_t *count);
const sk_tensor_proto *sk_node_attr_tensor(const sk_node_proto *n, const char *name);
/* Name of the node for messages: its name, or "<op_type> #index" if unnamed. */
const char *sk_node_label(const sk_node_proto *n, char *buf, size_t cap);

/* ---- building and editing (for convert, quant, prune) ----------------- */

/* New tensor proto (malloc'd, owned by the caller until added to a graph). The
 * data is copied. */
sk_tensor_proto *sk_tensor_proto_new(const char *name, int dtype, int rank, const int64_t *dims,
                                     const void *data, size_t nbytes);
/* New node: inputs/outputs are copied. domain may be NULL or "". */
sk_node_proto *sk_node_proto_new(const char *op_type, const char *domain, const char *name,
                                 size_t n_in, const char *const *inputs, size_t n_out, const char *const *outputs);
sk_status sk_node_add_attr_int(sk_node_proto *n, const char *name, int64_t v);
sk_status sk_node_add_attr_float(sk_node_proto *n, const char *name, float v);
sk_status sk_node_add_attr_ints(sk_node_proto *n, const char *name, size_t count, const int64_t *v);
sk_status sk_node_add_attr_string(sk_node_proto *n, const char *name, const char *v);
/* Appends (the graph takes ownership). */
sk_status sk_graph_add_initializer(sk_graph_proto *g, sk_tensor_proto *t);
/* Inserts node at position pos (SIZE_MAX: append). */
sk_status sk_graph_insert_node(sk_graph_proto *g, size_t pos, sk_node_proto *n);
/* Removes and frees node i / the initializer named name (returns 1 if found).
 * m is the model the graph belongs to (its mapped data is never freed). */
void sk_graph_remove_node(sk_model *m, sk_graph_proto *g, size_t i);
int sk_graph_remove_initializer(sk_model *m, sk_graph_proto *g, const char *name);
/* A name not yet used in the model (by any value, node or initializer), from base. */
char *sk_model_unique_name(sk_model *m, const char *base);
/* Ensures the model imports domain at least at version (adds the import). */
sk_status sk_model_require_opset(sk_model *m, const char *domain, int64_t version);
/* Frees a tensor/node proto not owned by any graph (protobuf-c free, with
 * mapping-aware handling of raw_data). */
void sk_tensor_proto_free(sk_model *m, sk_tensor_proto *t);
void sk_node_proto_free(sk_model *m, sk_node_proto *n);

#endif
