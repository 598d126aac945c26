/*
 * mailq.c - Postfix's mailq layout (API and sources in mailq.h).
 *
 * The formats are Postfix's L_STRING_FORMAT and L_SENDER_FORMAT (the
 * long queue id variant of postqueue/showq_compat.c); the reason line,
 * the empty line between messages and the summary are as there too.
 * Only the writing is here: what a message's status mark, reasons and
 * listed recipients are is the caller's choice.
 */
#include "config.h"

#include "mailq.h"

#include <string.h>

#include "util.h"

#define MAILQ_HEAD_FMT	"%-17s %8s %-19s %s\n"	/* L_STRING_FORMAT */
#define MAILQ_MSG_FMT	"%-17s %8llu %19.19s "	/* L_SENDER_FORMAT */
#define MAILQ_RCPT_FMT	"%-17s %8s %-19s "	/* ... the address follows */
#define MAILQ_REASON_COL 76	/* "(reason)" ends in column 78 */
#define MAILQ_NULL_SENDER "MAILER-DAEMON"

/* Writes <s> with each control byte, DEL, C1 control and byte outside
 * valid UTF-8 as '?': one '?' per byte, so the width stays strlen(s)
 * for ASCII (Postfix's printable()). */
static void
mailq_put(FILE *out, const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = strlen(s), i = 0, u;

	while (i < n) {
		if (p[i] >= 0x20 && p[i] < 0x7f) {
			putc(p[i++], out);
			continue;
		}
		u = p[i] >= 0x80 ? str_utf8_len(p + i, n - i) : 0;
		/* U+0080..U+009F are controls too. */
		if (u == 0 || (u == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
			putc('?', out);
			i++;
			continue;
		}
		fwrite(p + i, 1, u, out);
		i += u;
	}
}

void
mailq_init(struct mailq *mq, FILE *out)
{
	memset(mq, 0, sizeof(*mq));
	mq->out = out;
}

/* "(reason)", right-aligned as Postfix does; a longer one starts at the
 * left margin. */
static void
mailq_reason(FILE *out, const char *reason)
{
	size_t	len = strlen(reason);

	if (len < MAILQ_REASON_COL)
		fprintf(out, "%*s", (int)(MAILQ_REASON_COL - len), "");
	putc('(', out);
	mailq_put(out, reason);
	fputs(")\n", out);
}

void
mailq_message(struct mailq *mq, const struct mailq_msg *m)
{
	const char	*prev = "", *why;
	char		 id[32], date[32];
	size_t		 i;

	if (mq->nmsg == 0)
		fprintf(mq->out, MAILQ_HEAD_FMT, "----Queue ID-----",
		    "--Size--", "---Arrival Time----",
		    "--Sender/Recipient------");
	else
		putc('\n', mq->out);
	snprintf(id, sizeof(id), "%s%s", m->id, m->status == MAILQ_ACTIVE ?
	    "*" : m->status == MAILQ_HELD ? "!" : "");
	fprintf(mq->out, MAILQ_MSG_FMT, id, (unsigned long long)m->size,
	    time_fmt(m->arrival, TIME_ASCTIME, date, sizeof(date)));
	mailq_put(mq->out, m->sender[0] == '\0' ? MAILQ_NULL_SENDER :
	    m->sender);
	putc('\n', mq->out);
	for (i = 0; i < m->nrcpt; i++) {
		why = m->rcpts[i].reason != NULL ? m->rcpts[i].reason : "";
		/* Only when it changes, as showq_compat.c. */
		if (strcmp(why, prev) != 0)
			mailq_reason(mq->out, why[0] != '\0' ? why :
			    "reason unavailable");
		prev = why;
		fprintf(mq->out, MAILQ_RCPT_FMT, "", "", "");
		mailq_put(mq->out, m->rcpts[i].addr);
		putc('\n', mq->out);
	}
	mq->nmsg++;
	mq->bytes += m->size;
}

void
mailq_summary(struct mailq *mq, const char *empty)
{
	if (mq->nmsg == 0)
		fprintf(mq->out, "%s\n", empty);
	else
		fprintf(mq->out, "\n-- %llu Kbytes in %lu Request%s.\n",
		    (unsigned long long)(mq->bytes / 1024), mq->nmsg,
		    mq->nmsg == 1 ? "" : "s");
}
