/* files.c — directories, crash-safe writes and tree removal (files.h). */
#include "io/files.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/common.h"

int eid_file_exists(const char *path) { return access(path, F_OK) == 0; }

int eid_mkdir_p(const char *path) {
    char buf[4096];
    if (strlen(path) >= sizeof buf) return eid_error("%s: path too long", path), -1;
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p) continue;
        char save = *p;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return eid_error("%s: cannot create directory (%s)", buf, strerror(errno)), -1;
        struct stat st;
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return eid_error("%s: exists and is not a directory", buf), -1;
        if (!(*p = save)) break;
    }
    return 0;
}

int eid_fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return eid_error("%s: cannot open directory (%s)", dir, strerror(errno)), -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    /* some file systems cannot fsync a directory (EINVAL): the rename is then as durable as it gets */
    if (rc != 0 && e != EINVAL) return eid_error("%s: fsync failed (%s)", dir, strerror(e)), -1;
    return 0;
}

static int fsync_dir_of(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    return eid_fsync_dir(dirname(tmp));
}

int eid_write_parts_atomic(const char *path, const void *const *parts, const size_t *sizes, int nparts) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return eid_error("%s: path too long", path), -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return eid_error("%s: cannot create (%s)", tmp, strerror(errno)), -1;
    for (int i = 0; i < nparts; i++) {
        const uint8_t *p = parts[i];
        size_t left = sizes[i];
        while (left > 0) {
            ssize_t k = write(fd, p, left);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) {
                int e = k < 0 ? errno : ENOSPC;
                close(fd), unlink(tmp);
                return eid_error("%s: write failed (%s)", tmp, strerror(e)), -1;
            }
            p += k, left -= (size_t)k;
        }
    }
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd), unlink(tmp);
        return eid_error("%s: fsync failed (%s)", tmp, strerror(e)), -1;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return eid_error("%s: close failed (%s)", tmp, strerror(e)), -1;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return eid_error("%s: rename failed (%s)", path, strerror(e)), -1;
    }
    return fsync_dir_of(path);
}

int eid_write_atomic(const char *path, const void *data, size_t n) {
    const void *parts[1] = {data};
    size_t sizes[1] = {n};
    return eid_write_parts_atomic(path, parts, sizes, 1);
}

int eid_write_text_atomic(const char *path, const char *text) { return eid_write_atomic(path, text, strlen(text)); }

int eid_remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : (eid_error("%s: %s", path, strerror(errno)), -1);
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : (eid_error("%s: cannot remove (%s)", path, strerror(errno)), -1);
    DIR *d = opendir(path);
    if (!d) return eid_error("%s: cannot open (%s)", path, strerror(errno)), -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        rc = eid_remove_tree(sub);
    }
    closedir(d);
    if (rc == 0 && rmdir(path) != 0) return eid_error("%s: cannot remove (%s)", path, strerror(errno)), -1;
    return rc;
}
