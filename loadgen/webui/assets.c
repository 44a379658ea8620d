/* Lookup in the generated asset table (loadgen/webui/web/embed.py). */
#include "loadgen/webui/assets.h"

#include <string.h>

const webui_asset *webui_asset_find(const char *path, size_t len)
{
    for (size_t i = 0; i < webui_nassets; i++) {
        const char *p = webui_assets[i].path;
        if (strlen(p) == len && !memcmp(p, path, len)) return &webui_assets[i];
    }
    return NULL;
}
