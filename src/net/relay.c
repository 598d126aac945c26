/*
 * relay.c - client-side SMTP to the smarthost (RFC 5321, RFC 3207
 * STARTTLS, RFC 4954 AUTH, RFC 2920 PIPELINING): the connection.
 *
 * One relay is one connection.  Entering a state sends its command; the
 * reply handler of the state picks the next one.  Invariants: AUTH is
 * only ever sent over a verified TLS connection; after STARTTLS the
 * plaintext input is discarded before the handshake.  Each message is a
 * relay_txn (relay_txn.c: MAIL/RCPT/DATA, the body), fed the replies
 * while the connection is in a transaction state.  AUTH itself is in
 * relay_auth.c; replies are read by relay_reply.c, and what EHLO offers
 * by lib/ehlo.c.  The connection comes from dial.c; until AUTH starts, a
 * failure of the address it reached gives way to the host's next
 * address (relay_fall_through()).
 */
#include "config.h"

#include "relay.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "cidr.h"
#include "conf.h"
#include "dial.h"
#include "ehlo.h"
#include "line.h"
#include "log.h"
#include "relay_auth.h"
#include "relay_reply.h"
#include "relay_txn.h"
#include "smtp.h"
#include "tls.h"
#include "util.h"


#define RELAY_CONNECT_TIMEOUT	30	/* seconds, resolution, each address's
					 * connect, and the TLS handshake */
#define RELAY_REPLY_TIMEOUT	300	/* RFC 5321 4.5.3.2: 5 minutes */
#define RELAY_DOT_TIMEOUT	600	/* 4.5.3.2.6: 10 minutes */
#define RELAY_IDLE_TIMEOUT	10	/* keep an idle connection this long */
#define RELAY_TOKEN_TIMEOUT	60	/* wait for an OAuth access token */

enum relay_state {
	RELAY_S_CONNECTING,
	RELAY_S_HANDSHAKE,	/* TLS handshake (implicit or STARTTLS) */
	RELAY_S_GREETING,
	RELAY_S_EHLO,
	RELAY_S_STARTTLS,
	RELAY_S_AUTH,		/* the AUTH exchange (relay_auth.c) */
	RELAY_S_TOKEN,		/* waiting for an OAuth access token */
	RELAY_S_READY,		/* idle, waiting for relay_send() */
	RELAY_S_PLAN,		/* re-encoder's first pass (reencode.h) */
	RELAY_S_TXN,		/* MAIL/RCPT/DATA replies outstanding */
	RELAY_S_BODY,		/* streaming the message */
	RELAY_S_DOT,		/* waiting for the final reply */
	RELAY_S_RSET,
	RELAY_S_QUIT,
};


struct relay {
	struct event_base	*base;
	struct evdns_base	*dns;
	const struct conf	*conf;
	const struct conf_upstream *up;	/* one of conf->upstream[] */
	struct tls_client	*tls;
	struct relay_cbs	 cbs;
	void			*arg;
	struct dial		*dial;		/* until AUTH starts: the
						 * addresses left to try */
	struct bufferevent	*bev;		/* NULL until connected */
	struct event		*idle;
	enum relay_state	 state;
	bool			 in_tls;
	bool			 dying;		/* closed() already decided */
	unsigned int		 depth;		/* nested callbacks running */
	struct event		*kick;		/* deferred completion */
	char			 peer[300];

	/* What the server's EHLO said. */
	struct ehlo_ext		 ext;
	struct relay_auth	*auth;

	/* The reply being read. */
	struct relay_reply	 rr;

	struct relay_txn	*txn;		/* the message in flight */
};

static void	relay_set_state(struct relay *, enum relay_state);
static void	relay_set_timeout(struct relay *, int secs);
/* Sends one command line.  <what> replaces the line in debug logs, so
 * credentials never reach the log. */
static void	relay_cmd(struct relay *, const char *what, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Callbacks run with a hold on the relay; the last release frees a
 * relay that finished meanwhile, so no code touches it afterwards. */
static void	relay_hold(struct relay *);
static void	relay_release(struct relay *);
/* Ends the connection with <st>, the code of what went wrong and a
 * reason for the log. */
static void	relay_fail(struct relay *, enum relay_status, enum relay_why,
	    const char *, ...) __attribute__((format(printf, 4, 5)));
/* Enters a state, sending its command. */
static void	relay_enter(struct relay *, enum relay_state);

static const char *const relay_state_name[] = {
	"connecting", "handshake", "greeting", "ehlo", "starttls", "auth",
	"token",
	"ready", "plan", "txn", "body", "dot", "rset",
	"quit",
};

static void	relay_read_cb(struct bufferevent *, void *);
static void	relay_write_cb(struct bufferevent *, void *);
static void	relay_event_cb(struct bufferevent *, short, void *);

static void
relay_set_state(struct relay *r, enum relay_state st)
{
	if (log_is_debug())
		log_debug("relay state peer=%s %s->%s", r->peer,
		    relay_state_name[r->state], relay_state_name[st]);
	r->state = st;
}

static void
relay_set_timeout(struct relay *r, int secs)
{
	struct timeval	tv = { secs, 0 };

	bufferevent_set_timeouts(r->bev, &tv, &tv);
}

static void
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
	return strlen(r->rr.reply) > 4 ? r->rr.reply + 4 : "";
}

/* Callbacks run with a hold on the relay; the last release frees a
 * relay that finished meanwhile, so no code touches it afterwards. */
static void
relay_hold(struct relay *r)
{
	r->depth++;
}

static void
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

/* What a new connection must not inherit from the previous one. */
static void
relay_conn_reset(struct relay *r)
{
	r->in_tls = false;
	relay_reply_init(&r->rr);
	ehlo_ext_reset(&r->ext);
	relay_auth_reset(r->auth);
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
	if (st != RELAY_UNAVAILABLE || r->dial == NULL || r->txn != NULL)
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
	case RELAY_S_TOKEN:
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
	struct envelope		*env;
	struct relay_failure	 f;

	if (r->dying || relay_fall_through(r, st, reason))
		return;
	r->dying = true;
	if (r->txn != NULL) {
		env = relay_txn_env(r->txn);
		relay_txn_free(r->txn);
		r->txn = NULL;
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

static void
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

/* One EHLO keyword line. */
static void
relay_ehlo_line_cb(void *arg, const char *kw)
{
	struct relay	*r = arg;
	const char	*mechs;

	if ((mechs = ehlo_ext_line(&r->ext, kw)) != NULL)
		relay_auth_offered(r->auth, mechs);
}

/* Reads one complete reply into r->rr.  Returns 1 when one is ready, 0
 * when more input is needed, -1 on a malformed reply (the connection is
 * then failed). */
static int
relay_read_reply(struct relay *r)
{
	const char	*error;
	int		 rc;

	rc = relay_reply_read(&r->rr, bufferevent_get_input(r->bev),
	    r->state == RELAY_S_EHLO ? relay_ehlo_line_cb : NULL, r, &error);
	if (rc == -1)
		relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL, "%s",
		    error);
	return rc;
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

/* The transaction is over: report it and become idle. */
static void
relay_txn_report(struct relay *r)
{
	struct envelope		*env = relay_txn_env(r->txn);
	enum relay_status	 st;
	const char		*text;
	char			 reply[RELAY_REPLY_TEXT_MAX];

	st = relay_txn_status(r->txn, &text);
	snprintf(reply, sizeof(reply), "%s", text);
	relay_txn_free(r->txn);
	r->txn = NULL;
	r->cbs.done(r, env, st, reply, r->arg);
}

/* Does what the transaction said. */
static void
relay_txn_do(struct relay *r, enum relay_txn_next next)
{
	enum relay_status	 st;
	enum relay_why		 why;
	const char		*reason;

	switch (next) {
	case RELAY_TXN_START:
		relay_set_timeout(r, RELAY_REPLY_TIMEOUT);
		relay_set_state(r, RELAY_S_TXN);
		break;
	case RELAY_TXN_WAIT:
		break;
	case RELAY_TXN_BODY:
		if (r->state != RELAY_S_BODY)
			relay_set_state(r, RELAY_S_BODY);
		break;
	case RELAY_TXN_DOT:
		relay_set_timeout(r, RELAY_DOT_TIMEOUT);
		relay_set_state(r, RELAY_S_DOT);
		break;
	case RELAY_TXN_RSET:
		relay_enter(r, RELAY_S_RSET);
		break;
	case RELAY_TXN_ENDED:
		relay_set_state(r, RELAY_S_RSET);
		break;
	case RELAY_TXN_PLAN:
		relay_set_state(r, RELAY_S_PLAN);
		break;
	case RELAY_TXN_DONE:
		relay_enter(r, RELAY_S_READY);
		break;
	case RELAY_TXN_FAIL:
		st = relay_txn_failure(r->txn, &why, &reason);
		relay_fail(r, st, why, "%s", reason);
		break;
	}
}

/* The command lines of the transaction and of AUTH go out as any
 * other. */
static void
relay_conn_cmd_cb(void *arg, const char *what, const char *line)
{
	relay_cmd(arg, what, "%s", line);
}

/* The re-encoder's first pass is over. */
static void
relay_plan_cb(void *arg, enum relay_txn_next next)
{
	struct relay	*r = arg;

	relay_hold(r);
	relay_set_state(r, RELAY_S_READY);
	if (next == RELAY_TXN_DONE)
		event_active(r->kick, EV_TIMEOUT, 1);
	else
		relay_txn_do(r, next);
	relay_release(r);
}

static void
relay_enter(struct relay *r, enum relay_state st)
{
	struct timeval	tv = { RELAY_IDLE_TIMEOUT, 0 };

	switch (st) {
	case RELAY_S_EHLO:
		relay_cmd(r, "EHLO", "EHLO %s", r->conf->hostname);
		ehlo_ext_reset(&r->ext);
		relay_auth_reset(r->auth);
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
		if (r->txn != NULL)
			relay_txn_report(r);
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
	line_reader_init(&r->rr.reader, RELAY_REPLY_LINE_MAX);
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


/* Does what AUTH said. */
static void
relay_auth_do(struct relay *r, enum relay_auth_next next)
{
	enum relay_status	 st;
	enum relay_why		 why;
	const char		*reason;

	switch (next) {
	case RELAY_AUTH_SENT:
		if (r->state == RELAY_S_TOKEN)
			relay_set_timeout(r, RELAY_REPLY_TIMEOUT);
		relay_set_state(r, RELAY_S_AUTH);
		break;
	case RELAY_AUTH_TOKEN:
		relay_set_state(r, RELAY_S_TOKEN);
		relay_set_timeout(r, RELAY_TOKEN_TIMEOUT);
		break;
	case RELAY_AUTH_OK:
		relay_enter(r, RELAY_S_READY);
		break;
	case RELAY_AUTH_FAIL:
		st = relay_auth_failure(r->auth, &why, &reason);
		relay_fail(r, st, why, "%s", reason);
		break;
	}
}

/* The access token came, or not. */
static void
relay_auth_resume_cb(void *arg, enum relay_auth_next next)
{
	struct relay	*r = arg;

	relay_hold(r);
	relay_auth_do(r, next);
	relay_release(r);
}

/* Starts AUTH, on verified TLS only. */
static void
relay_auth_begin(struct relay *r)
{
	if (!r->in_tls || !tls_is_verified(r->bev))
		fatalx("relay: AUTH without verified TLS");
	relay_auth_do(r, relay_auth_start(r->auth));
}

/* One reply in a connection-setup state. */
static void
relay_setup_reply(struct relay *r)
{
	enum relay_status	st = relay_classify(r->rr.code,
				    relay_reply_text(r));

	switch (r->state) {
	case RELAY_S_GREETING:
		if (r->rr.code != 220) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_GREETING,
			    "greeting: %s",
			    r->rr.reply);
			return;
		}
		relay_enter(r, RELAY_S_EHLO);
		return;
	case RELAY_S_EHLO:
		if (st != RELAY_OK) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "EHLO: %s", r->rr.reply);
			return;
		}
		if (r->in_tls) {
			/* From here on a failure is the account's, not the
			 * address's: no other address is tried. */
			dial_free(r->dial);
			r->dial = NULL;
			relay_auth_begin(r);
		} else if (!r->ext.starttls)
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_NO_STARTTLS,
			    "server does not offer "
			    "STARTTLS; refusing to continue in plaintext");
		else
			relay_enter(r, RELAY_S_STARTTLS);
		return;
	case RELAY_S_STARTTLS:
		if (r->rr.code != 220) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "STARTTLS: %s",
			    r->rr.reply);
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
			    r->rr.reply);
		switch (r->state) {
		case RELAY_S_GREETING:
		case RELAY_S_EHLO:
		case RELAY_S_STARTTLS:
			relay_setup_reply(r);
			break;
		case RELAY_S_AUTH:
			relay_auth_do(r, relay_auth_reply(r->auth, r->rr.code,
			    r->rr.reply));
			break;
		case RELAY_S_TXN:
			relay_txn_do(r, relay_txn_reply(r->txn, r->rr.code,
			    r->rr.reply));
			break;
		case RELAY_S_DOT:
			relay_txn_do(r, relay_txn_dot_reply(r->txn,
			    r->rr.code, r->rr.reply));
			break;
		case RELAY_S_RSET:
			/* After RSET (or the dot ending an empty DATA), the
			 * batch is finished whatever was answered. */
			relay_txn_do(r, relay_txn_after_rset(r->txn));
			break;
		case RELAY_S_QUIT:
			relay_finish(r, RELAY_IDLE, RELAY_WHY_NONE, "idle");
			break;
		default:
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "unexpected reply "
			    "in state %s: %s", relay_state_name[r->state],
			    r->rr.reply);
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
		relay_txn_do(r, relay_txn_pump(r->txn));
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

/* r->bev is connected: TLS at once (implicit), or wait for the
 * greeting. */
static void
relay_connect_start(struct relay *r)
{
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
	relay_connect_start(r);
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

/* A relay for <up>, not connected yet. */
static struct relay *
relay_alloc(struct event_base *base, struct evdns_base *dns,
    const struct conf *conf, const struct conf_upstream *up,
    struct tls_client *tls, const struct relay_cbs *cbs, void *arg)
{
	struct relay_auth_conn	 aconn;
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
	aconn.peer = r->peer;
	aconn.cmd = relay_conn_cmd_cb;
	aconn.resume = relay_auth_resume_cb;
	aconn.arg = r;
	r->auth = relay_auth_new(up, &aconn);
	snprintf(r->peer, sizeof(r->peer), "%s:%u", up->host, up->port);
	line_reader_init(&r->rr.reader, RELAY_REPLY_LINE_MAX);
	r->idle = evtimer_new(base, relay_idle_cb, r);
	r->kick = event_new(base, -1, 0, relay_kick_cb, r);
	r->state = RELAY_S_CONNECTING;
	if (r->idle == NULL || r->kick == NULL) {
		log_warnx("relay cannot start a connection to %s", r->peer);
		relay_free(r);
		return NULL;
	}
	return r;
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

	if ((r = relay_alloc(base, dns, conf, up, tls, cbs, arg)) == NULL)
		return NULL;
	/* Resolution runs on evdns (the loop never blocks on DNS), and
	 * every address is tried, RFC 8305 style.  dial never calls back
	 * from inside dial_new(), so neither do we from relay_new(). */
	r->dial = dial_new(base, dns, up->host, up->port,
	    family[up->address_family], RELAY_CONNECT_TIMEOUT, relay_dial_cb,
	    r);
	if (r->dial == NULL) {
		log_warnx("relay cannot start a connection to %s", r->peer);
		relay_free(r);
		return NULL;
	}
	return r;
}

struct relay *
relay_new_bev(struct event_base *base, const struct conf *conf,
    const struct conf_upstream *up, struct tls_client *tls,
    const struct relay_cbs *cbs, void *arg, struct bufferevent *bev)
{
	struct relay	*r;

	if ((r = relay_alloc(base, NULL, conf, up, tls, cbs, arg)) == NULL) {
		bufferevent_free(bev);
		return NULL;
	}
	r->bev = bev;
	relay_connect_start(r);
	return r;
}

void
relay_send(struct relay *r, struct envelope *env, const char *data_path)
{
	struct relay_txn_conn	conn;
	enum relay_txn_next	next;

	if (r->state != RELAY_S_READY || r->txn != NULL)
		fatalx("relay_send in state %s", relay_state_name[r->state]);
	evtimer_del(r->idle);
	conn.base = r->base;
	conn.conf = r->conf;
	conn.up = r->up;
	conn.pipelining = r->ext.pipelining;
	conn.eightbitmime = r->ext.eightbitmime;
	conn.smtputf8 = r->ext.smtputf8;
	conn.size_limit = r->ext.size;
	conn.cmd = relay_conn_cmd_cb;
	conn.plan = relay_plan_cb;
	conn.arg = r;
	r->txn = relay_txn_new(&conn, env, data_path,
	    bufferevent_get_output(r->bev), &next);
	/* Over without a round trip: completed from the loop rather than
	 * from inside relay_send(). */
	if (next == RELAY_TXN_DONE)
		event_active(r->kick, EV_TIMEOUT, 1);
	else
		relay_txn_do(r, next);
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
	relay_txn_free(r->txn);
	relay_auth_free(r->auth);
	tls_client_free(r->tls);
	conf_free(r->conf);
	free(r);
}

void
relay_set_oauth(struct relay *r, struct oauth *o)
{
	relay_auth_set_oauth(r->auth, o);
}

void
relay_quit(struct relay *r)
{
	if (r->state != RELAY_S_READY || r->txn != NULL || r->dying)
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
