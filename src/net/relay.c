/*
 * relay.c - client-side SMTP to the smarthost (RFC 5321, RFC 3207
 * STARTTLS, RFC 4954 AUTH, RFC 2920 PIPELINING).
 *
 * One relay is one connection.  Entering a state sends its command; the
 * reply handler of the state picks the next one.  Invariants: AUTH is
 * only ever sent over a verified TLS connection; after STARTTLS the
 * plaintext input is discarded before the handshake; the message body
 * is streamed from the spool file, dot-stuffed on the way out, with
 * write-watermark backpressure so memory stays flat.  A From: rewrite
 * replaces only the header block (at most REWRITE_HEADER_MAX octets,
 * read once per message) and goes through the same dot-stuffing.  A
 * message whose envelope asks for it (lines over 998 octets, bare CRs,
 * NULs: issue 13) is re-encoded on the way (reencode.h): the first pass
 * reads exactly what is sent (the rewritten header block, then the
 * file), a slice per loop turn; the second runs as the body streams,
 * before the dot-stuffing, so no line it makes can end the data.  AUTH
 * itself is in relay_auth.c.  The connection comes from dial.c; until
 * AUTH starts, a failure of the address it reached gives way to the
 * host's next address (relay_fall_through()).
 */
#include "config.h"

#include "relay_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "cidr.h"
#include "conf.h"
#include "dial.h"
#include "envelope.h"
#include "line.h"
#include "log.h"
#include "mime.h"
#include "oauth.h"
#include "reencode.h"
#include "rewrite.h"
#include "sasl.h"
#include "smtp.h"
#include "tls.h"
#include "util.h"

static const char *const relay_state_name[] = {
	"connecting", "handshake", "greeting", "ehlo", "starttls", "auth",
	"auth-user", "auth-pass", "token", "auth-xoauth2", "auth-xerr",
	"ready", "plan", "txn", "body", "dot", "rset",
	"quit",
};

static void	relay_read_cb(struct bufferevent *, void *);
static void	relay_write_cb(struct bufferevent *, void *);
static void	relay_event_cb(struct bufferevent *, short, void *);

void
relay_set_state(struct relay *r, enum relay_state st)
{
	if (log_is_debug())
		log_debug("relay state peer=%s %s->%s", r->peer,
		    relay_state_name[r->state], relay_state_name[st]);
	r->state = st;
}

void
relay_set_timeout(struct relay *r, int secs)
{
	struct timeval	tv = { secs, 0 };

	bufferevent_set_timeouts(r->bev, &tv, &tv);
}

void
relay_cmd(struct relay *r, const char *what, const char *fmt, ...)
{
	struct evbuffer	*out = bufferevent_get_output(r->bev);
	va_list		 ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	if (log_is_debug())
		log_debug("relay send peer=%s %s", r->peer, what);
}

/* The text after the code of the current reply, or "". */
static const char *
relay_reply_text(const struct relay *r)
{
	return strlen(r->reply) > 4 ? r->reply + 4 : "";
}

/* Callbacks run with a hold on the relay; the last release frees a
 * relay that finished meanwhile, so no code touches it afterwards. */
void
relay_hold(struct relay *r)
{
	r->depth++;
}

void
relay_release(struct relay *r)
{
	if (--r->depth == 0 && r->dying)
		relay_free(r);
}

enum relay_status
relay_classify(int code, const char *text)
{
	/* Gmail's sending limits: pause, never bounce. */
	if ((code == 550 && strncmp(text, "5.4.5", 5) == 0) ||
	    (code == 450 && strncmp(text, "4.2.1", 5) == 0))
		return RELAY_QUOTA;
	if (code >= 200 && code < 400)
		return RELAY_OK;
	if (code >= 400 && code < 500)
		return RELAY_TEMPFAIL;
	return RELAY_PERMFAIL;
}

/* The enhanced status code of the current reply ("5.1.1"), or one made
 * from its class. */
static void
relay_reply_dsn(const struct relay *r, char *dsn, size_t dsnsz)
{
	const char	*t = relay_reply_text(r);
	size_t		 n = strspn(t, "0123456789.");

	if (n >= 5 && n < dsnsz && t[0] == r->reply[0] &&
	    t[1] == '.' && (t[n] == ' ' || t[n] == '\0')) {
		memcpy(dsn, t, n);
		dsn[n] = '\0';
	} else
		snprintf(dsn, dsnsz, "%c.0.0", r->reply[0]);
}

/* What a new connection must not inherit from the previous one. */
static void
relay_conn_reset(struct relay *r)
{
	r->in_tls = false;
	line_reader_init(&r->reader, RELAY_REPLY_LINE_MAX);
	r->replylen = 0;
	r->code = 0;
	r->reply[0] = '\0';
	r->ext_starttls = r->ext_pipelining = false;
	r->ext_8bitmime = r->ext_smtputf8 = false;
	r->ext_size = 0;
	r->mech = SASL_NONE;
}

/*
 * A failure at connect time (TLS handshake, certificate, greeting, EHLO,
 * STARTTLS) is about this address rather than the upstream: go on with
 * the host's next address.  Never once AUTH began (credentials belong to
 * the account, not the address: the next one would refuse them too, and
 * count one more failed login), never with a transaction in flight, and
 * never into plaintext: the next address starts over from TCP.  Returns
 * true when another address is being tried.
 */
static bool
relay_fall_through(struct relay *r, enum relay_status st,
    const char *reason)
{
	if (st != RELAY_UNAVAILABLE || r->dial == NULL || r->env != NULL)
		return false;
	switch (r->state) {
	case RELAY_S_HANDSHAKE:
	case RELAY_S_GREETING:
	case RELAY_S_EHLO:
	case RELAY_S_STARTTLS:
		break;
	default:
		return false;
	}
	/* Safe inside its own callback: libevent holds a reference until
	 * the callback returns, and our callers stop at r->bev == NULL. */
	bufferevent_free(r->bev);
	r->bev = NULL;
	if (dial_next(r->dial, reason) == -1)
		return false;
	relay_conn_reset(r);
	snprintf(r->peer, sizeof(r->peer), "%s:%u", r->up->host, r->up->port);
	relay_set_state(r, RELAY_S_CONNECTING);
	return true;
}

/* The stage a connection in state <st> had reached. */
static enum relay_stage
relay_stage_of(enum relay_state st)
{
	switch (st) {
	case RELAY_S_CONNECTING:
		return RELAY_STAGE_CONNECT;
	case RELAY_S_HANDSHAKE:
		return RELAY_STAGE_TLS;
	case RELAY_S_GREETING:
	case RELAY_S_EHLO:
	case RELAY_S_STARTTLS:
		return RELAY_STAGE_SMTP;
	case RELAY_S_AUTH:
	case RELAY_S_AUTH_USER:
	case RELAY_S_AUTH_PASS:
	case RELAY_S_TOKEN:
	case RELAY_S_AUTH_XOAUTH2:
	case RELAY_S_AUTH_XERR:
		return RELAY_STAGE_AUTH;
	case RELAY_S_PLAN:
	case RELAY_S_TXN:
	case RELAY_S_BODY:
	case RELAY_S_DOT:
	case RELAY_S_RSET:
		return RELAY_STAGE_TXN;
	case RELAY_S_READY:
	case RELAY_S_QUIT:
		break;
	}
	return RELAY_STAGE_IDLE;
}

/* What a failed handshake means (tls_error_kind()). */
static enum relay_why
relay_tls_why(enum tls_failure k)
{
	switch (k) {
	case TLS_FAIL_CERT_NAME:
		return RELAY_WHY_CERT_NAME;
	case TLS_FAIL_CERT_IP:
		return RELAY_WHY_CERT_IP;
	case TLS_FAIL_CERT:
		return RELAY_WHY_CERT;
	case TLS_FAIL_NOT_TLS:
		return RELAY_WHY_TLS_PLAIN;
	case TLS_FAIL_OTHER:
		break;
	}
	return RELAY_WHY_TLS;
}

/* Closes the connection and tells the queue, once (unless another
 * address of the host is worth a try). */
static void
relay_finish(struct relay *r, enum relay_status st, enum relay_why why,
    const char *reason)
{
	struct envelope		*env = r->env;
	struct relay_failure	 f;

	if (r->dying || relay_fall_through(r, st, reason))
		return;
	r->dying = true;
	if (env != NULL) {
		r->env = NULL;
		r->cbs.done(r, env, st == RELAY_IDLE ? RELAY_TEMPFAIL : st,
		    reason, r->arg);
	}
	f.stage = relay_stage_of(r->state);
	f.why = why;
	f.reason = reason;
	r->cbs.closed(r, st, &f, r->arg);
	if (r->depth == 0)
		relay_free(r);
}

void
relay_fail(struct relay *r, enum relay_status st, enum relay_why why,
    const char *fmt, ...)
{
	char	reason[768];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	relay_finish(r, st, why, reason);
}

/* Parses the EHLO keywords we care about from one reply line. */
static void
relay_ehlo_line(struct relay *r, const char *kw)
{
	unsigned long long	n;

	if (strcasecmp(kw, "STARTTLS") == 0)
		r->ext_starttls = true;
	else if (strcasecmp(kw, "PIPELINING") == 0)
		r->ext_pipelining = true;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		r->ext_8bitmime = true;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		r->ext_smtputf8 = true;
	else if (str_has_prefix_ci(kw, "SIZE ") ||
	    strcasecmp(kw, "SIZE") == 0) {
		n = strtoull(kw + 4, NULL, 10);
		r->ext_size = n;
	} else if (str_has_prefix_ci(kw, "AUTH ") ||
	    str_has_prefix_ci(kw, "AUTH=")) {
		if (r->mech == SASL_NONE)
			r->mech = relay_pick_mech(r, kw + 5);
	}
}

/* Reads one complete (possibly multi-line) reply into r->code and
 * r->reply.  Returns 1 when one is ready, 0 when more input is needed,
 * -1 on a malformed reply (the connection is then failed). */
static int
relay_read_reply(struct relay *r)
{
	struct evbuffer	*in = bufferevent_get_input(r->bev);
	size_t		 len, n;
	bool		 crlf, last;
	int		 code;

	for (;;) {
		switch (line_get(&r->reader, in, r->line, &len, &crlf)) {
		case LINE_AGAIN:
			return 0;
		case LINE_TOOLONG:
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "reply line too long");
			return -1;
		case LINE_OK:
			break;
		}
		if (len < 3 || r->line[0] < '2' || r->line[0] > '5' ||
		    r->line[1] < '0' || r->line[1] > '9' ||
		    r->line[2] < '0' || r->line[2] > '9' ||
		    (len > 3 && r->line[3] != ' ' && r->line[3] != '-')) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "malformed reply");
			return -1;
		}
		code = atoi(r->line);
		last = len == 3 || r->line[3] == ' ';
		if (r->replylen > 0 && code != r->code) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "inconsistent multi-line reply");
			return -1;
		}
		r->code = code;
		if (r->state == RELAY_S_EHLO && r->replylen > 0 && len > 4)
			relay_ehlo_line(r, r->line + 4);
		/* Keep "250 text; more text" for logs and reports. */
		if (r->replylen == 0) {
			n = (size_t)snprintf(r->reply, sizeof(r->reply), "%s",
			    r->line);
		} else {
			n = r->replylen + (size_t)snprintf(r->reply +
			    r->replylen, sizeof(r->reply) - r->replylen,
			    " %s", len > 4 ? r->line + 4 : "");
		}
		r->replylen = n < sizeof(r->reply) ? n : sizeof(r->reply) - 1;
		if (last) {
			r->replylen = 0;
			return 1;
		}
		if (r->replylen == 0)
			r->replylen = 1;
	}
}

static void
relay_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay	*r = arg;

	(void)fd;
	(void)what;
	relay_hold(r);
	relay_enter(r, RELAY_S_QUIT);
	relay_release(r);
}

/* Completes a transaction that ended without a round trip, from the
 * loop rather than from inside relay_send(): no recursion through the
 * queue's done() however many such messages come in a row. */
static void
relay_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct relay	*r = arg;

	(void)fd;
	(void)what;
	relay_hold(r);
	relay_enter(r, RELAY_S_READY);
	relay_release(r);
}

/* Takes the next batch of at most 100 pending recipients.  Returns the
 * batch size (0: nothing left to send). */
static size_t
relay_next_batch(struct relay *r)
{
	struct envelope	*env = r->env;

	r->nbatch = 0;
	for (; r->next_rcpt < env->nrcpt &&
	    r->nbatch < RELAY_RCPTS_PER_TXN; r->next_rcpt++)
		if (env->rcpts[r->next_rcpt].state == ENVELOPE_RCPT_PENDING) {
			r->accepted[r->nbatch] = false;
			r->batch[r->nbatch++] = r->next_rcpt;
		}
	return r->nbatch;
}

static void
relay_send_rcpt(struct relay *r, size_t i)
{
	relay_cmd(r, "RCPT", "RCPT TO:<%s>",
	    r->env->rcpts[r->batch[i]].addr);
}

/* With from rewrite = "account": the address this upstream sends as
 * (from_address, else username), or NULL when it is not a mailbox (then
 * the message goes as it is).  NULL in "keep" mode. */
static const char *
relay_account(const struct relay *r)
{
	const char	*a = r->up->from_address[0] != '\0' ?
			    r->up->from_address : r->up->username;

	if (r->conf->from_rewrite != CONF_FROM_ACCOUNT)
		return NULL;
	if (strlen(a) >= SMTP_PATH_MAX || !smtp_mailbox_is_valid(a)) {
		log_warnx("relay from id=%s not rewritten: upstream %s has "
		    "no from_address or username that is an address",
		    r->env->id, r->up->name);
		return NULL;
	}
	return a;
}

/* MAIL FROM: the account in "account" mode, except that the null
 * sender stays null (failure reports must never cause reports). */
static const char *
relay_mail_from(const struct relay *r)
{
	if (r->env->sender[0] == '\0' || r->account == NULL)
		return r->env->sender;
	return r->account;
}

/* The name of the client network the message came from, or NULL. */
static const char *
relay_client_name(const struct relay *r)
{
	struct sockaddr_storage		 ss;
	struct sockaddr_in		*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6		*sin6 = (struct sockaddr_in6 *)&ss;
	const struct conf_network	*net;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, r->env->client, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, r->env->client, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return NULL;	/* "local": smartrelay-sendmail */
	net = conf_network_find(r->conf, (const struct sockaddr *)&ss);
	return net != NULL && net->name[0] != '\0' ? net->name : NULL;
}

/* Rewrites the header block <buf>/<hlen> into r->head. */
static void
relay_head_rewrite(struct relay *r, const char *acct, const char *buf,
    size_t hlen)
{
	struct rewrite_params	 pa;
	struct evbuffer		*out;
	enum rewrite_rc		 rc;

	pa.account = acct;
	pa.display = relay_client_name(r);
	pa.suffix = r->conf->from_suffix;
	if ((out = evbuffer_new()) == NULL)
		fatalx("relay: out of memory");
	rc = rewrite_from(buf, hlen, &pa, out);
	if (rc == REWRITE_OK) {
		r->headlen = evbuffer_get_length(out);
		r->head = xmalloc(r->headlen);
		evbuffer_remove(out, r->head, r->headlen);
		r->head_skip = hlen;
		r->size = r->env->size >= hlen ?
		    r->env->size - hlen + r->headlen : r->headlen;
		log_debug("relay from id=%s rewritten account=%s", r->env->id,
		    acct);
	} else if (rc != REWRITE_UNCHANGED)
		log_warnx("relay from id=%s not rewritten: %s", r->env->id,
		    rewrite_rc_str(rc));
	evbuffer_free(out);
}

/* Prepares the From: rewrite of the message (see rewrite.h): reads at
 * most REWRITE_HEADER_MAX octets of the data file, so memory stays
 * bounded whatever the message.  Sets r->size.  Returns 0, or -1 with
 * errno set when the file cannot be read. */
static int
relay_head_prepare(struct relay *r)
{
	const char	*acct;
	char		*buf;
	size_t		 len = 0, hlen;
	ssize_t		 n = 1;
	enum rewrite_rc	 rc;

	r->size = r->env->size;
	if ((acct = r->account = relay_account(r)) == NULL)
		return 0;
	buf = xmalloc(REWRITE_HEADER_MAX);
	while (len < REWRITE_HEADER_MAX && n != 0) {
		n = read(r->fd, buf + len, REWRITE_HEADER_MAX - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			free(buf);
			return -1;
		}
		len += (size_t)n;
	}
	rc = rewrite_header_len(buf, len, n == 0, &hlen);
	if (rc == REWRITE_OK)
		relay_head_rewrite(r, acct, buf, hlen);
	else
		log_warnx("relay from id=%s not rewritten: %s", r->env->id,
		    rewrite_rc_str(rc));
	free(buf);
	return 0;
}

/* The MAIL FROM parameters that pass on what the client declared, as
 * far as the upstream takes them: BODY=8BITMIME (RFC 6152) for a
 * message declared so or holding 8-bit octets, BODY=7BIT as declared,
 * SMTPUTF8 (RFC 6531) when it was asked for or an address needs it.
 * relay_send_go() has failed what the upstream cannot take. */
static const char *
relay_mail_params(const struct relay *r)
{
	const struct envelope	*env = r->env;
	bool			 utf8 = r->ext_smtputf8 && env->smtputf8;

	if (r->ext_8bitmime && (env->body == ENVELOPE_BODY_8BITMIME ||
	    env->eightbit != ENVELOPE_8BIT_NONE))
		return utf8 ? " BODY=8BITMIME SMTPUTF8" : " BODY=8BITMIME";
	if (r->ext_8bitmime && env->body == ENVELOPE_BODY_7BIT)
		return utf8 ? " BODY=7BIT SMTPUTF8" : " BODY=7BIT";
	return utf8 ? " SMTPUTF8" : "";
}

/* Starts a transaction for the current batch: with PIPELINING the
 * whole group MAIL, RCPT..., DATA goes out at once (RFC 2920 3.1). */
static void
relay_txn_start(struct relay *r)
{
	char	size[32] = "";
	size_t	i;

	r->nexpect = 0;
	r->iexpect = 0;
	r->mail_ok = false;
	r->data_ok = false;
	r->expect[r->nexpect++] = RELAY_X_MAIL;
	if (r->ext_size > 0)
		snprintf(size, sizeof(size), " SIZE=%llu",
		    (unsigned long long)r->size);
	relay_cmd(r, "MAIL", "MAIL FROM:<%s>%s%s", relay_mail_from(r), size,
	    relay_mail_params(r));
	if (r->ext_pipelining) {
		for (i = 0; i < r->nbatch; i++) {
			r->expect[r->nexpect++] = RELAY_X_RCPT;
			relay_send_rcpt(r, i);
		}
		r->expect[r->nexpect++] = RELAY_X_DATA;
		relay_cmd(r, "DATA", "DATA");
	}
	relay_set_timeout(r, RELAY_REPLY_TIMEOUT);
	relay_set_state(r, RELAY_S_TXN);
}

/* Records the reply for recipient batch entry <i>. */
static void
relay_rcpt_result(struct relay *r, size_t i, enum envelope_rcpt_state st)
{
	struct envelope_rcpt	*rc = &r->env->rcpts[r->batch[i]];
	char			 dsn[16];

	relay_reply_dsn(r, dsn, sizeof(dsn));
	free(rc->dsn);
	free(rc->reply);
	rc->dsn = xstrdup(dsn);
	rc->reply = xstrdup(r->reply);
	rc->state = st;
}

/* A message-level failure (to MAIL or DATA): applies to the batch. */
static void
relay_txn_reject(struct relay *r, bool only_accepted)
{
	enum relay_status	st = relay_classify(r->code, relay_reply_text(r));
	size_t			i;

	if (st == RELAY_PERMFAIL) {
		for (i = 0; i < r->nbatch; i++)
			if (!only_accepted || r->accepted[i])
				relay_rcpt_result(r, i, ENVELOPE_RCPT_FAILED);
		return;
	}
	/* 4xx or quota: the whole message waits; keep the first reason. */
	if (r->txn_status == RELAY_OK) {
		r->txn_status = st;
		snprintf(r->txn_reply, sizeof(r->txn_reply), "%s", r->reply);
	}
	for (i = 0; i < r->nbatch; i++)
		if (!only_accepted || r->accepted[i])
			relay_rcpt_result(r, i, ENVELOPE_RCPT_PENDING);
}

static void	relay_body_pump(struct relay *);
static void	relay_body_out_cb(void *, const char *, size_t);

/* The DATA reply arrived: stream the body or give up on this batch. */
static void
relay_data_reply(struct relay *r, bool any_accepted)
{
	if (r->code == 354 && any_accepted) {
		r->data_ok = true;
		r->at_bol = true;
		r->body_crlf = true;
		r->head_off = 0;
		if (r->re != NULL)
			reencode_emit_start(r->re, relay_body_out_cb, r);
		else
			mime_scan_init(&r->guard);
		if (lseek(r->fd, (off_t)r->head_skip, SEEK_SET) == -1) {
			relay_fail(r, RELAY_TEMPFAIL, RELAY_WHY_LOCAL,
			    "cannot read spool file");
			return;
		}
		relay_set_state(r, RELAY_S_BODY);
		relay_body_pump(r);
		return;
	}
	if (r->code == 354) {
		/* RFC 2920 3.1: no recipient, but DATA accepted: send an
		 * empty message to end it.  Its reply is not relevant. */
		relay_cmd(r, ".", ".");
		relay_set_state(r, RELAY_S_RSET);
		return;
	}
	if (any_accepted)
		relay_txn_reject(r, true);
	relay_enter(r, RELAY_S_RSET);
}

static bool
relay_any_accepted(const struct relay *r)
{
	size_t	i;

	for (i = 0; i < r->nbatch; i++)
		if (r->accepted[i])
			return true;
	return false;
}

/* Handles one reply of the MAIL/RCPT/DATA group. */
static void
relay_txn_reply(struct relay *r)
{
	enum relay_expect	x = r->expect[r->iexpect++];
	enum relay_status	st = relay_classify(r->code, relay_reply_text(r));
	size_t			i;

	switch (x) {
	case RELAY_X_MAIL:
		r->mail_ok = st == RELAY_OK;
		if (!r->mail_ok)
			relay_txn_reject(r, false);
		if (!r->ext_pipelining) {
			if (!r->mail_ok) {
				relay_enter(r, RELAY_S_RSET);
				return;
			}
			r->expect[r->nexpect++] = RELAY_X_RCPT;
			relay_send_rcpt(r, 0);
		}
		return;
	case RELAY_X_RCPT:
		i = r->iexpect - 2;	/* MAIL came first */
		if (r->mail_ok) {
			if (st == RELAY_OK)
				r->accepted[i] = true;
			else if (st == RELAY_PERMFAIL)
				relay_rcpt_result(r, i, ENVELOPE_RCPT_FAILED);
			else {
				relay_rcpt_result(r, i, ENVELOPE_RCPT_PENDING);
				if (st == RELAY_QUOTA &&
				    r->txn_status == RELAY_OK) {
					r->txn_status = RELAY_QUOTA;
					snprintf(r->txn_reply,
					    sizeof(r->txn_reply), "%s",
					    r->reply);
				}
			}
		}
		if (!r->ext_pipelining) {
			if (i + 1 < r->nbatch) {
				r->expect[r->nexpect++] = RELAY_X_RCPT;
				relay_send_rcpt(r, i + 1);
			} else if (relay_any_accepted(r)) {
				r->expect[r->nexpect++] = RELAY_X_DATA;
				relay_cmd(r, "DATA", "DATA");
			} else
				relay_enter(r, RELAY_S_RSET);
		}
		return;
	case RELAY_X_DATA:
		relay_data_reply(r, r->mail_ok && relay_any_accepted(r));
		return;
	}
}

/* Copies file data to the output, doubling a '.' at each line start
 * (RFC 5321 4.5.2, smtp_stuff_span()): one copy per run of lines
 * between two that need a dot.  The spool holds canonical CRLF lines. */
static void
relay_body_stuff(struct relay *r, const char *p, size_t n)
{
	struct evbuffer	*out = bufferevent_get_output(r->bev);
	size_t		 len;
	bool		 dot;

	for (; n > 0; p += len, n -= len) {
		len = smtp_stuff_span(p, n, &r->at_bol, &dot);
		if (dot)
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, p, len);
	}
}

/* What the re-encoder writes: dot-stuffed after it, so that no line it
 * makes can end the data. */
static void
relay_body_out_cb(void *arg, const char *p, size_t n)
{
	relay_body_stuff(arg, p, n);
}

/*
 * One chunk of the message on its way out: through the re-encoder when
 * the message has one, else checked before it is sent.  The spool said
 * this message needs no re-encoding; should a line over 998 octets, a
 * bare CR or a NUL show up all the same, nothing of it goes out: the
 * attempt ends without the final dot, and the envelope, saved by the
 * queue, asks for re-encoding the next time.  Returns false then (the
 * relay is finished).
 */
static bool
relay_body_put(struct relay *r, const char *p, size_t n, bool end)
{
	if (r->re != NULL) {
		reencode_emit(r->re, p, n);
		return true;
	}
	mime_scan_feed(&r->guard, p, n);
	if (!r->guard.dirty && (!end || mime_scan_is_clean(&r->guard))) {
		relay_body_stuff(r, p, n);
		return true;
	}
	log_warnx("relay id=%s has content to re-encode that its envelope "
	    "did not announce; it is tried again, re-encoded", r->env->id);
	r->env->reencode = true;
	relay_fail(r, RELAY_TEMPFAIL, RELAY_WHY_LOCAL,
	    "message needs re-encoding");
	return false;
}

/* Fills the output up to the high watermark; the write callback calls
 * again as it drains.  At the end of the file, sends the final dot. */
static void
relay_body_pump(struct relay *r)
{
	struct evbuffer	*out = bufferevent_get_output(r->bev);
	char		 buf[RELAY_CHUNK];
	ssize_t		 n;

	while (evbuffer_get_length(out) < RELAY_OUT_HIGH) {
		/* A rewritten header block goes first, through the same
		 * re-encoding and dot-stuffing as the file. */
		if (r->head_off < r->headlen) {
			n = (ssize_t)(r->headlen - r->head_off < RELAY_CHUNK ?
			    r->headlen - r->head_off : RELAY_CHUNK);
			if (!relay_body_put(r, r->head + r->head_off,
			    (size_t)n, false))
				return;
			r->head_off += (size_t)n;
			continue;
		}
		n = read(r->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			relay_fail(r, RELAY_TEMPFAIL, RELAY_WHY_LOCAL,
			    "cannot read spool file: %s", strerror(errno));
			return;
		}
		if (n == 0) {
			if (!relay_body_put(r, buf, 0, true))
				return;
			/* A second pass that read other octets than the
			 * first made unusable output: no final dot. */
			if (r->re != NULL &&
			    reencode_emit_end(r->re) != MIME_OK) {
				relay_fail(r, RELAY_TEMPFAIL, RELAY_WHY_LOCAL,
				    "re-encoding: %s",
				    mime_rc_str(MIME_EMISMATCH));
				return;
			}
			if (!r->at_bol)
				evbuffer_add(out, "\r\n", 2);
			relay_cmd(r, "<CRLF>.<CRLF>", ".");
			relay_set_timeout(r, RELAY_DOT_TIMEOUT);
			relay_set_state(r, RELAY_S_DOT);
			return;
		}
		if (!relay_body_put(r, buf, (size_t)n, false))
			return;
	}
}

/* The final reply to the body. */
static void
relay_dot_reply(struct relay *r)
{
	size_t	i;

	if (relay_classify(r->code, relay_reply_text(r)) == RELAY_OK) {
		for (i = 0; i < r->nbatch; i++)
			if (r->accepted[i])
				relay_rcpt_result(r, i, ENVELOPE_RCPT_SENT);
	} else
		relay_txn_reject(r, true);
	/* More recipients than one transaction may carry? */
	if (r->txn_status == RELAY_OK && relay_next_batch(r) > 0) {
		relay_txn_start(r);
		return;
	}
	relay_enter(r, RELAY_S_READY);
}

/* The transaction is over: report it and become idle. */
static void
relay_txn_done(struct relay *r)
{
	struct envelope	*env = r->env;

	if (r->fd != -1) {
		close(r->fd);
		r->fd = -1;
	}
	reencode_free(r->re);
	r->re = NULL;
	r->seven_bit = false;
	free(r->head);
	r->head = NULL;
	r->headlen = r->head_skip = 0;
	r->account = NULL;
	r->env = NULL;
	if (env != NULL)
		r->cbs.done(r, env, r->txn_status, r->txn_reply, r->arg);
}

void
relay_enter(struct relay *r, enum relay_state st)
{
	struct timeval	tv = { RELAY_IDLE_TIMEOUT, 0 };

	switch (st) {
	case RELAY_S_EHLO:
		relay_cmd(r, "EHLO", "EHLO %s", r->conf->hostname);
		r->ext_starttls = r->ext_pipelining = false;
		r->ext_8bitmime = r->ext_smtputf8 = false;
		r->ext_size = 0;
		r->mech = SASL_NONE;
		break;
	case RELAY_S_STARTTLS:
		relay_cmd(r, "STARTTLS", "STARTTLS");
		break;
	case RELAY_S_RSET:
		relay_cmd(r, "RSET", "RSET");
		break;
	case RELAY_S_QUIT:
		evtimer_del(r->idle);
		relay_cmd(r, "QUIT", "QUIT");
		relay_set_timeout(r, RELAY_IDLE_TIMEOUT);
		break;
	case RELAY_S_READY:
		relay_set_state(r, st);
		relay_set_timeout(r, RELAY_REPLY_TIMEOUT);
		evtimer_add(r->idle, &tv);
		/* Report after the state is consistent: done() may call
		 * relay_send() right away. */
		if (r->env != NULL)
			relay_txn_done(r);
		else
			r->cbs.ready(r, r->arg);
		return;
	default:
		break;
	}
	relay_set_state(r, st);
}

static void
relay_starttls(struct relay *r)
{
	struct bufferevent	*tlsbev;

	/* RFC 3207 / CVE-2011-0411: whatever the server sent along with
	 * its 220 must not be read as if it came over TLS. */
	evbuffer_drain(bufferevent_get_input(r->bev),
	    evbuffer_get_length(bufferevent_get_input(r->bev)));
	line_reader_init(&r->reader, RELAY_REPLY_LINE_MAX);
	tlsbev = tls_client_wrap(r->tls, r->base, r->bev,
	    r->up->verify_name);
	if (tlsbev == NULL) {
		relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_LOCAL,
		    "cannot start TLS");
		return;
	}
	r->bev = tlsbev;
	r->in_tls = true;
	bufferevent_setcb(r->bev, relay_read_cb, relay_write_cb,
	    relay_event_cb, r);
	relay_set_state(r, RELAY_S_HANDSHAKE);
	relay_set_timeout(r, RELAY_CONNECT_TIMEOUT);
	bufferevent_setwatermark(r->bev, EV_WRITE, RELAY_OUT_LOW, 0);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
}


/* One reply in a connection-setup state. */
static void
relay_setup_reply(struct relay *r)
{
	enum relay_status	st = relay_classify(r->code, relay_reply_text(r));

	switch (r->state) {
	case RELAY_S_GREETING:
		if (r->code != 220) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_GREETING,
			    "greeting: %s",
			    r->reply);
			return;
		}
		relay_enter(r, RELAY_S_EHLO);
		return;
	case RELAY_S_EHLO:
		if (st != RELAY_OK) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "EHLO: %s", r->reply);
			return;
		}
		if (r->in_tls) {
			/* From here on a failure is the account's, not the
			 * address's: no other address is tried. */
			dial_free(r->dial);
			r->dial = NULL;
			relay_auth_start(r);
		} else if (!r->ext_starttls)
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_NO_STARTTLS,
			    "server does not offer "
			    "STARTTLS; refusing to continue in plaintext");
		else
			relay_enter(r, RELAY_S_STARTTLS);
		return;
	case RELAY_S_STARTTLS:
		if (r->code != 220) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "STARTTLS: %s",
			    r->reply);
			return;
		}
		relay_starttls(r);
		return;
	default:
		fatalx("relay: setup reply in state %s",
		    relay_state_name[r->state]);
	}
}

static void
relay_read_cb(struct bufferevent *bev, void *arg)
{
	struct relay	*r = arg;
	int		 rc;

	(void)bev;
	relay_hold(r);
	while (!r->dying && (rc = relay_read_reply(r)) == 1) {
		if (log_is_debug())
			log_debug("relay reply peer=%s %s", r->peer,
			    r->reply);
		switch (r->state) {
		case RELAY_S_GREETING:
		case RELAY_S_EHLO:
		case RELAY_S_STARTTLS:
			relay_setup_reply(r);
			break;
		case RELAY_S_AUTH:
		case RELAY_S_AUTH_USER:
		case RELAY_S_AUTH_PASS:
			relay_auth_reply(r);
			break;
		case RELAY_S_AUTH_XOAUTH2:
		case RELAY_S_AUTH_XERR:
			relay_xoauth2_reply(r);
			break;
		case RELAY_S_TXN:
			relay_txn_reply(r);
			break;
		case RELAY_S_DOT:
			relay_dot_reply(r);
			break;
		case RELAY_S_RSET:
			/* After RSET (or the dot ending an empty DATA), the
			 * batch is finished whatever was answered. */
			if (r->txn_status == RELAY_OK &&
			    relay_next_batch(r) > 0)
				relay_txn_start(r);
			else
				relay_enter(r, RELAY_S_READY);
			break;
		case RELAY_S_QUIT:
			relay_finish(r, RELAY_IDLE, RELAY_WHY_NONE, "idle");
			break;
		default:
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "unexpected reply "
			    "in state %s: %s", relay_state_name[r->state],
			    r->reply);
			break;
		}
		/* STARTTLS replaced the bufferevent, or the connection
		 * gave way to the next address: reads come anew. */
		if (r->dying || r->state == RELAY_S_HANDSHAKE ||
		    r->bev == NULL)
			break;
	}
	relay_release(r);
}

static void
relay_write_cb(struct bufferevent *bev, void *arg)
{
	struct relay	*r = arg;

	(void)bev;
	relay_hold(r);
	if (r->state == RELAY_S_BODY)
		relay_body_pump(r);
	relay_release(r);
}

/* The TLS handshake finished: belt and braces on verification. */
static void
relay_connected(struct relay *r)
{
	char	desc[128];

	if (r->state != RELAY_S_HANDSHAKE)
		fatalx("relay: connected in state %s",
		    relay_state_name[r->state]);
	if (!tls_is_verified(r->bev)) {
		relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_CERT,
		    "TLS peer not verified");
		return;
	}
	log_debug("relay tls peer=%s %s", r->peer,
	    tls_describe(r->bev, desc, sizeof(desc)));
	relay_set_timeout(r, RELAY_REPLY_TIMEOUT);
	/* Implicit TLS: the greeting comes now; STARTTLS: EHLO again,
	 * forgetting what the server said in plaintext (RFC 3207 4.2). */
	if (r->up->tls == CONF_TLS_IMPLICIT)
		relay_set_state(r, RELAY_S_GREETING);
	else
		relay_enter(r, RELAY_S_EHLO);
}

/* The dial is over: a socket connected to one of the host's addresses
 * (remembered as "host[ip]:port"), or why none could be reached. */
static void
relay_dial_cb(struct dial *d, int fd, const struct sockaddr *sa,
    socklen_t salen, int err, const char *error, void *arg)
{
	struct relay	*r = arg;
	char		 addr[64];

	(void)d;
	(void)salen;
	relay_hold(r);
	if (fd == -1) {
		relay_fail(r, RELAY_UNAVAILABLE, err == DIAL_EDNS ?
		    RELAY_WHY_DNS : err == ECONNREFUSED ? RELAY_WHY_REFUSED :
		    err == ETIMEDOUT ? RELAY_WHY_TIMEOUT : RELAY_WHY_NETWORK,
		    "%s", error);
		goto out;
	}
	r->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (r->bev == NULL) {
		close(fd);
		relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_LOCAL,
		    "cannot set up a connection");
		goto out;
	}
	snprintf(r->peer, sizeof(r->peer), "%s[%s]:%u", r->up->host,
	    cidr_addr_str(sa, addr, sizeof(addr)), r->up->port);
	bufferevent_setcb(r->bev, relay_read_cb, relay_write_cb,
	    relay_event_cb, r);
	bufferevent_setwatermark(r->bev, EV_WRITE, RELAY_OUT_LOW, 0);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	if (r->up->tls == CONF_TLS_IMPLICIT)
		relay_starttls(r);
	else {
		relay_set_state(r, RELAY_S_GREETING);
		relay_set_timeout(r, RELAY_REPLY_TIMEOUT);
	}
out:
	relay_release(r);
}

static void	relay_event_error(struct relay *, short);

static void
relay_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct relay	*r = arg;

	(void)bev;
	relay_hold(r);
	if (what & BEV_EVENT_CONNECTED)
		relay_connected(r);
	else
		relay_event_error(r, what);
	relay_release(r);
}

/* The connection failed or closed: classify by how far it got. */
static void
relay_event_error(struct relay *r, short what)
{
	char			 why[512];
	enum relay_why		 code;
	enum tls_failure	 kind;

	if (r->state == RELAY_S_HANDSHAKE) {
		if (what & BEV_EVENT_TIMEOUT)
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_TIMEOUT,
			    "TLS with %s failed: timeout", r->peer);
		else {
			tls_error_string(r->bev, why, sizeof(why), &kind);
			relay_fail(r, RELAY_UNAVAILABLE, relay_tls_why(kind),
			    "TLS with %s failed: %s", r->peer, why);
		}
		return;
	}
	code = (what & BEV_EVENT_TIMEOUT) ? RELAY_WHY_TIMEOUT :
	    RELAY_WHY_CLOSED;
	snprintf(why, sizeof(why), "%s in state %s",
	    (what & BEV_EVENT_TIMEOUT) ? "timeout" :
	    (what & BEV_EVENT_EOF) ? "connection closed by server" :
	    "connection error", relay_state_name[r->state]);
	switch (r->state) {
	case RELAY_S_READY:
	case RELAY_S_QUIT:
		relay_finish(r, RELAY_IDLE, code, why);
		break;
	case RELAY_S_PLAN:
	case RELAY_S_TXN:
	case RELAY_S_BODY:
	case RELAY_S_DOT:
	case RELAY_S_RSET:
		relay_finish(r, RELAY_TEMPFAIL, code, why);
		break;
	default:
		relay_finish(r, RELAY_UNAVAILABLE, code, why);
		break;
	}
}

struct relay *
relay_new(struct event_base *base, struct evdns_base *dns,
    const struct conf *conf, const struct conf_upstream *up,
    struct tls_client *tls, const struct relay_cbs *cbs, void *arg)
{
	static const int	 family[] = {
		[CONF_FAMILY_ANY] = AF_UNSPEC, [CONF_FAMILY_IPV4] = AF_INET,
		[CONF_FAMILY_IPV6] = AF_INET6,
	};
	struct relay		*r;

	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->dns = dns;
	/* Held for the relay's whole life: a reload may replace both
	 * while this connection still runs (STARTTLS comes later). */
	r->conf = conf_ref(conf);
	r->up = up;
	r->tls = tls_client_ref(tls);
	r->cbs = *cbs;
	r->arg = arg;
	r->fd = -1;
	r->batch = xcalloc(RELAY_RCPTS_PER_TXN, sizeof(*r->batch));
	r->accepted = xcalloc(RELAY_RCPTS_PER_TXN, sizeof(*r->accepted));
	r->expect = xcalloc(RELAY_RCPTS_PER_TXN + 2, sizeof(*r->expect));
	snprintf(r->peer, sizeof(r->peer), "%s:%u", up->host, up->port);
	line_reader_init(&r->reader, RELAY_REPLY_LINE_MAX);
	r->idle = evtimer_new(base, relay_idle_cb, r);
	r->kick = event_new(base, -1, 0, relay_kick_cb, r);
	if (r->idle == NULL || r->kick == NULL)
		goto fail;
	r->state = RELAY_S_CONNECTING;
	/* Resolution runs on evdns (the loop never blocks on DNS), and
	 * every address is tried, RFC 8305 style.  dial never calls back
	 * from inside dial_new(), so neither do we from relay_new(). */
	r->dial = dial_new(base, dns, up->host, up->port,
	    family[up->address_family], RELAY_CONNECT_TIMEOUT, relay_dial_cb,
	    r);
	if (r->dial == NULL)
		goto fail;
	return r;
fail:
	log_warnx("relay cannot start a connection to %s", r->peer);
	relay_free(r);
	return NULL;
}

/* Every pending recipient of the message fails with r->reply, and the
 * transaction ends from the loop. */
static void
relay_send_refuse(struct relay *r)
{
	size_t	i;

	do {
		for (i = 0; i < r->nbatch; i++)
			relay_rcpt_result(r, i, ENVELOPE_RCPT_FAILED);
	} while (relay_next_batch(r) > 0);
	event_active(r->kick, EV_TIMEOUT, 1);
}

/* The first envelope address that is not ASCII among the sender as it
 * is sent and the pending recipients, or NULL. */
static const char *
relay_utf8_addr(const struct relay *r)
{
	const struct envelope	*env = r->env;
	size_t			 i;

	if (!str_is_ascii(relay_mail_from(r)))
		return relay_mail_from(r);
	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpts[i].state == ENVELOPE_RCPT_PENDING &&
		    !str_is_ascii(env->rcpts[i].addr))
			return env->rcpts[i].addr;
	return NULL;
}

/*
 * What the upstream cannot take without a change nobody asked for
 * fails now, for good, with a failure report that says why (r->reply);
 * nothing is ever sent mangled.  RFC 6531 3.5: a UTF-8 address needs
 * SMTPUTF8; so do UTF-8 header fields of a message sent with SMTPUTF8
 * (an undeclared message's 8-bit header goes as 8-bit content, as it
 * always did).  RFC 6152 3: 8-bit data needs 8BITMIME (or SMTPUTF8,
 * which implies it, as Postfix assumes); else an 8-bit body goes
 * re-encoded to 7 bit (r->seven_bit), as Postfix converts it, and
 * 8-bit header text fails; 7-bit data goes without the parameter.
 * Returns false when the message was refused.
 */
static bool
relay_ext_check(struct relay *r)
{
	const struct envelope	*env = r->env;
	const char		*addr;
	char			 esc[4 * SMTP_ADDR_BUFSZ];

	if (!r->ext_smtputf8 && (addr = relay_utf8_addr(r)) != NULL) {
		snprintf(r->reply, sizeof(r->reply), "553 5.6.7 upstream %s "
		    "does not support SMTPUTF8, which the address <%s> "
		    "needs (RFC 6531); the message was not sent",
		    r->up->host, str_log_escape(addr, strlen(addr), esc,
		    sizeof(esc)));
	} else if (!r->ext_smtputf8 && env->smtputf8 &&
	    env->eightbit == ENVELOPE_8BIT_HEADER) {
		snprintf(r->reply, sizeof(r->reply), "554 5.6.9 upstream %s "
		    "does not support SMTPUTF8, which the UTF-8 header of "
		    "this message needs (RFC 6531 3.5); the message was not "
		    "sent", r->up->host);
	} else if (!r->ext_8bitmime && !r->ext_smtputf8 &&
	    env->eightbit == ENVELOPE_8BIT_HEADER) {
		snprintf(r->reply, sizeof(r->reply), "554 5.6.3 upstream %s "
		    "does not support 8BITMIME and the message has 8-bit "
		    "header fields, which are not converted (RFC 6152); the "
		    "message was not sent", r->up->host);
	} else if (!r->ext_8bitmime && !r->ext_smtputf8 &&
	    env->eightbit != ENVELOPE_8BIT_NONE &&
	    (!r->seven_bit || r->re == NULL)) {
		snprintf(r->reply, sizeof(r->reply), "554 5.6.3 upstream %s "
		    "does not support 8BITMIME and the message holds 8-bit "
		    "data (RFC 6152); the message was not sent", r->up->host);
	} else
		return true;
	log_warnx("relay refused id=%s reason=\"%s\"", env->id, r->reply);
	return false;
}

/* The message is ready to go, r->size known. */
static void
relay_send_go(struct relay *r)
{
	if (!relay_ext_check(r)) {
		relay_send_refuse(r);
		return;
	}
	/* RFC 1870: a message over the server's limit would only be
	 * refused after the upload; fail it now with a clear reason. */
	if (r->ext_size > 0 && r->size > r->ext_size) {
		snprintf(r->reply, sizeof(r->reply), "552 5.3.4 message of "
		    "%llu octets exceeds the upstream's limit of %llu",
		    (unsigned long long)r->size,
		    (unsigned long long)r->ext_size);
		relay_send_refuse(r);
		return;
	}
	relay_txn_start(r);
}

/* The re-encoder's first pass is over: send the message re-encoded, as
 * it is (nothing to change after all), or fail it for good with the
 * reason: it cannot be sent without changing what its reader sees. */
static void
relay_plan_done_cb(struct reencode *re, int err, void *arg)
{
	struct relay		*r = arg;
	struct mime_stats	 st;
	enum mime_rc		 rc = reencode_rc(re);
	uint64_t		 busy, slice;
	char			 esc[256];

	relay_hold(r);
	relay_set_state(r, RELAY_S_READY);
	reencode_timing(re, &busy, &slice);
	str_log_escape(reencode_detail(re), strlen(reencode_detail(re)), esc,
	    sizeof(esc));
	if (err != 0) {
		snprintf(r->txn_reply, sizeof(r->txn_reply), "cannot read "
		    "spool file: %s", strerror(err));
		r->txn_status = RELAY_TEMPFAIL;
		event_active(r->kick, EV_TIMEOUT, 1);
	} else if (rc == MIME_OK) {
		reencode_stats(re, &st);
		r->size = reencode_size(re);
		log_info("relay reencode id=%s parts=%u fields=%u altered=%u "
		    "size=%llu->%llu pass1_ms=%llu.%03llu "
		    "slice_max_ms=%llu.%03llu", r->env->id, st.parts,
		    st.fields, st.altered,
		    (unsigned long long)reencode_insize(re),
		    (unsigned long long)r->size,
		    (unsigned long long)(busy / 1000),
		    (unsigned long long)(busy % 1000),
		    (unsigned long long)(slice / 1000),
		    (unsigned long long)(slice % 1000));
		relay_send_go(r);
	} else if (rc == MIME_UNCHANGED) {
		log_info("relay reencode id=%s unchanged", r->env->id);
		reencode_free(r->re);
		r->re = NULL;
		relay_send_go(r);
	} else {
		log_warnx("relay reencode id=%s failed reason=\"%s\" "
		    "detail=\"%s\"", r->env->id, mime_rc_str(rc), esc);
		snprintf(r->reply, sizeof(r->reply), "554 5.6.0 message "
		    "cannot be made conformant: %s (%s)", mime_rc_str(rc),
		    esc);
		relay_send_refuse(r);
	}
	relay_release(r);
}

void
relay_send(struct relay *r, struct envelope *env, const char *data_path)
{
	if (r->state != RELAY_S_READY || r->env != NULL)
		fatalx("relay_send in state %s", relay_state_name[r->state]);
	evtimer_del(r->idle);
	r->env = env;
	r->next_rcpt = 0;
	r->txn_status = RELAY_OK;
	r->txn_reply[0] = '\0';
	r->fd = open(data_path, O_RDONLY | O_CLOEXEC);
	if (r->fd == -1) {
		snprintf(r->txn_reply, sizeof(r->txn_reply), "cannot open "
		    "spool file: %s", strerror(errno));
		r->txn_status = RELAY_TEMPFAIL;
		event_active(r->kick, EV_TIMEOUT, 1);
		return;
	}
	if (relay_next_batch(r) == 0) {
		event_active(r->kick, EV_TIMEOUT, 1);
		return;
	}
	if (relay_head_prepare(r) == -1) {
		snprintf(r->txn_reply, sizeof(r->txn_reply), "cannot read "
		    "spool file: %s", strerror(errno));
		r->txn_status = RELAY_TEMPFAIL;
		event_active(r->kick, EV_TIMEOUT, 1);
		return;
	}
	/* RFC 6152 3: an 8-bit body for an upstream without 8BITMIME is
	 * re-encoded to 7 bit (8-bit header text is not: relay_ext_check()
	 * fails that message). */
	r->seven_bit = !r->ext_8bitmime && !r->ext_smtputf8 &&
	    env->eightbit == ENVELOPE_8BIT_BODY;
	/* The re-encoder reads exactly what would be sent: the header
	 * block as rewritten, then the rest of the file. */
	if (env->reencode || r->seven_bit) {
		relay_set_state(r, RELAY_S_PLAN);
		r->re = reencode_start(r->base, r->head, r->headlen, r->fd,
		    (off_t)r->head_skip, r->seven_bit, relay_plan_done_cb, r);
		return;
	}
	relay_send_go(r);
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	if (r->depth > 0) {
		/* Called from one of our callbacks: the outermost relay
		 * frame frees it on the way out, with no further calls. */
		r->dying = true;
		return;
	}
	dial_free(r->dial);
	if (r->bev != NULL)
		bufferevent_free(r->bev);
	if (r->idle != NULL)
		event_free(r->idle);
	if (r->kick != NULL)
		event_free(r->kick);
	if (r->fd != -1)
		close(r->fd);
	reencode_free(r->re);
	free(r->head);
	str_wipe_free(r->password);
	oauth_cancel(r->oreq);
	str_wipe_free(r->token);
	free(r->batch);
	free(r->accepted);
	free(r->expect);
	tls_client_free(r->tls);
	conf_free(r->conf);
	free(r);
}

void
relay_quit(struct relay *r)
{
	if (r->state != RELAY_S_READY || r->env != NULL || r->dying)
		return;
	relay_hold(r);
	relay_enter(r, RELAY_S_QUIT);
	relay_release(r);
}

const char *
relay_peer(const struct relay *r)
{
	return r->peer;
}
