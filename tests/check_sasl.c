/*
 * check_sasl.c - unit tests for the AUTH PLAIN/LOGIN/XOAUTH2 messages,
 * their base64 codec and the password file reader (the step functions
 * have check_saslstep.c).
 *
 * Encodings are checked against fixed vectors (RFC 4616 §4, RFC 4648
 * §10) computed independently of OpenSSL.  Password files live in a
 * fresh mkdtemp() directory per test, removed again at the end.
 */
#include "config.h"

#include "sasl.h"

#include <sys/stat.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define B64	(&sasl_b64_openssl)

/*
 * sasl_choose()
 */

static const struct {
	const char	*mechs;
	enum sasl_mech	 want;
} choose_cases[] = {
	{ "PLAIN LOGIN",		SASL_PLAIN },
	{ "LOGIN PLAIN XOAUTH2",	SASL_PLAIN },
	{ "login",			SASL_LOGIN },
	{ "plain",			SASL_PLAIN },
	{ "XOAUTH2",			SASL_NONE },
	{ "",				SASL_NONE },
	{ "   ",			SASL_NONE },
	{ "CRAM-MD5 LOGIN",		SASL_LOGIN },
	{ "LOGINX",			SASL_NONE },
	{ "XPLAIN PLAINX",		SASL_NONE },
	{ "CRAM-MD5  XOAUTH2 Login ",	SASL_LOGIN },
	{ "XOAUTH2 pLaIn",		SASL_PLAIN },
};

START_TEST(test_choose)
{
	ck_assert_int_eq(sasl_choose(choose_cases[_i].mechs),
	    choose_cases[_i].want);
}
END_TEST

START_TEST(test_choose_null)
{
	ck_assert_int_eq(sasl_choose(NULL), SASL_NONE);
}
END_TEST

/*
 * sasl_plain()
 */

static const struct {
	const char	*user;
	const char	*pass;
	const char	*want;
} plain_cases[] = {
	/* RFC 4616 §4 example, with an empty authzid. */
	{ "tim", "tanstaaftanstaaf",	"AHRpbQB0YW5zdGFhZnRhbnN0YWFm" },
	{ "alice@example.org", "app pass word",
	    "AGFsaWNlQGV4YW1wbGUub3JnAGFwcCBwYXNzIHdvcmQ=" },
	{ "", "x",			"AAB4" },
	{ "u", "",			"AHUA" },
};

START_TEST(test_plain)
{
	char	*s = sasl_plain(B64, plain_cases[_i].user,
	    plain_cases[_i].pass);

	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, plain_cases[_i].want);
	str_wipe_free(s);
}
END_TEST

/* 2 KiB of user and password together is the limit, not more. */
START_TEST(test_plain_limit)
{
	char	user[1100], pass[1100];
	char	*s;

	memset(user, 'u', sizeof(user));
	memset(pass, 'p', sizeof(pass));
	user[1024] = '\0';
	pass[1024] = '\0';
	s = sasl_plain(B64, user, pass);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(strlen(s), (2048 + 2 + 2) / 3 * 4);
	str_wipe_free(s);
	pass[1025] = '\0';
	pass[1024] = 'p';
	ck_assert_ptr_null(sasl_plain(B64, user, pass));
	str_wipe_free(NULL);
}
END_TEST

/*
 * sasl_encode() and sasl_unbase64()
 */

/* RFC 4648 §10 test vectors, plus the AUTH LOGIN prompts. */
static const struct {
	const char	*plain;
	const char	*b64;
} b64_cases[] = {
	{ "",		"" },
	{ "f",		"Zg==" },
	{ "fo",		"Zm8=" },
	{ "foo",	"Zm9v" },
	{ "foob",	"Zm9vYg==" },
	{ "fooba",	"Zm9vYmE=" },
	{ "foobar",	"Zm9vYmFy" },
	{ "Username:",	"VXNlcm5hbWU6" },
	{ "Password:",	"UGFzc3dvcmQ6" },
};

START_TEST(test_base64)
{
	char	*enc = sasl_encode(b64_cases[_i].plain,
	    strlen(b64_cases[_i].plain));
	char	 dec[64];
	int	 n;

	ck_assert_ptr_nonnull(enc);
	ck_assert_str_eq(enc, b64_cases[_i].b64);
	memset(dec, 'X', sizeof(dec));
	n = sasl_unbase64(enc, dec, sizeof(dec));
	ck_assert_int_eq(n, (int)strlen(b64_cases[_i].plain));
	ck_assert_str_eq(dec, b64_cases[_i].plain);
	str_wipe_free(enc);
}
END_TEST

/* The padding octets must not be counted, and binary data (NULs
 * included) must come back exactly. */
START_TEST(test_base64_binary)
{
	unsigned char	in[256], out[300];
	char		*enc;
	int		 n;
	size_t		 len;

	for (len = 0; len < 8; len++) {
		size_t	i;

		for (i = 0; i < sizeof(in); i++)
			in[i] = (unsigned char)(255 - i);
		/* Encode the NUL-free tail. */
		in[sizeof(in) - 1 - len] = '\0';
		enc = sasl_encode(in, strlen((const char *)in));
		n = sasl_unbase64(enc, (char *)out, sizeof(out));
		ck_assert_int_eq(n, (int)(sizeof(in) - 1 - len));
		ck_assert_mem_eq(out, in, (size_t)n);
		str_wipe_free(enc);
	}
	/* "AAB4" is \0 \0 x: NULs survive the decode. */
	n = sasl_unbase64("AAB4", (char *)out, sizeof(out));
	ck_assert_int_eq(n, 3);
	ck_assert_mem_eq(out, "\0\0x", 3);
}
END_TEST

static const char *const bad_b64[] = {
	"V",			/* not a multiple of 4 */
	"VXN",
	"VXNlcm5hbWU",
	"VX=l",			/* '=' in the middle */
	"=AAA",
	"Zg===",		/* too much padding */
	"Z===",
	"====",
	"VXNl cm5h",		/* space */
	"VXNlcm5hbWU6\r\n",	/* line end */
	" VXNlcm5hbWU6",
	"VXNl*m5hbWU6",		/* outside the alphabet */
	"VXNl-m5hbWU6",		/* base64url is not base64 */
	"VXNl_m5hbWU6",
};

START_TEST(test_unbase64_bad)
{
	char	out[64];

	ck_assert_int_eq(sasl_unbase64(bad_b64[_i], out, sizeof(out)), -1);
}
END_TEST

/* "Username:" is 9 octets: it needs 10 with the NUL. */
START_TEST(test_unbase64_room)
{
	char	out[10];

	ck_assert_int_eq(sasl_unbase64("VXNlcm5hbWU6", out, 10), 9);
	ck_assert_str_eq(out, "Username:");
	ck_assert_int_eq(sasl_unbase64("VXNlcm5hbWU6", out, 9), -1);
	ck_assert_int_eq(sasl_unbase64("VXNlcm5hbWU6", out, 0), -1);
	ck_assert_int_eq(sasl_unbase64("", out, 1), 0);
	ck_assert_str_eq(out, "");
}
END_TEST

/*
 * sasl_read_password()
 */

/* A temporary directory and the password file path in it. */
struct pwdir {
	char	dir[64];
	char	path[128];
};

static void
pwdir_make(struct pwdir *d)
{
	snprintf(d->dir, sizeof(d->dir), "/tmp/check_sasl.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(d->dir));
	snprintf(d->path, sizeof(d->path), "%s/password", d->dir);
}

static void
pwdir_remove(struct pwdir *d)
{
	char	other[160];

	snprintf(other, sizeof(other), "%s/real", d->dir);
	unlink(other);
	if (unlink(d->path) == -1)
		rmdir(d->path);
	ck_assert_int_eq(rmdir(d->dir), 0);
}

/* Writes <len> octets of <text> to <path> with exactly <mode>. */
static void
pw_write(const char *path, const char *text, size_t len, mode_t mode)
{
	int	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

static const struct {
	const char	*text;		/* NULL: PW_BIG octets of 'a' */
	mode_t		 mode;
	const char	*want;		/* NULL: refused */
	const char	*reason;	/* a word of the refusal */
} pw_cases[] = {
	{ "secret\n",		0600,	"secret",	NULL },
	{ "secret\n",		0400,	"secret",	NULL },
	{ "secret\n",		0640,	"secret",	NULL },
	{ "secret",		0600,	"secret",	NULL },
	{ "secret\r\n",		0600,	"secret",	NULL },
	{ "first\nsecond\n",	0600,	"first",	NULL },
	{ "with space \t\n",	0600,	"with space \t", NULL },
	{ "a\rb\r\n",		0600,	"a\rb",		NULL },
	{ "secret\n",		0644,	NULL,		"readable by others" },
	{ "secret\n",		0604,	NULL,		"chmod 0600" },
	{ "secret\n",		0602,	NULL,		"writable by others" },
	{ "secret\n",		0620,	NULL,		"by its group" },
	{ "secret\n",		0660,	NULL,		"group" },
	{ "",			0600,	NULL,		"empty" },
	{ "\n",			0600,	NULL,		"empty" },
	{ "\r\nsecret\n",	0600,	NULL,		"empty" },
	{ NULL,			0600,	NULL,		"over" },
};

#define PW_BIG	1025

START_TEST(test_password)
{
	struct pwdir	 d;
	char		 big[PW_BIG], err[256] = "";
	const char	*text = pw_cases[_i].text;
	char		*pass;

	pwdir_make(&d);
	memset(big, 'a', sizeof(big));
	if (text != NULL)
		pw_write(d.path, text, strlen(text), pw_cases[_i].mode);
	else
		pw_write(d.path, big, sizeof(big), pw_cases[_i].mode);
	pass = sasl_read_password(d.path, err, sizeof(err));
	if (pw_cases[_i].want != NULL) {
		ck_assert_ptr_nonnull(pass);
		ck_assert_str_eq(pass, pw_cases[_i].want);
	} else {
		ck_assert_ptr_null(pass);
		ck_assert_ptr_nonnull(strstr(err, pw_cases[_i].reason));
		/* The admin is told which file. */
		ck_assert_ptr_nonnull(strstr(err, d.path));
	}
	str_wipe_free(pass);
	pwdir_remove(&d);
}
END_TEST

/* Exactly 1 KiB is fine; the mode text names the octal mode. */
START_TEST(test_password_edges)
{
	struct pwdir	 d;
	char		 big[1024], err[256] = "";
	char		*pass;

	pwdir_make(&d);
	memset(big, 'b', sizeof(big));
	pw_write(d.path, big, sizeof(big), 0600);
	pass = sasl_read_password(d.path, err, sizeof(err));
	ck_assert_ptr_nonnull(pass);
	ck_assert_uint_eq(strlen(pass), sizeof(big));
	str_wipe_free(pass);
	ck_assert_int_eq(chmod(d.path, 0644), 0);
	ck_assert_ptr_null(sasl_read_password(d.path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "(mode 0644)"));
	/* A NULL or tiny error buffer is fine. */
	ck_assert_ptr_null(sasl_read_password(d.path, NULL, 0));
	ck_assert_ptr_null(sasl_read_password(d.path, err, 1));
	ck_assert_str_eq(err, "");
	pwdir_remove(&d);
}
END_TEST

START_TEST(test_password_symlink)
{
	struct pwdir	 d;
	char		 real[160], err[256] = "";

	pwdir_make(&d);
	snprintf(real, sizeof(real), "%s/real", d.dir);
	pw_write(real, "secret\n", 7, 0600);
	ck_assert_int_eq(symlink(real, d.path), 0);
	ck_assert_ptr_null(sasl_read_password(d.path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "symbolic link"));
	pwdir_remove(&d);
}
END_TEST

START_TEST(test_password_dir)
{
	struct pwdir	 d;
	char		 err[256] = "";

	pwdir_make(&d);
	ck_assert_int_eq(mkdir(d.path, 0700), 0);
	ck_assert_ptr_null(sasl_read_password(d.path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	pwdir_remove(&d);
}
END_TEST

/* A FIFO must be refused, not block the reader forever. */
START_TEST(test_password_fifo)
{
	struct pwdir	 d;
	char		 err[256] = "";

	pwdir_make(&d);
	ck_assert_int_eq(mkfifo(d.path, 0600), 0);
	ck_assert_ptr_null(sasl_read_password(d.path, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	pwdir_remove(&d);
}
END_TEST

START_TEST(test_password_missing)
{
	char	err[256] = "";

	ck_assert_ptr_null(sasl_read_password("/nonexistent/smartrelay/pw",
	    err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/smartrelay/pw"));
	ck_assert_ptr_nonnull(strstr(err, strerror(ENOENT)));
}
END_TEST

/*
 * sasl_offers() and sasl_xoauth2()
 */

static const struct {
	const char	*mechs;
	enum sasl_mech	 mech;
	int		 want;
} offers_cases[] = {
	{ "LOGIN PLAIN XOAUTH2",	SASL_XOAUTH2,	1 },
	{ "xoauth2",			SASL_XOAUTH2,	1 },
	{ "PLAIN LOGIN",		SASL_XOAUTH2,	0 },
	{ "XOAUTH2X OAUTHBEARER",	SASL_XOAUTH2,	0 },
	{ "PLAIN LOGIN",		SASL_LOGIN,	1 },
	{ "XOAUTH2",			SASL_PLAIN,	0 },
	{ " PLAIN ",			SASL_PLAIN,	1 },
	{ "",				SASL_PLAIN,	0 },
	{ "PLAIN",			SASL_NONE,	0 },
};

START_TEST(test_offers)
{
	ck_assert_int_eq(sasl_offers(offers_cases[_i].mechs,
	    offers_cases[_i].mech), offers_cases[_i].want);
	ck_assert(!sasl_offers(NULL, SASL_PLAIN));
}
END_TEST

START_TEST(test_xoauth2)
{
	char	*s;

	/* The example of Google's "OAuth 2.0 Mechanism" page. */
	s = sasl_xoauth2(B64, "someuser@example.com",
	    "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJl"
	    "YXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMj"
	    "l0Q2cBAQ==");
	str_wipe_free(s);
}
END_TEST

START_TEST(test_xoauth2_bad)
{
	char	big[9000];

	/* A separator or line end inside either would forge the message. */
	ck_assert_ptr_null(sasl_xoauth2(B64, "a@b", "tok\001auth=x"));
	ck_assert_ptr_null(sasl_xoauth2(B64, "a@b\001", "tok"));
	ck_assert_ptr_null(sasl_xoauth2(B64, "a@b", "tok\r\nQUIT"));
	ck_assert_ptr_null(sasl_xoauth2(B64, "", "tok"));
	ck_assert_ptr_null(sasl_xoauth2(B64, "a@b", ""));
	ck_assert_ptr_null(sasl_xoauth2(B64, "a@b", "t\xc3\xa9"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_ptr_null(sasl_xoauth2(B64, "a@b", big));
}
END_TEST

static Suite *
sasl_suite(void)
{
	Suite	*s = suite_create("sasl");
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
	ADD_LOOP("choose", test_choose, nitems(choose_cases));
	ADD_CASE("choose-null", test_choose_null);
	ADD_LOOP("offers", test_offers, nitems(offers_cases));
	ADD_CASE("xoauth2", test_xoauth2);
	ADD_CASE("xoauth2-bad", test_xoauth2_bad);
	ADD_LOOP("plain", test_plain, nitems(plain_cases));
	ADD_CASE("plain-limit", test_plain_limit);
	ADD_LOOP("base64", test_base64, nitems(b64_cases));
	ADD_CASE("base64-binary", test_base64_binary);
	ADD_LOOP("unbase64-bad", test_unbase64_bad, nitems(bad_b64));
	ADD_CASE("unbase64-room", test_unbase64_room);
	ADD_LOOP("password", test_password, nitems(pw_cases));
	ADD_CASE("password-edges", test_password_edges);
	ADD_CASE("password-symlink", test_password_symlink);
	ADD_CASE("password-dir", test_password_dir);
	ADD_CASE("password-fifo", test_password_fifo);
	ADD_CASE("password-missing", test_password_missing);
#undef ADD_CASE
#undef ADD_LOOP
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(sasl_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
