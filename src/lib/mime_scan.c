/*
 * mime_scan.c - the quick check (see mime_scan.h).
 */
#include "config.h"

#include "mime_scan.h"

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
	for (; i < n && s->eightbit == MIME_8BIT_NONE; i++)
		if ((unsigned char)p[i] >= 0x80)
			s->eightbit = MIME_8BIT_BODY;
}

void
mime_scan_feed(struct mime_scan *s, const char *p, size_t n)
{
	size_t	i;

	mime_scan_8bit_feed(s, p, n);
	for (i = 0; i < n && !s->dirty; i++) {
		if (s->cr) {
			s->cr = false;
			if (p[i] == '\n') {
				s->col = 0;
				continue;
			}
			s->dirty = true;	/* a bare CR */
		}
		if (p[i] == '\r')
			s->cr = true;
		else if (p[i] == '\n' || p[i] == '\0' ||
		    ++s->col > MIME_LINE_MAX)
			s->dirty = true;
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
