/*
 * mimeframe.h - the lines of a message as it streams through the MIME
 * re-encoder, and the boundary delimiter lines among them (RFC 2046
 * 5.1.1).
 *
 * Only CRLF ends a line; a CR or LF elsewhere is content, as in line.c,
 * but over chunks of any size.  While a multipart is open, a line that
 * starts with '-' is gathered (up to MIME_HEAD_MAX octets) until it is
 * known to be a delimiter of an open multipart, or content.  The frame
 * keeps the stack of open multiparts; what an entity is, is the
 * caller's business (mime.c), told through the callbacks.
 */
#ifndef MIMEFRAME_H
#define MIMEFRAME_H

#include <stdbool.h>
#include <stddef.h>

#include "mime.h"
#include "mimefield.h"

/* One open multipart. */
struct mimeframe_level {
	size_t		blen;
	char		b[MIMEFIELD_BOUNDARY_MAX];
	bool		digest;
	unsigned int	depth;		/* of its parts */
};

struct mimeframe_ops {
	/* Content of the current line, in pieces. */
	void	(*data)(void *arg, const char *p, size_t n);
	/* The gathered start of a line is content after all: the callee
	 * may change <head> before it passes it on as data.  <whole>: the
	 * line ends there; <near>: it starts like a delimiter of an open
	 * multipart without being one. */
	void	(*head)(void *arg, char *head, size_t len, bool whole,
		    bool near);
	/* The CRLF that ends the current line. */
	void	(*eol)(void *arg);
	/* A delimiter of level <k> (<line> without its CRLF); <close>: the
	 * multipart's last.  The levels inside <k> are closed already,
	 * and with <close>, <k> too: mimeframe_level() still reads it. */
	void	(*delim)(void *arg, size_t k, bool close, const char *line,
		    size_t len);
	void	*arg;
};

struct mimeframe {
	struct mimeframe_ops	ops;
	bool			cr;		/* a CR ended the last chunk */
	bool			bol;		/* nothing of this line yet */
	bool			headmode;	/* gathering a line's start */
	size_t			headlen;
	char			head[MIME_HEAD_MAX];
	size_t			nlevel;
	struct mimeframe_level	level[MIME_DEPTH_MAX];
};

/* Starts a message, with no multipart open. */
void	mimeframe_init(struct mimeframe *, const struct mimeframe_ops *ops);

/* Opens a multipart: its delimiters are looked for from the next line.
 * Returns -1 when MIME_DEPTH_MAX are open already. */
int	mimeframe_push(struct mimeframe *, const char *boundary, size_t blen,
	    bool digest, unsigned int depth);

/* The multipart of level <k> (0 the outermost), open or just closed. */
const struct mimeframe_level *mimeframe_level(const struct mimeframe *,
	    size_t k);

/* Frames a chunk of the message. */
void	mimeframe_feed(struct mimeframe *, const char *p, size_t n);

/* The end of the message: a last line without CRLF is ended. */
void	mimeframe_end(struct mimeframe *);

#endif /* MIMEFRAME_H */
