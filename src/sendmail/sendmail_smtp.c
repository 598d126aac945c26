/*
 * sendmail_smtp.c - the -bs server (see sendmail_smtp.h).
 *
 * Commands go through the daemon's parser (smtp.h) and command table
 * (smtpsrv.h), so a command gets the reply the daemon would give.  DATA
 * lines go through the daemon's decoder, which unstuffs the dots and
 * finds the end: the maildrop then holds the message as content lines,
 * never stuffed again (the pickup reads them as plain lines).  The
 * limits (size, Received: count) are the message's (sendmail_msg.h),
 * which counts what is written, added fields included.
 */
#include "config.h"

#include "sendmail_smtp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "buf.h"
#include "conf.h"
#include "route.h"
#include "sendmail_msg.h"
#include "smtp.h"
#include "smtpsrv.h"
#include "util.h"

struct sendmail_smtp {
	const struct sendmail	*sm;
	enum smtpsrv_state	 state;
	struct sendmail_msg	 m;
	struct route_result	 routed;	/* where the RCPTs go */
};

static void
sendmail_smtp_reply(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Writes one reply; CRLF is added here and nowhere else. */
static void
sendmail_smtp_reply(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
	fflush(stdout);
}

/* Forgets the transaction (RSET, HELO, after DATA). */
static void
sendmail_smtp_reset(struct sendmail_smtp *s)
{
	sendmail_msg_cleanup(&s->m);
	sendmail_msg_init(&s->m, s->sm);
	s->m.extract = false;
	route_result_cleanup(&s->routed);
	memset(&s->routed, 0, sizeof(s->routed));
}

static void
sendmail_smtp_helo(struct sendmail_smtp *s, const char *args, bool esmtp)
{
	const struct conf	*conf = s->sm->conf;
	char			 helo[SMTP_DOMAIN_MAX + 1];
	struct buf		 ehlo = BUF_INIT;

	if (smtp_parse_helo(args, helo, sizeof(helo)) != SMTP_OK) {
		sendmail_smtp_reply("%s", smtpsrv_helo_syntax(esmtp));
		return;
	}
	sendmail_smtp_reset(s);
	s->state = SMTPSRV_READY;
	if (!esmtp) {
		sendmail_smtp_reply(SMTPSRV_HELO_FMT, conf->hostname);
		return;
	}
	/* No STARTTLS, no AUTH: the caller is a local program. */
	smtpsrv_ehlo(&ehlo, conf->hostname, conf->max_message_size, 0);
	sendmail_smtp_reply("%s", ehlo.p);
	buf_free(&ehlo);
}

static void
sendmail_smtp_mail(struct sendmail_smtp *s, const char *args)
{
	struct smtp_mail	mail;
	enum smtp_rc		rc;
	char			q[SMTP_ADDR_BUFSZ];

	rc = smtp_parse_mail(args, s->sm->conf->max_message_size, &mail);
	if (rc != SMTP_OK) {
		sendmail_smtp_reply("%s", smtpsrv_mail_reply(rc));
		return;
	}
	/* "MAIL FROM:<scanner>" becomes scanner@domain, as in the daemon;
	 * the null sender stays null. */
	snprintf(q, sizeof(q), "%s", mail.path);
	if (mail.path[0] != '\0' && strchr(mail.path, '@') == NULL &&
	    route_qualify(&s->sm->conf->route, mail.path, q,
	    sizeof(q)) == -1) {
		sendmail_smtp_reply(SMTPSRV_SENDER_QUALIFY);
		return;
	}
	sendmail_smtp_reset(s);
	s->m.sender = xstrdup(q);
	s->state = SMTPSRV_MAIL;
	sendmail_smtp_reply(SMTPSRV_MAIL_OK);
}

/* Routes the recipient now, as the daemon's RCPT does (and counts what
 * it expands to against max_recipients); the maildrop keeps it as it
 * was given, for the daemon to route again at pickup. */
static void
sendmail_smtp_rcpt(struct sendmail_smtp *s, const char *args)
{
	const struct conf	*conf = s->sm->conf;
	struct smtp_rcpt	 rcpt;
	struct route_result	 res;
	enum smtp_rc		 rc;
	char			 err[256];

	if ((rc = smtp_parse_rcpt(args, &rcpt)) != SMTP_OK) {
		sendmail_smtp_reply("%s", smtpsrv_rcpt_reply(rc));
		return;
	}
	if (route_rcpt(&conf->route, rcpt.path, &res, err,
	    sizeof(err)) == -1) {
		route_result_cleanup(&res);
		sendmail_smtp_reply(SMTPSRV_BAD_RCPT_FMT, err);
		return;
	}
	if (route_result_merge(&s->routed, &res, conf->max_recipients) ==
	    -1) {
		route_result_cleanup(&res);
		sendmail_smtp_reply(SMTPSRV_TOO_MANY);
		return;
	}
	route_result_cleanup(&res);
	if (sendmail_msg_add_rcpt(&s->m, rcpt.path) == -1) {
		/* Routed but not qualified: cannot happen; say so safely. */
		sendmail_smtp_reply(SMTPSRV_BAD_RCPT_FMT, s->m.errmsg);
		s->m.status = 0;
		return;
	}
	s->state = SMTPSRV_RCPT;
	sendmail_smtp_reply(SMTPSRV_RCPT_OK);
}

/* One DATA line (with <more>, a piece of one), terminator stripped,
 * through the decoder.  <line> has room for two more octets.  Returns
 * false at the end of data. */
static bool
sendmail_smtp_data_line(struct sendmail_smtp *s, struct smtp_data *d,
    char *line, size_t len, bool more)
{
	const char	*out;
	size_t		 outlen;

	if (more) {
		smtp_data_piece(d, line, len, &out, &outlen);
		sendmail_msg_line(&s->m, out, outlen, true);
		return true;
	}
	/* LF or CRLF: both end a line here, and "." alone ends DATA. */
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (smtp_data_line(d, line, len, true, &out, &outlen) ==
	    SMTP_DATA_END)
		return false;
	/* The content ends at line + len: its CRLF goes there. */
	line[len] = '\r';
	line[len + 1] = '\n';
	sendmail_msg_line(&s->m, out, outlen + 2, false);
	return true;
}

/* DATA up to its "." line.  Returns false at the end of the input. */
static bool
sendmail_smtp_data(struct sendmail_smtp *s, const char *args)
{
	struct sendmail_msg	*m = &s->m;
	struct smtp_data	 d;
	char			 line[SENDMAIL_LINE_BUF + 2];
	size_t			 len;
	bool			 more, end = false;

	if (*args != '\0') {
		sendmail_smtp_reply(SMTPSRV_DATA_SYNTAX);
		return true;
	}
	/* Framing only: the message counts the limits (see above). */
	smtp_data_init(&d, UINT64_MAX, false, 0);
	sendmail_smtp_reply(SMTPSRV_DATA_GO);
	while (!end && sendmail_msg_read(line, SENDMAIL_LINE_BUF, &len,
	    &more))
		end = !sendmail_smtp_data_line(s, &d, line, len, more);
	if (!end)
		return false;
	if (sendmail_msg_finish(m) == 0)
		sendmail_smtp_reply(SMTPSRV_QUEUED_FMT, m->drop.name);
	else if (m->data_err != SMTP_DATA_OK)
		sendmail_smtp_reply("%s", smtp_data_err_reply(m->data_err));
	else {
		sendmail_error(m->status, "%s", m->errmsg);
		sendmail_smtp_reply(SMTPSRV_NO_STORAGE);
	}
	sendmail_smtp_reset(s);
	s->state = SMTPSRV_READY;
	return true;
}

/* One command line (without its line end).  Returns false to stop. */
static bool
sendmail_smtp_cmd(struct sendmail_smtp *s, const char *line)
{
	const char	*args, *refusal;
	enum smtp_verb	 verb = smtp_parse_verb(line, &args);

	if ((refusal = smtpsrv_refusal(verb, s->state)) != NULL) {
		sendmail_smtp_reply("%s", refusal);
		return true;
	}
	switch (verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		sendmail_smtp_helo(s, args, verb == SMTP_VERB_EHLO);
		break;
	case SMTP_VERB_MAIL:
		sendmail_smtp_mail(s, args);
		break;
	case SMTP_VERB_RCPT:
		sendmail_smtp_rcpt(s, args);
		break;
	case SMTP_VERB_DATA:
		return sendmail_smtp_data(s, args);
	case SMTP_VERB_RSET:
		/* As the daemon's session: RSET leaves a session ready,
		 * even one that has not said HELO. */
		sendmail_smtp_reset(s);
		s->state = SMTPSRV_READY;
		sendmail_smtp_reply(SMTPSRV_OK);
		break;
	case SMTP_VERB_NOOP:
		sendmail_smtp_reply(SMTPSRV_OK);
		break;
	case SMTP_VERB_QUIT:
		sendmail_smtp_reply(SMTPSRV_BYE);
		return false;
	case SMTP_VERB_VRFY:
		sendmail_smtp_reply(SMTPSRV_VRFY);
		break;
	case SMTP_VERB_HELP:
		sendmail_smtp_reply(SMTPSRV_HELP);
		break;
	default:
		/* STARTTLS and AUTH, which EHLO does not offer here: the
		 * daemon's answer when they are not configured. */
		sendmail_smtp_reply("502 5.5.1 Error: command not "
		    "implemented");
	}
	return true;
}

int
sendmail_smtp(const struct sendmail *sm)
{
	struct sendmail_smtp	 s;
	char			 line[SENDMAIL_LINE_BUF];
	size_t			 len;
	bool			 toolong, more = true;

	memset(&s, 0, sizeof(s));
	s.sm = sm;
	s.state = SMTPSRV_GREETED;
	sendmail_msg_init(&s.m, sm);
	sendmail_smtp_reply("220 %s ESMTP smartrelay-sendmail",
	    sm->conf->hostname);
	while (more && sendmail_msg_read(line, sizeof(line), &len,
	    &toolong)) {
		while (len > 0 && (line[len - 1] == '\n' ||
		    line[len - 1] == '\r'))
			len--;
		if (toolong || len > SMTP_CMD_LINE_MAX - 2)
			sendmail_smtp_reply(SMTPSRV_LINE_LONG);
		else if (!smtp_line_is_clean(line, len))
			sendmail_smtp_reply(SMTPSRV_BAD_CHARS);
		else {
			line[len] = '\0';
			more = sendmail_smtp_cmd(&s, line);
		}
	}
	sendmail_msg_cleanup(&s.m);
	route_result_cleanup(&s.routed);
	return ferror(stdout) ? EX_IOERR : EX_OK;
}
