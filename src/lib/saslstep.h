/*
 * saslstep.h - both sides of SMTP AUTH (RFC 4954) as pure step
 * functions: the server side of PLAIN (RFC 4616) and LOGIN
 * (draft-murchison-sasl-login), the client side of PLAIN, LOGIN and
 * XOAUTH2 (Google's SASL XOAUTH2 protocol).
 *
 * A step takes the state and what came in (a line, a reply code) and
 * says what to do next: send a line, check credentials, or stop with an
 * outcome.  No sockets, no loop, no logging: the session and the relay
 * drive these and keep their own policy (when AUTH is offered, what a
 * failure means for the connection).  lib/ links no crypto library, so
 * the base64 codec comes from the caller (struct sasl_b64; net/sasl.c
 * has OpenSSL's).  Every buffer that held a credential is wiped.
 */
#ifndef SASLSTEP_H
#define SASLSTEP_H

#include <stdbool.h>
#include <stddef.h>

#define SASL_NAME_MAX	255	/* octets of a user name (server side) */
#define SASL_PASS_MAX	255	/* octets of a password (server side) */

enum sasl_mech {
	SASL_NONE,
	SASL_PLAIN,
	SASL_LOGIN,
	SASL_XOAUTH2,		/* only when configured: never chosen */
};

/* A base64 codec (RFC 4648 section 4). */
struct sasl_b64 {
	/* base64 of the <len> octets at <p>, NUL-terminated; NULL when
	 * <len> is beyond the codec's limit.  Caller frees the result
	 * with str_wipe_free(). */
	char	*(*encode)(const void *p, size_t len);
	/* Strict decoding of <in> into <out>, followed by a NUL.  Returns
	 * the length, or -1 on bad input or no room. */
	int	 (*decode)(const char *in, char *out, size_t outsz);
};

/* Picks the mechanism from the argument of an EHLO "AUTH" keyword line
 * ("LOGIN PLAIN XOAUTH2"): PLAIN when offered, else LOGIN, else
 * SASL_NONE. */
enum sasl_mech	 sasl_choose(const char *mechs);

/* True when the AUTH keyword's argument <mechs> offers <mech> (the
 * configured one, for auth = "plain", "login" or "xoauth2"). */
bool		 sasl_offers(const char *mechs, enum sasl_mech mech);

/* base64("\0user\0pass") (RFC 4616 with an empty authzid).  NULL only
 * if user and pass together exceed 2 KiB.  Caller frees with
 * str_wipe_free(). */
char		*sasl_plain(const struct sasl_b64 *, const char *user,
		    const char *pass);

/* base64("user=" user "\1auth=Bearer " token "\1\1"), the XOAUTH2
 * initial response.  NULL when either is empty, holds a byte outside
 * printable ASCII, or they exceed 8 KiB together.  Caller frees with
 * str_wipe_free(). */
char		*sasl_xoauth2(const struct sasl_b64 *, const char *user,
		    const char *token);

/*
 * The server side.  The session embeds a struct sasl_server, starts it
 * with the arguments of "AUTH", feeds it each response line, and sends
 * what each call puts in struct sasl_server_out.  When a call returns
 * SASL_SERVER_CHECK, <name> and <pass> hold the credentials: the caller
 * checks them (possibly on a worker), calls sasl_server_drop_pass() as
 * soon as the password is handed on, and reports with
 * sasl_server_checked().
 */
enum sasl_server_state {
	SASL_SERVER_IDLE,	/* no exchange */
	SASL_SERVER_PLAIN,	/* "334 " sent, waiting for the response */
	SASL_SERVER_LOGIN_USER,	/* "334 VXNlcm5hbWU6" (Username:) sent */
	SASL_SERVER_LOGIN_PASS,	/* "334 UGFzc3dvcmQ6" (Password:) sent */
	SASL_SERVER_VERIFY,	/* credentials out for a check */
	SASL_SERVER_DONE,	/* succeeded: <name> is the account */
};

enum sasl_server_outcome {
	SASL_SERVER_CONTINUE,	/* send the reply (a 334), feed a line */
	SASL_SERVER_CHECK,	/* check <name> and <pass> */
	SASL_SERVER_OK,		/* send the reply (235): authenticated */
	SASL_SERVER_FAIL,	/* send the reply; the exchange is over */
};

struct sasl_server_out {
	enum sasl_server_outcome	 outcome;
	const char			*reply;	/* static, without CRLF;
						 * NULL for CHECK */
	bool				 error;	/* counts as a client error */
	const char			*why;	/* for the log, or NULL:
						 * "malformed" */
};

struct sasl_server {
	enum sasl_server_state	 state;
	const struct sasl_b64	*b64;
	const char		*mech;		/* "PLAIN" or "LOGIN" */
	char			 name[SASL_NAME_MAX + 1];
	char			 pass[SASL_PASS_MAX + 1];
};

/* Sets <st> idle, with the codec <b64> (borrowed for its lifetime). */
void		 sasl_server_init(struct sasl_server *st,
		    const struct sasl_b64 *b64);

/* Starts an exchange from the arguments of "AUTH" (RFC 4954 section 4:
 * "mechanism [initial-response]", "=" being an empty response).  A bad
 * syntax gets 501, an unknown mechanism 504; an initial response is
 * taken as the first step.  Any earlier exchange is forgotten. */
enum sasl_server_outcome sasl_server_start(struct sasl_server *st,
		    const char *args, struct sasl_server_out *out);

/* Takes one response line (without its line end), or NULL for a line
 * over the caller's limit (500).  "*" cancels (501).  Bad base64 gets
 * 501, a PLAIN message of the wrong layout 535.  A call in a state that
 * waits for no line gets 503 and changes nothing. */
enum sasl_server_outcome sasl_server_step(struct sasl_server *st,
		    const char *line, struct sasl_server_out *out);

/* Wipes the password once the check has it. */
void		 sasl_server_drop_pass(struct sasl_server *st);

/* The check said <ok>: 235 (the state keeps <name>) or 535.  Outside
 * SASL_SERVER_VERIFY: 503, nothing changes. */
enum sasl_server_outcome sasl_server_checked(struct sasl_server *st,
		    bool ok, struct sasl_server_out *out);

/* Forgets the exchange and the name, wiping both; idle again. */
void		 sasl_server_reset(struct sasl_server *st);

/*
 * The client side.  The relay starts a struct sasl_client with the
 * chosen mechanism and the credentials (copied), sends the line it
 * gets, then feeds it the code of each reply to AUTH until an outcome
 * other than SASL_CLIENT_SEND.
 */
enum sasl_client_state {
	SASL_CLIENT_IDLE,	/* no exchange */
	SASL_CLIENT_AUTH,	/* AUTH PLAIN sent, or LOGIN's password */
	SASL_CLIENT_USER,	/* AUTH LOGIN sent, expecting 334 */
	SASL_CLIENT_PASS,	/* LOGIN's username sent, expecting 334 */
	SASL_CLIENT_XOAUTH2,	/* AUTH XOAUTH2 sent */
	SASL_CLIENT_XERR,	/* empty answer to its error challenge sent */
	SASL_CLIENT_DONE,	/* 235 */
};

enum sasl_client_outcome {
	SASL_CLIENT_SEND,	/* send <line>, feed the reply */
	SASL_CLIENT_OK,		/* 235: authenticated */
	SASL_CLIENT_TEMPFAIL,	/* 4xx (PLAIN/LOGIN: not 5xx): later */
	SASL_CLIENT_REFUSED,	/* 5xx, or a 334 where none fits */
	SASL_CLIENT_TOKEN_REFUSED, /* XOAUTH2 535/534: fetch a fresh token */
	SASL_CLIENT_UNEXPECTED,	/* XOAUTH2: another reply; or a step with
				 * no exchange running */
	SASL_CLIENT_UNSENDABLE,	/* the credentials cannot be encoded */
};

struct sasl_client_out {
	enum sasl_client_outcome	 outcome;
	char				*line;	/* SEND: caller sends it and
						 * frees with str_wipe_free() */
	const char			*mask;	/* SEND: what to log
						 * instead of <line> */
};

struct sasl_client {
	enum sasl_client_state	 state;
	const struct sasl_b64	*b64;
	char			*user;
	char			*secret;	/* LOGIN's password until
						 * sent; else NULL */
};

/* Sets <st> idle, with the codec <b64> (borrowed for its lifetime). */
void		 sasl_client_init(struct sasl_client *st,
		    const struct sasl_b64 *b64);

/* Starts <mech> for <user> with <secret> (the password, or XOAUTH2's
 * access token); both are copied.  SEND with the AUTH command, or
 * UNSENDABLE (too long, or XOAUTH2's rules).  Any earlier exchange is
 * forgotten. */
enum sasl_client_outcome sasl_client_start(struct sasl_client *st,
		    enum sasl_mech mech, const char *user, const char *secret,
		    struct sasl_client_out *out);

/* Takes the code (200..599) of the server's reply to the last line. */
enum sasl_client_outcome sasl_client_step(struct sasl_client *st,
		    int code, struct sasl_client_out *out);

/* Wipes and frees the credentials; idle again. */
void		 sasl_client_cleanup(struct sasl_client *st);

#endif /* SASLSTEP_H */
