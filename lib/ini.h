/*
 * ini: a reader for uWSGI-style ini files that hands every key of the chosen
 * sections to a callback with the file and line it came from, so a caller can
 * name "file:line" in its errors.
 *
 * Syntax: "[section]" lines, "key = value" lines (spaces around key and value
 * trimmed; the value may be empty and may contain '='), blank lines, and
 * comment lines starting with '#' or ';'. A ';' or '#' that follows a space
 * or tab starts an inline comment ("processes = 4 ; one per core"); one
 * glued to the text is kept ("http = :80#x", "env = A=b;c"). Anything else is
 * an error. A UTF-8 BOM and CRLF line endings are accepted.
 *
 * Sections: only keys of the chosen sections are read (the rest of the file
 * is skipped unparsed but for its syntax). A spec is "path" or
 * "path:section"; with a section only that one is read, without one the
 * default list ("uwsgi|aiserve").
 *
 * Values are expanded as uWSGI does, in one pass (an expansion is never
 * expanded again):
 *   $(NAME)   the environment variable, empty when unset
 *   %(name)   the value of key `name` read earlier (in any file), or one
 *             defined by `set-placeholder = name=value`; an unknown name is
 *             an error
 *   %d %p %s %n %e %c   of the file being read: its directory (absolute,
 *             with a trailing '/'), absolute path, file name, file name
 *             without extension, extension, name of its directory
 *   %D %P %S %N %E %C   the same of the first (top) file
 *   %x / %X   the current / top spec as "file:section"
 *   %o / %O   the top file as given
 *   %h hostname, %k CPU count, %u uid, %U user name, %g gid, %G group name,
 *   %t unix time (s), %T (us), %% a '%'
 *   any other %c is kept as it is (as in uWSGI)
 * Includes: `ini = spec` and `include = spec` in a chosen section read that
 * file (relative paths from the including file's directory, else from the
 * current directory) at that point, at most 10 deep. set-placeholder (alias
 * set-ph), ini and include are consumed here, never handed to the callback.
 *
 * The reader owns nothing it hands out: the strings passed to the callback
 * are NUL-terminated and valid only during the call.
 */
#ifndef INI_H
#define INI_H

#include <stddef.h>

/* Called for every key with its (expanded) value; and with value NULL when a
 * later %(key) used the key as a placeholder (uWSGI's custom options:
 * `project = x` then `chdir = /srv/%(project)`), at the file and line of that
 * use. Return 0 to go on; anything else stops the reader, which returns it. */
typedef int (*ini_cb)(void *ud, const char *key, const char *value, const char *file, int line);

/* Reads spec ("path" or "path:section"); sections is the '|'-separated
 * default ("uwsgi|aiserve"). Returns 0, the callback's non-zero value, or -1
 * with "file:line: reason" (or "file: reason") in err. */
int ini_read(const char *spec, const char *sections, ini_cb cb, void *ud, char *err, size_t errlen);

/* Reads text[0..len) as if it were the file at path name (the %-variables
 * derive from it; includes resolve from its directory). */
int ini_read_string(const char *text, size_t len, const char *name, const char *sections, ini_cb cb,
                    void *ud, char *err, size_t errlen);

/* Splits a spec into its path and section: the whole spec when a file by that
 * name exists or no ':' follows the last '/', else at the last ':'. Writes the
 * section ("" when none) to section[seclen]; returns a malloc'd path or NULL. */
char *ini_split_spec(const char *spec, char *section, size_t seclen);

#endif
