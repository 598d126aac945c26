/*
 * saslstep.c - the step functions of SMTP AUTH, server side (PLAIN,
 * LOGIN) and client side (PLAIN, LOGIN, XOAUTH2), and the messages of
 * the mechanisms.
 *
 * Pure: no sockets, no loop, no logging, no crypto library (base64 is
 * the caller's codec).  Every buffer that held a credential is wiped
 * with explicit_bzero() before it is freed or goes out of scope.
 */
#include "config.h"

#include "saslstep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define SASL_PLAIN_MAX	2048	/* user + pass octets, see saslstep.h */
#define SASL_XOAUTH2_MAX	8192	/* user + access token octets */
#define SASL_MECH_MAX	15	/* octets of a mechanism name we take */

/* Does the word <w> of <len> octets name <mech>? */
static bool
sasl_word_is(const char *w, size_t len, const char *mech)
{
	return len == strlen(mech) && strncasecmp(w, mech, len) == 0;
}

enum sasl_mech
sasl_choose(const char *mechs)
{
	bool	 plain = false, login = false;
	size_t	 len;

	if (mechs == NULL)
		return SASL_NONE;
	/* RFC 4954 §3: the AUTH keyword's parameters are mechanism names
	 * separated by spaces; names are case-insensitive. */
	for (;;) {
		mechs += strspn(mechs, " \t");
		if (*mechs == '\0')
			break;
		len = strcspn(mechs, " \t");
		if (sasl_word_is(mechs, len, "PLAIN"))
			plain = true;
		else if (sasl_word_is(mechs, len, "LOGIN"))
			login = true;
		mechs += len;
	}
	if (plain)
		return SASL_PLAIN;
	return login ? SASL_LOGIN : SASL_NONE;
}

bool
sasl_offers(const char *mechs, enum sasl_mech mech)
{
	static const char *const	 names[] = {
		[SASL_PLAIN] = "PLAIN", [SASL_LOGIN] = "LOGIN",
		[SASL_XOAUTH2] = "XOAUTH2",
	};
	size_t				 len;

	if (mechs == NULL || mech == SASL_NONE || (size_t)mech >= nitems(names))
		return false;
	for (;;) {
		mechs += strspn(mechs, " \t");
		if (*mechs == '\0')
			return false;
		len = strcspn(mechs, " \t");
		if (sasl_word_is(mechs, len, names[mech]))
			return true;
		mechs += len;
	}
}

char *
sasl_plain(const struct sasl_b64 *b64, const char *user, const char *pass)
{
	size_t	 ulen = strlen(user), plen = strlen(pass), len;
	char	*msg, *out;

	if (ulen > SASL_PLAIN_MAX || plen > SASL_PLAIN_MAX - ulen)
		return NULL;
	/* RFC 4616 §2: message = [authzid] NUL authcid NUL passwd, with
	 * the authzid left empty so the server derives it. */
	len = ulen + plen + 2;
	msg = xmalloc(len);
	msg[0] = '\0';
	memcpy(msg + 1, user, ulen);
	msg[1 + ulen] = '\0';
	memcpy(msg + 2 + ulen, pass, plen);
	out = b64->encode(msg, len);
	explicit_bzero(msg, len);
	free(msg);
	return out;
}

/* Printable ASCII only: a control octet (above all \1, the XOAUTH2
 * separator) would change the meaning of the message. */
static bool
sasl_is_printable(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

char *
sasl_xoauth2(const struct sasl_b64 *b64, const char *user, const char *token)
{
	size_t	 ulen = strlen(user), tlen = strlen(token), len;
	char	*msg, *out;

	if (ulen == 0 || tlen == 0 || ulen > SASL_XOAUTH2_MAX ||
	    tlen > SASL_XOAUTH2_MAX - ulen || !sasl_is_printable(user) ||
	    !sasl_is_printable(token))
		return NULL;
	/* "user=" {User} "^Aauth=Bearer " {Access Token} "^A^A" */
	len = ulen + tlen + 20;
	msg = xmalloc(len + 1);
	snprintf(msg, len + 1, "user=%s\001auth=Bearer %s\001\001", user,
	    token);
	out = b64->encode(msg, len);
	explicit_bzero(msg, len + 1);
	free(msg);
	return out;
}

/* ---- Server side ---- */

/* Fills <out>; returns its outcome. */
static enum sasl_server_outcome
sasl_server_out(struct sasl_server_out *out, enum sasl_server_outcome oc,
    const char *reply, bool error, const char *why)
{
	out->outcome = oc;
	out->reply = reply;
	out->error = error;
	out->why = why;
	return oc;
}

/* Ends the exchange with <reply>, forgetting what it gathered. */
static enum sasl_server_outcome
sasl_server_fail(struct sasl_server *st, struct sasl_server_out *out,
    const char *reply, bool error, const char *why)
{
	sasl_server_reset(st);
	return sasl_server_out(out, SASL_SERVER_FAIL, reply, error, why);
}

static enum sasl_server_outcome
sasl_server_undecodable(struct sasl_server *st, struct sasl_server_out *out)
{
	return sasl_server_fail(st, out, "501 5.5.2 Cannot decode response",
	    true, NULL);
}

/* Splits a decoded PLAIN message of <len> octets (RFC 4616 section 2:
 * [authzid] NUL authcid NUL passwd) into st->name and st->pass.
 * Returns -1 for a missing NUL, an over-long part, an empty name or
 * password, or an authzid of someone else. */
static int
sasl_server_plain_split(struct sasl_server *st, const char *buf, size_t len)
{
	const char	*authz = buf, *authc, *pw, *nul;
	size_t		 zlen, clen, plen;

	if ((nul = memchr(authz, '\0', len)) == NULL)
		return -1;
	zlen = (size_t)(nul - authz);
	authc = nul + 1;
	if ((nul = memchr(authc, '\0', len - zlen - 1)) == NULL)
		return -1;
	clen = (size_t)(nul - authc);
	pw = nul + 1;
	plen = len - zlen - clen - 2;
	if (memchr(pw, '\0', plen) != NULL || clen == 0 || plen == 0 ||
	    clen > SASL_NAME_MAX || plen > SASL_PASS_MAX)
		return -1;
	if (zlen != 0 && (zlen != clen || memcmp(authz, authc, clen) != 0))
		return -1;
	memcpy(st->name, authc, clen);
	st->name[clen] = '\0';
	memcpy(st->pass, pw, plen);
	st->pass[plen] = '\0';
	return 0;
}

static enum sasl_server_outcome
sasl_server_plain(struct sasl_server *st, const char *b64,
    struct sasl_server_out *out)
{
	char	buf[2 * SASL_NAME_MAX + SASL_PASS_MAX + 4];
	int	n, rc = -1;

	if ((n = st->b64->decode(b64, buf, sizeof(buf))) != -1)
		rc = sasl_server_plain_split(st, buf, (size_t)n);
	explicit_bzero(buf, sizeof(buf));
	if (n == -1)
		return sasl_server_undecodable(st, out);
	if (rc == -1)
		return sasl_server_fail(st, out, "535 5.7.8 Authentication "
		    "credentials invalid", true, "malformed");
	st->state = SASL_SERVER_VERIFY;
	return sasl_server_out(out, SASL_SERVER_CHECK, NULL, false, NULL);
}

/* One AUTH LOGIN answer: the name, then the password. */
static enum sasl_server_outcome
sasl_server_login(struct sasl_server *st, const char *b64,
    struct sasl_server_out *out)
{
	if (st->state == SASL_SERVER_LOGIN_USER) {
		if (st->b64->decode(b64, st->name, sizeof(st->name)) <= 0 ||
		    strlen(st->name) == 0)
			return sasl_server_undecodable(st, out);
		st->state = SASL_SERVER_LOGIN_PASS;
		return sasl_server_out(out, SASL_SERVER_CONTINUE,
		    "334 UGFzc3dvcmQ6", false, NULL);
	}
	if (st->b64->decode(b64, st->pass, sizeof(st->pass)) <= 0 ||
	    strlen(st->pass) == 0)
		return sasl_server_undecodable(st, out);
	st->state = SASL_SERVER_VERIFY;
	return sasl_server_out(out, SASL_SERVER_CHECK, NULL, false, NULL);
}

void
sasl_server_init(struct sasl_server *st, const struct sasl_b64 *b64)
{
	memset(st, 0, sizeof(*st));
	st->state = SASL_SERVER_IDLE;
	st->b64 = b64;
}

enum sasl_server_outcome
sasl_server_start(struct sasl_server *st, const char *args,
    struct sasl_server_out *out)
{
	char		 mech[SASL_MECH_MAX + 1];
	const char	*resp;
	size_t		 len = strcspn(args, " ");

	sasl_server_reset(st);
	resp = args + len + strspn(args + len, " ");
	if (len == 0 || len >= sizeof(mech) || strchr(resp, ' ') != NULL)
		return sasl_server_out(out, SASL_SERVER_FAIL, "501 5.5.4 "
		    "Syntax: AUTH mechanism [initial-response]", true, NULL);
	memcpy(mech, args, len);
	mech[len] = '\0';
	/* "=" is an empty initial response; none at all asks for 334. */
	if (strcmp(resp, "=") == 0)
		resp = "";
	else if (*resp == '\0')
		resp = NULL;
	if (strcasecmp(mech, "PLAIN") == 0) {
		st->mech = "PLAIN";
		st->state = SASL_SERVER_PLAIN;
		if (resp != NULL)
			return sasl_server_plain(st, resp, out);
		return sasl_server_out(out, SASL_SERVER_CONTINUE, "334 ",
		    false, NULL);
	}
	if (strcasecmp(mech, "LOGIN") == 0) {
		st->mech = "LOGIN";
		st->state = SASL_SERVER_LOGIN_USER;
		if (resp != NULL)
			return sasl_server_login(st, resp, out);
		return sasl_server_out(out, SASL_SERVER_CONTINUE,
		    "334 VXNlcm5hbWU6", false, NULL);
	}
	return sasl_server_out(out, SASL_SERVER_FAIL, "504 5.5.4 "
	    "Unrecognized authentication type", true, NULL);
}

enum sasl_server_outcome
sasl_server_step(struct sasl_server *st, const char *line,
    struct sasl_server_out *out)
{
	if (st->state != SASL_SERVER_PLAIN &&
	    st->state != SASL_SERVER_LOGIN_USER &&
	    st->state != SASL_SERVER_LOGIN_PASS)
		return sasl_server_out(out, SASL_SERVER_FAIL,
		    "503 5.5.1 Bad sequence of commands", true, NULL);
	if (line == NULL)
		return sasl_server_fail(st, out, "500 5.5.6 Authentication "
		    "exchange line is too long", true, NULL);
	/* RFC 4954 section 4: "*" cancels the exchange. */
	if (strcmp(line, "*") == 0)
		return sasl_server_fail(st, out, "501 5.7.0 Authentication "
		    "aborted", false, NULL);
	if (st->state == SASL_SERVER_PLAIN)
		return sasl_server_plain(st, line, out);
	return sasl_server_login(st, line, out);
}

void
sasl_server_drop_pass(struct sasl_server *st)
{
	explicit_bzero(st->pass, sizeof(st->pass));
}

enum sasl_server_outcome
sasl_server_checked(struct sasl_server *st, bool ok,
    struct sasl_server_out *out)
{
	if (st->state != SASL_SERVER_VERIFY)
		return sasl_server_out(out, SASL_SERVER_FAIL,
		    "503 5.5.1 Bad sequence of commands", true, NULL);
	sasl_server_drop_pass(st);
	if (!ok)
		return sasl_server_fail(st, out, "535 5.7.8 Authentication "
		    "credentials invalid", true, NULL);
	st->state = SASL_SERVER_DONE;
	return sasl_server_out(out, SASL_SERVER_OK,
	    "235 2.7.0 Authentication successful", false, NULL);
}

void
sasl_server_reset(struct sasl_server *st)
{
	explicit_bzero(st->name, sizeof(st->name));
	explicit_bzero(st->pass, sizeof(st->pass));
	st->state = SASL_SERVER_IDLE;
}

/* ---- Client side ---- */

static enum sasl_client_outcome
sasl_client_out(struct sasl_client_out *out, enum sasl_client_outcome oc,
    char *line, const char *mask)
{
	out->outcome = oc;
	out->line = line;
	out->mask = mask;
	return oc;
}

/* Sends <line> (NULL: cannot be encoded) and moves to <next>. */
static enum sasl_client_outcome
sasl_client_send(struct sasl_client *st, struct sasl_client_out *out,
    char *line, const char *mask, enum sasl_client_state next)
{
	if (line == NULL) {
		sasl_client_cleanup(st);
		return sasl_client_out(out, SASL_CLIENT_UNSENDABLE, NULL,
		    NULL);
	}
	st->state = next;
	return sasl_client_out(out, SASL_CLIENT_SEND, line, mask);
}

/* Ends the exchange with <oc>, wiping the credentials. */
static enum sasl_client_outcome
sasl_client_end(struct sasl_client *st, struct sasl_client_out *out,
    enum sasl_client_outcome oc)
{
	sasl_client_cleanup(st);
	if (oc == SASL_CLIENT_OK)
		st->state = SASL_CLIENT_DONE;
	return sasl_client_out(out, oc, NULL, NULL);
}

void
sasl_client_init(struct sasl_client *st, const struct sasl_b64 *b64)
{
	memset(st, 0, sizeof(*st));
	st->state = SASL_CLIENT_IDLE;
	st->b64 = b64;
}

enum sasl_client_outcome
sasl_client_start(struct sasl_client *st, enum sasl_mech mech,
    const char *user, const char *secret, struct sasl_client_out *out)
{
	char	*msg, *line;
	int	 n;

	sasl_client_cleanup(st);
	switch (mech) {
	case SASL_PLAIN:
	case SASL_XOAUTH2:
		msg = mech == SASL_PLAIN ? sasl_plain(st->b64, user, secret) :
		    sasl_xoauth2(st->b64, user, secret);
		if (msg == NULL)
			return sasl_client_send(st, out, NULL, NULL,
			    SASL_CLIENT_IDLE);
		n = snprintf(NULL, 0, "AUTH %s %s", mech == SASL_PLAIN ?
		    "PLAIN" : "XOAUTH2", msg);
		line = xmalloc((size_t)n + 1);
		snprintf(line, (size_t)n + 1, "AUTH %s %s", mech == SASL_PLAIN ?
		    "PLAIN" : "XOAUTH2", msg);
		str_wipe_free(msg);
		if (mech == SASL_PLAIN)
			return sasl_client_send(st, out, line,
			    "AUTH PLAIN ********", SASL_CLIENT_AUTH);
		return sasl_client_send(st, out, line,
		    "AUTH XOAUTH2 ********", SASL_CLIENT_XOAUTH2);
	case SASL_LOGIN:
		/* The name and the password go one per 334. */
		st->user = xstrdup(user);
		st->secret = xstrdup(secret);
		return sasl_client_send(st, out, xstrdup("AUTH LOGIN"),
		    "AUTH LOGIN", SASL_CLIENT_USER);
	case SASL_NONE:
		break;
	}
	return sasl_client_send(st, out, NULL, NULL, SASL_CLIENT_IDLE);
}

/* A reply in the PLAIN and LOGIN states.  Anything but 235 or an
 * expected 334 ends the exchange. */
static enum sasl_client_outcome
sasl_client_plain_step(struct sasl_client *st, int code,
    struct sasl_client_out *out)
{
	char	*b64;

	if (code == 235)
		return sasl_client_end(st, out, SASL_CLIENT_OK);
	if (code == 334 && st->state == SASL_CLIENT_USER) {
		b64 = st->b64->encode(st->user, strlen(st->user));
		return sasl_client_send(st, out, b64, "(username)",
		    SASL_CLIENT_PASS);
	}
	if (code == 334 && st->state == SASL_CLIENT_PASS) {
		b64 = st->b64->encode(st->secret, strlen(st->secret));
		str_wipe_free(st->secret);
		st->secret = NULL;
		return sasl_client_send(st, out, b64, "(password)",
		    SASL_CLIENT_AUTH);
	}
	if (code >= 500 || code == 334)
		return sasl_client_end(st, out, SASL_CLIENT_REFUSED);
	return sasl_client_end(st, out, SASL_CLIENT_TEMPFAIL);
}

/* A reply to AUTH XOAUTH2 or to the empty answer to its challenge. */
static enum sasl_client_outcome
sasl_client_xoauth2_step(struct sasl_client *st, int code,
    struct sasl_client_out *out)
{
	if (code == 235)
		return sasl_client_end(st, out, SASL_CLIENT_OK);
	if (code == 334 && st->state == SASL_CLIENT_XOAUTH2)
		/* Gmail sends a base64 JSON error as a challenge; an
		 * empty answer gets the final 535. */
		return sasl_client_send(st, out, xstrdup(""),
		    "(empty answer to the error challenge)",
		    SASL_CLIENT_XERR);
	if (code >= 400 && code < 500)
		return sasl_client_end(st, out, SASL_CLIENT_TEMPFAIL);
	/* Only 535 (534: "web login required") says the token itself was
	 * refused; a second challenge or another answer is a protocol
	 * error, not a reason to fetch tokens. */
	if (code != 535 && code != 534)
		return sasl_client_end(st, out, SASL_CLIENT_UNEXPECTED);
	return sasl_client_end(st, out, SASL_CLIENT_TOKEN_REFUSED);
}

enum sasl_client_outcome
sasl_client_step(struct sasl_client *st, int code,
    struct sasl_client_out *out)
{
	switch (st->state) {
	case SASL_CLIENT_AUTH:
	case SASL_CLIENT_USER:
	case SASL_CLIENT_PASS:
		return sasl_client_plain_step(st, code, out);
	case SASL_CLIENT_XOAUTH2:
	case SASL_CLIENT_XERR:
		return sasl_client_xoauth2_step(st, code, out);
	case SASL_CLIENT_IDLE:
	case SASL_CLIENT_DONE:
		break;
	}
	/* Nothing was sent: no reply can fit. */
	return sasl_client_out(out, SASL_CLIENT_UNEXPECTED, NULL, NULL);
}

void
sasl_client_cleanup(struct sasl_client *st)
{
	str_wipe_free(st->user);
	str_wipe_free(st->secret);
	st->user = st->secret = NULL;
	st->state = SASL_CLIENT_IDLE;
}
