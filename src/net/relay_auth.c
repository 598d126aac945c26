/*
 * relay_auth.c - AUTH to the smarthost: PLAIN and LOGIN with the
 * password file (re-read for every connection), XOAUTH2 with an access
 * token from the upstream's OAuth token source (refreshed once on a 535,
 * as Gmail revokes tokens early).  Only ever on a verified TLS
 * connection; credentials are wiped once sent and never logged.
 */
#include "config.h"

#include "relay_int.h"

#include <string.h>
#include <strings.h>

#include <event2/bufferevent.h>

#include "conf.h"
#include "log.h"
#include "oauth.h"
#include "tls.h"
#include "util.h"

/* The mechanism to use among those the server offers in <mechs>: the
 * configured one, or PLAIN else LOGIN for auth = "auto". */
enum sasl_mech
relay_pick_mech(const struct relay *r, const char *mechs)
{
	static const enum sasl_mech	forced[] = {
		[CONF_AUTH_PLAIN] = SASL_PLAIN, [CONF_AUTH_LOGIN] = SASL_LOGIN,
		[CONF_AUTH_XOAUTH2] = SASL_XOAUTH2,
	};

	if (r->up->auth == CONF_AUTH_AUTO)
		return sasl_choose(mechs);
	return sasl_offers(mechs, forced[r->up->auth]) ?
	    forced[r->up->auth] : SASL_NONE;
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

static void	relay_xoauth2_start(struct relay *);

/* Sends the line the step function made, or fails the connection
 * with what its outcome means. */
static void
relay_auth_do(struct relay *r, const struct sasl_client_out *out)
{
	switch (out->outcome) {
	case SASL_CLIENT_SEND:
		relay_cmd(r, out->mask, "%s", out->line);
		str_wipe_free(out->line);
		relay_set_state(r, RELAY_S_AUTH);
		return;
	case SASL_CLIENT_OK:
		str_wipe_free(r->token);
		r->token = NULL;
		if (r->mech == SASL_XOAUTH2)
			log_info("relay authenticated peer=%s user=%s "
			    "mech=XOAUTH2", r->peer, r->up->username);
		else
			log_info("relay authenticated peer=%s user=%s",
			    r->peer, r->up->username);
		relay_enter(r, RELAY_S_READY);
		return;
	case SASL_CLIENT_TEMPFAIL:
		relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_AUTH_FAILED,
		    "AUTH: %s", r->reply);
		return;
	case SASL_CLIENT_REFUSED:
		relay_fail(r, RELAY_AUTH_FAILED, relay_auth_why(r->code), "%s",
		    r->reply);
		return;
	case SASL_CLIENT_UNEXPECTED:
		relay_fail(r, RELAY_AUTH_FAILED, relay_auth_why(r->code),
		    "XOAUTH2: unexpected reply: %s", r->reply);
		return;
	case SASL_CLIENT_UNSENDABLE:
		if (r->mech == SASL_XOAUTH2)
			relay_fail(r, RELAY_AUTH_FAILED, RELAY_WHY_PASSWORD,
			    "the username or the access token cannot be "
			    "sent with XOAUTH2");
		else
			relay_fail(r, RELAY_AUTH_FAILED, RELAY_WHY_PASSWORD,
			    "credentials too long");
		return;
	case SASL_CLIENT_TOKEN_REFUSED:
		break;
	}
	/* Revoked or expired early: one fresh token, one more try on this
	 * connection (RFC 4954 allows another AUTH after a 535). */
	oauth_invalidate(r->oauth, r->token);
	str_wipe_free(r->token);
	r->token = NULL;
	if (++r->xtries < 2) {
		relay_xoauth2_start(r);
		return;
	}
	relay_fail(r, RELAY_AUTH_FAILED, RELAY_WHY_XOAUTH2_REFUSED,
	    "XOAUTH2 refused with a fresh token: %s", r->reply);
}

/* The access token came (or not): send AUTH XOAUTH2 with it. */
static void
relay_token_cb(enum oauth_status st, const char *token, const char *reason,
    void *arg)
{
	struct relay		*r = arg;
	struct sasl_client_out	 out;

	r->oreq = NULL;
	relay_hold(r);
	if (st >= OAUTH_REJECTED)
		relay_fail(r, RELAY_AUTH_FAILED, st == OAUTH_REJECTED_GRANT ?
		    RELAY_WHY_TOKEN_GRANT : st == OAUTH_REJECTED_CLIENT ?
		    RELAY_WHY_TOKEN_CLIENT : RELAY_WHY_OAUTH_CONF, "%s",
		    reason);
	else if (st != OAUTH_OK)
		relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_TOKEN,
		    "OAuth token: %s", reason);
	else {
		str_wipe_free(r->token);
		r->token = xstrdup(token);
		if (sasl_client_start(&r->sasl, SASL_XOAUTH2,
		    r->up->username, token, &out) == SASL_CLIENT_SEND)
			relay_set_timeout(r, RELAY_REPLY_TIMEOUT);
		relay_auth_do(r, &out);
	}
	relay_release(r);
}

/* Asks the token source; the connection waits, bounded. */
static void
relay_xoauth2_start(struct relay *r)
{
	if (r->oauth == NULL) {
		relay_fail(r, RELAY_AUTH_FAILED, RELAY_WHY_OAUTH_CONF,
		    "auth = xoauth2 but no OAuth "
		    "token source is set up");
		return;
	}
	relay_set_state(r, RELAY_S_TOKEN);
	relay_set_timeout(r, RELAY_TOKEN_TIMEOUT);
	r->oreq = oauth_get(r->oauth, relay_token_cb, r);
}

/* Starts AUTH with the mechanism the server offered. */
void
relay_auth_start(struct relay *r)
{
	static const char *const	 want[] = {
		[CONF_AUTH_AUTO] = "PLAIN, LOGIN", [CONF_AUTH_PLAIN] = "PLAIN",
		[CONF_AUTH_LOGIN] = "LOGIN", [CONF_AUTH_XOAUTH2] = "XOAUTH2",
	};
	const struct conf_upstream	*up = r->up;
	struct sasl_client_out		 out;
	char				 err[512], *password;

	if (!r->in_tls || !tls_is_verified(r->bev))
		fatalx("relay: AUTH without verified TLS");
	if (r->mech == SASL_NONE) {
		relay_fail(r, RELAY_AUTH_FAILED, up->auth == CONF_AUTH_XOAUTH2 ?
		    RELAY_WHY_NO_XOAUTH2 : RELAY_WHY_AUTH_NO_MECH,
		    "server offers no AUTH mechanism we support (%s)",
		    want[up->auth]);
		return;
	}
	if (up->username[0] == '\0') {
		relay_fail(r, RELAY_AUTH_FAILED, RELAY_WHY_NO_USERNAME,
		    "upstream.username is not set");
		return;
	}
	if (r->mech == SASL_XOAUTH2) {
		relay_xoauth2_start(r);
		return;
	}
	/* Re-read for every connection: fixing the file fixes the relay. */
	password = sasl_read_password(up->password_file, err, sizeof(err));
	if (password == NULL) {
		relay_fail(r, RELAY_AUTH_FAILED, RELAY_WHY_PASSWORD, "%s", err);
		return;
	}
	sasl_client_start(&r->sasl, r->mech, up->username, password, &out);
	str_wipe_free(password);
	relay_auth_do(r, &out);
}

/* One reply to what AUTH sent. */
void
relay_auth_reply(struct relay *r)
{
	struct sasl_client_out	out;

	sasl_client_step(&r->sasl, r->code, &out);
	relay_auth_do(r, &out);
}


void
relay_set_oauth(struct relay *r, struct oauth *o)
{
	r->oauth = o;
}

