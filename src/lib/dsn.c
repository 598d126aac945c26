/*
 * dsn.c - composes the failure report (bounce) for the recipients of a
 * message that failed or expired: a multipart/report (RFC 6522) with a
 * text part for humans, a message/delivery-status part (RFC 3464) for
 * programs, and the original header section as text/rfc822-headers.
 *
 * Every line leaves through dsn_put(), which ends it with CRLF and folds
 * or cuts it to at most 998 octets (RFC 5322 §2.1.1), so no stored reply
 * or original header can make the report invalid.  The body of the
 * original message is never included.  Pure: no files, no I/O.
 */
#include "config.h"

#include "dsn.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "envelope.h"
#include "log.h"
#include "util.h"

#define DSN_LINE_MAX	998	/* octets before CRLF, RFC 5322 §2.1.1 */
#define DSN_BOUNDARY_SZ	80	/* RFC 2046 §5.1.1: at most 70 chars */
#define DSN_IS_WSP(c)	((c) == ' ' || (c) == '\t')

/* The parts of the report, in order: description, then content type. */
static const char *const dsn_part_desc[3][2] = {
	{ "Notification", "text/plain; charset=us-ascii" },
	{ "Delivery report", "message/delivery-status" },
	{ "Undelivered Message Headers", "text/rfc822-headers" },
};

/* Appends <n> octets of <s>, turning CR, LF and NUL into spaces: they
 * would end or break the line. */
static void
dsn_add_clean(struct buf *b, const char *s, size_t n)
{
	size_t	i, start = 0;

	for (i = 0; i < n; i++) {
		if (s[i] != '\r' && s[i] != '\n' && s[i] != '\0')
			continue;
		buf_add(b, s + start, i - start);
		buf_add(b, " ", 1);
		start = i + 1;
	}
	buf_add(b, s + start, n - start);
}

/* Appends the logical line <s> of <len> octets with CRLF, folded so that
 * no physical line exceeds DSN_LINE_MAX.  Folding happens before a blank
 * that follows a non-blank (RFC 5322 §2.2.3), so the first part of a
 * fold is never blank only; a run of DSN_LINE_MAX octets without a blank
 * is cut and the rest continues after an inserted space. */
static void
dsn_put(struct buf *b, const char *s, size_t len)
{
	size_t	room = DSN_LINE_MAX, cut, i;

	while (len > room) {
		cut = 0;
		for (i = room; i > 0 && cut == 0; i--)
			if (DSN_IS_WSP(s[i]) && !DSN_IS_WSP(s[i - 1]))
				cut = i;
		if (cut > 0) {
			dsn_add_clean(b, s, cut);
			buf_add(b, "\r\n", 2);
			room = DSN_LINE_MAX;
		} else {
			cut = room;
			dsn_add_clean(b, s, cut);
			buf_add(b, "\r\n ", 3);
			room = DSN_LINE_MAX - 1;
		}
		s += cut;
		len -= cut;
	}
	dsn_add_clean(b, s, len);
	buf_add(b, "\r\n", 2);
}

/* Formats one line of our own text (which may quote addresses and
 * replies) and appends it with dsn_put().  The result is 7-bit: control
 * octets other than TAB become spaces, 8-bit octets '?'. */
static void __attribute__((format(printf, 2, 3)))
dsn_linef(struct buf *b, const char *fmt, ...)
{
	va_list		 ap;
	char		*line;
	int		 n;
	size_t		 i;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("dsn: bad line format \"%s\"", fmt);
	line = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(line, (size_t)n + 1, fmt, ap);
	va_end(ap);
	for (i = 0; i < (size_t)n; i++) {
		if ((unsigned char)line[i] >= 0x80)
			line[i] = '?';
		else if ((line[i] < 0x20 && line[i] != '\t') ||
		    line[i] == 0x7f)
			line[i] = ' ';
	}
	dsn_put(b, line, (size_t)n);
	free(line);
}

static void
dsn_blank(struct buf *b)
{
	buf_add(b, "\r\n", 2);
}

/* The RFC 3463 status of <r> if it is well formed ("5.1.1": class 2, 4
 * or 5, then two numbers of 1-3 digits), else "5.0.0". */
static const char *
dsn_status(const struct envelope_rcpt *r)
{
	const char	*s = r->dsn;
	size_t		 n;
	int		 i;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return "5.0.0";
	s += 2;
	for (i = 0; i < 2; i++) {
		n = strspn(s, "0123456789");
		if (n < 1 || n > 3 || s[n] != (i == 0 ? '.' : '\0'))
			return "5.0.0";
		s += n + 1;
	}
	return r->dsn;
}

/* Part 1: the explanation for the sender. */
static void
dsn_part_text(struct buf *b, const struct envelope *env,
    const char *host)
{
	const struct envelope_rcpt	*r;
	char				 date[64];
	size_t				 i;

	time_fmt(env->arrival, TIME_RFC5322_UTC, date, sizeof(date));
	dsn_linef(b, "This is the smartrelay mail relay at %s.", host);
	dsn_blank(b);
	dsn_linef(b, "Your message could not be delivered to one or more "
	    "of its recipients.");
	dsn_linef(b, "It arrived here on %s with queue id %s.", date,
	    env->id);
	dsn_linef(b, "The reasons are listed below; the headers of your "
	    "message are attached.");
	dsn_blank(b);
	for (i = 0; i < env->nrcpt; i++) {
		r = &env->rcpts[i];
		if (r->state != ENVELOPE_RCPT_FAILED)
			continue;
		/* A temporary status on a failed recipient means that the
		 * retries ran out (RFC 3463 4.4.7). */
		if (dsn_status(r)[0] == '4' && r->reply != NULL)
			dsn_linef(b, "<%s>: delivery time expired; the last "
			    "reply was: %s", r->addr, r->reply);
		else if (dsn_status(r)[0] == '4')
			dsn_linef(b, "<%s>: delivery time expired", r->addr);
		else if (r->reply != NULL)
			dsn_linef(b, "<%s>: host said: %s", r->addr,
			    r->reply);
		else
			dsn_linef(b, "<%s>: delivery failed", r->addr);
	}
}

/* Part 2: RFC 3464 §2.2 per-message fields, then one §2.3 block per
 * failed recipient, blocks separated by blank lines. */
static void
dsn_part_status(struct buf *b, const struct envelope *env,
    const char *host)
{
	const struct envelope_rcpt	*r;
	char				 date[64];
	size_t				 i;

	time_fmt(env->arrival, TIME_RFC5322_UTC, date, sizeof(date));
	dsn_linef(b, "Reporting-MTA: dns; %s", host);
	dsn_linef(b, "X-Smartrelay-Queue-ID: %s", env->id);
	dsn_linef(b, "Arrival-Date: %s", date);
	for (i = 0; i < env->nrcpt; i++) {
		r = &env->rcpts[i];
		if (r->state != ENVELOPE_RCPT_FAILED)
			continue;
		dsn_blank(b);
		dsn_linef(b, "Final-Recipient: rfc822; %s", r->addr);
		dsn_linef(b, "Action: failed");
		dsn_linef(b, "Status: %s", dsn_status(r));
		if (r->reply != NULL)
			dsn_linef(b, "Diagnostic-Code: smtp; %s", r->reply);
	}
}

/* Part 3: the original header section, line by line up to its end (the
 * first empty line) or the end of <h>.  Octets are kept as they are,
 * except that dsn_put() folds long lines and blanks stray CR/LF/NUL. */
static void
dsn_part_headers(struct buf *b, const char *h, size_t hlen)
{
	const char	*nl;
	size_t		 len, linelen;

	while (h != NULL && hlen > 0) {
		nl = memchr(h, '\n', hlen);
		len = nl != NULL ? (size_t)(nl - h) : hlen;
		linelen = len;
		if (linelen > 0 && h[linelen - 1] == '\r')
			linelen--;
		if (linelen == 0)
			break;
		dsn_put(b, h, linelen);
		if (nl == NULL)
			break;
		h += len + 1;
		hlen -= len + 1;
	}
}

/* Picks a boundary that occurs in none of the <nparts> part bodies
 * (RFC 2046 §5.1.1).  The "=_" cannot start a quoted-printable line.
 * Each try gives a new string, and the parts hold fewer distinct
 * substrings than they have octets, so the loop ends. */
static void
dsn_boundary(const struct envelope *env, int64_t now,
    const struct buf *parts, size_t nparts, char *buf, size_t bufsz)
{
	char		id[ENVELOPE_ID_LEN + 1];
	size_t		i, n = 0, blen;
	unsigned int	try;
	bool		clash;

	/* Only bchars in a boundary: keep the id's hex digits. */
	for (i = 0; env->id[i] != '\0' && i < ENVELOPE_ID_LEN; i++)
		if (strchr("0123456789abcdefABCDEF", env->id[i]) != NULL)
			id[n++] = env->id[i];
	id[n] = '\0';
	for (try = 0;; try++) {
		if (try == 0)
			snprintf(buf, bufsz, "=_smartrelay.%s.%lld", id,
			    (long long)now);
		else
			snprintf(buf, bufsz, "=_smartrelay.%s.%lld.%u", id,
			    (long long)now, try);
		blen = strlen(buf);
		clash = false;
		for (i = 0; i < nparts && !clash; i++)
			clash = parts[i].len > 0 &&
			    memmem(parts[i].p, parts[i].len, buf, blen) != NULL;
		if (!clash)
			return;
	}
}

/* The header section of the report itself. */
static void
dsn_top(struct buf *b, const struct envelope *env, const char *host,
    const char *to, int64_t now, const char *boundary, bool eightbit)
{
	char	date[64];

	time_fmt(now, TIME_RFC5322_UTC, date, sizeof(date));
	dsn_linef(b, "From: Mail Delivery System <MAILER-DAEMON@%s>", host);
	dsn_linef(b, "To: <%s>", to);
	dsn_linef(b, "Subject: Undelivered Mail Returned to Sender");
	dsn_linef(b, "Date: %s", date);
	dsn_linef(b, "Message-ID: <%s.%lld.dsn@%s>", env->id,
	    (long long)now, host);
	/* RFC 3834 §5: so that no auto-responder answers the report. */
	dsn_linef(b, "Auto-Submitted: auto-replied");
	dsn_linef(b, "MIME-Version: 1.0");
	dsn_linef(b, "Content-Type: multipart/report; "
	    "report-type=delivery-status;");
	dsn_linef(b, "\tboundary=\"%s\"", boundary);
	if (eightbit)
		dsn_linef(b, "Content-Transfer-Encoding: 8bit");
	dsn_blank(b);
	dsn_linef(b, "This is a MIME-encapsulated message.");
	dsn_blank(b);
}

static bool
dsn_has_failed(const struct envelope *env)
{
	size_t	i;

	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpts[i].state == ENVELOPE_RCPT_FAILED)
			return true;
	return false;
}

static bool
dsn_is_8bit(const struct buf *b)
{
	size_t	i;

	for (i = 0; i < b->len; i++)
		if ((unsigned char)b->p[i] >= 0x80)
			return true;
	return false;
}

int
dsn_compose(const struct envelope *env, const char *hostname,
    const char *to, int64_t now, const char *headers, size_t hlen,
    char **out, size_t *outlen)
{
	struct buf	 parts[3], msg;
	char		 boundary[DSN_BOUNDARY_SZ];
	size_t		 i;
	bool		 eightbit;

	*out = NULL;
	*outlen = 0;
	if (!dsn_has_failed(env))
		return -1;
	memset(parts, 0, sizeof(parts));
	memset(&msg, 0, sizeof(msg));
	dsn_part_text(&parts[0], env, hostname);
	dsn_part_status(&parts[1], env, hostname);
	dsn_part_headers(&parts[2], headers, hlen);
	dsn_boundary(env, now, parts, nitems(parts), boundary,
	    sizeof(boundary));
	/* Original headers may be 8-bit (RFC 6532); say so rather than
	 * mangle them. */
	eightbit = dsn_is_8bit(&parts[2]);
	dsn_top(&msg, env, hostname, to, now, boundary, eightbit);
	for (i = 0; i < nitems(parts); i++) {
		/* RFC 6522 §3: the third part is optional; without the
		 * original headers it is left out. */
		if (parts[i].len == 0)
			continue;
		dsn_linef(&msg, "--%s", boundary);
		dsn_linef(&msg, "Content-Description: %s", dsn_part_desc[i][0]);
		dsn_linef(&msg, "Content-Type: %s", dsn_part_desc[i][1]);
		if (i == 2 && eightbit)
			dsn_linef(&msg, "Content-Transfer-Encoding: 8bit");
		dsn_blank(&msg);
		buf_add(&msg, parts[i].p, parts[i].len);
		/* The CRLF before a delimiter belongs to it (RFC 2046
		 * §5.1.1); this blank line keeps the part's last CRLF. */
		dsn_blank(&msg);
		buf_free(&parts[i]);
	}
	dsn_linef(&msg, "--%s--", boundary);
	*out = buf_steal(&msg, outlen);
	return 0;
}
