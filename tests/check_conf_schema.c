/*
 * check_conf_schema.c - unit tests for conf_schema.c and conf_value.c:
 * the table is whole (every key named, sections contiguous), and every
 * default passes its own key's check, as libconfuse reads it from the
 * option arrays built from the table.
 */
#include "config.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <confuse.h>

#include "conf_schema.h"
#include "conf_value.h"
#include "util.h"

/* Sections cover every key once, in order, and a section key points at
 * a section whose keys follow the top level's. */
START_TEST(test_schema_whole)
{
	enum conf_key_id	next = CONF_HOSTNAME;
	int			s, k;

	for (s = 0; s < CONF_NSECS; s++) {
		ck_assert_msg(conf_sections[s].first == next, "section %d", s);
		ck_assert_int_le(conf_sections[s].first, conf_sections[s].end);
		next = conf_sections[s].end;
	}
	ck_assert_int_eq(next, CONF_NKEYS);
	for (k = 0; k < CONF_NKEYS; k++) {
		ck_assert_msg(conf_schema[k].name != NULL, "key %d", k);
		if (conf_schema[k].type == CONF_T_SEC)
			ck_assert_int_gt(conf_schema[k].sec, CONF_SEC_ROOT);
		if (conf_schema[k].check == CONF_C_CHOICE)
			ck_assert_ptr_nonnull(conf_schema[k].choices);
		if (conf_schema[k].store == CONF_S_STRS ||
		    conf_schema[k].store == CONF_S_CIDRS)
			ck_assert_int_eq(conf_schema[k].type, CONF_T_LIST);
	}
}
END_TEST

/* Within one section, names differ (libconfuse would find the first). */
START_TEST(test_schema_names_differ)
{
	int	s, i, j;

	for (s = 0; s < CONF_NSECS; s++)
		for (i = conf_sections[s].first; i < (int)conf_sections[s].end;
		    i++)
			for (j = conf_sections[s].first; j < i; j++)
				ck_assert_msg(strcmp(conf_schema[i].name,
				    conf_schema[j].name) != 0, "%s twice",
				    conf_schema[i].name);
}
END_TEST

/* Every value of key <k> in <sec>, read by libconfuse, is accepted. */
static void
check_defaults(cfg_t *sec, enum conf_sec_id s)
{
	const struct conf_key	*key;
	cfg_opt_t		*opt;
	const char		*why, *v;
	char			 buf[128], label[64];
	bool			 nonlocal;
	long			 n;
	unsigned int		 i;
	int			 k;

	for (k = conf_sections[s].first; k < (int)conf_sections[s].end; k++) {
		key = &conf_schema[k];
		opt = &sec->opts[k - conf_sections[s].first];
		conf_schema_label((enum conf_key_id)k, label, sizeof(label));
		ck_assert_str_eq(opt->name, key->name);
		if (key->type == CONF_T_INT) {
			n = cfg_opt_getnint(opt, 0);
			ck_assert_msg(n >= key->min && n <= key->max,
			    "%s = %ld outside [%ld, %ld]", label, n, key->min,
			    key->max);
			continue;
		}
		if (key->type != CONF_T_STR && key->type != CONF_T_LIST)
			continue;
		/* The builder puts the machine's name in its place. */
		if (k == CONF_HOSTNAME) {
			ck_assert_str_eq(key->def, "");
			continue;
		}
		for (i = 0; i < cfg_opt_size(opt); i++) {
			v = cfg_opt_getnstr(opt, i);
			nonlocal = false;
			why = conf_value_problem(key, v != NULL ? v : "",
			    &nonlocal, buf, sizeof(buf));
			ck_assert_msg(why == NULL, "%s default \"%s\": %s",
			    label, v, why);
			ck_assert_msg(!nonlocal, "%s default reaches out",
			    label);
		}
	}
}

START_TEST(test_schema_defaults_valid)
{
	static const struct conf_schema_cbs	 none;
	cfg_opt_t				*opts;
	cfg_t					*cfg, *sec;
	int					 s;

	for (s = 0; s < CONF_NSECS; s++) {
		opts = conf_schema_opts((enum conf_sec_id)s, &none);
		ck_assert_ptr_nonnull(cfg = cfg_init(opts, CFGF_NONE));
		check_defaults(cfg, (enum conf_sec_id)s);
		/* A single section's instance holds the same defaults. */
		if (s == CONF_SEC_QUEUE) {
			cfg_free(cfg);
			conf_schema_opts_free(opts);
			opts = conf_schema_opts(CONF_SEC_ROOT, &none);
			ck_assert_ptr_nonnull(cfg = cfg_init(opts, CFGF_NONE));
			ck_assert_ptr_nonnull(sec = cfg_getsec(cfg, "queue"));
			check_defaults(sec, CONF_SEC_QUEUE);
		}
		cfg_free(cfg);
		conf_schema_opts_free(opts);
	}
}
END_TEST

/* Labels are what messages name: "key" or "section.key". */
START_TEST(test_schema_labels)
{
	char	buf[64];

	ck_assert_str_eq(conf_schema_label(CONF_SPOOL, buf, sizeof(buf)),
	    "spool");
	ck_assert_str_eq(conf_schema_label(CONF_UP_PORT, buf, sizeof(buf)),
	    "upstream.port");
	ck_assert_str_eq(conf_schema_label(CONF_AUTH_PLAINTEXT, buf,
	    sizeof(buf)), "auth.plaintext");
	ck_assert_str_eq(conf_schema_label(CONF_NET_BARE_LF, buf, sizeof(buf)),
	    "network.bare_lf");
}
END_TEST

static const struct {
	const char	*s;
	int		 want;
	long		 n;
} int_cases[] = {
	{ "0", 0, 0 },
	{ "25", 0, 25 },
	{ "-1", 0, -1 },
	{ "010", 0, 10 },
	{ "", -1, 0 },
	{ "-", -1, 0 },
	{ "0x10", -1, 0 },
	{ "1.5", -1, 0 },
	{ "+5", -1, 0 },
	{ " 5", -1, 0 },
	{ "99999999999999999999999", -1, 0 },
};

START_TEST(test_value_int)
{
	long	n = 12345;
	int	rc = conf_value_int(int_cases[_i].s, &n);

	ck_assert_msg(rc == int_cases[_i].want, "<%s>: %d", int_cases[_i].s,
	    rc);
	if (rc == 0)
		ck_assert_int_eq(n, int_cases[_i].n);
}
END_TEST

/* The reasons are the ones messages have always given. */
START_TEST(test_value_problem)
{
	char	buf[128];
	bool	nonlocal = false;

	ck_assert_str_eq(conf_value_problem(&conf_schema[CONF_BARE_LF], "x",
	    &nonlocal, buf, sizeof(buf)), "must be \"normalize\" or "
	    "\"reject\"");
	ck_assert_str_eq(conf_value_problem(&conf_schema[CONF_SPOOL], "",
	    &nonlocal, buf, sizeof(buf)), "must not be empty");
	ck_assert_ptr_null(conf_value_problem(&conf_schema[CONF_USER], "",
	    &nonlocal, buf, sizeof(buf)));
	ck_assert_str_eq(conf_value_problem(&conf_schema[CONF_ALLOW],
	    "::/0", &nonlocal, buf, sizeof(buf)), "would make an open relay");
	ck_assert_ptr_null(conf_value_problem(&conf_schema[CONF_LISTEN],
	    "*:25", &nonlocal, buf, sizeof(buf)));
	ck_assert(nonlocal);
	ck_assert_int_eq(conf_value_choice(conf_schema[CONF_UP_AUTH].choices,
	    "xoauth2"), 3);
	ck_assert_int_eq(conf_value_choice(conf_schema[CONF_UP_AUTH].choices,
	    "XOAUTH2"), -1);
}
END_TEST

static Suite *
conf_schema_suite(void)
{
	Suite	*s = suite_create("conf_schema");
	TCase	*tc;

	tc = tcase_create("schema");
	tcase_add_test(tc, test_schema_whole);
	tcase_add_test(tc, test_schema_names_differ);
	tcase_add_test(tc, test_schema_defaults_valid);
	tcase_add_test(tc, test_schema_labels);
	suite_add_tcase(s, tc);

	tc = tcase_create("value");
	tcase_add_loop_test(tc, test_value_int, 0, nitems(int_cases));
	tcase_add_test(tc, test_value_problem);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(conf_schema_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
