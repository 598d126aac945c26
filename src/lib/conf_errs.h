/*
 * conf_errs.h - the error messages of one configuration load.
 *
 * Each error is one line, "file:line: message" (or "file: message" when
 * no line applies), appended to the caller's buffer, newline-separated
 * with no final newline, so that a single error can be logged as it is.
 * Messages that do not fit are counted but cut or dropped.
 */
#ifndef CONF_ERRS_H
#define CONF_ERRS_H

#include <stdarg.h>
#include <stddef.h>

#define CONF_ERR_MAX		512	/* octets of one message */

struct conf_errs {
	const char	*path;		/* the file, borrowed */
	char		*buf;		/* the caller's, always NUL-ended */
	size_t		 bufsz;
	size_t		 len;
	int		 n;		/* errors, written or not */
};

/* Starts with an empty <buf> (which may be NULL when <bufsz> is 0). */
void	conf_errs_init(struct conf_errs *, const char *path, char *buf,
	    size_t bufsz);

/* One error at <line> of the file (0: none). */
void	conf_errs_add(struct conf_errs *, int line, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	conf_errs_addv(struct conf_errs *, int line, const char *fmt,
	    va_list ap) __attribute__((format(printf, 3, 0)));

/* Lines another file's reader wrote, "file:line: message" already. */
void	conf_errs_add_lines(struct conf_errs *, const char *text);

#endif /* CONF_ERRS_H */
