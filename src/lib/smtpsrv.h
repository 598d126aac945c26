/*
 * smtpsrv.h - what every SMTP server of smartrelay says: the daemon's
 * session (daemon/session.c) and the injector's -bs mode
 * (sendmail/sm_smtp.c) take the same commands in the same states and
 * give the same replies, from here.
 *
 * Pure code: a table of which command is allowed in which state (with
 * the 503 text for each state where it is not), the reply texts, and
 * the EHLO keyword list.  The servers keep their own handlers and I/O.
 */
#ifndef SMTPSRV_H
#define SMTPSRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp.h"

struct buf;

/* The states in which a server reads commands, in this order; the
 * session's enum starts with the same four. */
enum smtpsrv_state {
	SMTPSRV_GREETED,	/* greeting sent, waiting for HELO/EHLO */
	SMTPSRV_READY,		/* HELO done, no transaction */
	SMTPSRV_MAIL,		/* MAIL accepted */
	SMTPSRV_RCPT,		/* at least one RCPT accepted */
};

/* Replies that take no argument. */
#define SMTPSRV_OK		"250 2.0.0 Ok"
#define SMTPSRV_MAIL_OK		"250 2.1.0 Ok"
#define SMTPSRV_RCPT_OK		"250 2.1.5 Ok"
#define SMTPSRV_DATA_GO		"354 End data with <CR><LF>.<CR><LF>"
#define SMTPSRV_BYE		"221 2.0.0 Bye"
#define SMTPSRV_VRFY		"252 2.5.0 Cannot VRFY user, but will " \
				"accept message and attempt delivery"
#define SMTPSRV_HELP		"214 2.0.0 Commands: HELO EHLO MAIL RCPT " \
				"DATA RSET NOOP QUIT VRFY HELP"
#define SMTPSRV_TOO_MANY	"452 4.5.3 Error: too many recipients"
#define SMTPSRV_NO_STORAGE	"452 4.3.1 Insufficient system storage"
#define SMTPSRV_LINE_LONG	"500 5.5.2 Error: line too long"
#define SMTPSRV_BAD_CHARS	"500 5.5.2 Error: invalid characters in " \
				"command"
#define SMTPSRV_DATA_SYNTAX	"501 5.5.4 Syntax: DATA"
#define SMTPSRV_SENDER_QUALIFY	"501 5.1.7 Bad sender address syntax " \
				"(cannot be qualified with the domain)"
/* printf formats: the host name; the queue id; the reason. */
#define SMTPSRV_HELO_FMT	"250 %s"
#define SMTPSRV_QUEUED_FMT	"250 2.0.0 Ok: queued as %s"
#define SMTPSRV_BAD_RCPT_FMT	"501 5.1.3 Bad recipient address syntax " \
				"(%s)"

/* EHLO options beyond those always offered. */
#define SMTPSRV_EHLO_STARTTLS	0x1
#define SMTPSRV_EHLO_AUTH	0x2

/*
 * The reply a command line gets before any handler runs: NULL when
 * <verb> may run in <state> (the handler decides the reply), else "500
 * 5.5.2 Error: command not recognized" for an unknown verb or "503 5.5.1
 * Error: <why>" with the table's reason for that state.  Static string.
 */
const char	*smtpsrv_refusal(enum smtp_verb verb, enum smtpsrv_state state);

/* The reply to HELO (<esmtp> false) or EHLO when smtp_parse_helo()
 * refused the argument.  Static string. */
const char	*smtpsrv_helo_syntax(bool esmtp);

/* The reply to MAIL for a smtp_parse_mail() result other than SMTP_OK;
 * the reply to RCPT for a smtp_parse_rcpt() one.  Static strings. */
const char	*smtpsrv_mail_reply(enum smtp_rc rc);
const char	*smtpsrv_rcpt_reply(enum smtp_rc rc);

/* Appends the whole EHLO reply, its lines separated by CRLF and the
 * last one without: the host name, PIPELINING, SIZE <max_size>,
 * 8BITMIME, the <flags> options and ENHANCEDSTATUSCODES. */
void		 smtpsrv_ehlo(struct buf *out, const char *hostname,
		    uint64_t max_size, unsigned int flags);

/* The "with" protocol of the trace header (RFC 3848, and RFC 6531 4.3
 * when the client asked for SMTPUTF8 <utf8>): "SMTP" after HELO, else
 * "ESMTP" with S for <tls> and A for <auth>.  Static string. */
const char	*smtpsrv_protocol(bool esmtp, bool utf8, bool tls, bool auth);

#endif /* SMTPSRV_H */
