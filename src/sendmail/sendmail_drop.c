/*
 * sendmail_drop.c - one maildrop file, written by the injector (see
 * sendmail_drop.h).  The file is 0644 whatever the umask, so the
 * daemon's user can read it; only the rename makes it visible, and
 * only after the data is synced.
 */
#include "config.h"

#include "sendmail_drop.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
sendmail_drop_fail(struct sendmail_drop *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sendmail_drop_fail(struct sendmail_drop *d, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof(d->err), fmt, ap);
	va_end(ap);
}

/* 2 * <n> random hex digits into <out>.  getrandom() blocks only until
 * the kernel's pool is ready early at boot: a mail sent then waits
 * rather than fails, and its file name stays unguessable. */
static int
sendmail_drop_random_hex(char *out, size_t n)
{
	unsigned char	 r[32];
	size_t		 i;

	if (n > sizeof(r) || getrandom(r, n, 0) != (ssize_t)n)
		return -1;
	for (i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/* Writes (<final>: rewrites in place) the maildrop header. */
static int
sendmail_drop_header(struct sendmail_drop *d, const struct maildrop_env *env,
    bool final)
{
	char	*text;
	size_t	 len;
	int	 rc;

	if ((text = maildrop_format(env, &len)) == NULL)
		return -1;
	if (final)
		rc = pwrite(fileno(d->fp), text, len, 0) == (ssize_t)len ? 0 :
		    -1;
	else
		rc = fwrite(text, 1, len, d->fp) == len ? 0 : -1;
	free(text);
	return rc;
}

void
sendmail_drop_init(struct sendmail_drop *d)
{
	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
}

int
sendmail_drop_open(struct sendmail_drop *d, const char *spool,
    const struct maildrop_env *env)
{
	char		 path[PATH_MAX], hex[MAILDROP_NAME_LEN + 1];
	char		 tmp[sizeof(d->tmpname)];
	int		 fd;

	/* O_PATH: others may search maildrop/ but not read it. */
	if (snprintf(path, sizeof(path), "%s/" MAILDROP_DIR, spool) >=
	    (int)sizeof(path) || (d->dirfd = open(path, O_PATH |
	    O_DIRECTORY | O_CLOEXEC)) == -1) {
		sendmail_drop_fail(d, "cannot open %s: %s (has smartrelayd "
		    "run once?)", path, strerror(errno));
		return -1;
	}
	if (sendmail_drop_random_hex(hex, MAILDROP_NAME_LEN / 2) == -1) {
		sendmail_drop_fail(d, "getrandom: %s", strerror(errno));
		return -1;
	}
	snprintf(d->name, sizeof(d->name), "%s", hex);
	snprintf(tmp, sizeof(tmp), MAILDROP_TMP_PREFIX "%s", hex);
	fd = openat(d->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL |
	    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1) {
		sendmail_drop_fail(d, "cannot create a file in %s/"
		    MAILDROP_DIR ": %s", spool, strerror(errno));
		return -1;
	}
	memcpy(d->tmpname, tmp, sizeof(tmp));
	/* Whatever the umask: the daemon's user must be able to read it. */
	if (fchmod(fd, MAILDROP_FILE_MODE) == -1 ||
	    (d->fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		sendmail_drop_fail(d, "maildrop file: %s", strerror(errno));
		return -1;
	}
	if (sendmail_drop_header(d, env, false) == -1) {
		sendmail_drop_fail(d, "writing the maildrop: %s",
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
sendmail_drop_write(struct sendmail_drop *d, const void *p, size_t n)
{
	if (fwrite(p, 1, n, d->fp) == n)
		return 0;
	sendmail_drop_fail(d, "writing the maildrop: %s", strerror(errno));
	return -1;
}

/*
 * Only the directory's owner (and root) may open maildrop/ to fsync it;
 * for everyone else syncfs(2) on the file commits the whole file system,
 * the rename included.
 */
int
sendmail_drop_commit(struct sendmail_drop *d, const struct maildrop_env *env)
{
	const char	*step = "write";
	int		 fd = fileno(d->fp), dfd, rc;

	if (fflush(d->fp) == EOF || ferror(d->fp) ||
	    sendmail_drop_header(d, env, true) == -1)
		goto fail;
	step = "fsync";
	if (fsync(fd) == -1)
		goto fail;
	step = "rename";
	if (renameat2(d->dirfd, d->tmpname, d->dirfd, d->name,
	    RENAME_NOREPLACE) == -1)
		goto fail;
	d->tmpname[0] = '\0';
	/* From here the daemon may take the file: a failure below may
	 * lead to a duplicate if the caller retries, never to a loss. */
	step = "sync";
	if ((dfd = openat(d->dirfd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		rc = fsync(dfd);
		close(dfd);
	} else
		rc = syncfs(fd);
	if (rc == -1)
		goto fail;
	rc = fclose(d->fp);
	d->fp = NULL;
	if (rc == 0)
		return 0;
fail:
	sendmail_drop_fail(d, "cannot write the maildrop (%s): %s", step,
	    strerror(errno));
	return -1;
}

void
sendmail_drop_cleanup(struct sendmail_drop *d)
{
	if (d->fp != NULL)
		fclose(d->fp);
	if (d->tmpname[0] != '\0')
		unlinkat(d->dirfd, d->tmpname, 0);
	if (d->dirfd != -1)
		close(d->dirfd);
	sendmail_drop_init(d);
}
