/* libFuzzer target for lib/ini: any text reads or fails with a message that
 * names a file, never crashes, never hangs, and every key handed to the
 * callback is non-empty, carries a positive line and a file name, and every
 * value stays within the expansion bound. Comments, sections, $(ENV), %-magic,
 * %(name) and set-placeholder are exercised directly; includes reach two small
 * files written to a private directory (base.ini with [uwsgi] and [other],
 * and self.ini, which includes itself), so `ini = base.ini:other` and cycles
 * are in reach of the mutator without touching anything else. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/ini.h"

static char name[256];
static char dir[] = "/tmp/aiserve-fuzz-ini-XXXXXX";

static void cleanup(void)
{
    char path[512];
    static const char *const files[] = {"base.ini", "self.ini"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int on_key(void *ud, const char *key, const char *value, const char *file, int line)
{
    size_t *count = ud;
    if (!key[0] || line <= 0 || !file[0] || (value && strlen(value) > 64 * 1024)) abort();
    if (!strcmp(key, "ini") || !strcmp(key, "include") || !strcmp(key, "set-placeholder"))
        abort(); /* consumed by the reader */
    (*count)++;
    return 0;
}

static void put(const char *dir, const char *file, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (!mkdtemp(dir)) abort();
    atexit(cleanup);
    put(dir, "base.ini", "[uwsgi]\nprocesses = 2\nb = %n\n[other]\nthreads = %(processes)\n");
    put(dir, "self.ini", "[uwsgi]\nini = self.ini\n");
    snprintf(name, sizeof(name), "%s/fuzz.ini", dir);
    setenv("AISERVE_FUZZ_ENV", "value", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    size_t count = 0;
    int rc = ini_read_string((const char *)data, size, name, "uwsgi|aiserve", on_key, &count, err,
                             sizeof(err));
    if (rc != 0 && rc != -1) abort();
    if (rc == -1 && !strstr(err, ".ini") && !strstr(err, "/")) abort();
    return 0;
}
