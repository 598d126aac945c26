/*
 * users.h - the accounts LAN clients may AUTH with: a file of
 * "user:crypt-hash" lines, and the password checks.
 *
 * Passwords are checked with crypt_r(3) against hashes made by
 * "openssl passwd -6" or mkpasswd(1); the file never holds a password.
 * Nothing here logs, and every buffer that held a password is wiped.
 */
#ifndef USERS_H
#define USERS_H

#include <stdbool.h>
#include <stddef.h>

#define USERS_NAME_MAX		255	/* octets of a user name */
#define USERS_PASS_MAX		255	/* octets of a password */
#define USERS_FILE_MAX		(1024 * 1024)	/* octets of the file */

struct users;			/* the accounts of one file */

/* Parses the <len> octets at <text> (need not be NUL-terminated) read
 * from <path> (used in messages only).  One account per line,
 * "name:hash"; blank lines and lines starting with '#' are skipped, a
 * CR before the LF is ignored.  Refuses (NULL, "path:line: reason" in
 * <err>) an empty or over-long name, a name holding spaces or control
 * characters, a duplicate name, and a hash that crypt(3) does not know
 * or deems legacy (DES, MD5).  A file without any account is valid.
 * Caller owns the result (users_free()). */
struct users	*users_parse(const char *text, size_t len, const char *path,
		    char *err, size_t errsz);

/* Reads and parses <path>.  Refuses, as sasl_read_password() does, a
 * file that others may read or write, that its group may write, that
 * is a symbolic link or not a regular file, or that is over
 * USERS_FILE_MAX.  Returns NULL with the reason in <err>. */
struct users	*users_load(const char *path, char *err, size_t errsz);

/* NULL is a no-op. */
void		 users_free(struct users *);

/* Number of accounts. */
size_t		 users_count(const struct users *);

/* True when <name> is an account and <pass> its password.  Costs one
 * crypt_r() call whether or not the account exists (an unknown name is
 * checked against a stand-in hash of the same kind), so the time taken
 * does not tell which names exist.  Blocks for as long as the hash
 * takes (milliseconds for sha512-crypt and yescrypt). */
bool		 users_verify(const struct users *, const char *name,
		    const char *pass);

/* The two halves of users_verify(), for checking off the event loop
 * (authcheck.h): the hash to check <name>'s password against (a
 * stand-in of the same kind for an unknown name, *known then false;
 * borrowed from <u>), and whether <pass> matches <hash>, which costs
 * one crypt_r() call. */
const char	*users_lookup(const struct users *, const char *name,
		    bool *known);
bool		 users_hash_matches(const char *hash, const char *pass);

#endif /* USERS_H */
