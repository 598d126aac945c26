/*
 * mimeign.h - the preamble and epilogue of a multipart (RFC 2046
 * 5.1.1): text readers ignore, so it is made conformant the simple way
 * (mime.c counts what changed, mime_stats).  Lines over 998 octets are
 * cut with CRLF SP (no piece can be a delimiter or a lone dot); a CR,
 * LF or NUL becomes a space.  Output through a callback.
 */
#ifndef MIMEIGN_H
#define MIMEIGN_H

#include <stdbool.h>
#include <stddef.h>

struct mimeign {
	size_t	 col;			/* output column */
	bool	 alt;			/* this line was changed */
	void	(*cb)(void *arg, const char *p, size_t n);
	void	*arg;
};

/* Starts a preamble or an epilogue, at the start of a line. */
void	mimeign_start(struct mimeign *,
	    void (*cb)(void *, const char *, size_t), void *arg);

/* Octets of the current line. */
void	mimeign_data(struct mimeign *, const char *p, size_t n);

/* Marks the current line as changed (by the caller). */
void	mimeign_alter(struct mimeign *);

/* Ends the line with CRLF.  Returns true when it was changed. */
bool	mimeign_eol(struct mimeign *);

#endif /* MIMEIGN_H */
