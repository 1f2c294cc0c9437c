#include "sk_dtype.h"

#include <string.h>

const sk_dtype_traits sk_dtype_table[SK_DTYPE_COUNT] = {
    [SK_FLOAT]          = { "float32",  "FLOAT",          32, SK_FIELD_FLOAT,  1 },
    [SK_UINT8]          = { "uint8",    "UINT8",           8, SK_FIELD_INT32,  1 },
    [SK_INT8]           = { "int8",     "INT8",            8, SK_FIELD_INT32,  1 },
    [SK_UINT16]         = { "uint16",   "UINT16",         16, SK_FIELD_INT32,  1 },
    [SK_INT16]          = { "int16",    "INT16",          16, SK_FIELD_INT32,  1 },
    [SK_INT32]          = { "int32",    "INT32",          32, SK_FIELD_INT32,  1 },
    [SK_INT64]          = { "int64",    "INT64",          64, SK_FIELD_INT64,  1 },
    [SK_STRING]         = { "string",   "STRING",          0, SK_FIELD_STRING, 1 },
    [SK_BOOL]           = { "bool",     "BOOL",            8, SK_FIELD_INT32,  1 },
    [SK_FLOAT16]        = { "float16",  "FLOAT16",        16, SK_FIELD_INT32,  1 },
    [SK_DOUBLE]         = { "float64",  "DOUBLE",         64, SK_FIELD_DOUBLE, 1 },
    [SK_UINT32]         = { "uint32",   "UINT32",         32, SK_FIELD_UINT64, 1 },
    [SK_UINT64]         = { "uint64",   "UINT64",         64, SK_FIELD_UINT64, 1 },
    [SK_COMPLEX64]      = { "complex64", "COMPLEX64",     64, SK_FIELD_FLOAT,  2 },
    [SK_COMPLEX128]     = { "complex128", "COMPLEX128",  128, SK_FIELD_DOUBLE, 2 },
    [SK_BFLOAT16]       = { "bfloat16", "BFLOAT16",       16, SK_FIELD_INT32,  1 },
    [SK_FLOAT8E4M3FN]   = { "float8e4m3fn", "FLOAT8E4M3FN", 8, SK_FIELD_INT32, 1 },
    [SK_FLOAT8E4M3FNUZ] = { "float8e4m3fnuz", "FLOAT8E4M3FNUZ", 8, SK_FIELD_INT32, 1 },
    [SK_FLOAT8E5M2]     = { "float8e5m2", "FLOAT8E5M2",    8, SK_FIELD_INT32,  1 },
    [SK_FLOAT8E5M2FNUZ] = { "float8e5m2fnuz", "FLOAT8E5M2FNUZ", 8, SK_FIELD_INT32, 1 },
    [SK_UINT4]          = { "uint4",    "UINT4",           4, SK_FIELD_INT32,  2 },
    [SK_INT4]           = { "int4",     "INT4",            4, SK_FIELD_INT32,  2 },
    [SK_FLOAT4E2M1]     = { "float4e2m1", "FLOAT4E2M1",    4, SK_FIELD_INT32,  2 },
};

int64_t sk_dtype_nbytes(int dt, int64_t n)
{
    if (!sk_dtype_valid(dt) || n < 0) return -1;
    unsigned bits = sk_dtype_table[dt].bits;
    if (bits == 0) return -1;
    if (bits < 8) return n / 2 + (n & 1);
    int64_t r;
    if (__builtin_mul_overflow(n, (int64_t)(bits / 8), &r)) return -1;
    return r;
}

float sk_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t sk_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) /* inf or nan (keep nan quiet and non-zero) */
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into exp: correct */
    return (uint16_t)(sign | half);
}

float sk_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t sk_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}
