/*
 * dsn.h - delivery status notifications (RFC 3464, RFC 6522): the
 * failure report sent to the sender of a message some recipients of
 * which failed or expired.  Pure: builds the text in memory.
 */
#ifndef DSN_H
#define DSN_H

#include <stddef.h>
#include <stdint.h>

struct envelope;

/* Composes the report for every FAILED recipient of <env>:
 * a multipart/report; report-type=delivery-status with a human-readable
 * part, a message/delivery-status part (Reporting-MTA, Arrival-Date, one
 * block per recipient with Final-Recipient, Action: failed, Status,
 * Diagnostic-Code from the stored reply), and a text/rfc822-headers part
 * holding <headers> (the original message's header section, <hlen>
 * octets, CRLF lines).  From: is MAILER-DAEMON@<hostname>, To: is <to>.
 * Lines end in CRLF, none over 998 octets; the result is canonical (not
 * dot-stuffed) and ready for spool_msg_write().  Caller frees *out.
 * Returns 0, or -1 if <env> has no FAILED recipient. */
int	dsn_compose(const struct envelope *env, const char *hostname,
	    const char *to, int64_t now, const char *headers, size_t hlen,
	    char **out, size_t *outlen);

#endif /* DSN_H */
