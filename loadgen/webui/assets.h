/*
 * webui_assets: the web UI's files, compiled into aiload by loadgen/webui/web/embed.py
 * (rule in loadgen/webui/web/web.mk). Read-only data with static storage; every data
 * array is followed by a NUL that len does not count.
 */
#ifndef LOADGEN_WEBUI_ASSETS_H
#define LOADGEN_WEBUI_ASSETS_H

#include <stddef.h>

typedef struct webui_asset {
    const char *path; /* URL path, e.g. "/app.js" ("/" is the page) */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} webui_asset;

extern const webui_asset webui_assets[];
extern const size_t webui_nassets;

/* The asset served at path[0..len) (query excluded), or NULL. */
const webui_asset *webui_asset_find(const char *path, size_t len);

#endif
