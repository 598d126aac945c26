/*
 * relay_auth.c - AUTH to the smarthost for one connection (see
 * relay_auth.h): PLAIN and LOGIN with the password file (re-read for
 * every connection), XOAUTH2 with an access token from the upstream's
 * OAuth token source (refreshed once on a 535, as Gmail revokes tokens
 * early).  The connection calls it only on a verified TLS connection;
 * credentials are wiped once sent and never logged.
 */
#include "config.h"

#include "relay_auth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "oauth.h"
#include "sasl.h"
#include "util.h"

struct relay_auth {
	const struct conf_upstream *up;
	struct relay_auth_conn	 conn;
	enum sasl_mech		 mech;		/* from EHLO */
	struct sasl_client	 sasl;		/* the exchange */
	struct oauth		*oauth;		/* XOAUTH2 token source */
	struct oauth_req	*oreq;		/* token request pending */
	char			*token;		/* during AUTH XOAUTH2 only,
						 * to invalidate if refused */
	unsigned int		 xtries;	/* AUTH XOAUTH2 attempts */
	const char		*reply;		/* the reply being handled */
	int			 code;
	/* After RELAY_AUTH_FAIL. */
	enum relay_status	 fail_status;
	enum relay_why		 fail_why;
	char			 fail_reason[768];
};

static enum relay_auth_next relay_xoauth2_start(struct relay_auth *);

/* Records why the connection must fail; returns RELAY_AUTH_FAIL. */
static enum relay_auth_next
relay_auth_fail(struct relay_auth *a, enum relay_status st,
    enum relay_why why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum relay_auth_next
relay_auth_fail(struct relay_auth *a, enum relay_status st,
    enum relay_why why, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(a->fail_reason, sizeof(a->fail_reason), fmt, ap);
	va_end(ap);
	a->fail_status = st;
	a->fail_why = why;
	return RELAY_AUTH_FAIL;
}

/* The mechanism to use among those the server offers in <mechs>: the
 * configured one, or PLAIN else LOGIN for auth = "auto". */
static enum sasl_mech
relay_pick_mech(const struct relay_auth *a, const char *mechs)
{
	static const enum sasl_mech	forced[] = {
		[CONF_AUTH_PLAIN] = SASL_PLAIN, [CONF_AUTH_LOGIN] = SASL_LOGIN,
		[CONF_AUTH_XOAUTH2] = SASL_XOAUTH2,
	};

	if (a->up->auth == CONF_AUTH_AUTO)
		return sasl_choose(mechs);
	return sasl_offers(mechs, forced[a->up->auth]) ?
	    forced[a->up->auth] : SASL_NONE;
}


/* What a refused AUTH means, by its reply code (RFC 4954 6). */
static enum relay_why
relay_auth_why(int code)
{
	switch (code) {
	case 535:
		return RELAY_WHY_AUTH_REJECTED;
	case 534:
		return RELAY_WHY_AUTH_BLOCKED;
	case 530:
		return RELAY_WHY_AUTH_NEEDS_TLS;
	default:
		return RELAY_WHY_AUTH_FAILED;
	}
}

/* Sends the line the step function made, or says what its outcome
 * means for the connection. */
static enum relay_auth_next
relay_auth_do(struct relay_auth *a, const struct sasl_client_out *out)
{
	switch (out->outcome) {
	case SASL_CLIENT_SEND:
		a->conn.cmd(a->conn.arg, out->mask, out->line);
		str_wipe_free(out->line);
		return RELAY_AUTH_SENT;
	case SASL_CLIENT_OK:
		str_wipe_free(a->token);
		a->token = NULL;
		if (a->mech == SASL_XOAUTH2)
			log_info("relay authenticated peer=%s user=%s "
			    "mech=XOAUTH2", a->conn.peer, a->up->username);
		else
			log_info("relay authenticated peer=%s user=%s",
			    a->conn.peer, a->up->username);
		return RELAY_AUTH_OK;
	case SASL_CLIENT_TEMPFAIL:
		return relay_auth_fail(a, RELAY_UNAVAILABLE,
		    RELAY_WHY_AUTH_FAILED, "AUTH: %s", a->reply);
	case SASL_CLIENT_REFUSED:
		return relay_auth_fail(a, RELAY_AUTH_FAILED,
		    relay_auth_why(a->code), "%s", a->reply);
	case SASL_CLIENT_UNEXPECTED:
		return relay_auth_fail(a, RELAY_AUTH_FAILED,
		    relay_auth_why(a->code), "XOAUTH2: unexpected reply: %s",
		    a->reply);
	case SASL_CLIENT_UNSENDABLE:
		if (a->mech == SASL_XOAUTH2)
			return relay_auth_fail(a, RELAY_AUTH_FAILED,
			    RELAY_WHY_PASSWORD, "the username or the access "
			    "token cannot be sent with XOAUTH2");
		return relay_auth_fail(a, RELAY_AUTH_FAILED,
		    RELAY_WHY_PASSWORD, "credentials too long");
	case SASL_CLIENT_TOKEN_REFUSED:
		break;
	}
	/* Revoked or expired early: one fresh token, one more try on this
	 * connection (RFC 4954 allows another AUTH after a 535). */
	oauth_invalidate(a->oauth, a->token);
	str_wipe_free(a->token);
	a->token = NULL;
	if (++a->xtries < 2)
		return relay_xoauth2_start(a);
	return relay_auth_fail(a, RELAY_AUTH_FAILED,
	    RELAY_WHY_XOAUTH2_REFUSED, "XOAUTH2 refused with a fresh token: "
	    "%s", a->reply);
}

/* The access token came (or not): send AUTH XOAUTH2 with it. */
static void
relay_token_cb(enum oauth_status st, const char *token, const char *reason,
    void *arg)
{
	struct relay_auth	*a = arg;
	struct sasl_client_out	 out;
	enum relay_auth_next	 next;

	a->oreq = NULL;
	if (st >= OAUTH_REJECTED)
		next = relay_auth_fail(a, RELAY_AUTH_FAILED,
		    st == OAUTH_REJECTED_GRANT ? RELAY_WHY_TOKEN_GRANT :
		    st == OAUTH_REJECTED_CLIENT ? RELAY_WHY_TOKEN_CLIENT :
		    RELAY_WHY_OAUTH_CONF, "%s", reason);
	else if (st != OAUTH_OK)
		next = relay_auth_fail(a, RELAY_UNAVAILABLE, RELAY_WHY_TOKEN,
		    "OAuth token: %s", reason);
	else {
		str_wipe_free(a->token);
		a->token = xstrdup(token);
		sasl_client_start(&a->sasl, SASL_XOAUTH2, a->up->username,
		    token, &out);
		next = relay_auth_do(a, &out);
	}
	/* Last: the connection may be gone when this returns. */
	a->conn.resume(a->conn.arg, next);
}

/* Asks the token source; the connection waits, bounded. */
static enum relay_auth_next
relay_xoauth2_start(struct relay_auth *a)
{
	if (a->oauth == NULL)
		return relay_auth_fail(a, RELAY_AUTH_FAILED,
		    RELAY_WHY_OAUTH_CONF, "auth = xoauth2 but no OAuth "
		    "token source is set up");
	a->oreq = oauth_get(a->oauth, relay_token_cb, a);
	return RELAY_AUTH_TOKEN;
}

enum relay_auth_next
relay_auth_start(struct relay_auth *a)
{
	static const char *const	 want[] = {
		[CONF_AUTH_AUTO] = "PLAIN, LOGIN", [CONF_AUTH_PLAIN] = "PLAIN",
		[CONF_AUTH_LOGIN] = "LOGIN", [CONF_AUTH_XOAUTH2] = "XOAUTH2",
	};
	const struct conf_upstream	*up = a->up;
	struct sasl_client_out		 out;
	char				 err[512], *password;

	if (a->mech == SASL_NONE)
		return relay_auth_fail(a, RELAY_AUTH_FAILED,
		    up->auth == CONF_AUTH_XOAUTH2 ? RELAY_WHY_NO_XOAUTH2 :
		    RELAY_WHY_AUTH_NO_MECH, "server offers no AUTH mechanism "
		    "we support (%s)", want[up->auth]);
	if (up->username[0] == '\0')
		return relay_auth_fail(a, RELAY_AUTH_FAILED,
		    RELAY_WHY_NO_USERNAME, "upstream.username is not set");
	if (a->mech == SASL_XOAUTH2)
		return relay_xoauth2_start(a);
	/* Re-read for every connection: fixing the file fixes the relay. */
	password = sasl_read_password(up->password_file, err, sizeof(err));
	if (password == NULL)
		return relay_auth_fail(a, RELAY_AUTH_FAILED,
		    RELAY_WHY_PASSWORD, "%s", err);
	sasl_client_start(&a->sasl, a->mech, up->username, password, &out);
	str_wipe_free(password);
	return relay_auth_do(a, &out);
}

enum relay_auth_next
relay_auth_reply(struct relay_auth *a, int code, const char *reply)
{
	struct sasl_client_out	out;

	a->code = code;
	a->reply = reply;
	sasl_client_step(&a->sasl, code, &out);
	return relay_auth_do(a, &out);
}

struct relay_auth *
relay_auth_new(const struct conf_upstream *up,
    const struct relay_auth_conn *conn)
{
	struct relay_auth	*a = xcalloc(1, sizeof(*a));

	a->up = up;
	a->conn = *conn;
	a->mech = SASL_NONE;
	a->reply = "";
	sasl_client_init(&a->sasl, &sasl_b64_openssl);
	return a;
}

void
relay_auth_free(struct relay_auth *a)
{
	if (a == NULL)
		return;
	sasl_client_cleanup(&a->sasl);
	oauth_cancel(a->oreq);
	str_wipe_free(a->token);
	free(a);
}

void
relay_auth_set_oauth(struct relay_auth *a, struct oauth *o)
{
	a->oauth = o;
}

void
relay_auth_reset(struct relay_auth *a)
{
	a->mech = SASL_NONE;
}

void
relay_auth_offered(struct relay_auth *a, const char *mechs)
{
	if (a->mech == SASL_NONE)
		a->mech = relay_pick_mech(a, mechs);
}

enum relay_status
relay_auth_failure(const struct relay_auth *a, enum relay_why *why,
    const char **reason)
{
	*why = a->fail_why;
	*reason = a->fail_reason;
	return a->fail_status;
}
