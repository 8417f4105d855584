/* files.h — the one set of file helpers every part of eidetic uses: directories, crash-safe writes
 * (a reader sees the old file or the new one, never a torn one) and tree removal. Errors return -1
 * with eid_error set, naming the file and the system's reason. */
#ifndef EIDETIC_FILES_H
#define EIDETIC_FILES_H
#include <stddef.h>

int eid_file_exists(const char *path);
int eid_mkdir_p(const char *path); /* mkdir -p; an existing non-directory is an error */
/* Write parts to PATH.tmp.PID, fsync, rename over PATH, fsync the directory. On failure the
 * temporary file is removed and PATH is untouched. */
int eid_write_parts_atomic(const char *path, const void *const *parts, const size_t *sizes, int nparts);
int eid_write_atomic(const char *path, const void *data, size_t n);
int eid_write_text_atomic(const char *path, const char *text);
int eid_fsync_dir(const char *dir);  /* make renames/creations inside DIR durable */
int eid_remove_tree(const char *path); /* rm -r; a missing path is not an error */

#endif
