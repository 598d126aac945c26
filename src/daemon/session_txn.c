/*
 * session_txn.c - one SMTP transaction on the server side: the
 * envelope of MAIL and RCPT, the message of DATA, the commit's log line.
 */
#include "config.h"

#include "session_txn.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "conf.h"
#include "log.h"
#include "msgin.h"
#include "route.h"
#include "smtp.h"
#include "smtpsrv.h"
#include "util.h"

#define SESSION_TXN_IOV	16	/* input chunks looked at per pass */

struct session_txn {
	const struct conf	*conf;		/* borrowed */
	unsigned int		 sid;		/* for log lines */
	const char		*addr;		/* borrowed */
	struct smtp_mail	 mail;
	char			**rcpts;
	size_t			 nrcpt;
	struct msgin		*msg;		/* during DATA */
	uint64_t		 size;		/* of the message committed */
	spool_done_cb		 done;		/* during the commit */
	void			*done_arg;
	char			 reply[512];
};

struct session_txn *
session_txn_new(const struct conf *conf, unsigned int sid, const char *addr)
{
	struct session_txn	*t = xcalloc(1, sizeof(*t));

	t->conf = conf;
	t->sid = sid;
	t->addr = addr;
	return t;
}

void
session_txn_free(struct session_txn *t)
{
	if (t == NULL)
		return;
	session_txn_reset(t);
	free(t);
}

/* Forgets the transaction (RSET, HELO, after DATA). */
void
session_txn_reset(struct session_txn *t)
{
	size_t	i;

	for (i = 0; i < t->nrcpt; i++)
		free(t->rcpts[i]);
	free(t->rcpts);
	t->rcpts = NULL;
	t->nrcpt = 0;
	memset(&t->mail, 0, sizeof(t->mail));
	msgin_free(t->msg);
	t->msg = NULL;
}

/* "MAIL FROM:<scanner>" becomes scanner@domain; the null sender stays
 * null.  Returns 0, or -1 when the result is too long. */
static int
session_txn_qualify_sender(struct session_txn *t)
{
	char	q[SMTP_ADDR_BUFSZ];

	if (t->mail.path[0] == '\0' || strchr(t->mail.path, '@') != NULL)
		return 0;
	if (route_qualify(&t->conf->route, t->mail.path, q, sizeof(q)) == -1)
		return -1;
	memcpy(t->mail.path, q, sizeof(q));
	return 0;
}

enum session_txn_rc
session_txn_mail(struct session_txn *t, const char *args,
    const char **reply)
{
	enum smtp_rc	rc;

	switch ((rc = smtp_parse_mail(args, t->conf->max_message_size,
	    &t->mail))) {
	case SMTP_OK:
		if (session_txn_qualify_sender(t) == -1) {
			*reply = SMTPSRV_SENDER_QUALIFY;
			break;
		}
		*reply = SMTPSRV_MAIL_OK;
		return SESSION_TXN_OK;
	default:
		*reply = smtpsrv_mail_reply(rc);
		break;
	}
	memset(&t->mail, 0, sizeof(t->mail));
	return SESSION_TXN_ERROR;
}

/* True when <addr> is a recipient of the transaction already. */
static bool
session_txn_has_rcpt(const struct session_txn *t, const char *addr)
{
	size_t	i;

	for (i = 0; i < t->nrcpt; i++)
		if (strcmp(t->rcpts[i], addr) == 0)
			return true;
	return false;
}

/* Logs where a local name went: the one line that tells an admin why
 * cron's mail to root arrived at admin_address. */
static void
session_txn_log_route(const struct session_txn *t, const char *original,
    const struct route_result *res)
{
	char	orig[4 * SMTP_ADDR_BUFSZ], list[1024];

	log_info("session rcpt sid=%08x original=<%s> rewritten=%s via=%s",
	    t->sid, str_log_escape(original, strlen(original), orig,
	    sizeof(orig)), route_result_fmt(res, list, sizeof(list)),
	    route_how_name(res->how));
}

enum session_txn_rc
session_txn_rcpt(struct session_txn *t, const char *args,
    const char **reply)
{
	struct smtp_rcpt	rcpt;
	struct route_result	res;
	char			err[256];
	size_t			i, fresh = 0;
	enum smtp_rc		rc;

	if ((rc = smtp_parse_rcpt(args, &rcpt)) != SMTP_OK) {
		*reply = smtpsrv_rcpt_reply(rc);
		return SESSION_TXN_ERROR;
	}
	/* Local names go where route.h says; the envelope holds only
	 * where the message is going. */
	if (route_rcpt(&t->conf->route, rcpt.path, &res, err,
	    sizeof(err)) == -1) {
		route_result_cleanup(&res);
		snprintf(t->reply, sizeof(t->reply), SMTPSRV_BAD_RCPT_FMT,
		    err);
		*reply = t->reply;
		return SESSION_TXN_ERROR;
	}
	/* A duplicate is accepted but delivered once, as Postfix does. */
	for (i = 0; i < res.naddrs; i++)
		fresh += !session_txn_has_rcpt(t, res.addrs[i]);
	if (fresh > 0 && t->nrcpt + fresh > t->conf->max_recipients) {
		route_result_cleanup(&res);
		*reply = SMTPSRV_TOO_MANY;
		return SESSION_TXN_REFUSED;
	}
	if (res.how != ROUTE_REMOTE)
		session_txn_log_route(t, rcpt.path, &res);
	t->rcpts = xrealloc(t->rcpts, (t->nrcpt + fresh + 1) *
	    sizeof(*t->rcpts));
	for (i = 0; i < res.naddrs; i++)
		if (!session_txn_has_rcpt(t, res.addrs[i]))
			t->rcpts[t->nrcpt++] = xstrdup(res.addrs[i]);
	route_result_cleanup(&res);
	*reply = SMTPSRV_RCPT_OK;
	return SESSION_TXN_OK;
}

size_t
session_txn_nrcpt(const struct session_txn *t)
{
	return t->nrcpt;
}

bool
session_txn_is_utf8(const struct session_txn *t)
{
	return t->mail.smtputf8;
}

bool
session_txn_data(struct session_txn *t, struct spool *spool,
    struct msgin_from *from, bool reject_bare_lf)
{
	from->sid = t->sid;
	from->addr = t->addr;
	from->hostname = t->conf->hostname;
	from->domain = t->conf->domain;
	from->body = t->mail.body;
	from->smtputf8 = t->mail.smtputf8;
	t->msg = msgin_new(spool, t->mail.path, t->rcpts, t->nrcpt, from,
	    t->conf->max_message_size, reject_bare_lf);
	return t->msg != NULL;
}

/*
 * The message goes from the input buffer's own chunks to the scanner,
 * each whole, with no copy into a line buffer; what was consumed is
 * drained at once.  Input after the end of data stays for the commands.
 */
bool
session_txn_read(struct session_txn *t, struct evbuffer *in)
{
	struct evbuffer_iovec	 v[SESSION_TXN_IOV];
	size_t			 used;
	int			 i, nv;
	bool			 end = false;

	while (!end && evbuffer_get_length(in) > 0) {
		nv = evbuffer_peek(in, -1, NULL, v, SESSION_TXN_IOV);
		if (nv > SESSION_TXN_IOV)
			nv = SESSION_TXN_IOV;
		used = 0;
		for (i = 0; i < nv && !end; i++)
			used += msgin_feed(t->msg, v[i].iov_base,
			    v[i].iov_len, &end);
		evbuffer_drain(in, used);
	}
	return end;
}

bool
session_txn_end(struct session_txn *t, const char **reply)
{
	switch (msgin_end(t->msg, reply)) {
	case MSGIN_REJECTED:
		log_notice("session rejected sid=%08x client=%s reason=\"%s\"",
		    t->sid, t->addr, *reply);
		return false;
	case MSGIN_IOERR:
		log_warnx("session spool write failed sid=%08x client=%s",
		    t->sid, t->addr);
		*reply = SMTPSRV_NO_STORAGE;
		return false;
	case MSGIN_OK:
		break;
	}
	return true;
}

/* Runs on the loop thread when the spool has synced (or failed). */
static void
session_txn_commit_cb(const char *id, int err, void *arg)
{
	struct session_txn	*t = arg;
	char			 esc[SMTP_ADDR_BUFSZ * 4 + 4];

	if (err == 0)
		log_info("session queued id=%s from=<%s> nrcpt=%zu size=%llu "
		    "client=%s sid=%08x", id,
		    str_log_escape(t->mail.path, strlen(t->mail.path), esc,
		    sizeof(esc)), t->nrcpt,
		    (unsigned long long)t->size, t->addr, t->sid);
	else {
		errno = err;
		log_warn("session commit failed sid=%08x client=%s", t->sid,
		    t->addr);
	}
	t->done(id, err, t->done_arg);
}

void
session_txn_commit(struct session_txn *t, spool_done_cb cb, void *arg)
{
	t->done = cb;
	t->done_arg = arg;
	t->size = msgin_size(t->msg);
	msgin_commit(t->msg, session_txn_commit_cb, t);
	t->msg = NULL;
}
