/*
 * sendmail.c - smartrelay-sendmail, the /usr/sbin/sendmail of a host
 * that relays through smartrelayd.
 *
 * Reads a message (stdin, or SMTP on stdin/stdout with -bs) and leaves it
 * in the spool's maildrop directory (see maildrop.h), synced, for the
 * daemon to pick up now or when it next starts.  Exit 0 means the message
 * is on stable storage; anything else means it was not accepted.  Before
 * that, the message is checked with the daemon's own rules, so that what
 * the daemon would refuse is reported here, to the caller.
 *
 * Not set-uid or set-gid, ever: it runs with its caller's rights, and the
 * maildrop's modes are what keep users apart.
 */
#include "config.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "maildrop.h"
#include "route.h"
#include "smtp.h"
#include "stamp.h"
#include "util.h"

#define SENDMAIL_NAME		"smartrelay-sendmail"
#define SENDMAIL_LINE_BUF	1024	/* longer lines come in pieces */
#define SENDMAIL_FULLNAME_MAX	100	/* octets of -F used */
#define SENDMAIL_OPTS		"+:A:B:C:F:GIL:N:O:R:UV:X:" \
				"b:ce:f:h:imno:p:r:q:tvx"

enum sendmail_mode {
	SENDMAIL_ENQUEUE,	/* -bm, the default */
	SENDMAIL_SMTP,		/* -bs */
	SENDMAIL_MAILQ,		/* -bp, mailq */
	SENDMAIL_FLUSH,		/* -q, -qIid */
	SENDMAIL_NEWALIASES,	/* -bi, -I, newaliases */
	SENDMAIL_VERIFY,	/* -bv */
	SENDMAIL_IGNORE,	/* -bh, -bH, -q30m: nothing to do */
};

/* The command line and what follows from it. */
struct sendmail {
	const struct conf	*conf;
	enum sendmail_mode	 mode;
	const char		*conf_path;
	const char		*sender;	/* -f/-r, or NULL */
	const char		*fullname;	/* -F or $NAME, or NULL */
	const char		*flush_id;	/* -qI */
	bool			 extract;	/* -t */
	bool			 dot_ends;	/* no -i/-oi */
	enum smtp_body		 body;		/* -B (RFC 6152) */
	char			*login;		/* login@hostname */
};

struct sendmail_buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

/*
 * One message on its way into the maildrop.  The header section stays in
 * memory until it ends (at an empty line, a line that is no header field,
 * or the end of the input): only then are the recipients of -t known and
 * the missing fields decided.  The file starts there, with a provisional
 * maildrop header (size 0); each line passes the daemon's content rules
 * as it is written; the end rewrites the header with the real size (same
 * length), syncs and renames.
 */
struct sendmail_msg {
	const struct sendmail	*sm;
	char			*sender;	/* "" is the null sender */
	char			**rcpts;
	size_t			 nrcpt;
	enum smtp_body		 body;		/* -B, or BODY= with -bs */
	bool			 extract;	/* collect To, Cc, Bcc */
	bool			 in_headers;
	bool			 in_field;	/* a header field was seen */
	bool			 drop_field;	/* the current field is Bcc */
	bool			 rcpt_field;	/* ... is To, Cc or Bcc (-t) */
	bool			 has_date, has_from, has_msgid;
	bool			 midline;	/* pieces of a line came */
	struct sendmail_buf	 hdr;		/* header lines kept, raw */
	struct sendmail_buf	 field;		/* rcpt_field, unfolded */
	int			 dirfd;		/* maildrop/, O_PATH */
	FILE			*fp;		/* the .tmp. file */
	char			 name[MAILDROP_NAME_LEN + 1];
	char			 tmpname[sizeof(MAILDROP_TMP_PREFIX) +
				    MAILDROP_NAME_LEN];
	struct maildrop_canon	 canon;
	uint64_t		 size;		/* message octets written */
	int			 status;	/* 0, or the first EX_* */
	enum smtp_data_err	 data_err;	/* when a content rule broke */
	char			 errmsg[512];
};

static int
sendmail_error(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "smartrelay-sendmail: <message>" and returns <status>. */
static int
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

static void
sendmail_msg_fail(struct sendmail_msg *m, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first failure of a message. */
static void
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

static void
sendmail_buf_add(struct sendmail_buf *b, const char *p, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
}

/* 2 * <n> random hex digits into <out>.  getrandom() blocks only until
 * the kernel's pool is ready early at boot: a mail sent then waits
 * rather than fails, and its file name stays unguessable. */
static int
sendmail_random_hex(char *out, size_t n)
{
	unsigned char	 r[32];
	size_t		 i;

	if (n > sizeof(r) || getrandom(r, n, 0) != (ssize_t)n)
		return -1;
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
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

typedef int	(*sendmail_addr_cb)(void *arg, const char *addr);

/* State of the address-list scanner. */
struct sendmail_alist {
	char	bare[SMTP_ADDR_BUFSZ];	/* text outside <> and comments */
	char	angle[SMTP_ADDR_BUFSZ];	/* text inside <> */
	size_t	nbare, nangle;
	size_t	depth;			/* of nested comments */
	bool	quoted, in_angle, had_angle;
	bool	bare_overflow, angle_overflow;	/* a display name may be long */
};

static void
sendmail_alist_put(struct sendmail_alist *a, char c)
{
	char	*buf = a->in_angle ? a->angle : a->bare;
	size_t	*n = a->in_angle ? &a->nangle : &a->nbare;

	if (*n + 1 < SMTP_ADDR_BUFSZ)
		buf[(*n)++] = c;
	else if (a->in_angle)
		a->angle_overflow = true;
	else
		a->bare_overflow = true;
}

/* Ends one element of the list: its address is in <>, or the bare text. */
static int
sendmail_alist_emit(struct sendmail_alist *a, sendmail_addr_cb cb, void *arg)
{
	char	*addr = a->had_angle ? a->angle : a->bare, *colon;
	int	 rc = 0;

	while (a->nbare > 0 && a->bare[a->nbare - 1] == ' ')
		a->nbare--;
	a->angle[a->nangle] = a->bare[a->nbare] = '\0';
	/* A source route "<@a,@b:user@c>" is obsolete: drop it. */
	if (addr[0] == '@' && (colon = strchr(addr, ':')) != NULL)
		addr = colon + 1;
	if (a->had_angle ? a->angle_overflow : a->bare_overflow)
		rc = cb(arg, NULL);
	else if (addr[0] != '\0')
		rc = cb(arg, addr);
	memset(a, 0, sizeof(*a));
	return rc;
}

/* Inside a quoted string (kept) or a comment (dropped): takes s[*i],
 * and the octet after a backslash.  False at the top level. */
static bool
sendmail_alist_nested(struct sendmail_alist *a, const char *s, size_t len,
    size_t *i)
{
	char	c = s[*i];
	bool	escaped = c == '\\' && *i + 1 < len;

	if (a->quoted) {
		sendmail_alist_put(a, c);
		if (escaped)
			sendmail_alist_put(a, s[++*i]);
		else if (c == '"')
			a->quoted = false;
		return true;
	}
	if (a->depth == 0)
		return false;
	if (escaped)
		++*i;
	else if (c == '(')
		a->depth++;
	else if (c == ')')
		a->depth--;
	return true;
}

/*
 * Scans an RFC 5322 address list (section 3.4), reasonably: display
 * names, comments, quoted strings, groups ("name: a, b;").  Calls <cb>
 * with each addr-spec, or with NULL for one too long.  Stops at the
 * first callback that returns -1.
 */
static int
sendmail_addr_list(const char *s, size_t len, sendmail_addr_cb cb, void *arg)
{
	struct sendmail_alist	 a;
	size_t			 i;
	char			 c;

	memset(&a, 0, sizeof(a));
	for (i = 0; i < len; i++) {
		if (sendmail_alist_nested(&a, s, len, &i))
			continue;
		switch ((c = s[i])) {
		case '"':
			a.quoted = true;
			sendmail_alist_put(&a, c);
			break;
		case '(':
			a.depth = 1;
			break;
		case '<':
			a.in_angle = a.had_angle = true;
			a.nangle = 0;
			break;
		case '>':
			a.in_angle = false;
			break;
		case ':':
			if (a.in_angle)
				sendmail_alist_put(&a, c);
			else		/* a group's name */
				a.nbare = 0;
			break;
		case ',':
		case ';':
			if (a.in_angle)
				sendmail_alist_put(&a, c);
			else if (sendmail_alist_emit(&a, cb, arg) == -1)
				return -1;
			break;
		case ' ': case '\t': case '\r': case '\n':
			/* Kept inside bare text, where it makes the address
			 * invalid: "john doe@x" is not "johndoe@x". */
			if (!a.in_angle && a.nbare > 0)
				sendmail_alist_put(&a, ' ');
			break;
		default:
			sendmail_alist_put(&a, c);
		}
	}
	return sendmail_alist_emit(&a, cb, arg);
}

/* Adds a recipient, qualified, checked and once only. */
static int
sendmail_add_rcpt(void *arg, const char *addr)
{
	struct sendmail_msg	*m = arg;
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
sendmail_set_sender(void *arg, const char *addr)
{
	struct sendmail_msg	*m = arg;
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

/*
 * Routes the recipients as the daemon will at pickup (route.h), so that
 * what it would refuse is refused here, to the caller: a name that
 * cannot be routed, or more than max_recipients addresses once aliases
 * are expanded.
 */
static void
sendmail_check_routes(struct sendmail_msg *m)
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

/*
 * The maildrop file.
 */

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
static int
sendmail_drop_header(struct sendmail_msg *m, bool final)
{
	struct maildrop_env	 env;
	char			*text;
	size_t			 len;
	int			 rc;

	env.uid = (unsigned long)getuid();
	env.sender = m->sender;
	env.rcpts = m->rcpts;
	env.nrcpt = m->nrcpt;
	env.body = m->body;
	env.size = m->size;
	if ((text = maildrop_format(&env, &len)) == NULL)
		return -1;
	if (final)
		rc = pwrite(fileno(m->fp), text, len, 0) == (ssize_t)len ? 0 :
		    -1;
	else
		rc = fwrite(text, 1, len, m->fp) == len ? 0 : -1;
	free(text);
	return rc;
}

/* Creates maildrop/.tmp.<random> and writes a provisional header. */
static int
sendmail_drop_open(struct sendmail_msg *m)
{
	const char	*spool = m->sm->conf->spool;
	char		 path[PATH_MAX], hex[MAILDROP_NAME_LEN + 1];
	char		 tmp[sizeof(m->tmpname)];
	int		 fd;

	/* O_PATH: others may search maildrop/ but not read it. */
	if (snprintf(path, sizeof(path), "%s/" MAILDROP_DIR, spool) >=
	    (int)sizeof(path) || (m->dirfd = open(path, O_PATH |
	    O_DIRECTORY | O_CLOEXEC)) == -1) {
		sendmail_msg_fail(m, EX_TEMPFAIL, "cannot open %s: %s (has "
		    "smartrelayd run once?)", path, strerror(errno));
		return -1;
	}
	if (sendmail_random_hex(hex, MAILDROP_NAME_LEN / 2) == -1) {
		sendmail_msg_fail(m, EX_TEMPFAIL, "getrandom: %s",
		    strerror(errno));
		return -1;
	}
	snprintf(m->name, sizeof(m->name), "%s", hex);
	snprintf(tmp, sizeof(tmp), MAILDROP_TMP_PREFIX "%s", hex);
	fd = openat(m->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		sendmail_msg_fail(m, EX_TEMPFAIL, "cannot create a file in "
		    "%s/" MAILDROP_DIR ": %s", spool, strerror(errno));
		return -1;
	}
	memcpy(m->tmpname, tmp, sizeof(tmp));
	/* Whatever the umask: the daemon's user must be able to read it. */
	if (fchmod(fd, MAILDROP_FILE_MODE) == -1 ||
	    (m->fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		sendmail_msg_fail(m, EX_TEMPFAIL, "maildrop file: %s",
		    strerror(errno));
		return -1;
	}
	if (sendmail_drop_header(m, false) == -1) {
		sendmail_msg_fail(m, EX_TEMPFAIL, "writing the maildrop: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Makes the file durable under its final name: data synced, renamed,
 * the rename synced.  Only the directory's owner (and root) may open
 * maildrop/ to fsync it; for everyone else syncfs(2) on the file commits
 * the whole file system, the rename included.
 */
static int
sendmail_drop_commit(struct sendmail_msg *m)
{
	const char	*step = "write";
	int		 fd = fileno(m->fp), dfd, rc;

	if (fflush(m->fp) == EOF || ferror(m->fp) ||
	    sendmail_drop_header(m, true) == -1)
		goto fail;
	step = "fsync";
	if (fsync(fd) == -1)
		goto fail;
	step = "rename";
	if (renameat2(m->dirfd, m->tmpname, m->dirfd, m->name,
	    RENAME_NOREPLACE) == -1)
		goto fail;
	m->tmpname[0] = '\0';
	/* From here the daemon may take the file: a failure below may
	 * lead to a duplicate if the caller retries, never to a loss. */
	step = "sync";
	if ((dfd = openat(m->dirfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		rc = fsync(dfd);
		close(dfd);
	} else
		rc = syncfs(fd);
	if (rc == -1)
		goto fail;
	rc = fclose(m->fp);
	m->fp = NULL;
	if (rc == 0)
		return 0;
fail:
	sendmail_msg_fail(m, EX_TEMPFAIL, "cannot write the maildrop (%s): "
	    "%s", step, strerror(errno));
	return -1;
}

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
	if (fwrite(line, 1, len, m->fp) != len) {
		sendmail_msg_fail(m, EX_TEMPFAIL, "writing the maildrop: %s",
		    strerror(errno));
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
sendmail_phrase(const char *name, char *out, size_t outsz)
{
	char		 clean[SENDMAIL_FULLNAME_MAX + 1], *p = out;
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
	if (n == 0 || outsz < 3 * n + 16)
		return false;
	if (!ascii)
		p += snprintf(p, outsz, "=?UTF-8?Q?");
	else if (special)
		*p++ = '"';
	for (i = 0; i < n; i++) {
		c = (unsigned char)clean[i];
		if (!ascii && c == ' ')
			*p++ = '_';
		else if (!ascii && !((c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			p += snprintf(p, 4, "=%02X", c);
		else {
			if (special && (c == '"' || c == '\\'))
				*p++ = '\\';
			*p++ = (char)c;
		}
	}
	if (!ascii)
		p += snprintf(p, 3, "?=");
	else if (special)
		*p++ = '"';
	*p = '\0';
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
	char			 name[3 * SENDMAIL_FULLNAME_MAX + 16];
	int			 n;

	if (!m->has_from) {
		addr = m->sender[0] != '\0' ? m->sender : sm->login;
		if (addr == NULL)
			addr = "MAILER-DAEMON";
		if (sendmail_phrase(sm->fullname, name, sizeof(name)))
			snprintf(buf, sizeof(buf), "From: %s <%s>\n", name,
			    addr);
		else
			snprintf(buf, sizeof(buf), "From: %s\n", addr);
		sendmail_put(m, buf, strlen(buf), false);
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
		sendmail_addr_list(m->field.p, m->field.len, sendmail_add_rcpt,
		    m);
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
		sendmail_check_routes(m);
	if (m->status != 0 || sendmail_drop_open(m) == -1)
		return;
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
	free(m->hdr.p);
	memset(&m->hdr, 0, sizeof(m->hdr));
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
		sendmail_buf_add(&m->field, val, (size_t)(line + clen - val));
		if (!more)
			sendmail_buf_add(&m->field, " ", 1);
	}
	if (!m->drop_field)
		sendmail_buf_add(&m->hdr, line, len);
	if (m->hdr.len > m->sm->conf->max_message_size)
		sendmail_data_fail(m, SMTP_DATA_ESIZE);
	return true;
}

/*
 * Messages.
 */

static void
sendmail_msg_init(struct sendmail_msg *m, const struct sendmail *sm)
{
	memset(m, 0, sizeof(*m));
	m->sm = sm;
	m->body = sm->body;
	m->dirfd = -1;
	m->in_headers = true;
	m->extract = sm->extract;
}

/* Frees <m>; a maildrop file not yet renamed into place is removed. */
static void
sendmail_msg_cleanup(struct sendmail_msg *m)
{
	size_t	i;

	if (m->fp != NULL)
		fclose(m->fp);
	if (m->tmpname[0] != '\0')
		unlinkat(m->dirfd, m->tmpname, 0);
	if (m->dirfd != -1)
		close(m->dirfd);
	for (i = 0; i < m->nrcpt; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	free(m->sender);
	free(m->hdr.p);
	free(m->field.p);
	memset(m, 0, sizeof(*m));
	m->dirfd = -1;
}

/* Takes one raw line of the message, with its LF when it has one, or
 * with <more> a piece of one. */
static void
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
static int
sendmail_msg_finish(struct sendmail_msg *m)
{
	if (m->status == 0 && m->in_headers)
		sendmail_headers_end(m, false);
	/* The input ended inside a long line: that ends it. */
	else if (m->midline)
		sendmail_put(m, "", 0, false);
	if (m->status == 0)
		sendmail_drop_commit(m);
	return m->status;
}

/*
 * Reading.
 */

/* Reads one line, its LF included, into <buf>.  A longer line comes in
 * pieces, each with *more set: it is content (issue 13), bounded by the
 * message size only.  A CR that would end a piece is left for the next
 * one: the octet after it may make it the line's end.  Returns false at
 * the end of the input. */
static bool
sendmail_read_line(char *buf, size_t bufsz, size_t *len, bool *more)
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

/* A line holding only ".": the end of the message (no -i) or of DATA. */
static bool
sendmail_is_dot(const char *line, size_t len)
{
	return len > 0 && line[0] == '.' && (len == 1 ||
	    (len == 2 && line[1] == '\n') ||
	    (len == 3 && line[1] == '\r' && line[2] == '\n'));
}

/* The envelope sender: -f/-r, or the caller's login at this host.  Any
 * local user may claim any sender, as with every sendmail; the daemon
 * records the real uid in the Received: field. */
static void
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
	else if (sendmail_addr_list(f, strlen(f), sendmail_set_sender, m) ==
	    0 && m->sender == NULL)
		sendmail_msg_fail(m, EX_DATAERR, "bad sender address: %s", f);
}

/* The default mode: one message from stdin. */
static int
sendmail_enqueue(const struct sendmail *sm, char **args, int nargs)
{
	struct sendmail_msg	 m;
	char			 line[SENDMAIL_LINE_BUF];
	size_t			 len;
	bool			 more;
	int			 i, rc;

	sendmail_msg_init(&m, sm);
	sendmail_msg_sender(&m);
	for (i = 0; i < nargs && m.status == 0; i++)
		sendmail_addr_list(args[i], strlen(args[i]), sendmail_add_rcpt,
		    &m);
	if (m.status == 0 && !sm->extract && m.nrcpt == 0)
		sendmail_msg_fail(&m, EX_USAGE, "no recipients given");
	/* Stop at the first error: no need to read what will be refused. */
	while (m.status == 0 && sendmail_read_line(line, sizeof(line), &len,
	    &more)) {
		if (sm->dot_ends && !m.midline && sendmail_is_dot(line, len))
			break;
		sendmail_msg_line(&m, line, len, more);
	}
	if (m.status == 0 && ferror(stdin))
		sendmail_msg_fail(&m, EX_IOERR, "reading the message: %s",
		    strerror(errno));
	if ((rc = sendmail_msg_finish(&m)) != 0)
		sendmail_error(rc, "%s", m.errmsg);
	sendmail_msg_cleanup(&m);
	return rc;
}

/*
 * -bs: SMTP on stdin and stdout.  Lines may end in LF or CRLF (local
 * programs), and "." alone ends DATA either way.
 */

struct sendmail_smtp {
	const struct sendmail	*sm;
	struct sendmail_msg	 m;
	bool			 mail;		/* MAIL was accepted */
};

static void
sendmail_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
sendmail_reply(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\r\n", stdout);
	fflush(stdout);
}

static void
sendmail_smtp_reset(struct sendmail_smtp *s)
{
	sendmail_msg_cleanup(&s->m);
	sendmail_msg_init(&s->m, s->sm);
	s->m.extract = false;
	s->mail = false;
}

static void
sendmail_smtp_mail(struct sendmail_smtp *s, const char *args)
{
	struct smtp_mail	mail;
	char			q[SMTP_ADDR_BUFSZ];

	if (s->mail) {
		sendmail_reply("503 5.5.1 Error: nested MAIL command");
		return;
	}
	switch (smtp_parse_mail(args, s->sm->conf->max_message_size, &mail)) {
	case SMTP_OK:
		if (mail.path[0] != '\0' && sendmail_qualify(s->sm, mail.path,
		    q, sizeof(q)) == -1) {
			sendmail_reply("501 5.1.7 Bad sender address syntax");
			break;
		}
		sendmail_smtp_reset(s);
		s->m.sender = xstrdup(mail.path[0] != '\0' ? q : "");
		if (mail.body != SMTP_BODY_UNSPEC)
			s->m.body = mail.body;
		s->mail = true;
		sendmail_reply("250 2.1.0 Ok");
		break;
	case SMTP_EADDR:
		sendmail_reply("501 5.1.7 Bad sender address syntax");
		break;
	case SMTP_EPARAM:
		sendmail_reply("555 5.5.4 Unsupported option");
		break;
	case SMTP_ETOOBIG:
		sendmail_reply("552 5.3.4 Message size exceeds fixed limit");
		break;
	default:
		sendmail_reply("501 5.5.4 Syntax: MAIL FROM:<address>");
	}
}

static void
sendmail_smtp_rcpt(struct sendmail_smtp *s, const char *args)
{
	struct smtp_rcpt	rcpt;

	if (!s->mail) {
		sendmail_reply("503 5.5.1 Error: need MAIL command");
		return;
	}
	switch (smtp_parse_rcpt(args, &rcpt)) {
	case SMTP_OK:
		break;
	case SMTP_EADDR:
		sendmail_reply("501 5.1.3 Bad recipient address syntax");
		return;
	case SMTP_EPARAM:
		sendmail_reply("555 5.5.4 Unsupported option");
		return;
	default:
		sendmail_reply("501 5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	if (s->m.nrcpt >= s->sm->conf->max_recipients)
		sendmail_reply("452 4.5.3 Error: too many recipients");
	else if (sendmail_add_rcpt(&s->m, rcpt.path) == -1) {
		s->m.status = 0;
		sendmail_reply("501 5.1.3 Bad recipient address syntax");
	} else
		sendmail_reply("250 2.1.5 Ok");
}

/* DATA up to its "." line.  Returns false at the end of the input. */
static bool
sendmail_smtp_data(struct sendmail_smtp *s, const char *args)
{
	struct sendmail_msg	*m = &s->m;
	char			 line[SENDMAIL_LINE_BUF];
	size_t			 len;
	bool			 more, end = false;

	if (*args != '\0') {
		sendmail_reply("501 5.5.4 Syntax: DATA");
		return true;
	}
	if (!s->mail || m->nrcpt == 0) {
		sendmail_reply("503 5.5.1 Error: need RCPT command");
		return true;
	}
	sendmail_reply("354 End data with <CR><LF>.<CR><LF>");
	while (!end && sendmail_read_line(line, sizeof(line), &len,
	    &more)) {
		if (!m->midline && sendmail_is_dot(line, len))
			end = true;
		else if (!m->midline && line[0] == '.')	/* RFC 5321 4.5.2 */
			sendmail_msg_line(m, line + 1, len - 1, more);
		else
			sendmail_msg_line(m, line, len, more);
	}
	if (!end)
		return false;
	if (sendmail_msg_finish(m) == 0)
		sendmail_reply("250 2.0.0 Ok: queued");
	else if (m->data_err != SMTP_DATA_OK)
		sendmail_reply("%s", smtp_data_err_reply(m->data_err));
	else
		sendmail_reply("451 4.3.0 Error: %s", m->errmsg);
	sendmail_smtp_reset(s);
	return true;
}

/* One command line (without its line end).  Returns false to stop. */
static bool
sendmail_smtp_cmd(struct sendmail_smtp *s, const char *line)
{
	const struct conf	*conf = s->sm->conf;
	const char		*args;
	char			 helo[SMTP_DOMAIN_MAX + 1];
	enum smtp_verb		 verb = smtp_parse_verb(line, &args);

	switch (verb) {
	case SMTP_VERB_HELO:
	case SMTP_VERB_EHLO:
		if (smtp_parse_helo(args, helo, sizeof(helo)) != SMTP_OK) {
			sendmail_reply("501 5.5.4 Syntax: %s hostname",
			    verb == SMTP_VERB_HELO ? "HELO" : "EHLO");
			break;
		}
		sendmail_smtp_reset(s);
		if (verb == SMTP_VERB_HELO)
			sendmail_reply("250 %s", conf->hostname);
		else
			sendmail_reply("250-%s\r\n250-PIPELINING\r\n250-SIZE "
			    "%llu\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES",
			    conf->hostname,
			    (unsigned long long)conf->max_message_size);
		break;
	case SMTP_VERB_MAIL:
		sendmail_smtp_mail(s, args);
		break;
	case SMTP_VERB_RCPT:
		sendmail_smtp_rcpt(s, args);
		break;
	case SMTP_VERB_DATA:
		return sendmail_smtp_data(s, args);
	case SMTP_VERB_RSET:
		sendmail_smtp_reset(s);
		sendmail_reply("250 2.0.0 Ok");
		break;
	case SMTP_VERB_NOOP:
		sendmail_reply("250 2.0.0 Ok");
		break;
	case SMTP_VERB_QUIT:
		sendmail_reply("221 2.0.0 Bye");
		return false;
	case SMTP_VERB_VRFY:
		sendmail_reply("252 2.0.0 Send some mail, I'll try my best");
		break;
	case SMTP_VERB_HELP:
		sendmail_reply("214 2.0.0 See smartrelay-sendmail(8)");
		break;
	case SMTP_VERB_STARTTLS:
	case SMTP_VERB_AUTH:
		sendmail_reply("502 5.5.1 Error: command not implemented");
		break;
	default:
		sendmail_reply("500 5.5.2 Error: command not recognized");
	}
	return true;
}

static int
sendmail_smtp(const struct sendmail *sm)
{
	struct sendmail_smtp	 s;
	char			 line[SENDMAIL_LINE_BUF];
	size_t			 len;
	bool			 toolong, more = true;

	memset(&s, 0, sizeof(s));
	s.sm = sm;
	sendmail_msg_init(&s.m, sm);
	sendmail_reply("220 %s ESMTP smartrelay-sendmail",
	    sm->conf->hostname);
	while (more && sendmail_read_line(line, sizeof(line), &len,
	    &toolong)) {
		while (len > 0 && (line[len - 1] == '\n' ||
		    line[len - 1] == '\r'))
			len--;
		if (toolong || len > SMTP_CMD_LINE_MAX - 2)
			sendmail_reply("500 5.5.2 Error: line too long");
		else if (!smtp_line_is_clean(line, len))
			sendmail_reply("500 5.5.2 Error: bad characters");
		else {
			line[len] = '\0';
			more = sendmail_smtp_cmd(&s, line);
		}
	}
	sendmail_msg_cleanup(&s.m);
	return ferror(stdout) ? EX_IOERR : EX_OK;
}

/*
 * The other modes, options and main().
 */

/* -bp and -q: smartrelayctl, from the directory this program is in (so
 * a build tree runs its own), else from $PATH. */
static int
sendmail_exec_ctl(const struct sendmail *sm, const char *cmd,
    const char *arg)
{
	char		 self[PATH_MAX], path[PATH_MAX + 32], *slash;
	char		 name[] = "smartrelayctl";
	char		*argv[4];
	ssize_t		 n;

	argv[0] = name;
	argv[1] = (char *)cmd;
	argv[2] = (char *)arg;
	argv[3] = NULL;
	if (sm->conf_path != NULL &&
	    setenv("SMARTRELAY_CONFIG", sm->conf_path, 1) == -1)
		return sendmail_error(EX_OSERR, "setenv: %s", strerror(errno));
	fflush(NULL);
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/%s", self, name);
			execv(path, argv);
		}
	}
	execvp(name, argv);
	return sendmail_error(EX_UNAVAILABLE, "cannot run %s: %s", name,
	    strerror(errno));
}

/* One line of -bv: where mail to <addr> goes (route.h). */
static void
sendmail_verify_one(const struct sendmail *sm, const char *addr)
{
	const struct conf	*conf = sm->conf;
	struct route_result	 res;
	char			 err[256], list[1024];

	if (route_rcpt(&conf->route, addr, &res, err, sizeof(err)) == -1)
		printf("%s... undeliverable: %s\n", addr, err);
	else if (res.how == ROUTE_REMOTE)
		printf("%s... deliverable: relayed to %s\n", addr,
		    conf->upstream[0].host);
	else if (res.how == ROUTE_KEPT)
		printf("%s... deliverable: a local name, relayed to %s as it "
		    "is (no alias, no admin_address)\n", addr,
		    conf->upstream[0].host);
	else
		printf("%s... deliverable: a local name, relayed to %s for %s "
		    "(%s)\n", addr, conf->upstream[0].host,
		    route_result_fmt(&res, list, sizeof(list)),
		    res.how == ROUTE_ALIAS ? "aliases" :
		    conf->admin_from == CONF_ADMIN_SET ? "admin_address" :
		    "admin: the upstream username");
	route_result_cleanup(&res);
}

/* -bv: says what would happen to each address. */
static int
sendmail_verify(const struct sendmail *sm, char **args, int nargs)
{
	struct sendmail_msg	 m;
	size_t			 i;
	int			 j, rc;

	sendmail_msg_init(&m, sm);
	for (j = 0; j < nargs && m.status == 0; j++)
		sendmail_addr_list(args[j], strlen(args[j]), sendmail_add_rcpt,
		    &m);
	if (m.status == 0 && m.nrcpt == 0)
		sendmail_msg_fail(&m, EX_USAGE, "no recipients given");
	for (i = 0; i < m.nrcpt && m.status == 0; i++)
		sendmail_verify_one(sm, m.rcpts[i]);
	if ((rc = m.status) != 0)
		sendmail_error(rc, "%s", m.errmsg);
	sendmail_msg_cleanup(&m);
	return rc;
}

static int
sendmail_usage(void)
{
	fprintf(stderr, "usage: " SENDMAIL_NAME " [-i] [-t] [-f sender] "
	    "[-F name] [-C config] [recipient ...]\n"
	    "       " SENDMAIL_NAME " -bs | -bp | -q | -bv recipient ...\n");
	return EX_USAGE;
}

/* -b<mode>, as Postfix takes them. */
static int
sendmail_opt_b(struct sendmail *sm, const char *arg)
{
	switch (arg[0]) {
	case 'm':
		sm->mode = SENDMAIL_ENQUEUE;
		return 0;
	case 's':
		sm->mode = SENDMAIL_SMTP;
		return 0;
	case 'p':
		sm->mode = SENDMAIL_MAILQ;
		return 0;
	case 'i':
		sm->mode = SENDMAIL_NEWALIASES;
		return 0;
	case 'v':
		sm->mode = SENDMAIL_VERIFY;
		return 0;
	case 'h':
	case 'H':
		sm->mode = SENDMAIL_IGNORE;
		return 0;
	case 'd':
		return sendmail_error(EX_USAGE, "-bd: not a daemon: run "
		    "smartrelayd");
	default:
		return sendmail_error(EX_USAGE, "unsupported: -b%s", arg);
	}
}

/* -q (flush the queue), -qIid (flush one message), -q30m (a queue run
 * interval: the daemon has its own schedule). */
static int
sendmail_opt_q(struct sendmail *sm, const char *arg)
{
	if (arg == NULL)
		sm->mode = SENDMAIL_FLUSH;
	else if (arg[0] >= '0' && arg[0] <= '9')
		sm->mode = SENDMAIL_IGNORE;
	else if (arg[0] == 'I' && arg[1] != '\0') {
		sm->mode = SENDMAIL_FLUSH;
		sm->flush_id = arg + 1;
	} else
		return sendmail_error(EX_USAGE, "unsupported: -q%s", arg);
	return 0;
}

/* One option from getopt().  Returns 0 or an EX_* code. */
static int
sendmail_opt(struct sendmail *sm, int ch, const char *arg)
{
	switch (ch) {
	case 'B':
		/* cron passes -B8BITMIME: kept for the relay (RFC 6152). */
		if (strcmp(arg, "8BITMIME") == 0)
			sm->body = SMTP_BODY_8BITMIME;
		else if (strcmp(arg, "7BIT") == 0)
			sm->body = SMTP_BODY_7BIT;
		else
			return sendmail_error(EX_USAGE, "-B needs 8BITMIME or "
			    "7BIT");
		return 0;
	case 'C':
		sm->conf_path = arg;
		return 0;
	case 'F':
		sm->fullname = arg;
		return 0;
	case 'I':
		sm->mode = SENDMAIL_NEWALIASES;
		return 0;
	case 'b':
		return sendmail_opt_b(sm, arg);
	case 'f':
	case 'r':
		sm->sender = arg;
		return 0;
	case 'i':
		sm->dot_ends = false;
		return 0;
	case 'n':
		return sendmail_error(EX_USAGE, "-n is not supported");
	case 'o':
		if (arg[0] == 'i')
			sm->dot_ends = false;
		return 0;
	case 'q':
		return sendmail_opt_q(sm, arg);
	case 't':
		sm->extract = true;
		return 0;
	case ':':
		return sendmail_error(EX_USAGE, "option -%c needs a value",
		    optopt);
	case '?':
		sendmail_error(EX_USAGE, "unknown option -%c", optopt);
		return sendmail_usage();
	default:		/* accepted and ignored */
		return 0;
	}
}

/*
 * Sendmail's options, as Postfix reads them: getopt() up to the first
 * recipient or "--", with a bare "-q" taken apart first (getopt() would
 * want a value for it).  Options with no meaning here are accepted and
 * ignored: -A -G -L -N -O -R -U -V -X -c -e -h -m -p -v -x, and -o
 * except -oi.
 */
static int
sendmail_parse_args(struct sendmail *sm, int argc, char *argv[])
{
	int	ch, rc = 0;

	opterr = 0;
	while (rc == 0 && optind < argc) {
		if (strcmp(argv[optind], "-q") == 0) {
			rc = sendmail_opt_q(sm, NULL);
			optind++;
		} else if ((ch = getopt(argc, argv, SENDMAIL_OPTS)) == -1)
			break;
		else
			rc = sendmail_opt(sm, ch, optarg);
	}
	if (rc == 0 && sm->extract && sm->mode != SENDMAIL_ENQUEUE)
		rc = sendmail_error(EX_USAGE, "-t can be used only in "
		    "delivery mode");
	return rc;
}

/* The caller's login name at the domain, or NULL if it is no address. */
static char *
sendmail_login(const struct conf *conf)
{
	struct passwd	*pw = getpwuid(getuid());
	char		 buf[SMTP_ADDR_BUFSZ];
	int		 n;

	if (pw != NULL)
		n = snprintf(buf, sizeof(buf), "%s@%s", pw->pw_name,
		    conf->domain);
	else
		n = snprintf(buf, sizeof(buf), "uid%lu@%s",
		    (unsigned long)getuid(), conf->domain);
	if (n < 0 || (size_t)n >= sizeof(buf) || !smtp_mailbox_is_valid(buf))
		return NULL;
	return xstrdup(buf);
}

/* Makes sure fds 0-2 are open: a caller that closed stderr must not
 * have our error messages written into the maildrop file. */
static void
sendmail_std_fds(void)
{
	struct stat	st;
	int		fd;

	for (fd = 0; fd <= 2; fd++)
		if (fstat(fd, &st) == -1 && errno == EBADF &&
		    open("/dev/null", O_RDWR) != fd)
			exit(EX_OSERR);
}

static int
sendmail_run(struct sendmail *sm, char **args, int nargs)
{
	struct conf	*conf;
	char		 errbuf[4096];
	const char	*path = sm->conf_path;
	int		 rc;

	if (path == NULL && (path = getenv("SMARTRELAY_CONFIG")) == NULL)
		path = conf_default_path();
	if ((conf = conf_load(path, errbuf, sizeof(errbuf))) == NULL) {
		fprintf(stderr, "%s", errbuf);
		if (errbuf[0] != '\0' && errbuf[strlen(errbuf) - 1] != '\n')
			fputc('\n', stderr);
		return sendmail_error(EX_CONFIG, "cannot use the "
		    "configuration %s", path);
	}
	sm->conf = conf;
	sm->login = sendmail_login(conf);
	if (sm->mode == SENDMAIL_SMTP)
		rc = nargs > 0 ? sendmail_error(EX_USAGE, "-bs takes no "
		    "recipients") : sendmail_smtp(sm);
	else if (sm->mode == SENDMAIL_VERIFY)
		rc = sendmail_verify(sm, args, nargs);
	else
		rc = sendmail_enqueue(sm, args, nargs);
	free(sm->login);
	conf_free(conf);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct sendmail	 sm;
	const char	*prog = strrchr(argv[0], '/');
	int		 rc;

	sendmail_std_fds();
	signal(SIGPIPE, SIG_IGN);
	memset(&sm, 0, sizeof(sm));
	sm.dot_ends = true;
	sm.fullname = getenv("NAME");
	prog = prog != NULL ? prog + 1 : argv[0];
	if (strcmp(prog, "mailq") == 0)
		sm.mode = SENDMAIL_MAILQ;
	else if (strcmp(prog, "newaliases") == 0)
		sm.mode = SENDMAIL_NEWALIASES;
	if ((rc = sendmail_parse_args(&sm, argc, argv)) != 0)
		return rc;
	if (sm.mode != SENDMAIL_ENQUEUE && sm.mode != SENDMAIL_SMTP &&
	    sm.mode != SENDMAIL_VERIFY && optind < argc)
		return sendmail_error(EX_USAGE, "this mode takes no "
		    "recipients");
	switch (sm.mode) {
	case SENDMAIL_MAILQ:
		return sendmail_exec_ctl(&sm, "queue", NULL);
	case SENDMAIL_FLUSH:
		return sendmail_exec_ctl(&sm, "flush", sm.flush_id);
	case SENDMAIL_NEWALIASES:	/* no aliases: nothing to rebuild */
	case SENDMAIL_IGNORE:
		return EX_OK;
	default:
		return sendmail_run(&sm, argv + optind, argc - optind);
	}
}
