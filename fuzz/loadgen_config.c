/* libFuzzer: aiload's config-file parser (locust.conf, --config; Locust's
 * configargparse format) and the merge of a parsed file into the command
 * line. Every item must have a NUL-free key and values; a file that parses
 * must parse again from the same bytes to the same items. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/cli_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy with no terminator: an over-read hits ASan at once. */
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    memcpy(s, data, size);
    cli_conf c, again;
    char err[512];
    if (cli_conf_parse(s, size, "f.conf", &c, err, sizeof(err))) {
        if (strncmp(err, "f.conf:", 7) && strncmp(err, "f.conf: larger", 14)) abort();
        free(s);
        return 0;
    }
    if (cli_conf_parse(s, size, "f.conf", &again, err, sizeof(err)) || again.n != c.n) abort();
    for (size_t i = 0; i < c.n; i++) {
        const cli_conf_item *it = &c.items[i];
        if (!it->key[0] || strcmp(it->key, again.items[i].key) || it->line < 1) abort();
        if (!it->is_list && it->nvals != 1) abort();
        for (size_t k = 0; k < it->nvals; k++)
            if (strcmp(it->vals[k], again.items[i].vals[k])) abort();
    }
    cli_conf_free(&again);
    cli_conf_free(&c);
    free(s);
    return 0;
}
