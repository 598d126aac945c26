/*
 * msgin.c - one message being received by a session (msgin.h).
 *
 * The client's octets arrive as they were read; datascan.c finds the
 * end of data, undoes the dot-stuffing and enforces the size and
 * bare-LF rules, and what passes goes to the spool message in spans of
 * canonical CRLF lines.  Date: and Message-ID: are
 * made once, here, at acceptance, so every retry and every upstream
 * sends the same ones (issue 13, item 3).  A write error is remembered
 * and reported at the end of data, never in the middle of it.
 */
#include "config.h"

#include "msgin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datascan.h"
#include "log.h"
#include "smtp.h"
#include "stamp.h"
#include "util.h"

struct msgin {
	struct spool_msg	*msg;
	bool			 msg_ioerr;	/* a spool write failed */
	struct datascan		 scan;		/* the DATA octets */
	unsigned int		 sid;		/* for the log */
	char			*domain;
};

/* Writes the trace header (RFC 5321 4.4) that starts every message.
 * Over TLS, a comment after the from clause names the protocol version
 * and cipher, as Postfix does. */
static int
msgin_write_received(struct msgin *m, const struct msgin_from *f,
    char *const *rcpts, size_t nrcpt)
{
	char			 date[64], hdr[1024], tlsc[160] = "";
	const char		*v6 = strchr(f->addr, ':') ? "IPv6:" : "";
	int			 n;

	time_fmt(time_wall(), TIME_RFC5322, date, sizeof(date));
	if (f->tls_version != NULL && snprintf(tlsc, sizeof(tlsc),
	    "\r\n\t(using %s with cipher %s)", f->tls_version,
	    f->tls_cipher) >= (int)sizeof(tlsc))
		return -1;
	if (nrcpt == 1)
		n = snprintf(hdr, sizeof(hdr),
		    "Received: from %s ([%s%s])%s\r\n\tby %s (smartrelay) "
		    "with %s id %s\r\n\tfor <%s>; %s\r\n", f->helo, v6,
		    f->addr, tlsc, f->hostname, f->protocol,
		    spool_msg_id(m->msg), rcpts[0], date);
	else
		n = snprintf(hdr, sizeof(hdr),
		    "Received: from %s ([%s%s])%s\r\n\tby %s (smartrelay) "
		    "with %s id %s;\r\n\t%s\r\n", f->helo, v6, f->addr,
		    tlsc, f->hostname, f->protocol,
		    spool_msg_id(m->msg), date);
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -1;
	return spool_msg_write(m->msg, hdr, (size_t)n);
}

static size_t	msgin_write_stamp(struct msgin *);

/* The scanner's spans: a failed write is remembered, and reported at the
 * end of data. */
static void
msgin_put_cb(void *arg, const char *p, size_t n)
{
	struct msgin	*m = arg;

	if (!m->msg_ioerr && spool_msg_write(m->msg, p, n) == -1)
		m->msg_ioerr = true;
}

static size_t
msgin_stamp_cb(void *arg)
{
	return msgin_write_stamp(arg);
}

struct msgin *
msgin_new(struct spool *spool, const char *sender, char *const *rcpts,
    size_t nrcpt, const struct msgin_from *from, uint64_t max_size,
    bool reject_bare_lf)
{
	struct datascan_sink	 sink;
	struct msgin		*m;
	size_t			 i;

	m = xcalloc(1, sizeof(*m));
	sink.put = msgin_put_cb;
	sink.stamp = msgin_stamp_cb;
	sink.arg = m;
	m->msg = spool_msg_new(spool, sender, from->addr, from->helo);
	if (m->msg == NULL) {
		free(m);
		return NULL;
	}
	m->sid = from->sid;
	m->domain = xstrdup(from->domain);
	for (i = 0; i < nrcpt; i++)
		if (spool_msg_add_rcpt(m->msg, rcpts[i]) == -1)
			m->msg_ioerr = true;
	/* Passed on upstream (RFC 6152, RFC 6531). */
	spool_msg_set_mime(m->msg, from->body, from->smtputf8);
	if (msgin_write_received(m, from, rcpts, nrcpt) == -1)
		m->msg_ioerr = true;
	datascan_init(&m->scan, &sink, max_size, reject_bare_lf,
	    spool_msg_size(m->msg));
	return m;
}

/*
 * Writes the Date: and Message-ID: fields the header section lacked, at
 * its end, into the spool copy: made once, at acceptance, every retry
 * and every upstream sends the same ones (issue 13, item 3).  Returns
 * the octets written: they count against the size limit like the
 * client's octets.
 */
static size_t
msgin_write_stamp(struct msgin *m)
{
	char	buf[STAMP_FIELDS_MAX], id[320], esc[4 * 320];
	int	n;

	if (m->msg_ioerr)
		return 0;
	n = stamp_missing(&m->scan.stamp, time_wall(), m->domain, "\r\n",
	    buf, sizeof(buf), id, sizeof(id));
	if (n <= 0) {
		if (n == -1)
			m->msg_ioerr = true;
		return 0;
	}
	if (spool_msg_write(m->msg, buf, (size_t)n) == -1)
		m->msg_ioerr = true;
	log_info("session added sid=%08x date=%s message_id=%s", m->sid,
	    m->scan.stamp.has_date ? "no" : "yes", id[0] != '\0' ?
	    str_log_escape(id, strlen(id), esc, sizeof(esc)) : "no");
	return (size_t)n;
}

size_t
msgin_feed(struct msgin *m, const char *p, size_t n, bool *end)
{
	return datascan_feed(&m->scan, p, n, end);
}

enum msgin_end
msgin_end(struct msgin *m, const char **reply)
{
	/* A message that is all header section: the fields go last. */
	if (m->scan.err == SMTP_DATA_OK && !m->msg_ioerr &&
	    m->scan.stamp.in_headers) {
		m->scan.stamp.in_headers = false;
		datascan_add(&m->scan, msgin_write_stamp(m));
	}
	if (m->scan.err != SMTP_DATA_OK) {
		*reply = smtp_data_err_reply(m->scan.err);
		return MSGIN_REJECTED;
	}
	*reply = "452 4.3.1 Insufficient system storage";
	return m->msg_ioerr ? MSGIN_IOERR : MSGIN_OK;
}

uint64_t
msgin_size(const struct msgin *m)
{
	return m->scan.size;
}

void
msgin_commit(struct msgin *m, spool_done_cb cb, void *arg)
{
	spool_commit_start(m->msg, cb, arg);
	m->msg = NULL;
	msgin_free(m);
}

void
msgin_free(struct msgin *m)
{
	if (m == NULL)
		return;
	if (m->msg != NULL)
		spool_abort(m->msg);
	free(m->domain);
	free(m);
}
