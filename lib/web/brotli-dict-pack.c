/* Build-time helper of `make wasm` (compiled natively with Brotli's encoder
 * and decoder from Debian's source, never shipped): reads Brotli's 122,784-
 * byte static dictionary (brotli-dict's output) on stdin and writes it
 * Brotli-compressed (quality 11) to stdout, 51.7 KB where gzip -9 gave 58.9.
 * The stream must decode without the static dictionary, since it is what
 * the wasm decodes before it has one (sk_wasm.c, skw_dict_init, decodes it
 * with an all-zero dictionary): the encoder runs with that zero dictionary,
 * so no word of it can match the text (which has no NUL), only references
 * whose transform omits the whole word; and the result is decoded again with
 * the zero dictionary and compared with the input; any difference fails the
 * build (exit 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/decode.h>
#include <brotli/encode.h>

void BrotliSetDictionaryData(const uint8_t *data);

#define DICT_SIZE 122784

int main(void)
{
    static uint8_t dict[DICT_SIZE + 1], zero[DICT_SIZE], back[DICT_SIZE];
    if (fread(dict, 1, sizeof dict, stdin) != DICT_SIZE) {
        fprintf(stderr, "brotli-dict-pack: stdin is not a %d-byte dictionary\n", DICT_SIZE);
        return 1;
    }
    BrotliSetDictionaryData(zero);
    size_t n = BrotliEncoderMaxCompressedSize(DICT_SIZE), bn = DICT_SIZE;
    uint8_t *out = malloc(n);
    if (!out || !BrotliEncoderCompress(11, 22, BROTLI_MODE_TEXT, DICT_SIZE, dict, &n, out)) {
        fprintf(stderr, "brotli-dict-pack: compression failed\n");
        return 1;
    }
    if (BrotliDecoderDecompress(n, out, &bn, back) != BROTLI_DECODER_RESULT_SUCCESS || bn != DICT_SIZE ||
        memcmp(back, dict, DICT_SIZE) != 0) {
        fprintf(stderr, "brotli-dict-pack: the stream does not decode to the dictionary without it\n");
        return 1;
    }
    if (fwrite(out, 1, n, stdout) != n || fflush(stdout)) return 1;
    free(out);
    return 0;
}
