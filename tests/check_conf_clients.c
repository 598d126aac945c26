/*
 * check_conf_clients.c - unit tests for the "clients" table: the checks
 * of one entry (conf_clients.c), and the table read by libconfuse in a
 * whole configuration, each error with its "file:line:".
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "conf_clients.h"
#include "util.h"

static char	tmpdir[64];
static char	conf_path[128];
static char	errbuf[4096];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_conf_clients.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(conf_path, sizeof(conf_path), "%s/smartrelay.conf", tmpdir);
}

static void
teardown(void)
{
	unlink(conf_path);
	rmdir(tmpdir);
}

static struct conf *
load(const char *text)
{
	FILE	*fp = fopen(conf_path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ne(fputs(text, fp), EOF);
	ck_assert_int_eq(fclose(fp), 0);
	return conf_load(conf_path, errbuf, sizeof(errbuf));
}

static const struct {
	const char	*net, *name;
	const char	*want;		/* NULL: accepted */
} entry_cases[] = {
	{ "192.168.1.20/32", "Office printer", NULL },
	{ "fd00::/8", "LAN", NULL },
	{ "10.0.0.1", "bare address", NULL },
	{ "nas", "B", "clients: \"nas\" is not a network like "
	    "192.168.1.20/32" },
	{ "10.0.0.0/33", "B", "is not a network" },
	{ "", "B", "clients: \"\" is not a network" },
	{ "10.0.0.1\n/32", "B", "clients: \"10.0.0.1\\x0a/32\" is not" },
	{ "10.0.0.1/32", "", "clients: the name of \"10.0.0.1/32\" is empty" },
	{ "10.0.0.1/32", "a\tb", "clients: the name of \"10.0.0.1/32\" has a "
	    "control character" },
	{ "10.0.0.1/32", "0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890",
	    "clients: name longer than 100 bytes" },
};

START_TEST(test_entry)
{
	struct conf_clients	t = { NULL, 0 };
	char			err[256] = "";
	int			rc;

	rc = conf_clients_add(&t, entry_cases[_i].net, entry_cases[_i].name,
	    7, err, sizeof(err));
	if (entry_cases[_i].want == NULL) {
		ck_assert_msg(rc == 0, "%s", err);
		ck_assert_uint_eq(t.n, 1);
		ck_assert_str_eq(t.v[0].name, entry_cases[_i].name);
		ck_assert_int_eq(t.v[0].line, 7);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_uint_eq(t.n, 0);
		ck_assert_msg(strstr(err, entry_cases[_i].want) != NULL,
		    "want <%s> in <%s>", entry_cases[_i].want, err);
	}
	conf_clients_free(&t);
}
END_TEST

START_TEST(test_entry_limit)
{
	struct conf_clients	t = { NULL, 0 };
	char			err[256];
	size_t			i;

	for (i = 0; i < CONF_CLIENTS_MAX; i++)
		ck_assert_int_eq(conf_clients_add(&t, "10.0.0.0/8", "x", 1,
		    err, sizeof(err)), 0);
	ck_assert_int_eq(conf_clients_add(&t, "10.0.0.0/8", "x", 1, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "clients: more than 4096 entries");
	conf_clients_free(&t);
	ck_assert_ptr_null(t.v);
}
END_TEST

/* A configuration, the line its first error names, and a piece of the
 * message. */
static const struct {
	const char	*text;
	int		 line;
	const char	*what;
} bad_cases[] = {
	/* a network named twice: in two tables, or spelled two ways */
	{ "clients {\n  \"10.0.0.1/32\" = \"A\"\n}\nclients {\n"
	    "  \"10.0.0.1/32\" = \"B\"\n}\n", 5,
	    "clients: this network is already named \"A\"" },
	{ "clients {\n  \"10.0.0.1/32\" = \"A\"\n  \"10.0.0.1\" = \"B\"\n}\n",
	    3, "already named \"A\"" },
	/* a bad network, an empty name: the entry's own line */
	{ "clients {\n\n  \"10.0.0.256/32\" = \"A\"\n}\n", 3,
	    "clients: \"10.0.0.256/32\" is not a network" },
	{ "clients {\n  \"10.0.0.1/32\" = \"A\"\n  \"10.0.0.2/32\" = \"\"\n}\n",
	    3, "clients: the name of \"10.0.0.2/32\" is empty" },
	/* values that are not one string */
	{ "clients {\n  \"10.0.0.1/32\" = {\"A\"}\n}\n", 2,
	    "clients: unexpected token '{'" },
	{ "clients {\n  \"10.0.0.1/32\" += \"A\"\n}\n", 2,
	    "clients: attempt to append" },
	{ "clients {\n  \"10.0.0.1/32\" = \"A\", \"10.0.0.2/32\" = \"B\"\n}\n",
	    2, "clients: unexpected token ','" },
	{ "clients {\n  \"10.0.0.1/32\"\n}\n", 3, "clients: expected '=' after "
	    "\"10.0.0.1/32\"" },
	{ "clients \"x\" {\n}\n", 1, "clients: expected '{'" },
	/* every section is closed, not only this one */
	{ "queue {\n  lifetime = 1d\n", 3, "missing '}' (the '{' on line 1" },
	{ "clients {\n", 2, "missing '}'" },
};

START_TEST(test_bad_table)
{
	char	prefix[256];

	ck_assert_ptr_null(load(bad_cases[_i].text));
	snprintf(prefix, sizeof(prefix), "%s:%d: ", conf_path,
	    bad_cases[_i].line);
	ck_assert_msg(strncmp(errbuf, prefix, strlen(prefix)) == 0,
	    "config <%s>: want prefix <%s>, got <%s>", bad_cases[_i].text,
	    prefix, errbuf);
	ck_assert_msg(strstr(errbuf, bad_cases[_i].what) != NULL,
	    "config <%s>: want <%s> in <%s>", bad_cases[_i].text,
	    bad_cases[_i].what, errbuf);
}
END_TEST

/* Names keep libconfuse's string syntax; tables add up; and, as for any
 * key libconfuse reads, a network repeated word for word in one table
 * keeps its last name. */
START_TEST(test_good_tables)
{
	struct conf	*c;
	size_t		 i;

	c = load("clients {\n  \"10.0.0.1/32\" = \"Office \\\"printer\\\"\"\n"
	    "  '10.0.0.2/32' = 'NAS'\n}\nclients {\n}\n"
	    "clients { \"10.0.0.3/32\" = \"A\" \"10.0.0.3/32\" = \"B\" }\n");
	ck_assert_msg(c != NULL, "%s", errbuf);
	ck_assert_uint_eq(c->nnetworks, 3);
	ck_assert_str_eq(c->networks[0].name, "Office \"printer\"");
	ck_assert_str_eq(c->networks[1].name, "NAS");
	for (i = 0; i < c->nnetworks; i++)
		ck_assert_str_ne(c->networks[i].name, "A");
	ck_assert_str_eq(c->networks[2].name, "B");
	conf_free(c);
}
END_TEST

static Suite *
conf_clients_suite(void)
{
	Suite	*s = suite_create("conf_clients");
	TCase	*tc;

	tc = tcase_create("entry");
	tcase_add_loop_test(tc, test_entry, 0, nitems(entry_cases));
	tcase_add_test(tc, test_entry_limit);
	suite_add_tcase(s, tc);

	tc = tcase_create("table");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_bad_table, 0, nitems(bad_cases));
	tcase_add_test(tc, test_good_tables);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(conf_clients_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
