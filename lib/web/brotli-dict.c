/* Build-time helper of `make wasm` (compiled natively, never shipped): writes
 * Brotli's 122,784-byte static dictionary (RFC 7932 appendix A), taken from
 * Debian's brotli source, to stdout, for brotli-dict-pack.c, which
 * compresses it into the wasm (skw_dict_init decodes it there). */
#include <stdio.h>

#include "dictionary.h"

int main(void)
{
    const BrotliDictionary *d = BrotliGetDictionary();
    if (!d->data || fwrite(d->data, 1, d->data_size, stdout) != d->data_size) return 1;
    return fflush(stdout) == 0 ? 0 : 1;
}
