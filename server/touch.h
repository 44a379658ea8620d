/*
 * touch: a file watched by its mtime (touch-reload and the other touch-*
 * options, py-autoreload's source files).
 */
#ifndef SERVER_TOUCH_H
#define SERVER_TOUCH_H

typedef struct touch_file {
    const char *path;
    long long mtime_ns; /* -1: absent */
    int action;         /* caller's */
} touch_file;

void touch_init(touch_file *t, const char *path, int action);
/* 1 when the file's mtime changed (or it appeared) since the last call. */
int touch_changed(touch_file *t);

#endif
