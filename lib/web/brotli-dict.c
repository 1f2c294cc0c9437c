/* Build-time helper of `make wasm` (compiled natively, never shipped): writes
 * Brotli's 122,784-byte static dictionary (RFC 7932 appendix A), taken from
 * Debian's brotli source, to stdout. The wasm build embeds it gzip-compressed
 * (about 59 KB instead of 123 KB); the worker inflates it with the browser's
 * DecompressionStream and hands it to the decoder (skw_brotli_dictionary). */
#include <stdio.h>

#include "dictionary.h"

int main(void)
{
    const BrotliDictionary *d = BrotliGetDictionary();
    if (!d->data || fwrite(d->data, 1, d->data_size, stdout) != d->data_size) return 1;
    return fflush(stdout) == 0 ? 0 : 1;
}
