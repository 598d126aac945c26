/*
 * check_users.c - unit tests for the inbound AUTH accounts file, the
 * password check and the AUTH PLAIN decoder.
 *
 * Hashes were made with "openssl passwd -6 -salt ...", independently
 * of the code under test.  Files live in a fresh mkdtemp() directory.
 */
#include "config.h"

#include "users.h"

#include <sys/stat.h>

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* "correct horse" and "p:w with spaces". */
#define HASH_ALICE "$6$saltsaltsalt12$mjSM2626qhMaW5u0XY9B.eUowxBTHFGFmKI" \
	"tlYUDfrGSpWAfFkyi1eX8eITV4yDhwtaw4HR80iGPmEyidcGRT/"
#define HASH_BOB "$6$0ther5alt$5glNRQPzzsXOExqSFpc0JWqC7KJn7vxEaaEluXsCdK" \
	"adpp4rj0jW4L6R4KeyOT4wkO3RN1wE9MUYW6sqKLf.M."

#define GOOD_FILE "# LAN accounts\n" \
	"\n" \
	"alice:" HASH_ALICE "\r\n" \
	"  \n" \
	"printer@lan:" HASH_BOB "  \n"

static struct users *
parse(const char *text, char *err, size_t errsz)
{
	return users_parse(text, strlen(text), "users", err, errsz);
}

START_TEST(test_parse_good)
{
	char		 err[256] = "";
	struct users	*u = parse(GOOD_FILE, err, sizeof(err));

	ck_assert_msg(u != NULL, "%s", err);
	ck_assert_uint_eq(users_count(u), 2);
	users_free(u);
	/* No trailing newline, and an empty file. */
	u = parse("alice:" HASH_ALICE, err, sizeof(err));
	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(users_count(u), 1);
	users_free(u);
	u = parse("", err, sizeof(err));
	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(users_count(u), 0);
	users_free(u);
	users_free(NULL);
}
END_TEST

static const struct {
	const char	*text;
	const char	*want_err;	/* substring of the message */
} bad_files[] = {
	{ "alice\n",				"users:1: expected" },
	{ "\n:" HASH_ALICE "\n",		"users:2: bad user name" },
	{ "al ice:" HASH_ALICE "\n",		"bad user name" },
	{ "alice:" HASH_ALICE "\nalice:" HASH_BOB "\n", "users:2: user "
	    "\"alice\" appears twice" },
	{ "alice:\n",				"not a crypt(3) hash" },
	{ "alice:secret\n",			"not a crypt(3) hash" },
	{ "alice:abcdefghijklm\n",		"not a crypt(3) hash" },
	{ "alice:$1$abc$OGyl6dDvZCDiGmIVbeuCq/\n", "legacy" },
	{ "alice:$zz$whatever\n",		"does not support" },
};

START_TEST(test_parse_bad)
{
	char		 err[256] = "";
	struct users	*u = parse(bad_files[_i].text, err, sizeof(err));

	ck_assert_ptr_null(u);
	ck_assert_msg(strstr(err, bad_files[_i].want_err) != NULL,
	    "case %d: \"%s\" lacks \"%s\"", _i, err, bad_files[_i].want_err);
}
END_TEST

START_TEST(test_parse_nul)
{
	static const char	 text[] = "alice:$6$ab\0c\n";
	char			 err[256] = "";

	ck_assert_ptr_null(users_parse(text, sizeof(text) - 1, "users", err,
	    sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
}
END_TEST

static const struct {
	const char	*name;
	const char	*pass;
	bool		 want;
} verify_cases[] = {
	{ "alice",		"correct horse",	true },
	{ "printer@lan",	"p:w with spaces",	true },
	{ "alice",		"correct horse ",	false },
	{ "alice",		"Correct horse",	false },
	{ "alice",		"",			false },
	{ "alice",		"p:w with spaces",	false },
	{ "printer@lan",	"correct horse",	false },
	{ "Alice",		"correct horse",	false },
	{ "mallory",		"correct horse",	false },
	{ "",			"correct horse",	false },
};

START_TEST(test_verify)
{
	char		 err[256] = "";
	struct users	*u = parse(GOOD_FILE, err, sizeof(err));

	ck_assert_ptr_nonnull(u);
	ck_assert_int_eq(users_verify(u, verify_cases[_i].name,
	    verify_cases[_i].pass), verify_cases[_i].want);
	users_free(u);
}
END_TEST

START_TEST(test_verify_empty_file)
{
	char		 err[256] = "";
	struct users	*u = parse("# nobody yet\n", err, sizeof(err));

	ck_assert_ptr_nonnull(u);
	ck_assert(!users_verify(u, "alice", "correct horse"));
	ck_assert(!users_verify(u, "", ""));
	users_free(u);
}
END_TEST

/* Writes <text> to <dir>/users with <mode>; returns the path. */
static char *
write_file(const char *dir, const char *text, mode_t mode)
{
	char	*path = xmalloc(strlen(dir) + 8);
	int	 fd;

	sprintf(path, "%s/users", dir);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

START_TEST(test_load)
{
	char		 tmpl[] = "/tmp/check_users.XXXXXX", err[512] = "";
	char		*dir = mkdtemp(tmpl), *path, *link;
	struct users	*u;

	ck_assert_ptr_nonnull(dir);
	path = write_file(dir, GOOD_FILE, 0600);
	u = users_load(path, err, sizeof(err));
	ck_assert_msg(u != NULL, "%s", err);
	ck_assert(users_verify(u, "alice", "correct horse"));
	users_free(u);
	/* 0640 (root:smartrelay) is fine, 0644 and 0660 are not. */
	free(write_file(dir, GOOD_FILE, 0640));
	ck_assert_ptr_nonnull(u = users_load(path, err, sizeof(err)));
	users_free(u);
	free(write_file(dir, GOOD_FILE, 0644));
	ck_assert_ptr_null(users_load(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "readable by others"));
	free(write_file(dir, GOOD_FILE, 0660));
	ck_assert_ptr_null(users_load(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "writable by its group"));
	/* A symbolic link and a missing file. */
	free(write_file(dir, GOOD_FILE, 0600));
	link = xmalloc(strlen(dir) + 8);
	sprintf(link, "%s/link", dir);
	ck_assert_int_eq(symlink(path, link), 0);
	ck_assert_ptr_null(users_load(link, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "symbolic link"));
	unlink(link);
	unlink(path);
	ck_assert_ptr_null(users_load(path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "cannot open"));
	/* A directory. */
	ck_assert_ptr_null(users_load(dir, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	rmdir(dir);
	free(link);
	free(path);
}
END_TEST

static Suite *
users_suite(void)
{
	Suite	*s = suite_create("users");
	TCase	*tc;

#define ADD_CASE(name, fn) do {						\
	tc = tcase_create(name);					\
	tcase_add_test(tc, fn);						\
	suite_add_tcase(s, tc);						\
} while (0)
#define ADD_LOOP(name, fn, n) do {					\
	tc = tcase_create(name);					\
	tcase_add_loop_test(tc, fn, 0, n);				\
	suite_add_tcase(s, tc);						\
} while (0)
	ADD_CASE("parse-good", test_parse_good);
	ADD_LOOP("parse-bad", test_parse_bad, nitems(bad_files));
	ADD_CASE("parse-nul", test_parse_nul);
	ADD_LOOP("verify", test_verify, nitems(verify_cases));
	ADD_CASE("verify-empty-file", test_verify_empty_file);
	ADD_CASE("load", test_load);
#undef ADD_CASE
#undef ADD_LOOP
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(users_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
