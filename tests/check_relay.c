/*
 * check_relay.c - the client-side state machine (relay.c) driven
 * through a bufferevent_pair against a scripted server, with no socket:
 * STARTTLS (a real handshake over the pair, with a certificate made for
 * the test), AUTH PLAIN and LOGIN, pipelined and one-by-one
 * transactions, dot-stuffing, and the outcome of each reply class at
 * each stage (greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, dot).
 */
#include "config.h"

#include "relay.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "bevtest.h"
#include "conf.h"
#include "envelope.h"
#include "tls.h"
#include "util.h"

#define WAIT_SECS	10
#define BODY_IN		"Subject: t\r\n\r\nhello\r\n.dot\r\n"
#define BODY_OUT	"Subject: t\r\n\r\nhello\r\n..dot\r\n"

/* One server step: a line starting with <expect> (NULL: the server
 * speaks first; "." reads a message body up to the final dot) gets
 * <reply>; <tls> starts the server's handshake once it is sent. */
struct step {
	const char	*expect;
	const char	*reply;
	bool		 tls;
};

#define GREET		{ NULL, "220 upstream.test ESMTP", false }
#define EHLO_PLAIN	{ "EHLO relay.test", "250-upstream.test\r\n" \
			  "250 STARTTLS", false }
#define STARTTLS	{ "STARTTLS", "220 2.0.0 go ahead", true }
#define EHLO_TLS	{ "EHLO relay.test", "250-upstream.test\r\n" \
			  "250 AUTH LOGIN PLAIN", false }
#define EHLO_TLS_PIPE	{ "EHLO relay.test", "250-upstream.test\r\n" \
			  "250-PIPELINING\r\n250 AUTH PLAIN", false }
#define AUTH_OK		{ "AUTH PLAIN ", "235 2.7.0 Accepted", false }
#define SETUP		GREET, EHLO_PLAIN, STARTTLS, EHLO_TLS, AUTH_OK
#define QUIT		{ "QUIT", "221 2.0.0 bye", false }
#define END		{ NULL, NULL, false }

enum want_kind {
	WANT_CLOSED,	/* closed() before ready() */
	WANT_DONE,	/* a message went through its transaction */
};

static const struct relay_case {
	const char		*name;
	const char		*auth;		/* upstream.auth */
	struct step		 script[14];
	enum want_kind		 kind;
	enum relay_status	 status;	/* of closed() or done() */
	enum relay_why		 why;		/* WANT_CLOSED */
	enum relay_stage	 stage;		/* WANT_CLOSED */
	enum envelope_rcpt_state rcpt;		/* WANT_DONE */
	bool			 body;		/* WANT_DONE: body sent */
} cases[] = {
	{ "greeting-554", "auto", { { NULL, "554 5.7.1 go away", false },
	    END }, WANT_CLOSED, RELAY_UNAVAILABLE, RELAY_WHY_GREETING,
	    RELAY_STAGE_SMTP, 0, false },
	{ "greeting-421", "auto", { { NULL, "421 4.3.2 busy", false },
	    END }, WANT_CLOSED, RELAY_UNAVAILABLE, RELAY_WHY_GREETING,
	    RELAY_STAGE_SMTP, 0, false },
	{ "ehlo-502", "auto", { GREET, { "EHLO", "502 5.5.1 no", false },
	    END }, WANT_CLOSED, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
	    RELAY_STAGE_SMTP, 0, false },
	{ "no-starttls", "auto", { GREET, { "EHLO", "250 upstream.test",
	    false }, END }, WANT_CLOSED, RELAY_UNAVAILABLE,
	    RELAY_WHY_NO_STARTTLS, RELAY_STAGE_SMTP, 0, false },
	{ "starttls-454", "auto", { GREET, EHLO_PLAIN,
	    { "STARTTLS", "454 4.7.0 not now", false }, END }, WANT_CLOSED,
	    RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL, RELAY_STAGE_SMTP, 0,
	    false },
	{ "auth-535", "auto", { GREET, EHLO_PLAIN, STARTTLS, EHLO_TLS,
	    { "AUTH PLAIN ", "535 5.7.8 bad credentials", false }, END },
	    WANT_CLOSED, RELAY_AUTH_FAILED, RELAY_WHY_AUTH_REJECTED,
	    RELAY_STAGE_AUTH, 0, false },
	{ "auth-534", "auto", { GREET, EHLO_PLAIN, STARTTLS, EHLO_TLS,
	    { "AUTH PLAIN ", "534 5.7.9 web login", false }, END },
	    WANT_CLOSED, RELAY_AUTH_FAILED, RELAY_WHY_AUTH_BLOCKED,
	    RELAY_STAGE_AUTH, 0, false },
	{ "auth-454", "auto", { GREET, EHLO_PLAIN, STARTTLS, EHLO_TLS,
	    { "AUTH PLAIN ", "454 4.7.0 try later", false }, END },
	    WANT_CLOSED, RELAY_UNAVAILABLE, RELAY_WHY_AUTH_FAILED,
	    RELAY_STAGE_AUTH, 0, false },
	/* Refused before AUTH starts: still the EHLO stage. */
	{ "auth-no-mech", "xoauth2", { GREET, EHLO_PLAIN, STARTTLS,
	    EHLO_TLS, END }, WANT_CLOSED, RELAY_AUTH_FAILED,
	    RELAY_WHY_NO_XOAUTH2, RELAY_STAGE_SMTP, 0, false },
	/* AUTH LOGIN: the name, then the password, each after a 334. */
	{ "auth-login-sent", "login", { GREET, EHLO_PLAIN, STARTTLS,
	    EHLO_TLS, { "AUTH LOGIN", "334 VXNlcm5hbWU6", false },
	    { "dGltQGV4YW1wbGUub3Jn", "334 UGFzc3dvcmQ6", false },
	    { "dGFuc3RhYWZ0YW5zdGFhZg==", "235 2.7.0 ok", false },
	    { "MAIL FROM:<alice@example.org>", "250 2.1.0 ok", false },
	    { "RCPT TO:<bob@example.net>", "250 2.1.5 ok", false },
	    { "DATA", "354 go", false }, { ".", "250 2.0.0 queued", false },
	    QUIT, END }, WANT_DONE, RELAY_OK, 0, 0, ENVELOPE_RCPT_SENT,
	    true },
	{ "auth-login-pass-535", "login", { GREET, EHLO_PLAIN, STARTTLS,
	    EHLO_TLS, { "AUTH LOGIN", "334 VXNlcm5hbWU6", false },
	    { "dGltQGV4YW1wbGUub3Jn", "334 UGFzc3dvcmQ6", false },
	    { "dGFuc3RhYWZ0YW5zdGFhZg==", "535 5.7.8 no", false }, END },
	    WANT_CLOSED, RELAY_AUTH_FAILED, RELAY_WHY_AUTH_REJECTED,
	    RELAY_STAGE_AUTH, 0, false },
	/* The MAIL/RCPT/DATA group goes out at once (RFC 2920). */
	{ "pipelined-sent", "auto", { GREET, EHLO_PLAIN, STARTTLS,
	    EHLO_TLS_PIPE, AUTH_OK,
	    { "MAIL FROM:<alice@example.org>", "250 2.1.0 ok", false },
	    { "RCPT TO:<bob@example.net>", "250 2.1.5 ok", false },
	    { "DATA", "354 go", false }, { ".", "250 2.0.0 queued", false },
	    QUIT, END }, WANT_DONE, RELAY_OK, 0, 0, ENVELOPE_RCPT_SENT,
	    true },
	{ "mail-451", "auto", { SETUP,
	    { "MAIL FROM:", "451 4.3.0 later", false },
	    { "RSET", "250 2.0.0 ok", false }, QUIT, END }, WANT_DONE,
	    RELAY_TEMPFAIL, 0, 0, ENVELOPE_RCPT_PENDING, false },
	{ "mail-550", "auto", { SETUP,
	    { "MAIL FROM:", "550 5.7.1 not you", false },
	    { "RSET", "250 2.0.0 ok", false }, QUIT, END }, WANT_DONE,
	    RELAY_OK, 0, 0, ENVELOPE_RCPT_FAILED, false },
	{ "mail-quota", "auto", { SETUP,
	    { "MAIL FROM:", "550 5.4.5 Daily sending quota exceeded",
	    false }, { "RSET", "250 2.0.0 ok", false }, QUIT, END },
	    WANT_DONE, RELAY_QUOTA, 0, 0, ENVELOPE_RCPT_PENDING, false },
	{ "rcpt-550", "auto", { SETUP, { "MAIL FROM:", "250 ok", false },
	    { "RCPT TO:", "550 5.1.1 no such user", false },
	    { "RSET", "250 2.0.0 ok", false }, QUIT, END }, WANT_DONE,
	    RELAY_OK, 0, 0, ENVELOPE_RCPT_FAILED, false },
	{ "rcpt-450", "auto", { SETUP, { "MAIL FROM:", "250 ok", false },
	    { "RCPT TO:", "450 4.2.0 greylisted", false },
	    { "RSET", "250 2.0.0 ok", false }, QUIT, END }, WANT_DONE,
	    RELAY_OK, 0, 0, ENVELOPE_RCPT_PENDING, false },
	{ "data-554", "auto", { SETUP, { "MAIL FROM:", "250 ok", false },
	    { "RCPT TO:", "250 ok", false },
	    { "DATA", "554 5.6.0 no data", false },
	    { "RSET", "250 2.0.0 ok", false }, QUIT, END }, WANT_DONE,
	    RELAY_OK, 0, 0, ENVELOPE_RCPT_FAILED, false },
	{ "data-451", "auto", { SETUP, { "MAIL FROM:", "250 ok", false },
	    { "RCPT TO:", "250 ok", false },
	    { "DATA", "451 4.3.0 later", false },
	    { "RSET", "250 2.0.0 ok", false }, QUIT, END }, WANT_DONE,
	    RELAY_TEMPFAIL, 0, 0, ENVELOPE_RCPT_PENDING, false },
	{ "dot-552", "auto", { SETUP, { "MAIL FROM:", "250 ok", false },
	    { "RCPT TO:", "250 ok", false }, { "DATA", "354 go", false },
	    { ".", "552 5.3.4 too big", false }, QUIT, END }, WANT_DONE,
	    RELAY_OK, 0, 0, ENVELOPE_RCPT_FAILED, true },
	{ "dot-451", "auto", { SETUP, { "MAIL FROM:", "250 ok", false },
	    { "RCPT TO:", "250 ok", false }, { "DATA", "354 go", false },
	    { ".", "451 4.3.0 later", false }, QUIT, END }, WANT_DONE,
	    RELAY_TEMPFAIL, 0, 0, ENVELOPE_RCPT_PENDING, true },
};

/* One test's world (fork mode: one process per test). */
static struct {
	const struct relay_case	*c;
	char			*dir;
	struct event_base	*base;
	struct conf		*conf;
	struct tls_client	*tls;
	SSL_CTX			*server_ctx;
	struct bufferevent	*server;	/* our end of the pair */
	size_t			 step;
	bool			 in_body;
	struct evbuffer		*body;
	char			 mismatch[512];	/* first unexpected line */
	size_t			 replies;	/* sent so far */
	size_t			 replies_at_read; /* when this input came */
	size_t			 replies_at_mail, replies_at_data;
	struct envelope		 env;
	char			*data_path;
	bool			 ready, done, closed;
	enum relay_status	 done_status, closed_status;
	struct relay_failure	 failure;
} T;

static void	server_read_cb(struct bufferevent *, void *);

/* Sends the reply of the current step and moves on. */
static void
server_reply(void)
{
	const struct step	*st = &T.c->script[T.step++];
	SSL			*ssl;

	bufferevent_write(T.server, st->reply, strlen(st->reply));
	bufferevent_write(T.server, "\r\n", 2);
	T.replies++;
	if (!st->tls)
		return;
	/* The 220 went out in plaintext; from here on, TLS. */
	ssl = SSL_new(T.server_ctx);
	ck_assert_ptr_nonnull(ssl);
	T.server = bufferevent_openssl_filter_new(T.base, T.server, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	ck_assert_ptr_nonnull(T.server);
	bufferevent_setcb(T.server, server_read_cb, NULL, NULL, NULL);
	bufferevent_enable(T.server, EV_READ | EV_WRITE);
}

/* One line from the relay, against the script. */
static void
server_line(const char *line)
{
	const struct step	*st = &T.c->script[T.step];

	if (T.in_body) {
		/* Up to the final dot, which gets the step's reply. */
		if (strcmp(line, ".") == 0) {
			T.in_body = false;
			server_reply();
		} else
			evbuffer_add_printf(T.body, "%s\r\n", line);
		return;
	}
	if (strncmp(line, "MAIL ", 5) == 0)
		T.replies_at_mail = T.replies_at_read;
	if (strcmp(line, "DATA") == 0)
		T.replies_at_data = T.replies_at_read;
	if (st->reply == NULL || st->expect == NULL ||
	    strncmp(line, st->expect, strlen(st->expect)) != 0) {
		if (T.mismatch[0] == '\0')
			snprintf(T.mismatch, sizeof(T.mismatch), "step %zu "
			    "got \"%s\"", T.step, line);
		return;
	}
	server_reply();
	if (strncmp(st->reply, "354", 3) == 0)
		T.in_body = true;
}

static void
server_read_cb(struct bufferevent *bev, void *arg)
{
	char	*line;
	size_t	 n;

	(void)arg;
	T.replies_at_read = T.replies;
	while ((line = evbuffer_readln(bufferevent_get_input(bev), &n,
	    EVBUFFER_EOL_CRLF_STRICT)) != NULL) {
		server_line(line);
		free(line);
	}
}

static void
relay_ready_cb(struct relay *r, void *arg)
{
	(void)arg;
	if (T.ready)
		return;
	T.ready = true;
	if (T.c->kind == WANT_DONE)
		relay_send(r, &T.env, T.data_path);
}

static void
relay_done_cb(struct relay *r, struct envelope *env,
    enum relay_status status, const char *reply, void *arg)
{
	(void)env;
	(void)reply;
	(void)arg;
	T.done = true;
	T.done_status = status;
	relay_quit(r);
}

static void
relay_closed_cb(struct relay *r, enum relay_status status,
    const struct relay_failure *f, void *arg)
{
	(void)r;
	(void)arg;
	T.closed = true;
	T.closed_status = status;
	T.failure = *f;
	T.failure.reason = NULL;
}

static bool
relay_is_closed(void *arg)
{
	(void)arg;
	return T.closed;
}

START_TEST(test_relay_case)
{
	static const struct relay_cbs	 cbs = {
		relay_ready_cb, relay_done_cb, relay_closed_cb,
	};
	struct bufferevent		*pair[2];
	char				 extra[2048], cert[512], key[512];
	char				*pw;
	const char			*body;

	/* Nothing left from a previous case (CK_FORK=no runs them all in
	 * one process). */
	memset(&T, 0, sizeof(T));
	T.c = &cases[_i];
	T.dir = bt_tmpdir();
	ck_assert_int_eq(bt_cert(T.dir), 0);
	snprintf(cert, sizeof(cert), "%s/cert.pem", T.dir);
	snprintf(key, sizeof(key), "%s/key.pem", T.dir);
	pw = bt_write(T.dir, "password", "tanstaaftanstaaf\n", 0600);
	T.data_path = bt_write(T.dir, "data", BODY_IN, 0600);
	snprintf(extra, sizeof(extra), "from {\n rewrite = \"keep\"\n}\n"
	    "upstream {\n host = \"upstream.test\"\n port = 25\n"
	    " tls = \"starttls\"\n verify_name = \"localhost\"\n"
	    " ca_file = \"%s\"\n username = \"tim@example.org\"\n"
	    " password_file = \"%s\"\n auth = \"%s\"\n}\n", cert, pw,
	    T.c->auth);
	T.base = event_base_new();
	T.conf = bt_conf(T.dir, extra);
	T.tls = tls_client_new(cert);
	ck_assert_ptr_nonnull(T.tls);
	T.server_ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(T.server_ctx,
	    cert), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(T.server_ctx, key,
	    SSL_FILETYPE_PEM), 1);
	T.body = evbuffer_new();
	snprintf(T.env.id, sizeof(T.env.id), "0123456789abcdef");
	T.env.sender = xstrdup("alice@example.org");
	T.env.client = xstrdup("127.0.0.1");
	T.env.helo = xstrdup("client.test");
	T.env.size = strlen(BODY_IN);
	ck_assert_int_eq(envelope_add_rcpt(&T.env, "bob@example.net"), 0);

	ck_assert_int_eq(bufferevent_pair_new(T.base, BEV_OPT_CLOSE_ON_FREE,
	    pair), 0);
	T.server = pair[1];
	bufferevent_setcb(T.server, server_read_cb, NULL, NULL, NULL);
	bufferevent_enable(T.server, EV_READ | EV_WRITE);
	ck_assert_ptr_nonnull(relay_new_bev(T.base, T.conf,
	    &T.conf->upstream[0], T.tls, &cbs, NULL, pair[0]));
	server_reply();		/* the greeting */
	ck_assert_msg(bt_run_until(T.base, relay_is_closed, NULL, WAIT_SECS),
	    "%s: relay not closed (step %zu)", T.c->name, T.step);

	ck_assert_msg(T.mismatch[0] == '\0', "%s: %s", T.c->name,
	    T.mismatch);
	if (T.c->kind == WANT_CLOSED) {
		ck_assert(!T.ready);
		ck_assert_int_eq(T.closed_status, T.c->status);
		ck_assert_int_eq(T.failure.why, T.c->why);
		ck_assert_int_eq(T.failure.stage, T.c->stage);
	} else {
		ck_assert(T.done);
		ck_assert_int_eq(T.done_status, T.c->status);
		ck_assert_int_eq(T.env.rcpts[0].state, T.c->rcpt);
		/* QUIT answered: an idle close, not an error. */
		ck_assert_int_eq(T.closed_status, RELAY_IDLE);
		ck_assert_msg(T.c->script[T.step].expect == NULL,
		    "%s: script not played to the end (step %zu)",
		    T.c->name, T.step);
	}
	body = (const char *)evbuffer_pullup(T.body, -1);
	if (T.c->body) {
		ck_assert_uint_eq(evbuffer_get_length(T.body),
		    strlen(BODY_OUT));
		ck_assert(memcmp(body, BODY_OUT, strlen(BODY_OUT)) == 0);
	} else
		ck_assert_uint_eq(evbuffer_get_length(T.body), 0);
	if (strcmp(T.c->name, "pipelined-sent") == 0)
		/* DATA came before the server answered MAIL. */
		ck_assert_uint_eq(T.replies_at_data, T.replies_at_mail);
	else if (strcmp(T.c->name, "auth-login-sent") == 0)
		/* No PIPELINING: DATA only after MAIL and RCPT replies. */
		ck_assert_uint_eq(T.replies_at_data, T.replies_at_mail + 2);

	bufferevent_free(T.server);
	envelope_cleanup(&T.env);
	evbuffer_free(T.body);
	SSL_CTX_free(T.server_ctx);
	tls_client_free(T.tls);
	conf_free(T.conf);
	event_base_free(T.base);
	bt_rmdir(T.dir);
	free(T.dir);
	free(T.data_path);
	free(pw);
}
END_TEST

static Suite *
relay_suite(void)
{
	Suite	*s = suite_create("relay");
	TCase	*tc = tcase_create("scripted-server");

	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_relay_case, 0, nitems(cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(relay_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
