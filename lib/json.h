/*
 * json: a strict, bounded JSON (RFC 8259) parser into a flat token array.
 *
 * The whole text is validated in one pass: no trailing commas, no leading
 * zeros, no NaN/Infinity, no control characters or invalid UTF-8 in strings,
 * no bytes after the value except whitespace. Limits on nesting depth and on
 * the token count bound the memory a hostile document can make us allocate:
 * at most max_tokens * sizeof(json_tok) bytes, checked before growing.
 *
 * Tokens are in document order. A container's children follow it directly;
 * tok.next is the index just past its subtree, so siblings are walked in O(1)
 * each and the leaves of a nested array (a tensor's data) are simply the
 * non-container tokens in (i, tok[i].next). An object's children alternate
 * key (a string token), value.
 *
 * Ownership: json_doc owns its token array (json_doc_free). Tokens point into
 * the caller's text by offset; the text must outlive any read of the doc.
 */
#ifndef JSON_H
#define JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum json_type {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING, /* start/len cover the raw text between the quotes */
    JSON_ARRAY,
    JSON_OBJECT,
} json_type;

typedef struct json_tok {
    uint32_t type;  /* json_type */
    uint32_t start; /* byte offset of the value (strings: after the quote) */
    uint32_t len;   /* bytes of the value (strings: raw, escapes unresolved) */
    uint32_t count; /* arrays: elements; objects: members; else 0 */
    uint32_t next;  /* index of the first token after this subtree */
    uint32_t flags; /* JSON_TOK_* */
} json_tok;

enum {
    JSON_TOK_ESCAPED = 1u << 0,   /* string contains a backslash escape */
    JSON_TOK_INTEGER = 1u << 1,   /* number has no fraction and no exponent */
    JSON_TOK_NONFINITE = 1u << 2, /* number is NaN, Infinity or -Infinity (allow_nonfinite) */
};

typedef struct json_limits {
    uint32_t max_depth;  /* containers nested deeper fail; 0 = 64 */
    uint32_t max_tokens; /* 0 = 1 << 24 */
    /* 1: also accept the bare literals NaN, Infinity and -Infinity (what
     * Python's json module and JavaScript's String(x) write) as numbers
     * flagged JSON_TOK_NONFINITE; strict JSON refuses them. */
    int allow_nonfinite;
} json_limits;

typedef struct json_doc {
    const char *src;
    size_t src_len;
    json_tok *tok;
    uint32_t n;
    uint32_t cap;
} json_doc;

/*
 * Parses src[0..len). Returns 0, -EINVAL (syntax: err says what and at which
 * byte), -E2BIG (a limit was hit) or -ENOMEM. On failure the doc holds no
 * memory. err may be NULL.
 */
int json_parse(json_doc *doc, const char *src, size_t len, const json_limits *lim, char *err,
               size_t errlen);
void json_doc_free(json_doc *doc);

/* Index of the value under key in the object at obj, or -1. */
int json_obj_get(const json_doc *doc, int obj, const char *key);
/* True when the string token at i equals s after unescaping. */
bool json_str_eq(const json_doc *doc, int i, const char *s);
/*
 * Copies the unescaped string at i into out (NUL-terminated). Returns its
 * length, or -E2BIG if it does not fit in cap - 1 bytes, or -EINVAL when i is
 * not a string or contains a NUL character.
 */
int json_str_copy(const json_doc *doc, int i, char *out, size_t cap);
/* Numbers: 0, or -EINVAL (not a number), -ERANGE (does not fit). */
int json_num_f64(const json_doc *doc, int i, double *out);
/*
 * To float: the exact decimal value rounded once to 64 bits (x87 extended)
 * and then to float, which is the correctly rounded float unless the decimal
 * lies within 2^-64 of a halfway point between two floats (no float printer
 * writes such numbers). Several times faster than strtof for tensor data.
 * -ERANGE when the value overflows float.
 */
int json_num_f32(const json_doc *doc, int i, float *out);
int json_num_i64(const json_doc *doc, int i, int64_t *out);
int json_num_u64(const json_doc *doc, int i, uint64_t *out);

/*
 * Writes v so that parsing it as float gives v back exactly. Returns the
 * length (out needs 16 bytes). NaN and infinities become null (JSON has no
 * spelling for them).
 */
int json_fmt_f32(char *out, float v);
int json_fmt_f64(char *out, double v); /* out needs 32 bytes */

#endif
