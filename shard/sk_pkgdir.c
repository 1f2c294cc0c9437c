/* Package folders: temporary output folders renamed into place, their
 * removal on signals, plain-name file I/O relative to a folder, signature
 * files, and the check of model.onnx against the tensor map. */
#include "sk_pack_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sk_atomic.h"
#include "sk_model_internal.h"

char *sk_pack_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* ---- removal on signals ---------------------------------------------------- */

#define SK_PACK_TMP_SLOTS 8
#define SK_PACK_TMP_PATH 4096

static char tmp_reg[SK_PACK_TMP_SLOTS][SK_PACK_TMP_PATH];
static volatile sig_atomic_t tmp_used[SK_PACK_TMP_SLOTS];

static int tmp_register(const char *path)
{
    size_t n = strlen(path);
    if (n >= SK_PACK_TMP_PATH) return -1;
    for (int i = 0; i < SK_PACK_TMP_SLOTS; i++)
        if (!tmp_used[i]) {
            memcpy(tmp_reg[i], path, n + 1);
            tmp_used[i] = 1;
            return i;
        }
    return -1;
}

static void tmp_unregister(int slot)
{
    if (slot >= 0 && slot < SK_PACK_TMP_SLOTS) tmp_used[slot] = 0;
}

struct sk_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Removes the files of a flat folder and the folder, with system calls only
 * (async-signal-safe). Tries a few times in case another thread was still
 * creating a file. */
static void remove_flat_dir_raw(const char *path)
{
    static char buf[16384] __attribute__((aligned(8)));
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) return;
        for (;;) {
            long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
            if (n <= 0) break;
            for (long off = 0; off < n;) {
                struct sk_dirent64 *d = (struct sk_dirent64 *)(buf + off);
                off += d->d_reclen;
                const char *nm = d->d_name;
                if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
                unlinkat(fd, nm, 0);
            }
        }
        close(fd);
        if (rmdir(path) == 0 || errno == ENOENT) return;
    }
}

static struct sigaction prev_action[3];
static const int handled[3] = { SIGINT, SIGTERM, SIGHUP };

static void on_signal(int sig)
{
    for (int i = 0; i < SK_PACK_TMP_SLOTS; i++)
        if (tmp_used[i]) remove_flat_dir_raw(tmp_reg[i]);
    for (int k = 0; k < 3; k++)
        if (handled[k] == sig && prev_action[k].sa_handler != SIG_DFL && prev_action[k].sa_handler != SIG_IGN) {
            prev_action[k].sa_handler(sig); /* sk_atomic's: removes its files and exits */
        }
    signal(sig, SIG_DFL);
    raise(sig);
}

void sk_pack_install_signal_handlers(void)
{
    sk_atomic_install_signal_handlers();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < 3; k++) sigaddset(&sa.sa_mask, handled[k]);
    for (int k = 0; k < 3; k++) sigaction(handled[k], &sa, &prev_action[k]);
    signal(SIGXFSZ, SIG_IGN);
}

/* ---- temporary folders ----------------------------------------------------- */

static void tmpdir_reset(sk_pack_tmpdir *t)
{
    if (t->tmp_path && t->fd >= 0) close(t->fd);
    tmp_unregister(t->slot);
    free(t->final_path);
    free(t->tmp_path);
    t->final_path = t->tmp_path = NULL;
    t->fd = -1;
    t->slot = -1;
}

/* Removes the regular files of a flat folder (not following links), then the
 * folder. Returns -1 (and leaves the rest) at a subfolder. */
static int remove_flat_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -1;
    }
    int bad = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (unlinkat(fd, e->d_name, 0) != 0) bad = 1;
    }
    closedir(d);
    if (rmdir(path) != 0) bad = 1;
    return bad ? -1 : 0;
}

/* 1 if path is a folder holding only non-folders, 0 if not, -1 on error. */
static int is_flat_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return -1;
    int flat = 1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISDIR(st.st_mode)) {
            flat = 0;
            break;
        }
    }
    closedir(d);
    return flat;
}

sk_status sk_pack_tmpdir_create(sk_pack_tmpdir *t, const char *final_path, int force, sk_error *err)
{
    memset(t, 0, sizeof *t);
    t->fd = -1;
    t->slot = -1;
    size_t n = strlen(final_path);
    while (n > 1 && final_path[n - 1] == '/') n--;
    if (n == 0) return sk_error_set(err, SK_EINVAL, "empty output folder name");
    t->final_path = strndup(final_path, n);
    if (!t->final_path) return sk_error_set(err, SK_ENOMEM, "out of memory");
    const char *fp = t->final_path;
    const char *slash = strrchr(fp, '/');
    const char *base = slash ? slash + 1 : fp;
    if (!strcmp(base, ".") || !strcmp(base, "..") || !strcmp(fp, "/")) {
        tmpdir_reset(t);
        return sk_error_set(err, SK_EINVAL, "%s: name a new folder for the output", final_path);
    }
    struct stat st;
    if (lstat(fp, &st) == 0) {
        sk_status s = SK_OK;
        if (!force) s = sk_error_set(err, SK_EIO, "%s: already exists; use -f to replace it", fp);
        else if (!S_ISDIR(st.st_mode)) s = sk_error_set(err, SK_EIO, "%s: exists and is not a folder; not replacing it", fp);
        else if (is_flat_dir(fp) != 1)
            s = sk_error_set(err, SK_EIO, "%s: exists and holds folders (not a package); not replacing it", fp);
        if (s) {
            tmpdir_reset(t);
            return s;
        }
    } else if (errno != ENOENT) {
        sk_status s = sk_error_set(err, SK_EIO, "%s: %s", fp, strerror(errno));
        tmpdir_reset(t);
        return s;
    }
    size_t dl = slash ? (size_t)(slash - fp) + 1 : 0;
    size_t cap = dl + strlen(base) + 16;
    t->tmp_path = malloc(cap);
    if (!t->tmp_path) {
        tmpdir_reset(t);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    memcpy(t->tmp_path, fp, dl);
    snprintf(t->tmp_path + dl, cap - dl, ".%s.XXXXXX", base);
    if (!mkdtemp(t->tmp_path)) {
        sk_status s = sk_error_set(err, SK_EIO, "%s: cannot create a folder next to it: %s", fp, strerror(errno));
        free(t->tmp_path);
        t->tmp_path = NULL;
        tmpdir_reset(t);
        return s;
    }
    t->slot = tmp_register(t->tmp_path);
    t->fd = open(t->tmp_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (t->fd < 0 || fchmod(t->fd, 0755) != 0) {
        sk_status s = sk_error_set(err, SK_EIO, "%s: %s", t->tmp_path, strerror(errno));
        sk_pack_tmpdir_abort(t);
        return s;
    }
    return SK_OK;
}

void sk_pack_tmpdir_abort(sk_pack_tmpdir *t)
{
    if (t->tmp_path) remove_flat_dir(t->tmp_path);
    tmpdir_reset(t);
}

static void sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

sk_status sk_pack_tmpdir_commit(sk_pack_tmpdir *t, int force, sk_error *err)
{
    sk_status s = SK_OK;
    struct stat st;
    if (fsync(t->fd) != 0) {
        s = sk_error_set(err, SK_EIO, "%s: sync failed: %s", t->tmp_path, strerror(errno));
    } else if (lstat(t->final_path, &st) == 0) {
        if (!force)
            s = sk_error_set(err, SK_EIO, "%s: already exists; use -f to replace it", t->final_path);
        else if (!S_ISDIR(st.st_mode) || is_flat_dir(t->final_path) != 1)
            s = sk_error_set(err, SK_EIO, "%s: is not a package folder; not replacing it", t->final_path);
        else if (renameat2(AT_FDCWD, t->tmp_path, AT_FDCWD, t->final_path, RENAME_EXCHANGE) != 0)
            s = sk_error_set(err, SK_EIO, "%s: cannot replace it: %s", t->final_path, strerror(errno));
        else
            sync_parent(t->final_path);
        /* after the exchange the temporary name holds the old folder, which
         * the abort below removes */
    } else if (renameat2(AT_FDCWD, t->tmp_path, AT_FDCWD, t->final_path, RENAME_NOREPLACE) == 0 ||
               ((errno == EINVAL || errno == ENOSYS) && rename(t->tmp_path, t->final_path) == 0)) {
        sync_parent(t->final_path);
        tmpdir_reset(t);
        return SK_OK;
    } else if (errno == EEXIST) {
        s = sk_error_set(err, SK_EIO, "%s: already exists; use -f to replace it", t->final_path);
    } else {
        s = sk_error_set(err, SK_EIO, "%s: cannot rename the folder into place: %s", t->final_path, strerror(errno));
    }
    sk_pack_tmpdir_abort(t);
    return s;
}

/* ---- files ----------------------------------------------------------------- */

sk_status sk_pack_file_write(int dirfd, const char *dir, const char *name, const void *data, size_t len, sk_error *err)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) return sk_error_set(err, SK_EIO, "%s/%s: cannot create: %s", dir, name, strerror(errno));
    const uint8_t *p = data;
    size_t done = 0;
    int e = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done > (1u << 30) ? (1u << 30) : len - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            e = errno;
            break;
        }
        done += (size_t)w;
    }
    if (!e && fsync(fd) != 0) e = errno;
    if (close(fd) != 0 && !e) e = errno;
    if (e) {
        unlinkat(dirfd, name, 0);
        return sk_error_set(err, SK_EIO, "%s/%s: write failed: %s", dir, name, strerror(e));
    }
    return SK_OK;
}

sk_status sk_pack_file_read(int dirfd, const char *dir, const char *name, size_t max, uint8_t **buf, size_t *len,
                            sk_error *err)
{
    *buf = NULL;
    *len = 0;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return sk_error_set(err, SK_EVERIFY, "%s/%s: missing", dir, name);
        if (errno == ELOOP) return sk_error_set(err, SK_EVERIFY, "%s/%s: is a symbolic link, not a file", dir, name);
        return sk_error_set(err, SK_EIO, "%s/%s: cannot open: %s", dir, name, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sk_error_set(err, SK_EVERIFY, "%s/%s: not a regular file", dir, name);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return sk_error_set(err, SK_EINVAL, "%s/%s: larger than %zu bytes", dir, name, max);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        close(fd);
        return sk_error_set(err, SK_ENOMEM, "%s/%s: out of memory (%zu bytes)", dir, name, n);
    }
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, b + done, n - done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        done += (size_t)r;
    }
    int more = 0;
    if (done == n) {
        char c;
        ssize_t r = read(fd, &c, 1);
        more = r > 0;
    }
    close(fd);
    if (done != n || more) {
        free(b);
        return sk_error_set(err, SK_EIO, "%s/%s: changed size while being read", dir, name);
    }
    *buf = b;
    *len = n;
    return SK_OK;
}

/* Writes data under a temporary name in dirfd, then renames it to name. */
static sk_status replace_file(int dirfd, const char *dir, const char *name, const void *data, size_t len, sk_error *err)
{
    char tmp[300];
    uint8_t rnd[6];
    char hex[13];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(tmp, sizeof tmp, ".%s.%s", name, hex);
    char *full = sk_pack_join(dir, tmp);
    int slot = full ? sk_atomic_register(full) : -1;
    sk_status s = sk_pack_file_write(dirfd, dir, tmp, data, len, err);
    if (!s && renameat(dirfd, tmp, dirfd, name) != 0) {
        s = sk_error_set(err, SK_EIO, "%s/%s: cannot rename into place: %s", dir, name, strerror(errno));
        unlinkat(dirfd, tmp, 0);
    }
    sk_atomic_unregister(slot);
    free(full);
    return s;
}

void sk_pack_trusted_comment(const sk_manifest *m, char *out, size_t cap)
{
    snprintf(out, cap, "name:%s\tversion:%" PRIu64 "\ttimestamp:%" PRId64 "\tfile:%s\thashed", m->name, m->version,
             m->created, SK_MANIFEST_NAME);
}

sk_status sk_pack_sign_files(int dirfd, const char *dir, const char *manifest, size_t len, const sk_manifest *m,
                             const sk_key_sec *key, sk_error *err)
{
    char tc[SK_SIGN_TRUSTED_COMMENT_MAX + 1];
    sk_pack_trusted_comment(m, tc, sizeof tc);
    char *text = NULL;
    size_t text_len = 0;
    sk_status s = sk_sign_minisig_buf(key, manifest, len, NULL, tc, &text, &text_len, err);
    uint8_t sig[SK_SIGN_BYTES];
    char sig_text[SK_SIGN_ED25519_TEXT_SIZE];
    if (!s) s = sk_sign_ed25519(key, manifest, len, sig, err);
    if (!s) {
        sk_sign_ed25519_format(sig, sig_text);
        s = replace_file(dirfd, dir, SK_MANIFEST_MINISIG, text, text_len, err);
    }
    if (!s) s = replace_file(dirfd, dir, SK_MANIFEST_SIG, sig_text, strlen(sig_text), err);
    free(text);
    return s;
}

/* ---- model.onnx against the tensor map ------------------------------------- */

typedef struct check_ctx {
    const sk_manifest *m;
    size_t *by_pos;   /* tensor indices sorted by (file, offset) */
    unsigned char *used;
    sk_error *err;
} check_ctx;

static int cmp_pos(const void *a, const void *b, void *m_)
{
    const sk_manifest *m = m_;
    const sk_manifest_tensor *x = &m->tensors[*(const size_t *)a], *y = &m->tensors[*(const size_t *)b];
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static sk_status check_tensor(sk_model *model, sk_tensor_proto *t, sk_tensor_place place, const sk_node_proto *n, void *arg)
{
    (void)model;
    check_ctx *c = arg;
    if (sk_tensor_proto_storage(t) != SK_STORE_EXTERNAL) return SK_OK;
    const char *label = place == SK_PLACE_CONSTANT && n && n->n_output ? n->output[0] : t->name ? t->name : "";
    const char *loc;
    uint64_t off, len;
    int has_len;
    sk_status s = sk_tensor_external_info(t, &loc, &off, &len, &has_len, c->err);
    if (s) return sk_error_prefix(c->err, "model.onnx: tensor '%s': ", label);
    size_t file = SIZE_MAX;
    for (size_t i = 1; i < c->m->n_files; i++)
        if (!strcmp(c->m->files[i].raw_path, loc)) file = i;
    if (file == SIZE_MAX)
        return sk_error_set(c->err, SK_EVERIFY, "model.onnx: tensor '%s' refers to '%.64s', not a shard of the manifest", label, loc);
    /* binary search for (file, off) */
    size_t lo = 0, hi = c->m->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sk_manifest_tensor *x = &c->m->tensors[c->by_pos[mid]];
        if (x->file < file || (x->file == file && x->offset < off)) lo = mid + 1;
        else hi = mid;
    }
    const sk_manifest_tensor *x = lo < c->m->n_tensors ? &c->m->tensors[c->by_pos[lo]] : NULL;
    if (!x || x->file != file || x->offset != off)
        return sk_error_set(c->err, SK_EVERIFY, "model.onnx: tensor '%s' at offset %" PRIu64 " of %s is not in the tensor map",
                            label, off, loc);
    int64_t numel = sk_tensor_proto_numel(t);
    int same = has_len && len == x->length && t->data_type == x->dtype && (int)t->n_dims == x->rank && numel >= 0 &&
               !strcmp(label, x->name);
    for (int k = 0; same && k < x->rank; k++) same = t->dims[k] == x->dims[k];
    if (!same)
        return sk_error_set(c->err, SK_EVERIFY, "model.onnx: tensor '%s' does not match the tensor map entry '%s' (name, length, dtype or shape)",
                            label, x->name);
    if (c->used[c->by_pos[lo]]++)
        return sk_error_set(c->err, SK_EVERIFY, "model.onnx: two tensors share the data of '%s'", x->name);
    return SK_OK;
}

sk_status sk_pack_check_model(const sk_manifest *m, const uint8_t *buf, size_t len, sk_error *err)
{
    sk_load_opts lo = { 1, 1 };
    sk_model *model = NULL;
    sk_status s = sk_model_load_buffer(buf, len, NULL, SK_MANIFEST_MODEL, &lo, &model, err);
    if (s) return sk_error_prefix(err, "model.onnx: ");
    check_ctx c = { m, NULL, NULL, err };
    c.by_pos = malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *c.by_pos);
    c.used = calloc(m->n_tensors ? m->n_tensors : 1, 1);
    if (!c.by_pos || !c.used) s = sk_error_set(err, SK_ENOMEM, "out of memory");
    if (!s) {
        for (size_t i = 0; i < m->n_tensors; i++) c.by_pos[i] = i;
        qsort_r(c.by_pos, m->n_tensors, sizeof *c.by_pos, cmp_pos, (void *)m);
        s = sk_model_visit_tensors(model, check_tensor, &c);
    }
    for (size_t i = 0; !s && i < m->n_tensors; i++)
        if (!c.used[i])
            s = sk_error_set(err, SK_EVERIFY, "model.onnx: no tensor uses the tensor map entry '%s'", m->tensors[i].name);
    free(c.by_pos);
    free(c.used);
    sk_model_free(model);
    return s;
}
