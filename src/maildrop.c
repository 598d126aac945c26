/*
 * maildrop.c - the maildrop file format and the daemon's pickup (API and
 * directory layout in maildrop.h).
 *
 * File format: a text header, each line ending in LF, then the message:
 *
 *	smartrelay-maildrop 1
 *	uid 1000
 *	sender alice@example.org		("<>": the null sender)
 *	rcpt bob@example.org			(one line per recipient)
 *	size 00000000000000001234		(always 20 digits)
 *	<empty line>
 *	<exactly "size" octets of message, lines ending in LF or CRLF>
 *
 * Addresses are xtext (RFC 3461 section 4, with '<' and '>' encoded too
 * so that only the null sender reads "<>").  The uid line is what the
 * writer claims; the daemon believes only the file's owner.
 *
 * Security: the directory is 01733, so any local user may create a file
 * in it but none may list it, or remove or rename another's file.  Files
 * are mode 0644 so that the daemon's user can read them; their random
 * 128-bit names are the secret that keeps other users out.  The daemon
 * treats every file as hostile: no symlinks, no FIFOs (opened
 * non-blocking), no hard links, bounded sizes, the same content rules as
 * SMTP.  Rejected files are moved to corrupt/ and no failure report is
 * sent: the injector checks the same rules first and reports to its
 * caller, so only forged or damaged files end there.
 *
 * Durability: a message is committed to the spool before its maildrop
 * file is removed; a crash in between delivers it twice, never zero times.
 */
#include "config.h"

#include "maildrop.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "log.h"
#include "spool.h"
#include "util.h"
#include "xtext.h"

#define MAILDROP_MAGIC		"smartrelay-maildrop 1"
#define MAILDROP_NUM_WIDTH	20	/* digits of UINT64_MAX */
/* "sender " or "rcpt " and the longest xtext address, with the LF. */
#define MAILDROP_LINE_MAX	(16 + 3 * (SMTP_ADDR_BUFSZ - 1))
#define MAILDROP_BUF_SIZE	(64 * 1024)	/* body read buffer */
#define MAILDROP_RETRY_SECS	60	/* after a temporary failure */
#define MAILDROP_STALE_SECS	86400	/* age of an abandoned .tmp. file */
#define MAILDROP_CORRUPT_PREFIX	"maildrop-"

/*
 * The format.
 */

static bool
maildrop_addr_is_ok(const char *s, bool allow_empty)
{
	size_t	i, len = strlen(s);

	if ((len == 0 && !allow_empty) || len > SMTP_ADDR_BUFSZ - 1)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
			return false;
	return true;
}

char *
maildrop_format(const struct maildrop_env *env, size_t *len)
{
	char	*out, *p;
	size_t	 i, cap;

	if (env->nrcpt == 0 || env->sender == NULL ||
	    !maildrop_addr_is_ok(env->sender, true)) {
		errno = EINVAL;
		return NULL;
	}
	for (i = 0; i < env->nrcpt; i++)
		if (!maildrop_addr_is_ok(env->rcpts[i], false)) {
			errno = EINVAL;
			return NULL;
		}
	cap = maildrop_header_max(env->nrcpt);
	p = out = xmalloc(cap);
	p += snprintf(p, cap, MAILDROP_MAGIC "\nuid %lu\nsender ", env->uid);
	if (env->sender[0] == '\0') {
		memcpy(p, "<>", 2);
		p += 2;
	} else
		p = xtext_put(p, env->sender);
	for (i = 0; i < env->nrcpt; i++) {
		memcpy(p, "\nrcpt ", 6);
		p = xtext_put(p + 6, env->rcpts[i]);
	}
	p += snprintf(p, cap - (size_t)(p - out), "\nsize %0*" PRIu64 "\n\n",
	    MAILDROP_NUM_WIDTH, env->size);
	*len = (size_t)(p - out);
	return out;
}

size_t
maildrop_header_max(size_t max_rcpts)
{
	/* The magic, uid and size lines share the first line's room. */
	return (max_rcpts + 3) * MAILDROP_LINE_MAX;
}

/* Decodes xtext <s>/<len> into a new string; NULL when malformed or when
 * the address would not pass maildrop_addr_is_ok(). */
static char *
maildrop_xtext_get(const char *s, size_t len)
{
	char	*out = xtext_decode(s, len);

	if (out != NULL && !maildrop_addr_is_ok(out, false)) {
		free(out);
		return NULL;
	}
	return out;
}

/* The next LF-terminated line of at most MAILDROP_LINE_MAX octets at
 * *pos (before <end>), without its LF.  Advances *pos. */
static bool
maildrop_next_line(const char **pos, const char *end, const char **line,
    size_t *len)
{
	size_t		 avail = (size_t)(end - *pos);
	const char	*lf;

	if (avail > MAILDROP_LINE_MAX)
		avail = MAILDROP_LINE_MAX;
	if ((lf = memchr(*pos, '\n', avail)) == NULL)
		return false;
	*line = *pos;
	*len = (size_t)(lf - *pos);
	*pos = lf + 1;
	return true;
}

/* True when <line> is "<key> <value>"; the value goes to <val>/<vlen>. */
static bool
maildrop_key(const char *line, size_t len, const char *key, const char **val,
    size_t *vlen)
{
	size_t	klen = strlen(key);

	if (len <= klen || memcmp(line, key, klen) != 0 || line[klen] != ' ')
		return false;
	*val = line + klen + 1;
	*vlen = len - klen - 1;
	return true;
}

static bool
maildrop_number(const char *s, size_t len, uint64_t *out)
{
	uint64_t	v = 0, d;
	size_t		i;

	if (len == 0 || len > MAILDROP_NUM_WIDTH)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		d = (uint64_t)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

int
maildrop_parse(const char *buf, size_t len, uint64_t total, size_t max_rcpts,
    struct maildrop_env *env, size_t *hdrlen, const char **reason)
{
	const char	*pos = buf, *end = buf + len, *line, *val;
	size_t		 llen, vlen;
	uint64_t	 n;
	char		*addr;

	memset(env, 0, sizeof(*env));
	*reason = "bad-magic";
	if (!maildrop_next_line(&pos, end, &line, &llen) ||
	    llen != strlen(MAILDROP_MAGIC) ||
	    memcmp(line, MAILDROP_MAGIC, llen) != 0)
		goto fail;
	*reason = "bad-uid";
	if (!maildrop_next_line(&pos, end, &line, &llen) ||
	    !maildrop_key(line, llen, "uid", &val, &vlen) ||
	    !maildrop_number(val, vlen, &n) || n > ULONG_MAX)
		goto fail;
	env->uid = (unsigned long)n;
	*reason = "bad-sender";
	if (!maildrop_next_line(&pos, end, &line, &llen) ||
	    !maildrop_key(line, llen, "sender", &val, &vlen))
		goto fail;
	if (vlen == 2 && memcmp(val, "<>", 2) == 0)
		env->sender = xstrdup("");
	else if ((env->sender = maildrop_xtext_get(val, vlen)) == NULL)
		goto fail;
	for (;;) {
		*reason = "truncated";
		if (!maildrop_next_line(&pos, end, &line, &llen))
			goto fail;
		if (!maildrop_key(line, llen, "rcpt", &val, &vlen))
			break;
		*reason = "too-many-rcpts";
		if (env->nrcpt >= max_rcpts)
			goto fail;
		*reason = "bad-rcpt";
		if ((addr = maildrop_xtext_get(val, vlen)) == NULL)
			goto fail;
		env->rcpts = xrealloc(env->rcpts,
		    (env->nrcpt + 1) * sizeof(*env->rcpts));
		env->rcpts[env->nrcpt++] = addr;
	}
	*reason = env->nrcpt == 0 ? "no-rcpt" : "bad-size";
	if (env->nrcpt == 0 || !maildrop_key(line, llen, "size", &val, &vlen) ||
	    !maildrop_number(val, vlen, &env->size))
		goto fail;
	*reason = "no-end";
	if (!maildrop_next_line(&pos, end, &line, &llen) || llen != 0)
		goto fail;
	*hdrlen = (size_t)(pos - buf);
	*reason = "size-mismatch";
	if (env->size > total || total - env->size != *hdrlen)
		goto fail;
	*reason = NULL;
	return 0;
fail:
	maildrop_env_cleanup(env);
	return -1;
}

void
maildrop_env_cleanup(struct maildrop_env *env)
{
	size_t	i;

	for (i = 0; i < env->nrcpt; i++)
		free(env->rcpts[i]);
	free(env->rcpts);
	free(env->sender);
	memset(env, 0, sizeof(*env));
}

/*
 * Canonical lines.
 */

void
maildrop_canon_init(struct maildrop_canon *c, uint64_t max_size,
    uint64_t initial_size)
{
	/* Local input ends lines in LF: never reject bare LF here. */
	smtp_data_init(&c->data, max_size, false, initial_size);
}

enum smtp_data_err
maildrop_canon_line(struct maildrop_canon *c, const char *line, size_t len,
    const char **out, size_t *outlen)
{
	*out = line;
	*outlen = 0;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	/*
	 * smtp_data_line() unstuffs one leading dot and ends the message at
	 * a lone ".": stuff the line first, so that neither happens to text
	 * that was never SMTP-framed.  A stuffed line that does not fit is
	 * over the line limit anyway.
	 */
	if (len > 0 && line[0] == '.') {
		if (len + 1 > sizeof(c->stuffed)) {
			smtp_data_overlong(&c->data, true);
			return c->data.err;
		}
		c->stuffed[0] = '.';
		memcpy(c->stuffed + 1, line, len);
		line = c->stuffed;
		len++;
	}
	if (smtp_data_line(&c->data, line, len, true, out, outlen) ==
	    SMTP_DATA_END)
		fatalx("maildrop: end of data on a stuffed line");
	return c->data.err;
}

/*
 * The daemon side.
 */

struct maildrop {
	struct event_base	*base;
	const struct conf	*conf;
	struct spool		*spool;
	void			(*queued)(const char *, void *);
	void			*arg;
	char			*path;		/* SPOOL/maildrop */
	int			 dirfd;
	int			 corruptfd;
	int			 inotifyfd;
	struct event		*ev_inotify;
	struct event		*ev_retry;
	char			*buf;		/* MAILDROP_BUF_SIZE octets */
};

/* What became of one file. */
enum maildrop_result {
	MAILDROP_DONE,		/* queued, or moved aside */
	MAILDROP_GONE,		/* not there (already picked up) */
	MAILDROP_RETRY,		/* temporary failure: left in place */
};

/* One file being picked up. */
struct maildrop_file {
	const char		*name;
	int			 fd;
	struct stat		 st;
	struct maildrop_env	 env;
	size_t			 hdrlen;
	struct spool_msg	*msg;
	struct maildrop_canon	 canon;
};

static char *
maildrop_path(const char *spool)
{
	size_t	 len = strlen(spool) + sizeof("/" MAILDROP_DIR);
	char	*path = xmalloc(len);

	snprintf(path, len, "%s/%s", spool, MAILDROP_DIR);
	return path;
}

int
maildrop_prepare(const char *spool)
{
	char	*path = maildrop_path(spool);
	int	 fd = -1, rc = -1;

	if (mkdir(path, 0700) == -1 && errno != EEXIST) {
		log_warn("maildrop cannot create %s", path);
		goto out;
	}
	/* fchmod on what we opened: a symlink planted there fails. */
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || fchmod(fd, MAILDROP_DIR_MODE) == -1) {
		log_warn("maildrop cannot set mode %04o on %s",
		    MAILDROP_DIR_MODE, path);
		goto out;
	}
	close(fd);
	if ((fd = open(spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fchmod(fd, MAILDROP_SPOOL_MODE) == -1) {
		log_warn("maildrop cannot set mode %04o on %s",
		    MAILDROP_SPOOL_MODE, spool);
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	free(path);
	return rc;
}

/* Moves a rejected file to corrupt/ (or, when that name is taken,
 * removes it) and says why. */
static void
maildrop_reject(struct maildrop *md, struct maildrop_file *f,
    const char *reason)
{
	char	 esc[3 * NAME_MAX + 8], dst[NAME_MAX + 16];
	long	 uid = f->fd != -1 ? (long)f->st.st_uid : -1;

	str_log_escape(f->name, strlen(f->name), esc, sizeof(esc));
	if (snprintf(dst, sizeof(dst), MAILDROP_CORRUPT_PREFIX "%s",
	    f->name) >= (int)sizeof(dst) ||
	    renameat2(md->dirfd, f->name, md->corruptfd, dst,
	    RENAME_NOREPLACE) == -1) {
		if (unlinkat(md->dirfd, f->name, 0) == -1)
			log_warn("maildrop cannot remove file=%s", esc);
		log_warnx("maildrop rejected file=%s uid=%ld reason=\"%s\" "
		    "removed", esc, uid, reason);
		return;
	}
	log_warnx("maildrop rejected file=%s uid=%ld reason=\"%s\" "
	    "moved=corrupt/" MAILDROP_CORRUPT_PREFIX "%s", esc, uid, reason,
	    esc);
}

/* Opens and checks a file.  On MAILDROP_DONE, f->fd is open and the
 * caller goes on; a rejected file has been dealt with (f->fd == -1). */
static enum maildrop_result
maildrop_open_file(struct maildrop *md, struct maildrop_file *f)
{
	const struct conf	*conf = md->conf;
	const char		*why = NULL;
	uint64_t		 max;

	/* No symlink, and a FIFO must not block the loop. */
	f->fd = openat(md->dirfd, f->name, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (f->fd == -1) {
		if (errno == ENOENT)
			return MAILDROP_GONE;
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
		    errno == EIO || errno == EINTR) {
			log_warn("maildrop cannot open a file, will retry");
			return MAILDROP_RETRY;
		}
		maildrop_reject(md, f, strerror(errno));
		return MAILDROP_DONE;
	}
	max = conf->max_message_size +
	    maildrop_header_max(conf->max_recipients);
	if (fstat(f->fd, &f->st) == -1)
		why = "fstat failed";
	else if (!S_ISREG(f->st.st_mode))
		why = "not a regular file";
	else if (f->st.st_nlink != 1)
		why = "hard link";
	else if ((uint64_t)f->st.st_size > max)
		why = "too large";
	if (why != NULL) {
		maildrop_reject(md, f, why);
		close(f->fd);
		f->fd = -1;
	}
	return MAILDROP_DONE;
}

/* Reads exactly <len> octets at <off>; -1 with errno (0: end of file). */
static int
maildrop_pread(int fd, char *buf, size_t len, off_t off)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = pread(fd, buf, len, off)) == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Reads and checks the header.  Returns NULL or why the file is bad. */
static const char *
maildrop_read_header(struct maildrop *md, struct maildrop_file *f)
{
	size_t		 i, max = maildrop_header_max(md->conf->max_recipients);
	size_t		 len = (uint64_t)f->st.st_size < max ?
			    (size_t)f->st.st_size : max;
	char		*buf = xmalloc(len > 0 ? len : 1);
	const char	*reason;

	if (maildrop_pread(f->fd, buf, len, 0) == -1)
		reason = "short read";
	else if (maildrop_parse(buf, len, (uint64_t)f->st.st_size,
	    md->conf->max_recipients, &f->env, &f->hdrlen, &reason) == 0) {
		if (f->env.sender[0] != '\0' &&
		    !smtp_mailbox_is_valid(f->env.sender))
			reason = "bad sender address";
		for (i = 0; i < f->env.nrcpt && reason == NULL; i++)
			if (!smtp_mailbox_is_valid(f->env.rcpts[i]))
				reason = "bad recipient address";
	}
	free(buf);
	return reason;
}

/* Writes the trace header (RFC 5321 4.4) that starts the message. */
static int
maildrop_write_received(struct maildrop *md, struct maildrop_file *f)
{
	char		date[64], hdr[1024];
	int		n;

	time_fmt(time_wall(), TIME_RFC5322, date, sizeof(date));
	n = snprintf(hdr, sizeof(hdr), "Received: (from uid %lu)\r\n\tby %s "
	    "(smartrelay-sendmail) id %s;\r\n\t%s\r\n",
	    (unsigned long)f->st.st_uid, md->conf->hostname,
	    spool_msg_id(f->msg), date);
	if (n < 0 || (size_t)n >= sizeof(hdr) || n > MAILDROP_RECEIVED_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return spool_msg_write(f->msg, hdr, (size_t)n);
}

/* Feeds one line to the spool message.  Returns NULL or why not. */
static const char *
maildrop_copy_line(struct maildrop_file *f, const char *line, size_t len)
{
	const char		*out;
	size_t			 outlen;
	enum smtp_data_err	 err;

	err = maildrop_canon_line(&f->canon, line, len, &out, &outlen);
	if (err != SMTP_DATA_OK)
		return smtp_data_err_reply(err);
	if (spool_msg_write(f->msg, out, outlen) == -1 ||
	    spool_msg_write(f->msg, "\r\n", 2) == -1)
		return "";		/* our write failed, not the file */
	return NULL;
}

/* Streams the message into f->msg, line by line, through the same rules
 * as SMTP DATA.  Returns NULL, "" for a read or write error (retry), or
 * why the content is refused. */
static const char *
maildrop_copy_body(struct maildrop *md, struct maildrop_file *f)
{
	const char	*p, *lf, *why = NULL;
	uint64_t	 left = f->env.size;
	off_t		 off = (off_t)f->hdrlen;
	size_t		 have = 0, n, rest;

	while (why == NULL) {
		n = MAILDROP_BUF_SIZE - have;
		if (n > left)
			n = (size_t)left;
		if (n > 0 &&
		    maildrop_pread(f->fd, md->buf + have, n, off) == -1)
			return errno == 0 ? "file shrank" : "";
		have += n;
		off += (off_t)n;
		left -= n;
		p = md->buf;
		while (why == NULL && (lf = memchr(p, '\n',
		    (size_t)(md->buf + have - p))) != NULL) {
			why = maildrop_copy_line(f, p, (size_t)(lf - p));
			p = lf + 1;
		}
		rest = (size_t)(md->buf + have - p);
		if (why != NULL || (left == 0 && rest == 0))
			break;
		if (left == 0)			/* a last line without LF */
			return maildrop_copy_line(f, p, rest);
		if (rest == MAILDROP_BUF_SIZE)	/* far over the line limit */
			return smtp_data_err_reply(SMTP_DATA_ELONG);
		memmove(md->buf, p, rest);
		have = rest;
	}
	return why;
}

/* Builds and commits the spool message for an opened, checked file. */
static enum maildrop_result
maildrop_queue(struct maildrop *md, struct maildrop_file *f)
{
	char		 helo[32], id[SPOOL_ID_LEN + 1];
	char		 esc[4 * SMTP_ADDR_BUFSZ];
	const char	*why;
	size_t		 i;

	snprintf(helo, sizeof(helo), "uid %lu", (unsigned long)f->st.st_uid);
	if ((f->msg = spool_msg_new(md->spool, f->env.sender, "local",
	    helo)) == NULL)
		return MAILDROP_RETRY;
	for (i = 0; i < f->env.nrcpt; i++)
		if (spool_msg_add_rcpt(f->msg, f->env.rcpts[i]) == -1)
			goto retry;
	if (maildrop_write_received(md, f) == -1)
		goto retry;
	maildrop_canon_init(&f->canon, md->conf->max_message_size,
	    spool_msg_size(f->msg));
	if ((why = maildrop_copy_body(md, f)) != NULL) {
		if (why[0] == '\0')
			goto retry;
		spool_abort(f->msg);
		f->msg = NULL;
		maildrop_reject(md, f, why);
		return MAILDROP_DONE;
	}
	snprintf(id, sizeof(id), "%s", spool_msg_id(f->msg));
	i = (size_t)spool_msg_size(f->msg);
	if (spool_commit(f->msg) == -1) {
		f->msg = NULL;
		return MAILDROP_RETRY;
	}
	f->msg = NULL;
	log_info("maildrop queued id=%s uid=%lu claimed_uid=%lu from=<%s> "
	    "nrcpt=%zu size=%zu", id, (unsigned long)f->st.st_uid,
	    f->env.uid, str_log_escape(f->env.sender, strlen(f->env.sender),
	    esc, sizeof(esc)), f->env.nrcpt, i);
	/* Committed first, removed second: a crash in between means a
	 * duplicate at the next start, never a loss. */
	if (unlinkat(md->dirfd, f->name, 0) == -1)
		log_warn("maildrop cannot remove picked-up file, id=%s may be "
		    "queued twice", id);
	md->queued(id, md->arg);
	return MAILDROP_DONE;
retry:
	log_warn("maildrop cannot write the spool, will retry");
	spool_abort(f->msg);
	f->msg = NULL;
	return MAILDROP_RETRY;
}

/* Picks up one file of maildrop/. */
static enum maildrop_result
maildrop_pickup(struct maildrop *md, const char *name)
{
	struct maildrop_file	 f;
	enum maildrop_result	 res;
	const char		*why;

	memset(&f, 0, sizeof(f));
	f.name = name;
	if ((res = maildrop_open_file(md, &f)) != MAILDROP_DONE ||
	    f.fd == -1)
		return res;
	if ((why = maildrop_read_header(md, &f)) != NULL)
		maildrop_reject(md, &f, why);
	else
		res = maildrop_queue(md, &f);
	maildrop_env_cleanup(&f.env);
	close(f.fd);
	return res;
}

/* Arms the retry timer after a temporary failure: the only timer this
 * module ever sets, so an idle maildrop costs no wake-ups. */
static void
maildrop_retry_later(struct maildrop *md)
{
	struct timeval	tv = { MAILDROP_RETRY_SECS, 0 };

	if (!evtimer_pending(md->ev_retry, NULL))
		evtimer_add(md->ev_retry, &tv);
}

/* Removes a ".tmp." file an injector left behind a day ago or more
 * (it crashed; its caller was told the message was not accepted). */
static void
maildrop_clean_stale(struct maildrop *md, const char *name)
{
	struct stat	st;

	if (strncmp(name, MAILDROP_TMP_PREFIX,
	    strlen(MAILDROP_TMP_PREFIX)) != 0 ||
	    fstatat(md->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode) ||
	    st.st_mtime > time(NULL) - MAILDROP_STALE_SECS)
		return;
	if (unlinkat(md->dirfd, name, 0) == 0)
		log_notice("maildrop removed an abandoned temporary file "
		    "uid=%ld", (long)st.st_uid);
}

/* Picks up every file in the directory; at startup also cleans up. */
static void
maildrop_scan(struct maildrop *md, bool startup)
{
	DIR		*dir;
	struct dirent	*de;
	int		 fd;
	long		 n = 0;
	bool		 retry = false;

	if ((fd = dup(md->dirfd)) == -1 || (dir = fdopendir(fd)) == NULL) {
		log_warn("maildrop cannot read %s, will retry", md->path);
		if (fd != -1)
			close(fd);
		maildrop_retry_later(md);
		return;
	}
	rewinddir(dir);
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.') {
			if (startup)
				maildrop_clean_stale(md, de->d_name);
			continue;
		}
		switch (maildrop_pickup(md, de->d_name)) {
		case MAILDROP_DONE:
			n++;
			break;
		case MAILDROP_RETRY:
			retry = true;
			break;
		case MAILDROP_GONE:
			break;
		}
	}
	closedir(dir);
	if (retry)
		maildrop_retry_later(md);
	if (n > 0)
		log_info("maildrop scanned files=%ld", n);
}

static void
maildrop_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	maildrop_scan(arg, false);
}

/* inotify reports renames into (and closes after writing in) maildrop/.
 * Names are picked up one by one; a queue overflow means a full scan. */
static void
maildrop_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct maildrop			*md = arg;
	char				 buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event	*ev;
	ssize_t				 n;
	char				*p;
	bool				 rescan = false, retry = false;

	(void)what;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				rescan = true;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF))
				log_warnx("maildrop %s was removed: mail from "
				    "smartrelay-sendmail is not picked up "
				    "until a restart", md->path);
			if (ev->len == 0 || ev->name[0] == '.' ||
			    (ev->mask & (IN_MOVED_TO | IN_CLOSE_WRITE)) == 0)
				continue;
			if (maildrop_pickup(md, ev->name) == MAILDROP_RETRY)
				retry = true;
		}
	}
	if (n == -1 && errno != EAGAIN && errno != EINTR)
		log_warn("maildrop inotify read");
	if (rescan)
		maildrop_scan(md, false);
	if (retry)
		maildrop_retry_later(md);
}

static int
maildrop_open_dirs(struct maildrop *md)
{
	int	spoolfd;

	if ((spoolfd = open(md->conf->spool, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		return -1;
	if (mkdirat(spoolfd, "corrupt", 0700) == -1 && errno != EEXIST) {
		close(spoolfd);
		return -1;
	}
	md->dirfd = openat(spoolfd, MAILDROP_DIR, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	md->corruptfd = openat(spoolfd, "corrupt", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	close(spoolfd);
	return md->dirfd == -1 || md->corruptfd == -1 ? -1 : 0;
}

struct maildrop *
maildrop_new(struct event_base *base, const struct conf *conf,
    struct spool *spool, void (*queued)(const char *, void *), void *arg)
{
	struct maildrop	*md = xcalloc(1, sizeof(*md));

	md->base = base;
	md->conf = conf_ref(conf);
	md->spool = spool;
	md->queued = queued;
	md->arg = arg;
	md->path = maildrop_path(conf->spool);
	md->dirfd = md->corruptfd = md->inotifyfd = -1;
	md->buf = xmalloc(MAILDROP_BUF_SIZE);
	if (maildrop_open_dirs(md) == -1) {
		log_warn("maildrop cannot open %s", md->path);
		goto fail;
	}
	/* Watch first, then scan: a file arriving in between is seen at
	 * least once (a second look finds it gone). */
	if ((md->inotifyfd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1 ||
	    inotify_add_watch(md->inotifyfd, md->path, IN_MOVED_TO |
	    IN_CLOSE_WRITE | IN_ONLYDIR | IN_DONT_FOLLOW | IN_DELETE_SELF |
	    IN_MOVE_SELF) == -1) {
		log_warn("maildrop cannot watch %s", md->path);
		goto fail;
	}
	md->ev_inotify = event_new(base, md->inotifyfd, EV_READ | EV_PERSIST,
	    maildrop_inotify_cb, md);
	md->ev_retry = evtimer_new(base, maildrop_retry_cb, md);
	if (md->ev_inotify == NULL || md->ev_retry == NULL ||
	    event_add(md->ev_inotify, NULL) == -1) {
		log_warnx("maildrop cannot set up events");
		goto fail;
	}
	maildrop_scan(md, true);
	return md;
fail:
	maildrop_free(md);
	return NULL;
}

void
maildrop_set_conf(struct maildrop *md, const struct conf *conf)
{
	conf_free(md->conf);
	md->conf = conf_ref(conf);
}

void
maildrop_free(struct maildrop *md)
{
	if (md == NULL)
		return;
	if (md->ev_inotify != NULL)
		event_free(md->ev_inotify);
	if (md->ev_retry != NULL)
		event_free(md->ev_retry);
	if (md->inotifyfd != -1)
		close(md->inotifyfd);
	if (md->dirfd != -1)
		close(md->dirfd);
	if (md->corruptfd != -1)
		close(md->corruptfd);
	free(md->buf);
	free(md->path);
	conf_free(md->conf);
	free(md);
}
