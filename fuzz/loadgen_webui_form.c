/* libFuzzer: the web UI's handling of untrusted text: form decoding (POST /swarm
 * bodies, query strings), run-time parsing, JSON/HTML escaping of names, and
 * the Authorization header of --web-auth. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen/webui/webui.h"
#include "loadgen/webui/auth.h"
#include "loadgen/webui/http.h"
#include "loadgen/webui/render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy with no terminator: an over-read hits ASan at once. */
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    memcpy(s, data, size);
    static const char *const keys[] = {"user_count", "spawn_rate", "host", "run_time", ""};
    char out[256];
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int n = webui_form_get(s, size, keys[i], out, sizeof(out));
        if (n >= 0 && (size_t)n != strlen(out)) abort(); /* NUL-free, length exact */
    }
    webui_auth a;
    char err[128];
    if (webui_auth_init(&a, "user:pass", err, sizeof(err))) abort();
    int ok = webui_auth_check(&a, s, size);
    /* only "Basic dXNlcjpwYXNz" with blanks around passes */
    if (ok && (size < 18 || !memmem(s, size, "dXNlcjpwYXNz", 12))) abort();
    unsigned char dec[64];
    int n = webui_base64_decode(s, size, dec, sizeof(dec));
    if (n > (int)sizeof(dec) || (n >= 0 && (size_t)n * 4 > size * 3)) abort();
    free(s);
    char *z = malloc(size + 1);
    if (!z) return 0;
    memcpy(z, data, size);
    z[size] = '\0';
    double secs;
    if (webui_parse_run_time(z, &secs) == 0 && !(secs >= 0)) abort();
    buf b = BUF_INIT;
    buf_json_cstr(&b, z);
    webui_html_escape(&b, z);
    buf_free(&b);
    free(z);
    return 0;
}
