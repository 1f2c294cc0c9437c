/* Private to proto/: the model struct and the tensor walk shared by load,
 * check and save. */
#ifndef SK_MODEL_INTERNAL_H
#define SK_MODEL_INTERNAL_H

#include "sk_model.h"

typedef struct sk_map {
    char *name;           /* external-data location as written in the model; NULL for the model itself */
    const uint8_t *base;
    size_t len;
    int owned;            /* 1: malloc'd copy (load_buffer), 0: mmap */
    int fd;               /* the mapped file, kept open for copy_file_range; -1 if none */
} sk_map;

typedef struct sk_view_cache_entry {
    const sk_tensor_proto *t;
    void *data;
} sk_view_cache_entry;

struct sk_model {
    sk_model_proto *proto;
    char *path;
    char *dir;
    uint64_t file_size;
    sk_map *maps;
    size_t n_maps, cap_maps;
    sk_view_cache_entry *cache; /* open addressing on t, cap a power of two */
    size_t n_cache, cap_cache;
    int no_external;
};

/* Where a tensor sits in the model, for messages and for choosing which
 * tensors save may move to external data. */
typedef enum sk_tensor_place {
    SK_PLACE_INITIALIZER,
    SK_PLACE_CONSTANT,   /* the 't' attribute of a Constant node */
    SK_PLACE_ATTRIBUTE,  /* any other tensor attribute */
    SK_PLACE_SPARSE      /* values/indices of a sparse tensor */
} sk_tensor_place;

typedef sk_status (*sk_tensor_visit_fn)(sk_model *m, sk_tensor_proto *t, sk_tensor_place place,
                                        const sk_node_proto *node, void *arg);

/* Calls fn for every TensorProto in the model (all graphs, subgraphs,
 * functions and training info), in file order; stops at the first error. */
sk_status sk_model_visit_tensors(sk_model *m, sk_tensor_visit_fn fn, void *arg);

/* 1 if p points into one of m's mappings. */
int sk_model_in_map(const sk_model *m, const void *p);

/* The mapping p points into (and the offset of p in its file), or NULL. */
const sk_map *sk_model_map_of(const sk_model *m, const void *p, uint64_t *offset);

/* The mapping of external file name (opened and bounds-checked on first use). */
sk_status sk_model_external_map(sk_model *m, const char *location, const sk_map **out, sk_error *err);

/* Parses a tensor's external_data entries. */
sk_status sk_tensor_external_info(const sk_tensor_proto *t, const char **location, uint64_t *offset,
                                  uint64_t *length, int *has_length, sk_error *err);

/* Expected byte size of t's data, or -1 (sets err) when dtype/dims are bad. */
int64_t sk_tensor_proto_nbytes(const sk_tensor_proto *t, sk_error *err);

void sk_model_cache_drop(sk_model *m, const sk_tensor_proto *t);

#endif
