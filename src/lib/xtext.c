/*
 * xtext.c - RFC 3461 xtext encoding and decoding (xtext.h).
 */
#include "config.h"

#include "xtext.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

char *
xtext_put(char *dst, const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	unsigned char		 c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if (c < '!' || c > '~' || c == '+' || c == '=' || c == '<' ||
		    c == '>') {
			*dst++ = '+';
			*dst++ = hex[c >> 4];
			*dst++ = hex[c & 0x0f];
		} else
			*dst++ = (char)c;
	}
	*dst = '\0';
	return dst;
}

static int
xtext_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

char *
xtext_decode(const char *s, size_t len)
{
	char	*out = xmalloc(len + 1), *p = out;
	size_t	 i;
	int	 hi, lo;

	for (i = 0; i < len; i++) {
		if (s[i] != '+') {
			if (s[i] < '!' || s[i] > '~' || s[i] == '=')
				goto fail;
			*p++ = s[i];
			continue;
		}
		if (len - i < 3 ||
		    (hi = xtext_hexval((unsigned char)s[i + 1])) == -1 ||
		    (lo = xtext_hexval((unsigned char)s[i + 2])) == -1 ||
		    (hi | lo) == 0)
			goto fail;
		*p++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*p = '\0';
	return out;
fail:
	free(out);
	return NULL;
}
