/*
 * spooldir.c - file operations on the spool's directories, by fd (the
 * layout is in spool.h): names, whole writes, reading envelope files,
 * listing a directory, moving a message between two directories.  Safe
 * on any thread; no state of its own.
 */
#include "config.h"

#include "spooldir.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <aio.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* "<id><suffix>" into <buf> of SPOOLDIR_NAME_MAX octets. */
char *
spooldir_name(char *buf, const char *id, const char *suffix)
{
	snprintf(buf, SPOOLDIR_NAME_MAX, "%.*s%s", SPOOLDIR_ID_LEN, id, suffix);
	return buf;
}

/* Splits "<id><suffix>" into <id>; -1 if <name> is not of that form. */
int
spooldir_name_parse(const char *name, char *id, const char *suffix)
{
	if (strlen(name) != SPOOLDIR_ID_LEN + strlen(suffix) ||
	    strcmp(name + SPOOLDIR_ID_LEN, suffix) != 0)
		return -1;
	memcpy(id, name, SPOOLDIR_ID_LEN);
	id[SPOOLDIR_ID_LEN] = '\0';
	return envelope_id_is_valid(id) ? 0 : -1;
}

/* write(2) may be short on a nearly full disk or past RLIMIT_FSIZE; the
 * next call then reports why, and that errno is what the caller sees. */
int
spooldir_write_all(int fd, const char *p, size_t len)
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
int
spooldir_file_write(int dirfd, const char *name, const char *p, size_t len)
{
	int	fd;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (fd == -1)
		return -1;
	return spooldir_fd_write(fd, dirfd, name, p, len);
}

/* Fills the new file <fd> (<dirfd>/<name>), syncs and closes it; on
 * failure the name goes too and errno is that of the failure. */
int
spooldir_fd_write(int fd, int dirfd, const char *name, const char *p,
    size_t len)
{
	int	saved;

	if (spooldir_write_all(fd, p, len) == -1 || fsync(fd) == -1) {
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

/* Waits for the aio_fsync() started on <cb>. */
int
spooldir_aio_wait(struct aiocb *cb)
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

/* A fresh DIR stream on the directory <dirfd> refers to. */
DIR *
spooldir_open(int dirfd)
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

/* Reads <id>.env in the directory <dirfd> (queue/ or failed/) whole
 * into a new buffer.  The size is bounded before anything is allocated;
 * a file that grows while we read it is not one we wrote (envelopes are
 * replaced by rename), so it fails. */
static char *
spooldir_env_read(int dirfd, const char *id, size_t *len)
{
	char		 name[SPOOLDIR_NAME_MAX], *buf;
	struct stat	 st;
	ssize_t		 n = 0;
	int		 fd, saved = 0;

	spooldir_name(name, id, ".env");
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
int
spooldir_env_load(int dirfd, const char *id, struct envelope *env,
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
	if ((buf = spooldir_env_read(dirfd, id, &len)) == NULL) {
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

long
spooldir_scan(int dirfd, const char *name,
    void (*cb)(const struct envelope *, void *), void *arg)
{
	struct envelope		 env;
	struct dirent		*de;
	DIR			*d;
	char			 id[SPOOLDIR_ID_LEN + 1];
	long			 n = 0;

	if ((d = spooldir_open(dirfd)) == NULL) {
		log_warn("spool scan dir=%s", name);
		return -1;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		/* Only "<id>.env" names; anything else is not a message.
		 * One that went meanwhile (requeued, delivered) is no
		 * news. */
		if (spooldir_name_parse(de->d_name, id, ".env") == -1 ||
		    spooldir_env_load(dirfd, id, &env, true) == -1)
			continue;
		cb(&env, arg);
		envelope_cleanup(&env);
		n++;
	}
	if (errno != 0) {
		log_warn("spool scan dir=%s", name);
		n = -1;
	}
	closedir(d);
	return n;
}

int
spooldir_move(int fromfd, int tofd, const char *id)
{
	char	data[SPOOLDIR_NAME_MAX], env[SPOOLDIR_NAME_MAX];
	int	err;

	spooldir_name(data, id, ".msg");
	spooldir_name(env, id, ".env");
	/*
	 * Data first: a crash in between leaves an envelope without data,
	 * which startup sets aside in corrupt/, rather than data without
	 * an envelope, which startup would delete.
	 */
	if (renameat(fromfd, data, tofd, data) == -1) {
		log_warn("spool move to failed/ id=%s file=data", id);
		return -1;
	}
	if (renameat(fromfd, env, tofd, env) == -1) {
		err = errno;
		log_warn("spool move to failed/ id=%s file=envelope", id);
		renameat(tofd, data, fromfd, data);
		errno = err;
		return -1;
	}
	if (fsync(tofd) == -1 || fsync(fromfd) == -1) {
		log_warn("spool move to failed/ id=%s fsync", id);
		return -1;
	}
	return 0;
}

int
spooldir_mkdirs(const char *dir)
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

int
spooldir_subdir_open(int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0700) == -1 && errno != EEXIST)
		return -1;
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/*
 * Back from failed/ into the queue, in the order of a commit: the data
 * first (a hard link, so failed/ keeps its copy), then the envelope
 * through tmp/ and rename, then the queue/ sync; only then do the
 * failed/ names go.  A crash before the envelope leaves data without an
 * envelope in queue/, which startup deletes: the message is still in
 * failed/.  A crash after it leaves the message in both, and startup
 * finishes the job (spool_recover_requeued()).
 */
int
spooldir_requeue(int failedfd, int queuefd, const char *id,
    int (*save_env)(void *), void *arg)
{
	struct stat	 st;
	char		 data[SPOOLDIR_NAME_MAX], name[SPOOLDIR_NAME_MAX];
	int		 err;

	spooldir_name(data, id, ".msg");
	spooldir_name(name, id, ".env");
	if (fstatat(queuefd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return EEXIST;
	if (linkat(failedfd, data, queuefd, data, 0) == -1) {
		err = errno;
		if (err != ENOENT)
			log_warn("spool requeue id=%s file=data", id);
		return err;
	}
	if ((err = save_env(arg)) != 0 || fsync(queuefd) == -1) {
		/* The envelope may be in queue/ without being durable: it
		 * goes again, and so does the data link. */
		if (err == 0) {
			err = errno;
			log_warn("spool requeue id=%s: fsync queue/",
			    id);
		}
		unlinkat(queuefd, name, 0);
		unlinkat(queuefd, data, 0);
		fsync(queuefd);
		return err;
	}
	/* Data first: a failed/ envelope left alone is what startup looks
	 * for; a data file left alone would be found by nobody. */
	if (unlinkat(failedfd, data, 0) == -1 ||
	    unlinkat(failedfd, name, 0) == -1 || fsync(failedfd) == -1)
		log_warn("spool requeue id=%s: cannot remove from failed/ "
		    "(the next start does)", id);
	return 0;
}
