/*
 * relay_txn.c - one message on a relay connection (relay_txn.h).
 *
 * Recipients go in groups of at most 100 (Gmail's limit); with
 * PIPELINING the whole group MAIL, RCPT..., DATA goes out at once.  The
 * body is streamed from the spool file, dot-stuffed on the way out.  A
 * From: rewrite (relay_head.c) replaces only the header block (at most
 * REWRITE_HEADER_MAX octets, read once per message) and goes through
 * the same dot-stuffing.  A message whose envelope asks for it (lines
 * over 998 octets, bare CRs, NULs: issue 13) is re-encoded on the way
 * (reencode.h): the first pass reads exactly what is sent (the
 * rewritten header block, then the file), a slice per loop turn; the
 * second runs as the body streams, before the dot-stuffing, so no line
 * it makes can end the data.
 */
#include "config.h"

#include "relay_txn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "conf.h"
#include "envelope.h"
#include "log.h"
#include "mime.h"
#include "mime_scan.h"
#include "reencode.h"
#include "relay_head.h"
#include "relay_reply.h"
#include "smtp.h"
#include "util.h"

#define RELAY_REPLY_TEXT_MAX	512
#define RELAY_RCPTS_PER_TXN	100	/* Gmail's limit per transaction */
#define RELAY_CHUNK		(64 * 1024)

/* What each outstanding pipelined reply answers. */
enum relay_expect {
	RELAY_X_MAIL,
	RELAY_X_RCPT,
	RELAY_X_DATA,
};

struct relay_txn {
	struct relay_txn_conn	 conn;
	struct evbuffer		*out;		/* the connection's */
	struct envelope		*env;
	int			 fd;		/* data file */
	size_t			 batch[RELAY_RCPTS_PER_TXN]; /* rcpt indices */
	size_t			 nbatch;
	bool			 accepted[RELAY_RCPTS_PER_TXN];
	size_t			 next_rcpt;	/* where the next batch starts */
	enum relay_expect	 expect[RELAY_RCPTS_PER_TXN + 2];
	size_t			 nexpect, iexpect;
	bool			 mail_ok, data_ok;
	enum relay_status	 txn_status;
	char			 txn_reply[RELAY_REPLY_TEXT_MAX];
	bool			 at_bol;	/* body: at a line start */
	bool			 body_crlf;	/* body: last bytes were CRLF */
	uint64_t		 size;		/* what SIZE= announces */
	struct relay_head	 head;		/* the From: rewrite */
	size_t			 head_off;	/* body: of head.head sent */
	struct reencode		*re;		/* the body is re-encoded, or
						 * NULL: sent as it is */
	bool			 seven_bit;	/* ... to 7 bit: the upstream
						 * lacks 8BITMIME */
	struct mime_scan	 guard;		/* checks what is sent as it
						 * is */
	/* The reply being handled, and one made up (refusals). */
	int			 code;
	const char		*reply;
	char			 own_reply[RELAY_REPLY_TEXT_MAX];
	/* After RELAY_TXN_FAIL. */
	enum relay_status	 fail_status;
	enum relay_why		 fail_why;
	char			 fail_reason[768];
};

/* Sends one command line, formatted. */
static void
relay_txn_cmd(struct relay_txn *t, const char *what, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

static void
relay_txn_cmd(struct relay_txn *t, const char *what, const char *fmt, ...)
{
	char	*line;
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	line = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(line, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->conn.cmd(t->conn.arg, what, line);
	free(line);
}

/* Records why the connection must fail; returns RELAY_TXN_FAIL. */
static enum relay_txn_next
relay_txn_fail(struct relay_txn *t, enum relay_status st, enum relay_why why,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum relay_txn_next
relay_txn_fail(struct relay_txn *t, enum relay_status st, enum relay_why why,
    const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(t->fail_reason, sizeof(t->fail_reason), fmt, ap);
	va_end(ap);
	t->fail_status = st;
	t->fail_why = why;
	return RELAY_TXN_FAIL;
}

/* The enhanced status code of <reply> ("5.1.1"), or one made from its
 * class. */
static void
relay_reply_dsn(const char *reply, char *dsn, size_t dsnsz)
{
	const char	*t = relay_reply_text(reply);
	size_t		 n = strspn(t, "0123456789.");

	if (n >= 5 && n < dsnsz && t[0] == reply[0] &&
	    t[1] == '.' && (t[n] == ' ' || t[n] == '\0')) {
		memcpy(dsn, t, n);
		dsn[n] = '\0';
	} else
		snprintf(dsn, dsnsz, "%c.0.0", reply[0]);
}
/* Takes the next batch of at most 100 pending recipients.  Returns the
 * batch size (0: nothing left to send). */
static size_t
relay_next_batch(struct relay_txn *t)
{
	struct envelope	*env = t->env;

	t->nbatch = 0;
	for (; t->next_rcpt < env->nrcpt &&
	    t->nbatch < RELAY_RCPTS_PER_TXN; t->next_rcpt++)
		if (env->rcpts[t->next_rcpt].state == ENVELOPE_RCPT_PENDING) {
			t->accepted[t->nbatch] = false;
			t->batch[t->nbatch++] = t->next_rcpt;
		}
	return t->nbatch;
}

static void
relay_send_rcpt(struct relay_txn *t, size_t i)
{
	relay_txn_cmd(t, "RCPT", "RCPT TO:<%s>",
	    t->env->rcpts[t->batch[i]].addr);
}

/* MAIL FROM: the account in "account" mode, except that the null
 * sender stays null (failure reports must never cause reports). */
static const char *
relay_mail_from(const struct relay_txn *t)
{
	if (t->env->sender[0] == '\0' || t->head.account == NULL)
		return t->env->sender;
	return t->head.account;
}

/* The MAIL FROM parameters that pass on what the client declared, as
 * far as the upstream takes them: BODY=8BITMIME (RFC 6152) for a
 * message declared so or holding 8-bit octets, BODY=7BIT as declared,
 * SMTPUTF8 (RFC 6531) when it was asked for or an address needs it.
 * relay_send_go() has failed what the upstream cannot take. */
static const char *
relay_mail_params(const struct relay_txn *t)
{
	const struct envelope	*env = t->env;
	bool			 utf8 = t->conn.smtputf8 && env->smtputf8;

	if (t->conn.eightbitmime && (env->body == ENVELOPE_BODY_8BITMIME ||
	    env->eightbit != ENVELOPE_8BIT_NONE))
		return utf8 ? " BODY=8BITMIME SMTPUTF8" : " BODY=8BITMIME";
	if (t->conn.eightbitmime && env->body == ENVELOPE_BODY_7BIT)
		return utf8 ? " BODY=7BIT SMTPUTF8" : " BODY=7BIT";
	return utf8 ? " SMTPUTF8" : "";
}

/* Starts a transaction for the current batch: with PIPELINING the
 * whole group MAIL, RCPT..., DATA goes out at once (RFC 2920 3.1). */
static enum relay_txn_next
relay_txn_start(struct relay_txn *t)
{
	char	size[32] = "";
	size_t	i;

	t->nexpect = 0;
	t->iexpect = 0;
	t->mail_ok = false;
	t->data_ok = false;
	t->expect[t->nexpect++] = RELAY_X_MAIL;
	if (t->conn.size_limit > 0)
		snprintf(size, sizeof(size), " SIZE=%llu",
		    (unsigned long long)t->size);
	relay_txn_cmd(t, "MAIL", "MAIL FROM:<%s>%s%s", relay_mail_from(t), size,
	    relay_mail_params(t));
	if (t->conn.pipelining) {
		for (i = 0; i < t->nbatch; i++) {
			t->expect[t->nexpect++] = RELAY_X_RCPT;
			relay_send_rcpt(t, i);
		}
		t->expect[t->nexpect++] = RELAY_X_DATA;
		relay_txn_cmd(t, "DATA", "DATA");
	}
	return RELAY_TXN_START;
}

/* Records the reply for recipient batch entry <i>. */
static void
relay_rcpt_result(struct relay_txn *t, size_t i, enum envelope_rcpt_state st)
{
	struct envelope_rcpt	*rc = &t->env->rcpts[t->batch[i]];
	char			 dsn[16];

	relay_reply_dsn(t->reply, dsn, sizeof(dsn));
	free(rc->dsn);
	free(rc->reply);
	rc->dsn = xstrdup(dsn);
	rc->reply = xstrdup(t->reply);
	rc->state = st;
}

/* A message-level failure (to MAIL or DATA): applies to the batch. */
static void
relay_txn_reject(struct relay_txn *t, bool only_accepted)
{
	enum relay_status	st;
	size_t			i;

	st = relay_classify(t->code, relay_reply_text(t->reply));
	if (st == RELAY_PERMFAIL) {
		for (i = 0; i < t->nbatch; i++)
			if (!only_accepted || t->accepted[i])
				relay_rcpt_result(t, i, ENVELOPE_RCPT_FAILED);
		return;
	}
	/* 4xx or quota: the whole message waits; keep the first reason. */
	if (t->txn_status == RELAY_OK) {
		t->txn_status = st;
		snprintf(t->txn_reply, sizeof(t->txn_reply), "%s", t->reply);
	}
	for (i = 0; i < t->nbatch; i++)
		if (!only_accepted || t->accepted[i])
			relay_rcpt_result(t, i, ENVELOPE_RCPT_PENDING);
}

static void	relay_body_out_cb(void *, const char *, size_t);

/* The DATA reply arrived: stream the body or give up on this batch. */
static enum relay_txn_next
relay_data_reply(struct relay_txn *t, bool any_accepted)
{
	if (t->code == 354 && any_accepted) {
		t->data_ok = true;
		t->at_bol = true;
		t->body_crlf = true;
		t->head_off = 0;
		if (t->re != NULL)
			reencode_emit_start(t->re, relay_body_out_cb, t);
		else
			mime_scan_init(&t->guard);
		if (lseek(t->fd, (off_t)t->head.head_skip, SEEK_SET) == -1)
			return relay_txn_fail(t, RELAY_TEMPFAIL,
			    RELAY_WHY_LOCAL, "cannot read spool file");
		return relay_txn_pump(t);
	}
	if (t->code == 354) {
		/* RFC 2920 3.1: no recipient, but DATA accepted: send an
		 * empty message to end it.  Its reply is not relevant. */
		relay_txn_cmd(t, ".", ".");
		return RELAY_TXN_ENDED;
	}
	if (any_accepted)
		relay_txn_reject(t, true);
	return RELAY_TXN_RSET;
}

static bool
relay_any_accepted(const struct relay_txn *t)
{
	size_t	i;

	for (i = 0; i < t->nbatch; i++)
		if (t->accepted[i])
			return true;
	return false;
}

enum relay_txn_next
relay_txn_reply(struct relay_txn *t, int code, const char *reply)
{
	enum relay_expect	x;
	enum relay_status	st;
	size_t			i;

	if (t->iexpect >= t->nexpect)
		fatalx("relay: reply with none outstanding");
	x = t->expect[t->iexpect++];
	t->code = code;
	t->reply = reply;
	st = relay_classify(t->code, relay_reply_text(t->reply));

	switch (x) {
	case RELAY_X_MAIL:
		t->mail_ok = st == RELAY_OK;
		if (!t->mail_ok)
			relay_txn_reject(t, false);
		if (!t->conn.pipelining) {
			if (!t->mail_ok)
				return RELAY_TXN_RSET;
			t->expect[t->nexpect++] = RELAY_X_RCPT;
			relay_send_rcpt(t, 0);
		}
		return RELAY_TXN_WAIT;
	case RELAY_X_RCPT:
		i = t->iexpect - 2;	/* MAIL came first */
		if (t->mail_ok) {
			if (st == RELAY_OK)
				t->accepted[i] = true;
			else if (st == RELAY_PERMFAIL)
				relay_rcpt_result(t, i, ENVELOPE_RCPT_FAILED);
			else {
				relay_rcpt_result(t, i, ENVELOPE_RCPT_PENDING);
				if (st == RELAY_QUOTA &&
				    t->txn_status == RELAY_OK) {
					t->txn_status = RELAY_QUOTA;
					snprintf(t->txn_reply,
					    sizeof(t->txn_reply), "%s",
					    t->reply);
				}
			}
		}
		if (!t->conn.pipelining) {
			if (i + 1 < t->nbatch) {
				t->expect[t->nexpect++] = RELAY_X_RCPT;
				relay_send_rcpt(t, i + 1);
			} else if (relay_any_accepted(t)) {
				t->expect[t->nexpect++] = RELAY_X_DATA;
				relay_txn_cmd(t, "DATA", "DATA");
			} else
				return RELAY_TXN_RSET;
		}
		return RELAY_TXN_WAIT;
	case RELAY_X_DATA:
		return relay_data_reply(t, t->mail_ok && relay_any_accepted(t));
	}
	return RELAY_TXN_WAIT;
}

/* Copies file data to the output, doubling a '.' at each line start
 * (RFC 5321 4.5.2, smtp_stuff_span()): one copy per run of lines
 * between two that need a dot.  The spool holds canonical CRLF lines. */
static void
relay_body_stuff(struct relay_txn *t, const char *p, size_t n)
{
	struct evbuffer	*out = t->out;
	size_t		 len;
	bool		 dot;

	for (; n > 0; p += len, n -= len) {
		len = smtp_stuff_span(p, n, &t->at_bol, &dot);
		if (dot)
			evbuffer_add(out, ".", 1);
		evbuffer_add(out, p, len);
	}
}

/* What the re-encoder writes: dot-stuffed after it, so that no line it
 * makes can end the data. */
static void
relay_body_out_cb(void *arg, const char *p, size_t n)
{
	relay_body_stuff(arg, p, n);
}

/*
 * One chunk of the message on its way out: through the re-encoder when
 * the message has one, else checked before it is sent.  The spool said
 * this message needs no re-encoding; should a line over 998 octets, a
 * bare CR or a NUL show up all the same, nothing of it goes out: the
 * attempt ends without the final dot, and the envelope, saved by the
 * queue, asks for re-encoding the next time.  Returns false then, the
 * failure recorded.
 */
static bool
relay_body_put(struct relay_txn *t, const char *p, size_t n, bool end)
{
	if (t->re != NULL) {
		reencode_emit(t->re, p, n);
		return true;
	}
	mime_scan_feed(&t->guard, p, n);
	if (!t->guard.dirty && (!end || mime_scan_is_clean(&t->guard))) {
		relay_body_stuff(t, p, n);
		return true;
	}
	log_warnx("relay id=%s has content to re-encode that its envelope "
	    "did not announce; it is tried again, re-encoded", t->env->id);
	t->env->reencode = true;
	relay_txn_fail(t, RELAY_TEMPFAIL, RELAY_WHY_LOCAL,
	    "message needs re-encoding");
	return false;
}

/* Fills the output up to the high watermark; the write callback calls
 * again as it drains.  At the end of the file, sends the final dot. */
enum relay_txn_next
relay_txn_pump(struct relay_txn *t)
{
	struct evbuffer	*out = t->out;
	char		 buf[RELAY_CHUNK];
	ssize_t		 n;

	while (evbuffer_get_length(out) < RELAY_OUT_HIGH) {
		/* A rewritten header block goes first, through the same
		 * re-encoding and dot-stuffing as the file. */
		if (t->head_off < t->head.headlen) {
			n = (ssize_t)(t->head.headlen - t->head_off <
			    RELAY_CHUNK ? t->head.headlen - t->head_off :
			    RELAY_CHUNK);
			if (!relay_body_put(t, t->head.head + t->head_off,
			    (size_t)n, false))
				return RELAY_TXN_FAIL;
			t->head_off += (size_t)n;
			continue;
		}
		n = read(t->fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return relay_txn_fail(t, RELAY_TEMPFAIL,
			    RELAY_WHY_LOCAL, "cannot read spool file: %s",
			    strerror(errno));
		if (n == 0) {
			if (!relay_body_put(t, buf, 0, true))
				return RELAY_TXN_FAIL;
			/* A second pass that read other octets than the
			 * first made unusable output: no final dot. */
			if (t->re != NULL &&
			    reencode_emit_end(t->re) != MIME_OK)
				return relay_txn_fail(t, RELAY_TEMPFAIL,
				    RELAY_WHY_LOCAL, "re-encoding: %s",
				    mime_rc_str(MIME_EMISMATCH));
			if (!t->at_bol)
				evbuffer_add(out, "\r\n", 2);
			relay_txn_cmd(t, "<CRLF>.<CRLF>", ".");
			return RELAY_TXN_DOT;
		}
		if (!relay_body_put(t, buf, (size_t)n, false))
			return RELAY_TXN_FAIL;
	}
	return RELAY_TXN_BODY;
}

enum relay_txn_next
relay_txn_dot_reply(struct relay_txn *t, int code, const char *reply)
{
	size_t	i;

	t->code = code;
	t->reply = reply;
	if (relay_classify(t->code, relay_reply_text(t->reply)) == RELAY_OK) {
		for (i = 0; i < t->nbatch; i++)
			if (t->accepted[i])
				relay_rcpt_result(t, i, ENVELOPE_RCPT_SENT);
	} else
		relay_txn_reject(t, true);
	/* More recipients than one transaction may carry? */
	if (t->txn_status == RELAY_OK && relay_next_batch(t) > 0)
		return relay_txn_start(t);
	return RELAY_TXN_DONE;
}

enum relay_txn_next
relay_txn_after_rset(struct relay_txn *t)
{
	if (t->txn_status == RELAY_OK && relay_next_batch(t) > 0)
		return relay_txn_start(t);
	return RELAY_TXN_DONE;
}

/* Every pending recipient of the message fails with t->own_reply:
 * the transaction is over without a round trip. */
static enum relay_txn_next
relay_send_refuse(struct relay_txn *t)
{
	size_t	i;

	t->reply = t->own_reply;
	do {
		for (i = 0; i < t->nbatch; i++)
			relay_rcpt_result(t, i, ENVELOPE_RCPT_FAILED);
	} while (relay_next_batch(t) > 0);
	return RELAY_TXN_DONE;
}

/* The first envelope address that is not ASCII among the sender as it
 * is sent and the pending recipients, or NULL. */
static const char *
relay_utf8_addr(const struct relay_txn *t)
{
	const struct envelope	*env = t->env;
	size_t			 i;

	if (!str_is_ascii(relay_mail_from(t)))
		return relay_mail_from(t);
	for (i = 0; i < env->nrcpt; i++)
		if (env->rcpts[i].state == ENVELOPE_RCPT_PENDING &&
		    !str_is_ascii(env->rcpts[i].addr))
			return env->rcpts[i].addr;
	return NULL;
}

/*
 * What the upstream cannot take without a change nobody asked for
 * fails now, for good, with a failure report that says why
 * (t->own_reply); nothing is ever sent mangled.  RFC 6531 3.5: a UTF-8
 * address needs SMTPUTF8; so do UTF-8 header fields of a message sent
 * with SMTPUTF8 (an undeclared message's 8-bit header goes as 8-bit
 * content, as it always did).  RFC 6152 3: 8-bit data needs 8BITMIME
 * (or SMTPUTF8, which implies it, as Postfix assumes); else an 8-bit
 * body goes re-encoded to 7 bit (t->seven_bit), as Postfix converts
 * it, and 8-bit header text fails; 7-bit data goes without the
 * parameter.  Returns false when the message was refused.
 */
static bool
relay_ext_check(struct relay_txn *t)
{
	const struct envelope	*env = t->env;
	const char		*addr, *host = t->conn.up->host;
	bool			 utf8 = t->conn.smtputf8;
	bool			 eight = t->conn.eightbitmime || utf8;
	char			 esc[4 * SMTP_ADDR_BUFSZ];

	if (!utf8 && (addr = relay_utf8_addr(t)) != NULL) {
		snprintf(t->own_reply, sizeof(t->own_reply), "553 5.6.7 "
		    "upstream %s does not support SMTPUTF8, which the address "
		    "<%s> needs (RFC 6531); the message was not sent", host,
		    str_log_escape(addr, strlen(addr), esc, sizeof(esc)));
	} else if (!utf8 && env->smtputf8 &&
	    env->eightbit == ENVELOPE_8BIT_HEADER) {
		snprintf(t->own_reply, sizeof(t->own_reply), "554 5.6.9 "
		    "upstream %s does not support SMTPUTF8, which the UTF-8 "
		    "header of this message needs (RFC 6531 3.5); the message "
		    "was not sent", host);
	} else if (!eight && env->eightbit == ENVELOPE_8BIT_HEADER) {
		snprintf(t->own_reply, sizeof(t->own_reply), "554 5.6.3 "
		    "upstream %s does not support 8BITMIME and the message has "
		    "8-bit header fields, which are not converted (RFC 6152); "
		    "the message was not sent", host);
	} else if (!eight && env->eightbit != ENVELOPE_8BIT_NONE &&
	    (!t->seven_bit || t->re == NULL)) {
		snprintf(t->own_reply, sizeof(t->own_reply), "554 5.6.3 "
		    "upstream %s does not support 8BITMIME and the message "
		    "holds 8-bit data (RFC 6152); the message was not sent",
		    host);
	} else
		return true;
	log_warnx("relay refused id=%s reason=\"%s\"", env->id, t->own_reply);
	return false;
}

/* The message is ready to go, t->size known. */
static enum relay_txn_next
relay_send_go(struct relay_txn *t)
{
	if (!relay_ext_check(t))
		return relay_send_refuse(t);
	/* RFC 1870: a message over the server's limit would only be
	 * refused after the upload; fail it now with a clear reason. */
	if (t->conn.size_limit > 0 && t->size > t->conn.size_limit) {
		snprintf(t->own_reply, sizeof(t->own_reply), "552 5.3.4 "
		    "message of %llu octets exceeds the upstream's limit of "
		    "%llu", (unsigned long long)t->size,
		    (unsigned long long)t->conn.size_limit);
		return relay_send_refuse(t);
	}
	return relay_txn_start(t);
}

/* The re-encoder's first pass is over: send the message re-encoded, as
 * it is (nothing to change after all), or fail it for good with the
 * reason: it cannot be sent without changing what its reader sees. */
static void
relay_plan_done_cb(struct reencode *re, int err, void *arg)
{
	struct relay_txn	*t = arg;
	struct mime_stats	 st;
	enum mime_rc		 rc = reencode_rc(re);
	enum relay_txn_next	 next;
	uint64_t		 busy, slice;
	char			 esc[256];

	reencode_timing(re, &busy, &slice);
	str_log_escape(reencode_detail(re), strlen(reencode_detail(re)), esc,
	    sizeof(esc));
	if (err != 0) {
		snprintf(t->txn_reply, sizeof(t->txn_reply), "cannot read "
		    "spool file: %s", strerror(err));
		t->txn_status = RELAY_TEMPFAIL;
		next = RELAY_TXN_DONE;
	} else if (rc == MIME_OK) {
		reencode_stats(re, &st);
		t->size = reencode_size(re);
		log_info("relay reencode id=%s parts=%u fields=%u altered=%u "
		    "size=%llu->%llu pass1_ms=%llu.%03llu "
		    "slice_max_ms=%llu.%03llu", t->env->id, st.parts,
		    st.fields, st.altered,
		    (unsigned long long)reencode_insize(re),
		    (unsigned long long)t->size,
		    (unsigned long long)(busy / 1000),
		    (unsigned long long)(busy % 1000),
		    (unsigned long long)(slice / 1000),
		    (unsigned long long)(slice % 1000));
		next = relay_send_go(t);
	} else if (rc == MIME_UNCHANGED) {
		log_info("relay reencode id=%s unchanged", t->env->id);
		reencode_free(t->re);
		t->re = NULL;
		next = relay_send_go(t);
	} else {
		log_warnx("relay reencode id=%s failed reason=\"%s\" "
		    "detail=\"%s\"", t->env->id, mime_rc_str(rc), esc);
		snprintf(t->own_reply, sizeof(t->own_reply), "554 5.6.0 "
		    "message cannot be made conformant: %s (%s)",
		    mime_rc_str(rc), esc);
		next = relay_send_refuse(t);
	}
	t->conn.plan(t->conn.arg, next);
}

struct relay_txn *
relay_txn_new(const struct relay_txn_conn *conn, struct envelope *env,
    const char *data_path, struct evbuffer *out, enum relay_txn_next *next)
{
	struct relay_txn	*t = xcalloc(1, sizeof(*t));

	t->conn = *conn;
	t->out = out;
	t->env = env;
	t->next_rcpt = 0;
	t->txn_status = RELAY_OK;
	t->txn_reply[0] = '\0';
	t->reply = "";
	*next = RELAY_TXN_DONE;
	t->fd = open(data_path, O_RDONLY | O_CLOEXEC);
	if (t->fd == -1) {
		snprintf(t->txn_reply, sizeof(t->txn_reply), "cannot open "
		    "spool file: %s", strerror(errno));
		t->txn_status = RELAY_TEMPFAIL;
		return t;
	}
	if (relay_next_batch(t) == 0)
		return t;
	t->head.conf = t->conn.conf;
	t->head.up = t->conn.up;
	t->head.env = env;
	t->head.fd = t->fd;
	if (relay_head_prepare(&t->head) == -1) {
		snprintf(t->txn_reply, sizeof(t->txn_reply), "cannot read "
		    "spool file: %s", strerror(errno));
		t->txn_status = RELAY_TEMPFAIL;
		return t;
	}
	t->size = t->head.size;
	/* RFC 6152 3: an 8-bit body for an upstream without 8BITMIME is
	 * re-encoded to 7 bit (8-bit header text is not: relay_ext_check()
	 * fails that message). */
	t->seven_bit = !t->conn.eightbitmime && !t->conn.smtputf8 &&
	    env->eightbit == ENVELOPE_8BIT_BODY;
	/* The re-encoder reads exactly what would be sent: the header
	 * block as rewritten, then the rest of the file. */
	if (env->reencode || t->seven_bit) {
		t->re = reencode_start(t->conn.base, t->head.head,
		    t->head.headlen, t->fd, (off_t)t->head.head_skip,
		    t->seven_bit, relay_plan_done_cb, t);
		*next = RELAY_TXN_PLAN;
		return t;
	}
	*next = relay_send_go(t);
	return t;
}

void
relay_txn_free(struct relay_txn *t)
{
	if (t == NULL)
		return;
	if (t->fd != -1)
		close(t->fd);
	reencode_free(t->re);
	relay_head_cleanup(&t->head);
	free(t);
}

struct envelope *
relay_txn_env(const struct relay_txn *t)
{
	return t->env;
}

enum relay_status
relay_txn_status(const struct relay_txn *t, const char **reply)
{
	*reply = t->txn_reply;
	return t->txn_status;
}

enum relay_status
relay_txn_failure(const struct relay_txn *t, enum relay_why *why,
    const char **reason)
{
	*why = t->fail_why;
	*reason = t->fail_reason;
	return t->fail_status;
}
