/*
 * relay_int.h - what relay.c (connection, transactions, body) and
 * relay_auth.c (AUTH PLAIN, LOGIN and XOAUTH2) share.  Not for other
 * modules: they use relay.h.
 */
#ifndef RELAY_INT_H
#define RELAY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "line.h"
#include "mime.h"
#include "relay.h"
#include "sasl.h"

struct dial;
struct reencode;
struct oauth;
struct oauth_req;

#define RELAY_CONNECT_TIMEOUT	30	/* seconds, resolution, each address's
					 * connect, and the TLS handshake */
#define RELAY_REPLY_TIMEOUT	300	/* RFC 5321 4.5.3.2: 5 minutes */
#define RELAY_DOT_TIMEOUT	600	/* 4.5.3.2.6: 10 minutes */
#define RELAY_IDLE_TIMEOUT	10	/* keep an idle connection this long */
#define RELAY_TOKEN_TIMEOUT	60	/* wait for an OAuth access token */
#define RELAY_REPLY_LINE_MAX	2048
#define RELAY_REPLY_TEXT_MAX	512
#define RELAY_RCPTS_PER_TXN	100	/* Gmail's limit per transaction */
#define RELAY_OUT_HIGH		(256 * 1024)	/* stop reading the file */
#define RELAY_OUT_LOW		(64 * 1024)	/* resume below this */
#define RELAY_CHUNK		(64 * 1024)

enum relay_state {
	RELAY_S_CONNECTING,
	RELAY_S_HANDSHAKE,	/* TLS handshake (implicit or STARTTLS) */
	RELAY_S_GREETING,
	RELAY_S_EHLO,
	RELAY_S_STARTTLS,
	RELAY_S_AUTH,		/* AUTH PLAIN sent, or LOGIN's last step */
	RELAY_S_AUTH_USER,	/* AUTH LOGIN sent, expecting 334 */
	RELAY_S_AUTH_PASS,	/* username sent, expecting 334 */
	RELAY_S_TOKEN,		/* waiting for an OAuth access token */
	RELAY_S_AUTH_XOAUTH2,	/* AUTH XOAUTH2 sent */
	RELAY_S_AUTH_XERR,	/* empty answer to its error challenge */
	RELAY_S_READY,		/* idle, waiting for relay_send() */
	RELAY_S_PLAN,		/* re-encoder's first pass (reencode.h) */
	RELAY_S_TXN,		/* MAIL/RCPT/DATA replies outstanding */
	RELAY_S_BODY,		/* streaming the message */
	RELAY_S_DOT,		/* waiting for the final reply */
	RELAY_S_RSET,
	RELAY_S_QUIT,
};


/* What each outstanding pipelined reply answers. */
enum relay_expect {
	RELAY_X_MAIL,
	RELAY_X_RCPT,
	RELAY_X_DATA,
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
	bool			 ext_starttls;
	bool			 ext_pipelining;
	bool			 ext_8bitmime;	/* RFC 6152 */
	bool			 ext_smtputf8;	/* RFC 6531 */
	uint64_t		 ext_size;
	enum sasl_mech		 mech;
	char			*password;	/* during AUTH only */
	struct oauth		*oauth;		/* XOAUTH2 token source */
	struct oauth_req	*oreq;		/* token request pending */
	char			*token;		/* during AUTH XOAUTH2 only */
	unsigned int		 xtries;	/* AUTH XOAUTH2 attempts */

	/* The reply being read. */
	struct line_reader	 reader;
	char			 line[RELAY_REPLY_LINE_MAX + 1];
	char			 reply[RELAY_REPLY_TEXT_MAX];
	size_t			 replylen;
	int			 code;

	/* The transaction. */
	struct envelope		*env;
	int			 fd;		/* data file */
	size_t			*batch;		/* rcpt indices this txn */
	size_t			 nbatch;
	bool			*accepted;	/* per batch entry */
	size_t			 next_rcpt;	/* where the next batch starts */
	enum relay_expect	*expect;
	size_t			 nexpect, iexpect;
	bool			 mail_ok, data_ok;
	enum relay_status	 txn_status;
	char			 txn_reply[RELAY_REPLY_TEXT_MAX];
	bool			 at_bol;	/* body: at a line start */
	bool			 body_crlf;	/* body: last bytes were CRLF */
	uint64_t		 size;		/* what SIZE= announces */
	char			*head;		/* rewritten header block, sent
						 * instead of the file's first
						 * <head_skip> octets */
	size_t			 headlen, head_off, head_skip;
	const char		*account;	/* MAIL FROM, or NULL to keep
						 * the envelope sender */
	struct reencode		*re;		/* the body is re-encoded, or
						 * NULL: sent as it is */
	bool			 seven_bit;	/* ... to 7 bit: the upstream
						 * lacks 8BITMIME */
	struct mime_scan	 guard;		/* checks what is sent as it
						 * is */
};

/* relay.c */
void	relay_set_state(struct relay *, enum relay_state);
void	relay_set_timeout(struct relay *, int secs);
/* Sends one command line.  <what> replaces the line in debug logs, so
 * credentials never reach the log. */
void	relay_cmd(struct relay *, const char *what, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Callbacks run with a hold on the relay; the last release frees a
 * relay that finished meanwhile, so no code touches it afterwards. */
void	relay_hold(struct relay *);
void	relay_release(struct relay *);
/* Ends the connection with <st>, the code of what went wrong and a
 * reason for the log. */
void	relay_fail(struct relay *, enum relay_status, enum relay_why,
	    const char *, ...) __attribute__((format(printf, 4, 5)));
/* Enters a state, sending its command. */
void	relay_enter(struct relay *, enum relay_state);

/* relay_auth.c */
/* The mechanism to use among those offered in <mechs> (EHLO). */
enum sasl_mech relay_pick_mech(const struct relay *, const char *mechs);
/* Starts AUTH (only on verified TLS). */
void	relay_auth_start(struct relay *);
/* Replies in the PLAIN/LOGIN and in the XOAUTH2 states. */
void	relay_auth_reply(struct relay *);
void	relay_xoauth2_reply(struct relay *);

#endif /* RELAY_INT_H */
