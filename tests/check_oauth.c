/*
 * check_oauth.c - unit tests for the pure parts of XOAUTH2 support:
 * the strict JSON object reader (good and hostile inputs), the
 * classification of token endpoint answers, and the atomic write of a
 * refresh token file (in a fresh mkdtemp() directory per test).
 */
#include "config.h"

#include "oauth_answer.h"

#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "util.h"

/*
 * json_parse() and json_get() (json.c) on the answers a token endpoint
 * gives: get() is what oauth_answer.c does with them.
 */

/* Member <key> of the object <text>: 1 and a copy of a string, 2 and a
 * number as written, 0 when absent or of another type, -1 when the
 * text is not exactly one well-formed JSON object. */
static int
get(const char *text, size_t len, const char *key, char **out)
{
	struct json		 doc;
	const struct json	*v;
	int			 rc = 0;

	*out = NULL;
	if (json_parse(text, len, &doc) == -1)
		return -1;
	if (doc.type != JSON_OBJ)
		rc = -1;
	else if ((v = json_get(&doc, key)) != NULL &&
	    (v->type == JSON_STR || v->type == JSON_NUM)) {
		*out = xstrdup(v->str);
		rc = v->type == JSON_STR ? 1 : 2;
	}
	json_free(&doc);
	return rc;
}

static const struct {
	const char	*json;
	const char	*key;
	int		 want;		/* 1, 2, 0 or -1 */
	const char	*value;		/* when 1 */
} get_cases[] = {
	{ "{\"a\":\"b\"}",			"a", 1, "b" },
	{ " \r\n\t{ \"a\" : \"b\" } \n",	"a", 1, "b" },
	{ "{\"a\":\"b\"}",			"x", 0, NULL },
	{ "{}",					"a", 0, NULL },
	{ "{\"n\":3599}",			"n", 2, "3599" },
	{ "{\"n\":-1.5e+3}",			"n", 2, "-1.5e+3" },
	{ "{\"n\":0}",				"n", 2, "0" },
	{ "{\"a\":null}",			"a", 0, NULL },
	{ "{\"a\":true,\"b\":\"c\"}",		"b", 1, "c" },
	{ "{\"o\":{\"p\":[1,2,{}]},\"b\":\"c\"}", "b", 1, "c" },
	{ "{\"a\":[]}",				"a", 0, NULL },
	{ "{\"e\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "e", 1,
	    "\"\\/\b\f\n\r\t" },
	{ "{\"u\":\"\\u00e9\\u20ac\"}",	"u", 1, "\xc3\xa9\xe2\x82\xac" },
	{ "{\"u\":\"\\ud83d\\ude00\"}",		"u", 1, "\xf0\x9f\x98\x80" },
	{ "{\"u\":\"\xc3\xa9\"}",		"u", 1, "\xc3\xa9" },
	{ "{\"k\\u0061y\":\"v\"}",		"kay", 1, "v" },
	/* Hostile or malformed: the whole answer is refused. */
	{ "",					"a", -1, NULL },
	{ "[]",					"a", -1, NULL },
	{ "\"a\"",				"a", -1, NULL },
	{ "{\"a\":\"b\"",			"a", -1, NULL },
	{ "{\"a\":\"b\"}x",			"a", -1, NULL },
	{ "{\"a\":\"b\"}{}",			"a", -1, NULL },
	{ "{\"a\":\"b\",}",			"a", -1, NULL },
	{ "{,}",				"a", -1, NULL },
	{ "{\"a\" \"b\"}",			"a", -1, NULL },
	{ "{'a':'b'}",				"a", -1, NULL },
	{ "{a:\"b\"}",				"a", -1, NULL },
	{ "{\"a\":\"b\",\"a\":\"c\"}",		"a", -1, NULL },
	{ "{\"a\":\"b\nc\"}",			"a", -1, NULL },
	{ "{\"a\":\"\\u0000\"}",		"a", -1, NULL },
	{ "{\"a\":\"\\ud800\"}",		"a", -1, NULL },
	{ "{\"a\":\"\\udc00\"}",		"a", -1, NULL },
	{ "{\"a\":\"\\ud800\\u0041\"}",		"a", -1, NULL },
	{ "{\"a\":\"\\x41\"}",			"a", -1, NULL },
	{ "{\"a\":\"\\u12\"}",			"a", -1, NULL },
	{ "{\"a\":\"\\",			"a", -1, NULL },
	{ "{\"a\":\"\xc0\xaf\"}",		"a", -1, NULL },
	{ "{\"a\":\"\xed\xa0\x80\"}",		"a", -1, NULL },
	{ "{\"a\":\"\xff\"}",			"a", -1, NULL },
	{ "{\"a\":\"\xe2\x82\"}",		"a", -1, NULL },
	{ "{\"n\":01}",				"n", -1, NULL },
	{ "{\"n\":1.}",				"n", -1, NULL },
	{ "{\"n\":.5}",				"n", -1, NULL },
	{ "{\"n\":1e}",				"n", -1, NULL },
	{ "{\"n\":+1}",				"n", -1, NULL },
	{ "{\"n\":-}",				"n", -1, NULL },
	{ "{\"a\":tru}",			"a", -1, NULL },
	{ "{\"a\":nul}",			"a", -1, NULL },
	{ "{\"a\":[1,]}",			"a", -1, NULL },
	{ "{\"a\":[1 2]}",			"a", -1, NULL },
	{ "{\"a\":{\"b\"}}",			"a", -1, NULL },
	{ "{\"a\":]",				"a", -1, NULL },
	{ "{\"a\":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}", "a", -1, NULL },
};

START_TEST(test_get)
{
	char	*v = NULL;
	int	 rc;

	rc = get(get_cases[_i].json, strlen(get_cases[_i].json),
	    get_cases[_i].key, &v);
	ck_assert_int_eq(rc, get_cases[_i].want);
	if (rc > 0)
		ck_assert_str_eq(v, get_cases[_i].value);
	else
		ck_assert_ptr_null(v);
	free(v);
}
END_TEST

/* The length is the caller's: no reading past it, NULs included. */
START_TEST(test_get_bounds)
{
	static const char	 nul[] = "{\"a\":\"b\0c\"}";
	const char		*j = "{\"a\":\"bc\"}";
	char			*v = NULL;

	ck_assert_int_eq(get(j, strlen(j) - 1, "a", &v), -1);
	ck_assert_int_eq(get(j, 0, "a", &v), -1);
	ck_assert_int_eq(get(nul, sizeof(nul) - 1, "a", &v), -1);
	ck_assert_ptr_null(v);
}
END_TEST

/* Deep nesting inside the limit is fine; just past it is refused, and
 * a huge depth cannot exhaust the stack. */
START_TEST(test_get_depth)
{
	char	 buf[300000], *v = NULL;
	size_t	 i, n = 0;

	n += (size_t)snprintf(buf, sizeof(buf), "{\"a\":");
	for (i = 0; i < 14; i++)
		buf[n++] = '[';
	for (i = 0; i < 14; i++)
		buf[n++] = ']';
	buf[n++] = '}';
	ck_assert_int_eq(get(buf, n, "a", &v), 0);
	n = (size_t)snprintf(buf, sizeof(buf), "{\"a\":");
	for (i = 0; i < 100000; i++)
		buf[n++] = '[';
	ck_assert_int_eq(get(buf, n, "a", &v), -1);
}
END_TEST

/*
 * oauth_parse_answer()
 */

static const struct {
	int			 code;
	const char		*body;
	enum oauth_status	 want;
	const char		*token;		/* OAUTH_OK */
	const char		*refresh;	/* NULL: none */
	long long		 expires;
	const char		*reason;	/* substring, when not OK */
} ans_cases[] = {
	{ 200, "{\"access_token\":\"ya29.a0\",\"expires_in\":3599,"
	    "\"scope\":\"https://mail.google.com/\",\"token_type\":\"Bearer\"}",
	    OAUTH_OK, "ya29.a0", NULL, 3599, NULL },
	{ 200, "{\"access_token\":\"t\",\"refresh_token\":\"1//r\","
	    "\"expires_in\":\"60\",\"token_type\":\"bearer\"}",
	    OAUTH_OK, "t", "1//r", 60, NULL },
	{ 200, "{\"access_token\":\"t\"}", OAUTH_OK, "t", NULL, -1, NULL },
	{ 200, "{\"access_token\":\"t\",\"expires_in\":99999999}",
	    OAUTH_OK, "t", NULL, 86400, NULL },
	{ 200, "{\"access_token\":\"t\",\"token_type\":\"MAC\"}",
	    OAUTH_TEMPORARY, NULL, NULL, -1, "Bearer" },
	{ 200, "{\"access_token\":\"\"}", OAUTH_TEMPORARY, NULL, NULL, -1,
	    "access_token" },
	{ 200, "{\"access_token\":\"a b\"}", OAUTH_TEMPORARY, NULL, NULL, -1,
	    "access_token" },
	{ 200, "{\"access_token\":\"a\\u0001b\"}", OAUTH_TEMPORARY, NULL,
	    NULL, -1, "access_token" },
	{ 200, "{\"access_token\":42}", OAUTH_TEMPORARY, NULL, NULL, -1,
	    "access_token" },
	{ 200, "{\"token_type\":\"Bearer\"}", OAUTH_TEMPORARY, NULL, NULL,
	    -1, "access_token" },
	{ 200, "<html>", OAUTH_TEMPORARY, NULL, NULL, -1, "access_token" },
	{ 200, "{\"access_token\":\"t\",\"expires_in\":-5}",
	    OAUTH_TEMPORARY, NULL, NULL, -1, "expires_in" },
	{ 200, "{\"access_token\":\"t\",\"expires_in\":1.5}",
	    OAUTH_TEMPORARY, NULL, NULL, -1, "expires_in" },
	{ 200, "{\"access_token\":\"t\",\"refresh_token\":\"a\\nb\"}",
	    OAUTH_TEMPORARY, NULL, NULL, -1, "malformed" },
	{ 400, "{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"Token has been expired or revoked.\"}", OAUTH_REJECTED_GRANT,
	    NULL, NULL, -1, "OAuth refresh token rejected (invalid_grant: "
	    "Token has been expired or revoked.): run smartrelayctl "
	    "oauth-setup to re-consent" },
	{ 401, "{\"error\":\"invalid_client\",\"error_description\":"
	    "\"Unauthorized\"}", OAUTH_REJECTED_CLIENT, NULL, NULL, -1,
	    "oauth_client_id" },
	{ 400, "{\"error\":\"unauthorized_client\"}", OAUTH_REJECTED_CLIENT,
	    NULL,
	    NULL, -1, "unauthorized_client" },
	{ 400, "{\"error\":\"invalid_request\"}", OAUTH_TEMPORARY, NULL,
	    NULL, -1, "HTTP 400 (invalid_request)" },
	{ 500, "{\"error\":\"invalid_grant\"}", OAUTH_TEMPORARY, NULL, NULL,
	    -1, "HTTP 500" },
	{ 503, "Service Unavailable", OAUTH_TEMPORARY, NULL, NULL, -1,
	    "HTTP 503" },
	{ 429, "", OAUTH_TEMPORARY, NULL, NULL, -1, "HTTP 429" },
	{ 400, "{\"error\":\"invalid_grant\",\"error_description\":"
	    "\"x\\u001b[2Jy\"}", OAUTH_REJECTED_GRANT, NULL, NULL, -1,
	    "x\\x1b[2Jy" },
	{ 200, "{\"access_token\":\"t\",\"access_token\":\"u\"}",
	    OAUTH_TEMPORARY, NULL, NULL, -1, "access_token" },
};

START_TEST(test_answer)
{
	struct oauth_answer	a;
	enum oauth_status	st;

	memset(&a, 0, sizeof(a));
	st = oauth_parse_answer(ans_cases[_i].code, ans_cases[_i].body,
	    strlen(ans_cases[_i].body), &a);
	ck_assert_int_eq(st, ans_cases[_i].want);
	ck_assert_int_eq(a.status, st);
	ck_assert_int_eq(a.http_code, ans_cases[_i].code);
	if (st == OAUTH_OK) {
		ck_assert_str_eq(a.access_token, ans_cases[_i].token);
		if (ans_cases[_i].refresh != NULL)
			ck_assert_str_eq(a.refresh_token,
			    ans_cases[_i].refresh);
		else
			ck_assert_ptr_null(a.refresh_token);
		ck_assert_int_eq(a.expires_in, ans_cases[_i].expires);
	} else {
		ck_assert_ptr_null(a.access_token);
		ck_assert_ptr_null(a.refresh_token);
		ck_assert_msg(strstr(a.reason, ans_cases[_i].reason) != NULL,
		    "reason \"%s\" lacks \"%s\"", a.reason,
		    ans_cases[_i].reason);
	}
	oauth_answer_clear(&a);
	ck_assert_ptr_null(a.access_token);
}
END_TEST

/*
 * oauth_write_token()
 */

static char	tmpdir[64];

static void
setup_dir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_oauth.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown_dir(void)
{
	char		 path[512];
	DIR		*d;
	struct dirent	*de;

	if ((d = opendir(tmpdir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmpdir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmpdir);
}

static size_t
count_entries(void)
{
	DIR		*d = opendir(tmpdir);
	struct dirent	*de;
	size_t		 n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

START_TEST(test_write)
{
	char		 path[512], err[512], buf[64];
	struct stat	 st;
	FILE		*f;
	mode_t		 old = umask(0);

	snprintf(path, sizeof(path), "%s/refresh-token", tmpdir);
	/* A world-readable file is replaced by a private one. */
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("old\n", f);
	fclose(f);
	chmod(path, 0644);
	ck_assert_int_eq(oauth_write_token(path, "1//new-token", err,
	    sizeof(err)), 0);
	umask(old);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	ck_assert_ptr_null(fgets(buf + strlen(buf), 8, f));
	fclose(f);
	ck_assert_str_eq(buf, "1//new-token\n");
	/* No temporary file is left behind. */
	ck_assert_uint_eq(count_entries(), 1);
}
END_TEST

START_TEST(test_write_fail)
{
	char	path[512], err[512] = "";

	snprintf(path, sizeof(path), "%s/missing/refresh-token", tmpdir);
	ck_assert_int_eq(oauth_write_token(path, "secret-token-value", err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "missing"));
	/* The reason never holds the token. */
	ck_assert_ptr_null(strstr(err, "secret-token-value"));
	ck_assert_uint_eq(count_entries(), 0);
}
END_TEST

static Suite *
oauth_suite(void)
{
	Suite	*s = suite_create("oauth");
	TCase	*tc;

	tc = tcase_create("json-get");
	tcase_add_loop_test(tc, test_get, 0, nitems(get_cases));
	tcase_add_test(tc, test_get_bounds);
	tcase_add_test(tc, test_get_depth);
	suite_add_tcase(s, tc);
	tc = tcase_create("answer");
	tcase_add_loop_test(tc, test_answer, 0, nitems(ans_cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("write-token");
	tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
	tcase_add_test(tc, test_write);
	tcase_add_test(tc, test_write_fail);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(oauth_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
