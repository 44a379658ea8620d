#include "loadgen/webui/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int sha256(const void *data, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

int webui_auth_init(webui_auth *a, const char *user_pass, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    if (!user_pass) return 0;
    const char *colon = strchr(user_pass, ':');
    if (!colon || strchr(colon + 1, ':')) {
        snprintf(err, errlen, "--web-auth must be 'username:password' (one ':', as in Locust)");
        return -1;
    }
    if (sha256(user_pass, strlen(user_pass), a->digest)) {
        snprintf(err, errlen, "--web-auth: SHA-256 is not available");
        return -1;
    }
    a->on = 1;
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int webui_base64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    if (n % 4) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                pad++;
                v[k] = 0;
                continue;
            }
            if (pad || (v[k] = b64_value(c)) < 0) return -1; /* data after '=' */
        }
        unsigned long w = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 |
                          (unsigned long)v[2] << 6 | (unsigned long)v[3];
        size_t bytes = 3 - (size_t)pad;
        if (o + bytes > cap) return -1;
        out[o++] = (unsigned char)(w >> 16);
        if (bytes > 1) out[o++] = (unsigned char)(w >> 8);
        if (bytes > 2) out[o++] = (unsigned char)w;
    }
    return (int)o;
}

int webui_auth_check(const webui_auth *a, const char *value, size_t len)
{
    if (!a->on) return 1;
    if (!value) return 0;
    while (len && (*value == ' ' || *value == '\t')) value++, len--;
    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t')) len--;
    if (len < 6 || strncasecmp(value, "Basic", 5) || (value[5] != ' ' && value[5] != '\t'))
        return 0;
    value += 6, len -= 6;
    while (len && (*value == ' ' || *value == '\t')) value++, len--;
    unsigned char plain[1024], got[32];
    int n = webui_base64_decode(value, len, plain, sizeof(plain));
    if (n < 0 || sha256(plain, (size_t)n, got)) return 0;
    return CRYPTO_memcmp(got, a->digest, sizeof(got)) == 0;
}
