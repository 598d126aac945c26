/*
 * mailq.h - a queue listing in Postfix's mailq layout, which monitoring
 * scripts already parse (check_mailq, Zabbix and munin templates).
 *
 * The layout is that of Postfix's postqueue -p (showq_compat.c) with
 * enable_long_queue_ids = yes, the variant Postfix itself prints for
 * ids as long as ours (16 hex digits and a status mark fill its 17
 * columns).  Pure: writes to a stdio stream, knows nothing of the
 * daemon or of JSON.  Text that came from clients or the upstream is
 * made printable as Postfix does: a control byte or a byte outside
 * valid UTF-8 prints as '?'.
 */
#ifndef MAILQ_H
#define MAILQ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MAILQ_ACTIVE	'*'	/* status mark: being delivered */
#define MAILQ_HELD	'!'	/* status mark: on hold */
#define MAILQ_EMPTY	"Mail queue is empty"

struct mailq_rcpt {
	const char	*addr;
	const char	*reason;	/* why it waits (or failed), or NULL */
};

/* One message; everything is borrowed for the call. */
struct mailq_msg {
	const char		*id;
	char			 status;	/* 0, MAILQ_ACTIVE or MAILQ_HELD */
	uint64_t		 size;		/* octets */
	int64_t			 arrival;	/* unix time, shown local */
	const char		*sender;	/* "" is MAILER-DAEMON */
	const struct mailq_rcpt	*rcpts;
	size_t			 nrcpt;
};

/* One listing being written to <out>. */
struct mailq {
	FILE		*out;
	unsigned long	 nmsg;
	uint64_t	 bytes;
};

void		 mailq_init(struct mailq *, FILE *out);

/* Writes one message block: the column header before the first, an
 * empty line before the others; then "ID[mark] size arrival sender" and
 * each recipient on its own line, under a "(reason)" line (right-aligned
 * to column 78) whenever the reason differs from the previous
 * recipient's: "(reason unavailable)" after one that had a reason. */
void		 mailq_message(struct mailq *, const struct mailq_msg *);

/* Ends the listing: "-- N Kbytes in M Requests." after an empty line,
 * or the line <empty> (MAILQ_EMPTY for the queue) when no message was
 * written. */
void		 mailq_summary(struct mailq *, const char *empty);

#endif /* MAILQ_H */
