/*
 * fifo: the master fifo (see fifo.h).
 */
#define _GNU_SOURCE
#include "server/fifo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fifo_open(fifo *f, const char *path, char *err, size_t errlen)
{
    struct stat st;
    f->rfd = f->wfd = -1;
    f->path = NULL;
    if (mkfifo(path, 0600) && errno != EEXIST)
        return snprintf(err, errlen, "master-fifo: cannot create %s: %s", path, strerror(errno)),
               -1;
    if (stat(path, &st) || !S_ISFIFO(st.st_mode))
        return snprintf(err, errlen, "master-fifo: %s exists and is not a fifo", path), -1;
    f->rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (f->rfd >= 0) f->wfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (f->rfd < 0 || f->wfd < 0) {
        snprintf(err, errlen, "master-fifo: cannot open %s: %s", path, strerror(errno));
        fifo_close(f, 0);
        return -1;
    }
    f->path = strdup(path);
    return 0;
}

ssize_t fifo_read(fifo *f, char *out, size_t max)
{
    if (f->rfd < 0) return 0;
    ssize_t n = read(f->rfd, out, max);
    return n > 0 ? n : 0;
}

void fifo_close(fifo *f, int unlink_path)
{
    if (f->rfd >= 0) close(f->rfd);
    if (f->wfd >= 0) close(f->wfd);
    f->rfd = f->wfd = -1;
    if (unlink_path && f->path) unlink(f->path);
    free(f->path);
    f->path = NULL;
}
