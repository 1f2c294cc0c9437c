/* libFuzzer target: the manifest parser (shard/sk_manifest.c). Whatever
 * parses must write back, and what is written must parse to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sk_manifest *m;
    sk_error err;
    if (sk_manifest_parse(data, size, &m, &err)) return 0;
    char *a, *b;
    size_t la, lb;
    if (sk_manifest_write(m, &a, &la, &err)) abort(); /* a valid manifest always writes */
    sk_manifest *m2;
    if (sk_manifest_parse(a, la, &m2, &err)) abort(); /* what we write must parse */
    if (sk_manifest_write(m2, &b, &lb, &err) || la != lb || memcmp(a, b, la)) abort();
    free(a);
    free(b);
    sk_manifest_free(m2);
    sk_manifest_free(m);
    return 0;
}
