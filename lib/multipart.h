/*
 * multipart: multipart/form-data bodies (RFC 7578 over RFC 2046), what
 * `curl -F name=@file` and Python requests' `files=` send.
 *
 * Zero-copy: parts point into the body. Strict framing (CRLF line ends,
 * the boundary only at a line start, a closing "--boundary--"), so a
 * truncated upload is an error, never a shorter file. The preamble before
 * the first boundary and the epilogue after the last are ignored, as the RFC
 * says. Header names are case-insensitive; only Content-Disposition (name,
 * filename) and Content-Type are interpreted.
 */
#ifndef LIB_MULTIPART_H
#define LIB_MULTIPART_H

#include <stddef.h>

#define MULTIPART_BOUNDARY_MAX 70 /* RFC 2046 */

typedef struct multipart_part {
    const char *name; /* the form field (Content-Disposition name=), raw; NULL if absent */
    size_t name_len;
    const char *filename; /* filename=, raw (quotes removed, escapes kept); NULL if absent */
    size_t filename_len;
    const char *ctype; /* the part's Content-Type value; NULL if absent */
    size_t ctype_len;
    const char *data; /* the content */
    size_t len;
} multipart_part;

/*
 * Finds the boundary parameter in a Content-Type value ("multipart/form-data;
 * boundary=XYZ", quoted or not). 0, or -EINVAL when the type is not
 * multipart/form-data or the boundary is missing, empty or too long.
 */
int multipart_boundary(const char *ctype, size_t len, const char **boundary, size_t *blen);

/*
 * Splits body into parts (at most max). Returns the number of parts, or
 * -EINVAL (err says what is wrong and where) or -E2BIG (more than max parts).
 */
int multipart_parse(const char *body, size_t len, const char *boundary, size_t blen,
                    multipart_part *parts, int max, char *err, size_t errlen);

#endif
