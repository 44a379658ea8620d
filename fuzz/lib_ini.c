/* libFuzzer target for lib/ini: any text parses or fails with a message,
 * never crashes, and every key handed to the callback is non-empty and
 * NUL-terminated within its line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ini.h"

static int on_key(void *ud, const char *section, const char *key, const char *value, int line)
{
    size_t *count = ud;
    if (!key[0] || line <= 0 || strlen(section) > 127) abort();
    (void)value;
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    size_t count = 0;
    int rc =
        ini_parse_string((const char *)data, size, "fuzz.ini", on_key, &count, err, sizeof(err));
    if (rc != 0 && rc != -1) abort();
    if (rc == -1 && !strstr(err, "fuzz.ini")) abort();
    return 0;
}
