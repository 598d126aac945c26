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
 * the worker threads (worker.h) by pickupfile.c: opening, checking and
 * copying the file into the spool (up to max_message_size, with the
 * reads and writes that takes) never stall the loop.  The loop then
 * commits the message with spool_commit_start() (the sync on the
 * workers too, sharing theirs) and only once it is on disk logs it,
 * removes the file and reports it.  A job touches only its own file,
 * the job's reference to the config, and the pickup's directory fds and
 * buffer, which one job at a time uses.
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
#include "pickupfile.h"
#include "spool.h"
#include "util.h"
#include "worker.h"

#define PICKUP_RETRY_SECS	60	/* after a temporary failure */
#define PICKUP_STALE_SECS	86400	/* age of an abandoned .tmp. file */

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
	bool			 starting;	/* until the startup scan's
						 * files are done */
	size_t			 startup_left;	/* of those, not yet done */
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
	char			*buf;		/* PICKUPFILE_BUF_SIZE octets,
						 * for the job running */
};

/* One pickup: the file's work on a worker thread, then its commit. */
struct pickup_job {
	struct pickup		*md;
	struct pickupfile	 f;
	enum pickupfile_result	 res;
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
	struct pickupfile_dirs	 dirs = { md->dirfd, md->corruptfd, md->spool,
				    md->buf };

	job->f.name = job->name;
	job->res = pickupfile_run(&dirs, &job->f);
	if (job->f.msg != NULL)
		job->size = spool_msg_size(job->f.msg);
}

/* The job is over: the next name's turn. */
static void
pickup_job_end(struct pickup_job *job)
{
	struct pickup	*md = job->md;

	if (job->res == PICKUPFILE_DONE)
		md->nscanned++;
	if (job->res == PICKUPFILE_RETRY && !md->freed)
		pickup_retry_later(md);
	maildrop_env_cleanup(&job->f.env);
	conf_free(job->f.conf);
	free(job->name);
	free(job);
	md->running = NULL;
	if (md->starting && md->startup_left > 0)
		md->startup_left--;
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
	struct pickupfile	*f = &job->f;
	char			 esc[4 * SMTP_ADDR_BUFSZ];

	if (err != 0) {
		log_warnx("maildrop cannot commit to the spool, will retry");
		job->res = PICKUPFILE_RETRY;
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
	/* They are the first names in line: files arriving meanwhile do
	 * not delay the ready line. */
	if (md->starting && md->startup_left == 0) {
		md->starting = false;
		evtimer_add(md->ev_ready, &now);
	}
	if ((n = STAILQ_FIRST(&md->todo)) == NULL) {
		if (md->nscanned > 0)
			log_info("maildrop picked up files=%ld", md->nscanned);
		md->nscanned = 0;
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
		pickup_next(md);	/* at startup: ready all the same */
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
		if (startup)
			md->startup_left++;
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
	md->buf = xmalloc(PICKUPFILE_BUF_SIZE);
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
