/*
 * fuzz_aliases.c - libFuzzer harness for the aliases(5) reader and the
 * routing of local names (aliases.c, route.c).
 *
 * The input is an aliases file.  Checked besides "no crash": a refusal
 * says why (a "file:line: " message); an accepted table has lower-case
 * names in strictly increasing order, each found again by lookup in
 * upper case, and every target an address or a local name; routing
 * every name (route_check() and route_rcpt()) ends, within the bounds,
 * with valid, distinct mailboxes, with and without an admin address.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "route.h"
#include "smtp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check(bool ok, const char *what, const char *detail)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_aliases: %s: \"%s\"\n", what, detail);
	abort();
}

/* Routes <name> and checks the result. */
static void
fuzz_route(const struct route *r, const char *name)
{
	struct route_result	res;
	char			err[512];
	size_t			i, j;

	if (route_rcpt(r, name, &res, err, sizeof(err)) == -1) {
		fuzz_check(err[0] != '\0', "route failed silently", name);
		route_result_cleanup(&res);
		return;
	}
	fuzz_check(res.naddrs > 0 && res.naddrs <= ROUTE_FANOUT_MAX,
	    "route count", name);
	for (i = 0; i < res.naddrs; i++) {
		fuzz_check(smtp_mailbox_is_valid(res.addrs[i]),
		    "routed to a bad address", res.addrs[i]);
		for (j = 0; j < i; j++)
			fuzz_check(strcmp(res.addrs[i], res.addrs[j]) != 0,
			    "routed twice", res.addrs[i]);
		/* An admin is never local; no admin: qualified locals. */
		fuzz_check(r->admin[0] == '\0' ||
		    !route_is_local(r, res.addrs[i]) ||
		    res.how == ROUTE_REMOTE, "local address routed", name);
	}
	route_result_cleanup(&res);
}

static void
fuzz_table(const struct aliases *a)
{
	struct route		 r = { "lan.example", "relay.test", "", a };
	const char *const	*t;
	const char		*name, *prev = NULL;
	char			 upper[SMTP_ADDR_BUFSZ], err[512];
	size_t			 i, k, n;

	for (i = 0; i < aliases_count(a); i++) {
		name = aliases_name(a, i);
		fuzz_check(smtp_local_is_valid(name), "bad name", name);
		fuzz_check(prev == NULL || strcmp(prev, name) < 0,
		    "names not sorted and distinct", name);
		prev = name;
		for (k = 0; name[k] != '\0' && k < sizeof(upper) - 1; k++)
			upper[k] = (name[k] >= 'a' && name[k] <= 'z') ?
			    (char)(name[k] - 'a' + 'A') : name[k];
		upper[k] = '\0';
		t = aliases_get(a, upper, &n, NULL);
		fuzz_check(t != NULL && n > 0, "name not found", name);
		for (k = 0; k < n; k++)
			fuzz_check(smtp_mailbox_is_valid(t[k]) ||
			    smtp_local_is_valid(t[k]), "bad target", t[k]);
	}
	if (route_check(&r, err, sizeof(err)) == -1)
		return;
	for (i = 0; i < aliases_count(a) && i < 64; i++)
		fuzz_route(&r, aliases_name(a, i));
	r.admin = "admin@x.example";
	for (i = 0; i < aliases_count(a) && i < 64; i++)
		fuzz_route(&r, aliases_name(a, i));
	fuzz_route(&r, "nobody-here");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aliases	*a;
	char		 err[2048];

	a = aliases_parse((const char *)data, size, "f", err, sizeof(err));
	if (a == NULL) {
		fuzz_check(strncmp(err, "f:", 2) == 0, "refused without a "
		    "message", err);
		return 0;
	}
	fuzz_table(a);
	aliases_free(a);
	return 0;
}
