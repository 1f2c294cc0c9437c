/* Element types. The numbering is ONNX's TensorProto.DataType, so a value read
 * from a model is used as is; one table of traits describes each type. */
#ifndef SK_DTYPE_H
#define SK_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum sk_dtype {
    SK_UNDEFINED = 0,
    SK_FLOAT = 1, SK_UINT8 = 2, SK_INT8 = 3, SK_UINT16 = 4, SK_INT16 = 5,
    SK_INT32 = 6, SK_INT64 = 7, SK_STRING = 8, SK_BOOL = 9, SK_FLOAT16 = 10,
    SK_DOUBLE = 11, SK_UINT32 = 12, SK_UINT64 = 13, SK_COMPLEX64 = 14,
    SK_COMPLEX128 = 15, SK_BFLOAT16 = 16, SK_FLOAT8E4M3FN = 17,
    SK_FLOAT8E4M3FNUZ = 18, SK_FLOAT8E5M2 = 19, SK_FLOAT8E5M2FNUZ = 20,
    SK_UINT4 = 21, SK_INT4 = 22, SK_FLOAT4E2M1 = 23,
    SK_DTYPE_COUNT
} sk_dtype;

/* Where the typed (non-raw) protobuf field of a TensorProto keeps this type. */
typedef enum sk_dtype_field {
    SK_FIELD_NONE, SK_FIELD_FLOAT, SK_FIELD_INT32, SK_FIELD_INT64,
    SK_FIELD_DOUBLE, SK_FIELD_UINT64, SK_FIELD_STRING
} sk_dtype_field;

typedef struct sk_dtype_traits {
    const char *name;       /* "float32", "int4", ... (numpy-like names) */
    const char *onnx_name;  /* "FLOAT", "INT4", ... */
    unsigned bits;          /* bits per element: 4, 8, ..., 128; 0 for string */
    sk_dtype_field field;   /* typed field used when raw_data is absent */
    unsigned per_field;     /* elements per typed-field entry (2 for int4, 2 for complex) */
} sk_dtype_traits;

extern const sk_dtype_traits sk_dtype_table[SK_DTYPE_COUNT];

/* 1 if dt is a known element type (string included), 0 otherwise. */
static inline int sk_dtype_valid(int dt)
{
    return dt > 0 && dt < SK_DTYPE_COUNT && sk_dtype_table[dt].name != NULL;
}

static inline const char *sk_dtype_name(int dt)
{
    return sk_dtype_valid(dt) ? sk_dtype_table[dt].name : "undefined";
}

/* Bytes needed for n elements of dt (4-bit types round up), or -1 when it
 * overflows or dt has no fixed size (string). */
int64_t sk_dtype_nbytes(int dt, int64_t n);

/* IEEE half and bfloat16 conversions (round to nearest even). */
float sk_half_to_float(uint16_t h);
uint16_t sk_float_to_half(float f);
float sk_bf16_to_float(uint16_t h);
uint16_t sk_float_to_bf16(float f);

#endif
