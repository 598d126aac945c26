/*
 * spoolspare.c - a pool of empty spool files kept for reuse (see
 * spoolspare.h for why).
 *
 * Invariants: a name in the pool is a file in spare/ that held nothing
 * when it went in; a file leaves the pool before anyone renames it out,
 * and every rename into a name uses RENAME_NOREPLACE, so two threads
 * never get the same inode and no file is replaced by accident.  A file
 * is used only after fstat() shows it is still an empty regular file
 * with one link: a symlink, a FIFO or a hard link planted in spare/ is
 * unlinked (the name only, never the target) and a fresh file made.
 */
#include "config.h"

#include "spoolspare.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "spooldir.h"
#include "util.h"

#define SPOOLSPARE_NAME_MAX	32	/* "<16 hex>.spare" */
#define SPOOLSPARE_TRIES	16	/* name clashes before giving up */

struct spoolspare {
	int		 fd;		/* spare/ */
	pthread_mutex_t	 lock;		/* guards the fields below */
	uint64_t	*seqs;		/* names of the spares, a stack */
	size_t		 n;
	size_t		 reserved;	/* slots held by removals under way */
	size_t		 cap;
	uint64_t	 next;		/* for new names */
};

static char *
spoolspare_name(char *buf, uint64_t seq)
{
	snprintf(buf, SPOOLSPARE_NAME_MAX, "%016" PRIx64 SPOOLSPARE_SUFFIX,
	    seq);
	return buf;
}

/* Parses one of our names; -1 for anything else. */
static int
spoolspare_name_parse(const char *name, uint64_t *seq)
{
	if (strlen(name) != 16 + strlen(SPOOLSPARE_SUFFIX) ||
	    strspn(name, "0123456789abcdef") != 16 ||
	    strcmp(name + 16, SPOOLSPARE_SUFFIX) != 0)
		return -1;
	*seq = strtoull(name, NULL, 16);
	return 0;
}

struct spoolspare *
spoolspare_new(int sparefd, size_t cap)
{
	struct spoolspare	*ss;

	ss = xcalloc(1, sizeof(*ss));
	ss->fd = sparefd;
	ss->cap = cap;
	ss->seqs = xcalloc(cap > 0 ? cap : 1, sizeof(*ss->seqs));
	pthread_mutex_init(&ss->lock, NULL);
	/* A random start makes a clash with an old name rare; when there
	 * is one, RENAME_NOREPLACE says so and the next name is tried. */
	if (getrandom(&ss->next, sizeof(ss->next), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(ss->next))
		ss->next = (uint64_t)getpid() << 32;
	return ss;
}

void
spoolspare_free(struct spoolspare *ss)
{
	if (ss == NULL)
		return;
	if (ss->fd != -1)
		close(ss->fd);
	pthread_mutex_destroy(&ss->lock);
	free(ss->seqs);
	free(ss);
}

size_t
spoolspare_count(struct spoolspare *ss)
{
	size_t	n;

	pthread_mutex_lock(&ss->lock);
	n = ss->n;
	pthread_mutex_unlock(&ss->lock);
	return n;
}

/* Takes a spare's name out of the pool; false when it is empty. */
static bool
spoolspare_pop(struct spoolspare *ss, uint64_t *seq)
{
	bool	ok;

	pthread_mutex_lock(&ss->lock);
	if ((ok = ss->n > 0))
		*seq = ss->seqs[--ss->n];
	pthread_mutex_unlock(&ss->lock);
	return ok;
}

/* Holds a slot for a removal and picks a name for it; false when the
 * pool is full. */
static bool
spoolspare_reserve(struct spoolspare *ss, uint64_t *seq)
{
	bool	ok;

	pthread_mutex_lock(&ss->lock);
	if ((ok = ss->n + ss->reserved < ss->cap)) {
		ss->reserved++;
		*seq = ss->next++;
	}
	pthread_mutex_unlock(&ss->lock);
	return ok;
}

/* Another name for a reserved slot whose first one was taken. */
static uint64_t
spoolspare_next(struct spoolspare *ss)
{
	uint64_t	seq;

	pthread_mutex_lock(&ss->lock);
	seq = ss->next++;
	pthread_mutex_unlock(&ss->lock);
	return seq;
}

/* Gives a reserved slot back, filled with <seq> when <ok>. */
static void
spoolspare_release(struct spoolspare *ss, uint64_t seq, bool ok)
{
	pthread_mutex_lock(&ss->lock);
	ss->reserved--;
	if (ok)
		ss->seqs[ss->n++] = seq;
	pthread_mutex_unlock(&ss->lock);
}

/* Puts a popped spare back unused; false (drop it) when full. */
static bool
spoolspare_push(struct spoolspare *ss, uint64_t seq)
{
	bool	ok;

	pthread_mutex_lock(&ss->lock);
	if ((ok = ss->n + ss->reserved < ss->cap))
		ss->seqs[ss->n++] = seq;
	pthread_mutex_unlock(&ss->lock);
	return ok;
}

/* Opens <dirfd>/<name> for writing if it is a regular file with one
 * link; truncates it when <trunc>, else requires it to be empty.
 * O_NOFOLLOW: a symlink is refused; O_NONBLOCK: a FIFO cannot block
 * the caller (and means nothing for a regular file).  Returns the fd
 * or -1. */
static int
spoolspare_open_checked(int dirfd, const char *name, bool trunc)
{
	struct stat	st;
	int		fd;

	fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	if (fd == -1)
		return -1;
	/* No O_TRUNC: it would cut a planted hard link's other name
	 * before fstat() could refuse it. */
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_nlink != 1 || (st.st_size != 0 &&
	    (!trunc || ftruncate(fd, 0) == -1))) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* Whether open <err> says the spare itself is no good: not an empty
 * regular file with one link (EINVAL, from the check), a symlink
 * (ELOOP), a FIFO (ENXIO), a directory (EISDIR). */
static bool
spoolspare_unusable(int err)
{
	return err == EINVAL || err == ELOOP || err == ENXIO ||
	    err == EISDIR;
}

int
spoolspare_create(struct spoolspare *ss, int dirfd, const char *name)
{
	char		sname[SPOOLSPARE_NAME_MAX];
	uint64_t	seq;
	int		fd, err;

	while (spoolspare_pop(ss, &seq)) {
		spoolspare_name(sname, seq);
		if (renameat2(ss->fd, sname, dirfd, name,
		    RENAME_NOREPLACE) == -1) {
			if (errno == EEXIST) {
				if (!spoolspare_push(ss, seq))
					unlinkat(ss->fd, sname, 0);
				errno = EEXIST;
				return -1;
			}
			/* Gone, or no RENAME_NOREPLACE here: drop it. */
			if (errno == ENOENT || errno == EINVAL) {
				unlinkat(ss->fd, sname, 0);
				continue;
			}
			/* ENOSPC, EIO, ...: not the spare's fault. */
			err = errno;
			if (!spoolspare_push(ss, seq))
				unlinkat(ss->fd, sname, 0);
			errno = err;
			return -1;
		}
		if ((fd = spoolspare_open_checked(dirfd, name, false)) != -1)
			return fd;
		err = errno;
		if (spoolspare_unusable(err)) {
			log_warn("spool spare file=spare/%s: unusable, removed",
			    sname);
			unlinkat(dirfd, name, 0);
			continue;
		}
		/* EMFILE, ENOMEM, ...: put it back and say why; one
		 * failure must not empty the pool. */
		if (renameat2(dirfd, name, ss->fd, sname,
		    RENAME_NOREPLACE) == -1)
			unlinkat(dirfd, name, 0);
		else if (!spoolspare_push(ss, seq))
			unlinkat(ss->fd, sname, 0);
		errno = err;
		return -1;
	}
	return openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
}

int
spoolspare_file_write(struct spoolspare *ss, int dirfd, const char *name,
    const char *p, size_t len)
{
	int	fd;

	if ((fd = spoolspare_create(ss, dirfd, name)) == -1)
		return -1;
	return spooldir_fd_write(fd, dirfd, name, p, len);
}

int
spoolspare_remove(struct spoolspare *ss, int dirfd, const char *name)
{
	char		sname[SPOOLSPARE_NAME_MAX];
	struct stat	st;
	uint64_t	seq;
	int		tries, fd;

	/* What would not pass as a spare is unlinked as it always was. */
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1 ||
	    !spoolspare_reserve(ss, &seq))
		return unlinkat(dirfd, name, 0);
	for (tries = 0;; tries++) {
		spoolspare_name(sname, seq);
		if (renameat2(dirfd, name, ss->fd, sname,
		    RENAME_NOREPLACE) == 0)
			break;
		if (errno != EEXIST || tries == SPOOLSPARE_TRIES) {
			/* ENOENT here may be spare/ itself gone: only the
			 * unlink says whether the file is. */
			spoolspare_release(ss, seq, false);
			return unlinkat(dirfd, name, 0);
		}
		seq = spoolspare_next(ss);
	}
	/* Truncated after the rename: until then the name is the message
	 * (an envelope cut short in queue/ would read as corrupt).  A crash
	 * in between leaves content in spare/, which startup truncates. */
	if ((fd = spoolspare_open_checked(ss->fd, sname, true)) == -1) {
		unlinkat(ss->fd, sname, 0);
		spoolspare_release(ss, seq, false);
		return 0;
	}
	close(fd);
	spoolspare_release(ss, seq, true);
	return 0;
}

int
spoolspare_replace(struct spoolspare *ss, int fromfd, const char *from,
    int tofd, const char *to)
{
	/* Swapped in one step, so <to> never goes missing; the old file
	 * then has the name <from>.  Without an old file (ENOENT) or
	 * where the file system cannot swap (EINVAL), a plain rename. */
	if (renameat2(fromfd, from, tofd, to, RENAME_EXCHANGE) == -1) {
		if (errno != ENOENT && errno != EINVAL)
			return -1;
		return renameat(fromfd, from, tofd, to);
	}
	if (spoolspare_remove(ss, fromfd, from) == -1)
		log_warn("spool spare: remove replaced file %s", from);
	return 0;
}

long
spoolspare_adopt(struct spoolspare *ss)
{
	struct dirent	*de;
	struct stat	 st;
	DIR		*d;
	uint64_t	 seq;
	char		 esc[128];
	long		 n = 0;
	int		 fd;

	if ((d = spooldir_open(ss->fd)) == NULL)
		return -1;
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL)
			break;
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		str_log_escape(de->d_name, strlen(de->d_name), esc,
		    sizeof(esc));
		if (spoolspare_name_parse(de->d_name, &seq) == 0 &&
		    fstatat(ss->fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) ==
		    0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    ss->n < ss->cap &&
		    (fd = spoolspare_open_checked(ss->fd, de->d_name,
		    true)) != -1) {
			close(fd);
			ss->seqs[ss->n++] = seq;
			n++;
			continue;
		}
		/* Not ours, not a plain file, or one too many. */
		if (ss->n >= ss->cap &&
		    spoolspare_name_parse(de->d_name, &seq) == 0)
			unlinkat(ss->fd, de->d_name, 0);
		else if (unlinkat(ss->fd, de->d_name, 0) == 0)
			log_warnx("spool recover remove file=spare/%s "
			    "reason=not-a-spare", esc);
		else
			log_warn("spool recover remove file=spare/%s", esc);
	}
	if (errno != 0) {
		closedir(d);
		return -1;
	}
	closedir(d);
	return n;
}
