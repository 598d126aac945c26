/*
 * session_auth.c - the session's STARTTLS (RFC 3207) and AUTH
 * (RFC 4954, mechanisms PLAIN and LOGIN).
 *
 * STARTTLS throws away whatever the client pipelined after it and
 * everything learnt before it, so nothing said in plaintext is taken as
 * said over TLS.  AUTH is offered over TLS, or on a loopback listener
 * the admin allowed in plaintext; a failed attempt counts as a client
 * error.  Credentials are never logged and are wiped after use.
 */
#include "config.h"

#include "session_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "authcheck.h"
#include "conf.h"
#include "log.h"
#include "sasl.h"
#include "tls.h"
#include "util.h"

/* The step function keeps names and passwords the accounts can have. */
_Static_assert(SASL_NAME_MAX >= USERS_NAME_MAX, "AUTH names too short");
_Static_assert(SASL_PASS_MAX >= USERS_PASS_MAX, "AUTH passwords too short");

/* RFC 4954 section 4: the password travels in base64 only, so AUTH
 * is offered over TLS, or where the admin allowed it on loopback. */
bool
session_auth_is_offered(const struct session *s)
{
	return s->ctx->users != NULL && (s->tls || s->auth_plain_ok);
}

/*
 * STARTTLS (RFC 3207).  The 220 goes out in plaintext; whatever the
 * client pipelined after the command is thrown away unread (section
 * 4.2: a man in the middle could have injected it), and reading stops
 * until the TLS bufferevent takes over the socket in
 * session_tls_start().
 */
void
session_cmd_starttls(struct session *s, const char *args)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);

	if (*args != '\0') {
		session_reply(s, "501 5.5.4 Syntax: STARTTLS");
		session_error(s);
		return;
	}
	if (s->tls) {
		session_reply(s, "503 5.5.1 Error: TLS already active");
		session_error(s);
		return;
	}
	if (s->ctx->tls == NULL) {
		/* Not configured: as any command we do not offer. */
		if (s->conf->server_tls.cert_file[0] == '\0')
			session_reply(s, "502 5.5.1 Error: command not "
			    "implemented");
		else
			session_reply(s, "454 4.7.0 TLS not available");
		session_error(s);
		return;
	}
	evbuffer_drain(in, evbuffer_get_length(in));
	line_reader_init(&s->cmd_reader, SMTP_CMD_LINE_MAX);
	bufferevent_disable(s->bev, EV_READ);
	session_set_state(s, SESSION_STARTTLS);
	session_reply(s, "220 2.0.0 Ready to start TLS");
}

/* Puts the TLS bufferevent on the socket of <fd> and starts the
 * handshake, bounded by SESSION_HANDSHAKE_SECS. */
int
session_tls_begin(struct session *s, int fd)
{
	struct bufferevent	*bev;
	uint64_t		 secs = s->conf->command_timeout;

	if (s->ctx->tls == NULL ||
	    (bev = tls_server_wrap(s->ctx->tls, s->ctx->base, fd)) == NULL)
		return -1;
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	s->bev = bev;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	session_set_timeout(s, secs < SESSION_HANDSHAKE_SECS ? secs :
	    SESSION_HANDSHAKE_SECS);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	session_set_state(s, SESSION_HANDSHAKE);
	return 0;
}

/* The 220 to STARTTLS is out.  The plaintext bufferevent goes away
 * with everything it buffered; a duplicate of its descriptor keeps the
 * connection for the TLS one. */
void
session_tls_start(struct session *s)
{
	int	fd;

	fd = fcntl(bufferevent_getfd(s->bev), F_DUPFD_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("session cannot duplicate socket sid=%08x", s->sid);
		session_close(s, "error");
		return;
	}
	if (session_tls_begin(s, fd) == -1) {
		close(fd);
		session_close(s, "tls");
	}
}

/* The handshake finished: greet (implicit TLS), or start afresh
 * (STARTTLS: RFC 3207 section 4.2 discards all the client said before,
 * so EHLO comes again and an AUTH made in plaintext no longer holds). */
static void
session_tls_done(struct session *s)
{
	const struct conf	*conf = s->conf;

	s->tls = true;
	log_info("session tls sid=%08x client=%s version=%s cipher=%s",
	    s->sid, s->addr, tls_version(s->bev), tls_cipher(s->bev));
	session_set_timeout(s, conf->command_timeout);
	session_reset(s);
	s->helo[0] = '\0';
	s->esmtp = false;
	s->authed = false;
	sasl_server_reset(&s->sasl);
	session_set_state(s, SESSION_GREETED);
	if (s->implicit_tls) {
		/* As the listener's check on plain ports: a client that
		 * talks before the greeting is a bot firing blind. */
		if (tls_has_pending(s->bev)) {
			log_notice("session reject client=%s "
			    "reason=early-talker sid=%08x", s->addr, s->sid);
			s->ctx->refused_early_talker++;
			session_reply(s, "554 5.5.1 %s Error: talked before "
			    "the greeting", conf->hostname);
			s->close_reason = "early-talker";
			session_set_state(s, SESSION_QUIT);
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		session_reply(s, "220 %s ESMTP smartrelay", conf->hostname);
	}
	session_process(s);
}

/* Sends what the AUTH step function said, and logs its outcome.
 * Returns the outcome. */
static enum sasl_server_outcome
session_auth_answer(struct session *s, const struct sasl_server_out *out)
{
	char	esc[SASL_NAME_MAX * 4 + 4];

	if (out->outcome == SASL_SERVER_CHECK)
		return out->outcome;
	if (out->outcome == SASL_SERVER_OK) {
		s->authed = true;
		log_info("session auth sid=%08x client=%s user=%s mech=%s",
		    s->sid, s->addr, str_log_escape(s->sasl.name,
		    strlen(s->sasl.name), esc, sizeof(esc)), s->sasl.mech);
	} else if (out->why != NULL)
		log_notice("session auth failed sid=%08x client=%s mech=%s "
		    "reason=%s", s->sid, s->addr, s->sasl.mech, out->why);
	else if (strncmp(out->reply, "535", 3) == 0)
		/* No name in the log: people type passwords there. */
		log_notice("session auth failed sid=%08x client=%s mech=%s",
		    s->sid, s->addr, s->sasl.mech);
	session_set_state(s, out->outcome == SASL_SERVER_CONTINUE ?
	    SESSION_AUTH : SESSION_READY);
	session_reply(s, "%s", out->reply);
	if (out->error)
		session_error(s);
	return out->outcome;
}

/* The worker checked the password: answer, then read on. */
static void
session_auth_done_cb(bool ok, void *arg)
{
	struct session		*s = arg;
	struct sasl_server_out	 out;

	if (s->closed) {
		/* The client went away meanwhile. */
		session_set_state(s, SESSION_READY);
		session_close(s, s->close_reason);
		return;
	}
	sasl_server_checked(&s->sasl, ok, &out);
	session_auth_answer(s, &out);
	if (s->ctx->stopping && s->state != SESSION_QUIT) {
		session_reply(s, "421 4.3.2 %s Service shutting down",
		    s->conf->hostname);
		s->close_reason = "shutdown";
		session_set_state(s, SESSION_QUIT);
	}
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/* Checks the name and password the exchange gathered, on the check
 * worker when there is one (reading paused until it answers), and
 * answers 235 or 535. */
static void
session_auth_check(struct session *s)
{
	struct sasl_server_out	out;

	if (s->ctx->users == NULL) {
		/* A reload removed the accounts during the exchange. */
		sasl_server_reset(&s->sasl);
		session_set_state(s, SESSION_READY);
		session_reply(s, "454 4.7.0 Temporary authentication failure");
		return;
	}
	if (s->ctx->authcheck == NULL) {
		sasl_server_checked(&s->sasl, users_verify(s->ctx->users,
		    s->sasl.name, s->sasl.pass), &out);
		session_auth_answer(s, &out);
		return;
	}
	session_set_state(s, SESSION_VERIFY);
	bufferevent_disable(s->bev, EV_READ);
	authcheck_start(s->ctx->authcheck, s->ctx->users, s->sasl.name,
	    s->sasl.pass, session_auth_done_cb, s);
	sasl_server_drop_pass(&s->sasl);
}

/* "AUTH mechanism [initial-response]" (RFC 4954 section 4). */
void
session_cmd_auth(struct session *s, const char *args)
{
	struct sasl_server_out	out;

	if (s->ctx->users == NULL) {
		session_reply(s, "502 5.5.1 Error: command not implemented");
		session_error(s);
		return;
	}
	if (!session_auth_is_offered(s)) {
		session_reply(s, "538 5.7.11 Encryption required for "
		    "requested authentication mechanism");
		session_error(s);
		return;
	}
	if (s->authed) {
		session_reply(s, "503 5.5.1 Error: already authenticated");
		session_error(s);
		return;
	}
	line_reader_init(&s->auth_reader, SESSION_AUTH_LINE_MAX);
	sasl_server_start(&s->sasl, args, &out);
	if (session_auth_answer(s, &out) == SASL_SERVER_CHECK)
		session_auth_check(s);
}

/* Takes one AUTH response line.  Returns false when none is buffered. */
bool
session_auth_input(struct session *s, struct evbuffer *in)
{
	struct sasl_server_out	 out;
	size_t			 len;
	bool			 crlf;

	switch (line_get(&s->auth_reader, in, s->line, &len, &crlf)) {
	case LINE_AGAIN:
		return false;
	case LINE_TOOLONG:
		sasl_server_step(&s->sasl, NULL, &out);
		break;
	case LINE_OK:
		sasl_server_step(&s->sasl, s->line, &out);
		explicit_bzero(s->line, len);
		break;
	}
	if (session_auth_answer(s, &out) == SASL_SERVER_CHECK)
		session_auth_check(s);
	return true;
}

/* The handshake finished or failed.  A failure has no SMTP reply to
 * give: the client gets the TLS alert, if any, and the close. */
void
session_tls_event(struct session *s, short what)
{
	char	why[256];

	if (what & BEV_EVENT_CONNECTED) {
		session_tls_done(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof(why), "handshake timeout");
	else if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "closed during handshake");
	else
		tls_error_string(s->bev, why, sizeof(why), NULL);
	log_notice("session tls failed sid=%08x client=%s reason=\"%s\"",
	    s->sid, s->addr, why);
	session_close(s, "tls");
}
