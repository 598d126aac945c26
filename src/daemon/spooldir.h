/*
 * spooldir.h - file operations on the spool's directories, by fd.
 *
 * Names are "<id><suffix>" (".msg" data, ".env" envelope); every file
 * is written whole, synced, and only ever replaced by rename(2).  Used by
 * spool.c and its startup recovery (spoolrecover.c), on any thread.
 */
#ifndef SPOOLDIR_H
#define SPOOLDIR_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>

#include "envelope.h"

#define SPOOLDIR_ID_LEN		ENVELOPE_ID_LEN	/* hex digits */
#define SPOOLDIR_NAME_MAX	(SPOOLDIR_ID_LEN + 16)	/* "<id>.env.xxxxxxxx" */

/* "<id><suffix>" into <buf> of SPOOLDIR_NAME_MAX octets; returns <buf>. */
char		*spooldir_name(char *buf, const char *id, const char *suffix);

/* Splits "<id><suffix>" into <id> (SPOOLDIR_ID_LEN + 1 octets); -1 if
 * <name> is not of that form or the id is invalid. */
int		 spooldir_name_parse(const char *name, char *id,
		    const char *suffix);

/* Writes all <len> octets at <p>, retrying short writes.  Returns 0, or
 * -1 with errno of the failing write(2). */
int		 spooldir_write_all(int fd, const char *p, size_t len);

/* Creates <dirfd>/<name> (O_EXCL) holding the <len> octets at <p>,
 * fsynced and closed.  Returns 0, or -1 with errno, the file gone. */
int		 spooldir_file_write(int dirfd, const char *name, const char *p,
		    size_t len);

/* Writes the <len> octets at <p> into <fd>, a file just created as
 * <dirfd>/<name>, then fsync and close (<fd> is consumed).  Returns 0,
 * or -1 with errno, the name unlinked. */
int		 spooldir_fd_write(int fd, int dirfd, const char *name,
		    const char *p, size_t len);

/* Waits for the aio_fsync() started on <cb>.  Returns 0, or -1 with
 * errno that of the fsync. */
struct aiocb;
int		 spooldir_aio_wait(struct aiocb *cb);

/* A fresh DIR stream on the directory <dirfd> refers to, or NULL. */
DIR		*spooldir_open(int dirfd);

/* Reads <dirfd>/<id>.env into <env> (the caller then owns it until
 * envelope_cleanup()).  Returns 0, or -1 (logged, a missing file only
 * when <quiet_enoent> is false) with <env> zeroed and errno set: EINVAL
 * for an invalid id or corrupt content, EFBIG for an oversized file. */
int		 spooldir_env_load(int dirfd, const char *id,
		    struct envelope *env, bool quiet_enoent);

/* Calls <cb> once for every readable envelope in <dirfd> (<name> for the
 * log), borrowed for the call.  Returns how many, or -1. */
long		 spooldir_scan(int dirfd, const char *name,
		    void (*cb)(const struct envelope *, void *), void *arg);

/* Moves message <id> from <fromfd> to <tofd> (data first, then the
 * envelope) and syncs both directories.  Returns 0 or -1 (logged, errno
 * set). */
int		 spooldir_move(int fromfd, int tofd, const char *id);

/* Moves message <id> back from failed/ (<failedfd>) into the queue
 * (<queuefd>): the data as a hard link, then the envelope, written by
 * <save_env>(<arg>) through tmp/ and rename (0 or an errno value), then
 * the syncs; only then do the failed/ names go.  Returns 0 or an errno
 * value (EEXIST: already queued). */
int		 spooldir_requeue(int failedfd, int queuefd, const char *id,
		    int (*save_env)(void *), void *arg);

/* mkdir -p <dir>, new directories mode 0700.  Returns 0 or -1. */
int		 spooldir_mkdirs(const char *dir);

/* Opens <dirfd>/<name> as a directory, creating it (0700) if missing.
 * Returns the fd or -1. */
int		 spooldir_subdir_open(int dirfd, const char *name);

#endif /* SPOOLDIR_H */
