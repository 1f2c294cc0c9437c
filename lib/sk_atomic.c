#include "sk_atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SK_ATOMIC_SLOTS 64
#define SK_ATOMIC_PATH 4096

static char registry[SK_ATOMIC_SLOTS][SK_ATOMIC_PATH];
static volatile sig_atomic_t used[SK_ATOMIC_SLOTS];

int sk_atomic_register(const char *path)
{
    size_t n = strlen(path);
    if (n >= SK_ATOMIC_PATH) return -1;
    for (int i = 0; i < SK_ATOMIC_SLOTS; i++)
        if (!used[i]) {
            memcpy(registry[i], path, n + 1);
            used[i] = 1;
            return i;
        }
    return -1;
}

void sk_atomic_unregister(int slot)
{
    if (slot >= 0 && slot < SK_ATOMIC_SLOTS) used[slot] = 0;
}

static void on_signal(int sig)
{
    for (int i = 0; i < SK_ATOMIC_SLOTS; i++)
        if (used[i]) {
            unlink(registry[i]);
            rmdir(registry[i]);
        }
    signal(sig, SIG_DFL);
    _exit(128 + sig);
}

void sk_atomic_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

sk_status sk_atomic_open(sk_atomic_file *af, const char *path, unsigned mode, sk_error *err)
{
    memset(af, 0, sizeof *af);
    af->slot = -1;
    size_t n = strlen(path);
    af->final_path = strdup(path);
    af->tmp_path = malloc(n + 16);
    if (!af->final_path || !af->tmp_path) {
        free(af->final_path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return sk_error_set(err, SK_ENOMEM, "out of memory");
    }
    /* ".name.XXXXXX" in the same folder, so rename() stays atomic */
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path + 1) : 0;
    memcpy(af->tmp_path, path, dl);
    snprintf(af->tmp_path + dl, n - dl + 16, ".%s.XXXXXX", path + dl);
    int fd = mkstemp(af->tmp_path);
    if (fd < 0) {
        sk_status s = sk_error_set(err, SK_EIO, "%s: cannot create a file there: %s", path, strerror(errno));
        free(af->final_path);
        free(af->tmp_path);
        memset(af, 0, sizeof *af);
        return s;
    }
    af->slot = sk_atomic_register(af->tmp_path);
    fchmod(fd, mode ? mode : 0644);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        close(fd);
        sk_atomic_abort(af);
        return sk_error_set(err, SK_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    setvbuf(af->f, NULL, _IOFBF, 1 << 20);
    return SK_OK;
}

static void reset(sk_atomic_file *af)
{
    sk_atomic_unregister(af->slot);
    free(af->final_path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
    af->slot = -1;
}

void sk_atomic_abort(sk_atomic_file *af)
{
    if (!af->tmp_path) return;
    if (af->f) fclose(af->f);
    unlink(af->tmp_path);
    reset(af);
}

sk_status sk_atomic_commit(sk_atomic_file *af, int durable, sk_error *err)
{
    int bad = fflush(af->f) != 0 || ferror(af->f);
    int e = errno;
    if (!bad && durable && fsync(fileno(af->f)) != 0) { bad = 1; e = errno; }
    if (fclose(af->f) != 0 && !bad) { bad = 1; e = errno; }
    af->f = NULL;
    if (!bad && rename(af->tmp_path, af->final_path) != 0) { bad = 1; e = errno; }
    if (bad) {
        sk_status s = sk_error_set(err, SK_EIO, "%s: write failed: %s", af->final_path, strerror(e));
        unlink(af->tmp_path);
        reset(af);
        return s;
    }
    reset(af);
    return SK_OK;
}
