/*
 * conf_text.h - the text of a configuration file, made ready for
 * libconfuse: read whole, with its comments blanked out.
 */
#ifndef CONF_TEXT_H
#define CONF_TEXT_H

#include <stddef.h>

#include "conf_errs.h"

/*
 * Reads the file <e->path> into a NUL-terminated buffer the caller
 * frees, its length in *lenp.  Returns NULL after adding the reason to
 * <e>: it cannot be opened or read, it is a directory, it is larger
 * than 1 MiB (a wrong path: a log, a device), or it holds a NUL byte
 * (which would silently cut the text short inside libconfuse).
 */
char	*conf_text_read(struct conf_errs *e, size_t *lenp);

/*
 * Blanks out comments ("# ...", "// ..." and C-style) in <s>, keeping
 * newlines, so libconfuse never sees one: version 3.3 counts three
 * lines for every one-line comment and rejects comments inside lists.
 * Quoted strings are left alone, and "//" or "/" "*" start a comment
 * only at the start of a token, as in libconfuse's own scanner.
 * Returns -1 after adding an error to <e> on an unterminated C-style
 * comment, which would otherwise hide the rest of the file, or on a '{'
 * never closed, which libconfuse 3.3 accepts at the end of the file.
 */
int	 conf_text_strip_comments(struct conf_errs *e, char *s, size_t len);

#endif /* CONF_TEXT_H */
