/* Atomic output files: write under a temporary name in the destination's
 * folder, then rename over the final name. Temporary names are registered so
 * a signal handler in cmd/ can remove them (sk_atomic_cleanup_signal is
 * async-signal-safe); a failure or an interruption never leaves a partial
 * file under the final name. */
#ifndef SK_ATOMIC_H
#define SK_ATOMIC_H

#include <stdio.h>

#include "sk_error.h"

typedef struct sk_atomic_file {
    FILE *f;          /* open for writing, fully buffered */
    char *final_path;
    char *tmp_path;
    int slot;         /* index in the cleanup registry, -1 if none */
} sk_atomic_file;

/* Creates a temporary file next to path (mode 0644, or mode for secrets). */
sk_status sk_atomic_open(sk_atomic_file *af, const char *path, unsigned mode, sk_error *err);

/* Flushes, fsyncs if durable, closes and renames over the final path. On
 * failure the temporary file is removed. af is reset either way. */
sk_status sk_atomic_commit(sk_atomic_file *af, int durable, sk_error *err);

/* Removes the temporary file. Safe on a reset or zeroed af. */
void sk_atomic_abort(sk_atomic_file *af);

/* Installs SIGINT/SIGTERM/SIGHUP handlers that remove every registered
 * temporary file (and directory, see sk_atomic_register_dir) and exit 130. */
void sk_atomic_install_signal_handlers(void);

/* Registers/unregisters a temporary path (file or empty-able directory tree
 * removed by the signal handler). Returns a slot or -1. */
int sk_atomic_register(const char *path);
void sk_atomic_unregister(int slot);

#endif
