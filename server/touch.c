/*
 * touch: files watched by their mtime (see touch.h).
 */
#include "server/touch.h"

#include <sys/stat.h>

static long long mtime_of(const char *path)
{
    struct stat st;
    if (stat(path, &st)) return -1;
    return (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

void touch_init(touch_file *t, const char *path, int action)
{
    t->path = path;
    t->action = action;
    t->mtime_ns = mtime_of(path);
}

int touch_changed(touch_file *t)
{
    long long m = mtime_of(t->path);
    if (m == t->mtime_ns) return 0;
    t->mtime_ns = m;
    return m >= 0; /* removed: no action, but a later touch counts */
}
