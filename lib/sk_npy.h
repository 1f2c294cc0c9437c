/* Tensor files: NumPy .npy and ONNX TensorProto .pb, read into and written
 * from runtime tensors (sk_tensor). Used by skiff-run, the quantizer's
 * calibration reader and the tests.
 *
 * .npy: format versions 1.0, 2.0 and 3.0; little-endian (or one-byte) element
 * types f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1; C order only. Fortran order,
 * big-endian data, object/structured/string dtypes are rejected with a clear
 * error. Every length in the header is bounds- and overflow-checked, and the
 * data must be exactly as long as the shape says.
 *
 * .pb: one serialised onnx.TensorProto, typed fields or raw_data (not external
 * data, not strings).
 *
 * Every loader fills an sk_tensor that owns its data (free it with
 * sk_tensor_free); on failure the tensor is left empty and err names the file. */
#ifndef SK_NPY_H
#define SK_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "sk_error.h"
#include "sk_tensor.h"

/* Largest .npy header accepted (numpy itself writes a few hundred bytes). */
#define SK_NPY_MAX_HEADER ((size_t)1 << 20)

/* Parses a whole .npy file held in memory. name is used in messages. */
sk_status sk_npy_parse(const void *buf, size_t len, const char *name, sk_tensor *t, sk_error *err);
sk_status sk_npy_load(const char *path, sk_tensor *t, sk_error *err);

/* Serialises t as .npy (version 1.0, or 2.0 when the header needs it) into a
 * malloc'd buffer. Types without a numpy equivalent (bfloat16, 4-bit, float8,
 * string) are SK_EUNSUPPORTED. */
sk_status sk_npy_format(const sk_tensor *t, uint8_t **buf, size_t *len, sk_error *err);
/* Writes t to path atomically (a temporary name in the same folder, renamed at
 * the end; nothing is left behind on failure). */
sk_status sk_npy_save(const char *path, const sk_tensor *t, sk_error *err);

/* Converts a TensorProto (typed fields or raw_data) into t. name is used in
 * messages (may be NULL). */
sk_status sk_npy_from_proto(const Onnx__TensorProto *tp, const char *name, sk_tensor *t, sk_error *err);

/* Parses / loads a serialised TensorProto. If tensor_name is not NULL it gets
 * a malloc'd copy of the proto's name ("" when it has none; free it). */
sk_status sk_npy_parse_pb(const void *buf, size_t len, const char *name, sk_tensor *t,
                          char **tensor_name, sk_error *err);
sk_status sk_npy_load_pb(const char *path, sk_tensor *t, char **tensor_name, sk_error *err);

/* Writes t as a TensorProto with raw_data, named tensor_name (may be NULL),
 * atomically. */
sk_status sk_npy_save_pb(const char *path, const sk_tensor *t, const char *tensor_name, sk_error *err);

/* Loads either format, told apart by the .npy magic bytes. tensor_name as in
 * sk_npy_load_pb ("" for .npy files). */
sk_status sk_npy_load_any(const char *path, sk_tensor *t, char **tensor_name, sk_error *err);

/* Reads a whole file into a malloc'd buffer (at least one byte allocated).
 * Files over max_len bytes are an error. */
sk_status sk_npy_read_file(const char *path, size_t max_len, uint8_t **buf, size_t *len, sk_error *err);

#endif
