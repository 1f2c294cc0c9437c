/* Unpacking: a verified package becomes a plain ONNX model with external
 * data (model.onnx and shard-NNNNN.bin), written into a temporary folder
 * renamed into place once every decoded byte matched the manifest. */
#include "sk_pack.h"

#include <stdlib.h>
#include <string.h>

#include "sk_pack_internal.h"

/* 1 if the folder that will hold outdir is pkgdir itself. */
static int inside(const char *pkgdir, const char *outdir)
{
    char *parent = strdup(outdir);
    if (!parent) return 0;
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = 0;
    char *slash = strrchr(parent, '/');
    if (slash) slash == parent ? (void)(slash[1] = 0) : (void)(*slash = 0);
    else strcpy(parent, ".");
    char *a = realpath(parent, NULL), *b = realpath(pkgdir, NULL);
    int same = a && b && !strcmp(a, b);
    free(a);
    free(b);
    free(parent);
    return same;
}

sk_status sk_pack_unpack(const char *pkgdir, const char *outdir, const sk_pack_verify_opts *o, int force,
                         sk_pack_report *rep, sk_error *err)
{
    if (inside(pkgdir, outdir))
        return sk_error_set(err, SK_EINVAL, "%s: the output folder cannot be inside the package %s", outdir, pkgdir);
    sk_pack_tmpdir t;
    sk_status s = sk_pack_tmpdir_create(&t, outdir, force, err);
    if (s) return s;
    sk_pack_check c;
    memset(&c, 0, sizeof c);
    c.dir = pkgdir;
    c.o = o;
    c.rep = rep;
    c.out_fd = t.fd;
    c.out_dir = t.final_path;
    c.dirfd = -1;
    s = sk_pack_check_run(&c, err);
    sk_pack_check_free(&c);
    if (!s) s = sk_pack_tmpdir_commit(&t, force, err);
    else sk_pack_tmpdir_abort(&t);
    return s;
}
