/*
 * ehlo.h - what a server's EHLO reply offers (RFC 5321 4.1.1.1), as the
 * relay client reads it: the extensions it uses, and the AUTH mechanism
 * list for relay_auth.c.  Pure: fed the reply's lines one at a time.
 */
#ifndef EHLO_H
#define EHLO_H

#include <stdbool.h>
#include <stdint.h>

struct ehlo_ext {
	bool		starttls;	/* RFC 3207 */
	bool		pipelining;	/* RFC 2920 */
	bool		eightbitmime;	/* RFC 6152 */
	bool		smtputf8;	/* RFC 6531 */
	uint64_t	size;		/* RFC 1870 SIZE, or 0 */
};

/* Forgets everything: nothing offered. */
void		 ehlo_ext_reset(struct ehlo_ext *);

/* Reads one keyword line <kw> (a line of the reply after its first,
 * without "250-").  Returns the mechanism list when it is the AUTH line
 * (pointing into <kw>), else NULL. */
const char	*ehlo_ext_line(struct ehlo_ext *, const char *kw);

#endif /* EHLO_H */
