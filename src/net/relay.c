/*
 * relay.c - client-side SMTP to the smarthost (RFC 5321, RFC 3207
 * STARTTLS, RFC 4954 AUTH, RFC 2920 PIPELINING): the state machine.
 *
 * One relay is one connection.  Entering a state sends its command; the
 * reply handler of the state picks the next one.  Invariants: AUTH is
 * only ever sent over a verified TLS connection; after STARTTLS the
 * plaintext input is discarded before the handshake (relay_link.c, the
 * connection itself: dial, TLS, lines in and out, timeouts).  Each
 * message is a relay_txn (relay_txn.c: MAIL/RCPT/DATA, the body), fed
 * the replies while the connection is in a transaction state.  AUTH
 * itself is in relay_auth.c, and what EHLO offers is read by
 * lib/ehlo.c.  Until AUTH starts, a failure of the address the link
 * reached gives way to the host's next address (relay_fall_through()).
 */
#include "config.h"

#include "relay.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>

#include "conf.h"
#include "ehlo.h"
#include "log.h"
#include "relay_auth.h"
#include "relay_link.h"
#include "relay_reply.h"
#include "relay_txn.h"
#include "util.h"

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
	const struct conf	*conf;
	const struct conf_upstream *up;	/* one of conf->upstream[] */
	struct relay_cbs	 cbs;
	void			*arg;
	struct relay_link	*link;		/* the connection */
	struct event		*idle;
	enum relay_state	 state;
	bool			 dying;		/* closed() already decided */
	unsigned int		 depth;		/* nested callbacks running */
	struct event		*kick;		/* deferred completion */

	/* What the server's EHLO said. */
	struct ehlo_ext		 ext;
	struct relay_auth	*auth;

	struct relay_txn	*txn;		/* the message in flight */
};

static void	relay_set_state(struct relay *, enum relay_state);
/* Ends the connection with <st>, the code of what went wrong and a
 * reason for the log. */
static void	relay_fail(struct relay *, enum relay_status, enum relay_why,
	    const char *, ...) __attribute__((format(printf, 4, 5)));
/* Enters a state, sending its command. */
static void	relay_enter(struct relay *, enum relay_state);

/* Each state's name, and the stage a connection in it had reached. */
static const struct relay_state_info {
	const char		*name;
	enum relay_stage	 stage;
} relay_states[] = {
	[RELAY_S_CONNECTING] =	{ "connecting",	RELAY_STAGE_CONNECT },
	[RELAY_S_HANDSHAKE] =	{ "handshake",	RELAY_STAGE_TLS },
	[RELAY_S_GREETING] =	{ "greeting",	RELAY_STAGE_SMTP },
	[RELAY_S_EHLO] =	{ "ehlo",	RELAY_STAGE_SMTP },
	[RELAY_S_STARTTLS] =	{ "starttls",	RELAY_STAGE_SMTP },
	[RELAY_S_AUTH] =	{ "auth",	RELAY_STAGE_AUTH },
	[RELAY_S_TOKEN] =	{ "token",	RELAY_STAGE_AUTH },
	[RELAY_S_READY] =	{ "ready",	RELAY_STAGE_IDLE },
	[RELAY_S_PLAN] =	{ "plan",	RELAY_STAGE_TXN },
	[RELAY_S_TXN] =		{ "txn",	RELAY_STAGE_TXN },
	[RELAY_S_BODY] =	{ "body",	RELAY_STAGE_TXN },
	[RELAY_S_DOT] =		{ "dot",	RELAY_STAGE_TXN },
	[RELAY_S_RSET] =	{ "rset",	RELAY_STAGE_TXN },
	[RELAY_S_QUIT] =	{ "quit",	RELAY_STAGE_IDLE },
};

static void
relay_set_state(struct relay *r, enum relay_state st)
{
	if (log_is_debug())
		log_debug("relay state peer=%s %s->%s",
		    relay_link_peer(r->link),
		    relay_states[r->state].name, relay_states[st].name);
	r->state = st;
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
	if (st != RELAY_UNAVAILABLE || r->txn != NULL)
		return false;
	/* The handshake, the greeting, EHLO or STARTTLS. */
	if (relay_states[r->state].stage != RELAY_STAGE_TLS &&
	    relay_states[r->state].stage != RELAY_STAGE_SMTP)
		return false;
	if (relay_link_next(r->link, reason) == -1)
		return false;
	/* What a new connection must not inherit from the previous one. */
	ehlo_ext_reset(&r->ext);
	relay_auth_reset(r->auth);
	relay_set_state(r, RELAY_S_CONNECTING);
	return true;
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
	f.stage = relay_states[r->state].stage;
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

/* Reads one complete reply from the link.  Returns 1 when one is ready, 0
 * when more input is needed, -1 on a malformed reply (the connection is
 * then failed). */
static int
relay_read_reply(struct relay *r)
{
	const char	*error;
	int		 rc;

	rc = relay_link_read(r->link,
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
		relay_link_set_timeout(r->link, RELAY_REPLY_TIMEOUT);
		relay_set_state(r, RELAY_S_TXN);
		break;
	case RELAY_TXN_WAIT:
		break;
	case RELAY_TXN_BODY:
		if (r->state != RELAY_S_BODY)
			relay_set_state(r, RELAY_S_BODY);
		break;
	case RELAY_TXN_DOT:
		relay_link_set_timeout(r->link, RELAY_DOT_TIMEOUT);
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
	struct relay	*r = arg;

	relay_link_cmd(r->link, what, "%s", line);
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
		relay_link_cmd(r->link, "EHLO", "EHLO %s", r->conf->hostname);
		ehlo_ext_reset(&r->ext);
		relay_auth_reset(r->auth);
		break;
	case RELAY_S_STARTTLS:
		relay_link_cmd(r->link, "STARTTLS", "STARTTLS");
		break;
	case RELAY_S_RSET:
		relay_link_cmd(r->link, "RSET", "RSET");
		break;
	case RELAY_S_QUIT:
		evtimer_del(r->idle);
		relay_link_cmd(r->link, "QUIT", "QUIT");
		relay_link_set_timeout(r->link, RELAY_IDLE_TIMEOUT);
		break;
	case RELAY_S_READY:
		relay_set_state(r, st);
		relay_link_set_timeout(r->link, RELAY_REPLY_TIMEOUT);
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

/* TLS now (implicit), or after "220" to STARTTLS. */
static void
relay_starttls(struct relay *r)
{
	if (relay_link_starttls(r->link) == -1) {
		relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_LOCAL,
		    "cannot start TLS");
		return;
	}
	relay_set_state(r, RELAY_S_HANDSHAKE);
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
			relay_link_set_timeout(r->link, RELAY_REPLY_TIMEOUT);
		relay_set_state(r, RELAY_S_AUTH);
		break;
	case RELAY_AUTH_TOKEN:
		relay_set_state(r, RELAY_S_TOKEN);
		relay_link_set_timeout(r->link, RELAY_TOKEN_TIMEOUT);
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
	if (!relay_link_is_verified(r->link))
		fatalx("relay: AUTH without verified TLS");
	relay_auth_do(r, relay_auth_start(r->auth));
}

/* One reply (<code>, whole text <reply>) in a connection-setup state. */
static void
relay_setup_reply(struct relay *r, int code, const char *reply)
{
	enum relay_status	st = relay_classify(code,
				    relay_reply_text(reply));

	switch (r->state) {
	case RELAY_S_GREETING:
		if (code != 220) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_GREETING,
			    "greeting: %s", reply);
			return;
		}
		relay_enter(r, RELAY_S_EHLO);
		return;
	case RELAY_S_EHLO:
		if (st != RELAY_OK) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "EHLO: %s", reply);
			return;
		}
		if (relay_link_is_tls(r->link)) {
			/* From here on a failure is the account's, not the
			 * address's: no other address is tried. */
			relay_link_stay(r->link);
			relay_auth_begin(r);
		} else if (!r->ext.starttls)
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_NO_STARTTLS,
			    "server does not offer "
			    "STARTTLS; refusing to continue in plaintext");
		else
			relay_enter(r, RELAY_S_STARTTLS);
		return;
	case RELAY_S_STARTTLS:
		if (code != 220) {
			relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_PROTOCOL,
			    "STARTTLS: %s", reply);
			return;
		}
		relay_starttls(r);
		return;
	default:
		fatalx("relay: setup reply in state %s",
		    relay_states[r->state].name);
	}
}

static void
relay_readable_cb(void *arg)
{
	struct relay	*r = arg;
	const char	*reply;
	int		 code, rc;

	relay_hold(r);
	while (!r->dying && (rc = relay_read_reply(r)) == 1) {
		code = relay_link_code(r->link);
		reply = relay_link_reply(r->link);
		if (log_is_debug())
			log_debug("relay reply peer=%s %s",
			    relay_link_peer(r->link), reply);
		switch (r->state) {
		case RELAY_S_GREETING:
		case RELAY_S_EHLO:
		case RELAY_S_STARTTLS:
			relay_setup_reply(r, code, reply);
			break;
		case RELAY_S_AUTH:
			relay_auth_do(r, relay_auth_reply(r->auth, code,
			    reply));
			break;
		case RELAY_S_TXN:
			relay_txn_do(r, relay_txn_reply(r->txn, code, reply));
			break;
		case RELAY_S_DOT:
			relay_txn_do(r, relay_txn_dot_reply(r->txn, code,
			    reply));
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
			    "in state %s: %s", relay_states[r->state].name,
			    reply);
			break;
		}
		/* STARTTLS replaced the bufferevent, or the connection
		 * gave way to the next address: reads come anew. */
		if (r->dying || r->state == RELAY_S_HANDSHAKE ||
		    !relay_link_is_open(r->link))
			break;
	}
	relay_release(r);
}

static void
relay_writable_cb(void *arg)
{
	struct relay	*r = arg;

	relay_hold(r);
	if (r->state == RELAY_S_BODY)
		relay_txn_do(r, relay_txn_pump(r->txn));
	relay_release(r);
}

/* The TLS handshake finished, the peer verified (relay_link.c). */
static void
relay_secured_cb(void *arg)
{
	struct relay	*r = arg;

	relay_hold(r);
	if (r->state != RELAY_S_HANDSHAKE)
		fatalx("relay: connected in state %s",
		    relay_states[r->state].name);
	relay_link_set_timeout(r->link, RELAY_REPLY_TIMEOUT);
	/* Implicit TLS: the greeting comes now; STARTTLS: EHLO again,
	 * forgetting what the server said in plaintext (RFC 3207 4.2). */
	if (r->up->tls == CONF_TLS_IMPLICIT)
		relay_set_state(r, RELAY_S_GREETING);
	else
		relay_enter(r, RELAY_S_EHLO);
	relay_release(r);
}

/* The link is connected: TLS at once (implicit), or wait for the
 * greeting. */
static void
relay_connected_cb(void *arg)
{
	struct relay	*r = arg;

	relay_hold(r);
	if (r->up->tls == CONF_TLS_IMPLICIT)
		relay_starttls(r);
	else {
		relay_set_state(r, RELAY_S_GREETING);
		relay_link_set_timeout(r->link, RELAY_REPLY_TIMEOUT);
	}
	relay_release(r);
}

/* No address could be reached, or TLS failed. */
static void
relay_failed_cb(void *arg, enum relay_why why, const char *reason)
{
	struct relay	*r = arg;

	relay_hold(r);
	relay_fail(r, RELAY_UNAVAILABLE, why, "%s", reason);
	relay_release(r);
}

/* The connection timed out or ended: classify by how far it got. */
static void
relay_broken_cb(void *arg, enum relay_why code, const char *what)
{
	struct relay		*r = arg;
	enum relay_stage	 stage = relay_states[r->state].stage;
	char			 why[512];

	relay_hold(r);
	snprintf(why, sizeof(why), "%s in state %s", what,
	    relay_states[r->state].name);
	/* Idle: not an error; in a transaction: that message's; before:
	 * the upstream's. */
	relay_finish(r, stage == RELAY_STAGE_IDLE ? RELAY_IDLE :
	    stage == RELAY_STAGE_TXN ? RELAY_TEMPFAIL : RELAY_UNAVAILABLE,
	    code, why);
	relay_release(r);
}

/* A relay for <up>, not connected yet. */
static struct relay *
relay_alloc(struct event_base *base, struct evdns_base *dns,
    const struct conf *conf, const struct conf_upstream *up,
    struct tls_client *tls, const struct relay_cbs *cbs, void *arg)
{
	static const struct relay_link_cbs lcbs = {
		.connected = relay_connected_cb,
		.secured = relay_secured_cb,
		.readable = relay_readable_cb,
		.writable = relay_writable_cb,
		.failed = relay_failed_cb,
		.broken = relay_broken_cb,
	};
	struct relay_auth_conn	 aconn;
	struct relay		*r;

	r = xcalloc(1, sizeof(*r));
	r->base = base;
	/* Held for the relay's whole life: a reload may replace it while
	 * this connection still runs. */
	r->conf = conf_ref(conf);
	r->up = up;
	r->cbs = *cbs;
	r->arg = arg;
	r->link = relay_link_new(base, dns, up, tls, &lcbs, r);
	aconn.peer = relay_link_peer(r->link);
	aconn.cmd = relay_conn_cmd_cb;
	aconn.resume = relay_auth_resume_cb;
	aconn.arg = r;
	r->auth = relay_auth_new(up, &aconn);
	r->idle = evtimer_new(base, relay_idle_cb, r);
	r->kick = event_new(base, -1, 0, relay_kick_cb, r);
	r->state = RELAY_S_CONNECTING;
	if (r->idle == NULL || r->kick == NULL) {
		log_warnx("relay cannot start a connection to %s",
		    relay_link_peer(r->link));
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
	struct relay		*r;

	if ((r = relay_alloc(base, dns, conf, up, tls, cbs, arg)) == NULL)
		return NULL;
	/* The link never calls back from inside relay_link_dial(), so
	 * neither do we from relay_new(). */
	if (relay_link_dial(r->link) == -1) {
		log_warnx("relay cannot start a connection to %s",
		    relay_link_peer(r->link));
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
	relay_link_attach(r->link, bev);
	relay_connected_cb(r);
	return r;
}

void
relay_send(struct relay *r, struct envelope *env, const char *data_path)
{
	struct relay_txn_conn	conn;
	enum relay_txn_next	next;

	if (r->state != RELAY_S_READY || r->txn != NULL)
		fatalx("relay_send in state %s", relay_states[r->state].name);
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
	    relay_link_output(r->link), &next);
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
	if (r->idle != NULL)
		event_free(r->idle);
	if (r->kick != NULL)
		event_free(r->kick);
	relay_txn_free(r->txn);
	/* The link after AUTH, which borrows its peer name. */
	relay_auth_free(r->auth);
	relay_link_free(r->link);
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
	return relay_link_peer(r->link);
}
