/*
 * sendmail_msg.c - one message into the maildrop (see sendmail_msg.h):
 * its addresses, its header section and its content rules.  Before the
 * message is accepted it is checked with the daemon's own rules, so that
 * what the daemon would refuse is reported here, to the caller.
 */
#include "config.h"

#include "sendmail_msg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "addrlist.h"
#include "conf.h"
#include "log.h"
#include "qword.h"
#include "route.h"
#include "stamp.h"
#include "util.h"

#define SENDMAIL_FULLNAME_MAX	100	/* octets of -F used */

int
sendmail_error(int status, const char *fmt, ...)
{
	va_list	ap;

	fprintf(stderr, SENDMAIL_NAME ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

void
sendmail_msg_fail(struct sendmail_msg *m, int status, const char *fmt, ...)
{
	va_list	ap;

	if (m->status != 0)
		return;
	m->status = status;
	va_start(ap, fmt);
	vsnprintf(m->errmsg, sizeof(m->errmsg), fmt, ap);
	va_end(ap);
}

/*
 * Addresses.
 */

/* Qualifies <addr> with the configured domain when it has none
 * ("root", as cron sends it) and checks the result.  Where a local name
 * then goes is the daemon's business (route.h), at pickup.  Returns 0
 * or -1. */
static int
sendmail_qualify(const struct sendmail *sm, const char *addr, char *out,
    size_t outsz)
{
	return route_qualify(&sm->conf->route, addr, out, outsz);
}

int
sendmail_msg_add_rcpt(struct sendmail_msg *m, const char *addr)
{
	char			 q[SMTP_ADDR_BUFSZ];
	size_t			 i;

	if (addr == NULL || sendmail_qualify(m->sm, addr, q, sizeof(q)) == -1) {
		sendmail_msg_fail(m, EX_DATAERR, "bad recipient address: %s",
		    addr != NULL ? addr : "(too long)");
		return -1;
	}
	for (i = 0; i < m->nrcpt; i++)
		if (strcmp(m->rcpts[i], q) == 0)
			return 0;
	m->rcpts = xrealloc(m->rcpts, (m->nrcpt + 1) * sizeof(*m->rcpts));
	m->rcpts[m->nrcpt++] = xstrdup(q);
	return 0;
}

/* The first address of a -f argument, qualified. */
static int
sendmail_set_sender(struct sendmail_msg *m, const char *addr)
{
	char			 q[SMTP_ADDR_BUFSZ];

	if (m->sender != NULL)
		return 0;
	if (addr == NULL || sendmail_qualify(m->sm, addr, q, sizeof(q)) == -1) {
		sendmail_msg_fail(m, EX_DATAERR, "bad sender address: %s",
		    addr != NULL ? addr : "(too long)");
		return -1;
	}
	m->sender = xstrdup(q);
	return 0;
}

/* An address list being read into a message. */
struct sendmail_alist {
	struct sendmail_msg	*m;
	int			(*add)(struct sendmail_msg *, const char *);
};

/* One mailbox: its address without comments and white space, or NULL
 * when it is too long.  "<>" adds nothing. */
static int
sendmail_alist_cb(void *arg, const struct addrlist_mbox *mb)
{
	struct sendmail_alist	*a = arg;
	char			 addr[SMTP_ADDR_BUFSZ];

	if (addrlist_addr_copy(mb, addr, sizeof(addr)) == -1)
		return a->add(a->m, NULL);
	return addr[0] != '\0' ? a->add(a->m, addr) : 0;
}

/* Reads the address list <s>/<len> (addrlist.h) into <m> through
 * <add>.  Returns 0, or -1 with the failure recorded. */
static int
sendmail_addr_list(struct sendmail_msg *m, const char *s, size_t len,
    int (*add)(struct sendmail_msg *, const char *), const char *what)
{
	struct sendmail_alist	a = { m, add };
	struct addrlist_info	info;

	if (addrlist_parse(s, len, sendmail_alist_cb, &a, &info) == 0)
		return 0;
	/* Without a syntax error, the callback has recorded why. */
	if (info.bad != NULL)
		sendmail_msg_fail(m, EX_DATAERR, "bad %s address: %.*s", what,
		    (int)info.badlen, info.bad);
	return -1;
}

/*
 * Routes the recipients as the daemon will at pickup (route.h), so that
 * what it would refuse is refused here, to the caller: a name that
 * cannot be routed, or more than max_recipients addresses once aliases
 * are expanded.
 */
void
sendmail_msg_check_routes(struct sendmail_msg *m)
{
	const struct conf	*conf = m->sm->conf;
	struct route_result	 res, all;
	char			 err[256];
	size_t			 i;

	memset(&all, 0, sizeof(all));
	for (i = 0; i < m->nrcpt && m->status == 0; i++) {
		if (route_rcpt(&conf->route, m->rcpts[i], &res, err,
		    sizeof(err)) == -1)
			sendmail_msg_fail(m, EX_DATAERR, "bad recipient "
			    "address: %s", err);
		else if (route_result_merge(&all, &res,
		    conf->max_recipients) == -1)
			sendmail_msg_fail(m, EX_DATAERR, "too many recipients "
			    "once aliases are expanded (limit %u)",
			    conf->max_recipients);
		route_result_cleanup(&res);
	}
	route_result_cleanup(&all);
}

/* The envelope of the maildrop file, borrowed from <m>. */
static void
sendmail_msg_env(const struct sendmail_msg *m, struct maildrop_env *env)
{
	env->uid = (unsigned long)getuid();
	env->sender = m->sender;
	env->rcpts = m->rcpts;
	env->nrcpt = m->nrcpt;
	env->size = m->size;
}

/* Makes the file durable under its final name. */
static void
sendmail_msg_commit(struct sendmail_msg *m)
{
	struct maildrop_env	env;

	sendmail_msg_env(m, &env);
	if (sendmail_drop_commit(&m->drop, &env) == -1)
		sendmail_msg_fail(m, EX_TEMPFAIL, "%s", m->drop.err);
}

/* Records a broken content rule, in words for a person at a terminal. */
static void
sendmail_data_fail(struct sendmail_msg *m, enum smtp_data_err err)
{
	const char	*why = "";

	if (m->status != 0)
		return;
	switch (err) {
	case SMTP_DATA_ESIZE:
		why = "message too large";
		break;
	case SMTP_DATA_ELOOP:
		why = "too many Received: headers (mail loop)";
		break;
	case SMTP_DATA_EBARELF:
	case SMTP_DATA_OK:
		fatalx("sendmail: unexpected data error %d", err);
	}
	m->data_err = err;
	if (err == SMTP_DATA_ESIZE)
		sendmail_msg_fail(m, EX_DATAERR, "%s (limit %llu octets)", why,
		    (unsigned long long)m->sm->conf->max_message_size);
	else
		sendmail_msg_fail(m, EX_DATAERR, "%s", why);
}

/* Writes (<final>: rewrites in place) the maildrop header. */
/* Writes one raw line (with its LF when it has one), or with <more> a
 * piece of one, once the daemon's rules accept it. */
static void
sendmail_put(struct sendmail_msg *m, const char *line, size_t len, bool more)
{
	enum smtp_data_err	 err;
	const char		*out;
	size_t			 outlen, clen = len;

	if (m->status != 0)
		return;
	if (clen > 0 && line[clen - 1] == '\n')
		clen--;
	if (more)
		err = maildrop_canon_piece(&m->canon, line, len, &out,
		    &outlen);
	else
		err = maildrop_canon_line(&m->canon, line, clen, &out,
		    &outlen);
	if (err != SMTP_DATA_OK) {
		sendmail_data_fail(m, err);
		return;
	}
	if (sendmail_drop_write(&m->drop, line, len) == -1) {
		sendmail_msg_fail(m, EX_TEMPFAIL, "%s", m->drop.err);
		return;
	}
	m->size += len;
}

/*
 * Header fields.
 */

static bool
sendmail_is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Makes a display name of <name> into <out>: as it is when it is atoms,
 * a quoted string when it has specials, an RFC 2047 encoded word when it
 * has non-ASCII octets.  Control characters are dropped, so that no name
 * can start a header line of its own.  False when nothing is left.
 */
static bool
sendmail_phrase(const char *name, struct buf *out)
{
	char		 clean[SENDMAIL_FULLNAME_MAX + 1];
	unsigned char	 c;
	size_t		 i, n = 0;
	bool		 ascii = true, special = false;

	for (; name != NULL && *name != '\0' && n < sizeof(clean) - 1;
	    name++) {
		c = (unsigned char)*name;
		if (c < 0x20 || c == 0x7f || (n == 0 && c == ' '))
			continue;
		ascii = ascii && c < 0x80;
		special = special || (c != ' ' && !sendmail_is_atext(c));
		clean[n++] = (char)c;
	}
	while (n > 0 && clean[n - 1] == ' ')
		n--;
	if (n == 0)
		return false;
	if (!ascii) {
		qword_encode(out, (const unsigned char *)clean, n,
		    "unknown-8bit", 0);
		return true;
	}
	if (special)
		buf_add(out, "\"", 1);
	for (i = 0; i < n; i++) {
		if (special && (clean[i] == '"' || clean[i] == '\\'))
			buf_add(out, "\\", 1);
		buf_add(out, clean + i, 1);
	}
	if (special)
		buf_add(out, "\"", 1);
	return true;
}

/* The Date:, Message-ID: and From: fields the message lacks. */
static void
sendmail_add_headers(struct sendmail_msg *m)
{
	const struct sendmail	*sm = m->sm;
	struct stamp_scan	 scan;
	const char		*addr;
	char			 buf[1024];
	struct buf		 from = BUF_INIT;
	int			 n;

	if (!m->has_from) {
		addr = m->sender[0] != '\0' ? m->sender : sm->login;
		if (addr == NULL)
			addr = "MAILER-DAEMON";
		buf_adds(&from, "From: ");
		if (sendmail_phrase(sm->fullname, &from))
			buf_printf(&from, " <%s>\n", addr);
		else
			buf_printf(&from, "%s\n", addr);
		sendmail_put(m, from.p, from.len, false);
		buf_free(&from);
	}
	/* The same fields the daemon adds to SMTP mail (stamp.h). */
	stamp_scan_init(&scan);
	scan.has_date = m->has_date;
	scan.has_msgid = m->has_msgid;
	n = stamp_missing(&scan, time_wall(), sm->conf->domain, "\n", buf,
	    sizeof(buf), NULL, 0);
	if (n > 0)
		sendmail_put(m, buf, (size_t)n, false);
}

/* Ends the current field: -t takes the addresses of To, Cc and Bcc. */
static void
sendmail_field_end(struct sendmail_msg *m)
{
	if (m->rcpt_field && m->status == 0 && m->field.len > 0)
		sendmail_addr_list(m, m->field.p, m->field.len,
		    sendmail_msg_add_rcpt, "recipient");
	m->rcpt_field = m->drop_field = false;
	m->field.len = 0;
}

/* The header section is over: now the recipients are known, so the
 * maildrop file starts, with the added fields and then the kept ones.
 * <blank> adds the empty line a body needs before it. */
static void
sendmail_headers_end(struct sendmail_msg *m, bool blank)
{
	const struct conf	*conf = m->sm->conf;
	struct maildrop_env	 env;
	const char		*p, *lf, *end;

	sendmail_field_end(m);
	m->in_headers = false;
	if (m->status != 0)
		return;
	if (m->nrcpt == 0)
		sendmail_msg_fail(m, EX_USAGE, "no recipients");
	else if (m->nrcpt > conf->max_recipients)
		sendmail_msg_fail(m, EX_DATAERR, "too many recipients "
		    "(limit %u)", conf->max_recipients);
	else
		sendmail_msg_check_routes(m);
	if (m->status != 0)
		return;
	sendmail_msg_env(m, &env);
	if (sendmail_drop_open(&m->drop, conf->spool, &env) == -1) {
		sendmail_msg_fail(m, EX_TEMPFAIL, "%s", m->drop.err);
		return;
	}
	maildrop_canon_init(&m->canon, conf->max_message_size,
	    MAILDROP_RECEIVED_MAX);
	sendmail_add_headers(m);
	p = m->hdr.p;
	end = p != NULL ? p + m->hdr.len : NULL;
	for (; p != NULL && p < end; p = lf + 1) {
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
			lf = end - 1;
		sendmail_put(m, p, (size_t)(lf + 1 - p), false);
	}
	if (blank)
		sendmail_put(m, "\n", 1, false);
	buf_free(&m->hdr);
}

static bool
sendmail_name_is(const char *line, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(line, name, n) == 0;
}

/* Takes one line of the header section, or with <more> a piece of one
 * (the first piece decides what the line is).  Returns false when the
 * line is not a header line: the section ended before it. */
static bool
sendmail_header_line(struct sendmail_msg *m, const char *line, size_t len,
    bool more)
{
	const char	*val = line;
	size_t		 n = 0, clen = len;
	bool		 cont = m->midline;

	while (!more && clen > 0 && (line[clen - 1] == '\n' ||
	    line[clen - 1] == '\r'))
		clen--;
	if (!m->midline)
		cont = clen > 0 && (line[0] == ' ' || line[0] == '\t') &&
		    m->in_field;
	if (!cont && (n = stamp_field_name(line, clen)) == 0) {
		sendmail_headers_end(m, clen > 0);
		return false;
	}
	if (!cont) {
		sendmail_field_end(m);
		m->has_date |= sendmail_name_is(line, n, "Date");
		m->has_from |= sendmail_name_is(line, n, "From");
		m->has_msgid |= sendmail_name_is(line, n, "Message-ID");
		/* Bcc is removed whether or not -t was given, as Postfix
		 * does: it must never reach the other recipients. */
		m->drop_field = sendmail_name_is(line, n, "Bcc") ||
		    sendmail_name_is(line, n, "Resent-Bcc");
		m->rcpt_field = m->extract && (sendmail_name_is(line, n,
		    "To") || sendmail_name_is(line, n, "Cc") ||
		    sendmail_name_is(line, n, "Bcc"));
		m->in_field = true;
		val = line + n + 1;
	}
	if (m->rcpt_field) {
		buf_add(&m->field, val, (size_t)(line + clen - val));
		if (!more)
			buf_add(&m->field, " ", 1);
	}
	if (!m->drop_field)
		buf_add(&m->hdr, line, len);
	if (m->hdr.len > m->sm->conf->max_message_size)
		sendmail_data_fail(m, SMTP_DATA_ESIZE);
	return true;
}

/*
 * Messages.
 */

void
sendmail_msg_init(struct sendmail_msg *m, const struct sendmail *sm)
{
	memset(m, 0, sizeof(*m));
	m->sm = sm;
	sendmail_drop_init(&m->drop);
	m->in_headers = true;
	m->extract = sm->extract;
}

/* Frees <m>; a maildrop file not yet renamed into place is removed. */
void
sendmail_msg_cleanup(struct sendmail_msg *m)
{
	size_t	i;

	sendmail_drop_cleanup(&m->drop);
	for (i = 0; i < m->nrcpt; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	free(m->sender);
	buf_free(&m->hdr);
	buf_free(&m->field);
	memset(m, 0, sizeof(*m));
	sendmail_drop_init(&m->drop);
}

/* Takes one raw line of the message, with its LF when it has one, or
 * with <more> a piece of one. */
void
sendmail_msg_line(struct sendmail_msg *m, const char *line, size_t len,
    bool more)
{
	if (m->status != 0)
		return;
	if (!m->in_headers || !sendmail_header_line(m, line, len, more))
		sendmail_put(m, line, len, more);
	m->midline = more;
}

/* Ends the message.  Returns 0 once it is safe in the maildrop, or the
 * sysexits code (the reason in m->errmsg). */
int
sendmail_msg_finish(struct sendmail_msg *m)
{
	if (m->status == 0 && m->in_headers)
		sendmail_headers_end(m, false);
	/* The input ended inside a long line: that ends it. */
	else if (m->midline)
		sendmail_put(m, "", 0, false);
	if (m->status == 0)
		sendmail_msg_commit(m);
	return m->status;
}

/*
 * Reading.
 */

bool
sendmail_msg_read(char *buf, size_t bufsz, size_t *len, bool *more)
{
	size_t	n = 0;
	int	c;

	*more = false;
	while (n < bufsz && (c = getc_unlocked(stdin)) != EOF) {
		buf[n++] = (char)c;
		if (c == '\n')
			break;
	}
	if (n == bufsz && buf[n - 1] != '\n') {
		*more = true;
		if (buf[n - 1] == '\r' && ungetc('\r', stdin) != EOF)
			n--;
	}
	*len = n;
	return n > 0;
}

bool
sendmail_msg_is_dot(const char *line, size_t len)
{
	return len > 0 && line[0] == '.' && (len == 1 ||
	    (len == 2 && line[1] == '\n') ||
	    (len == 3 && line[1] == '\r' && line[2] == '\n'));
}

int
sendmail_msg_add_rcpts(struct sendmail_msg *m, const char *s, size_t len)
{
	return sendmail_addr_list(m, s, len, sendmail_msg_add_rcpt,
	    "recipient");
}

/* The envelope sender: -f/-r, or the caller's login at this host.  Any
 * local user may claim any sender, as with every sendmail; the daemon
 * records the real uid in the Received: field. */
void
sendmail_msg_sender(struct sendmail_msg *m)
{
	const char	*f = m->sm->sender;

	if (f == NULL && m->sm->login == NULL)
		sendmail_msg_fail(m, EX_DATAERR, "cannot make a sender address "
		    "of the login name: use -f");
	else if (f == NULL)
		m->sender = xstrdup(m->sm->login);
	else if (strcmp(f, "") == 0 || strcmp(f, "<>") == 0)
		m->sender = xstrdup("");
	else if (sendmail_addr_list(m, f, strlen(f), sendmail_set_sender,
	    "sender") == 0 && m->sender == NULL)
		sendmail_msg_fail(m, EX_DATAERR, "bad sender address: %s", f);
}

