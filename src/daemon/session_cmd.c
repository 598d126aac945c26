/*
 * session_cmd.c - the SMTP commands of a session that need nothing but
 * the transaction and the session's policy (see session_cmd.h).
 */
#include "config.h"

#include "session_cmd.h"

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "session_txn.h"
#include "smtp.h"
#include "smtpsrv.h"
#include "util.h"

static enum session_cmd_next
session_cmd_helo(const struct session_cmd_in *in, const char *args,
    bool esmtp)
{
	const struct conf	*conf = in->conf;
	struct buf		 reply = BUF_INIT;

	if (smtp_parse_helo(args, in->helo, in->helosz) != SMTP_OK) {
		in->reply(in->arg, smtpsrv_helo_syntax(esmtp));
		in->error(in->arg);
		return SESSION_CMD_STAY;
	}
	/* RFC 5321 4.1.4: a new HELO/EHLO resets the transaction. */
	session_txn_reset(in->txn);
	if (!esmtp)
		buf_printf(&reply, SMTPSRV_HELO_FMT, conf->hostname);
	else
		smtpsrv_ehlo(&reply, conf->hostname, conf->max_message_size,
		    in->ehlo_flags);
	in->reply(in->arg, reply.p);
	buf_free(&reply);
	return esmtp ? SESSION_CMD_EHLO : SESSION_CMD_HELO;
}

static enum session_cmd_next
session_cmd_mail(const struct session_cmd_in *in, const char *args)
{
	const char	*reply;

	if (in->auth_missing) {
		in->reply(in->arg, "530 5.7.0 Authentication required");
		in->error(in->arg);
		return SESSION_CMD_STAY;
	}
	if (session_txn_mail(in->txn, args, &reply) == SESSION_TXN_OK) {
		in->reply(in->arg, reply);
		return SESSION_CMD_MAIL;
	}
	in->reply(in->arg, reply);
	in->error(in->arg);
	return SESSION_CMD_STAY;
}

static enum session_cmd_next
session_cmd_rcpt(const struct session_cmd_in *in, const char *args)
{
	const char		*reply;
	enum session_txn_rc	 rc;

	rc = session_txn_rcpt(in->txn, args, &reply);
	in->reply(in->arg, reply);
	if (rc == SESSION_TXN_ERROR)
		in->error(in->arg);
	return rc == SESSION_TXN_OK && session_txn_nrcpt(in->txn) > 0 ?
	    SESSION_CMD_RCPT : SESSION_CMD_STAY;
}

/* The verbs this module answers, or the next step of one the session
 * does; whether a command may run now, and the reply when it may not,
 * is the shared table's business (smtpsrv.h). */
static const struct session_cmd {
	enum smtp_verb		 verb;
	enum session_cmd_next	 next;
	const char		*reply;		/* fixed, or NULL */
} session_cmds[] = {
	{ SMTP_VERB_HELO, SESSION_CMD_HELO, NULL },
	{ SMTP_VERB_EHLO, SESSION_CMD_EHLO, NULL },
	{ SMTP_VERB_MAIL, SESSION_CMD_MAIL, NULL },
	{ SMTP_VERB_RCPT, SESSION_CMD_RCPT, NULL },
	{ SMTP_VERB_DATA, SESSION_CMD_DATA, NULL },
	{ SMTP_VERB_RSET, SESSION_CMD_READY, SMTPSRV_OK },
	{ SMTP_VERB_NOOP, SESSION_CMD_STAY, SMTPSRV_OK },
	{ SMTP_VERB_QUIT, SESSION_CMD_QUIT, SMTPSRV_BYE },
	/* RFC 5321 3.5.3: 252 when we will not verify but will accept. */
	{ SMTP_VERB_VRFY, SESSION_CMD_STAY, SMTPSRV_VRFY },
	{ SMTP_VERB_HELP, SESSION_CMD_STAY, SMTPSRV_HELP },
	{ SMTP_VERB_STARTTLS, SESSION_CMD_STARTTLS, NULL },
	{ SMTP_VERB_AUTH, SESSION_CMD_AUTH, NULL },
};

enum session_cmd_next
session_cmd_run(const struct session_cmd_in *in, const char *line,
    size_t len, enum smtp_verb *verb, const char **args)
{
	const struct session_cmd	*cmd = NULL;
	const char			*refusal;
	size_t				 i;

	*verb = SMTP_VERB_UNKNOWN;
	*args = "";
	if (!smtp_line_is_clean(line, len)) {
		in->reply(in->arg, SMTPSRV_BAD_CHARS);
		in->error(in->arg);
		return SESSION_CMD_STAY;
	}
	*verb = smtp_parse_verb(line, args);
	refusal = smtpsrv_refusal(*verb, in->state);
	for (i = 0; i < nitems(session_cmds) && cmd == NULL; i++)
		if (session_cmds[i].verb == *verb)
			cmd = &session_cmds[i];
	if (refusal != NULL || cmd == NULL) {
		in->reply(in->arg, refusal != NULL ? refusal :
		    "451 4.3.0 Internal error");
		in->error(in->arg);
		return SESSION_CMD_STAY;
	}
	switch (cmd->next) {
	case SESSION_CMD_HELO:
	case SESSION_CMD_EHLO:
		return session_cmd_helo(in, *args,
		    cmd->next == SESSION_CMD_EHLO);
	case SESSION_CMD_MAIL:
		return session_cmd_mail(in, *args);
	case SESSION_CMD_RCPT:
		return session_cmd_rcpt(in, *args);
	case SESSION_CMD_READY:
		session_txn_reset(in->txn);
		break;
	default:
		break;
	}
	if (cmd->reply != NULL)
		in->reply(in->arg, cmd->reply);
	return cmd->next;
}
