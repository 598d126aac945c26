/*
 * session.c - server-side SMTP state machine (RFC 5321), one per client.
 *
 * Input is taken line by line (line.c) and either dispatched as a command
 * through one table that decides what is allowed in which state, or,
 * during DATA, decoded (smtp.c) and streamed to the spool.  After the
 * end of data the session stops reading until the spool's worker reports
 * the commit, so no pipelined command is answered before that 250.
 * STARTTLS (RFC 3207) throws away what was pipelined after it and
 * everything learnt before it; AUTH (RFC 4954) is offered only over TLS
 * or on a listener that allows it in plaintext.
 * Invariant: session_close() is the only place a session is freed.
 */
#include "config.h"

#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
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
#include "route.h"
#include "session_int.h"
#include "smtp.h"
#include "spool.h"
#include "tls.h"
#include "util.h"

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

void
session_set_state(struct session *s, enum session_state st)
{
	if (log_is_debug())
		log_debug("session state sid=%08x %s->%s", s->sid,
		    session_state_name[s->state], session_state_name[st]);
	s->state = st;
}

/* Queues one reply line; CRLF is added here and nowhere else. */
void
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
void
session_error(struct session *s)
{
	if (++s->errors < SESSION_ERRORS_MAX)
		return;
	session_reply(s, "421 4.7.0 %s Error: too many errors",
	    s->conf->hostname);
	s->close_reason = "errors";
	session_set_state(s, SESSION_QUIT);
}

void
session_set_timeout(struct session *s, uint64_t secs)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)secs;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* Forgets the transaction (RSET, HELO, after DATA). */
void
session_reset(struct session *s)
{
	size_t	i;

	for (i = 0; i < s->nrcpt; i++)
		free(s->rcpts[i]);
	free(s->rcpts);
	s->rcpts = NULL;
	s->nrcpt = 0;
	memset(&s->mail, 0, sizeof(s->mail));
	if (s->msg != NULL) {
		spool_abort(s->msg);
		s->msg = NULL;
	}
	s->msg_ioerr = false;
}

static void
session_helo(struct session *s, const char *args, bool esmtp)
{
	const struct conf	*conf = s->conf;

	if (smtp_parse_helo(args, s->helo, sizeof(s->helo)) != SMTP_OK) {
		session_reply(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		session_error(s);
		return;
	}
	/* RFC 5321 4.1.4: a new HELO/EHLO resets the transaction. */
	session_reset(s);
	s->esmtp = esmtp;
	session_set_state(s, SESSION_READY);
	if (!esmtp) {
		session_reply(s, "250 %s", conf->hostname);
		return;
	}
	session_reply(s, "250-%s", conf->hostname);
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-SIZE %llu",
	    (unsigned long long)conf->max_message_size);
	session_reply(s, "250-8BITMIME");
	session_reply(s, "250-SMTPUTF8");
	if (s->ctx->tls != NULL && !s->tls)
		session_reply(s, "250-STARTTLS");
	if (session_auth_is_offered(s))
		session_reply(s, "250-AUTH PLAIN LOGIN");
	session_reply(s, "250 ENHANCEDSTATUSCODES");
}

static void
session_cmd_helo(struct session *s, const char *args)
{
	session_helo(s, args, false);
}

static void
session_cmd_ehlo(struct session *s, const char *args)
{
	session_helo(s, args, true);
}

/* "MAIL FROM:<scanner>" becomes scanner@domain; the null sender stays
 * null.  Returns 0, or -1 when the result is too long. */
static int
session_qualify_sender(struct session *s)
{
	char	q[SMTP_ADDR_BUFSZ];

	if (s->mail.path[0] == '\0' || strchr(s->mail.path, '@') != NULL)
		return 0;
	if (route_qualify(&s->conf->route, s->mail.path, q, sizeof(q)) == -1)
		return -1;
	memcpy(s->mail.path, q, sizeof(q));
	return 0;
}

static void
session_cmd_mail(struct session *s, const char *args)
{
	if (s->net != NULL && s->net->auth == CONF_NET_AUTH_REQUIRED &&
	    !s->authed) {
		session_reply(s, "530 5.7.0 Authentication required");
		session_error(s);
		return;
	}
	switch (smtp_parse_mail(args, s->conf->max_message_size,
	    &s->mail)) {
	case SMTP_OK:
		if (session_qualify_sender(s) == -1) {
			session_reply(s, "501 5.1.7 Bad sender address "
			    "syntax (cannot be qualified with the domain)");
			break;
		}
		session_set_state(s, SESSION_MAIL);
		session_reply(s, "250 2.1.0 Ok");
		return;
	case SMTP_EADDR:
		session_reply(s, "501 5.1.7 Bad sender address syntax");
		break;
	case SMTP_EPARAM:
		session_reply(s, "555 5.5.4 Unsupported MAIL parameter");
		break;
	case SMTP_ETOOBIG:
		session_reply(s, "552 5.3.4 Message size exceeds fixed "
		    "maximum message size");
		break;
	default:
		session_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
		break;
	}
	memset(&s->mail, 0, sizeof(s->mail));
	session_error(s);
}

/* True when <addr> is a recipient of the transaction already. */
static bool
session_has_rcpt(const struct session *s, const char *addr)
{
	size_t	i;

	for (i = 0; i < s->nrcpt; i++)
		if (strcmp(s->rcpts[i], addr) == 0)
			return true;
	return false;
}

/* Logs where a local name went: the one line that tells an admin why
 * cron's mail to root arrived at admin_address. */
static void
session_log_route(const struct session *s, const char *original,
    const struct route_result *res)
{
	char	orig[4 * SMTP_ADDR_BUFSZ], list[1024];

	log_info("session rcpt sid=%08x original=<%s> rewritten=%s via=%s",
	    s->sid, str_log_escape(original, strlen(original), orig,
	    sizeof(orig)), route_result_fmt(res, list, sizeof(list)),
	    route_how_name(res->how));
}

static void
session_cmd_rcpt(struct session *s, const char *args)
{
	struct smtp_rcpt	rcpt;
	struct route_result	res;
	char			err[256];
	size_t			i, fresh = 0;

	switch (smtp_parse_rcpt(args, &rcpt)) {
	case SMTP_OK:
		break;
	case SMTP_EADDR:
		session_reply(s, "501 5.1.3 Bad recipient address syntax");
		session_error(s);
		return;
	case SMTP_EPARAM:
		session_reply(s, "555 5.5.4 Unsupported RCPT parameter");
		session_error(s);
		return;
	default:
		session_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
		session_error(s);
		return;
	}
	/* Local names go where route.h says; the envelope holds only
	 * where the message is going. */
	if (route_rcpt(&s->conf->route, rcpt.path, &res, err,
	    sizeof(err)) == -1) {
		route_result_cleanup(&res);
		session_reply(s, "501 5.1.3 Bad recipient address syntax "
		    "(%s)", err);
		session_error(s);
		return;
	}
	/* A duplicate is accepted but delivered once, as Postfix does. */
	for (i = 0; i < res.naddrs; i++)
		fresh += !session_has_rcpt(s, res.addrs[i]);
	if (fresh > 0 && s->nrcpt + fresh > s->conf->max_recipients) {
		route_result_cleanup(&res);
		session_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (res.how != ROUTE_REMOTE)
		session_log_route(s, rcpt.path, &res);
	s->rcpts = xrealloc(s->rcpts, (s->nrcpt + fresh + 1) *
	    sizeof(*s->rcpts));
	for (i = 0; i < res.naddrs; i++)
		if (!session_has_rcpt(s, res.addrs[i]))
			s->rcpts[s->nrcpt++] = xstrdup(res.addrs[i]);
	route_result_cleanup(&res);
	if (s->nrcpt > 0)
		session_set_state(s, SESSION_RCPT);
	session_reply(s, "250 2.1.5 Ok");
}

/* The "with" protocol of the trace header (RFC 3848, and RFC 6531 4.3
 * when the client asked for SMTPUTF8). */
static const char *
session_protocol(const struct session *s)
{
	if (!s->esmtp)
		return "SMTP";
	if (s->mail.smtputf8) {
		if (s->tls)
			return s->authed ? "UTF8SMTPSA" : "UTF8SMTPS";
		return s->authed ? "UTF8SMTPA" : "UTF8SMTP";
	}
	if (s->tls)
		return s->authed ? "ESMTPSA" : "ESMTPS";
	return s->authed ? "ESMTPA" : "ESMTP";
}

/* Writes the trace header (RFC 5321 4.4) that starts every message.
 * Over TLS, a comment after the from clause names the protocol version
 * and cipher, as Postfix does. */
static int
session_write_received(struct session *s)
{
	const struct conf	*conf = s->conf;
	char			 date[64], hdr[1024], tlsc[160] = "";
	const char		*v6 = strchr(s->addr, ':') ? "IPv6:" : "";
	int			 n;

	time_fmt(time_wall(), TIME_RFC5322, date, sizeof(date));
	if (s->tls && snprintf(tlsc, sizeof(tlsc), "\r\n\t(using %s with "
	    "cipher %s)", tls_version(s->bev), tls_cipher(s->bev)) >=
	    (int)sizeof(tlsc))
		return -1;
	if (s->nrcpt == 1)
		n = snprintf(hdr, sizeof(hdr),
		    "Received: from %s ([%s%s])%s\r\n\tby %s (smartrelay) "
		    "with %s id %s\r\n\tfor <%s>; %s\r\n", s->helo, v6,
		    s->addr, tlsc, conf->hostname, session_protocol(s),
		    spool_msg_id(s->msg), s->rcpts[0], date);
	else
		n = snprintf(hdr, sizeof(hdr),
		    "Received: from %s ([%s%s])%s\r\n\tby %s (smartrelay) "
		    "with %s id %s;\r\n\t%s\r\n", s->helo, v6, s->addr,
		    tlsc, conf->hostname, session_protocol(s),
		    spool_msg_id(s->msg), date);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -1;
	return spool_msg_write(s->msg, hdr, (size_t)n);
}

static void
session_cmd_data(struct session *s, const char *args)
{
	const struct conf	*conf = s->conf;
	size_t			 i;

	if (*args != '\0') {
		session_reply(s, "501 5.5.4 Syntax: DATA");
		session_error(s);
		return;
	}
	s->msg = spool_msg_new(s->ctx->spool, s->mail.path, s->addr, s->helo);
	if (s->msg == NULL) {
		session_reply(s, "452 4.3.1 Insufficient system storage");
		return;
	}
	for (i = 0; i < s->nrcpt; i++)
		if (spool_msg_add_rcpt(s->msg, s->rcpts[i]) == -1)
			s->msg_ioerr = true;
	/* Passed on upstream (RFC 6152, RFC 6531). */
	spool_msg_set_mime(s->msg, s->mail.body, s->mail.smtputf8);
	if (session_write_received(s) == -1)
		s->msg_ioerr = true;
	stamp_scan_init(&s->stamp);
	/* The client's network may say otherwise than the default. */
	smtp_data_init(&s->data, conf->max_message_size,
	    (s->net != NULL ? s->net->bare_lf : conf->bare_lf) ==
	    CONF_BARE_LF_REJECT, spool_msg_size(s->msg));
	line_reader_init(&s->data_reader, SESSION_DATA_LINE_MAX);
	session_set_timeout(s, conf->data_timeout);
	session_set_state(s, SESSION_DATA);
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
session_cmd_rset(struct session *s, const char *args)
{
	(void)args;
	session_reset(s);
	session_set_state(s, SESSION_READY);
	session_reply(s, "250 2.0.0 Ok");
}

static void
session_cmd_noop(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, "250 2.0.0 Ok");
}

static void
session_cmd_quit(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, "221 2.0.0 Bye");
	s->close_reason = "quit";
	session_set_state(s, SESSION_QUIT);
}

static void
session_cmd_vrfy(struct session *s, const char *args)
{
	(void)args;
	/* RFC 5321 3.5.3: 252 when we will not verify but will accept. */
	session_reply(s, "252 2.5.0 Cannot VRFY user, but will accept "
	    "message and attempt delivery");
}

static void
session_cmd_help(struct session *s, const char *args)
{
	(void)args;
	session_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA "
	    "RSET NOOP QUIT VRFY HELP");
}

#define IN(st)		(1u << (st))
#define COMMANDS	(IN(SESSION_GREETED) | IN(SESSION_READY) | \
			 IN(SESSION_MAIL) | IN(SESSION_RCPT))

/* The 503 texts of a command, for each state that takes commands
 * (GREETED, READY, MAIL, RCPT) in which it is not allowed. */
#define NOT_YET		"send HELO/EHLO first"
#define IN_TXN		"MAIL transaction in progress"
#define REFUSE(g, r, m, c)	{ g, r, m, c }

static const struct session_cmd {
	enum smtp_verb	 verb;
	unsigned int	 allowed;	/* IN() mask of states */
	const char	*refusal[SESSION_RCPT + 1];	/* 503 text by state */
	void		(*handle)(struct session *, const char *args);
} session_cmds[] = {
	{ SMTP_VERB_HELO, COMMANDS, REFUSE(NULL, NULL, NULL, NULL),
	    session_cmd_helo },
	{ SMTP_VERB_EHLO, COMMANDS, REFUSE(NULL, NULL, NULL, NULL),
	    session_cmd_ehlo },
	{ SMTP_VERB_MAIL, IN(SESSION_READY),
	    REFUSE(NOT_YET, NULL, "nested MAIL command",
	    "nested MAIL command"), session_cmd_mail },
	{ SMTP_VERB_RCPT, IN(SESSION_MAIL) | IN(SESSION_RCPT),
	    REFUSE(NOT_YET, "need MAIL command", NULL, NULL),
	    session_cmd_rcpt },
	{ SMTP_VERB_DATA, IN(SESSION_RCPT),
	    REFUSE(NOT_YET, "need MAIL command", "need RCPT command", NULL),
	    session_cmd_data },
	{ SMTP_VERB_RSET, COMMANDS, REFUSE(NULL, NULL, NULL, NULL),
	    session_cmd_rset },
	{ SMTP_VERB_NOOP, COMMANDS, REFUSE(NULL, NULL, NULL, NULL),
	    session_cmd_noop },
	{ SMTP_VERB_QUIT, COMMANDS, REFUSE(NULL, NULL, NULL, NULL),
	    session_cmd_quit },
	{ SMTP_VERB_VRFY, COMMANDS, REFUSE(NULL, NULL, NULL, NULL),
	    session_cmd_vrfy },
	{ SMTP_VERB_HELP, COMMANDS, REFUSE(NULL, NULL, NULL, NULL),
	    session_cmd_help },
	{ SMTP_VERB_STARTTLS, IN(SESSION_GREETED) | IN(SESSION_READY),
	    REFUSE(NULL, NULL, IN_TXN, IN_TXN), session_cmd_starttls },
	{ SMTP_VERB_AUTH, IN(SESSION_READY),
	    REFUSE("send EHLO first", NULL, IN_TXN, IN_TXN),
	    session_cmd_auth },
};

/* The 503 text of <cmd> in the session's state: the table's. */
static const char *
session_refusal(const struct session *s, const struct session_cmd *cmd)
{
	const char	*text = NULL;

	if (s->state <= SESSION_RCPT)
		text = cmd->refusal[s->state];
	return text != NULL ? text : "bad sequence of commands";
}

static void
session_dispatch(struct session *s, const char *line, size_t len)
{
	const struct session_cmd	*cmd = NULL;
	const char			*args;
	enum smtp_verb			 verb;
	size_t				 i;

	if (!smtp_line_is_clean(line, len)) {
		session_reply(s, "500 5.5.2 Error: invalid characters in "
		    "command");
		session_error(s);
		return;
	}
	verb = smtp_parse_verb(line, &args);
	for (i = 0; i < nitems(session_cmds) && cmd == NULL; i++)
		if (session_cmds[i].verb == verb)
			cmd = &session_cmds[i];
	if (cmd == NULL) {
		session_reply(s, "500 5.5.2 Error: command not recognized");
		session_error(s);
	} else if ((cmd->allowed & IN(s->state)) == 0) {
		session_reply(s, "503 5.5.1 Error: %s",
		    session_refusal(s, cmd));
		session_error(s);
	} else
		cmd->handle(s, args);
	/* The line held credentials, if only in base64. */
	if (verb == SMTP_VERB_AUTH)
		explicit_bzero(s->line, sizeof(s->line));
}

/* Runs on the loop thread when the spool has synced (or failed). */
static void
session_commit_done_cb(const char *id, int err, void *arg)
{
	struct session	*s = arg;
	char		 esc[SMTP_ADDR_BUFSZ * 4 + 4];

	if (err == 0) {
		s->ctx->accepted++;
		log_info("session queued id=%s from=<%s> nrcpt=%zu size=%llu "
		    "client=%s sid=%08x", id,
		    str_log_escape(s->mail.path, strlen(s->mail.path), esc,
		    sizeof(esc)), s->nrcpt,
		    (unsigned long long)s->data.size, s->addr, s->sid);
		if (s->ctx->committed != NULL)
			s->ctx->committed(id, s->ctx->committed_arg);
	} else {
		errno = err;
		log_warn("session commit failed sid=%08x client=%s", s->sid,
		    s->addr);
	}
	if (s->closed) {
		/* The client went away; the message stays queued. */
		session_reset(s);
		session_set_state(s, SESSION_READY);
		session_close(s, s->close_reason);
		return;
	}
	if (err == 0)
		session_reply(s, "250 2.0.0 Ok: queued as %s", id);
	else
		session_reply(s, "452 4.3.1 Insufficient system storage");
	session_reset(s);
	session_set_state(s, SESSION_READY);
	if (s->ctx->stopping) {
		session_reply(s, "421 4.3.2 %s Service shutting down",
		    s->conf->hostname);
		s->close_reason = "shutdown";
		session_set_state(s, SESSION_QUIT);
	}
	session_set_timeout(s, s->conf->command_timeout);
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/*
 * Writes the Date: and Message-ID: fields the header section lacked, at
 * its end, into the spool copy: made once, at acceptance, every retry
 * and every upstream sends the same ones (issue 13, item 3).  They count
 * against the size limit like the client's octets.
 */
static void
session_write_stamp(struct session *s)
{
	char	buf[STAMP_FIELDS_MAX], id[320], esc[4 * 320];
	int	n;

	n = stamp_missing(&s->stamp, time_wall(), s->conf->domain, "\r\n",
	    buf, sizeof(buf), id, sizeof(id));
	if (n <= 0) {
		if (n == -1)
			s->msg_ioerr = true;
		return;
	}
	if (spool_msg_write(s->msg, buf, (size_t)n) == -1)
		s->msg_ioerr = true;
	s->data.size += (uint64_t)n;
	log_info("session added sid=%08x date=%s message_id=%s", s->sid,
	    s->stamp.has_date ? "no" : "yes", id[0] != '\0' ?
	    str_log_escape(id, strlen(id), esc, sizeof(esc)) : "no");
}

/* The end of data: answer an error now, or hand the message to the
 * spool and wait (reading paused) for the sync. */
static void
session_data_end(struct session *s)
{
	const struct conf	*conf = s->conf;

	session_set_timeout(s, conf->command_timeout);
	/* A message that is all header section: the fields go last. */
	if (s->data.err == SMTP_DATA_OK && !s->msg_ioerr &&
	    s->stamp.in_headers) {
		s->stamp.in_headers = false;
		session_write_stamp(s);
	}
	if (s->data.err != SMTP_DATA_OK) {
		log_notice("session rejected sid=%08x client=%s reason=\"%s\"",
		    s->sid, s->addr, smtp_data_err_reply(s->data.err));
		session_reply(s, "%s", smtp_data_err_reply(s->data.err));
		session_reset(s);
		session_set_state(s, SESSION_READY);
		return;
	}
	if (s->msg_ioerr) {
		log_warnx("session spool write failed sid=%08x client=%s",
		    s->sid, s->addr);
		session_reply(s, "452 4.3.1 Insufficient system storage");
		session_reset(s);
		session_set_state(s, SESSION_READY);
		return;
	}
	session_set_state(s, SESSION_COMMIT);
	bufferevent_disable(s->bev, EV_READ);
	spool_commit_start(s->msg, session_commit_done_cb, s);
	s->msg = NULL;
}

/* Feeds one decoded line, or with <more> a piece of a long one, to the
 * spool.  Returns false at end of data. */
static bool
session_data_line(struct session *s, size_t len, bool crlf, bool more)
{
	const char	*out;
	size_t		 outlen;

	if (more)
		smtp_data_piece(&s->data, s->line, len, &out, &outlen);
	else if (smtp_data_line(&s->data, s->line, len, crlf, &out,
	    &outlen) == SMTP_DATA_END)
		return false;
	if (s->data.err != SMTP_DATA_OK || s->msg_ioerr)
		return true;
	/* A piece of a long line is not a whole line: the header scan
	 * must not insert Date:/Message-ID: in the middle of it. */
	if (stamp_scan_line(&s->stamp, out, outlen, !more))
		session_write_stamp(s);
	if (spool_msg_write(s->msg, out, outlen) == -1 ||
	    (!more && spool_msg_write(s->msg, "\r\n", 2) == -1))
		s->msg_ioerr = true;
	return true;
}

/* The last reply is out: half-close and drop what the client still
 * sends for a moment before closing.  Closing with unread input makes
 * the kernel send a reset, which can destroy that last reply (a 421
 * after garbage, say) before the client reads it. */
static void
session_linger(struct session *s)
{
	struct timeval	tv = { SESSION_LINGER_SECS, 0 };

	if (shutdown(bufferevent_getfd(s->bev), SHUT_WR) == -1) {
		session_close(s, s->close_reason);
		return;
	}
	session_set_state(s, SESSION_LINGER);
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
}

/* Consumes buffered input until it runs out or the state says stop. */
void
session_process(struct session *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	struct evbuffer	*out = bufferevent_get_output(s->bev);
	size_t		 len;
	bool		 crlf, more;

	if (s->state == SESSION_LINGER) {
		s->lingered += evbuffer_get_length(in);
		evbuffer_drain(in, evbuffer_get_length(in));
		if (s->lingered > SESSION_LINGER_MAX)
			session_close(s, s->close_reason);
		return;
	}
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
			/* A line longer than s->line comes in pieces: it is
			 * content, bounded by the message size only. */
			if (line_get_piece(&s->data_reader, in, s->line, &len,
			    &crlf, &more) == LINE_AGAIN)
				return;
			if (!session_data_line(s, len, crlf, more))
				session_data_end(s);
			continue;
		}
		if (s->state == SESSION_AUTH) {
			if (!session_auth_input(s, in))
				return;
			continue;
		}
		switch (line_get(&s->cmd_reader, in, s->line, &len, &crlf)) {
		case LINE_AGAIN:
			return;
		case LINE_TOOLONG:
			session_reply(s, "500 5.5.2 Error: line too long");
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

void
session_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	if (s->state == SESSION_QUIT) {
		session_linger(s);
		return;
	}
	if (s->state == SESSION_STARTTLS) {
		session_tls_start(s);
		return;
	}
	if (s->state == SESSION_LINGER || s->state == SESSION_HANDSHAKE)
		return;
	if (s->state != SESSION_COMMIT && s->state != SESSION_VERIFY &&
	    !(bufferevent_get_enabled(s->bev) & EV_READ)) {
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
	}
}

void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	if (s->state == SESSION_LINGER) {
		session_close(s, s->close_reason);
		return;
	}
	if (s->state == SESSION_HANDSHAKE) {
		session_tls_event(s, what);
		return;
	}
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

void
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
	session_reset(s);
	TAILQ_REMOVE(&ctx->sessions, s, entry);
	ctx->nsessions--;
	conf_free(s->conf);
	free(s);
	if (ctx->stopping && ctx->nsessions == 0 && ctx->drained != NULL)
		ctx->drained(ctx->drained_arg);
}

void
session_ctx_init(struct session_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	TAILQ_INIT(&ctx->sessions);
}

int
session_new(struct session_ctx *ctx, int fd, const struct sockaddr *sa,
    socklen_t salen, unsigned int flags)
{
	static unsigned int	 next_sid;
	struct session		*s;
	char			 netname[512] = "";

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
	s->state = SESSION_GREETED;
	if (s->implicit_tls) {
		if (session_tls_begin(s, fd) == -1) {
			evutil_closesocket(fd);
			conf_free(s->conf);
			free(s);
			return -1;
		}
	} else if ((s->bev = bufferevent_socket_new(ctx->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		log_warnx("session bufferevent_socket_new failed");
		evutil_closesocket(fd);
		conf_free(s->conf);
		free(s);
		return -1;
	}
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
		return 0;
	bufferevent_setcb(s->bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	session_set_timeout(s, s->conf->command_timeout);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	session_reply(s, "220 %s ESMTP smartrelay", s->conf->hostname);
	return 0;
}

/* Compares the addresses (not ports) of two peers. */
static bool
session_same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	const struct sockaddr_in	*a4, *b4;
	const struct sockaddr_in6	*a6, *b6;

	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		a4 = (const struct sockaddr_in *)(const void *)a;
		b4 = (const struct sockaddr_in *)(const void *)b;
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		a6 = (const struct sockaddr_in6 *)(const void *)a;
		b6 = (const struct sockaddr_in6 *)(const void *)b;
		return memcmp(&a6->sin6_addr, &b6->sin6_addr,
		    sizeof(a6->sin6_addr)) == 0;
	}
	return false;
}

unsigned int
session_count_from(const struct session_ctx *ctx, const struct sockaddr *sa)
{
	const struct session	*s;
	unsigned int		 n = 0;

	TAILQ_FOREACH(s, &ctx->sessions, entry)
		if (!s->closed && session_same_addr(&s->peer, sa))
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
		session_reply(s, "421 4.3.2 %s Service shutting down",
		    ctx->conf->hostname);
		s->close_reason = "shutdown";
		session_set_state(s, SESSION_QUIT);
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
		session_reset(s);
		TAILQ_REMOVE(&ctx->sessions, s, entry);
		ctx->nsessions--;
		conf_free(s->conf);
		free(s);
	}
}
