/* External data from memory: sk_model_attach_external and
 * sk_model_external_data (sk_model.h). An attached buffer is one more of the
 * model's mappings (owned, no file), so sk_model_external_map finds it before
 * it would look for a file and everything else (views, checks, save) treats
 * it like a mapped file. */
#include "sk_model_internal.h"

#include <stdlib.h>
#include <string.h>

static const sk_map *find_map(const sk_model *m, const char *location)
{
    for (size_t i = 0; i < m->n_maps; i++)
        if (m->maps[i].name && !strcmp(m->maps[i].name, location)) return &m->maps[i];
    return NULL;
}

sk_status sk_model_attach_external(sk_model *m, const char *location, void *data, size_t len, sk_error *err)
{
    size_t n = strnlen(location, SK_MAX_NAME + 1);
    if (n == 0 || n > SK_MAX_NAME) {
        free(data);
        return sk_error_set(err, SK_EINVAL, "external data location is empty or longer than %d bytes", SK_MAX_NAME);
    }
    if (find_map(m, location)) {
        free(data);
        return sk_error_set(err, SK_EINVAL, "external data '%s' is attached twice", location);
    }
    if (m->n_maps == m->cap_maps) {
        size_t cap = m->cap_maps ? 2 * m->cap_maps : 4;
        sk_map *p = cap < SIZE_MAX / sizeof *p ? realloc(m->maps, cap * sizeof *p) : NULL;
        if (!p) {
            free(data);
            return sk_error_set(err, SK_ENOMEM, "out of memory attaching external data '%s'", location);
        }
        m->maps = p;
        m->cap_maps = cap;
    }
    char *name = strdup(location);
    if (!name) {
        free(data);
        return sk_error_set(err, SK_ENOMEM, "out of memory attaching external data '%s'", location);
    }
    /* A zero-length buffer is kept as "" like an empty file's mapping, so
     * that base is never NULL. */
    const uint8_t *base = data;
    if (!len) {
        free(data);
        base = (const uint8_t *)"";
    }
    m->maps[m->n_maps++] = (sk_map){ .name = name, .base = base, .len = len, .owned = len != 0, .fd = -1 };
    return SK_OK;
}

const void *sk_model_external_data(const sk_model *m, const char *location, size_t *len)
{
    const sk_map *mp = find_map(m, location);
    *len = mp ? mp->len : 0;
    return mp ? mp->base : NULL;
}
