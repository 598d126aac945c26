/*
 * spool.h - the durable on-disk queue.
 *
 * Layout under the spool directory:
 *   tmp/     files being written; emptied at startup (into spare/)
 *   queue/   committed messages: <id>.msg (data, written once) and
 *            <id>.env (envelope, rewritten atomically as delivery goes)
 *   failed/  messages kept for a human after permanent failure
 *   corrupt/ files set aside at startup because they could not be read
 *   spare/   empty files of delivered messages, kept for reuse as new
 *            ones (spoolspare.h); never mail, nothing else looks here
 *
 * A message exists once its envelope is in queue/: the envelope is
 * renamed in after the data, and the directory is fsynced before the
 * commit reports success.  No sockets, no event loop: the asynchronous
 * operations run on the shared worker threads (worker.h) and report back
 * on the loop.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "smtp.h"

#define SPOOL_ID_LEN	ENVELOPE_ID_LEN	/* hex digits */

struct worker;
struct spool;				/* one spool directory */
struct spool_msg;			/* one message being written */

/* Opens <dir>, creating it (mode 0700) and its subdirectories if needed,
 * takes what is in spare/ as spares (spoolspare_adopt()), removes
 * everything in tmp/ (keeping the files as spares), deletes data files
 * in queue/ that have no envelope (an interrupted commit: the client
 * never got 250), and moves unreadable or truncated envelopes, and
 * envelopes without data, to corrupt/ with a log line; finishes an
 * interrupted spool_requeue_start().
 * The asynchronous operations run on <worker>, which is borrowed and
 * must outlive the spool.  Returns NULL after logging the reason. */
struct spool	*spool_open(const char *dir, struct worker *worker);

/* Frees the spool.  Every operation started must have reported first
 * (worker_free() waits for them); one still in flight is a bug. */
void		 spool_close(struct spool *);

/* Calls <cb> once for every committed envelope, in no set order.  The
 * envelope is borrowed for the duration of the call.  Returns the
 * number of envelopes, or -1 if the directory could not be read. */
long		 spool_scan(struct spool *,
		    void (*cb)(const struct envelope *, void *), void *arg);

/* Starts a message from <sender> ("" is the null sender), received from
 * <client> which said <helo>.  Creates the data file in tmp/.  The
 * caller owns the result until spool_commit_start() or spool_abort() consumes
 * it.  Returns NULL (errno set, logged) on failure, e.g. ENOSPC. */
struct spool_msg *spool_msg_new(struct spool *, const char *sender,
		    const char *client, const char *helo);
const char	*spool_msg_id(const struct spool_msg *);
int		 spool_msg_add_rcpt(struct spool_msg *, const char *rcpt);

/* What the client declared in MAIL FROM: BODY= (RFC 6152) and SMTPUTF8
 * (RFC 6531), for the envelope.  The commit also sets smtputf8 when the
 * sender or a recipient is a UTF-8 address, declared or not. */
void		 spool_msg_set_mime(struct spool_msg *, enum smtp_body,
		    bool smtputf8);

/* Appends data.  Buffered; returns -1 once any write has failed (errno
 * of the first failure is kept and the commit will fail).  The data is
 * checked as it passes (mime_scan): the commit records in the envelope
 * (reencode) whether it has a line over 998 octets, a bare CR or a
 * NUL, for the relay to re-encode, and (eightbit) where it holds octets
 * over 0x7f. */
int		 spool_msg_write(struct spool_msg *, const void *, size_t);
uint64_t	 spool_msg_size(const struct spool_msg *);

/* Commits on a worker thread: flush and fsync the data, write and fsync
 * the envelope, rename both into queue/, fsync queue/.  Messages
 * committed together share one directory fsync: while one batch
 * stages, the next gathers, and stages while the one before syncs
 * (spoolbatch.h).  <done> runs later, on
 * the loop, with the message id and 0 (answering 250 is safe) or an
 * errno value (ENOSPC/EDQUOT: the disk is full; nothing of the message
 * stays behind).  Consumes <msg>. */
typedef void	(*spool_done_cb)(const char *id, int err, void *arg);
void		 spool_commit_start(struct spool_msg *msg, spool_done_cb done,
		    void *arg);

/* The commit batches so far (spoolbatch.h): how many, their sizes and
 * durations, for the metrics. */
struct spoolbatch_stats;
void		 spool_get_batch_stats(const struct spool *,
		    struct spoolbatch_stats *);

/* Rewrites an envelope atomically (tmp, fsync, rename) / removes a
 * message (envelope first, then data; one already gone is no error), on
 * the workers; operations finishing together share one fsync of queue/.
 * <done> runs on the loop with the id and 0 or an errno.  The
 * envelope is formatted before this returns (<env> stays the caller's).
 * Operations on one id run in the order they were started only if the
 * caller waits for each done() before starting the next. */
void		 spool_env_save_start(struct spool *, const struct envelope *env,
		    spool_done_cb done, void *arg);
void		 spool_remove_start(struct spool *, const char *id,
		    spool_done_cb done, void *arg);

/* Drops an uncommitted message and its temporary file. */
void		 spool_abort(struct spool_msg *);

/* Reads the envelope of committed message <id> into <env>; the caller
 * then owns it until envelope_cleanup().  Returns 0, or -1 (missing or
 * corrupt; logged) with <env> zeroed and errno set: EINVAL for an
 * invalid id or corrupt content, EFBIG for an oversized file. */
int		 spool_env_load(struct spool *, const char *id,
		    struct envelope *env);

/* Path of the data file of <id> in queue/, into <buf>.  Returns 0 or -1
 * if it did not fit. */
int		 spool_data_path(const struct spool *, const char *id,
		    char *buf, size_t bufsz);

/* Moves message env->id to failed/ for a human to inspect, on the
 * workers, first replacing its envelope by <env> (formatted before this
 * returns); <done> runs on the loop once failed/ and queue/ are synced,
 * with 0 or an errno. */
void		 spool_move_failed_start(struct spool *,
		    const struct envelope *env, spool_done_cb done, void *arg);

/* Like spool_scan() and spool_env_load(), for the messages in failed/.
 * spool_failed_load() does not log a missing message (errno ENOENT). */
long		 spool_scan_failed(struct spool *,
		    void (*cb)(const struct envelope *, void *), void *arg);
int		 spool_failed_load(struct spool *, const char *id,
		    struct envelope *env);

/* Moves message env->id from failed/ back into queue/ with <env> as its
 * envelope: the data is linked into queue/, the envelope written
 * through tmp/ (fsync, rename, fsync of queue/), and only then are the
 * failed/ names removed.  A crash at any point loses nothing: startup
 * finds the message in failed/, or in queue/ (and then removes what is
 * left of it in failed/).  Runs on the workers; <done> runs on the loop
 * with 0, or ENOENT (not in failed/), EEXIST (already in queue/) or the
 * errno of the failed step. */
void		 spool_requeue_start(struct spool *, const struct envelope *env,
		    spool_done_cb done, void *arg);

#endif /* SPOOL_H */
