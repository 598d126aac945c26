/*
 * line.h - take one bounded line out of an evbuffer.
 *
 * The only code that looks for end-of-line.  It never searches further
 * than the cap, so a client sending megabytes without a newline costs a
 * bounded amount of memory and CPU: the over-long line is drained as it
 * arrives and reported once, when its end is seen.
 */
#ifndef LINE_H
#define LINE_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum line_rc {
	LINE_AGAIN,		/* no complete line buffered yet */
	LINE_OK,		/* one line copied out */
	LINE_TOOLONG,		/* a line over the cap ended (and was dropped) */
};

struct line_reader {
	size_t	max;		/* cap including the terminator */
	bool	skipping;	/* inside an over-long line */
	bool	skip_cr;	/* the skipped bytes so far end with CR */
};

/* <max> counts the terminator: 512 allows 510 octets of command. */
void		line_reader_init(struct line_reader *, size_t max);

/* Takes the next line out of <buf>.  On LINE_OK the line without its
 * terminator is copied into <out> (which must hold r->max + 1 bytes),
 * NUL-terminated, its length stored in <*len>, and <*crlf> says whether
 * it ended in CRLF (false: a bare LF).  A CR before the LF belongs to
 * the terminator; any other CR stays in the line for the caller to
 * judge.  On LINE_TOOLONG only <*crlf> is set.  Input is drained
 * as it is consumed. */
enum line_rc	line_get(struct line_reader *r, struct evbuffer *buf,
		    char *out, size_t *len, bool *crlf);

#endif /* LINE_H */
