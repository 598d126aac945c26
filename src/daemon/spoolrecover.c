/*
 * spoolrecover.c - the spool's startup recovery (spool_open()): adopts
 * the spare files in spare/, empties tmp/ into them, deletes data
 * without an envelope (a commit interrupted before its 250), sets
 * unreadable envelopes and envelopes without data aside in corrupt/,
 * and finishes an interrupted requeue.  Runs once, before any worker
 * touches the spool.
 */
#include "config.h"

#include "spoolrecover.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "log.h"
#include "spooldir.h"
#include "spoolspare.h"
#include "util.h"

/* The id part of a file name for log lines, or "-". */
static const char *
spoolrecover_log_id(const char *name, char *id)
{
	if (strlen(name) >= SPOOLDIR_ID_LEN) {
		memcpy(id, name, SPOOLDIR_ID_LEN);
		id[SPOOLDIR_ID_LEN] = '\0';
		if (envelope_id_is_valid(id))
			return id;
	}
	return "-";
}

/* Handles one entry of queue/ at startup.  Readdir may or may not show
 * a file that an earlier entry's handling moved, hence ENOENT is fine. */
static void
spoolrecover_entry(const struct spoolrecover_dirs *sp, const char *name)
{
	struct envelope		 env;
	struct stat		 st;
	char			 id[SPOOLDIR_ID_LEN + 1], other[SPOOLDIR_NAME_MAX];
	char			 esc[128];
	const char		*why = NULL;

	str_log_escape(name, strlen(name), esc, sizeof(esc));
	if (spooldir_name_parse(name, id, ".msg") == 0) {
		if (fstatat(sp->queuefd, spooldir_name(other, id, ".env"), &st,
		    AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT)
			return;
		if (unlinkat(sp->queuefd, name, 0) == 0)
			log_warnx("spool recover remove id=%s file=queue/%s "
			    "reason=no-envelope", id, esc);
		else if (errno != ENOENT)
			log_warn("spool recover remove file=queue/%s", esc);
		return;
	}
	if (spooldir_name_parse(name, id, ".env") == -1)
		why = "unknown-name";
	else if (fstatat(sp->queuefd, spooldir_name(other, id, ".msg"), &st,
	    AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT)
		why = "no-data";
	else if (spooldir_env_load(sp->queuefd, id, &env, false) == -1)
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
	    spoolrecover_log_id(name, id), esc, why);
	if (strcmp(why, "corrupt-envelope") == 0 &&
	    renameat(sp->queuefd, other, sp->corruptfd, other) == 0)
		log_warnx("spool recover quarantine id=%s file=queue/%s "
		    "reason=%s", id, other, why);
}

/* Empties tmp/ (<queue> false) or checks every entry of queue/. */
static int
spoolrecover_dir(const struct spoolrecover_dirs *sp, bool queue)
{
	struct dirent	*de;
	DIR		*d;
	char		 id[SPOOLDIR_ID_LEN + 1], esc[128];

	if ((d = spooldir_open(queue ? sp->queuefd : sp->tmpfd)) == NULL)
		return -1;
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (de->d_name[0] == '.')	/* ".", "..", NFS leftovers */
			continue;
		if (queue) {
			spoolrecover_entry(sp, de->d_name);
			continue;
		}
		str_log_escape(de->d_name, strlen(de->d_name), esc,
		    sizeof(esc));
		if (spoolspare_remove(sp->spare, sp->tmpfd, de->d_name) == 0)
			log_warnx("spool recover remove id=%s file=tmp/%s "
			    "reason=leftover", spoolrecover_log_id(de->d_name, id),
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
 * interrupted after its envelope reached queue/ (spool_requeue_start()): the
 * queue's copy is the message, the failed/ names go.  Nothing else puts
 * an envelope in both. */
static int
spoolrecover_requeued(const struct spoolrecover_dirs *sp)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	char		 id[SPOOLDIR_ID_LEN + 1], data[SPOOLDIR_NAME_MAX];
	bool		 changed = false;

	if ((d = spooldir_open(sp->failedfd)) == NULL)
		return -1;
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (spooldir_name_parse(de->d_name, id, ".env") == -1 ||
		    fstatat(sp->queuefd, de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if ((unlinkat(sp->failedfd, spooldir_name(data, id, ".msg"), 0) ==
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

int
spoolrecover_run(const struct spoolrecover_dirs *dirs)
{
	if (spoolspare_adopt(dirs->spare) == -1 ||
	    spoolrecover_dir(dirs, false) == -1 ||
	    spoolrecover_dir(dirs, true) == -1 ||
	    spoolrecover_requeued(dirs) == -1)
		return -1;
	return 0;
}
