/*
 * smtpsrv.c - the command table and the reply texts that every SMTP
 * server of smartrelay shares (see smtpsrv.h).  The table is read, not
 * copied: a reason added here is what both servers say.
 */
#include "config.h"

#include "smtpsrv.h"

#include "buf.h"
#include "util.h"

#define IN(st)		(1u << (st))
#define COMMANDS	(IN(SMTPSRV_GREETED) | IN(SMTPSRV_READY) | \
			 IN(SMTPSRV_MAIL) | IN(SMTPSRV_RCPT))

/* The 503 texts of a command, for each state in which it is not
 * allowed (GREETED, READY, MAIL, RCPT). */
#define NOT_YET		"send HELO/EHLO first"
#define IN_TXN		"MAIL transaction in progress"
#define REFUSE(g, r, m, c)	{ g, r, m, c }

static const struct smtpsrv_cmd {
	enum smtp_verb	 verb;
	unsigned int	 allowed;	/* IN() mask of states */
	const char	*refusal[SMTPSRV_RCPT + 1];	/* 503 text by state */
} smtpsrv_cmds[] = {
	{ SMTP_VERB_HELO, COMMANDS, REFUSE(NULL, NULL, NULL, NULL) },
	{ SMTP_VERB_EHLO, COMMANDS, REFUSE(NULL, NULL, NULL, NULL) },
	{ SMTP_VERB_MAIL, IN(SMTPSRV_READY),
	    REFUSE(NOT_YET, NULL, "nested MAIL command",
	    "nested MAIL command") },
	{ SMTP_VERB_RCPT, IN(SMTPSRV_MAIL) | IN(SMTPSRV_RCPT),
	    REFUSE(NOT_YET, "need MAIL command", NULL, NULL) },
	{ SMTP_VERB_DATA, IN(SMTPSRV_RCPT),
	    REFUSE(NOT_YET, "need MAIL command", "need RCPT command",
	    NULL) },
	{ SMTP_VERB_RSET, COMMANDS, REFUSE(NULL, NULL, NULL, NULL) },
	{ SMTP_VERB_NOOP, COMMANDS, REFUSE(NULL, NULL, NULL, NULL) },
	{ SMTP_VERB_QUIT, COMMANDS, REFUSE(NULL, NULL, NULL, NULL) },
	{ SMTP_VERB_VRFY, COMMANDS, REFUSE(NULL, NULL, NULL, NULL) },
	{ SMTP_VERB_HELP, COMMANDS, REFUSE(NULL, NULL, NULL, NULL) },
	{ SMTP_VERB_STARTTLS, IN(SMTPSRV_GREETED) | IN(SMTPSRV_READY),
	    REFUSE(NULL, NULL, IN_TXN, IN_TXN) },
	{ SMTP_VERB_AUTH, IN(SMTPSRV_READY),
	    REFUSE("send EHLO first", NULL, IN_TXN, IN_TXN) },
};

/* Every 503 reply, whole, so that a static string can be returned. */
static const struct {
	const char	*why;
	const char	*reply;
} smtpsrv_503[] = {
	{ NOT_YET, "503 5.5.1 Error: " NOT_YET },
	{ IN_TXN, "503 5.5.1 Error: " IN_TXN },
	{ "nested MAIL command", "503 5.5.1 Error: nested MAIL command" },
	{ "need MAIL command", "503 5.5.1 Error: need MAIL command" },
	{ "need RCPT command", "503 5.5.1 Error: need RCPT command" },
	{ "send EHLO first", "503 5.5.1 Error: send EHLO first" },
};

const char *
smtpsrv_refusal(enum smtp_verb verb, enum smtpsrv_state state)
{
	const struct smtpsrv_cmd	*cmd = NULL;
	const char			*why;
	size_t				 i;

	for (i = 0; i < nitems(smtpsrv_cmds) && cmd == NULL; i++)
		if (smtpsrv_cmds[i].verb == verb)
			cmd = &smtpsrv_cmds[i];
	if (cmd == NULL)
		return "500 5.5.2 Error: command not recognized";
	if ((cmd->allowed & IN(state)) != 0)
		return NULL;
	why = cmd->refusal[state];
	for (i = 0; why != NULL && i < nitems(smtpsrv_503); i++)
		if (smtpsrv_503[i].why == why)
			return smtpsrv_503[i].reply;
	return "503 5.5.1 Error: bad sequence of commands";
}

const char *
smtpsrv_helo_syntax(bool esmtp)
{
	return esmtp ? "501 5.5.4 Syntax: EHLO hostname" :
	    "501 5.5.4 Syntax: HELO hostname";
}

const char *
smtpsrv_mail_reply(enum smtp_rc rc)
{
	switch (rc) {
	case SMTP_EADDR:
		return "501 5.1.7 Bad sender address syntax";
	case SMTP_EPARAM:
		return "555 5.5.4 Unsupported MAIL parameter";
	case SMTP_ETOOBIG:
		return "552 5.3.4 Message size exceeds fixed maximum message "
		    "size";
	default:
		return "501 5.5.4 Syntax: MAIL FROM:<address>";
	}
}

const char *
smtpsrv_rcpt_reply(enum smtp_rc rc)
{
	switch (rc) {
	case SMTP_EADDR:
		return "501 5.1.3 Bad recipient address syntax";
	case SMTP_EPARAM:
		return "555 5.5.4 Unsupported RCPT parameter";
	default:
		return "501 5.5.4 Syntax: RCPT TO:<address>";
	}
}

void
smtpsrv_ehlo(struct buf *out, const char *hostname, uint64_t max_size,
    unsigned int flags)
{
	buf_printf(out, "250-%s\r\n250-PIPELINING\r\n250-SIZE %llu\r\n"
	    "250-8BITMIME\r\n250-SMTPUTF8\r\n", hostname,
	    (unsigned long long)max_size);
	if (flags & SMTPSRV_EHLO_STARTTLS)
		buf_adds(out, "250-STARTTLS\r\n");
	if (flags & SMTPSRV_EHLO_AUTH)
		buf_adds(out, "250-AUTH PLAIN LOGIN\r\n");
	buf_adds(out, "250 ENHANCEDSTATUSCODES");
}

const char *
smtpsrv_protocol(bool esmtp, bool utf8, bool tls, bool auth)
{
	if (!esmtp)
		return "SMTP";
	if (utf8) {
		if (tls)
			return auth ? "UTF8SMTPSA" : "UTF8SMTPS";
		return auth ? "UTF8SMTPA" : "UTF8SMTP";
	}
	if (tls)
		return auth ? "ESMTPSA" : "ESMTPS";
	return auth ? "ESMTPA" : "ESMTP";
}
