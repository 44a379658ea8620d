/*
 * ini: a line-oriented ini reader that reports every key with its section and
 * line number, so a caller can name "file:line" in its errors.
 *
 * Syntax: "[section]" lines, "key = value" lines (spaces around key and value
 * trimmed; the value may be empty and may contain '='), blank lines, and
 * comment lines starting with '#' or ';'. Anything else is an error. A UTF-8
 * BOM and CRLF line endings are accepted.
 *
 * The reader owns nothing it hands out: the strings passed to the callback
 * are NUL-terminated and valid only during the call.
 */
#ifndef INI_H
#define INI_H

#include <stddef.h>

/* Return 0 to go on; anything else stops the reader, which returns it. */
typedef int (*ini_cb)(void *ud, const char *section, const char *key, const char *value, int line);

/* Parses text[0..len). name is used in messages. Returns 0, the callback's
 * non-zero value, or -1 with "name:line: reason" in err. */
int ini_parse_string(const char *text, size_t len, const char *name, ini_cb cb, void *ud, char *err,
                     size_t errlen);
/* Reads path and parses it; -1 with a message in err if it cannot be read. */
int ini_parse_file(const char *path, ini_cb cb, void *ud, char *err, size_t errlen);

#endif
