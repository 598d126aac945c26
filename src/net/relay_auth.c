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

/* The access token came (or not): send AUTH XOAUTH2 with it. */
static void
relay_token_cb(enum oauth_status st, const char *token, const char *reason,
    void *arg)
{
	struct relay	*r = arg;
	char		*b64;

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
	else if ((b64 = sasl_xoauth2(r->up->username, token)) == NULL)
		relay_fail(r, RELAY_AUTH_FAILED, RELAY_WHY_PASSWORD,
		    "the username or the access token cannot be sent with "
		    "XOAUTH2");
	else {
		str_wipe_free(r->token);
		r->token = xstrdup(token);
		relay_cmd(r, "AUTH XOAUTH2 ********", "AUTH XOAUTH2 %s", b64);
		str_wipe_free(b64);
		relay_set_timeout(r, RELAY_REPLY_TIMEOUT);
		relay_set_state(r, RELAY_S_AUTH_XOAUTH2);
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

/* A reply to AUTH XOAUTH2 or to the empty answer to its challenge. */
void
relay_xoauth2_reply(struct relay *r)
{
	if (r->code == 235) {
		str_wipe_free(r->token);
		r->token = NULL;
		log_info("relay authenticated peer=%s user=%s mech=XOAUTH2",
		    r->peer, r->up->username);
		relay_enter(r, RELAY_S_READY);
		return;
	}
	if (r->code == 334 && r->state == RELAY_S_AUTH_XOAUTH2) {
		/* Gmail sends a base64 JSON error as a challenge; an
		 * empty answer gets the final 535. */
		relay_cmd(r, "(empty answer to the error challenge)", "%s", "");
		relay_set_state(r, RELAY_S_AUTH_XERR);
		return;
	}
	if (r->code >= 400 && r->code < 500) {
		relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_AUTH_FAILED,
		    "AUTH: %s", r->reply);
		return;
	}
	/* Only 535 (534: "web login required") says the token itself was
	 * refused; a second challenge or another answer is a protocol
	 * error, not a reason to fetch tokens. */
	if (r->code != 535 && r->code != 534) {
		relay_fail(r, RELAY_AUTH_FAILED, relay_auth_why(r->code),
		    "XOAUTH2: unexpected reply: %s", r->reply);
		return;
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

/* Starts AUTH with the mechanism the server offered. */
void
relay_auth_start(struct relay *r)
{
	static const char *const	 want[] = {
		[CONF_AUTH_AUTO] = "PLAIN, LOGIN", [CONF_AUTH_PLAIN] = "PLAIN",
		[CONF_AUTH_LOGIN] = "LOGIN", [CONF_AUTH_XOAUTH2] = "XOAUTH2",
	};
	const struct conf_upstream	*up = r->up;
	char				 err[512], *plain;

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
	r->password = sasl_read_password(up->password_file, err, sizeof(err));
	if (r->password == NULL) {
		relay_fail(r, RELAY_AUTH_FAILED, RELAY_WHY_PASSWORD, "%s", err);
		return;
	}
	if (r->mech == SASL_PLAIN) {
		plain = sasl_plain(up->username, r->password);
		str_wipe_free(r->password);
		r->password = NULL;
		if (plain == NULL) {
			relay_fail(r, RELAY_AUTH_FAILED, RELAY_WHY_PASSWORD,
			    "credentials too long");
			return;
		}
		relay_cmd(r, "AUTH PLAIN ********", "AUTH PLAIN %s", plain);
		str_wipe_free(plain);
		relay_set_state(r, RELAY_S_AUTH);
	} else {
		relay_cmd(r, "AUTH LOGIN", "AUTH LOGIN");
		relay_set_state(r, RELAY_S_AUTH_USER);
	}
}


/* One reply to AUTH.  Anything but 235 or 334 ends the connection. */
void
relay_auth_reply(struct relay *r)
{
	const char	*user = r->up->username;
	char		*b64;

	if (r->code == 235) {
		log_info("relay authenticated peer=%s user=%s", r->peer, user);
		relay_enter(r, RELAY_S_READY);
		return;
	}
	if (r->code == 334 && r->state != RELAY_S_AUTH) {
		if (r->state == RELAY_S_AUTH_USER) {
			b64 = sasl_base64(user);
			relay_cmd(r, "(username)", "%s", b64);
			str_wipe_free(b64);
			relay_set_state(r, RELAY_S_AUTH_PASS);
			return;
		}
		b64 = sasl_base64(r->password);
		str_wipe_free(r->password);
		r->password = NULL;
		relay_cmd(r, "(password)", "%s", b64);
		str_wipe_free(b64);
		relay_set_state(r, RELAY_S_AUTH);
		return;
	}
	if (r->code >= 500 || r->code == 334)
		relay_fail(r, RELAY_AUTH_FAILED, relay_auth_why(r->code), "%s",
		    r->reply);
	else
		relay_fail(r, RELAY_UNAVAILABLE, RELAY_WHY_AUTH_FAILED,
		    "AUTH: %s", r->reply);
}


void
relay_set_oauth(struct relay *r, struct oauth *o)
{
	r->oauth = o;
}

