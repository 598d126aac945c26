/*
 * qword.h - RFC 2047 encoded words: the one Q encoder (From: display
 * names, repaired header fields, the injector's -F name) and the one
 * test for an encoded word.  Pure code, output into a struct buf.
 */
#ifndef QWORD_H
#define QWORD_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

#define QWORD_MAX	75	/* RFC 2047 2: octets of one encoded word */

#define QWORD_LEAD	0x1	/* a space encoded at the start */
#define QWORD_TRAIL	0x2	/* a space encoded at the end */

/*
 * Appends <p>/<n> as Q encoded words (RFC 2047 4.2) of at most
 * QWORD_MAX octets, separated by a space and split between characters.
 * Only letters, digits and "!*+-/" stand for themselves (5 (3): safe in
 * a phrase too); a space is "_".  The charset is UTF-8 when all of <p>
 * is, else <other> (such as "ISO-8859-1" or "unknown-8bit").  With
 * QWORD_LEAD / QWORD_TRAIL a space goes inside the encoding at the
 * start / end: a plain space next to another encoded word would vanish
 * (6.2).
 */
void	qword_encode(struct buf *out, const unsigned char *p, size_t n,
	    const char *other, unsigned int flags);

/* True when <p>/<n> is one encoded word: "=?" charset "?" B or Q "?"
 * text "?=", printable ASCII without spaces, text not empty and
 * without '?' (RFC 2047 2). */
bool	qword_is_encoded(const char *p, size_t n);

#endif /* QWORD_H */
