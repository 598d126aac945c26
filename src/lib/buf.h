/*
 * buf.h - the one growable byte buffer of the pure layer.
 *
 * The daemon's I/O paths use libevent's evbuffer; lib/ (which the
 * injector links without libevent) builds its output texts here: failure
 * reports, envelope files, re-encoded header fields.  The buffer owns
 * <p> until buf_steal() hands it over or buf_free() drops it; <p> is
 * NUL-terminated whenever it is not NULL, so a text can be used as a
 * string while <len> still counts NULs inside it.
 */
#ifndef BUF_H
#define BUF_H

#include <stddef.h>

struct buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

#define BUF_INIT	{ NULL, 0, 0 }

/* Appends <n> octets of <p> (which may hold NULs). */
void	 buf_add(struct buf *, const void *p, size_t n);
/* Appends the string <s>. */
void	 buf_adds(struct buf *, const char *s);
/* Appends the formatted text. */
void	 buf_printf(struct buf *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Hands the contents over to the caller (free()), never NULL, and
 * leaves the buffer empty.  Stores the length in <lenp> unless NULL. */
char	*buf_steal(struct buf *, size_t *lenp);
/* Frees the contents and leaves the buffer empty. */
void	 buf_free(struct buf *);

#endif /* BUF_H */
