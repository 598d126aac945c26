/*
 * session_int.h - what session.c and session_auth.c share: the session
 * itself and the helpers both use.  Private to the session module: no
 * other file includes it.
 */
#ifndef SESSION_INT_H
#define SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "line.h"
#include "session.h"
#include "smtp.h"
#include "stamp.h"
#include "users.h"

struct bufferevent;
struct evbuffer;
struct spool_msg;

#define SESSION_ERRORS_MAX	20	/* as Postfix smtpd_hard_error_limit */
#define SESSION_OUTPUT_MAX	(64 * 1024)	/* stop reading above this */
#define SESSION_DATA_LINE_MAX	SMTP_TEXT_LINE_MAX
#define SESSION_LINGER_SECS	2	/* read and drop input before close */
#define SESSION_LINGER_MAX	(64 * 1024)
#define SESSION_HANDSHAKE_SECS	30	/* at most; command_timeout if less */
/* RFC 4954 section 4 lets AUTH lines exceed 512 octets; ours hold at
 * most a name and a password of 255 octets each, in base64. */
#define SESSION_AUTH_LINE_MAX	SMTP_TEXT_LINE_MAX

enum session_state {
	SESSION_GREETED,	/* greeting sent, waiting for HELO/EHLO */
	SESSION_READY,		/* HELO done, no transaction */
	SESSION_MAIL,		/* MAIL accepted */
	SESSION_RCPT,		/* at least one RCPT accepted */
	SESSION_DATA,		/* receiving message lines */
	SESSION_COMMIT,		/* waiting for the spool to sync */
	SESSION_QUIT,		/* flushing the last reply */
	SESSION_LINGER,		/* reply sent, draining input, then close */
	SESSION_STARTTLS,	/* flushing "220 Ready to start TLS" */
	SESSION_HANDSHAKE,	/* TLS handshake running */
	SESSION_AUTH,		/* waiting for an AUTH response line */
	SESSION_VERIFY,		/* waiting for the password check */
};


struct session {
	TAILQ_ENTRY(session)	 entry;
	struct session_ctx	*ctx;
	const struct conf	*conf;		/* its own reference: the
						 * configuration it began with */
	struct bufferevent	*bev;		/* owns the socket */
	enum session_state	 state;
	unsigned int		 sid;		/* for log lines */
	struct sockaddr_storage	 peer;
	char			 addr[64];	/* numeric peer address */
	char			 helo[SMTP_DOMAIN_MAX + 1];
	bool			 esmtp;
	unsigned int		 errors;
	bool			 closed;	/* waiting for a commit only */
	size_t			 lingered;	/* octets dropped in LINGER */
	const char		*close_reason;
	const struct conf_network *net;	/* the client's policy, or NULL */
	bool			 implicit_tls;	/* came in on listen_tls */
	bool			 auth_plain_ok;	/* AUTH allowed without TLS */
	bool			 tls;		/* handshake done */
	struct session_auth	*auth;		/* AUTH, and who logged in */

	/* The transaction. */
	struct smtp_mail	 mail;
	char			**rcpts;
	size_t			 nrcpt;
	struct spool_msg	*msg;
	bool			 msg_ioerr;	/* a spool write failed */
	struct smtp_data	 data;
	struct stamp_scan	 stamp;		/* Date:, Message-ID: seen */

	struct line_reader	 cmd_reader;
	struct line_reader	 data_reader;
	struct line_reader	 auth_reader;
	char			 line[SESSION_DATA_LINE_MAX + 1];
};

/* session.c */
void	session_set_state(struct session *, enum session_state);
/* Queues one reply line; CRLF is added here and nowhere else. */
void	session_reply(struct session *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Counts a client error; past SESSION_ERRORS_MAX: 421 and QUIT. */
void	session_error(struct session *);
void	session_set_timeout(struct session *, uint64_t secs);
/* Forgets the transaction (RSET, HELO, after DATA). */
void	session_reset(struct session *);
/* Consumes buffered input until it runs out or the state says stop. */
void	session_process(struct session *);
/* Frees the session (the only place); callers return at once. */
void	session_close(struct session *, const char *reason);
void	session_read_cb(struct bufferevent *, void *);
void	session_write_cb(struct bufferevent *, void *);
void	session_event_cb(struct bufferevent *, short, void *);

/* session_auth.c: STARTTLS (RFC 3207) and AUTH (RFC 4954). */
/* True when EHLO offers AUTH: users configured, and TLS active or the
 * listener allows plaintext AUTH. */
bool	session_auth_is_offered(const struct session *);
void	session_cmd_starttls(struct session *, const char *args);
void	session_cmd_auth(struct session *, const char *args);
/* Replaces the session's bufferevent by a TLS one on <fd> (which it
 * then owns) and enters SESSION_HANDSHAKE.  Returns 0, or -1 with
 * nothing changed. */
int	session_tls_begin(struct session *, int fd);
/* In SESSION_STARTTLS, once the 220 is out. */
void	session_tls_start(struct session *);
/* In SESSION_HANDSHAKE: the handshake finished or failed. */
void	session_tls_event(struct session *, short what);
/* In SESSION_AUTH: takes one response line from <in>.  Returns false
 * when no complete line is buffered. */
bool	session_auth_input(struct session *, struct evbuffer *in);

#endif /* SESSION_INT_H */
