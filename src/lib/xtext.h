/*
 * xtext.h - RFC 3461 section 4 xtext, the one codec: the envelope
 * files and the maildrop files keep addresses in it, so that any byte
 * (space, '=', 8-bit) survives a line-based format.  Pure.
 */
#ifndef XTEXT_H
#define XTEXT_H

#include <stddef.h>

/* Writes <s> as xtext at <dst>, which has room for 3 * strlen(s) + 1
 * octets: '!' to '~' stay, except '+', '=' (RFC 3461) and '<', '>'
 * (so that an encoded address never looks like a bracketed one);
 * everything else becomes "+XX".  NUL-terminates; returns a pointer to
 * the NUL. */
char	*xtext_put(char *dst, const char *s);

/* Decodes the <len> octets of xtext at <s> into a new string (caller
 * frees).  NULL when malformed: an octet outside '!' to '~', a raw '=',
 * a '+' not followed by two hex digits, or "+00" (it would cut the
 * string short).  An empty input gives "". */
char	*xtext_decode(const char *s, size_t len);

#endif /* XTEXT_H */
