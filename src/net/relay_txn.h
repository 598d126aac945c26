/*
 * relay_txn.h - one message on a relay connection: the MAIL/RCPT/DATA
 * groups of at most 100 recipients each (pipelined when the server
 * offers PIPELINING, RFC 2920), the result of each recipient, and the
 * body as sent: From: rewrite of the header block (relay_head.h),
 * re-encoding, and dot-stuffing, streamed from the spool file with
 * backpressure.
 *
 * It writes its commands through the connection's callback and is fed
 * the server's replies; the connection (relay.c, over relay_link.c)
 * owns the socket, the timeouts and its states, and does what each
 * call returns.  Nothing here is called back from inside a call,
 * except cmd().
 */
#ifndef RELAY_TXN_H
#define RELAY_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "relay.h"

struct evbuffer;
struct event_base;
struct relay_txn;

#define RELAY_OUT_HIGH		(256 * 1024)	/* stop reading the file */
#define RELAY_OUT_LOW		(64 * 1024)	/* the connection's write
						 * watermark: pump below this */

/* What the connection does next. */
enum relay_txn_next {
	RELAY_TXN_START,	/* a new group went out: wait for replies
				 * with the reply timeout */
	RELAY_TXN_WAIT,		/* more replies are outstanding */
	RELAY_TXN_BODY,		/* the body streams: relay_txn_pump() each
				 * time the output drains */
	RELAY_TXN_DOT,		/* the final dot is out: its long wait */
	RELAY_TXN_RSET,		/* send RSET, then relay_txn_after_rset() */
	RELAY_TXN_ENDED,	/* "." ended a DATA without recipients:
				 * its reply, then relay_txn_after_rset() */
	RELAY_TXN_PLAN,		/* the re-encoder's first pass runs: its
				 * end comes through plan() */
	RELAY_TXN_DONE,		/* over: report relay_txn_env() */
	RELAY_TXN_FAIL,		/* the connection fails: relay_txn_failure() */
};

/* What the transaction knows of its connection (all borrowed). */
struct relay_txn_conn {
	struct event_base		*base;
	const struct conf		*conf;
	const struct conf_upstream	*up;
	bool				 pipelining;	/* EHLO said so */
	bool				 eightbitmime;	/* RFC 6152 */
	bool				 smtputf8;	/* RFC 6531 */
	uint64_t			 size_limit;	/* EHLO SIZE, or 0 */
	/* Sends one command line; <what> stands for it in debug logs. */
	void	(*cmd)(void *arg, const char *what, const char *line);
	/* The re-encoder's first pass is over: START, DONE or FAIL. */
	void	(*plan)(void *arg, enum relay_txn_next next);
	void	*arg;
};

/* Starts sending <env> (borrowed until relay_txn_free()) whose data is
 * at <data_path>; <out> is the connection's output (the body is
 * written there directly).  *<next> says what happened: START, PLAN,
 * or DONE without a round trip (nothing to send, an unreadable file,
 * a message over the server's SIZE: relay_txn_env() has the results). */
struct relay_txn *relay_txn_new(const struct relay_txn_conn *conn,
		    struct envelope *env, const char *data_path,
		    struct evbuffer *out, enum relay_txn_next *next);

/* Closes the file and frees the transaction (not the envelope).  NULL
 * is a no-op. */
void		 relay_txn_free(struct relay_txn *);

/* One reply of the MAIL/RCPT/DATA group: <code> and its whole text
 * <reply> ("250 2.1.5 ok"). */
enum relay_txn_next relay_txn_reply(struct relay_txn *, int code,
		    const char *reply);

/* The reply to the final dot. */
enum relay_txn_next relay_txn_dot_reply(struct relay_txn *, int code,
		    const char *reply);

/* After RSET (or the dot of an empty DATA), whatever was answered: the
 * next group (START) or DONE. */
enum relay_txn_next relay_txn_after_rset(struct relay_txn *);

/* Fills the output up to the high watermark: BODY, DOT or FAIL. */
enum relay_txn_next relay_txn_pump(struct relay_txn *);

/* The envelope, the status of the message and the reply for the whole
 * message (valid until relay_txn_free()). */
struct envelope	*relay_txn_env(const struct relay_txn *);
enum relay_status relay_txn_status(const struct relay_txn *,
		    const char **reply);

/* After FAIL: what the connection fails with. */
enum relay_status relay_txn_failure(const struct relay_txn *,
		    enum relay_why *why, const char **reason);

#endif /* RELAY_TXN_H */
