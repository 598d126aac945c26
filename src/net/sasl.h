/*
 * sasl.h - the client side of AUTH PLAIN, AUTH LOGIN (RFC 4616,
 * draft-murchison-sasl-login) and XOAUTH2, as pure encoders.
 *
 * Results hold credentials: callers wipe them with str_wipe_free() as soon
 * as they are sent, and never log them.
 */
#ifndef SASL_H
#define SASL_H

#include <stdbool.h>
#include <stddef.h>

enum sasl_mech {
	SASL_NONE,
	SASL_PLAIN,
	SASL_LOGIN,
	SASL_XOAUTH2,		/* only when configured: never chosen */
};

/* Picks the mechanism from the argument of an EHLO "AUTH" keyword line
 * ("LOGIN PLAIN XOAUTH2"): PLAIN when offered, else LOGIN, else
 * SASL_NONE. */
enum sasl_mech	 sasl_choose(const char *mechs);

/* True when the AUTH keyword's argument <mechs> offers <mech> (the
 * configured one, for auth = "plain", "login" or "xoauth2"). */
bool		 sasl_offers(const char *mechs, enum sasl_mech mech);

/* base64("user=" user "\1auth=Bearer " token "\1\1"), the XOAUTH2
 * initial response (Google's SASL XOAUTH2 protocol), NUL-terminated.
 * NULL when either is empty, holds a byte outside printable ASCII, or
 * they exceed 8 KiB together.  Caller frees with str_wipe_free(). */
char		*sasl_xoauth2(const char *user, const char *token);

/* base64("\0user\0pass") (RFC 4616 with an empty authzid),
 * NUL-terminated.  Caller owns the result (str_wipe_free()).  NULL only if
 * user and pass together exceed 2 KiB. */
char		*sasl_plain(const char *user, const char *pass);

/* base64 of <s>, for the two AUTH LOGIN answers.  Caller frees with
 * str_wipe_free(). */
char		*sasl_base64(const char *s);

/* Decodes a base64 server challenge (AUTH LOGIN's "334 VXNlcm5hbWU6")
 * into <out>.  Returns the length, or -1 on bad input or no room. */
int		 sasl_unbase64(const char *in, char *out, size_t outsz);

/* The checks every file holding a secret must pass, on its fstat():
 * a regular file, not readable or writable by others, not writable by
 * its group.  Returns 0, or -1 with the reason (and the chmod that fixes
 * it) in <err>. */
struct stat;
int		 sasl_secret_stat_check(const char *path, const struct stat *st,
		    char *err, size_t errsz);

/* Reads the password: the first line of <path>, without its line end.
 * Refuses (returns NULL, reason in <err>) a file that others may read
 * or write, that its group may write (0640 root:smartrelay is fine), that
 * is not a regular file, is empty, or is over 1 KiB.  Caller frees with
 * str_wipe_free(). */
char		*sasl_read_password(const char *path, char *err, size_t errsz);

#endif /* SASL_H */
