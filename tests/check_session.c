/*
 * check_session.c - the server-side state machine (session.c) driven
 * through a bufferevent_pair, with no socket: pipelining, the order of
 * replies around the spool commit and the password check, every reply
 * class, the AUTH steps, and STARTTLS dropping what was pipelined after
 * it.  The spool is a real one in a mkdtemp() directory; each test waits
 * on a condition, bounded in time, never on a sleep.
 */
#include "config.h"

#include "session.h"

#include <netinet/in.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "authcheck.h"
#include "bevtest.h"
#include "conf.h"
#include "spool.h"
#include "tls.h"
#include "users.h"
#include "util.h"
#include "worker.h"

#define WAIT_SECS	10

/* "alice" with "correct horse" (as check_users.c). */
#define USERS_TEXT "alice:$6$saltsaltsalt12$mjSM2626qhMaW5u0XY9B.eUowxBTHF" \
	"GFmKItlYUDfrGSpWAfFkyi1eX8eITV4yDhwtaw4HR80iGPmEyidcGRT/\n"
#define B64_ALICE	"YWxpY2U="
#define B64_HORSE	"Y29ycmVjdCBob3JzZQ=="
#define PLAIN_ALICE	"AGFsaWNlAGNvcnJlY3QgaG9yc2U="
#define PLAIN_WRONG	"AGFsaWNlAHdyb25n"	/* \0alice\0wrong */

/* One test's world: each test runs in its own process (fork mode). */
static struct {
	char			*dir;
	struct event_base	*base;
	struct conf		*conf;
	struct spool		*spool;
	struct worker		*worker;
	struct users		*users;
	struct authcheck	*authcheck;
	struct tls_server	*tls;
	struct session_ctx	 ctx;
	struct bufferevent	*client;	/* our end of the pair */
	char			 committed[64];
} T;

static void
committed_cb(const char *id, void *arg)
{
	(void)arg;
	snprintf(T.committed, sizeof(T.committed), "%s", id);
}

/* Starts a session on one end of a pair with <flags>, the users file,
 * the password checks on a worker, and <extra> configuration. */
static void
start(unsigned int flags, const char *extra, bool tls)
{
	struct bufferevent	*pair[2];
	struct sockaddr_in	 sin;
	char			 err[256], *cert, *key;

	/* Nothing left from a previous test (CK_FORK=no runs them all in
	 * one process). */
	memset(&T, 0, sizeof(T));
	T.dir = bt_tmpdir();
	T.base = event_base_new();
	ck_assert_ptr_nonnull(T.base);
	T.conf = bt_conf(T.dir, extra);
	T.worker = worker_new(T.base, 4);
	ck_assert_ptr_nonnull(T.worker);
	T.spool = spool_open(T.conf->spool, T.worker);
	ck_assert_ptr_nonnull(T.spool);
	T.users = users_parse(USERS_TEXT, strlen(USERS_TEXT), "users", err,
	    sizeof(err));
	ck_assert_msg(T.users != NULL, "%s", err);
	T.authcheck = authcheck_new(T.worker);
	ck_assert_ptr_nonnull(T.authcheck);
	session_ctx_init(&T.ctx);
	T.ctx.base = T.base;
	T.ctx.conf = T.conf;
	T.ctx.spool = T.spool;
	T.ctx.users = T.users;
	T.ctx.authcheck = T.authcheck;
	T.ctx.committed = committed_cb;
	if (tls) {
		ck_assert_int_eq(bt_cert(T.dir), 0);
		cert = xstrdup(T.dir);
		key = xstrdup(T.dir);
		cert = xrealloc(cert, strlen(T.dir) + 16);
		key = xrealloc(key, strlen(T.dir) + 16);
		strcat(cert, "/cert.pem");
		strcat(key, "/key.pem");
		T.tls = tls_server_new(cert, key, 12);
		ck_assert_ptr_nonnull(T.tls);
		T.ctx.tls = T.tls;
		free(cert);
		free(key);
	}
	ck_assert_int_eq(bufferevent_pair_new(T.base, BEV_OPT_CLOSE_ON_FREE,
	    pair), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000001);
	sin.sin_port = htons(40000);
	session_new_bev(&T.ctx, pair[0], (struct sockaddr *)&sin,
	    sizeof(sin), flags);
	T.client = pair[1];
		bufferevent_enable(T.client, EV_READ | EV_WRITE);
}

static void
stop(void)
{
	/* As main.c does: checks in flight dropped, commits in flight
	 * reported to their sessions, then the sessions go. */
	authcheck_free(T.authcheck);
	worker_free(T.worker);
	session_free_all(&T.ctx);
	if (T.client != NULL)
		bufferevent_free(T.client);
	users_free(T.users);
	tls_server_free(T.tls);
	spool_close(T.spool);
	conf_free(T.conf);
	event_base_free(T.base);
	bt_rmdir(T.dir);
	free(T.dir);
}

static void
say(const char *text)
{
	bufferevent_write(T.client, text, strlen(text));
}

/* True when a whole reply (its last line: "ddd " or "ddd") is
 * buffered. */
static bool
reply_ready(void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(T.client);
	size_t		 len = evbuffer_get_length(in), i, start = 0;
	const char	*p;

	(void)arg;
	p = (const char *)evbuffer_pullup(in, -1);
	for (i = 0; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (i - start >= 4 && (p[start + 3] == ' ' ||
		    p[start + 3] == '\r'))
			return true;
		start = i + 1;
	}
	return false;
}

/* Takes the next whole reply, its lines joined by '\n' without CRLF. */
static void
reply(char *out, size_t outsz)
{
	struct evbuffer	*in = bufferevent_get_input(T.client);
	char		*line;
	size_t		 used = 0, n;
	bool		 last = false;

	ck_assert_msg(bt_run_until(T.base, reply_ready, NULL, WAIT_SECS),
	    "no reply");
	out[0] = '\0';
	while (!last && (line = evbuffer_readln(in, &n,
	    EVBUFFER_EOL_CRLF_STRICT)) != NULL) {
		last = n < 4 || line[3] == ' ';
		ck_assert_uint_lt(used + n + 2, outsz);
		used += (size_t)snprintf(out + used, outsz - used, "%s%s",
		    used > 0 ? "\n" : "", line);
		free(line);
	}
}

/* The next reply starts with <want>. */
static void
expect(const char *want)
{
	char	buf[2048];

	reply(buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, want, strlen(want)) == 0,
	    "reply \"%s\", want \"%s...\"", buf, want);
}

/* The session closed (freeing one end of a pair tells the other
 * nothing, so look at the session list). */
static bool
session_gone(void *arg)
{
	(void)arg;
	return T.ctx.nsessions == 0;
}

/* The spool file of the message just committed, NUL-terminated (at
 * most 8 KB); the caller frees it. */
static char *
committed_data(void)
{
	char	 path[1024], *data;
	FILE	*f;
	size_t	 n;

	ck_assert_int_eq(spool_data_path(T.spool, T.committed, path,
	    sizeof(path)), 0);
	ck_assert_ptr_nonnull(f = fopen(path, "r"));
	data = xmalloc(8192);
	n = fread(data, 1, 8191, f);
	data[n] = '\0';
	fclose(f);
	return data;
}

START_TEST(test_greeting_ehlo)
{
	char	buf[2048];

	start(SESSION_F_AUTH_PLAIN, "", false);
	expect("220 relay.test ESMTP smartrelay");
	say("EHLO client.test\r\n");
	reply(buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "250-relay.test\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\n250-PIPELINING\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\n250-AUTH PLAIN LOGIN\n"));
	/* No TLS configured: no STARTTLS offered. */
	ck_assert_ptr_null(strstr(buf, "STARTTLS"));
	ck_assert_ptr_nonnull(strstr(buf, "\n250 ENHANCEDSTATUSCODES"));
	stop();
}
END_TEST

/* A whole transaction in one write, then the body and a NOOP in
 * another: every reply in order, the NOOP's only after the commit. */
START_TEST(test_pipelining)
{
	char	 buf[2048], *data;

	start(0, "", false);
	expect("220 ");
	say("EHLO client.test\r\nMAIL FROM:<alice@example.org>\r\n"
	    "RCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\n"
	    "DATA\r\n");
	expect("250-relay.test");
	expect("250 2.1.0 Ok");
	expect("250 2.1.5 Ok");
	expect("250 2.1.5 Ok");
	expect("354 ");
	say("Subject: pipelined\r\n\r\nhello\r\n..dot\r\n.\r\nNOOP\r\n");
	reply(buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "250 2.0.0 Ok: queued as ", 24) == 0,
	    "%s", buf);
	/* The commit hook ran before the 250 went out. */
	ck_assert_str_eq(buf + 24, T.committed);
	expect("250 2.0.0 Ok");
	/* What the spool holds: the trace header, the body unstuffed. */
	data = committed_data();
	ck_assert_msg(strncmp(data, "Received: from client.test ([127.0.0.1])",
	    40) == 0, "%s", data);
	ck_assert_ptr_nonnull(strstr(data, "Subject: pipelined\r\n"));
	ck_assert_ptr_nonnull(strstr(data, "\r\n\r\nhello\r\n.dot\r\n"));
	free(data);
	stop();
}
END_TEST

/* The body one octet per write, so each read brings one octet to the
 * scanner (datascan.c): the end marker, a stuffed dot, a bare LF and a
 * long line all cut up; the spool holds the canonical message with the
 * fields it lacked added after its header section. */
START_TEST(test_data_drip)
{
	static char	 body[2048], want[2048];
	char		 buf[2048], *data, *p;
	size_t		 i;

	snprintf(body, sizeof(body), "Subject: drip\r\n\r\n..dot\r\n"
	    "bare\n%01500d\r\n.\r\nNOOP\r\n", 7);
	snprintf(want, sizeof(want), "\r\n\r\n.dot\r\nbare\r\n%01500d\r\n",
	    7);
	start(0, "", false);
	expect("220 ");
	say("HELO client.test\r\nMAIL FROM:<alice@example.org>\r\n"
	    "RCPT TO:<bob@example.net>\r\nDATA\r\n");
	expect("250 ");
	expect("250 2.1.0 Ok");
	expect("250 2.1.5 Ok");
	expect("354 ");
	for (i = 0; body[i] != '\0'; i++)
		bufferevent_write(T.client, body + i, 1);
	reply(buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "250 2.0.0 Ok: queued as ", 24) == 0,
	    "%s", buf);
	expect("250 2.0.0 Ok");
	data = committed_data();
	p = strstr(data, "Subject: drip\r\nDate: ");
	ck_assert_msg(p != NULL, "%s", data);
	p = strstr(p, "\r\nMessage-ID: <");
	ck_assert_ptr_nonnull(p);
	p = strstr(p + 2, "\r\n");
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, want);
	free(data);
	stop();
}
END_TEST

/* Each line and the reply it must get, in one session. */
static const struct {
	const char	*say;
	const char	*want;
} classes[] = {
	{ "MAIL FROM:<a@example.org>\r\n", "503 5.5.1 Error: send HELO" },
	{ "FROB\r\n",			"500 5.5.2 Error: command not" },
	{ "HELO client.test\r\n",	"250 relay.test" },
	{ "RCPT TO:<b@example.net>\r\n", "503 5.5.1 Error: need MAIL" },
	{ "MAIL FROM:<a@example.org\r\n", "501 " },
	{ "MAIL FROM:<a@example.org> FOO=1\r\n", "555 5.5.4" },
	{ "MAIL FROM:<a@example.org> SIZE=99999999999\r\n", "552 5.3.4" },
	{ "MAIL FROM:<a@example.org>\r\n", "250 2.1.0 Ok" },
	{ "MAIL FROM:<a@example.org>\r\n", "503 5.5.1 Error: nested" },
	{ "DATA\r\n",			"503 5.5.1 Error: need RCPT" },
	{ "RCPT TO:<b1@example.net>\r\n", "250 2.1.5 Ok" },
	{ "RCPT TO:<b2@example.net>\r\n", "250 2.1.5 Ok" },
	{ "RCPT TO:<b3@example.net>\r\n", "452 4.5.3 Error: too many" },
	{ "DATA now\r\n",		"501 5.5.4 Syntax: DATA" },
	{ "VRFY b@example.net\r\n",	"252 2.5.0" },
	{ "STARTTLS\r\n",		"503 5.5.1 Error: MAIL transaction" },
	{ "RSET\r\n",			"250 2.0.0 Ok" },
	{ "STARTTLS\r\n",		"502 5.5.1" },
	{ "AUTH PLAIN\r\n",		"502 5.5.1" },
	{ "QUIT\r\n",			"221 2.0.0 Bye" },
};

START_TEST(test_reply_classes)
{
	size_t	i;

	start(0, "max_recipients = 2\nmax_message_size = 1000000", false);
	T.ctx.users = NULL;
	expect("220 ");
	for (i = 0; i < nitems(classes); i++) {
		say(classes[i].say);
		expect(classes[i].want);
	}
	ck_assert(bt_run_until(T.base, session_gone, NULL, WAIT_SECS));
	stop();
}
END_TEST

/* AUTH LOGIN through the password worker, with a command pipelined
 * after the password: its reply comes after the 235. */
START_TEST(test_auth_login)
{
	start(SESSION_F_AUTH_PLAIN, "", false);
	expect("220 ");
	say("EHLO client.test\r\n");
	expect("250-");
	say("AUTH LOGIN\r\n");
	expect("334 VXNlcm5hbWU6");
	say(B64_ALICE "\r\n");
	expect("334 UGFzc3dvcmQ6");
	say(B64_HORSE "\r\nMAIL FROM:<a@example.org>\r\n");
	expect("235 2.7.0 Authentication successful");
	expect("250 2.1.0 Ok");
	say("RSET\r\nAUTH PLAIN " PLAIN_ALICE "\r\n");
	expect("250 2.0.0 Ok");
	expect("503 5.5.1 Error: already authenticated");
	stop();
}
END_TEST

/* Each AUTH line and its reply, in one session that never logs in. */
static const struct {
	const char	*say;
	const char	*want;
} auth_steps[] = {
	{ "AUTH PLAIN " PLAIN_WRONG "\r\n", "535 5.7.8" },
	{ "AUTH PLAIN\r\n",		"334 " },
	{ "*\r\n",			"501 5.7.0 Authentication aborted" },
	{ "AUTH LOGIN\r\n",		"334 VXNlcm5hbWU6" },
	{ "!!!!\r\n",			"501 5.5.2 Cannot decode response" },
	{ "AUTH CRAM-MD5\r\n",		"504 5.5.4" },
	{ "AUTH PLAIN a b\r\n",		"501 5.5.4 Syntax: AUTH" },
	{ "AUTH PLAIN " PLAIN_ALICE "\r\n", "235 2.7.0" },
};

START_TEST(test_auth_steps)
{
	char	long_line[1200];
	size_t	i;

	start(SESSION_F_AUTH_PLAIN, "", false);
	expect("220 ");
	say("EHLO client.test\r\n");
	expect("250-");
	/* A response line over 1000 octets. */
	say("AUTH PLAIN\r\n");
	expect("334 ");
	memset(long_line, 'A', sizeof(long_line));
	memcpy(long_line + sizeof(long_line) - 3, "\r\n", 3);
	say(long_line);
	expect("500 5.5.6 Authentication exchange line is too long");
	for (i = 0; i < nitems(auth_steps); i++) {
		say(auth_steps[i].say);
		expect(auth_steps[i].want);
	}
	stop();
}
END_TEST

/* Without TLS and without a listener allowing it: 538. */
START_TEST(test_auth_needs_tls)
{
	char	buf[2048];

	start(0, "", false);
	expect("220 ");
	say("EHLO client.test\r\n");
	reply(buf, sizeof(buf));
	ck_assert_ptr_null(strstr(buf, "AUTH"));
	say("AUTH PLAIN " PLAIN_ALICE "\r\n");
	expect("538 5.7.11 Encryption required");
	stop();
}
END_TEST

/* RFC 3207 4.2: what the client pipelined after STARTTLS is dropped
 * unread, never answered.  (The handshake needs a socket, so the
 * session ends there over a pair.) */
START_TEST(test_starttls_discards)
{
	char	buf[2048];

	start(0, "", true);
	expect("220 ");
	say("EHLO client.test\r\n");
	reply(buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\n250-STARTTLS\n"));
	say("STARTTLS\r\nNOOP\r\nMAIL FROM:<a@example.org>\r\n");
	expect("220 2.0.0 Ready to start TLS");
	ck_assert(bt_run_until(T.base, session_gone, NULL, WAIT_SECS));
	ck_assert_uint_eq(evbuffer_get_length(bufferevent_get_input(
	    T.client)), 0);
	stop();
}
END_TEST

static Suite *
session_suite(void)
{
	Suite	*s = suite_create("session");
	TCase	*tc;

#define ADD_CASE(name, fn) do {						\
	tc = tcase_create(name);					\
	tcase_set_timeout(tc, 30);					\
	tcase_add_test(tc, fn);						\
	suite_add_tcase(s, tc);						\
} while (0)
	ADD_CASE("greeting-ehlo", test_greeting_ehlo);
	ADD_CASE("pipelining", test_pipelining);
	ADD_CASE("data_drip", test_data_drip);
	ADD_CASE("reply-classes", test_reply_classes);
	ADD_CASE("auth-login", test_auth_login);
	ADD_CASE("auth-steps", test_auth_steps);
	ADD_CASE("auth-needs-tls", test_auth_needs_tls);
	ADD_CASE("starttls-discards", test_starttls_discards);
#undef ADD_CASE
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(session_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
