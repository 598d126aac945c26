/*
 * ctl_mailq.c - the daemon's "queue" and "failed" answers in Postfix's
 * mailq layout (API in ctl_mailq.h).
 *
 * Only the choice of what to show lives here: which recipients, which
 * status mark, which reason.  The layout itself, and making untrusted
 * text printable, is lib/mailq.c's.  A sent recipient is done and not
 * listed in the queue, as Postfix lists only what is left to do.
 */
#include "config.h"

#include "ctl_mailq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "json.h"
#include "mailq.h"
#include "util.h"

/* The reason a recipient of a queued message waits: its last reply,
 * else (once the message was tried) the message's last error. */
static const char *
ctl_mailq_queue_reason(const struct json *m, const struct json *rc)
{
	const char	*reply = json_str(rc, "reply");

	if (reply != NULL)
		return reply;
	return json_int(m, "attempts") > 0 ? json_str(m, "last_error") :
	    NULL;
}

/* The final state of a recipient of a failed message, in <buf>. */
static const char *
ctl_mailq_failed_reason(const struct json *rc, char *buf, size_t bufsz)
{
	const char	*state = json_str(rc, "state");
	const char	*reply = json_str(rc, "reply");
	const char	*dsn = json_str(rc, "dsn");

	if (state != NULL && strcmp(state, "sent") == 0)
		snprintf(buf, bufsz, "delivered%s%s", reply ? ": " : "",
		    reply ? reply : "");
	else if (state != NULL && strcmp(state, "failed") == 0 && reply)
		return reply;
	else if (state != NULL && strcmp(state, "failed") == 0)
		snprintf(buf, bufsz, "failed%s%s", dsn ? ", status " : "",
		    dsn ? dsn : "");
	else
		snprintf(buf, bufsz, "not attempted");
	return buf;
}

/* One message of the answer.  <failed>: from failed/, every recipient
 * with its final state; else the recipients left to do. */
static void
ctl_mailq_one(struct mailq *mq, const struct json *m, bool failed)
{
	const struct json	*rcs = json_get(m, "recipients"), *rc;
	struct mailq_rcpt	*out;
	struct mailq_msg	 msg;
	const char		*state;
	char			(*bufs)[512];
	size_t			 i, n = 0;

	n = rcs != NULL && rcs->type == JSON_ARR ? rcs->n : 0;
	out = xcalloc(n + 1, sizeof(*out));
	bufs = xcalloc(n + 1, sizeof(*bufs));
	memset(&msg, 0, sizeof(msg));
	msg.rcpts = out;
	for (i = 0; i < n; i++) {
		rc = &rcs->items[i];
		state = json_str(rc, "state");
		if (!failed && state != NULL && strcmp(state, "sent") == 0)
			continue;
		out[msg.nrcpt].addr = json_str(rc, "addr") ?
		    json_str(rc, "addr") : "?";
		out[msg.nrcpt++].reason = failed ?
		    ctl_mailq_failed_reason(rc, bufs[i], sizeof(bufs[i])) :
		    ctl_mailq_queue_reason(m, rc);
	}
	msg.id = json_str(m, "id") ? json_str(m, "id") : "?";
	msg.status = json_bool(m, "sending") ? MAILQ_ACTIVE :
	    json_bool(m, "held") ? MAILQ_HELD : 0;
	msg.size = (uint64_t)json_int(m, "size");
	msg.arrival = json_int(m, "arrival");
	msg.sender = json_str(m, "sender") ? json_str(m, "sender") : "";
	mailq_message(mq, &msg);
	free(bufs);
	free(out);
}

static int
ctl_mailq_print(const struct json *doc, bool failed)
{
	const struct json	*msgs = json_get(doc, "messages");
	struct mailq		 mq;
	size_t			 i;

	if (msgs == NULL || msgs->type != JSON_ARR)
		return EX_SOFTWARE;
	mailq_init(&mq, stdout);
	for (i = 0; i < msgs->n; i++)
		ctl_mailq_one(&mq, &msgs->items[i], failed);
	mailq_summary(&mq, failed ? "No message in failed/" : MAILQ_EMPTY);
	return EX_OK;
}

int
ctl_mailq_queue(const struct json *doc)
{
	return ctl_mailq_print(doc, false);
}

int
ctl_mailq_failed(const struct json *doc)
{
	return ctl_mailq_print(doc, true);
}
