/*
 * check_saslstep.c - the AUTH step functions (lib/saslstep.c) driven
 * through whole exchanges from tables, with no session, relay or
 * socket: good exchanges, bad base64, "*" cancels, over-long lines,
 * steps in the wrong state, and XOAUTH2's error challenge.
 *
 * The codec is net/sasl.c's OpenSSL one, the one the daemon uses.
 */
#include "config.h"

#include "saslstep.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sasl.h"
#include "util.h"

#define B64	(&sasl_b64_openssl)

/*
 * Server side.  Step 0 starts the exchange with <in> as the arguments
 * of AUTH; each later step feeds <in> as a response line, except "!ok"
 * and "!no" (the password check's answer) and "!long" (a line over the
 * limit).  A NULL <in> ends the list.
 */
struct server_step {
	const char			*in;
	enum sasl_server_outcome	 want;
	const char			*reply;	/* NULL for CHECK */
	bool				 error;
};

#define S_CHECK		SASL_SERVER_CHECK, NULL, false
#define S_OK		SASL_SERVER_OK, "235 2.7.0 Authentication successful", \
			false
#define S_DENIED	SASL_SERVER_FAIL, \
			"535 5.7.8 Authentication credentials invalid", true
#define S_UNDECODABLE	SASL_SERVER_FAIL, "501 5.5.2 Cannot decode response", \
			true
#define S_USER		SASL_SERVER_CONTINUE, "334 VXNlcm5hbWU6", false
#define S_PASS		SASL_SERVER_CONTINUE, "334 UGFzc3dvcmQ6", false
#define S_ABORTED	SASL_SERVER_FAIL, "501 5.7.0 Authentication aborted", \
			false
#define S_SEQUENCE	SASL_SERVER_FAIL, \
			"503 5.5.1 Bad sequence of commands", true
#define S_SYNTAX	SASL_SERVER_FAIL, \
			"501 5.5.4 Syntax: AUTH mechanism [initial-response]", \
			true

/* base64("\0alice\0correct horse") and its parts. */
#define PLAIN_ALICE	"AGFsaWNlAGNvcnJlY3QgaG9yc2U="
#define B64_ALICE	"YWxpY2U="
#define B64_HORSE	"Y29ycmVjdCBob3JzZQ=="

static const struct {
	const char		*name;
	const char		*user;	/* at CHECK */
	const char		*pass;
	struct server_step	 steps[6];
} server_cases[] = {
	{ "plain-initial", "alice", "correct horse", {
	    { "PLAIN " PLAIN_ALICE, S_CHECK }, { "!ok", S_OK } } },
	{ "plain-lowercase-denied", "alice", "correct horse", {
	    { "plain " PLAIN_ALICE, S_CHECK }, { "!no", S_DENIED } } },
	{ "plain-authzid-self", "alice", "correct horse", {
	    { "PLAIN YWxpY2UAYWxpY2UAY29ycmVjdCBob3JzZQ==", S_CHECK },
	    { "!ok", S_OK } } },
	{ "plain-334", "alice", "correct horse", {
	    { "PLAIN", SASL_SERVER_CONTINUE, "334 ", false },
	    { PLAIN_ALICE, S_CHECK }, { "!ok", S_OK } } },
	{ "plain-empty-initial", NULL, NULL, {
	    { "PLAIN =", S_DENIED } } },
	{ "plain-bad-base64", NULL, NULL, {
	    { "PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U", S_UNDECODABLE } } },
	{ "plain-bad-alphabet", NULL, NULL, {
	    { "PLAIN", SASL_SERVER_CONTINUE, "334 ", false },
	    { "!!!!", S_UNDECODABLE } } },
	/* Acting for someone else; empty password, empty name, one NUL
	 * only, a NUL in the password. */
	{ "plain-authzid-other", NULL, NULL, {
	    { "PLAIN Ym9iAGFsaWNlAGNvcnJlY3QgaG9yc2U=", S_DENIED } } },
	{ "plain-no-pass", NULL, NULL, {
	    { "PLAIN AGFsaWNlAA==", S_DENIED } } },
	{ "plain-no-name", NULL, NULL, { { "PLAIN AABwdw==", S_DENIED } } },
	{ "plain-one-nul", NULL, NULL, {
	    { "PLAIN YWxpY2UAY29ycmVjdCBob3JzZQ==", S_DENIED } } },
	{ "plain-nul-in-pass", NULL, NULL, {
	    { "PLAIN AGFsaWNlAHB3AHg=", S_DENIED } } },
	{ "plain-cancel", NULL, NULL, {
	    { "PLAIN", SASL_SERVER_CONTINUE, "334 ", false },
	    { "*", S_ABORTED } } },
	{ "plain-too-long", NULL, NULL, {
	    { "PLAIN", SASL_SERVER_CONTINUE, "334 ", false },
	    { "!long", SASL_SERVER_FAIL, "500 5.5.6 Authentication "
	    "exchange line is too long", true } } },
	{ "login", "alice", "correct horse", {
	    { "LOGIN", S_USER }, { B64_ALICE, S_PASS },
	    { B64_HORSE, S_CHECK }, { "!ok", S_OK } } },
	{ "login-initial", "alice", "correct horse", {
	    { "LOGIN " B64_ALICE, S_PASS }, { B64_HORSE, S_CHECK },
	    { "!no", S_DENIED } } },
	{ "login-cancel-user", NULL, NULL, {
	    { "LOGIN", S_USER }, { "*", S_ABORTED } } },
	{ "login-cancel-pass", NULL, NULL, {
	    { "LOGIN", S_USER }, { B64_ALICE, S_PASS }, { "*", S_ABORTED } } },
	{ "login-empty-user", NULL, NULL, {
	    { "LOGIN", S_USER }, { "", S_UNDECODABLE } } },
	{ "login-bad-pass", NULL, NULL, {
	    { "LOGIN", S_USER }, { B64_ALICE, S_PASS },
	    { "Y29ycmVjdCBob3JzZQ", S_UNDECODABLE } } },
	{ "login-too-long", NULL, NULL, {
	    { "LOGIN", S_USER }, { B64_ALICE, S_PASS },
	    { "!long", SASL_SERVER_FAIL, "500 5.5.6 Authentication "
	    "exchange line is too long", true } } },
	/* "*" is a cancel only as a response, not as initial response. */
	{ "login-star-initial", NULL, NULL, {
	    { "LOGIN *", S_UNDECODABLE } } },
	{ "syntax-empty", NULL, NULL, { { "", S_SYNTAX } } },
	{ "syntax-two-words", NULL, NULL, { { "PLAIN a b", S_SYNTAX } } },
	{ "syntax-long-mech", NULL, NULL, {
	    { "ABCDEFGHIJKLMNOPQ", S_SYNTAX } } },
	{ "unknown-mech", NULL, NULL, {
	    { "CRAM-MD5", SASL_SERVER_FAIL,
	    "504 5.5.4 Unrecognized authentication type", true } } },
	/* Wrong steps: a check answer nobody asked for, a line after the
	 * end; neither changes the state. */
	{ "wrong-check-answer", "alice", "correct horse", {
	    { "LOGIN", S_USER }, { "!ok", S_SEQUENCE },
	    { B64_ALICE, S_PASS }, { B64_HORSE, S_CHECK },
	    { "!ok", S_OK }, { "!ok", S_SEQUENCE } } },
	{ "wrong-line-after-end", NULL, NULL, {
	    { "PLAIN", SASL_SERVER_CONTINUE, "334 ", false },
	    { "*", S_ABORTED }, { PLAIN_ALICE, S_SEQUENCE } } },
	{ "wrong-line-while-checking", "alice", "correct horse", {
	    { "PLAIN " PLAIN_ALICE, S_CHECK }, { PLAIN_ALICE, S_SEQUENCE },
	    { "!no", S_DENIED } } },
};

/* True when the <n> octets at <p> are all zero. */
static bool
all_zero(const char *p, size_t n)
{
	while (n-- > 0)
		if (*p++ != '\0')
			return false;
	return true;
}

START_TEST(test_server_exchange)
{
	const struct server_step	*steps = server_cases[_i].steps;
	struct sasl_server		 st;
	struct sasl_server_out		 out;
	size_t				 i;

	sasl_server_init(&st, B64);
	for (i = 0; i < nitems(server_cases[_i].steps) &&
	    steps[i].in != NULL; i++) {
		memset(&out, 0xa5, sizeof(out));
		if (i == 0)
			sasl_server_start(&st, steps[i].in, &out);
		else if (strcmp(steps[i].in, "!ok") == 0 ||
		    strcmp(steps[i].in, "!no") == 0)
			sasl_server_checked(&st, steps[i].in[1] == 'o', &out);
		else if (strcmp(steps[i].in, "!long") == 0)
			sasl_server_step(&st, NULL, &out);
		else
			sasl_server_step(&st, steps[i].in, &out);
		ck_assert_msg(out.outcome == steps[i].want,
		    "%s step %zu: outcome %d, want %d", server_cases[_i].name,
		    i, out.outcome, steps[i].want);
		ck_assert_int_eq(out.error, steps[i].error);
		if (steps[i].reply == NULL)
			ck_assert_ptr_null(out.reply);
		else
			ck_assert_str_eq(out.reply, steps[i].reply);
		if (out.outcome == SASL_SERVER_CHECK) {
			ck_assert_str_eq(st.name, server_cases[_i].user);
			ck_assert_str_eq(st.pass, server_cases[_i].pass);
			ck_assert_str_eq(st.mech, strncasecmp(steps[0].in,
			    "PLAIN", 5) == 0 ? "PLAIN" : "LOGIN");
		}
		if (out.outcome == SASL_SERVER_FAIL &&
		    strncmp(out.reply, "503", 3) != 0) {
			/* Nothing half-gathered is left behind. */
			ck_assert(all_zero(st.name, sizeof(st.name)));
			ck_assert(all_zero(st.pass, sizeof(st.pass)));
		}
		if (out.outcome == SASL_SERVER_OK) {
			/* The account stays; the password does not. */
			ck_assert_str_eq(st.name, server_cases[_i].user);
			ck_assert(all_zero(st.pass, sizeof(st.pass)));
		}
	}
	sasl_server_reset(&st);
	ck_assert(all_zero(st.name, sizeof(st.name)));
}
END_TEST

/* A name of 256 octets does not fit; 255 does. */
START_TEST(test_server_login_name_limit)
{
	struct sasl_server	 st;
	struct sasl_server_out	 out;
	char			 name[SASL_NAME_MAX + 2], *b64;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	sasl_server_init(&st, B64);
	b64 = sasl_encode(name, strlen(name));
	ck_assert_int_eq(sasl_server_start(&st, "LOGIN", &out),
	    SASL_SERVER_CONTINUE);
	ck_assert_int_eq(sasl_server_step(&st, b64, &out), SASL_SERVER_FAIL);
	ck_assert_str_eq(out.reply, "501 5.5.2 Cannot decode response");
	str_wipe_free(b64);
	b64 = sasl_encode(name, SASL_NAME_MAX);
	ck_assert_int_eq(sasl_server_start(&st, "LOGIN", &out),
	    SASL_SERVER_CONTINUE);
	ck_assert_int_eq(sasl_server_step(&st, b64, &out),
	    SASL_SERVER_CONTINUE);
	ck_assert_uint_eq(strlen(st.name), SASL_NAME_MAX);
	str_wipe_free(b64);
	sasl_server_reset(&st);
}
END_TEST

/*
 * Client side.  The start sends <start>; each step feeds <code> and
 * expects <want> and, for SEND, <line>.  A zero code ends the list.
 */
struct client_step {
	int				 code;
	enum sasl_client_outcome	 want;
	const char			*line;
	const char			*mask;
};

/* "\0tim\0tanstaaftanstaaf" (RFC 4616 section 4), and its parts. */
#define PLAIN_TIM	"AHRpbQB0YW5zdGFhZnRhbnN0YWFm"
#define XOAUTH2_TIM	"dXNlcj10aW0BYXV0aD1CZWFyZXIgeWEyOS50b2tlbgEB"

static const struct {
	const char		*name;
	enum sasl_mech		 mech;
	const char		*secret;
	enum sasl_client_outcome start;
	const char		*start_line;
	struct client_step	 steps[4];
} client_cases[] = {
	{ "plain", SASL_PLAIN, "tanstaaftanstaaf", SASL_CLIENT_SEND,
	    "AUTH PLAIN " PLAIN_TIM, { { 235, SASL_CLIENT_OK, NULL, NULL } } },
	{ "plain-535", SASL_PLAIN, "tanstaaftanstaaf", SASL_CLIENT_SEND,
	    "AUTH PLAIN " PLAIN_TIM,
	    { { 535, SASL_CLIENT_REFUSED, NULL, NULL } } },
	{ "plain-454", SASL_PLAIN, "tanstaaftanstaaf", SASL_CLIENT_SEND,
	    "AUTH PLAIN " PLAIN_TIM,
	    { { 454, SASL_CLIENT_TEMPFAIL, NULL, NULL } } },
	{ "plain-334", SASL_PLAIN, "tanstaaftanstaaf", SASL_CLIENT_SEND,
	    "AUTH PLAIN " PLAIN_TIM,
	    { { 334, SASL_CLIENT_REFUSED, NULL, NULL } } },
	{ "plain-250", SASL_PLAIN, "tanstaaftanstaaf", SASL_CLIENT_SEND,
	    "AUTH PLAIN " PLAIN_TIM,
	    { { 250, SASL_CLIENT_TEMPFAIL, NULL, NULL } } },
	{ "login", SASL_LOGIN, "tanstaaftanstaaf", SASL_CLIENT_SEND,
	    "AUTH LOGIN", {
	    { 334, SASL_CLIENT_SEND, "dGlt", "(username)" },
	    { 334, SASL_CLIENT_SEND, "dGFuc3RhYWZ0YW5zdGFhZg==",
	    "(password)" },
	    { 235, SASL_CLIENT_OK, NULL, NULL } } },
	{ "login-refused-user", SASL_LOGIN, "x", SASL_CLIENT_SEND,
	    "AUTH LOGIN", { { 504, SASL_CLIENT_REFUSED, NULL, NULL } } },
	{ "login-third-334", SASL_LOGIN, "x", SASL_CLIENT_SEND,
	    "AUTH LOGIN", {
	    { 334, SASL_CLIENT_SEND, "dGlt", "(username)" },
	    { 334, SASL_CLIENT_SEND, "eA==", "(password)" },
	    { 334, SASL_CLIENT_REFUSED, NULL, NULL } } },
	{ "xoauth2", SASL_XOAUTH2, "ya29.token", SASL_CLIENT_SEND,
	    "AUTH XOAUTH2 " XOAUTH2_TIM,
	    { { 235, SASL_CLIENT_OK, NULL, NULL } } },
	/* Gmail's error JSON as a 334, answered empty, then the 535. */
	{ "xoauth2-error-challenge", SASL_XOAUTH2, "ya29.token",
	    SASL_CLIENT_SEND, "AUTH XOAUTH2 " XOAUTH2_TIM, {
	    { 334, SASL_CLIENT_SEND, "",
	    "(empty answer to the error challenge)" },
	    { 535, SASL_CLIENT_TOKEN_REFUSED, NULL, NULL } } },
	{ "xoauth2-534", SASL_XOAUTH2, "ya29.token", SASL_CLIENT_SEND,
	    "AUTH XOAUTH2 " XOAUTH2_TIM,
	    { { 534, SASL_CLIENT_TOKEN_REFUSED, NULL, NULL } } },
	{ "xoauth2-second-challenge", SASL_XOAUTH2, "ya29.token",
	    SASL_CLIENT_SEND, "AUTH XOAUTH2 " XOAUTH2_TIM, {
	    { 334, SASL_CLIENT_SEND, "",
	    "(empty answer to the error challenge)" },
	    { 334, SASL_CLIENT_UNEXPECTED, NULL, NULL } } },
	{ "xoauth2-454", SASL_XOAUTH2, "ya29.token", SASL_CLIENT_SEND,
	    "AUTH XOAUTH2 " XOAUTH2_TIM,
	    { { 454, SASL_CLIENT_TEMPFAIL, NULL, NULL } } },
	{ "xoauth2-250", SASL_XOAUTH2, "ya29.token", SASL_CLIENT_SEND,
	    "AUTH XOAUTH2 " XOAUTH2_TIM,
	    { { 250, SASL_CLIENT_UNEXPECTED, NULL, NULL } } },
	{ "xoauth2-unsendable", SASL_XOAUTH2, "ya29\001auth=x",
	    SASL_CLIENT_UNSENDABLE, NULL, { { 0, 0, NULL, NULL } } },
	{ "none", SASL_NONE, "x", SASL_CLIENT_UNSENDABLE, NULL,
	    { { 0, 0, NULL, NULL } } },
	/* A reply after the end: nothing is running. */
	{ "wrong-step-after-ok", SASL_PLAIN, "tanstaaftanstaaf",
	    SASL_CLIENT_SEND, "AUTH PLAIN " PLAIN_TIM, {
	    { 235, SASL_CLIENT_OK, NULL, NULL },
	    { 334, SASL_CLIENT_UNEXPECTED, NULL, NULL } } },
};

START_TEST(test_client_exchange)
{
	const struct client_step	*steps = client_cases[_i].steps;
	struct sasl_client		 st;
	struct sasl_client_out		 out;
	size_t				 i;

	sasl_client_init(&st, B64);
	ck_assert_int_eq(sasl_client_start(&st, client_cases[_i].mech, "tim",
	    client_cases[_i].secret, &out), client_cases[_i].start);
	if (out.outcome == SASL_CLIENT_SEND) {
		ck_assert_str_eq(out.line, client_cases[_i].start_line);
		str_wipe_free(out.line);
	} else
		ck_assert_ptr_null(out.line);
	for (i = 0; i < nitems(client_cases[_i].steps) &&
	    steps[i].code != 0; i++) {
		sasl_client_step(&st, steps[i].code, &out);
		ck_assert_msg(out.outcome == steps[i].want,
		    "%s step %zu: outcome %d, want %d", client_cases[_i].name,
		    i, out.outcome, steps[i].want);
		if (out.outcome != SASL_CLIENT_SEND) {
			ck_assert_ptr_null(out.line);
			/* The exchange is over: the credentials are gone. */
			ck_assert_ptr_null(st.user);
			ck_assert_ptr_null(st.secret);
			continue;
		}
		ck_assert_str_eq(out.line, steps[i].line);
		ck_assert_str_eq(out.mask, steps[i].mask);
		str_wipe_free(out.line);
	}
	sasl_client_cleanup(&st);
}
END_TEST

/* A step with nothing sent, and a start that replaces an exchange. */
START_TEST(test_client_wrong_step)
{
	struct sasl_client	st;
	struct sasl_client_out	out;

	sasl_client_init(&st, B64);
	ck_assert_int_eq(sasl_client_step(&st, 235, &out),
	    SASL_CLIENT_UNEXPECTED);
	ck_assert_int_eq(sasl_client_start(&st, SASL_LOGIN, "tim", "pw",
	    &out), SASL_CLIENT_SEND);
	str_wipe_free(out.line);
	ck_assert_int_eq(sasl_client_start(&st, SASL_PLAIN, "tim",
	    "tanstaaftanstaaf", &out), SASL_CLIENT_SEND);
	ck_assert_str_eq(out.line, "AUTH PLAIN " PLAIN_TIM);
	/* LOGIN's copies went with the first exchange. */
	ck_assert_ptr_null(st.secret);
	str_wipe_free(out.line);
	sasl_client_cleanup(&st);
}
END_TEST

/* PLAIN over 2 KiB of credentials cannot be sent. */
START_TEST(test_client_too_long)
{
	struct sasl_client	 st;
	struct sasl_client_out	 out;
	char			 pass[2100];

	memset(pass, 'p', sizeof(pass) - 1);
	pass[sizeof(pass) - 1] = '\0';
	sasl_client_init(&st, B64);
	ck_assert_int_eq(sasl_client_start(&st, SASL_PLAIN, "tim", pass,
	    &out), SASL_CLIENT_UNSENDABLE);
	ck_assert_ptr_null(out.line);
	ck_assert_int_eq(st.state, SASL_CLIENT_IDLE);
}
END_TEST

static Suite *
saslstep_suite(void)
{
	Suite	*s = suite_create("saslstep");
	TCase	*tc;

	tc = tcase_create("server-exchange");
	tcase_add_loop_test(tc, test_server_exchange, 0,
	    nitems(server_cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("server-login-name-limit");
	tcase_add_test(tc, test_server_login_name_limit);
	suite_add_tcase(s, tc);
	tc = tcase_create("client-exchange");
	tcase_add_loop_test(tc, test_client_exchange, 0,
	    nitems(client_cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("client-wrong-step");
	tcase_add_test(tc, test_client_wrong_step);
	suite_add_tcase(s, tc);
	tc = tcase_create("client-too-long");
	tcase_add_test(tc, test_client_too_long);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(saslstep_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
