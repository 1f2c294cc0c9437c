/* Protobuf wire-format helpers for the parts of ONNX files that protobuf-c
 * should not see: large raw_data fields are cut out of the file's bytes before
 * protobuf-c parses the rest, so weights are never copied (they stay in the
 * read-only mapping of the file). */
#ifndef SK_WIRE_H
#define SK_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "sk_error.h"

/* The field number that stands in for a cut-out raw_data inside a TensorProto:
 * a length-delimited field of 16 bytes, offset and length as little-endian
 * uint64 relative to the start of the parsed buffer. Kept only in memory
 * (protobuf-c keeps it as an unknown field until sk_model reattaches it). */
#define SK_WIRE_PLACEHOLDER_FIELD 536870000u

/* raw_data fields of at least this many bytes are cut out. */
#define SK_WIRE_STRIP_MIN 256

typedef struct sk_wire_buf {
    uint8_t *data;
    size_t len, cap;
} sk_wire_buf;

/* Copies the ModelProto in in[0..len) to out with every TensorProto raw_data
 * of at least SK_WIRE_STRIP_MIN bytes replaced by a placeholder field. Checks
 * the wire format on the way (truncation, bad wire types, lengths past the
 * end, nesting deeper than 64): SK_EINVAL with a message on bad input.
 * out->data is malloc'd; free it with free(). */
sk_status sk_wire_strip_model(const uint8_t *in, size_t len, sk_wire_buf *out, sk_error *err);

void sk_wire_buf_free(sk_wire_buf *b);

#endif
