/*
 * session_cmd.h - the SMTP commands of a session that need nothing but
 * the transaction and the session's policy: the check of a command line
 * against the table of smtpsrv.h (what is allowed in which state), and
 * HELO, EHLO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY and HELP.  DATA,
 * STARTTLS and AUTH are handed back to the session, which owns the
 * connection they change.
 *
 * It answers through the session's reply() and counts client errors
 * through its error(), and says which state the session enters.
 */
#ifndef SESSION_CMD_H
#define SESSION_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp.h"
#include "smtpsrv.h"

struct conf;
struct session_txn;

/* What the session does after one command line. */
enum session_cmd_next {
	SESSION_CMD_STAY,	/* answered; the state stays */
	SESSION_CMD_HELO,	/* answered; READY, after HELO */
	SESSION_CMD_EHLO,	/* answered; READY, after EHLO */
	SESSION_CMD_READY,	/* answered; READY (RSET) */
	SESSION_CMD_MAIL,	/* answered; MAIL */
	SESSION_CMD_RCPT,	/* answered; RCPT */
	SESSION_CMD_QUIT,	/* answered 221; QUIT */
	SESSION_CMD_DATA,	/* not answered: the session's */
	SESSION_CMD_STARTTLS,	/* not answered: the session's */
	SESSION_CMD_AUTH,	/* not answered: the session's */
};

/* The session, as far as these commands see it (all borrowed). */
struct session_cmd_in {
	enum smtpsrv_state	 state;
	const struct conf	*conf;
	struct session_txn	*txn;
	char			*helo;		/* HELO/EHLO's name goes here */
	size_t			 helosz;
	unsigned int		 ehlo_flags;	/* SMTPSRV_EHLO_* offered */
	bool			 auth_missing;	/* MAIL needs AUTH first */
	/* Sends one reply line (without CRLF); counts a client error. */
	void	(*reply)(void *arg, const char *line);
	void	(*error)(void *arg);
	void	*arg;
};

/* Runs the command <line> of <len> octets.  *<verb> is its verb and
 * *<args> its arguments (for DATA, STARTTLS and AUTH). */
enum session_cmd_next session_cmd_run(const struct session_cmd_in *in,
		    const char *line, size_t len, enum smtp_verb *verb,
		    const char **args);

#endif /* SESSION_CMD_H */
