/*
 * fifo: the master fifo (`master-fifo`): uWSGI's one-letter commands written
 * to a named pipe. The master holds both ends open (so a writer closing never
 * makes the read end spin on EOF), reads non-blocking and acts on each byte.
 */
#ifndef SERVER_FIFO_H
#define SERVER_FIFO_H

#include <stddef.h>
#include <sys/types.h>

typedef struct fifo {
    int rfd, wfd;
    char *path;
} fifo;

/* Creates the fifo (or uses the existing one) and opens it. 0 or -1 with err. */
int fifo_open(fifo *f, const char *path, char *err, size_t errlen);
/* Reads pending command bytes into out; returns how many (0: none). */
ssize_t fifo_read(fifo *f, char *out, size_t max);
/* unlink_path: the master at exit. */
void fifo_close(fifo *f, int unlink_path);

#endif
