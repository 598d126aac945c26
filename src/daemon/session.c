/*
 * session.c - server-side SMTP state machine (RFC 5321), one per client.
 *
 * Commands are taken line by line (line.c) and run (session_cmd.c,
 * against the table of smtpsrv.h that decides what is allowed in which
 * state); during DATA the input goes, a buffer chunk at a time, to the
 * transaction (session_txn.c), which decodes it and streams it to the
 * spool.  After
 * the end of data the session stops reading until the spool's worker
 * reports the commit, so no pipelined command is answered before that
 * 250.  STARTTLS (RFC 3207) throws away what was pipelined after it and
 * everything learnt before it (the handshake: session_tls.c); AUTH (RFC
 * 4954, session_auth.c) is offered only over TLS or on a listener that
 * allows it in plaintext.  After the last reply the connection lingers
 * (session_linger.c).
 * Invariant: session_close() is the only place a session is freed.
 */
#include "config.h"

#include "session.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "cidr.h"
#include "conf.h"
#include "line.h"
#include "log.h"
#include "session_auth.h"
#include "session_cmd.h"
#include "session_linger.h"
#include "session_tls.h"
#include "session_txn.h"
#include "smtp.h"
#include "smtpsrv.h"
#include "tls.h"
#include "util.h"

#define SESSION_ERRORS_MAX	20	/* as Postfix smtpd_hard_error_limit */
#define SESSION_OUTPUT_MAX	(64 * 1024)	/* stop reading above this */

enum session_state {
	SESSION_GREETED,	/* greeting sent, waiting for HELO/EHLO */
	SESSION_READY,		/* HELO done, no transaction */
	SESSION_MAIL,		/* MAIL accepted */
	SESSION_RCPT,		/* at least one RCPT accepted */
	SESSION_DATA,		/* receiving message lines */
	SESSION_COMMIT,		/* waiting for the spool to sync */
	SESSION_QUIT,		/* flushing the last reply */
	SESSION_LINGER,		/* reply sent, draining input, then close */
	SESSION_STARTTLS,	/* flushing "220 Ready to start TLS" */
	SESSION_HANDSHAKE,	/* TLS handshake running */
	SESSION_AUTH,		/* waiting for an AUTH response line */
	SESSION_VERIFY,		/* waiting for the password check */
};

struct session {
	TAILQ_ENTRY(session)	 entry;
	struct session_ctx	*ctx;
	const struct conf	*conf;		/* its own reference: the
						 * configuration it began with */
	struct bufferevent	*bev;		/* owns the socket */
	enum session_state	 state;
	unsigned int		 sid;		/* for log lines */
	struct sockaddr_storage	 peer;
	char			 addr[64];	/* numeric peer address */
	char			 helo[SMTP_DOMAIN_MAX + 1];
	bool			 esmtp;
	unsigned int		 errors;
	bool			 closed;	/* waiting for a commit only */
	struct session_linger	 linger;	/* after the last reply */
	const char		*close_reason;
	const struct conf_network *net;	/* the client's policy, or NULL */
	bool			 implicit_tls;	/* came in on listen_tls */
	bool			 auth_plain_ok;	/* AUTH allowed without TLS */
	bool			 tls;		/* handshake done */
	struct session_auth	*auth;		/* AUTH, and who logged in */
	struct session_tls_conn	 tlsconn;	/* during a handshake */
	struct session_txn	*txn;

	struct line_reader	 cmd_reader;
	char			 line[SMTP_CMD_LINE_MAX + 1];
};

static void	session_reply(struct session *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Consumes buffered input until it runs out or the state says stop. */
static void	session_process(struct session *);
/* Frees the session (the only place); callers return at once. */
static void	session_close(struct session *, const char *reason);

static const char *const session_state_name[] = {
	[SESSION_GREETED] = "greeted",
	[SESSION_READY] = "ready",
	[SESSION_MAIL] = "mail",
	[SESSION_RCPT] = "rcpt",
	[SESSION_DATA] = "data",
	[SESSION_COMMIT] = "commit",
	[SESSION_QUIT] = "quit",
	[SESSION_LINGER] = "linger",
	[SESSION_STARTTLS] = "starttls",
	[SESSION_HANDSHAKE] = "handshake",
	[SESSION_AUTH] = "auth",
	[SESSION_VERIFY] = "verify",
};

static void
session_set_state(struct session *s, enum session_state st)
{
	if (log_is_debug())
		log_debug("session state sid=%08x %s->%s", s->sid,
		    session_state_name[s->state], session_state_name[st]);
	s->state = st;
}

/* Queues one reply line; CRLF is added here and nowhere else. */
static void
session_reply(struct session *s, const char *fmt, ...)
{
	struct evbuffer	*out = bufferevent_get_output(s->bev);
	va_list		 ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
}

/* Counts a client error; past the limit the client is shown the door,
 * so a script kiddie cannot keep a slot busy with garbage forever. */
static void
session_error(struct session *s)
{
	if (++s->errors < SESSION_ERRORS_MAX)
		return;
	session_reply(s, "421 4.7.0 %s Error: too many errors",
	    s->conf->hostname);
	s->close_reason = "errors";
	session_set_state(s, SESSION_QUIT);
}

static void
session_set_timeout(struct session *s, uint64_t secs)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)secs;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* Tells the client we are stopping; <hostname> the one to name. */
static void
session_shutdown(struct session *s, const char *hostname)
{
	session_reply(s, "421 4.3.2 %s Service shutting down", hostname);
	s->close_reason = "shutdown";
	session_set_state(s, SESSION_QUIT);
}

/* session_cmd.c's and session_auth.c's ways to answer. */
static void
session_reply_cb(void *arg, const char *line)
{
	session_reply(arg, "%s", line);
}

static void
session_error_cb(void *arg)
{
	session_error(arg);
}

/* RFC 4954 section 4: the password travels in base64 only, so AUTH
 * is offered over TLS, or where the admin allowed it on loopback. */
static bool
session_auth_is_offered(const struct session *s)
{
	return s->ctx->users != NULL && (s->tls || s->auth_plain_ok);
}

static void
session_cmd_data(struct session *s, const char *args)
{
	const struct conf	*conf = s->conf;
	struct msgin_from	 from;

	if (*args != '\0') {
		session_reply(s, SMTPSRV_DATA_SYNTAX);
		session_error(s);
		return;
	}
	from.helo = s->helo;
	from.protocol = smtpsrv_protocol(s->esmtp,
	    session_txn_is_utf8(s->txn), s->tls,
	    session_auth_is_done(s->auth));
	from.tls_version = s->tls ? tls_version(s->bev) : NULL;
	from.tls_cipher = s->tls ? tls_cipher(s->bev) : NULL;
	/* The client's network may say otherwise than the default. */
	if (!session_txn_data(s->txn, s->ctx->spool, &from, (s->net != NULL ?
	    s->net->bare_lf : conf->bare_lf) == CONF_BARE_LF_REJECT)) {
		session_reply(s, SMTPSRV_NO_STORAGE);
		return;
	}
	session_set_timeout(s, conf->data_timeout);
	session_set_state(s, SESSION_DATA);
	session_reply(s, SMTPSRV_DATA_GO);
}

/*
 * STARTTLS (RFC 3207).  The 220 goes out in plaintext; whatever the
 * client pipelined after the command is thrown away unread (section
 * 4.2: a man in the middle could have injected it), and reading stops
 * until the TLS bufferevent takes over the socket once the 220 is
 * out (session_write_cb()).
 */
static void
session_cmd_starttls(struct session *s, const char *args)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	const char	*refusal;

	if ((refusal = session_tls_refusal(s->ctx->tls, args, s->tls,
	    s->conf->server_tls.cert_file[0] != '\0')) != NULL) {
		session_reply(s, "%s", refusal);
		session_error(s);
		return;
	}
	evbuffer_drain(in, evbuffer_get_length(in));
	line_reader_init(&s->cmd_reader, SMTP_CMD_LINE_MAX);
	bufferevent_disable(s->bev, EV_READ);
	session_set_state(s, SESSION_STARTTLS);
	session_reply(s, "220 2.0.0 Ready to start TLS");
}

/* Enters the state AUTH said, unless too many errors ended the
 * session meanwhile. */
static void
session_auth_next(struct session *s, enum session_auth_next next)
{
	if (s->state == SESSION_QUIT)
		return;
	switch (next) {
	case SESSION_AUTH_DONE:
		session_set_state(s, SESSION_READY);
		break;
	case SESSION_AUTH_MORE:
		session_set_state(s, SESSION_AUTH);
		break;
	case SESSION_AUTH_VERIFY:
		session_set_state(s, SESSION_VERIFY);
		bufferevent_disable(s->bev, EV_READ);
		break;
	case SESSION_AUTH_REFUSED:
		break;
	}
}

/* The worker checked the password: answer, then read on. */
static void
session_auth_checked_cb(void *arg, bool ok)
{
	struct session	*s = arg;

	session_set_state(s, SESSION_READY);
	if (s->closed) {
		/* The client went away meanwhile. */
		session_close(s, s->close_reason);
		return;
	}
	session_auth_checked(s->auth, ok);
	if (s->ctx->stopping && s->state != SESSION_QUIT)
		session_shutdown(s, s->conf->hostname);
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

_Static_assert(SESSION_GREETED == (int)SMTPSRV_GREETED &&
    SESSION_READY == (int)SMTPSRV_READY && SESSION_MAIL == (int)SMTPSRV_MAIL &&
    SESSION_RCPT == (int)SMTPSRV_RCPT, "the command states of smtpsrv.h");

static void
session_dispatch(struct session *s, const char *line, size_t len)
{
	struct session_cmd_in	 in;
	const char		*args;
	enum smtp_verb		 verb;

	/* Commands are read only in the states the table knows. */
	if (s->state > SESSION_RCPT)
		fatalx("session: command in state %d", s->state);
	in.state = (enum smtpsrv_state)s->state;
	in.conf = s->conf;
	in.txn = s->txn;
	in.helo = s->helo;
	in.helosz = sizeof(s->helo);
	in.ehlo_flags = (s->ctx->tls != NULL && !s->tls ?
	    SMTPSRV_EHLO_STARTTLS : 0) | (session_auth_is_offered(s) ?
	    SMTPSRV_EHLO_AUTH : 0);
	in.auth_missing = s->net != NULL &&
	    s->net->auth == CONF_NET_AUTH_REQUIRED &&
	    !session_auth_is_done(s->auth);
	in.reply = session_reply_cb;
	in.error = session_error_cb;
	in.arg = s;
	switch (session_cmd_run(&in, line, len, &verb, &args)) {
	case SESSION_CMD_STAY:
		break;
	case SESSION_CMD_HELO:
	case SESSION_CMD_EHLO:
		s->esmtp = verb == SMTP_VERB_EHLO;
		/* FALLTHROUGH */
	case SESSION_CMD_READY:
		session_set_state(s, SESSION_READY);
		break;
	case SESSION_CMD_MAIL:
		session_set_state(s, SESSION_MAIL);
		break;
	case SESSION_CMD_RCPT:
		session_set_state(s, SESSION_RCPT);
		break;
	case SESSION_CMD_QUIT:
		s->close_reason = "quit";
		session_set_state(s, SESSION_QUIT);
		break;
	case SESSION_CMD_DATA:
		session_cmd_data(s, args);
		break;
	case SESSION_CMD_STARTTLS:
		session_cmd_starttls(s, args);
		break;
	case SESSION_CMD_AUTH:
		/* RFC 4954 section 4. */
		session_auth_next(s, session_auth_start(s->auth, args,
		    s->ctx->users, session_auth_is_offered(s),
		    s->ctx->authcheck));
		break;
	}
	/* The line held credentials, if only in base64. */
	if (verb == SMTP_VERB_AUTH)
		explicit_bzero(s->line, sizeof(s->line));
}

/* Runs on the loop thread when the spool has synced (or failed). */
static void
session_commit_done_cb(const char *id, int err, void *arg)
{
	struct session	*s = arg;

	if (err == 0) {
		s->ctx->accepted++;
		if (s->ctx->committed != NULL)
			s->ctx->committed(id, s->ctx->committed_arg);
	}
	session_txn_reset(s->txn);
	session_set_state(s, SESSION_READY);
	if (s->closed) {
		/* The client went away; the message stays queued. */
		session_close(s, s->close_reason);
		return;
	}
	if (err == 0)
		session_reply(s, SMTPSRV_QUEUED_FMT, id);
	else
		session_reply(s, SMTPSRV_NO_STORAGE);
	if (s->ctx->stopping)
		session_shutdown(s, s->conf->hostname);
	session_set_timeout(s, s->conf->command_timeout);
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/* The end of data: answer an error now, or hand the message to the
 * spool and wait (reading paused) for the sync. */
static void
session_data_end(struct session *s)
{
	const char	*reply;

	session_set_timeout(s, s->conf->command_timeout);
	if (!session_txn_end(s->txn, &reply)) {
		session_reply(s, "%s", reply);
		session_txn_reset(s->txn);
		session_set_state(s, SESSION_READY);
		return;
	}
	session_set_state(s, SESSION_COMMIT);
	bufferevent_disable(s->bev, EV_READ);
	session_txn_commit(s->txn, session_commit_done_cb, s);
}

/* session_linger.c says it is time to close. */
static void
session_linger_done_cb(void *arg)
{
	struct session	*s = arg;

	session_close(s, s->close_reason);
}

/* The last reply is out: half-close and linger (session_linger.h). */
static void
session_linger(struct session *s)
{
	s->linger.done = session_linger_done_cb;
	s->linger.arg = s;
	if (!session_linger_start(&s->linger, s->bev)) {
		session_close(s, s->close_reason);
		return;
	}
	session_set_state(s, SESSION_LINGER);
	/* What is buffered already goes the way of what follows. */
	bufferevent_trigger(s->bev, EV_READ, 0);
}

/* Consumes buffered input until it runs out or the state says stop. */
static void
session_process(struct session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer		*out = bufferevent_get_output(s->bev);
	enum session_auth_next	 next;
	size_t			 len;
	bool			 crlf;

	while (s->state != SESSION_COMMIT && s->state != SESSION_QUIT &&
	    s->state != SESSION_STARTTLS && s->state != SESSION_HANDSHAKE &&
	    s->state != SESSION_VERIFY) {
		if (evbuffer_get_length(out) > SESSION_OUTPUT_MAX) {
			/* The client is not reading our replies: wait for
			 * the write callback before taking more input. */
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (s->state == SESSION_DATA) {
			if (!session_txn_read(s->txn, in))
				return;
			session_data_end(s);
			continue;
		}
		if (s->state == SESSION_AUTH) {
			if (!session_auth_input(s->auth, in, s->ctx->users,
			    s->ctx->authcheck, &next))
				return;
			session_auth_next(s, next);
			continue;
		}
		switch (line_get(&s->cmd_reader, in, s->line, &len, &crlf)) {
		case LINE_AGAIN:
			return;
		case LINE_TOOLONG:
			session_reply(s, SMTPSRV_LINE_LONG);
			session_error(s);
			break;
		case LINE_OK:
			session_dispatch(s, s->line, len);
			break;
		}
	}
	if (s->state == SESSION_QUIT) {
		/* Whatever else the client pipelined is not answered. */
		bufferevent_disable(s->bev, EV_READ);
		if (evbuffer_get_length(out) == 0)
			session_linger(s);
	}
}

static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;
	const char	*reason;

	(void)bev;
	if (s->state == SESSION_QUIT) {
		session_linger(s);
		return;
	}
	if (s->state == SESSION_STARTTLS) {
		/* The 220 is out: the handshake takes over the socket. */
		if (session_tls_starttls(s->ctx->tls, s->ctx->base, &s->bev,
		    s->conf->command_timeout, &s->tlsconn, &reason) == -1)
			session_close(s, reason);
		else
			session_set_state(s, SESSION_HANDSHAKE);
		return;
	}
	if (s->state != SESSION_COMMIT && s->state != SESSION_VERIFY &&
	    !(bufferevent_get_enabled(s->bev) & EV_READ)) {
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		log_info("session timeout sid=%08x client=%s state=%s",
		    s->sid, s->addr, session_state_name[s->state]);
		if (s->state == SESSION_QUIT || (what & BEV_EVENT_WRITING)) {
			session_close(s, "timeout");
			return;
		}
		session_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->conf->hostname);
		s->close_reason = "timeout";
		session_set_state(s, SESSION_QUIT);
		bufferevent_disable(s->bev, EV_READ);
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	if ((what & BEV_EVENT_EOF) && s->state != SESSION_QUIT &&
	    evbuffer_get_length(bufferevent_get_output(s->bev)) > 0) {
		/* The client half-closed: let our last replies out. */
		s->close_reason = "eof";
		session_set_state(s, SESSION_QUIT);
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	session_close(s, (what & BEV_EVENT_EOF) ? "eof" : "error");
}

/* The handshake finished: greet (implicit TLS), or start afresh
 * (STARTTLS: RFC 3207 section 4.2 discards all the client said before,
 * so EHLO comes again and an AUTH made in plaintext no longer holds). */
static void
session_tls_done_cb(void *arg, enum session_tls_end end)
{
	struct session		*s = arg;
	const struct conf	*conf = s->conf;

	if (end == SESSION_TLS_FAILED) {
		session_close(s, "tls");
		return;
	}
	s->tls = true;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	session_set_timeout(s, conf->command_timeout);
	session_txn_reset(s->txn);
	s->helo[0] = '\0';
	s->esmtp = false;
	session_auth_reset(s->auth);
	session_set_state(s, SESSION_GREETED);
	if (end == SESSION_TLS_EARLY) {
		s->ctx->refused_early_talker++;
		session_reply(s, "554 5.5.1 %s Error: talked before the "
		    "greeting", conf->hostname);
		s->close_reason = "early-talker";
		session_set_state(s, SESSION_QUIT);
		bufferevent_disable(s->bev, EV_READ);
		return;
	}
	if (s->implicit_tls)
		session_reply(s, "220 %s ESMTP smartrelay", conf->hostname);
	session_process(s);
}

/* Frees what session_alloc() made. */
static void
session_free(struct session *s)
{
	session_txn_free(s->txn);
	session_auth_free(s->auth);
	conf_free(s->conf);
	free(s);
}

static void
session_close(struct session *s, const char *reason)
{
	struct session_ctx	*ctx = s->ctx;

	if (s->bev != NULL) {
		log_info("session disconnect sid=%08x client=%s reason=%s",
		    s->sid, s->addr, reason ? reason : "unknown");
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	if (s->state == SESSION_COMMIT || s->state == SESSION_VERIFY) {
		/* The spool or the password check still holds a pointer
		 * to us: its callback finishes the job. */
		s->closed = true;
		s->close_reason = reason;
		return;
	}
	TAILQ_REMOVE(&ctx->sessions, s, entry);
	ctx->nsessions--;
	session_free(s);
	if (ctx->stopping && ctx->nsessions == 0 && ctx->drained != NULL)
		ctx->drained(ctx->drained_arg);
}

void
session_ctx_init(struct session_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	TAILQ_INIT(&ctx->sessions);
}

/* A session for peer <sa>, not yet listed nor attached to any
 * bufferevent. */
static struct session *
session_alloc(struct session_ctx *ctx, const struct sockaddr *sa,
    socklen_t salen, unsigned int flags)
{
	static unsigned int	 next_sid;
	struct session_auth_conn aconn;
	struct session		*s;

	s = xcalloc(1, sizeof(*s));
	s->ctx = ctx;
	if (next_sid == 0)
		next_sid = (unsigned int)time(NULL) * 2654435761u;
	s->sid = next_sid++;
	if (salen > sizeof(s->peer))
		salen = sizeof(s->peer);
	memcpy(&s->peer, sa, salen);
	cidr_addr_str(sa, s->addr, sizeof(s->addr));
	s->conf = conf_ref(ctx->conf);
	s->net = conf_network_find(s->conf, sa);
	s->implicit_tls = (flags & SESSION_F_TLS) != 0;
	s->auth_plain_ok = (flags & SESSION_F_AUTH_PLAIN) != 0;
	line_reader_init(&s->cmd_reader, SMTP_CMD_LINE_MAX);
	aconn.sid = s->sid;
	aconn.addr = s->addr;
	aconn.reply = session_reply_cb;
	aconn.error = session_error_cb;
	aconn.checked = session_auth_checked_cb;
	aconn.arg = s;
	s->auth = session_auth_new(&aconn);
	s->txn = session_txn_new(s->conf, s->sid, s->addr);
	s->tlsconn.sid = s->sid;
	s->tlsconn.addr = s->addr;
	s->tlsconn.done = session_tls_done_cb;
	s->tlsconn.arg = s;
	s->state = SESSION_GREETED;
	return s;
}

/* Lists the session, whose bufferevent is set, and greets the client
 * (not yet with implicit TLS: after the handshake). */
static void
session_start(struct session *s)
{
	struct session_ctx	*ctx = s->ctx;
	char			 netname[512] = "";

	TAILQ_INSERT_TAIL(&ctx->sessions, s, entry);
	ctx->nsessions++;
	if (s->net != NULL && s->net->name[0] != '\0')
		str_log_escape(s->net->name, strlen(s->net->name), netname,
		    sizeof(netname));
	log_info("session connect sid=%08x client=%s%s%s%s%s", s->sid,
	    s->addr, s->implicit_tls ? " tls=implicit" : "",
	    netname[0] != '\0' ? " network=\"" : "", netname,
	    netname[0] != '\0' ? "\"" : "");
	if (s->implicit_tls)
		return;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	session_set_timeout(s, s->conf->command_timeout);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	session_reply(s, "220 %s ESMTP smartrelay", s->conf->hostname);
}

int
session_new(struct session_ctx *ctx, int fd, const struct sockaddr *sa,
    socklen_t salen, unsigned int flags)
{
	struct session	*s = session_alloc(ctx, sa, salen, flags);

	if (s->implicit_tls) {
		if ((s->bev = session_tls_wrap(ctx->tls, ctx->base, fd,
		    s->conf->command_timeout, &s->tlsconn)) == NULL) {
			evutil_closesocket(fd);
			session_free(s);
			return -1;
		}
		session_set_state(s, SESSION_HANDSHAKE);
	} else if ((s->bev = bufferevent_socket_new(ctx->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warnx("session bufferevent_socket_new failed");
		evutil_closesocket(fd);
		session_free(s);
		return -1;
	}
	session_start(s);
	return 0;
}

void
session_new_bev(struct session_ctx *ctx, struct bufferevent *bev,
    const struct sockaddr *sa, socklen_t salen, unsigned int flags)
{
	struct session	*s;

	s = session_alloc(ctx, sa, salen, flags & ~SESSION_F_TLS);
	s->bev = bev;
	session_start(s);
}

unsigned int
session_count_from(const struct session_ctx *ctx, const struct sockaddr *sa)
{
	const struct session	*s;
	unsigned int		 n = 0;

	TAILQ_FOREACH(s, &ctx->sessions, entry)
		if (!s->closed && cidr_same_addr(
		    (const struct sockaddr *)&s->peer, sa))
			n++;
	return n;
}

void
session_stop_all(struct session_ctx *ctx)
{
	struct session	*s, *next;

	/* No reply can reach a client between STARTTLS and the end of the
	 * handshake: those just close (before "stopping" is set, so that
	 * ctx->drained runs once, below or from session_close()). */
	for (s = TAILQ_FIRST(&ctx->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state == SESSION_STARTTLS ||
		    s->state == SESSION_HANDSHAKE)
			session_close(s, "shutdown");
	}
	ctx->stopping = true;
	for (s = TAILQ_FIRST(&ctx->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		if (s->state == SESSION_COMMIT || s->state == SESSION_QUIT ||
		    s->state == SESSION_LINGER || s->state == SESSION_VERIFY)
			continue;
		session_shutdown(s, ctx->conf->hostname);
		bufferevent_disable(s->bev, EV_READ);
	}
	if (ctx->nsessions == 0 && ctx->drained != NULL)
		ctx->drained(ctx->drained_arg);
}

void
session_free_all(struct session_ctx *ctx)
{
	struct session	*s;

	while ((s = TAILQ_FIRST(&ctx->sessions)) != NULL) {
		if (s->bev != NULL) {
			bufferevent_free(s->bev);
			s->bev = NULL;
		}
		TAILQ_REMOVE(&ctx->sessions, s, entry);
		ctx->nsessions--;
		session_free(s);
	}
}
