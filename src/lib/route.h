/*
 * route.h - where mail to a recipient goes: the one place that decides
 * what is a local name and what becomes of it, for the SMTP server, the
 * maildrop pickup, failure reports and the injector alike.
 *
 * A relay has no local mailboxes.  An address is local when it has no
 * domain, or its domain is the configured domain, the host name or
 * "localhost" (ASCII case-insensitive).  A local name goes to its
 * aliases(5) targets, recursively, or else to the admin address; an
 * address that is not local goes out as it is.  Without an admin
 * address, a local name without alias is only qualified (the behaviour
 * before local names were routed).
 */
#ifndef ROUTE_H
#define ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#define ROUTE_DEPTH_MAX		10	/* nested aliases (sendmail's
					 * MaxAliasRecursion) */
#define ROUTE_FANOUT_MAX	1000	/* addresses one recipient becomes */

struct aliases;

/* The routing of one configuration (conf.h's conf->route).  Strings and
 * the table are borrowed from the configuration that holds them. */
struct route {
	const char		*domain;	/* appended to bare names */
	const char		*hostname;
	const char		*admin;		/* "" when there is none */
	const struct aliases	*aliases;	/* NULL when there is none */
};

/* What happened to one recipient. */
enum route_how {
	ROUTE_REMOTE,		/* not local: unchanged */
	ROUTE_ALIAS,		/* a name of the aliases file */
	ROUTE_ADMIN,		/* a local name without alias: the admin */
	ROUTE_KEPT,		/* ... and no admin: qualified only */
};

struct route_result {
	enum route_how	  how;
	char		**addrs;	/* owned; no duplicates, in order */
	size_t		  naddrs;
};

/* True when <addr> (a mailbox, or a bare local part) is local. */
bool		 route_is_local(const struct route *, const char *addr);

/* Copies <addr> into <out>, with "@" domain appended when it has no
 * '@'.  Returns 0, or -1 when the result does not fit in <outsz> or
 * in an SMTP path, or is not a valid mailbox. */
int		 route_qualify(const struct route *, const char *addr,
		    char *out, size_t outsz);

/* Routes recipient <addr> (a mailbox or a bare local part, as the
 * parsers accept it) into <res>, which the caller cleans up with
 * route_result_cleanup() whatever the result.  Returns 0 with at least
 * one address in res->addrs, every one a valid mailbox; -1 with the
 * reason in <err> when <addr> cannot be qualified, or the aliases nest
 * deeper than ROUTE_DEPTH_MAX or fan out to more than ROUTE_FANOUT_MAX
 * addresses.  A name met again inside its own expansion (root: root,
 * ops@x) is not expanded again: it is a local name without alias. */
int		 route_rcpt(const struct route *, const char *addr,
		    struct route_result *res, char *err, size_t errsz);

void		 route_result_cleanup(struct route_result *);

/* Appends to <dst> the addresses of <src> it does not hold yet, for the
 * recipients of one message.  Returns how many were added, or -1 (and
 * adds none) when <dst> would then hold more than <max>. */
int		 route_result_merge(struct route_result *dst,
		    const struct route_result *src, size_t max);

/* Routes every name of the aliases table, so that a file whose names
 * nest too deeply or fan out too far is refused at load rather than
 * found out by a message.  Returns 0, or -1 with one "name: reason"
 * line in <err>. */
int		 route_check(const struct route *, char *err, size_t errsz);

/* Writes the addresses of <res> for a log line, "<a@x>,<b@y>", each
 * escaped as str_log_escape() does, into <buf>; when they do not all
 * fit, as many as do and ",...".  Returns <buf>. */
char		*route_result_fmt(const struct route_result *res, char *buf,
		    size_t bufsz);

/* A short word for <how>: "remote", "alias", "admin", "kept". */
const char	*route_how_name(enum route_how how);

#endif /* ROUTE_H */
