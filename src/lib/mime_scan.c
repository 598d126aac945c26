/*
 * mime_scan.c - the quick check (see mime_scan.h).
 */
#include "config.h"

#include "mime_scan.h"

#include <stdint.h>
#include <string.h>

#include "mime.h"

/*
 * The quick check.
 */

void
mime_scan_init(struct mime_scan *s)
{
	memset(s, 0, sizeof(*s));
}

/* The index of the first octet over 0x7f in <p>, or <n>: eight octets
 * at a time. */
static size_t
mime_scan_high(const char *p, size_t n)
{
	uint64_t	w;
	size_t		i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, p + i, 8);
		if (w & UINT64_C(0x8080808080808080))
			break;
	}
	for (; i < n; i++)
		if ((unsigned char)p[i] >= 0x80)
			break;
	return i;
}

/* The 8-bit part of the quick check: the header section octet by octet
 * (to find its end), the body only until the first 8-bit octet. */
static void
mime_scan_8bit_feed(struct mime_scan *s, const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n && !s->in_body &&
	    s->eightbit != MIME_8BIT_HEADER; i++) {
		if ((unsigned char)p[i] >= 0x80)
			s->eightbit = MIME_8BIT_HEADER;
		if (p[i] == '\n') {
			s->in_body = s->hcol == 0;
			s->hcol = 0;
		} else if (p[i] != '\r')
			s->hcol++;
	}
	if (i < n && s->eightbit == MIME_8BIT_NONE &&
	    mime_scan_high(p + i, n - i) < n - i)
		s->eightbit = MIME_8BIT_BODY;
}

/*
 * Line by line with memchr(): a line is clean when its only CR is the
 * one before its LF, it holds no NUL and at most MIME_LINE_MAX other
 * octets.  A CR at the end of <p> waits for the next call (s->cr).
 */
void
mime_scan_feed(struct mime_scan *s, const char *p, size_t n)
{
	const char	*nl, *cr;
	size_t		 i = 0, seg, body;

	mime_scan_8bit_feed(s, p, n);
	while (i < n && !s->dirty) {
		if (s->cr) {
			s->cr = false;
			if (p[i] != '\n') {
				s->dirty = true;	/* a bare CR */
				break;
			}
			s->col = 0;
			i++;
			continue;
		}
		nl = memchr(p + i, '\n', n - i);
		seg = (nl != NULL ? (size_t)(nl - p) : n) - i;
		cr = memchr(p + i, '\r', seg);
		body = cr != NULL ? (size_t)(cr - (p + i)) : seg;
		if ((cr != NULL && body != seg - 1) ||	/* CR inside */
		    memchr(p + i, '\0', body) != NULL ||
		    (s->col += body) > MIME_LINE_MAX ||
		    (nl != NULL && cr == NULL)) {	/* a bare LF */
			s->dirty = true;
			break;
		}
		if (cr != NULL && nl == NULL) {		/* CR ends <p> */
			s->cr = true;
			break;
		}
		if (nl == NULL)
			break;
		s->col = 0;
		i += seg + 1;
	}
}

bool
mime_scan_is_clean(const struct mime_scan *s)
{
	return !s->dirty && !s->cr;
}

enum mime_8bit
mime_scan_8bit(const struct mime_scan *s)
{
	return s->eightbit;
}
