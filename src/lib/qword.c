/*
 * qword.c - RFC 2047 Q encoded words (see qword.h).
 */
#include "config.h"

#include "qword.h"

#include <string.h>

#include "buf.h"
#include "util.h"

/* RFC 2047 5 (3): octets that stand for themselves in any Q word. */
static bool
qword_is_safe(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!*+-/", c) != NULL);
}

static size_t
qword_width(const unsigned char *p, size_t n)
{
	size_t	i, w = 0;

	for (i = 0; i < n; i++)
		w += qword_is_safe(p[i]) || p[i] == ' ' ? 1 : 3;
	return w;
}

static void
qword_put(struct buf *b, const unsigned char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (p[i] == ' ')
			buf_add(b, "_", 1);
		else if (qword_is_safe(p[i]))
			buf_add(b, p + i, 1);
		else
			buf_printf(b, "=%02X", p[i]);
	}
}

void
qword_encode(struct buf *b, const unsigned char *p, size_t n,
    const char *other, unsigned int flags)
{
	bool		 utf8 = str_is_utf8(p, n);
	const char	*cs = utf8 ? "UTF-8" : other;
	size_t		 room = QWORD_MAX - 7 - strlen(cs), used = 0, i, clen;
	size_t		 w;

	buf_printf(b, "=?%s?Q?", cs);
	if (flags & QWORD_LEAD) {
		buf_add(b, "_", 1);
		used = 1;
	}
	for (i = 0; i < n; i += clen) {
		clen = utf8 ? str_utf8_len(p + i, n - i) : 1;
		w = qword_width(p + i, clen);
		if (used + w > room) {
			buf_printf(b, "?= =?%s?Q?", cs);
			used = 0;
		}
		qword_put(b, p + i, clen);
		used += w;
	}
	if ((flags & QWORD_TRAIL) && used + 1 > room)
		buf_printf(b, "?= =?%s?Q?", cs);
	if (flags & QWORD_TRAIL)
		buf_add(b, "_", 1);
	buf_add(b, "?=", 2);
}

bool
qword_is_encoded(const char *p, size_t n)
{
	const char	*q, *e = p + n;
	size_t		 i;

	if (n < 8 || p[0] != '=' || p[1] != '?' || e[-2] != '?' ||
	    e[-1] != '=')
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f)
			return false;
	q = memchr(p + 2, '?', n - 2);
	if (q == p + 2 || q + 3 >= e - 2 || q[2] != '?' ||
	    strchr("BbQq", q[1]) == NULL)
		return false;
	return memchr(q + 3, '?', (size_t)(e - 2 - (q + 3))) == NULL;
}
