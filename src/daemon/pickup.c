/*
 * pickup.c - the daemon's side of the maildrop (maildrop.h has the file
 * format): watches SPOOL/maildrop with inotify and moves each file into
 * the spool, treating every file as hostile (see maildrop.c's header for
 * the directory's modes and what keeps local users apart).
 *
 * Durability: a message is committed to the spool before its maildrop
 * file is removed; a crash in between delivers it twice, never zero times.
 *
 * Threads: names are queued on the loop and picked up one at a time on
 * the worker threads (worker.h): opening, checking and copying the file
 * into the spool (up to max_message_size, with the reads and writes that
 * takes) never stall the loop.  The loop then commits the message with
 * spool_commit_start() (the sync on the workers too, sharing theirs) and
 * only once it is on disk logs it, removes the file and reports it.  A
 * job touches only its own file, the job's reference to the config, and
 * the pickup's directory fds and buffer, which one job at a time uses.
 */
#include "config.h"

#include "pickup.h"

#include <sys/inotify.h>
#include <sys/queue.h>
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
#include "maildrop.h"
#include "route.h"
#include "spool.h"
#include "util.h"
#include "worker.h"

#define PICKUP_BUF_SIZE	(64 * 1024)	/* body read buffer */
#define PICKUP_RETRY_SECS	60	/* after a temporary failure */
#define PICKUP_STALE_SECS	86400	/* age of an abandoned .tmp. file */
#define PICKUP_CORRUPT_PREFIX	"maildrop-"

/* A name waiting for its turn. */
struct pickup_name {
	STAILQ_ENTRY(pickup_name) entry;
	char			 name[];
};
STAILQ_HEAD(pickup_names, pickup_name);

struct pickup {
	struct event_base	*base;
	const struct conf	*conf;
	struct spool		*spool;
	struct worker		*worker;
	void			(*queued)(const char *, void *);
	void			(*ready)(void *);
	void			*arg;
	struct pickup_names	 todo;		/* names to pick up, in order */
	struct pickup_job	*running;	/* on a worker or committing */
	bool			 starting;	/* the startup scan's files */
	bool			 freed;		/* pickup_free() waits for
						 * <running> */
	long			 nscanned;	/* by the last scan */
	struct event		*ev_ready;
	char			*path;		/* SPOOL/maildrop */
	int			 dirfd;
	int			 corruptfd;
	int			 inotifyfd;
	struct event		*ev_inotify;
	struct event		*ev_retry;
	char			*buf;		/* PICKUP_BUF_SIZE octets */
};

/* What became of one file. */
enum pickup_result {
	PICKUP_DONE,		/* queued, or moved aside */
	PICKUP_GONE,		/* not there (already picked up) */
	PICKUP_RETRY,		/* temporary failure: left in place */
};

/* One file being picked up. */
struct pickup_file {
	const struct conf	*conf;		/* the job's reference */
	const char		*name;
	int			 fd;
	struct stat		 st;
	struct maildrop_env	 env;
	size_t			 nrcpt;		/* once routed */
	size_t			 hdrlen;
	struct spool_msg	*msg;
	struct maildrop_canon	 canon;
};

/* One pickup: the file's work on a worker thread, then its commit. */
struct pickup_job {
	struct pickup		*md;
	struct pickup_file	 f;
	enum pickup_result	 res;
	uint64_t		 size;		/* of the spool message */
	char			*name;
};

static char *
pickup_path(const char *spool)
{
	size_t	 len = strlen(spool) + sizeof("/" MAILDROP_DIR);
	char	*path = xmalloc(len);

	snprintf(path, len, "%s/%s", spool, MAILDROP_DIR);
	return path;
}

int
pickup_prepare(const char *spool)
{
	char	*path = pickup_path(spool);
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
pickup_reject(struct pickup *md, struct pickup_file *f,
    const char *reason)
{
	char	 esc[3 * NAME_MAX + 8], dst[NAME_MAX + 16];
	long	 uid = f->fd != -1 ? (long)f->st.st_uid : -1;

	str_log_escape(f->name, strlen(f->name), esc, sizeof(esc));
	if (snprintf(dst, sizeof(dst), PICKUP_CORRUPT_PREFIX "%s",
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
	    "moved=corrupt/" PICKUP_CORRUPT_PREFIX "%s", esc, uid, reason,
	    esc);
}

/* Opens and checks a file.  On PICKUP_DONE, f->fd is open and the
 * caller goes on; a rejected file has been dealt with (f->fd == -1). */
static enum pickup_result
pickup_open_file(struct pickup *md, struct pickup_file *f)
{
	const struct conf	*conf = f->conf;
	const char		*why = NULL;
	uint64_t		 max;

	/* No symlink, and a FIFO must not block the loop. */
	f->fd = openat(md->dirfd, f->name, O_RDONLY | O_NOFOLLOW |
	    O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (f->fd == -1) {
		if (errno == ENOENT)
			return PICKUP_GONE;
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
		    errno == EIO || errno == EINTR) {
			log_warn("maildrop cannot open a file, will retry");
			return PICKUP_RETRY;
		}
		pickup_reject(md, f, strerror(errno));
		return PICKUP_DONE;
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
		pickup_reject(md, f, why);
		close(f->fd);
		f->fd = -1;
	}
	return PICKUP_DONE;
}

/* Reads exactly <len> octets at <off>; -1 with errno (0: end of file). */
static int
pickup_pread(int fd, char *buf, size_t len, off_t off)
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
pickup_read_header(struct pickup_file *f)
{
	size_t		 i, max = maildrop_header_max(f->conf->max_recipients);
	size_t		 len = (uint64_t)f->st.st_size < max ?
			    (size_t)f->st.st_size : max;
	char		*buf = xmalloc(len > 0 ? len : 1);
	const char	*reason;

	if (pickup_pread(f->fd, buf, len, 0) == -1)
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
pickup_write_received(struct pickup_file *f)
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
pickup_copy(struct pickup_file *f, const char *p, size_t len, bool more)
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
pickup_copy_body(struct pickup *md, struct pickup_file *f)
{
	const char	*p, *lf, *why = NULL;
	uint64_t	 left = f->env.size;
	off_t		 off = (off_t)f->hdrlen;
	size_t		 have = 0, n, rest;

	while (why == NULL) {
		n = PICKUP_BUF_SIZE - have;
		if (n > left)
			n = (size_t)left;
		if (n > 0 &&
		    pickup_pread(f->fd, md->buf + have, n, off) == -1)
			return errno == 0 ? "file shrank" : "";
		have += n;
		off += (off_t)n;
		left -= n;
		p = md->buf;
		while (why == NULL && (lf = memchr(p, '\n',
		    (size_t)(md->buf + have - p))) != NULL) {
			why = pickup_copy(f, p, (size_t)(lf - p), false);
			p = lf + 1;
		}
		rest = (size_t)(md->buf + have - p);
		if (why != NULL || (left == 0 && rest == 0))
			break;
		if (left == 0)			/* a last line without LF */
			return pickup_copy(f, p, rest, false);
		if (rest == PICKUP_BUF_SIZE) {
			/* A CR at the end may be the start of CRLF: it
			 * waits for the next piece. */
			n = md->buf[rest - 1] == '\r' ? rest - 1 : rest;
			if ((why = pickup_copy(f, p, n, true)) != NULL)
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
pickup_add_rcpts(struct pickup_file *f)
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
static enum pickup_result
pickup_queue(struct pickup *md, struct pickup_file *f)
{
	char		 helo[32];
	const char	*why;

	snprintf(helo, sizeof(helo), "uid %lu", (unsigned long)f->st.st_uid);
	if ((f->msg = spool_msg_new(md->spool, f->env.sender, "local",
	    helo)) == NULL)
		return PICKUP_RETRY;
	if ((why = pickup_add_rcpts(f)) != NULL) {
		if (why[0] == '\0')
			goto retry;
		spool_abort(f->msg);
		f->msg = NULL;
		pickup_reject(md, f, why);
		return PICKUP_DONE;
	}
	if (pickup_write_received(f) == -1)
		goto retry;
	maildrop_canon_init(&f->canon, f->conf->max_message_size,
	    spool_msg_size(f->msg));
	if ((why = pickup_copy_body(md, f)) != NULL) {
		if (why[0] == '\0')
			goto retry;
		spool_abort(f->msg);
		f->msg = NULL;
		pickup_reject(md, f, why);
		return PICKUP_DONE;
	}
	/* Ready: the loop commits f->msg (pickup_job_done()). */
	return PICKUP_DONE;
retry:
	log_warn("maildrop cannot write the spool, will retry");
	spool_abort(f->msg);
	f->msg = NULL;
	return PICKUP_RETRY;
}

static void	pickup_retry_later(struct pickup *);
static void	pickup_next(struct pickup *);
static void	pickup_free_now(struct pickup *);

/* On a worker thread: one file of maildrop/, up to a message ready to
 * commit in job->f.msg (or dealt with: rejected, gone, to retry). */
static void
pickup_job_run(void *arg)
{
	struct pickup_job	*job = arg;
	struct pickup		*md = job->md;
	struct pickup_file	*f = &job->f;
	const char		*why;

	f->name = job->name;
	if ((job->res = pickup_open_file(md, f)) != PICKUP_DONE ||
	    f->fd == -1)
		return;
	if ((why = pickup_read_header(f)) != NULL)
		pickup_reject(md, f, why);
	else
		job->res = pickup_queue(md, f);
	if (f->msg != NULL)
		job->size = spool_msg_size(f->msg);
	close(f->fd);
	f->fd = -1;
}

/* The job is over: the next name's turn. */
static void
pickup_job_end(struct pickup_job *job)
{
	struct pickup	*md = job->md;

	if (job->res == PICKUP_DONE)
		md->nscanned++;
	if (job->res == PICKUP_RETRY && !md->freed)
		pickup_retry_later(md);
	maildrop_env_cleanup(&job->f.env);
	conf_free(job->f.conf);
	free(job->name);
	free(job);
	md->running = NULL;
	if (md->freed)
		pickup_free_now(md);
	else
		pickup_next(md);
}

/* The message is on disk, or not: log, remove the file, report. */
static void
pickup_committed_cb(const char *id, int err, void *arg)
{
	struct pickup_job	*job = arg;
	struct pickup		*md = job->md;
	struct pickup_file	*f = &job->f;
	char			 esc[4 * SMTP_ADDR_BUFSZ];

	if (err != 0) {
		log_warnx("maildrop cannot commit to the spool, will retry");
		job->res = PICKUP_RETRY;
		pickup_job_end(job);
		return;
	}
	log_info("maildrop queued id=%s uid=%lu claimed_uid=%lu from=<%s> "
	    "nrcpt=%zu size=%" PRIu64, id, (unsigned long)f->st.st_uid,
	    f->env.uid, str_log_escape(f->env.sender, strlen(f->env.sender),
	    esc, sizeof(esc)), f->nrcpt, job->size);
	/* Committed first, removed second: a crash in between means a
	 * duplicate at the next start, never a loss. */
	if (unlinkat(md->dirfd, job->name, 0) == -1)
		log_warn("maildrop cannot remove picked-up file, id=%s may be "
		    "queued twice", id);
	/* At shutdown the queue finds it at the next start. */
	if (!md->freed)
		md->queued(id, md->arg);
	pickup_job_end(job);
}

/* On the loop: the worker's part is over. */
static void
pickup_job_done(void *arg)
{
	struct pickup_job	*job = arg;
	struct spool_msg	*msg = job->f.msg;

	job->f.msg = NULL;
	if (msg == NULL)
		pickup_job_end(job);
	else if (job->md->freed) {
		/* Stopping: the file stays for the next start. */
		spool_abort(msg);
		pickup_job_end(job);
	} else
		spool_commit_start(msg, pickup_committed_cb, job);
}

/* Hands the next name to the workers, one at a time; once the startup
 * scan's names are done, says so. */
static void
pickup_next(struct pickup *md)
{
	struct pickup_name	*n;
	struct pickup_job	*job;
	struct timeval		 now = { 0, 0 };

	if (md->running != NULL)
		return;
	if ((n = STAILQ_FIRST(&md->todo)) == NULL) {
		if (md->nscanned > 0)
			log_info("maildrop picked up files=%ld", md->nscanned);
		md->nscanned = 0;
		if (md->starting) {
			md->starting = false;
			evtimer_add(md->ev_ready, &now);
		}
		return;
	}
	STAILQ_REMOVE_HEAD(&md->todo, entry);
	job = xcalloc(1, sizeof(*job));
	job->md = md;
	job->name = xstrdup(n->name);
	job->f.fd = -1;
	job->f.conf = conf_ref(md->conf);
	free(n);
	md->running = job;
	worker_submit(md->worker, pickup_job_run, pickup_job_done, job);
}

/* Queues one name of maildrop/ for pickup_next(). */
static void
pickup_one(struct pickup *md, const char *name)
{
	struct pickup_name	*n;
	size_t			 len = strlen(name) + 1;

	n = xmalloc(sizeof(*n) + len);
	memcpy(n->name, name, len);
	STAILQ_INSERT_TAIL(&md->todo, n, entry);
}

static void
pickup_ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pickup	*md = arg;

	(void)fd;
	(void)what;
	if (md->ready != NULL)
		md->ready(md->arg);
}

/* Arms the retry timer after a temporary failure: the only timer this
 * module ever sets, so an idle maildrop costs no wake-ups. */
static void
pickup_retry_later(struct pickup *md)
{
	struct timeval	tv = { PICKUP_RETRY_SECS, 0 };

	if (!evtimer_pending(md->ev_retry, NULL))
		evtimer_add(md->ev_retry, &tv);
}

/* Removes a ".tmp." file an injector left behind a day ago or more
 * (it crashed; its caller was told the message was not accepted). */
static void
pickup_clean_stale(struct pickup *md, const char *name)
{
	struct stat	st;

	if (strncmp(name, MAILDROP_TMP_PREFIX,
	    strlen(MAILDROP_TMP_PREFIX)) != 0 ||
	    fstatat(md->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISREG(st.st_mode) ||
	    st.st_mtime > time(NULL) - PICKUP_STALE_SECS)
		return;
	if (unlinkat(md->dirfd, name, 0) == 0)
		log_notice("maildrop removed an abandoned temporary file "
		    "uid=%ld", (long)st.st_uid);
}

/* Picks up every file in the directory; at startup also cleans up. */
static void
pickup_scan(struct pickup *md, bool startup)
{
	DIR		*dir;
	struct dirent	*de;
	int		 fd;

	if ((fd = dup(md->dirfd)) == -1 || (dir = fdopendir(fd)) == NULL) {
		log_warn("maildrop cannot read %s, will retry", md->path);
		if (fd != -1)
			close(fd);
		pickup_retry_later(md);
		return;
	}
	rewinddir(dir);
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.') {
			if (startup)
				pickup_clean_stale(md, de->d_name);
			continue;
		}
		pickup_one(md, de->d_name);
	}
	closedir(dir);
	pickup_next(md);
}

static void
pickup_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pickup_scan(arg, false);
}

/* inotify reports renames into (and closes after writing in) maildrop/.
 * Names are picked up one by one; a queue overflow means a full scan. */
static void
pickup_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pickup			*md = arg;
	char				 buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event	*ev;
	ssize_t				 n;
	char				*p;
	bool				 rescan = false;

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
			pickup_one(md, ev->name);
		}
	}
	if (n == -1 && errno != EAGAIN && errno != EINTR)
		log_warn("maildrop inotify read");
	if (rescan)
		pickup_scan(md, false);
	else
		pickup_next(md);
}

static int
pickup_open_dirs(struct pickup *md)
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

struct pickup *
pickup_new(struct event_base *base, const struct conf *conf,
    struct spool *spool, struct worker *worker,
    void (*queued)(const char *, void *), void (*ready)(void *), void *arg)
{
	struct pickup	*md = xcalloc(1, sizeof(*md));

	md->base = base;
	md->conf = conf_ref(conf);
	md->spool = spool;
	md->worker = worker;
	md->queued = queued;
	md->ready = ready;
	md->arg = arg;
	STAILQ_INIT(&md->todo);
	md->path = pickup_path(conf->spool);
	md->dirfd = md->corruptfd = md->inotifyfd = -1;
	md->buf = xmalloc(PICKUP_BUF_SIZE);
	if (pickup_open_dirs(md) == -1) {
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
	    pickup_inotify_cb, md);
	md->ev_retry = evtimer_new(base, pickup_retry_cb, md);
	md->ev_ready = evtimer_new(base, pickup_ready_cb, md);
	if (md->ev_inotify == NULL || md->ev_retry == NULL ||
	    md->ev_ready == NULL ||
	    event_add(md->ev_inotify, NULL) == -1) {
		log_warnx("maildrop cannot set up events");
		goto fail;
	}
	md->starting = true;
	pickup_scan(md, true);
	return md;
fail:
	pickup_free(md);
	return NULL;
}

void
pickup_set_conf(struct pickup *md, const struct conf *conf)
{
	conf_free(md->conf);
	md->conf = conf_ref(conf);
}

void
pickup_free(struct pickup *md)
{
	if (md == NULL)
		return;
	/* A job on a worker uses the directory fds and the buffer: the
	 * rest waits for it (worker_free() runs it to its end). */
	if (md->running != NULL) {
		md->freed = true;
		return;
	}
	pickup_free_now(md);
}

static void
pickup_free_now(struct pickup *md)
{
	struct pickup_name	*n;

	while ((n = STAILQ_FIRST(&md->todo)) != NULL) {
		STAILQ_REMOVE_HEAD(&md->todo, entry);
		free(n);
	}
	if (md->ev_ready != NULL)
		event_free(md->ev_ready);
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
