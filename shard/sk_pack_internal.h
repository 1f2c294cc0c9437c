/* Private to shard/: folder and file helpers shared by pack, verify, sign
 * and unpack (shard/sk_pkgdir.c). */
#ifndef SK_PACK_INTERNAL_H
#define SK_PACK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "sk_pack.h"

/* A temporary output folder next to a final path. */
typedef struct sk_pack_tmpdir {
    char *final_path;
    char *tmp_path;
    int fd;      /* O_DIRECTORY descriptor of tmp_path, -1 if none */
    int slot;    /* signal-cleanup slot, -1 if none */
} sk_pack_tmpdir;

/* Checks that final_path can be created (its parent exists; final_path does
 * not, unless force and it is a folder), then creates ".BASE.XXXXXX" next to
 * it, registered for removal by the signal handlers. */
sk_status sk_pack_tmpdir_create(sk_pack_tmpdir *t, const char *final_path, int force, sk_error *err);

/* Syncs the folder and renames it to its final path (replacing an existing
 * folder there only when force: exchanged atomically, then the old one is
 * removed). t is reset either way; on failure the temporary folder is
 * removed. */
sk_status sk_pack_tmpdir_commit(sk_pack_tmpdir *t, int force, sk_error *err);

/* Removes the temporary folder and everything in it. Safe on a zeroed or
 * reset t (fd and slot -1 or 0 with no path). */
void sk_pack_tmpdir_abort(sk_pack_tmpdir *t);

/* Writes len bytes as a new file name in folder dirfd (mode 0644, never
 * replacing or following anything), synced to disk. Errors name dir/name. */
sk_status sk_pack_file_write(int dirfd, const char *dir, const char *name, const void *data, size_t len,
                             sk_error *err);

/* Reads the regular file name in folder dirfd (no symbolic links), at most
 * max bytes, into *buf (malloc'd; the caller frees it). SK_EVERIFY when it is
 * missing or not a regular file, SK_EINVAL when larger than max, SK_EIO
 * otherwise; messages start with dir/name. */
sk_status sk_pack_file_read(int dirfd, const char *dir, const char *name, size_t max, uint8_t **buf, size_t *len,
                            sk_error *err);

/* Signs manifest bytes with key and writes manifest.json.minisig and
 * manifest.json.sig into dirfd, replacing existing ones (each through a
 * temporary name, then rename). */
sk_status sk_pack_sign_files(int dirfd, const char *dir, const char *manifest, size_t len, const sk_manifest *m,
                             const sk_key_sec *key, sk_error *err);

/* Checks model.onnx (buf, len) against the manifest's tensor map: every
 * tensor with external data refers to a shard of the manifest, at the offset
 * and length, with the dtype, shape and name the map gives, and every entry
 * of the map is used exactly once. */
sk_status sk_pack_check_model(const sk_manifest *m, const uint8_t *buf, size_t len, sk_error *err);

/* One verification of a package folder (sk_verify.c), shared by verify,
 * sign and unpack. Set dir, o and rep (may be NULL), out_fd/out_dir for
 * unpack (-1/NULL otherwise), run, then free. */
typedef struct sk_pack_check {
    const char *dir;
    const sk_pack_verify_opts *o;
    sk_pack_report *rep;
    int out_fd;           /* unpack: decoded files are written here */
    const char *out_dir;  /* for messages */
    int dirfd;            /* set by run */
    sk_manifest *m;       /* set by run (also handed to rep) */
    uint8_t *manifest;    /* the manifest's bytes */
    size_t manifest_len;
    uint8_t *model;       /* model.onnx's bytes, kept for the structure check */
    size_t model_len;
} sk_pack_check;

sk_status sk_pack_check_run(sk_pack_check *c, sk_error *err);
void sk_pack_check_free(sk_pack_check *c);

/* Joins dir and name for messages and paths (malloc'd, NULL when out of
 * memory). */
char *sk_pack_join(const char *dir, const char *name);

#endif
