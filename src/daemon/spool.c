/*
 * spool.c - the durable on-disk queue (layout in spool.h).
 *
 * Invariants: a message is queued iff queue/<id>.env exists; its data
 * file queue/<id>.msg is renamed in before it and never rewritten; an
 * envelope is only ever replaced whole, by rename(2).  Every fsync runs
 * on the worker threads (worker.h), in batches that spoolbatch.c
 * schedules: a job there touches only the operations of its batch;
 * every other function runs on the loop's thread.  No sockets and no event
 * loop here.  The envelope text format lives in envelope.c, file
 * operations by fd in spooldir.c, startup recovery in spoolrecover.c.
 */
#include "config.h"

#include "spool.h"

#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mime_scan.h"
#include "spoolbatch.h"
#include "spooldir.h"
#include "spoolrecover.h"
#include "spoolspare.h"
#include "util.h"

#define SPOOL_BUF_SIZE	(64 * 1024)	/* data write buffer per message */
#define SPOOL_ID_TRIES	100
/* Empty files kept for reuse (spoolspare.h).  The pool only has to
 * absorb the difference between files freed and files created: one
 * message in flight holds two, so 1,024 covers a drain of 512 messages
 * (an outage's backlog going out) ahead of new mail, for 256 KB of
 * inode table and no data blocks. */
#define SPOOL_SPARE_MAX	1024

enum spool_kind {
	SPOOL_K_COMMIT,		/* a new message */
	SPOOL_K_SAVE,		/* rewrite an envelope (text in buf) */
	SPOOL_K_REMOVE,		/* delete a delivered message */
	SPOOL_K_FAIL,		/* (save an envelope and) move to failed/ */
	SPOOL_K_REQUEUE,	/* back from failed/ (envelope text in buf) */
	SPOOL_K_NONE,		/* nothing to do: result already set */
};

struct spool_msg {
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

struct spool {
	char			*dir;		/* absolute path */
	int			 tmpfd;
	int			 queuefd;
	int			 failedfd;
	int			 corruptfd;
	struct spoolspare	*spare;		/* spare/, thread safe */
	int			 lockfd;	/* flock: one daemon per spool */
	unsigned int		 seed;		/* mixed into ids */
	atomic_uint		 counter;
	struct spoolbatch	*batch;		/* group commit */
};

/*
 * Small helpers: names, ids, whole writes.
 */

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

/*
 * Envelope files.  The text itself is envelope.c's business.
 */

int
spool_env_load(struct spool *sp, const char *id, struct envelope *env)
{
	return spooldir_env_load(sp->queuefd, id, env, false);
}

int
spool_failed_load(struct spool *sp, const char *id, struct envelope *env)
{
	return spooldir_env_load(sp->failedfd, id, env, true);
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
	char			 name[SPOOLDIR_NAME_MAX];
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
		spooldir_name(name, msg->env.id, ".msg");
		fd = spoolspare_create(sp->spare, sp->tmpfd, name);
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

void
spool_msg_set_mime(struct spool_msg *msg, enum smtp_body body,
    bool smtputf8)
{
	msg->env.body = body == SMTP_BODY_8BITMIME ? ENVELOPE_BODY_8BITMIME :
	    body == SMTP_BODY_7BIT ? ENVELOPE_BODY_7BIT :
	    ENVELOPE_BODY_UNSPEC;
	msg->env.smtputf8 = smtputf8;
}

/* True when an envelope address holds an octet over 0x7f: a UTF-8
 * address, which only SMTPUTF8 carries (RFC 6531). */
static bool
spool_env_has_utf8(const struct envelope *env)
{
	size_t	i;

	if (!str_is_ascii(env->sender))
		return true;
	for (i = 0; i < env->nrcpt; i++)
		if (!str_is_ascii(env->rcpts[i].addr))
			return true;
	return false;
}

/* Writes out the buffer; a failure sticks to the message. */
static int
spool_msg_flush(struct spool_msg *msg)
{
	if (msg->err == 0 && msg->buflen > 0 &&
	    spooldir_write_all(msg->fd, msg->buf, msg->buflen) == -1)
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
	char	name[SPOOLDIR_NAME_MAX];

	if (msg == NULL)
		return;
	spooldir_name(name, msg->env.id, ".msg");
	if (unlinkat(msg->sp->tmpfd, name, 0) == -1 && errno != ENOENT)
		log_warn("spool abort id=%s", msg->env.id);
	spool_msg_free(msg);
}

/*
 * Operations.  They run on the worker threads (worker.h), a batch at a
 * time, and report on the loop.
 */

static int	spool_op_requeue(struct spool_msg *);

/* Takes every file of <msg> out of tmp/ and queue/ again. */
static void
spool_msg_unlink(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	char		 data[SPOOLDIR_NAME_MAX], env[SPOOLDIR_NAME_MAX];

	spooldir_name(data, msg->env.id, ".msg");
	spooldir_name(env, msg->env.id, ".env");
	/* Envelope first: without it the data is no message. */
	unlinkat(sp->queuefd, env, 0);
	unlinkat(sp->queuefd, data, 0);
	unlinkat(sp->tmpfd, env, 0);
	unlinkat(sp->tmpfd, data, 0);
}

/* The per-message half of a commit: data synced and closed, envelope
 * written and synced, both renamed into queue/ (data first, since the
 * envelope's arrival there is the commit point).  Returns 0 or an errno
 * value; on failure nothing of the message is left behind. */
static int
spool_msg_stage(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	char		 data[SPOOLDIR_NAME_MAX], env[SPOOLDIR_NAME_MAX];
	char		*text = NULL;
	const char	*step;
	struct aiocb	 cb;
	size_t		 len;
	int		 fd = msg->fd, err;
	bool		 async;

	spooldir_name(data, msg->env.id, ".msg");
	spooldir_name(env, msg->env.id, ".env");
	msg->env.size = msg->size;
	/* Lines over 998 octets, bare CRs, NULs: the relay re-encodes
	 * (mime.h); it need not read other messages twice to know. */
	msg->env.reencode = !mime_scan_is_clean(&msg->scan);
	switch (mime_scan_8bit(&msg->scan)) {
	case MIME_8BIT_NONE:
		msg->env.eightbit = ENVELOPE_8BIT_NONE;
		break;
	case MIME_8BIT_BODY:
		msg->env.eightbit = ENVELOPE_8BIT_BODY;
		break;
	case MIME_8BIT_HEADER:
		msg->env.eightbit = ENVELOPE_8BIT_HEADER;
		break;
	}
	/* A UTF-8 address asks for SMTPUTF8 even if the client did not:
	 * accepted as Postfix does, relayed only the way RFC 6531 allows
	 * (or failed with a report, never sent mangled). */
	if (spool_env_has_utf8(&msg->env))
		msg->env.smtputf8 = true;
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
	    spoolspare_file_write(sp->spare, sp->tmpfd, env, text,
	    len) == -1) {
		err = errno;
		if (async)
			spooldir_aio_wait(&cb);
		errno = err;
		goto fail;
	}
	step = "fsync";
	if (async ? spooldir_aio_wait(&cb) == -1 : fsync(fd) == -1)
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
	char		 tmp[SPOOLDIR_NAME_MAX], name[SPOOLDIR_NAME_MAX];
	int		 tries, rc = -1, err;

	spooldir_name(name, msg->env.id, ".env");
	for (tries = 0; tries < SPOOL_ID_TRIES; tries++) {
		snprintf(tmp, sizeof(tmp), "%.*s.env.%08x", SPOOL_ID_LEN,
		    msg->env.id, (sp->seed + atomic_fetch_add(&sp->counter,
		    1)) & 0xffffffffu);
		if ((rc = spoolspare_file_write(sp->spare, sp->tmpfd, tmp,
		    msg->buf, msg->buflen)) == 0 || errno != EEXIST)
			break;
	}
	/* The old envelope's inode becomes a spare. */
	if (rc == 0 && spoolspare_replace(sp->spare, sp->tmpfd, tmp,
	    sp->queuefd, name) == 0)
		return 0;
	err = errno;
	if (rc == 0)
		unlinkat(sp->tmpfd, tmp, 0);
	log_warn("spool envelope save id=%s", msg->env.id);
	return err;
}

/* A delivered message goes: envelope first (without it the data is no
 * message), then the data; their inodes become spares. */
static int
spool_op_remove(struct spool_msg *msg)
{
	struct spool	*sp = msg->sp;
	char		 data[SPOOLDIR_NAME_MAX], env[SPOOLDIR_NAME_MAX];

	spooldir_name(data, msg->env.id, ".msg");
	spooldir_name(env, msg->env.id, ".env");
	if (spoolspare_remove(sp->spare, sp->queuefd, env) == -1 &&
	    errno != ENOENT) {
		log_warn("spool remove id=%s file=envelope", msg->env.id);
		return errno;
	}
	if (spoolspare_remove(sp->spare, sp->queuefd, data) == -1 &&
	    errno != ENOENT)
		log_warn("spool remove id=%s file=data", msg->env.id);
	return 0;
}

/* On a worker, in a batch (spoolbatch.h): runs one operation, setting
 * its result.  Returns true if it waits for the batch's fsync of
 * queue/. */
static bool
spool_op_run(void *arg)
{
	struct spool_msg	*msg = arg;
	struct spool		*sp = msg->sp;

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
		if ((msg->result = spool_op_save(msg)) == 0 &&
		    spooldir_move(sp->queuefd, sp->failedfd,
		    msg->env.id) == -1)
			msg->result = errno;
		return false;
	case SPOOL_K_REQUEUE:
		msg->result = spool_op_requeue(msg);
		return false;
	case SPOOL_K_NONE:
		return false;
	}
	return msg->result == 0;
}

/* On a worker: the one fsync of queue/ for a batch.  Returns 0 or an
 * errno value. */
static int
spool_batch_sync(void *arg)
{
	struct spool	*sp = arg;

	if (fsync(sp->queuefd) == 0)
		return 0;
	/*
	 * The renames may not survive a power cut.  The batch's operations
	 * are taken out again and failed (spool_op_unsync()): the clients
	 * get a 4xx and resend, so at worst a message is delivered twice,
	 * which we prefer to answering 250 for one that could be lost.
	 */
	log_warn("spool commit: fsync queue/ failed, its batch fails");
	return errno;
}

/* On a worker: an operation of a batch whose fsync of queue/ failed
 * with <err>. */
static void
spool_op_unsync(void *arg, int err)
{
	struct spool_msg	*msg = arg;

	/* Saves and removals that may not have reached the disk are
	 * simply repeated later. */
	if (msg->kind == SPOOL_K_COMMIT)
		spool_msg_unlink(msg);
	msg->result = err;
}

/* On the loop: an operation's callback, in the order started. */
static void
spool_op_done(void *arg)
{
	struct spool_msg	*msg = arg;

	if (msg->done != NULL)
		msg->done(msg->env.id, msg->result, msg->arg);
	spool_msg_free(msg);
}

static const struct spoolbatch_ops spool_batch_ops = {
	.run = spool_op_run,
	.sync = spool_batch_sync,
	.unsync = spool_op_unsync,
	.done = spool_op_done,
};

/* Hands <msg> to the workers: it goes with the next batch. */
static void
spool_enqueue(struct spool *sp, struct spool_msg *msg)
{
	spoolbatch_add(sp->batch, msg);
}

void
spool_commit_start(struct spool_msg *msg, spool_done_cb done, void *arg)
{
	struct spool	*sp = msg->sp;

	/* From here on only a worker touches <msg>, until its batch is
	 * back on the loop (spool_op_done()). */
	msg->done = done;
	msg->arg = arg;
	spool_enqueue(sp, msg);
}

void
spool_get_batch_stats(const struct spool *sp, struct spoolbatch_stats *st)
{
	spoolbatch_get_stats(sp->batch, st);
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

/*
 * Opening, recovery, closing.
 */

struct spool *
spool_open(const char *dir, struct worker *worker)
{
	struct spoolrecover_dirs dirs;
	struct spool	*sp;
	const char	*step;
	int		 dirfd = -1, sparefd;

	/* Directories first, then recovery: nothing is handed to the
	 * workers before this returns. */
	sp = xcalloc(1, sizeof(*sp));
	sp->tmpfd = sp->queuefd = sp->failedfd = sp->corruptfd = -1;
	sp->lockfd = -1;
	sp->batch = spoolbatch_new(worker, &spool_batch_ops, sp);
	if (getrandom(&sp->seed, sizeof(sp->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(sp->seed))
		sp->seed = (unsigned int)getpid() * 2654435761u;
	step = "create";
	if (spooldir_mkdirs(dir) == -1 || (sp->dir = realpath(dir, NULL)) ==
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
	if ((sp->tmpfd = spooldir_subdir_open(dirfd, "tmp")) == -1 ||
	    (sp->queuefd = spooldir_subdir_open(dirfd, "queue")) == -1 ||
	    (sp->failedfd = spooldir_subdir_open(dirfd, "failed")) == -1 ||
	    (sp->corruptfd = spooldir_subdir_open(dirfd, "corrupt")) == -1 ||
	    (sparefd = spooldir_subdir_open(dirfd, "spare")) == -1 ||
	    (sp->spare = spoolspare_new(sparefd, SPOOL_SPARE_MAX)) == NULL ||
	    fsync(dirfd) == -1)
		goto fail;
	step = "recover";
	dirs.tmpfd = sp->tmpfd;
	dirs.queuefd = sp->queuefd;
	dirs.failedfd = sp->failedfd;
	dirs.corruptfd = sp->corruptfd;
	dirs.spare = sp->spare;
	if (spoolrecover_run(&dirs) == -1)
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
	spoolbatch_free(sp->batch);
	if (sp->tmpfd != -1)
		close(sp->tmpfd);
	if (sp->queuefd != -1)
		close(sp->queuefd);
	if (sp->failedfd != -1)
		close(sp->failedfd);
	if (sp->corruptfd != -1)
		close(sp->corruptfd);
	spoolspare_free(sp->spare);
	if (sp->lockfd != -1)
		close(sp->lockfd);
	free(sp->dir);
	free(sp);
}

long
spool_scan(struct spool *sp, void (*cb)(const struct envelope *, void *),
    void *arg)
{
	return spooldir_scan(sp->queuefd, "queue/", cb, arg);
}

long
spool_scan_failed(struct spool *sp,
    void (*cb)(const struct envelope *, void *), void *arg)
{
	return spooldir_scan(sp->failedfd, "failed/", cb, arg);
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

/* Writes the envelope of a requeue (spooldir_requeue()). */
static int
spool_op_save_cb(void *arg)
{
	return spool_op_save(arg);
}

/* Back from failed/ into the queue (spooldir_requeue()).  The envelope's
 * text is in msg->buf.  Returns 0 or an errno value. */
static int
spool_op_requeue(struct spool_msg *msg)
{
	return spooldir_requeue(msg->sp->failedfd, msg->sp->queuefd,
	    msg->env.id, spool_op_save_cb, msg);
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

void
spool_requeue_start(struct spool *sp, const struct envelope *env,
    spool_done_cb done, void *arg)
{
	spool_enqueue(sp, spool_op_env_new(sp, SPOOL_K_REQUEUE, env, done,
	    arg));
}

void
spool_move_failed_start(struct spool *sp, const struct envelope *env,
    spool_done_cb done, void *arg)
{
	spool_enqueue(sp, spool_op_env_new(sp, SPOOL_K_FAIL, env, done, arg));
}
