/*
 * mime_scan.h - the quick check before the MIME re-encoder (mime.h):
 * the spool runs it over every message it receives (the envelope
 * records the answer), the relay over what it sends, as a guard.
 *
 * Pure code, no I/O, O(1) state.
 */
#ifndef MIME_SCAN_H
#define MIME_SCAN_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The quick check: does the message need mime_enc at all, and where
 * does it hold 8-bit octets?  Feed every octet in order, in chunks of
 * any size, then ask.  O(1) state.
 */
enum mime_8bit {
	MIME_8BIT_NONE,		/* every octet is under 0x80 */
	MIME_8BIT_BODY,		/* octets over 0x7f in the body only */
	MIME_8BIT_HEADER,	/* ... in the header section (up to the
				 * first empty line) */
};

struct mime_scan {
	size_t		col;		/* octets of the current line */
	bool		cr;		/* the last octet was a CR */
	bool		dirty;		/* found something to re-encode */
	bool		in_body;	/* the header section has ended */
	size_t		hcol;		/* header line octets but CRs */
	enum mime_8bit	eightbit;
};

void	mime_scan_init(struct mime_scan *s);
void	mime_scan_feed(struct mime_scan *s, const char *p, size_t n);

/* True when no line is over 998 octets and no CR, LF or NUL stands
 * outside a CRLF: the message can be relayed byte for byte. */
bool	mime_scan_is_clean(const struct mime_scan *s);

/* Where octets over 0x7f were found (RFC 6152 8-bit content; UTF-8 in
 * header fields is RFC 6532's). */
enum mime_8bit mime_scan_8bit(const struct mime_scan *s);

#endif /* MIME_SCAN_H */
