/*
 * line.h - take one bounded line out of an evbuffer.
 *
 * The only code that looks for end-of-line.  It never searches further
 * than the cap, so a client sending megabytes without a newline costs a
 * bounded amount of memory and CPU: the over-long line is drained as it
 * arrives and reported once, when its end is seen (line_get(), for
 * commands), or handed over in pieces of at most the cap as it arrives
 * (line_get_piece(), for message data, where a long line is content:
 * issue 13).
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

/* Like line_get(), but a line that does not fit is not dropped: it is
 * handed over in pieces, each with <*more> set, of r->max octets, or one
 * fewer (r->max >= 2) when the last would be a CR: that CR stays for the
 * next piece, since with the octet after it it may be the terminator.
 * The line's end comes as an ordinary line (<*more> false); the caller
 * tells it from a line of its own by the piece before it.  Returns
 * LINE_AGAIN or LINE_OK, never LINE_TOOLONG.  Do not mix with
 * line_get() on one reader. */
enum line_rc	line_get_piece(struct line_reader *r, struct evbuffer *buf,
		    char *out, size_t *len, bool *crlf, bool *more);

#endif /* LINE_H */
