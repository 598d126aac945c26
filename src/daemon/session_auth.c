/*
 * session_auth.c - the server side of AUTH for one session (RFC 4954,
 * mechanisms PLAIN and LOGIN; see session_auth.h).
 *
 * The exchange is lib/saslstep.c's; this checks the password it
 * gathers (on the check worker when there is one), logs the outcome and
 * sends the replies through the session.  A failed attempt counts as a
 * client error.  Credentials are never logged and are wiped after use.
 */
#include "config.h"

#include "session_auth.h"

#include <stdlib.h>
#include <string.h>

#include "authcheck.h"
#include "line.h"
#include "log.h"
#include "sasl.h"
#include "saslstep.h"
#include "smtp.h"
#include "users.h"
#include "util.h"

/* The step function keeps names and passwords the accounts can have. */
_Static_assert(SASL_NAME_MAX >= USERS_NAME_MAX, "AUTH names too short");
_Static_assert(SASL_PASS_MAX >= USERS_PASS_MAX, "AUTH passwords too short");

/* RFC 4954 section 4 lets AUTH lines exceed 512 octets; ours hold at
 * most a name and a password of 255 octets each, in base64. */
#define SESSION_AUTH_LINE_MAX	SMTP_TEXT_LINE_MAX

struct session_auth {
	struct session_auth_conn conn;
	/* The exchange; after a successful one, sasl.name is the
	 * account's name. */
	struct sasl_server	 sasl;
	bool			 authed;
	struct line_reader	 reader;	/* response lines */
	char			 line[SESSION_AUTH_LINE_MAX + 1];
};

/* Sends what the AUTH step function said, and logs its outcome.
 * Returns what the session does next (CHECK: not answered yet). */
static enum session_auth_next
session_auth_answer(struct session_auth *a, const struct sasl_server_out *out)
{
	char	esc[SASL_NAME_MAX * 4 + 4];

	if (out->outcome == SASL_SERVER_CHECK)
		return SESSION_AUTH_VERIFY;
	if (out->outcome == SASL_SERVER_OK) {
		a->authed = true;
		log_info("session auth sid=%08x client=%s user=%s mech=%s",
		    a->conn.sid, a->conn.addr, str_log_escape(a->sasl.name,
		    strlen(a->sasl.name), esc, sizeof(esc)), a->sasl.mech);
	} else if (out->why != NULL)
		log_notice("session auth failed sid=%08x client=%s mech=%s "
		    "reason=%s", a->conn.sid, a->conn.addr, a->sasl.mech,
		    out->why);
	else if (strncmp(out->reply, "535", 3) == 0)
		/* No name in the log: people type passwords there. */
		log_notice("session auth failed sid=%08x client=%s mech=%s",
		    a->conn.sid, a->conn.addr, a->sasl.mech);
	a->conn.reply(a->conn.arg, out->reply);
	if (out->error)
		a->conn.error(a->conn.arg);
	return out->outcome == SASL_SERVER_CONTINUE ? SESSION_AUTH_MORE :
	    SESSION_AUTH_DONE;
}

/* The worker checked the password. */
static void
session_auth_done_cb(bool ok, void *arg)
{
	struct session_auth	*a = arg;

	a->conn.checked(a->conn.arg, ok);
}

/* Checks the name and password the exchange gathered, on the check
 * worker when there is one, and answers 235 or 535 (now or in
 * session_auth_checked()). */
static enum session_auth_next
session_auth_check(struct session_auth *a, const struct users *users,
    struct authcheck *ac)
{
	struct sasl_server_out	out;

	if (users == NULL) {
		/* A reload removed the accounts during the exchange. */
		sasl_server_reset(&a->sasl);
		a->conn.reply(a->conn.arg,
		    "454 4.7.0 Temporary authentication failure");
		return SESSION_AUTH_DONE;
	}
	if (ac == NULL) {
		sasl_server_checked(&a->sasl, users_verify(users,
		    a->sasl.name, a->sasl.pass), &out);
		return session_auth_answer(a, &out);
	}
	authcheck_start(ac, users, a->sasl.name, a->sasl.pass,
	    session_auth_done_cb, a);
	sasl_server_drop_pass(&a->sasl);
	return SESSION_AUTH_VERIFY;
}

/* Answers, or starts the check the exchange asks for. */
static enum session_auth_next
session_auth_go(struct session_auth *a, const struct sasl_server_out *out,
    const struct users *users, struct authcheck *ac)
{
	enum session_auth_next	next = session_auth_answer(a, out);

	if (next == SESSION_AUTH_VERIFY)
		return session_auth_check(a, users, ac);
	return next;
}

/* Refuses AUTH with <reply>, a client error. */
static enum session_auth_next
session_auth_refuse(struct session_auth *a, const char *reply)
{
	a->conn.reply(a->conn.arg, reply);
	a->conn.error(a->conn.arg);
	return SESSION_AUTH_REFUSED;
}

/* "AUTH mechanism [initial-response]" (RFC 4954 section 4). */
enum session_auth_next
session_auth_start(struct session_auth *a, const char *args,
    const struct users *users, bool offered, struct authcheck *ac)
{
	struct sasl_server_out	out;

	if (users == NULL)
		return session_auth_refuse(a,
		    "502 5.5.1 Error: command not implemented");
	if (!offered)
		return session_auth_refuse(a, "538 5.7.11 Encryption "
		    "required for requested authentication mechanism");
	if (a->authed)
		return session_auth_refuse(a,
		    "503 5.5.1 Error: already authenticated");
	line_reader_init(&a->reader, SESSION_AUTH_LINE_MAX);
	sasl_server_start(&a->sasl, args, &out);
	return session_auth_go(a, &out, users, ac);
}

/* One response line, or NULL for one over the limit. */
static enum session_auth_next
session_auth_line(struct session_auth *a, const char *line,
    const struct users *users, struct authcheck *ac)
{
	struct sasl_server_out	out;

	sasl_server_step(&a->sasl, line, &out);
	return session_auth_go(a, &out, users, ac);
}

bool
session_auth_input(struct session_auth *a, struct evbuffer *in,
    const struct users *users, struct authcheck *ac,
    enum session_auth_next *next)
{
	size_t	len;
	bool	crlf;

	switch (line_get(&a->reader, in, a->line, &len, &crlf)) {
	case LINE_AGAIN:
		return false;
	case LINE_TOOLONG:
		*next = session_auth_line(a, NULL, users, ac);
		break;
	case LINE_OK:
		*next = session_auth_line(a, a->line, users, ac);
		explicit_bzero(a->line, len);
		break;
	}
	return true;
}

void
session_auth_checked(struct session_auth *a, bool ok)
{
	struct sasl_server_out	out;

	sasl_server_checked(&a->sasl, ok, &out);
	session_auth_answer(a, &out);
}

struct session_auth *
session_auth_new(const struct session_auth_conn *conn)
{
	struct session_auth	*a = xcalloc(1, sizeof(*a));

	a->conn = *conn;
	sasl_server_init(&a->sasl, &sasl_b64_openssl);
	return a;
}

void
session_auth_free(struct session_auth *a)
{
	if (a == NULL)
		return;
	sasl_server_reset(&a->sasl);
	free(a);
}

bool
session_auth_is_done(const struct session_auth *a)
{
	return a->authed;
}

void
session_auth_reset(struct session_auth *a)
{
	a->authed = false;
	sasl_server_reset(&a->sasl);
}
