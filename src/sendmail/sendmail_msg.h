/*
 * sendmail_msg.h - one message on its way into the maildrop, as the
 * injector takes it: the envelope (from the command line, the header
 * fields with -t, or SMTP with -bs), the header section completed with
 * the fields it lacks, the daemon's content rules checked on every line.
 *
 * The header section stays in memory until it ends (at an empty line, a
 * line that is no header field, or the end of the input): only then are
 * the recipients of -t known and the missing fields decided.  The file
 * (sendmail_drop.h) starts there.
 */
#ifndef SENDMAIL_MSG_H
#define SENDMAIL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "maildrop.h"
#include "sendmail_drop.h"
#include "smtp.h"

#define SENDMAIL_NAME		"smartrelay-sendmail"
#define SENDMAIL_LINE_BUF	1024	/* longer lines come in pieces */

struct conf;

enum sendmail_mode {
	SENDMAIL_ENQUEUE,	/* -bm, the default */
	SENDMAIL_SMTP,		/* -bs */
	SENDMAIL_MAILQ,		/* -bp, mailq */
	SENDMAIL_FLUSH,		/* -q, -qIid */
	SENDMAIL_NEWALIASES,	/* -bi, -I, newaliases */
	SENDMAIL_VERIFY,	/* -bv */
	SENDMAIL_IGNORE,	/* -bh, -bH, -q30m: nothing to do */
};


/* The command line and what follows from it; read-only for messages. */
struct sendmail {
	const struct conf	*conf;
	enum sendmail_mode	 mode;
	const char		*conf_path;
	const char		*sender;	/* -f/-r, or NULL */
	const char		*fullname;	/* -F or $NAME, or NULL */
	const char		*flush_id;	/* -qI */
	bool			 extract;	/* -t */
	bool			 dot_ends;	/* no -i/-oi */
	char			*login;		/* login@hostname */
};

struct sendmail_msg {
	const struct sendmail	*sm;
	char			*sender;	/* "" is the null sender */
	char			**rcpts;
	size_t			 nrcpt;
	bool			 extract;	/* collect To, Cc, Bcc */
	bool			 in_headers;
	bool			 in_field;	/* a header field was seen */
	bool			 drop_field;	/* the current field is Bcc */
	bool			 rcpt_field;	/* ... is To, Cc or Bcc (-t) */
	bool			 has_date, has_from, has_msgid;
	bool			 midline;	/* pieces of a line came */
	struct buf		 hdr;		/* header lines kept, raw */
	struct buf		 field;		/* rcpt_field, unfolded */
	struct sendmail_drop	 drop;
	struct maildrop_canon	 canon;
	uint64_t		 size;		/* message octets written */
	int			 status;	/* 0, or the first EX_* */
	enum smtp_data_err	 data_err;	/* when a content rule broke */
	char			 errmsg[512];
};

/* Prints "smartrelay-sendmail: <message>" and returns <status>. */
int	sendmail_error(int status, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* Starts a message of <sm> (-t as the command line says); the caller
 * owns it until sendmail_msg_cleanup(). */
void	sendmail_msg_init(struct sendmail_msg *, const struct sendmail *sm);

/* Frees <m>; a maildrop file not yet renamed into place is removed. */
void	sendmail_msg_cleanup(struct sendmail_msg *);

/* Records the first failure of a message (m->status, m->errmsg). */
void	sendmail_msg_fail(struct sendmail_msg *m, int status,
	    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The envelope sender of the command line: -f/-r, or the caller's login
 * at this host. */
void	sendmail_msg_sender(struct sendmail_msg *);

/* Adds one recipient (a mailbox or a local name): qualified, checked
 * and once only.  NULL stands for one too long.  Returns 0, or -1 with
 * the failure recorded. */
int	sendmail_msg_add_rcpt(struct sendmail_msg *, const char *addr);

/* Adds the recipients of the address list <s>/<len> (RFC 5322 3.4),
 * qualified, checked and once each.  Returns 0, or -1 with the failure
 * recorded. */
int	sendmail_msg_add_rcpts(struct sendmail_msg *, const char *s,
	    size_t len);

/* Takes one line as the maildrop file will hold it, its LF (or CRLF)
 * included, or with <more> a piece of one (no LF). */
void	sendmail_msg_line(struct sendmail_msg *, const char *line,
	    size_t len, bool more);

/* Ends the message.  Returns 0 once it is safe in the maildrop, or the
 * sysexits code (the reason in m->errmsg; m->data_err when a content
 * rule broke). */
int	sendmail_msg_finish(struct sendmail_msg *);

/* Routes the recipients as the daemon will at pickup (route.h), so that
 * what it would refuse is refused here. */
void	sendmail_msg_check_routes(struct sendmail_msg *);

/* Reads one line of stdin, its LF included, into <buf>.  A longer line
 * comes in pieces, each with *more set: it is content (issue 13),
 * bounded by the message size only.  A CR that would end a piece is
 * left for the next one: the octet after it may make it the line's end.
 * Returns false at the end of the input. */
bool	sendmail_msg_read(char *buf, size_t bufsz, size_t *len, bool *more);

/* A line holding only "." (and its LF or CRLF): the end of the message
 * without -i. */
bool	sendmail_msg_is_dot(const char *line, size_t len);

#endif /* SENDMAIL_MSG_H */
