/*
 * pickupfile.c - one maildrop file into a spool message, on a worker
 * thread (pickup.c hands the files out, one at a time).  Every file is
 * hostile: opened without following links or blocking, checked (regular,
 * one link, bounded size), its header parsed, its recipients routed as
 * SMTP recipients are, and its body streamed through the same rules as
 * SMTP DATA.  A rejected file is moved to corrupt/ with a log line.
 */
#include "config.h"

#include "pickupfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "route.h"
#include "spool.h"
#include "util.h"

#define PICKUPFILE_CORRUPT_PREFIX	"maildrop-"

/* Moves a rejected file to corrupt/ (or, when that name is taken,
 * removes it) and says why. */
static void
pickupfile_reject(const struct pickupfile_dirs *md, struct pickupfile *f,
    const char *reason)
{
	char	 esc[3 * NAME_MAX + 8], dst[NAME_MAX + 16];
	long	 uid = f->fd != -1 ? (long)f->st.st_uid : -1;

	str_log_escape(f->name, strlen(f->name), esc, sizeof(esc));
	if (snprintf(dst, sizeof(dst), PICKUPFILE_CORRUPT_PREFIX "%s",
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
	    "moved=corrupt/" PICKUPFILE_CORRUPT_PREFIX "%s", esc, uid, reason,
	    esc);
}

/* Opens and checks a file.  On PICKUPFILE_DONE, f->fd is open and the
 * caller goes on; a rejected file has been dealt with (f->fd == -1). */
static enum pickupfile_result
pickupfile_open_file(const struct pickupfile_dirs *md, struct pickupfile *f)
{
	const struct conf	*conf = f->conf;
	const char		*why = NULL;
	uint64_t		 max;

	/* No symlink, and a FIFO must not block the loop. */
	f->fd = openat(md->dirfd, f->name, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (f->fd == -1) {
		if (errno == ENOENT)
			return PICKUPFILE_GONE;
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
		    errno == EIO || errno == EINTR) {
			log_warn("maildrop cannot open a file, will retry");
			return PICKUPFILE_RETRY;
		}
		pickupfile_reject(md, f, strerror(errno));
		return PICKUPFILE_DONE;
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
		pickupfile_reject(md, f, why);
		close(f->fd);
		f->fd = -1;
	}
	return PICKUPFILE_DONE;
}

/* Reads exactly <len> octets at <off>; -1 with errno (0: end of file). */
static int
pickupfile_pread(int fd, char *buf, size_t len, off_t off)
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
pickupfile_read_header(struct pickupfile *f)
{
	size_t		 i, max = maildrop_header_max(f->conf->max_recipients);
	size_t		 len = (uint64_t)f->st.st_size < max ?
			    (size_t)f->st.st_size : max;
	char		*buf = xmalloc(len > 0 ? len : 1);
	const char	*reason;

	if (pickupfile_pread(f->fd, buf, len, 0) == -1)
		reason = "short read";
	else if (maildrop_parse(buf, len, (uint64_t)f->st.st_size,
	    f->conf->max_recipients, &f->env, &f->hdrlen, &reason) == 0) {
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
pickupfile_write_received(struct pickupfile *f)
{
	char		date[64], hdr[1024];
	int		n;

	time_fmt(time_wall(), TIME_RFC5322, date, sizeof(date));
	n = snprintf(hdr, sizeof(hdr), "Received: (from uid %lu)\r\n\tby %s "
	    "(smartrelay-sendmail) id %s;\r\n\t%s\r\n",
	    (unsigned long)f->st.st_uid, f->conf->hostname,
	    spool_msg_id(f->msg), date);
	if (n < 0 || (size_t)n >= sizeof(hdr) || n > MAILDROP_RECEIVED_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return spool_msg_write(f->msg, hdr, (size_t)n);
}

/* Feeds one line to the spool message, or with <more> a piece of a
 * line longer than the buffer.  Returns NULL, or why not ("" when our
 * own write failed, not the file). */
static const char *
pickupfile_copy(struct pickupfile *f, const char *p, size_t len, bool more)
{
	const char		*out;
	size_t			 outlen;
	enum smtp_data_err	 err;

	err = more ? maildrop_canon_piece(&f->canon, p, len, &out, &outlen) :
	    maildrop_canon_line(&f->canon, p, len, &out, &outlen);
	if (err != SMTP_DATA_OK)
		return smtp_data_err_reply(err);
	if (spool_msg_write(f->msg, out, outlen) == -1 ||
	    (!more && spool_msg_write(f->msg, "\r\n", 2) == -1))
		return "";
	return NULL;
}

/* Streams the message into f->msg, line by line, through the same rules
 * as SMTP DATA.  A line longer than the buffer goes in pieces: it is
 * content (issue 13), bounded by the message size only.  Returns NULL,
 * "" for a read or write error (retry), or why the content is
 * refused. */
static const char *
pickupfile_copy_body(const struct pickupfile_dirs *md, struct pickupfile *f)
{
	const char	*p, *lf, *why = NULL;
	uint64_t	 left = f->env.size;
	off_t		 off = (off_t)f->hdrlen;
	size_t		 have = 0, n, rest;

	while (why == NULL) {
		n = PICKUPFILE_BUF_SIZE - have;
		if (n > left)
			n = (size_t)left;
		if (n > 0 &&
		    pickupfile_pread(f->fd, md->buf + have, n, off) == -1)
			return errno == 0 ? "file shrank" : "";
		have += n;
		off += (off_t)n;
		left -= n;
		p = md->buf;
		while (why == NULL && (lf = memchr(p, '\n',
		    (size_t)(md->buf + have - p))) != NULL) {
			why = pickupfile_copy(f, p, (size_t)(lf - p), false);
			p = lf + 1;
		}
		rest = (size_t)(md->buf + have - p);
		if (why != NULL || (left == 0 && rest == 0))
			break;
		if (left == 0)			/* a last line without LF */
			return pickupfile_copy(f, p, rest, false);
		if (rest == PICKUPFILE_BUF_SIZE) {
			/* A CR at the end may be the start of CRLF: it
			 * waits for the next piece. */
			n = md->buf[rest - 1] == '\r' ? rest - 1 : rest;
			if ((why = pickupfile_copy(f, p, n, true)) != NULL)
				break;
			p += n;
			rest -= n;
		}
		memmove(md->buf, p, rest);
		have = rest;
	}
	return why;
}

/*
 * Adds the recipients of the file to f->msg, routed as SMTP recipients
 * are (route.h), once each, logging each local name's rewriting.
 * Returns NULL, "" when the spool write failed (retry), or why the file
 * is refused: the injector checked the same rules, so only a changed
 * configuration, or a file not written by it, gets there.
 */
static const char *
pickupfile_add_rcpts(struct pickupfile *f)
{
	struct route_result	 res, all;
	char			 err[256], orig[4 * SMTP_ADDR_BUFSZ];
	char			 list[1024];
	const char		*why = NULL;
	size_t			 i;

	memset(&all, 0, sizeof(all));
	for (i = 0; i < f->env.nrcpt && why == NULL; i++) {
		if (route_rcpt(&f->conf->route, f->env.rcpts[i], &res, err,
		    sizeof(err)) == -1)
			why = "a recipient cannot be routed";
		else if (route_result_merge(&all, &res,
		    f->conf->max_recipients) == -1)
			why = "too many recipients once aliases are expanded";
		else if (res.how != ROUTE_REMOTE)
			log_info("maildrop rcpt id=%s original=<%s> "
			    "rewritten=%s via=%s", spool_msg_id(f->msg),
			    str_log_escape(f->env.rcpts[i],
			    strlen(f->env.rcpts[i]), orig, sizeof(orig)),
			    route_result_fmt(&res, list, sizeof(list)),
			    route_how_name(res.how));
		route_result_cleanup(&res);
	}
	for (i = 0; i < all.naddrs && why == NULL; i++)
		if (spool_msg_add_rcpt(f->msg, all.addrs[i]) == -1)
			why = "";
	f->nrcpt = all.naddrs;
	route_result_cleanup(&all);
	return why;
}

/* Builds the spool message for an opened, checked file, in f->msg for
 * the commit; NULL there when the file was rejected. */
static enum pickupfile_result
pickupfile_queue(const struct pickupfile_dirs *md, struct pickupfile *f)
{
	char		 helo[32];
	const char	*why;

	snprintf(helo, sizeof(helo), "uid %lu", (unsigned long)f->st.st_uid);
	if ((f->msg = spool_msg_new(md->spool, f->env.sender, "local",
	    helo)) == NULL)
		return PICKUPFILE_RETRY;
	/* sendmail -B8BITMIME (cron), passed on (RFC 6152). */
	spool_msg_set_mime(f->msg, f->env.body, false);
	if ((why = pickupfile_add_rcpts(f)) != NULL) {
		if (why[0] == '\0')
			goto retry;
		spool_abort(f->msg);
		f->msg = NULL;
		pickupfile_reject(md, f, why);
		return PICKUPFILE_DONE;
	}
	if (pickupfile_write_received(f) == -1)
		goto retry;
	maildrop_canon_init(&f->canon, f->conf->max_message_size,
	    spool_msg_size(f->msg));
	if ((why = pickupfile_copy_body(md, f)) != NULL) {
		if (why[0] == '\0')
			goto retry;
		spool_abort(f->msg);
		f->msg = NULL;
		pickupfile_reject(md, f, why);
		return PICKUPFILE_DONE;
	}
	/* Ready: the loop commits f->msg (pickup_job_done()). */
	return PICKUPFILE_DONE;
retry:
	log_warn("maildrop cannot write the spool, will retry");
	spool_abort(f->msg);
	f->msg = NULL;
	return PICKUPFILE_RETRY;
}

enum pickupfile_result
pickupfile_run(const struct pickupfile_dirs *md, struct pickupfile *f)
{
	enum pickupfile_result	 res;
	const char		*why;

	if ((res = pickupfile_open_file(md, f)) != PICKUPFILE_DONE ||
	    f->fd == -1)
		return res;
	if ((why = pickupfile_read_header(f)) != NULL)
		pickupfile_reject(md, f, why);
	else
		res = pickupfile_queue(md, f);
	close(f->fd);
	f->fd = -1;
	return res;
}
