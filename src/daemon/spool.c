/*
 * spool.c - the durable on-disk queue (layout in spool.h).
 *
 * Invariants: a message is queued iff queue/<id>.env exists; its data
 * file queue/<id>.msg is renamed in before it and never rewritten; an
 * envelope is only ever replaced whole, by rename(2).  The commit worker
 * thread touches only the messages handed to it and the two lists under
 * the lock; every other function runs on the caller's (main) thread.
 * No sockets and no event loop here.  The envelope text format lives
 * in envelope.c; this file only reads and writes envelope files.
 */
#include "config.h"

#include "spool.h"

#include <sys/file.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <aio.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mime.h"
#include "util.h"
#include "worker.h"

#define SPOOL_BUF_SIZE	(64 * 1024)	/* data write buffer per message */
#define SPOOL_NAME_MAX	(SPOOL_ID_LEN + 16)	/* "<id>.env.xxxxxxxx" */
#define SPOOL_ID_TRIES	100

enum spool_kind {
	SPOOL_K_COMMIT,		/* a new message */
	SPOOL_K_SAVE,		/* rewrite an envelope (text in buf) */
	SPOOL_K_REMOVE,		/* delete a delivered message */
	SPOOL_K_FAIL,		/* (save an envelope and) move to failed/ */
	SPOOL_K_REQUEUE,	/* back from failed/ (envelope text in buf) */
	SPOOL_K_NONE,		/* nothing to do: result already set */
};

struct spool_msg {
	STAILQ_ENTRY(spool_msg)	 entry;
	struct spool		*sp;
	enum spool_kind		 kind;
	struct envelope		 env;		/* id, sender, rcpts, ... */
	int			 fd;		/* tmp/<id>.msg, or -1 */
	char			*buf;		/* SPOOL_BUF_SIZE octets */
	size_t			 buflen;
	uint64_t		 size;
	struct mime_scan	 scan;		/* env.reencode at commit */
	int			 err;		/* first write error, or 0 */
	int			 result;	/* commit result, errno or 0 */
	spool_done_cb		 done;
	void			*arg;
};
STAILQ_HEAD(spool_msgq, spool_msg);

struct spool {
	char			*dir;		/* absolute path */
	int			 tmpfd;
	int			 queuefd;
	int			 failedfd;
	int			 corruptfd;
	int			 lockfd;	/* flock: one daemon per spool */
	unsigned int		 seed;		/* mixed into ids */
	atomic_uint		 counter;
	struct worker		*worker;	/* shared; borrowed */
	pthread_mutex_t		 lock;		/* guards the fields below */
	struct spool_msgq	 pending;	/* waiting for a worker */
	size_t			 npending;
};

/* One turn of a worker thread: the operations it took and ran. */
struct spool_job {
	struct spool		*sp;
	struct spool_msgq	 batch;
};

/*
 * Small helpers: names, ids, whole writes.
 */

/* "<id><suffix>" into <buf> of SPOOL_NAME_MAX octets. */
static char *
spool_name(char *buf, const char *id, const char *suffix)
{
	snprintf(buf, SPOOL_NAME_MAX, "%.*s%s", SPOOL_ID_LEN, id, suffix);
	return buf;
}

/* Splits "<id><suffix>" into <id>; -1 if <name> is not of that form. */
static int
spool_name_parse(const char *name, char *id, const char *suffix)
{
	if (strlen(name) != SPOOL_ID_LEN + strlen(suffix) ||
	    strcmp(name + SPOOL_ID_LEN, suffix) != 0)
		return -1;
	memcpy(id, name, SPOOL_ID_LEN);
	id[SPOOL_ID_LEN] = '\0';
	return envelope_id_is_valid(id) ? 0 : -1;
}

/* 11 hex digits of milliseconds since the epoch (good for 557 years;
 * microseconds would wrap every 203 days) then 5 of a per-process
 * counter offset by a random seed: sorted ids are roughly in arrival
 * order, and O_EXCL catches the rare clash. */
static void
spool_id_make(struct spool *sp, char *id)
{
	struct timespec	ts;
	uint64_t	ms;
	unsigned int	low;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	low = (sp->seed + atomic_fetch_add(&sp->counter, 1)) & 0xfffff;
	snprintf(id, SPOOL_ID_LEN + 1, "%011" PRIx64 "%05x",
	    ms & UINT64_C(0xfffffffffff), low);
}

/* write(2) may be short on a nearly full disk or past RLIMIT_FSIZE; the
 * next call then reports why, and that errno is what the caller sees. */
static int
spool_write_all(int fd, const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Creates <dirfd>/<name> (O_EXCL) holding the <len> octets at <p>,
 * fsynced and closed.  On failure the file is gone again and errno is
 * that of the failure. */
static int
spool_file_write(int dirfd, const char *name, const char *p, size_t len)
{
	int	fd, saved;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (fd == -1)
		return -1;
	if (spool_write_all(fd, p, len) == -1 || fsync(fd) == -1) {
		saved = errno;
		close(fd);
		unlinkat(dirfd, name, 0);
		errno = saved;
		return -1;
	}
	if (close(fd) == -1) {
		saved = errno;
		unlinkat(dirfd, name, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

/* A fresh DIR stream on the directory <dirfd> refers to. */
static DIR *
spool_dir_open(int dirfd)
{
	DIR	*d;
	int	 fd;

	if ((fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		return NULL;
	if ((d = fdopendir(fd)) == NULL)
		close(fd);
	return d;
}

/*
 * Envelope files.  The text itself is envelope.c's business.
 */

/* Reads <id>.env in the directory <dirfd> (queue/ or failed/) whole
 * into a new buffer.  The size is bounded before anything is allocated;
 * a file that grows while we read it is not one we wrote (envelopes are
 * replaced by rename), so it fails. */
static char *
spool_env_read(int dirfd, const char *id, size_t *len)
{
	char		 name[SPOOL_NAME_MAX], *buf;
	struct stat	 st;
	ssize_t		 n = 0;
	int		 fd, saved = 0;

	spool_name(name, id, ".env");
	/* O_NONBLOCK: a FIFO planted in queue/ must not hang startup. */
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	if (fd == -1)
		return NULL;
	if (fstat(fd, &st) == -1)
		saved = errno;
	else if (!S_ISREG(st.st_mode))
		saved = EINVAL;
	else if (st.st_size > ENVELOPE_MAX)
		saved = EFBIG;
	if (saved != 0) {
		close(fd);
		errno = saved;
		return NULL;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	*len = 0;
	while (*len <= (size_t)st.st_size) {	/* one more: EOF or grown */
		n = read(fd, buf + *len, (size_t)st.st_size + 1 - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	saved = errno;
	close(fd);
	if (n == -1 || *len > (size_t)st.st_size) {
		free(buf);
		errno = n == -1 ? saved : EAGAIN;
		return NULL;
	}
	return buf;
}

/* spool_env_load() from the directory <dirfd>; a missing file is
 * logged only when <quiet_enoent> is false. */
static int
spool_env_load_at(int dirfd, const char *id, struct envelope *env,
    bool quiet_enoent)
{
	struct envelope_error	 err;
	char			*buf;
	size_t			 len;
	int			 rc;

	memset(env, 0, sizeof(*env));
	if (!envelope_id_is_valid(id)) {
		log_warnx("spool envelope load: invalid id");
		errno = EINVAL;
		return -1;
	}
	if ((buf = spool_env_read(dirfd, id, &len)) == NULL) {
		if (errno != ENOENT || !quiet_enoent)
			log_warn("spool envelope load id=%s", id);
		return -1;
	}
	rc = envelope_parse(env, buf, len, id, &err);
	free(buf);
	if (rc == -1) {
		log_warnx("spool envelope corrupt id=%s line=%zu reason=%s",
		    id, err.line, err.reason);
		errno = EINVAL;
	}
	return rc;
}

int
spool_env_load(struct spool *sp, const char *id, struct envelope *env)
{
	return spool_env_load_at(sp->queuefd, id, env, false);
}

int
spool_failed_load(struct spool *sp, const char *id, struct envelope *env)
{
	return spool_env_load_at(sp->failedfd, id, env, true);
}


/*
 * Messages being written.
 */

struct spool_msg *
spool_msg_new(struct spool *sp, const char *sender, const char *client,
    const char *helo)
{
	struct spool_msg	*msg;
	struct stat		 st;
	char			 name[SPOOL_NAME_MAX];
	int			 tries, fd = -1;

	if (!envelope_field_is_valid(sender, true) ||
	    !envelope_field_is_valid(client != NULL ? client : "", true) ||
	    !envelope_field_is_valid(helo != NULL ? helo : "", true)) {
		log_warnx("spool new message: field too long");
		errno = EINVAL;
		return NULL;
	}
	/*
	 * The file is created now, on the caller's thread, so that a full
	 * or broken disk shows up before the client sends its data.
	 */
	msg = xcalloc(1, sizeof(*msg));
	for (tries = 0; tries < SPOOL_ID_TRIES && fd == -1; tries++) {
		spool_id_make(sp, msg->env.id);
		spool_name(name, msg->env.id, ".msg");
		fd = openat(sp->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (fd == -1 && errno != EEXIST)
			break;
		/* The id must not be taken in queue/ either. */
		if (fd != -1 && fstatat(sp->queuefd, name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0) {
			close(fd);
			unlinkat(sp->tmpfd, name, 0);
			fd = -1;
			errno = EEXIST;
		}
	}
	if (fd == -1) {
		log_warn("spool new message: create tmp/%s", name);
		free(msg);
		return NULL;
	}
	msg->sp = sp;
	msg->fd = fd;
	msg->buf = xmalloc(SPOOL_BUF_SIZE);
	msg->env.sender = xstrdup(sender);
	msg->env.client = xstrdup(client != NULL ? client : "");
	msg->env.helo = xstrdup(helo != NULL ? helo : "");
	msg->env.arrival = time_wall();
	mime_scan_init(&msg->scan);
	return msg;
}

const char *
spool_msg_id(const struct spool_msg *msg)
{
	return msg->env.id;
}

int
spool_msg_add_rcpt(struct spool_msg *msg, const char *rcpt)
{
	return envelope_add_rcpt(&msg->env, rcpt);
}

/* Writes out the buffer; a failure sticks to the message. */
static int
spool_msg_flush(struct spool_msg *msg)
{
	if (msg->err == 0 && msg->buflen > 0 &&
	    spool_write_all(msg->fd, msg->buf, msg->buflen) == -1)
		msg->err = errno;
	msg->buflen = 0;
	if (msg->err == 0)
		return 0;
	errno = msg->err;
	return -1;
}

/* Memory stays at one buffer per message whatever its size: each full
 * buffer goes to the page cache at once, and the commit's fsync waits
 * for the disk. */
int
spool_msg_write(struct spool_msg *msg, const void *data, size_t len)
{
	const char	*p = data;
	size_t		 n;

	while (msg->err == 0 && len > 0) {
		n = SPOOL_BUF_SIZE - msg->buflen;
		if (n > len)
			n = len;
		memcpy(msg->buf + msg->buflen, p, n);
		mime_scan_feed(&msg->scan, p, n);
		msg->buflen += n;
		msg->size += n;
		p += n;
		len -= n;
		if (msg->buflen == SPOOL_BUF_SIZE)
			spool_msg_flush(msg);
	}
	if (msg->err == 0)
		return 0;
	errno = msg->err;
	return -1;
}

uint64_t
spool_msg_size(const struct spool_msg *msg)
{
	return msg->size;
}

static void
spool_msg_free(struct spool_msg *msg)
{
	if (msg->fd != -1)
		close(msg->fd);
	free(msg->buf);
	envelope_cleanup(&msg->env);
	free(msg);
}

void
spool_abort(struct spool_msg *msg)
{
	char	name[SPOOL_NAME_MAX];

	if (msg == NULL)
		return;
	spool_name(name, msg->env.id, ".msg");
	if (unlinkat(msg->sp->tmpfd, name, 0) == -1 && errno != ENOENT)
		log_warn("spool abort id=%s", msg->env.id);
	spool_msg_free(msg);
}

/*
 * Commits.  The same code runs on the worker and, for spool_commit(), on
 * the caller's thread.
 */

static int	spool_op_fail(struct spool_msg *);
static int	spool_op_requeue(struct spool_msg *);

/* Takes every file of <msg> out of tmp/ and queue/ again. */
static void
spool_msg_unlink(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	char		 data[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];

	spool_name(data, msg->env.id, ".msg");
	spool_name(env, msg->env.id, ".env");
	/* Envelope first: without it the data is no message. */
	unlinkat(sp->queuefd, env, 0);
	unlinkat(sp->queuefd, data, 0);
	unlinkat(sp->tmpfd, env, 0);
	unlinkat(sp->tmpfd, data, 0);
}

/* Waits for the fsync started on <cb>.  Returns 0, or -1 with errno
 * that of the fsync. */
static int
spool_aio_wait(struct aiocb *cb)
{
	const struct aiocb	*list[1] = { cb };
	int			 err;

	while ((err = aio_error(cb)) == EINPROGRESS)
		aio_suspend(list, 1, NULL);
	if (aio_return(cb) == -1) {
		errno = err;
		return -1;
	}
	return 0;
}

/* The per-message half of a commit: data synced and closed, envelope
 * written and synced, both renamed into queue/ (data first, since the
 * envelope's arrival there is the commit point).  Returns 0 or an errno
 * value; on failure nothing of the message is left behind. */
static int
spool_msg_stage(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	char		 data[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];
	char		*text = NULL;
	const char	*step;
	struct aiocb	 cb;
	size_t		 len;
	int		 fd = msg->fd, err;
	bool		 async;

	spool_name(data, msg->env.id, ".msg");
	spool_name(env, msg->env.id, ".env");
	msg->env.size = msg->size;
	/* Lines over 998 octets, bare CRs, NULs: the relay re-encodes
	 * (mime.h); it need not read other messages twice to know. */
	msg->env.reencode = !mime_scan_is_clean(&msg->scan);
	step = "write";
	err = spool_msg_flush(msg);
	msg->fd = -1;			/* <fd> is closed below */
	if (err == -1)
		goto fail;
	/* The data's fsync runs on a helper thread while this one writes
	 * and syncs the envelope: two fsyncs side by side take little
	 * longer than one.  Both have ended before anything is renamed. */
	memset(&cb, 0, sizeof(cb));
	cb.aio_fildes = fd;
	cb.aio_sigevent.sigev_notify = SIGEV_NONE;
	async = aio_fsync(O_SYNC, &cb) == 0;
	step = "envelope";
	if (envelope_format(&msg->env, &text, &len) == -1 ||
	    spool_file_write(sp->tmpfd, env, text, len) == -1) {
		err = errno;
		if (async)
			spool_aio_wait(&cb);
		errno = err;
		goto fail;
	}
	step = "fsync";
	if (async ? spool_aio_wait(&cb) == -1 : fsync(fd) == -1)
		goto fail;
	step = "close";
	err = close(fd);
	fd = -1;
	if (err == -1)
		goto fail;
	step = "rename";
	if (renameat(sp->tmpfd, data, sp->queuefd, data) == -1 ||
	    renameat(sp->tmpfd, env, sp->queuefd, env) == -1)
		goto fail;
	free(text);
	return 0;
fail:
	err = errno;
	log_warn("spool commit failed id=%s step=%s", msg->env.id, step);
	if (fd != -1)
		close(fd);
	free(text);
	spool_msg_unlink(msg);
	return err;
}

/* An envelope rewrite off the loop: the text was formatted by the
 * caller into msg->buf.  Returns 0 or an errno value. */
static int
spool_op_save(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	char		 tmp[SPOOL_NAME_MAX], name[SPOOL_NAME_MAX];
	int		 tries, rc = -1, err;

	spool_name(name, msg->env.id, ".env");
	for (tries = 0; tries < SPOOL_ID_TRIES; tries++) {
		snprintf(tmp, sizeof(tmp), "%.*s.env.%08x", SPOOL_ID_LEN,
		    msg->env.id, (sp->seed + atomic_fetch_add(&sp->counter,
		    1)) & 0xffffffffu);
		if ((rc = spool_file_write(sp->tmpfd, tmp, msg->buf,
		    msg->buflen)) == 0 || errno != EEXIST)
			break;
	}
	if (rc == 0 && renameat(sp->tmpfd, tmp, sp->queuefd, name) == 0)
		return 0;
	err = errno;
	if (rc == 0)
		unlinkat(sp->tmpfd, tmp, 0);
	log_warn("spool envelope save id=%s", msg->env.id);
	return err;
}

/* A delivered message goes: envelope first (without it the data is no
 * message), then the data. */
static int
spool_op_remove(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	char		 data[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];

	spool_name(data, msg->env.id, ".msg");
	spool_name(env, msg->env.id, ".env");
	if (unlinkat(sp->queuefd, env, 0) == -1 && errno != ENOENT) {
		log_warn("spool remove id=%s file=envelope", msg->env.id);
		return errno;
	}
	if (unlinkat(sp->queuefd, data, 0) == -1 && errno != ENOENT)
		log_warn("spool remove id=%s file=data", msg->env.id);
	return 0;
}

/* Runs the operations in <batch>, setting each one's result; all of
 * them share one fsync of queue/. */
static void
spool_commit_batch(struct spool *sp, struct spool_msgq *batch)
{
	struct spool_msg	*msg;
	size_t			 staged = 0;
	int			 err;

	STAILQ_FOREACH(msg, batch, entry) {
		switch (msg->kind) {
		case SPOOL_K_COMMIT:
			msg->result = spool_msg_stage(msg);
			break;
		case SPOOL_K_SAVE:
			msg->result = spool_op_save(msg);
			break;
		case SPOOL_K_REMOVE:
			msg->result = spool_op_remove(msg);
			break;
		case SPOOL_K_FAIL:
			/* These sync what they change themselves. */
			msg->result = spool_op_fail(msg);
			continue;
		case SPOOL_K_REQUEUE:
			msg->result = spool_op_requeue(msg);
			continue;
		case SPOOL_K_NONE:
			continue;
		}
		if (msg->result == 0)
			staged++;
	}
	if (staged == 0 || fsync(sp->queuefd) == 0)
		return;
	/*
	 * The renames may not survive a power cut.  Take the messages out
	 * again and fail them: the clients get a 4xx and resend, so at
	 * worst a message is delivered twice, which we prefer to answering
	 * 250 for one that could be lost.
	 */
	err = errno;
	log_warn("spool commit: fsync queue/ failed, %zu operations failed",
	    staged);
	STAILQ_FOREACH(msg, batch, entry)
		if (msg->result == 0) {
			/* Saves and removals that may not have reached the
			 * disk are simply repeated later. */
			if (msg->kind == SPOOL_K_COMMIT)
				spool_msg_unlink(msg);
			msg->result = err;
		}
}

int
spool_commit(struct spool_msg *msg)
{
	struct spool_msgq	batch = STAILQ_HEAD_INITIALIZER(batch);
	int			err;

	STAILQ_INSERT_TAIL(&batch, msg, entry);
	spool_commit_batch(msg->sp, &batch);
	err = msg->result;
	spool_msg_free(msg);
	errno = err;
	return err == 0 ? 0 : -1;
}

static void	spool_enqueue(struct spool *, struct spool_msg *);

void
spool_commit_start(struct spool_msg *msg, spool_done_cb done, void *arg)
{
	struct spool	*sp = msg->sp;

	/* From here on only the worker touches <msg>, until it is back on
	 * the done list for spool_dispatch(). */
	msg->done = done;
	msg->arg = arg;
	spool_enqueue(sp, msg);
}

/* On a worker thread: takes a fair share of the pending operations, so
 * that the other threads sync in parallel with this one (fsyncs issued
 * at the same moment share the file system's journal commits), and runs
 * them as one batch.  Another job may have taken everything already. */
static void
spool_job_run(void *arg)
{
	struct spool_job	*job = arg;
	struct spool		*sp = job->sp;
	struct spool_msg	*msg;
	unsigned int		 nthreads = worker_threads(sp->worker);
	size_t			 take;

	pthread_mutex_lock(&sp->lock);
	take = (sp->npending + nthreads - 1) / nthreads;
	while (take-- > 0 && (msg = STAILQ_FIRST(&sp->pending)) != NULL) {
		STAILQ_REMOVE_HEAD(&sp->pending, entry);
		STAILQ_INSERT_TAIL(&job->batch, msg, entry);
		sp->npending--;
	}
	pthread_mutex_unlock(&sp->lock);
	if (!STAILQ_EMPTY(&job->batch))
		spool_commit_batch(sp, &job->batch);
}

/* On the loop: the batch's callbacks, in the order started. */
static void
spool_job_done(void *arg)
{
	struct spool_job	*job = arg;
	struct spool_msg	*msg;

	while ((msg = STAILQ_FIRST(&job->batch)) != NULL) {
		STAILQ_REMOVE_HEAD(&job->batch, entry);
		if (msg->done != NULL)
			msg->done(msg->env.id, msg->result, msg->arg);
		spool_msg_free(msg);
	}
	free(job);
}

/* Hands <msg> to the workers: one job per operation, each taking a
 * share of whatever is pending when it runs. */
static void
spool_enqueue(struct spool *sp, struct spool_msg *msg)
{
	struct spool_job	*job;

	job = xcalloc(1, sizeof(*job));
	job->sp = sp;
	STAILQ_INIT(&job->batch);
	pthread_mutex_lock(&sp->lock);
	STAILQ_INSERT_TAIL(&sp->pending, msg, entry);
	sp->npending++;
	pthread_mutex_unlock(&sp->lock);
	worker_submit(sp->worker, spool_job_run, spool_job_done, job);
}

/* An operation on a committed message, for the workers. */
static struct spool_msg *
spool_op_new(struct spool *sp, enum spool_kind kind, const char *id,
    spool_done_cb done, void *arg)
{
	struct spool_msg	*msg;

	msg = xcalloc(1, sizeof(*msg));
	msg->sp = sp;
	msg->kind = kind;
	msg->fd = -1;
	msg->done = done;
	msg->arg = arg;
	snprintf(msg->env.id, sizeof(msg->env.id), "%s", id);
	if (!envelope_id_is_valid(id)) {
		/* Reported through the normal path, never from here. */
		msg->kind = SPOOL_K_NONE;
		msg->result = EINVAL;
	}
	return msg;
}

void
spool_env_save_start(struct spool *sp, const struct envelope *env,
    spool_done_cb done, void *arg)
{
	struct spool_msg	*msg;

	msg = spool_op_new(sp, SPOOL_K_SAVE, env->id, done, arg);
	if (envelope_format(env, &msg->buf, &msg->buflen) == -1) {
		log_warnx("spool envelope save id=%s: invalid envelope",
		    env->id);
		/* Reported through the normal path, never from here. */
		msg->kind = SPOOL_K_NONE;
		msg->result = EINVAL;
	}
	spool_enqueue(sp, msg);
}

void
spool_remove_start(struct spool *sp, const char *id, spool_done_cb done,
    void *arg)
{
	spool_enqueue(sp, spool_op_new(sp, SPOOL_K_REMOVE, id, done, arg));
}

/* The synchronous form: the same work as a SAVE operation, on the
 * caller's thread, followed by the directory sync. */
int
spool_env_save(struct spool *sp, const struct envelope *env)
{
	struct spool_msg	*msg;
	int			 err;

	msg = spool_op_new(sp, SPOOL_K_SAVE, env->id, NULL, NULL);
	if (envelope_format(env, &msg->buf, &msg->buflen) == -1) {
		log_warnx("spool envelope save id=%s: invalid envelope",
		    env->id);
		err = EINVAL;
	} else if ((err = spool_op_save(msg)) == 0 &&
	    fsync(sp->queuefd) == -1) {
		err = errno;
		log_warn("spool envelope save id=%s: fsync queue/", env->id);
	}
	spool_msg_free(msg);
	errno = err;
	return err == 0 ? 0 : -1;
}

/*
 * Opening, recovery, closing.
 */

/* mkdir -p, new directories mode 0700. */
static int
spool_mkdirs(const char *dir)
{
	char	*path, *p, c;
	int	 rc = 0;

	if (dir[0] == '\0') {
		errno = ENOENT;
		return -1;
	}
	path = xstrdup(dir);
	for (p = path + 1; rc == 0; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		c = *p;
		*p = '\0';
		if (mkdir(path, 0700) == -1 && errno != EEXIST)
			rc = -1;
		*p = c;
		if (c == '\0')
			break;
	}
	free(path);
	return rc;
}

static int
spool_subdir_open(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) == -1 && errno != EEXIST)
		return -1;
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* The id part of a file name for log lines, or "-". */
static const char *
spool_log_id(const char *name, char *id)
{
	if (strlen(name) >= SPOOL_ID_LEN) {
		memcpy(id, name, SPOOL_ID_LEN);
		id[SPOOL_ID_LEN] = '\0';
		if (envelope_id_is_valid(id))
			return id;
	}
	return "-";
}

/* Handles one entry of queue/ at startup.  Readdir may or may not show
 * a file that an earlier entry's handling moved, hence ENOENT is fine. */
static void
spool_recover_entry(struct spool *sp, const char *name)
{
	struct envelope		 env;
	struct stat		 st;
	char			 id[SPOOL_ID_LEN + 1], other[SPOOL_NAME_MAX];
	char			 esc[128];
	const char		*why = NULL;

	str_log_escape(name, strlen(name), esc, sizeof(esc));
	if (spool_name_parse(name, id, ".msg") == 0) {
		if (fstatat(sp->queuefd, spool_name(other, id, ".env"), &st,
		    AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
			return;
		if (unlinkat(sp->queuefd, name, 0) == 0)
			log_warnx("spool recover remove id=%s file=queue/%s "
			    "reason=no-envelope", id, esc);
		else if (errno != ENOENT)
			log_warn("spool recover remove file=queue/%s", esc);
		return;
	}
	if (spool_name_parse(name, id, ".env") == -1)
		why = "unknown-name";
	else if (fstatat(sp->queuefd, spool_name(other, id, ".msg"), &st,
	    AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT)
		why = "no-data";
	else if (spool_env_load(sp, id, &env) == -1)
		/* Only bad content; an I/O error may pass. */
		why = errno == EINVAL || errno == EFBIG ? "corrupt-envelope" :
		    NULL;
	else
		envelope_cleanup(&env);
	if (why == NULL)
		return;
	if (renameat(sp->queuefd, name, sp->corruptfd, name) == -1) {
		if (errno != ENOENT)
			log_warn("spool recover quarantine file=queue/%s", esc);
		return;
	}
	log_warnx("spool recover quarantine id=%s file=queue/%s reason=%s",
	    spool_log_id(name, id), esc, why);
	if (strcmp(why, "corrupt-envelope") == 0 &&
	    renameat(sp->queuefd, other, sp->corruptfd, other) == 0)
		log_warnx("spool recover quarantine id=%s file=queue/%s "
		    "reason=%s", id, other, why);
}

/* Empties tmp/ (<queue> false) or checks every entry of queue/. */
static int
spool_recover_dir(struct spool *sp, bool queue)
{
	struct dirent	*de;
	DIR		*d;
	char		 id[SPOOL_ID_LEN + 1], esc[128];

	if ((d = spool_dir_open(queue ? sp->queuefd : sp->tmpfd)) == NULL)
		return -1;
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (de->d_name[0] == '.')	/* ".", "..", NFS leftovers */
			continue;
		if (queue) {
			spool_recover_entry(sp, de->d_name);
			continue;
		}
		str_log_escape(de->d_name, strlen(de->d_name), esc,
		    sizeof(esc));
		if (unlinkat(sp->tmpfd, de->d_name, 0) == 0)
			log_warnx("spool recover remove id=%s file=tmp/%s "
			    "reason=leftover", spool_log_id(de->d_name, id),
			    esc);
		else
			log_warn("spool recover remove file=tmp/%s", esc);
	}
	if (errno != 0) {
		closedir(d);
		return -1;
	}
	closedir(d);
	if (fsync(queue ? sp->queuefd : sp->tmpfd) == -1 ||
	    (queue && fsync(sp->corruptfd) == -1))
		return -1;
	return 0;
}

/* A message both in failed/ and in queue/ is one whose requeue was
 * interrupted after its envelope reached queue/ (spool_requeue()): the
 * queue's copy is the message, the failed/ names go.  Nothing else puts
 * an envelope in both. */
static int
spool_recover_requeued(struct spool *sp)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	char		 id[SPOOL_ID_LEN + 1], data[SPOOL_NAME_MAX];
	bool		 changed = false;

	if ((d = spool_dir_open(sp->failedfd)) == NULL)
		return -1;
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (spool_name_parse(de->d_name, id, ".env") == -1 ||
		    fstatat(sp->queuefd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if ((unlinkat(sp->failedfd, spool_name(data, id, ".msg"), 0) ==
		    -1 && errno != ENOENT) ||
		    unlinkat(sp->failedfd, de->d_name, 0) == -1) {
			log_warn("spool recover requeue id=%s", id);
			continue;
		}
		log_warnx("spool recover requeue id=%s: in the queue again, "
		    "removed from failed/", id);
		changed = true;
	}
	if (errno != 0) {
		closedir(d);
		return -1;
	}
	closedir(d);
	return changed ? fsync(sp->failedfd) : 0;
}

struct spool *
spool_open(const char *dir, struct worker *worker)
{
	struct spool	*sp;
	const char	*step;
	int		 dirfd = -1;

	/* Directories first, then recovery: nothing is handed to the
	 * workers before this returns. */
	sp = xcalloc(1, sizeof(*sp));
	sp->tmpfd = sp->queuefd = sp->failedfd = sp->corruptfd = -1;
	sp->lockfd = -1;
	sp->worker = worker;
	STAILQ_INIT(&sp->pending);
	pthread_mutex_init(&sp->lock, NULL);
	if (getrandom(&sp->seed, sizeof(sp->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(sp->seed))
		sp->seed = (unsigned int)getpid() * 2654435761u;
	step = "create";
	if (spool_mkdirs(dir) == -1 || (sp->dir = realpath(dir, NULL)) ==
	    NULL || (dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1)
		goto fail;
	/* Before recovery: it would delete another daemon's messages in
	 * progress.  The lock goes with the process, even after kill -9. */
	step = "lock (is another smartrelayd using this spool?)";
	if ((sp->lockfd = openat(dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1 || flock(sp->lockfd, LOCK_EX | LOCK_NB) ==
	    -1)
		goto fail;
	step = "subdirectories";
	if ((sp->tmpfd = spool_subdir_open(dirfd, "tmp")) == -1 ||
	    (sp->queuefd = spool_subdir_open(dirfd, "queue")) == -1 ||
	    (sp->failedfd = spool_subdir_open(dirfd, "failed")) == -1 ||
	    (sp->corruptfd = spool_subdir_open(dirfd, "corrupt")) == -1 ||
	    fsync(dirfd) == -1)
		goto fail;
	step = "recover";
	if (spool_recover_dir(sp, false) == -1 ||
	    spool_recover_dir(sp, true) == -1 ||
	    spool_recover_requeued(sp) == -1)
		goto fail;
	close(dirfd);
	return sp;
fail:
	log_warn("spool open dir=%s step=%s", dir, step);
	if (dirfd != -1)
		close(dirfd);
	spool_close(sp);
	return NULL;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	if (sp->npending > 0)
		fatalx("spool close: %zu operations in flight", sp->npending);
	if (sp->tmpfd != -1)
		close(sp->tmpfd);
	if (sp->queuefd != -1)
		close(sp->queuefd);
	if (sp->failedfd != -1)
		close(sp->failedfd);
	if (sp->corruptfd != -1)
		close(sp->corruptfd);
	if (sp->lockfd != -1)
		close(sp->lockfd);
	pthread_mutex_destroy(&sp->lock);
	free(sp->dir);
	free(sp);
}

/* spool_scan() of the directory <dirfd>, called <name> in the log. */
static long
spool_scan_at(struct spool *sp, int dirfd, const char *name,
    void (*cb)(const struct envelope *, void *), void *arg)
{
	struct envelope		 env;
	struct dirent		*de;
	DIR			*d;
	char			 id[SPOOL_ID_LEN + 1];
	long			 n = 0;

	if ((d = spool_dir_open(dirfd)) == NULL) {
		log_warn("spool scan dir=%s/%s", sp->dir, name);
		return -1;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		/* Only "<id>.env" names; anything else is not a message.
		 * One that went meanwhile (requeued, delivered) is no
		 * news. */
		if (spool_name_parse(de->d_name, id, ".env") == -1 ||
		    spool_env_load_at(dirfd, id, &env, true) == -1)
			continue;
		cb(&env, arg);
		envelope_cleanup(&env);
		n++;
	}
	if (errno != 0) {
		log_warn("spool scan dir=%s/%s", sp->dir, name);
		n = -1;
	}
	closedir(d);
	return n;
}

long
spool_scan(struct spool *sp, void (*cb)(const struct envelope *, void *),
    void *arg)
{
	return spool_scan_at(sp, sp->queuefd, "queue", cb, arg);
}

long
spool_scan_failed(struct spool *sp,
    void (*cb)(const struct envelope *, void *), void *arg)
{
	return spool_scan_at(sp, sp->failedfd, "failed", cb, arg);
}

int
spool_data_path(const struct spool *sp, const char *id, char *buf,
    size_t bufsz)
{
	int	n;

	if (!envelope_id_is_valid(id))
		return -1;
	n = snprintf(buf, bufsz, "%s/queue/%s.msg", sp->dir, id);
	return n < 0 || (size_t)n >= bufsz ? -1 : 0;
}

int
spool_remove(struct spool *sp, const char *id)
{
	char	data[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];
	int	rc = 0;

	if (!envelope_id_is_valid(id)) {
		errno = EINVAL;
		return -1;
	}
	spool_name(data, id, ".msg");
	spool_name(env, id, ".env");
	/* A missing envelope is reported, but its data still goes. */
	if (unlinkat(sp->queuefd, env, 0) == -1) {
		log_warn("spool remove id=%s file=envelope", id);
		if (errno != ENOENT)
			return -1;
		rc = -1;
	}
	if (unlinkat(sp->queuefd, data, 0) == -1 && errno != ENOENT) {
		log_warn("spool remove id=%s file=data", id);
		rc = -1;
	}
	if (fsync(sp->queuefd) == -1) {
		log_warn("spool remove id=%s fsync", id);
		return -1;
	}
	if (rc == -1)
		errno = ENOENT;
	return rc;
}

/*
 * Back from failed/ into the queue, in the order of a commit: the data
 * first (a hard link, so failed/ keeps its copy), then the envelope
 * through tmp/ and rename, then the queue/ sync; only then do the
 * failed/ names go.  A crash before the envelope leaves data without an
 * envelope in queue/, which startup deletes: the message is still in
 * failed/.  A crash after it leaves the message in both, and startup
 * finishes the job (spool_recover_requeued()).  The envelope's text is
 * in msg->buf.  Returns 0 or an errno value.
 */
static int
spool_op_requeue(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	struct stat	 st;
	char		 data[SPOOL_NAME_MAX], name[SPOOL_NAME_MAX];
	int		 err;

	spool_name(data, msg->env.id, ".msg");
	spool_name(name, msg->env.id, ".env");
	if (fstatat(sp->queuefd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return EEXIST;
	if (linkat(sp->failedfd, data, sp->queuefd, data, 0) == -1) {
		err = errno;
		if (err != ENOENT)
			log_warn("spool requeue id=%s file=data", msg->env.id);
		return err;
	}
	if ((err = spool_op_save(msg)) != 0 || fsync(sp->queuefd) == -1) {
		/* The envelope may be in queue/ without being durable: it
		 * goes again, and so does the data link. */
		if (err == 0) {
			err = errno;
			log_warn("spool requeue id=%s: fsync queue/",
			    msg->env.id);
		}
		unlinkat(sp->queuefd, name, 0);
		unlinkat(sp->queuefd, data, 0);
		fsync(sp->queuefd);
		return err;
	}
	/* Data first: a failed/ envelope left alone is what startup looks
	 * for; a data file left alone would be found by nobody. */
	if (unlinkat(sp->failedfd, data, 0) == -1 ||
	    unlinkat(sp->failedfd, name, 0) == -1 || fsync(sp->failedfd) == -1)
		log_warn("spool requeue id=%s: cannot remove from failed/ "
		    "(the next start does)", msg->env.id);
	return 0;
}

/* Moves message msg->env.id to failed/; with envelope text in msg->buf,
 * that envelope replaces the queue's first.  Returns 0 or an errno
 * value. */
static int
spool_op_fail(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	const char	*id = msg->env.id;
	char		 data[SPOOL_NAME_MAX], env[SPOOL_NAME_MAX];
	int		 err;

	if (msg->buf != NULL && (err = spool_op_save(msg)) != 0)
		return err;
	spool_name(data, id, ".msg");
	spool_name(env, id, ".env");
	/*
	 * Data first: a crash in between leaves an envelope without data,
	 * which startup sets aside in corrupt/, rather than data without
	 * an envelope, which startup would delete.
	 */
	if (renameat(sp->queuefd, data, sp->failedfd, data) == -1) {
		err = errno;
		log_warn("spool move to failed/ id=%s file=data", id);
		return err;
	}
	if (renameat(sp->queuefd, env, sp->failedfd, env) == -1) {
		err = errno;
		log_warn("spool move to failed/ id=%s file=envelope", id);
		renameat(sp->failedfd, data, sp->queuefd, data);
		return err;
	}
	if (fsync(sp->failedfd) == -1 || fsync(sp->queuefd) == -1) {
		err = errno;
		log_warn("spool move to failed/ id=%s fsync", id);
		return err;
	}
	return 0;
}

/* A new operation of <kind> on <env> for the workers, its envelope text
 * formatted now into msg->buf (a bad envelope is reported as EINVAL by
 * the normal path, never from here). */
static struct spool_msg *
spool_op_env_new(struct spool *sp, enum spool_kind kind,
    const struct envelope *env, spool_done_cb done, void *arg)
{
	struct spool_msg	*msg;

	msg = spool_op_new(sp, kind, env->id, done, arg);
	if (!envelope_id_is_valid(env->id) ||
	    envelope_format(env, &msg->buf, &msg->buflen) == -1) {
		log_warnx("spool id=%s: invalid envelope", env->id);
		msg->kind = SPOOL_K_NONE;
		msg->result = EINVAL;
	}
	return msg;
}

/* Runs one operation of kind <kind> on the caller's thread: the tests'
 * synchronous forms. */
static int
spool_op_sync(struct spool_msg *msg)
{
	struct spool_msgq	batch = STAILQ_HEAD_INITIALIZER(batch);
	int			err;

	STAILQ_INSERT_TAIL(&batch, msg, entry);
	spool_commit_batch(msg->sp, &batch);
	err = msg->result;
	spool_msg_free(msg);
	errno = err;
	return err == 0 ? 0 : -1;
}

int
spool_requeue(struct spool *sp, const struct envelope *env)
{
	return spool_op_sync(spool_op_env_new(sp, SPOOL_K_REQUEUE, env, NULL,
	    NULL));
}

void
spool_requeue_start(struct spool *sp, const struct envelope *env,
    spool_done_cb done, void *arg)
{
	spool_enqueue(sp, spool_op_env_new(sp, SPOOL_K_REQUEUE, env, done,
	    arg));
}

int
spool_move_failed(struct spool *sp, const char *id)
{
	return spool_op_sync(spool_op_new(sp, SPOOL_K_FAIL, id, NULL, NULL));
}

void
spool_move_failed_start(struct spool *sp, const struct envelope *env,
    spool_done_cb done, void *arg)
{
	spool_enqueue(sp, spool_op_env_new(sp, SPOOL_K_FAIL, env, done, arg));
}
