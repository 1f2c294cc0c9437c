/* Verification of a package folder (docs/format.md section 6), and signing
 * an existing package after checking it. */
#include "sk_pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_pack_internal.h"

#define SK_PLAIN_SIG_MAX 1024

void sk_pack_report_free(sk_pack_report *r)
{
    if (!r) return;
    sk_manifest_free(r->manifest);
    r->manifest = NULL;
}

void sk_pack_check_free(sk_pack_check *c)
{
    if (c->rep && !c->rep->manifest) {
        c->rep->manifest = c->m;
        c->m = NULL;
    }
    sk_manifest_free(c->m);
    free(c->manifest);
    free(c->model);
    if (c->dirfd >= 0) close(c->dirfd);
    c->m = NULL;
    c->manifest = c->model = NULL;
    c->dirfd = -1;
}

/* Checks name:/version: fields of a verified trusted comment. */
static sk_status check_trusted_comment(const sk_pack_check *c, const char *tc, sk_error *err)
{
    char buf[SK_SIGN_TRUSTED_COMMENT_MAX + 1];
    snprintf(buf, sizeof buf, "%s", tc);
    char *save = NULL;
    for (char *tok = strtok_r(buf, "\t", &save); tok; tok = strtok_r(NULL, "\t", &save)) {
        if (!strncmp(tok, "name:", 5) && strcmp(tok + 5, c->m->name))
            return sk_error_set(err, SK_EVERIFY, "%s/%s: the signed comment names model '%.128s', the manifest '%s'",
                                c->dir, SK_MANIFEST_MINISIG, tok + 5, c->m->name);
        if (!strncmp(tok, "version:", 8)) {
            char want[32];
            snprintf(want, sizeof want, "%" PRIu64, c->m->version);
            if (strcmp(tok + 8, want))
                return sk_error_set(err, SK_EVERIFY, "%s/%s: the signed comment says version %.32s, the manifest %s",
                                    c->dir, SK_MANIFEST_MINISIG, tok + 8, want);
        }
    }
    return SK_OK;
}

static sk_status check_signatures(sk_pack_check *c, sk_error *err)
{
    const sk_key_pub *pub = c->o->pub;
    uint8_t *text = NULL;
    size_t len = 0;
    struct stat st;
    int have_minisig = fstatat(c->dirfd, SK_MANIFEST_MINISIG, &st, AT_SYMLINK_NOFOLLOW) == 0;
    int have_sig = fstatat(c->dirfd, SK_MANIFEST_SIG, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (c->rep) c->rep->signed_files = have_minisig + have_sig;
    if (!pub) return SK_OK;
    sk_status s = sk_pack_file_read(c->dirfd, c->dir, SK_MANIFEST_MINISIG, SK_SIGN_MINISIG_FILE_MAX, &text, &len, err);
    if (s == SK_EVERIFY && !have_minisig)
        return sk_error_set(err, SK_EVERIFY, "%s/%s: missing: the package is not signed", c->dir, SK_MANIFEST_MINISIG);
    if (s) return s;
    sk_minisig ms;
    s = sk_sign_minisig_verify_buf(pub, c->manifest, c->manifest_len, (const char *)text, len, 0, &ms, err);
    free(text);
    if (s) return sk_error_prefix(err, "%s/%s: ", c->dir, SK_MANIFEST_MINISIG);
    if (c->rep) {
        c->rep->minisig_checked = 1;
        memcpy(c->rep->key_id, ms.key_id, sizeof c->rep->key_id);
        snprintf(c->rep->trusted_comment, sizeof c->rep->trusted_comment, "%s", ms.trusted_comment);
    }
    /* kept for the name/version check once the manifest is parsed */
    char *tc = strdup(ms.trusted_comment);
    if (!tc) return sk_error_set(err, SK_ENOMEM, "out of memory");
    if (have_sig) {
        uint8_t sig[SK_SIGN_BYTES];
        s = sk_pack_file_read(c->dirfd, c->dir, SK_MANIFEST_SIG, SK_PLAIN_SIG_MAX, &text, &len, err);
        if (!s) {
            s = sk_sign_ed25519_parse((const char *)text, len, sig, err);
            free(text);
            if (!s) s = sk_sign_ed25519_verify(pub, c->manifest, c->manifest_len, sig, err);
            if (s) sk_error_prefix(err, "%s/%s: ", c->dir, SK_MANIFEST_SIG);
        }
        if (!s && c->rep) c->rep->sig_checked = 1;
    }
    if (!s) {
        s = sk_manifest_parse(c->manifest, c->manifest_len, &c->m, err);
        if (s) sk_error_prefix(err, "%s/%s: ", c->dir, SK_MANIFEST_NAME);
    }
    if (!s) s = check_trusted_comment(c, tc, err);
    free(tc);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* No entry of the folder outside the manifest's files and signatures. */
static sk_status check_listing(sk_pack_check *c, sk_error *err)
{
    int fd = dup(c->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        sk_status s = sk_error_set(err, SK_EIO, "%s: cannot list the folder: %s", c->dir, strerror(errno));
        if (fd >= 0) close(fd);
        return s;
    }
    rewinddir(d);
    char **extra = NULL;
    size_t n_extra = 0, cap = 0;
    sk_status s = SK_OK;
    struct dirent *e;
    while (!s && (e = readdir(d))) {
        const char *nm = e->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        if (!strcmp(nm, SK_MANIFEST_NAME) || !strcmp(nm, SK_MANIFEST_MINISIG) || !strcmp(nm, SK_MANIFEST_SIG)) continue;
        if (sk_manifest_find_path(c->m, nm) != SIZE_MAX) continue;
        if (n_extra == cap) {
            cap = cap ? cap * 2 : 16;
            char **x = realloc(extra, cap * sizeof *x);
            if (!x) { s = sk_error_set(err, SK_ENOMEM, "out of memory"); break; }
            extra = x;
        }
        if (!(extra[n_extra] = strdup(nm))) { s = sk_error_set(err, SK_ENOMEM, "out of memory"); break; }
        n_extra++;
    }
    closedir(d);
    if (!s && n_extra) {
        qsort(extra, n_extra, sizeof *extra, cmp_str);
        s = sk_error_set(err, SK_EVERIFY, "%s/%s: not listed in the manifest (an extra file)", c->dir, extra[0]);
    }
    for (size_t i = 0; i < n_extra; i++) free(extra[i]);
    free(extra);
    return s;
}

/* Every listed file there, a regular file of the listed size. */
static sk_status check_presence(sk_pack_check *c, sk_error *err)
{
    for (size_t i = 0; i < c->m->n_files; i++) {
        const sk_manifest_file *f = &c->m->files[i];
        struct stat st;
        if (fstatat(c->dirfd, f->path, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) return sk_error_set(err, SK_EVERIFY, "%s/%s: missing", c->dir, f->path);
            return sk_error_set(err, SK_EIO, "%s/%s: %s", c->dir, f->path, strerror(errno));
        }
        if (!S_ISREG(st.st_mode)) return sk_error_set(err, SK_EVERIFY, "%s/%s: not a regular file", c->dir, f->path);
        if ((uint64_t)st.st_size != f->size)
            return sk_error_set(err, SK_EVERIFY, "%s/%s: %" PRIu64 " bytes, the manifest says %" PRIu64 " (%s)", c->dir,
                                f->path, (uint64_t)st.st_size, f->size,
                                (uint64_t)st.st_size < f->size ? "truncated" : "changed");
    }
    return SK_OK;
}

typedef struct raw_sink {
    sk_sha_pair h;
    int fd;            /* unpack output, or -1 */
    const char *dir, *name;
} raw_sink;

static int sink_fn(void *arg, const uint8_t *data, size_t len, sk_error *err)
{
    raw_sink *r = arg;
    sk_sha_pair_update(&r->h, data, len);
    while (r->fd >= 0 && len) {
        ssize_t w = write(r->fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            sk_error_set(err, SK_EIO, "%s/%s: write failed: %s", r->dir, r->name, strerror(errno));
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

static sk_status file_job(void *arg, size_t i, sk_error *err)
{
    sk_pack_check *c = arg;
    const sk_manifest_file *f = &c->m->files[i];
    uint8_t *buf;
    size_t len;
    sk_status s = sk_pack_file_read(c->dirfd, c->dir, f->path, (size_t)f->size, &buf, &len, err);
    if (s == SK_EINVAL) return sk_error_set(err, SK_EVERIFY, "%s/%s: larger than the manifest says", c->dir, f->path);
    if (s) return s;
    if (len != f->size) {
        free(buf);
        return sk_error_set(err, SK_EVERIFY, "%s/%s: %zu bytes, the manifest says %" PRIu64, c->dir, f->path, len, f->size);
    }
    uint8_t h256[SK_SHA256_BYTES], h384[SK_SHA384_BYTES];
    sk_sha_pair hp;
    sk_sha_pair_init(&hp);
    sk_sha_pair_update(&hp, buf, len);
    sk_sha_pair_final(&hp, h256, h384);
    if (sodium_memcmp(h256, f->sha256, sizeof h256)) {
        free(buf);
        return sk_error_set(err, SK_EVERIFY, "%s/%s: SHA-256 does not match the manifest (the file was changed, or comes from another package)",
                            c->dir, f->path);
    }
    if (sodium_memcmp(h384, f->sha384, sizeof h384)) {
        free(buf);
        return sk_error_set(err, SK_EVERIFY, "%s/%s: SHA-384 does not match the manifest's integrity string", c->dir, f->path);
    }
    int writing = c->out_fd >= 0;
    if (f->codec != SK_CODEC_NONE && (writing || !c->o->skip_raw)) {
        raw_sink r = { .fd = -1, .dir = c->out_dir, .name = f->raw_path };
        sk_sha_pair_init(&r.h);
        if (writing) {
            r.fd = openat(c->out_fd, f->raw_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (r.fd < 0) s = sk_error_set(err, SK_EIO, "%s/%s: cannot create: %s", c->out_dir, f->raw_path, strerror(errno));
        }
        if (!s) {
            s = sk_codec_decode(f->codec, buf, len, f->raw_size, sink_fn, &r, err);
            if (s == SK_EINVAL) {
                sk_error_prefix(err, "%s/%s: ", c->dir, f->path);
                s = SK_EVERIFY;
            }
        }
        if (r.fd >= 0) {
            if (!s && fsync(r.fd) != 0)
                s = sk_error_set(err, SK_EIO, "%s/%s: write failed: %s", c->out_dir, f->raw_path, strerror(errno));
            close(r.fd);
        }
        if (!s) {
            sk_sha_pair_final(&r.h, h256, h384);
            if (sodium_memcmp(h256, f->raw_sha256, sizeof h256) || sodium_memcmp(h384, f->raw_sha384, sizeof h384))
                s = sk_error_set(err, SK_EVERIFY, "%s/%s: decodes to bytes whose hash does not match the manifest's raw_sha256",
                                 c->dir, f->path);
        }
    } else if (writing) {
        s = sk_pack_file_write(c->out_fd, c->out_dir, f->raw_path, buf, len, err);
    }
    if (!s && i == 0) {
        c->model = buf; /* only job 0 touches these */
        c->model_len = len;
        return SK_OK;
    }
    free(buf);
    return s;
}

sk_status sk_pack_check_run(sk_pack_check *c, sk_error *err)
{
    c->dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->dirfd < 0) {
        if (errno == ENOENT) return sk_error_set(err, SK_EVERIFY, "%s: no such package folder", c->dir);
        return sk_error_set(err, SK_EVERIFY, "%s: not a package folder: %s", c->dir, strerror(errno));
    }
    sk_status s = sk_pack_file_read(c->dirfd, c->dir, SK_MANIFEST_NAME, SK_MANIFEST_MAX_BYTES, &c->manifest,
                                    &c->manifest_len, err);
    if (s == SK_EINVAL) s = SK_EVERIFY;
    if (!s) s = check_signatures(c, err);
    if (!s && !c->m) {
        s = sk_manifest_parse(c->manifest, c->manifest_len, &c->m, err);
        if (s) sk_error_prefix(err, "%s/%s: ", c->dir, SK_MANIFEST_NAME);
    }
    if (!s && c->o->name && strcmp(c->o->name, c->m->name))
        s = sk_error_set(err, SK_EVERIFY, "%s/%s: the package holds model '%s', not '%s'", c->dir, SK_MANIFEST_NAME,
                         c->m->name, c->o->name);
    if (!s && c->m->version < c->o->min_version)
        s = sk_error_set(err, SK_EVERIFY, "%s/%s: version %" PRIu64 " is older than the minimum %" PRIu64 " (a rollback)",
                         c->dir, SK_MANIFEST_NAME, c->m->version, c->o->min_version);
    if (!s) s = check_listing(c, err);
    if (!s) s = check_presence(c, err);
    if (!s) s = sk_codec_run_jobs(c->m->n_files, c->o->threads, file_job, c, err);
    if (!s) {
        s = sk_pack_check_model(c->m, c->model, c->model_len, err);
        if (s) sk_error_prefix(err, "%s/", c->dir);
    }
    if (!s && c->rep)
        for (size_t i = 0; i < c->m->n_files; i++) {
            c->rep->stored_bytes += c->m->files[i].size;
            c->rep->raw_bytes += c->m->files[i].raw_size;
        }
    return s;
}

sk_status sk_pack_verify(const char *pkgdir, const sk_pack_verify_opts *o, sk_pack_report *rep, sk_error *err)
{
    sk_pack_check c;
    memset(&c, 0, sizeof c);
    c.dir = pkgdir;
    c.o = o;
    c.rep = rep;
    c.out_fd = -1;
    c.dirfd = -1;
    sk_status s = sk_pack_check_run(&c, err);
    sk_pack_check_free(&c);
    return s;
}

sk_status sk_pack_sign(const char *pkgdir, const sk_key_sec *key, unsigned threads, sk_pack_report *rep, sk_error *err)
{
    sk_pack_verify_opts o;
    memset(&o, 0, sizeof o);
    o.threads = threads;
    sk_pack_check c;
    memset(&c, 0, sizeof c);
    c.dir = pkgdir;
    c.o = &o;
    c.out_fd = -1;
    c.dirfd = -1;
    sk_status s = sk_pack_check_run(&c, err);
    if (!s) s = sk_pack_sign_files(c.dirfd, pkgdir, (const char *)c.manifest, c.manifest_len, c.m, key, err);
    if (!s && fsync(c.dirfd) != 0) s = sk_error_set(err, SK_EIO, "%s: sync failed: %s", pkgdir, strerror(errno));
    if (!s && rep) {
        sk_key_pub pub;
        sk_key_sec_public(key, &pub);
        memcpy(rep->key_id, pub.id, sizeof rep->key_id);
        sk_pack_trusted_comment(c.m, rep->trusted_comment, sizeof rep->trusted_comment);
        rep->signed_files = 2;
        for (size_t i = 0; i < c.m->n_files; i++) {
            rep->stored_bytes += c.m->files[i].size;
            rep->raw_bytes += c.m->files[i].raw_size;
        }
    }
    c.rep = rep;
    sk_pack_check_free(&c);
    return s;
}
