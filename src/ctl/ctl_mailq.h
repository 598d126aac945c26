/*
 * ctl_mailq.h - smartrelayctl's "queue" and "failed" listings for
 * humans and scripts: the daemon's JSON answer printed in Postfix's
 * mailq layout (lib/mailq.h), which mailq and smartrelay-sendmail -bp
 * show too.
 */
#ifndef CTL_MAILQ_H
#define CTL_MAILQ_H

struct json;

/* The "queue" answer <doc>: every message with the recipients still to
 * deliver (those that failed, waiting for their report, included), '*'
 * when a relay has it, '!' when held, each recipient under the reason
 * it waits (its last reply, else the message's last error).  Returns
 * EX_OK, or EX_SOFTWARE when <doc> has no "messages" array. */
int		 ctl_mailq_queue(const struct json *doc);

/* The "failed" answer <doc>: the messages kept in failed/, each with
 * all its recipients under their final state ("delivered: ..." or the
 * failure).  Returns as ctl_mailq_queue(). */
int		 ctl_mailq_failed(const struct json *doc);

#endif /* CTL_MAILQ_H */
