#include "sk_wire.h"

#include <stdlib.h>
#include <string.h>

enum msg_kind { K_NONE, K_MODEL, K_GRAPH, K_NODE, K_ATTR, K_TENSOR, K_SPARSE, K_FUNCTION, K_TRAINING };

/* Which length-delimited fields of each message hold a message worth
 * descending into (one that may contain tensors). */
static enum msg_kind child_kind(enum msg_kind k, uint32_t field)
{
    switch (k) {
    case K_MODEL: return field == 7 ? K_GRAPH : field == 20 ? K_TRAINING : field == 25 ? K_FUNCTION : K_NONE;
    case K_TRAINING: return (field == 1 || field == 2) ? K_GRAPH : K_NONE;
    case K_FUNCTION: return field == 7 ? K_NODE : K_NONE;
    case K_GRAPH: return field == 1 ? K_NODE : field == 5 ? K_TENSOR : field == 15 ? K_SPARSE : K_NONE;
    case K_NODE: return field == 5 ? K_ATTR : K_NONE;
    case K_ATTR:
        return (field == 5 || field == 10) ? K_TENSOR : (field == 6 || field == 11) ? K_GRAPH
               : (field == 22 || field == 23) ? K_SPARSE : K_NONE;
    case K_SPARSE: return (field == 1 || field == 2) ? K_TENSOR : K_NONE;
    default: return K_NONE;
    }
}

static int buf_reserve(sk_wire_buf *b, size_t more)
{
    if (b->cap - b->len >= more) return 0;
    size_t need;
    if (sk_add_size(b->len, more, &need)) return -1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_put(sk_wire_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n)) return -1;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int buf_varint(sk_wire_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    return buf_put(b, tmp, n);
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; n++; }
    return n;
}

/* Reads a varint at *pos; -1 when truncated or longer than 10 bytes. */
static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*pos >= len) return -1;
        uint8_t c = p[(*pos)++];
        if (shift == 63 && c > 1) return -1;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) { *out = v; return 0; }
    }
    return -1;
}

struct strip {
    const uint8_t *base; /* start of the whole input, for placeholder offsets */
    sk_error *err;
};

static sk_status strip_msg(struct strip *st, enum msg_kind kind, const uint8_t *p, size_t len,
                           sk_wire_buf *out, int depth);

static sk_status bad(struct strip *st, const char *what, size_t at)
{
    return sk_error_set(st->err, SK_EINVAL, "not a valid ONNX protobuf (%s at byte %zu)", what, at);
}

static sk_status strip_msg(struct strip *st, enum msg_kind kind, const uint8_t *p, size_t len,
                           sk_wire_buf *out, int depth)
{
    if (depth > 64) return bad(st, "messages nested too deeply", (size_t)(p - st->base));
    size_t pos = 0;
    while (pos < len) {
        size_t start = pos;
        uint64_t tag;
        if (get_varint(p, len, &pos, &tag)) return bad(st, "truncated field tag", (size_t)(p - st->base) + start);
        uint32_t field = (uint32_t)(tag >> 3);
        unsigned wt = (unsigned)(tag & 7);
        if (field == 0 || tag >> 32) return bad(st, "invalid field number", (size_t)(p - st->base) + start);
        switch (wt) {
        case 0: {
            uint64_t v;
            if (get_varint(p, len, &pos, &v)) return bad(st, "truncated varint", (size_t)(p - st->base) + start);
            break;
        }
        case 1:
            if (len - pos < 8) return bad(st, "truncated fixed64", (size_t)(p - st->base) + start);
            pos += 8;
            break;
        case 5:
            if (len - pos < 4) return bad(st, "truncated fixed32", (size_t)(p - st->base) + start);
            pos += 4;
            break;
        case 2: {
            uint64_t n;
            if (get_varint(p, len, &pos, &n) || n > len - pos)
                return bad(st, "length past the end of the data (truncated file?)", (size_t)(p - st->base) + start);
            const uint8_t *sub = p + pos;
            pos += (size_t)n;
            if (kind == K_TENSOR && field == SK_WIRE_PLACEHOLDER_FIELD)
                continue; /* never let a file forge a placeholder */
            if (kind == K_TENSOR && field == 9 && n >= SK_WIRE_STRIP_MIN) {
                uint8_t ph[16];
                uint64_t off = (uint64_t)(sub - st->base);
                for (int i = 0; i < 8; i++) {
                    ph[i] = (uint8_t)(off >> (8 * i));
                    ph[8 + i] = (uint8_t)(n >> (8 * i));
                }
                if (buf_varint(out, ((uint64_t)SK_WIRE_PLACEHOLDER_FIELD << 3) | 2) || buf_varint(out, 16) ||
                    buf_put(out, ph, 16))
                    return sk_error_set(st->err, SK_ENOMEM, "out of memory");
                continue;
            }
            enum msg_kind ck = child_kind(kind, field);
            if (ck != K_NONE) {
                sk_wire_buf child = { 0 };
                sk_status s = strip_msg(st, ck, sub, (size_t)n, &child, depth + 1);
                if (s) { sk_wire_buf_free(&child); return s; }
                int e = buf_varint(out, tag) || buf_varint(out, child.len) || buf_put(out, child.data, child.len);
                sk_wire_buf_free(&child);
                if (e) return sk_error_set(st->err, SK_ENOMEM, "out of memory");
                continue;
            }
            break;
        }
        default:
            return bad(st, "unsupported wire type", (size_t)(p - st->base) + start);
        }
        if (buf_put(out, p + start, pos - start)) return sk_error_set(st->err, SK_ENOMEM, "out of memory");
    }
    (void)varint_len;
    return SK_OK;
}

sk_status sk_wire_strip_model(const uint8_t *in, size_t len, sk_wire_buf *out, sk_error *err)
{
    struct strip st = { in, err };
    memset(out, 0, sizeof *out);
    sk_status s = strip_msg(&st, K_MODEL, in, len, out, 0);
    if (s) sk_wire_buf_free(out);
    return s;
}

void sk_wire_buf_free(sk_wire_buf *b)
{
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}
