/*
 * sasl.h - the client side of AUTH PLAIN and AUTH LOGIN (RFC 4616,
 * draft-murchison-sasl-login), as pure encoders.
 *
 * Results hold credentials: callers wipe them with sasl_free() as soon
 * as they are sent, and never log them.
 */
#ifndef SASL_H
#define SASL_H

#include <stddef.h>

enum sasl_mech {
	SASL_NONE,
	SASL_PLAIN,
	SASL_LOGIN,
};

/* Picks the mechanism from the argument of an EHLO "AUTH" keyword line
 * ("LOGIN PLAIN XOAUTH2"): PLAIN when offered, else LOGIN, else
 * SASL_NONE. */
enum sasl_mech	 sasl_choose(const char *mechs);

/* base64("\0user\0pass") (RFC 4616 with an empty authzid),
 * NUL-terminated.  Caller owns the result (sasl_free()).  NULL only if
 * user and pass together exceed 2 KiB. */
char		*sasl_plain(const char *user, const char *pass);

/* base64 of <s>, for the two AUTH LOGIN answers.  Caller frees with
 * sasl_free(). */
char		*sasl_base64(const char *s);

/* Decodes a base64 server challenge (AUTH LOGIN's "334 VXNlcm5hbWU6")
 * into <out>.  Returns the length, or -1 on bad input or no room. */
int		 sasl_unbase64(const char *in, char *out, size_t outsz);

/* Wipes and frees. NULL is a no-op. */
void		 sasl_free(char *);

/* Reads the password: the first line of <path>, without its line end.
 * Refuses (returns NULL, reason in <err>) a file that others may read
 * or write, that its group may write (0640 root:smartrelay is fine), that
 * is not a regular file, is empty, or is over 1 KiB.  Caller frees with
 * sasl_free(). */
char		*sasl_read_password(const char *path, char *err, size_t errsz);

#endif /* SASL_H */
