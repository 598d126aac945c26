/*
 * session_txn.h - one SMTP transaction on the server side: the envelope
 * (MAIL's sender, qualified with the domain when it is a bare local
 * name; RCPT's recipients, routed through route.h, duplicates dropped,
 * bounded by max_recipients), the message received during DATA
 * (msgin.c) and the log line of its commit.
 *
 * It neither reads the socket nor answers the client: each command
 * returns the reply line the session sends and whether it counts as a
 * client error.
 */
#ifndef SESSION_TXN_H
#define SESSION_TXN_H

#include <stdbool.h>
#include <stddef.h>

#include "msgin.h"

struct conf;
struct evbuffer;
struct session_txn;
struct spool;

/* How a command went. */
enum session_txn_rc {
	SESSION_TXN_OK,		/* accepted */
	SESSION_TXN_REFUSED,	/* refused, not a client error (452) */
	SESSION_TXN_ERROR,	/* refused: counts as a client error */
};

/* A transaction under <conf> for session <sid> from client <addr>
 * (both borrowed for the life of the transaction).  Never NULL. */
struct session_txn *session_txn_new(const struct conf *conf,
		    unsigned int sid, const char *addr);
void		 session_txn_free(struct session_txn *);

/* Forgets the envelope and any message (RSET, HELO, after DATA). */
void		 session_txn_reset(struct session_txn *);

/* "FROM:<path> [params]": sets the sender.  *reply (a static string)
 * is the line to send. */
enum session_txn_rc session_txn_mail(struct session_txn *,
		    const char *args, const char **reply);

/* "TO:<path>": adds the recipients it routes to.  *reply is the line to
 * send, valid until the next call. */
enum session_txn_rc session_txn_rcpt(struct session_txn *,
		    const char *args, const char **reply);

/* Recipients so far. */
size_t		 session_txn_nrcpt(const struct session_txn *);

/* True when MAIL asked for SMTPUTF8 (RFC 6531). */
bool		 session_txn_is_utf8(const struct session_txn *);

/* DATA: starts the message in <spool>; <from> is filled in but for what
 * the transaction knows (the session, the client, our names and MAIL's
 * parameters), which this adds.  Returns false when the spool cannot
 * start a message (452). */
bool		 session_txn_data(struct session_txn *, struct spool *spool,
		    struct msgin_from *from, bool reject_bare_lf);

/* During DATA: takes what <in> holds, chunk by chunk, up to the end of
 * data (the lone dot); a line of any length is content, bounded by the
 * message size only.  Returns true at the end of data, with what
 * follows it left in <in>; false once <in> is empty. */
bool		 session_txn_read(struct session_txn *, struct evbuffer *in);

/* At the end of data: true when the message may be committed, else
 * false with the refusal (logged) in *<reply>, a static string. */
bool		 session_txn_end(struct session_txn *, const char **reply);

/* Hands the message to the spool; once synced (or failed) the commit is
 * logged and <cb> runs with the queue id or the errno.  The transaction
 * may be freed from <cb>. */
void		 session_txn_commit(struct session_txn *, spool_done_cb cb,
		    void *arg);

#endif /* SESSION_TXN_H */
