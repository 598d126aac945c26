/*
 * aliases.h - an aliases(5) file as a table: local name -> addresses.
 *
 * Lines "name: target, target", continued on lines that start with a
 * blank; '#' starts a comment line.  A target is a mail address or
 * another local name.  A relay delivers nothing locally, so ":include:",
 * "|command" and "/file" targets are refused at load with the file and
 * line, never skipped.  Parsing only: what a name finally becomes (and
 * nesting, loops) is route.h's business.
 */
#ifndef ALIASES_H
#define ALIASES_H

#include <stddef.h>

#define ALIASES_FILE_MAX	(1024 * 1024)	/* octets of the file */

struct aliases;			/* the entries of one file */

/* Parses the <len> octets at <text> (need not be NUL-terminated) read
 * from <path> (used in messages only).  Names are dot-atoms of at most
 * 64 octets (RFC 5321 local parts), compared without regard to ASCII
 * case; a target is a mailbox (local@domain, smtp_mailbox_is_valid())
 * or a bare local part, optionally in angle brackets.  Refuses, with one
 * "path:line: reason" line per problem (at most 10) in <err>: a missing
 * ':', a bad or duplicate name, an entry without targets, a target that
 * is no address, and ":include:", pipe and file targets.  A CR before an
 * LF is ignored; a file without entries is valid.  Caller owns the
 * result (aliases_free()). */
struct aliases	*aliases_parse(const char *text, size_t len, const char *path,
		    char *err, size_t errsz);

/* Reads <path> (a regular file of at most ALIASES_FILE_MAX octets) and
 * parses it.  Returns NULL with the reason(s) in <err>. */
struct aliases	*aliases_load(const char *path, char *err, size_t errsz);

/* NULL is a no-op. */
void		 aliases_free(struct aliases *);

/* Number of names. */
size_t		 aliases_count(const struct aliases *);

/* The targets of <name> (any case), borrowed from <a>, with their count
 * in *n and the entry's first line in *line (either may be NULL); NULL
 * when <name> is not in the table or <a> is NULL. */
const char *const *aliases_get(const struct aliases *a, const char *name,
		    size_t *n, int *line);

/* The name of entry <i> (0 <= i < aliases_count()), lower case,
 * borrowed; for walking the table in name order. */
const char	*aliases_name(const struct aliases *, size_t i);

#endif /* ALIASES_H */
