/*
 * check_aliases.c - unit tests for aliases.c (the aliases(5) reader:
 * every accepted form and every refusal with its file:line) and route.c
 * (what is local, qualification, expansion, loops, bounds).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aliases.h"
#include "route.h"
#include "util.h"

/*
 * aliases_parse: accepted files, and what a name gives.
 */
static const struct {
	const char	*text;
	const char	*name;		/* looked up */
	const char	*want;		/* its targets, joined by "," */
} ok_cases[] = {
	{ "root: a@x.example\n",		"root",	"a@x.example" },
	{ "root: a@x.example, b@y.example\n",	"root",	"a@x.example,b@y.example" },
	{ "root:a@x.example,b@y.example",	"root",	"a@x.example,b@y.example" },
	{ "ROOT: a@x.example\n",		"root",	"a@x.example" },
	{ "root: a@x.example\n",		"Root",	"a@x.example" },
	{ "root : a@x.example\n",		"root",	"a@x.example" },
	/* Continuation lines, comments and blank lines. */
	{ "root: a@x.example,\n\tb@y.example,\n  c@z.example\n", "root",
	    "a@x.example,b@y.example,c@z.example" },
	{ "# comment\n\nroot: a@x.example\n# more\n\t, b@y.example\n",
	    "root", "a@x.example,b@y.example" },
	{ "root:\n\ta@x.example\n",		"root",	"a@x.example" },
	{ "root: a@x.example\r\nops: b@y.example\r\n", "ops", "b@y.example" },
	/* Local names, angle brackets, empty items, quoted local parts. */
	{ "postmaster: root\n",			"postmaster", "root" },
	{ "mailer-daemon: postmaster\n",	"MAILER-DAEMON", "postmaster" },
	{ "root: <a@x.example>, , b\n",		"root",	"a@x.example,b" },
	{ "root: \"a b\"@x.example\n",		"root",	"\"a b\"@x.example" },
	{ "root: \"a,b\"@x.example, c\n",	"root",	"\"a,b\"@x.example,c" },
	{ "a.b+c: d@x.example\n",		"a.b+c", "d@x.example" },
	{ "r\xc3\xa9: d@x.example\n",		"R\xc3\xa9", "d@x.example" },
	{ "root: a@[192.0.2.1]\n",		"root",	"a@[192.0.2.1]" },
	/* Not there. */
	{ "root: a@x.example\n",		"ops",	NULL },
	{ "",					"root",	NULL },
	{ "# only a comment\n",			"root",	NULL },
};

START_TEST(test_parse_ok)
{
	struct aliases		*a;
	const char *const	*t;
	char			 err[1024], got[512] = "";
	size_t			 n, i;

	a = aliases_parse(ok_cases[_i].text, strlen(ok_cases[_i].text),
	    "aliases", err, sizeof(err));
	ck_assert_msg(a != NULL, "row %d: %s", _i, err);
	t = aliases_get(a, ok_cases[_i].name, &n, NULL);
	if (ok_cases[_i].want == NULL)
		ck_assert_ptr_null(t);
	else {
		ck_assert_ptr_nonnull(t);
		for (i = 0; i < n; i++) {
			if (i > 0)
				strcat(got, ",");
			strcat(got, t[i]);
		}
		ck_assert_str_eq(got, ok_cases[_i].want);
	}
	aliases_free(a);
}
END_TEST

/*
 * aliases_parse: refused files, with the line and the reason.
 */
static const struct {
	const char	*text;
	const char	*want;		/* a substring of the message */
} bad_cases[] = {
	{ "root a@x.example\n",		"aliases:1: \"root a@x.example\": "
	    "no ':'" },
	{ "\n\nroot: :include:/etc/ops\n", "aliases:3: root: "
	    "\":include:/etc/ops\": :include: files are not supported" },
	{ "root: :INCLUDE:/etc/ops\n",	":include: files are not supported" },
	{ "root: a@x.example,\n\t:include:/etc/ops\n", "aliases:1: root: "
	    "\":include:/etc/ops\"" },
	{ "mailman: \"|/usr/lib/mailman post\"\n", "aliases:1: mailman: "
	    "\"\\x22|/usr/lib/mailman post\\x22\": delivery to a command is "
	    "not supported" },
	{ "x: |/bin/cat\n",		"delivery to a command" },
	{ "log: /var/log/mail\n",	"aliases:1: log: \"/var/log/mail\": "
	    "delivery to a file is not supported" },
	{ "log: \"/var/log/mail\"\n",	"delivery to a file" },
	{ "root: a@x.example\nroot: b@y.example\n", "aliases:2: root: a "
	    "second entry for this name (the first is on line 1)" },
	{ "root: a@x.example\nRoot: b@y.example\n", "a second entry" },
	{ "root:\n",			"aliases:1: root: no address" },
	{ "root: , ,\n",		"no address" },
	{ "\tb@y.example\n",		"aliases:1: a continuation line" },
	{ ": a@x.example\n",		"aliases:1: \"\": not a name" },
	{ "a b: a@x.example\n",		"\"a b\": not a name" },
	{ "\"root\": a@x.example\n",	"not a name" },
	{ "r\xc3: a@x.example\n",	"not a name" },	/* not UTF-8 */
	{ "r\xe9: a@x.example\n",	"not a name" },	/* Latin-1 */
	{ "root: a b@x.example\n",	"\"a b@x.example\": not an address" },
	{ "root: a@x.example\n\tb@y.example\n", "aliases:1: root: "
	    "\"a@x.example \\x09b@y.example\": not an address (like "
	    "you@example.org) or a local name; separate addresses with "
	    "commas" },
	{ "root: a@x_y.example\n",	"not an address" },
	{ "root: a@\n",			"not an address" },
	{ "root: <a@x.example\n",	"not an address" },
	{ "root: a@x.example\n\nops: x y\n", "aliases:3: ops: \"x y\"" },
	{ "root: error:nouser No such user\n", "not an address" },
	{ "root: a@x.example\0\n",	"aliases:1: NUL byte" },
};

START_TEST(test_parse_bad)
{
	struct aliases	*a;
	char		 err[1024];
	size_t		 len = strlen(bad_cases[_i].text);

	/* The NUL row: its length includes the NUL and the LF after. */
	if (strstr(bad_cases[_i].want, "NUL") != NULL)
		len += 2;
	a = aliases_parse(bad_cases[_i].text, len, "aliases", err,
	    sizeof(err));
	ck_assert_msg(a == NULL, "row %d accepted", _i);
	ck_assert_msg(strstr(err, bad_cases[_i].want) != NULL,
	    "row %d: \"%s\" lacks \"%s\"", _i, err, bad_cases[_i].want);
}
END_TEST

START_TEST(test_parse_many_errors)
{
	char		 text[4096] = "", err[4096];
	struct aliases	*a;
	int		 i;

	for (i = 0; i < 25; i++)
		strcat(text, "x: |cmd\n");
	a = aliases_parse(text, strlen(text), "f", err, sizeof(err));
	ck_assert_ptr_null(a);
	/* Ten reported, the other 15 pipes counted. */
	ck_assert_ptr_nonnull(strstr(err, "f:10: x:"));
	ck_assert_ptr_null(strstr(err, "f:11:"));
	ck_assert_ptr_nonnull(strstr(err, "f: 15 more errors"));
	/* A short buffer is terminated. */
	a = aliases_parse(text, strlen(text), "f", err, 16);
	ck_assert_ptr_null(a);
	ck_assert_uint_lt(strlen(err), 16);
}
END_TEST

/* The text need not end in a NUL: a last line of blanks without a line
 * end is read within its length (found by fuzz_aliases under ASan). */
START_TEST(test_parse_unterminated)
{
	static const char	 text[] = "root: a@x.example\n \t";
	struct aliases		*a;
	char			*copy, err[256];

	copy = xmalloc(sizeof(text) - 1);
	memcpy(copy, text, sizeof(text) - 1);
	a = aliases_parse(copy, sizeof(text) - 1, "f", err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	aliases_free(a);
	free(copy);
}
END_TEST

START_TEST(test_load)
{
	char		 dir[] = "/tmp/check_aliases.XXXXXX", path[64], err[512];
	struct aliases	*a;
	FILE		*fp;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/aliases", dir);
	a = aliases_load(path, err, sizeof(err));
	ck_assert_ptr_null(a);
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
	a = aliases_load(dir, err, sizeof(err));
	ck_assert_ptr_null(a);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("root: a@x.example\npostmaster: root\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	a = aliases_load(path, err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(aliases_count(a), 2);
	ck_assert_str_eq(aliases_name(a, 0), "postmaster");
	ck_assert_str_eq(aliases_name(a, 1), "root");
	aliases_free(a);
	unlink(path);
	rmdir(dir);
}
END_TEST

/*
 * route: with this aliases file, domain lan.example, host relay.test.
 */
static const char route_text[] =
    "root: ops@x.test, dev@x.test\n"
    "postmaster: root\n"
    "abuse: postmaster, sec@x.test\n"
    "selfish: selfish, out@x.test\n"
    "ping: pong\n"
    "pong: ping@lan.example, pong-out@x.test\n"
    "dup: root, ops@x.test, ROOT\n"
    "alias-to-unknown: nobody\n"
    "alias-to-local-domain: root@relay.test\n"
    "j\xc3\xb6rg: j\xc3\xb6rg@b\xc3\xbc" "cher.example, ops@x.test\n";

static const struct {
	const char	*addr;
	const char	*admin;
	enum route_how	 how;
	const char	*want;		/* joined by "," */
} route_cases[] = {
	/* Not local: unchanged, whatever the rest. */
	{ "a@gmail.example",	"adm@x.test", ROUTE_REMOTE, "a@gmail.example" },
	{ "root@other.example",	"adm@x.test", ROUTE_REMOTE,
	    "root@other.example" },
	/* Aliases, by bare name and at each local domain. */
	{ "root",		"adm@x.test", ROUTE_ALIAS, "ops@x.test,dev@x.test" },
	{ "root@lan.example",	"adm@x.test", ROUTE_ALIAS, "ops@x.test,dev@x.test" },
	{ "ROOT@LAN.EXAMPLE",	"adm@x.test", ROUTE_ALIAS, "ops@x.test,dev@x.test" },
	{ "root@relay.test",	"adm@x.test", ROUTE_ALIAS, "ops@x.test,dev@x.test" },
	{ "root@localhost",	"adm@x.test", ROUTE_ALIAS, "ops@x.test,dev@x.test" },
	{ "postmaster",		"adm@x.test", ROUTE_ALIAS, "ops@x.test,dev@x.test" },
	{ "abuse",		"adm@x.test", ROUTE_ALIAS,
	    "ops@x.test,dev@x.test,sec@x.test" },
	/* A name in its own expansion: its local mailbox is the admin. */
	{ "selfish",		"adm@x.test", ROUTE_ALIAS, "adm@x.test,out@x.test" },
	{ "ping",		"adm@x.test", ROUTE_ALIAS,
	    "adm@x.test,pong-out@x.test" },
	{ "dup",		"adm@x.test", ROUTE_ALIAS, "ops@x.test,dev@x.test" },
	{ "alias-to-unknown",	"adm@x.test", ROUTE_ALIAS, "adm@x.test" },
	{ "alias-to-local-domain", "adm@x.test", ROUTE_ALIAS,
	    "ops@x.test,dev@x.test" },
	/* UTF-8 names (RFC 6531) map like any other. */
	{ "j\xc3\xb6rg",		"adm@x.test", ROUTE_ALIAS,
	    "j\xc3\xb6rg@b\xc3\xbc" "cher.example,ops@x.test" },
	{ "J\xc3\xb6RG@lan.example", "adm@x.test", ROUTE_ALIAS,
	    "j\xc3\xb6rg@b\xc3\xbc" "cher.example,ops@x.test" },
	{ "m\xc3\xbcller",	"adm@x.test", ROUTE_ADMIN, "adm@x.test" },
	{ "m\xc3\xbcller",		"",	ROUTE_KEPT,
	    "m\xc3\xbcller@lan.example" },
	{ "m\xc3\xbcller@b\xc3\xbc" "cher.example", "adm@x.test", ROUTE_REMOTE,
	    "m\xc3\xbcller@b\xc3\xbc" "cher.example" },
	/* No alias: the admin. */
	{ "cron",		"adm@x.test", ROUTE_ADMIN, "adm@x.test" },
	{ "MAILER-DAEMON@lan.example", "adm@x.test", ROUTE_ADMIN, "adm@x.test" },
	{ "\"a b\"@localhost",	"adm@x.test", ROUTE_ADMIN, "adm@x.test" },
	/* No admin either: qualified only, as before. */
	{ "cron",		"",	ROUTE_KEPT, "cron@lan.example" },
	{ "cron@relay.test",	"",	ROUTE_KEPT, "cron@relay.test" },
	{ "selfish",		"",	ROUTE_ALIAS,
	    "selfish@lan.example,out@x.test" },
	{ "alias-to-unknown",	"",	ROUTE_ALIAS, "nobody@lan.example" },
};

START_TEST(test_route)
{
	struct aliases		*a;
	struct route		 r;
	struct route_result	 res;
	char			 err[256], got[512] = "";
	size_t			 i;

	a = aliases_parse(route_text, strlen(route_text), "a", err,
	    sizeof(err));
	ck_assert_msg(a != NULL, "%s", err);
	r.domain = "lan.example";
	r.hostname = "relay.test";
	r.admin = route_cases[_i].admin;
	r.aliases = a;
	ck_assert_int_eq(route_check(&r, err, sizeof(err)), 0);
	ck_assert_msg(route_rcpt(&r, route_cases[_i].addr, &res, err,
	    sizeof(err)) == 0, "row %d: %s", _i, err);
	ck_assert_int_eq(res.how, route_cases[_i].how);
	for (i = 0; i < res.naddrs; i++) {
		if (i > 0)
			strcat(got, ",");
		strcat(got, res.addrs[i]);
	}
	ck_assert_str_eq(got, route_cases[_i].want);
	route_result_cleanup(&res);
	aliases_free(a);
}
END_TEST

START_TEST(test_route_is_local_and_qualify)
{
	struct route	r = { "lan.example", "relay.test", "", NULL };
	char		out[300], long_local[80];

	ck_assert(route_is_local(&r, "root"));
	ck_assert(route_is_local(&r, "a@Lan.Example"));
	ck_assert(route_is_local(&r, "a@relay.test"));
	ck_assert(route_is_local(&r, "a@LOCALHOST"));
	ck_assert(route_is_local(&r, "\"x@gmail.example\"@localhost"));
	ck_assert(!route_is_local(&r, "a@gmail.example"));
	ck_assert(!route_is_local(&r, "a@sub.lan.example"));
	ck_assert(!route_is_local(&r, "a@lan.example.org"));
	ck_assert(!route_is_local(&r, "\"a@lan.example\"@x.example"));
	ck_assert_int_eq(route_qualify(&r, "scanner", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "scanner@lan.example");
	ck_assert_int_eq(route_qualify(&r, "a@b.example", out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "a@b.example");
	ck_assert_int_eq(route_qualify(&r, "scanner", out, 12), -1);
	/* 64 octets of local part fit a path; with a 250-octet domain
	 * they do not. */
	memset(long_local, 'a', 64);
	long_local[64] = '\0';
	ck_assert_int_eq(route_qualify(&r, long_local, out, sizeof(out)), 0);
	r.domain = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
	    "example";
	ck_assert_int_eq(route_qualify(&r, long_local, out, sizeof(out)), -1);
	ck_assert_str_eq(route_how_name(ROUTE_ADMIN), "admin");
}
END_TEST

/* Limits: a chain deeper than ROUTE_DEPTH_MAX, a fan-out over
 * ROUTE_FANOUT_MAX, each refused by route_check(). */
START_TEST(test_route_limits)
{
	struct aliases	*a;
	struct route	 r = { "lan.example", "relay.test", "adm@x.test", NULL };
	char		*text, err[256];
	size_t		 cap = 64 * 1024, len = 0;
	int		 i;

	text = xmalloc(cap);
	for (i = 0; i < ROUTE_DEPTH_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len, "n%d: n%d\n", i,
		    i + 1);
	len += (size_t)snprintf(text + len, cap - len, "n%d: end@x.test\n",
	    ROUTE_DEPTH_MAX);
	a = aliases_parse(text, len, "a", err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	r.aliases = a;
	ck_assert_int_eq(route_check(&r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "n0: aliases nested more than 10 deep");
	aliases_free(a);

	/* One link less is fine. */
	len = 0;
	for (i = 1; i < ROUTE_DEPTH_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len, "n%d: n%d\n", i,
		    i + 1);
	len += (size_t)snprintf(text + len, cap - len, "n%d: end@x.test\n",
	    ROUTE_DEPTH_MAX);
	a = aliases_parse(text, len, "a", err, sizeof(err));
	r.aliases = a;
	ck_assert_int_eq(route_check(&r, err, sizeof(err)), 0);
	aliases_free(a);

	len = (size_t)snprintf(text, cap, "big: ");
	for (i = 0; i <= ROUTE_FANOUT_MAX; i++)
		len += (size_t)snprintf(text + len, cap - len, "u%d@x.test,", i);
	a = aliases_parse(text, len, "a", err, sizeof(err));
	ck_assert_ptr_nonnull(a);
	r.aliases = a;
	ck_assert_int_eq(route_check(&r, err, sizeof(err)), -1);
	ck_assert_str_eq(err, "big: more than 1000 addresses once aliases "
	    "are expanded");
	aliases_free(a);
	free(text);
}
END_TEST

static Suite *
aliases_suite(void)
{
	Suite	*s = suite_create("aliases");
	TCase	*tc = tcase_create("parse");

	tcase_add_loop_test(tc, test_parse_ok, 0, nitems(ok_cases));
	tcase_add_loop_test(tc, test_parse_bad, 0, nitems(bad_cases));
	tcase_add_test(tc, test_parse_many_errors);
	tcase_add_test(tc, test_parse_unterminated);
	tcase_add_test(tc, test_load);
	suite_add_tcase(s, tc);
	tc = tcase_create("route");
	tcase_add_loop_test(tc, test_route, 0, nitems(route_cases));
	tcase_add_test(tc, test_route_is_local_and_qualify);
	tcase_add_test(tc, test_route_limits);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(aliases_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
