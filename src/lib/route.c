/*
 * route.c - local names to aliases or the admin address (route.h).
 *
 * Expansion is a depth-first walk of the aliases table that keeps the
 * names on its current path: a name met again on that path is a local
 * name without alias (the sendmail reading of "root: root, ops@x"), so
 * every walk ends, and ROUTE_DEPTH_MAX and ROUTE_FANOUT_MAX bound its
 * cost.  Results are deduplicated in the order first reached.
 */
#include "config.h"

#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "smtp.h"
#include "util.h"

/* One walk. */
struct route_walk {
	const struct route	*r;
	struct route_result	*res;
	const char		*path[ROUTE_DEPTH_MAX + 1];
	char			*err;
	size_t			 errsz;
};

static bool
route_ci_equal(const char *a, const char *b)
{
	unsigned char	x, y;

	for (;; a++, b++) {
		x = (unsigned char)*a;
		y = (unsigned char)*b;
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y)
			return false;
		if (x == '\0')
			return true;
	}
}

bool
route_is_local(const struct route *r, const char *addr)
{
	const char	*at = strrchr(addr, '@');

	/* A quoted local part may hold an '@'; a domain never does. */
	if (at == NULL)
		return true;
	at++;
	return route_ci_equal(at, r->domain) ||
	    route_ci_equal(at, r->hostname) || route_ci_equal(at, "localhost");
}

int
route_qualify(const struct route *r, const char *addr, char *out,
    size_t outsz)
{
	int	n;

	if (strchr(addr, '@') != NULL)
		n = snprintf(out, outsz, "%s", addr);
	else
		n = snprintf(out, outsz, "%s@%s", addr, r->domain);
	/* "<" path ">" must fit the SMTP limit too (RFC 5321 4.5.3.1.3). */
	if (n < 0 || (size_t)n >= outsz || (size_t)n + 2 > SMTP_PATH_MAX ||
	    !smtp_mailbox_is_valid(out))
		return -1;
	return 0;
}

/* Says why in w->err, the address <a> escaped; returns -1. */
static int
route_fail(struct route_walk *w, const char *a, const char *why)
{
	char	esc[4 * SMTP_ADDR_BUFSZ];

	if (w->err != NULL && w->errsz > 0)
		snprintf(w->err, w->errsz, "%s: %s",
		    str_log_escape(a, strlen(a), esc, sizeof(esc)), why);
	return -1;
}

static bool	route_result_has(const struct route_result *, const char *);

/* Adds a final address unless it is there already. */
static int
route_add(struct route_walk *w, const char *addr)
{
	struct route_result	*res = w->res;

	if (route_result_has(res, addr))
		return 0;
	if (res->naddrs >= ROUTE_FANOUT_MAX)
		return route_fail(w, w->path[0], "more than 1000 addresses "
		    "once aliases are expanded");
	res->addrs = xrealloc(res->addrs, (res->naddrs + 1) *
	    sizeof(*res->addrs));
	res->addrs[res->naddrs++] = xstrdup(addr);
	return 0;
}

/* A local name that stops here: the admin, or itself, qualified. */
static int
route_local_end(struct route_walk *w, const char *addr)
{
	char	q[SMTP_ADDR_BUFSZ];

	if (w->r->admin[0] != '\0')
		return route_add(w, w->r->admin);
	if (route_qualify(w->r, addr, q, sizeof(q)) == -1)
		return route_fail(w, addr, "too long once qualified");
	return route_add(w, q);
}

/* The local part of <addr> (up to its last '@') into <name>. */
static void
route_local_part(const char *addr, char *name, size_t namesz)
{
	const char	*at = strrchr(addr, '@');
	size_t		 len = at != NULL ? (size_t)(at - addr) : strlen(addr);

	if (len >= namesz)
		len = namesz - 1;
	memcpy(name, addr, len);
	name[len] = '\0';
}

static int
route_walk(struct route_walk *w, const char *addr, int depth)
{
	const char *const	*targets;
	char			 name[SMTP_ADDR_BUFSZ];
	size_t			 n, i;
	int			 k;

	if (!route_is_local(w->r, addr))
		return route_add(w, addr);
	route_local_part(addr, name, sizeof(name));
	for (k = 0; k < depth; k++)
		if (route_ci_equal(w->path[k], name))
			return route_local_end(w, addr);
	if ((targets = aliases_get(w->r->aliases, name, &n, NULL)) == NULL)
		return route_local_end(w, addr);
	if (depth == ROUTE_DEPTH_MAX)
		return route_fail(w, w->path[0], "aliases nested more than 10 "
		    "deep");
	w->path[depth] = name;
	for (i = 0; i < n; i++)
		if (route_walk(w, targets[i], depth + 1) == -1)
			return -1;
	return 0;
}

int
route_rcpt(const struct route *r, const char *addr, struct route_result *res,
    char *err, size_t errsz)
{
	struct route_walk	w;
	char			name[SMTP_ADDR_BUFSZ];

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	w.r = r;
	w.res = res;
	w.err = err;
	w.errsz = errsz;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (!route_is_local(r, addr)) {
		res->how = ROUTE_REMOTE;
		return route_add(&w, addr);
	}
	route_local_part(addr, name, sizeof(name));
	w.path[0] = name;
	if (aliases_get(r->aliases, name, NULL, NULL) != NULL)
		res->how = ROUTE_ALIAS;
	else
		res->how = r->admin[0] != '\0' ? ROUTE_ADMIN : ROUTE_KEPT;
	return route_walk(&w, addr, 0);
}

void
route_result_cleanup(struct route_result *res)
{
	size_t	i;

	for (i = 0; i < res->naddrs; i++)
		free(res->addrs[i]);
	free(res->addrs);
	memset(res, 0, sizeof(*res));
}

/* True when <res> holds <addr>. */
static bool
route_result_has(const struct route_result *res, const char *addr)
{
	size_t	i;

	for (i = 0; i < res->naddrs; i++)
		if (strcmp(res->addrs[i], addr) == 0)
			return true;
	return false;
}

int
route_result_merge(struct route_result *dst, const struct route_result *src,
    size_t max)
{
	size_t	i, fresh = 0;

	for (i = 0; i < src->naddrs; i++)
		fresh += !route_result_has(dst, src->addrs[i]);
	if (dst->naddrs + fresh > max)
		return -1;
	dst->addrs = xrealloc(dst->addrs, (dst->naddrs + fresh + 1) *
	    sizeof(*dst->addrs));
	for (i = 0; i < src->naddrs; i++)
		if (!route_result_has(dst, src->addrs[i]))
			dst->addrs[dst->naddrs++] = xstrdup(src->addrs[i]);
	return (int)fresh;
}

int
route_check(const struct route *r, char *err, size_t errsz)
{
	struct route_result	res;
	size_t			i;
	int			rc = 0;

	for (i = 0; i < aliases_count(r->aliases) && rc == 0; i++) {
		rc = route_rcpt(r, aliases_name(r->aliases, i), &res, err,
		    errsz);
		route_result_cleanup(&res);
	}
	return rc;
}

char *
route_result_fmt(const struct route_result *res, char *buf, size_t bufsz)
{
	char	esc[4 * SMTP_ADDR_BUFSZ];
	size_t	i, len = 0, n;

	if (bufsz == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; i < res->naddrs; i++) {
		str_log_escape(res->addrs[i], strlen(res->addrs[i]), esc,
		    sizeof(esc));
		/* Room for this one, and for ",..." after it. */
		n = strlen(esc) + (i > 0) + 2;
		if (len + n + 5 >= bufsz) {
			if (len + 5 <= bufsz)
				snprintf(buf + len, bufsz - len, "%s...",
				    i > 0 ? "," : "");
			break;
		}
		snprintf(buf + len, bufsz - len, "%s<%s>", i > 0 ? "," : "",
		    esc);
		len += n;
	}
	return buf;
}

const char *
route_how_name(enum route_how how)
{
	switch (how) {
	case ROUTE_REMOTE:
		return "remote";
	case ROUTE_ALIAS:
		return "alias";
	case ROUTE_ADMIN:
		return "admin";
	case ROUTE_KEPT:
		return "kept";
	}
	return "?";
}
