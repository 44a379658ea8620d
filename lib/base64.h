/*
 * base64: decoding RFC 4648 base64, as clients put images into JSON
 * ({"image": "<base64>"}, KServe v2 BYTES tensors).
 *
 * Lenient where clients differ, strict where it matters: both alphabets
 * (standard "+/" and URL-safe "-_"), padding optional, ASCII whitespace
 * ignored (MIME line breaks); but any other character, a lone trailing
 * character (a length that cannot be base64) or data after padding is an
 * error, so a truncated or mangled upload is never decoded into garbage
 * silently. Non-zero unused bits in the last character are accepted (many
 * encoders leave them).
 */
#ifndef LIB_BASE64_H
#define LIB_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The most bytes n characters can decode to. */
size_t base64_decoded_max(size_t n);

/*
 * Decodes in[0..n) into out (at least base64_decoded_max(n) bytes). Returns
 * the decoded length, or -EINVAL with *bad_at (if not NULL) set to the offset
 * of the first character that cannot be there.
 */
ssize_t base64_decode(const char *in, size_t n, uint8_t *out, size_t *bad_at);

#endif
