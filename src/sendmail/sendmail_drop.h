/*
 * sendmail_drop.h - one file of the maildrop (maildrop.h), written by
 * the injector: created as ".tmp.<random>" with a provisional header,
 * filled, then given its real header, synced and renamed into place.
 * A file not committed is removed by sendmail_drop_cleanup().
 */
#ifndef SENDMAIL_DROP_H
#define SENDMAIL_DROP_H

#include <stddef.h>
#include <stdio.h>

#include "maildrop.h"

struct sendmail_drop {
	int	 dirfd;			/* maildrop/, O_PATH */
	FILE	*fp;			/* the .tmp. file */
	char	 name[MAILDROP_NAME_LEN + 1];
	char	 tmpname[sizeof(MAILDROP_TMP_PREFIX) + MAILDROP_NAME_LEN];
	char	 err[512];		/* why the last call failed */
};

void	sendmail_drop_init(struct sendmail_drop *);

/* Creates SPOOL/maildrop/.tmp.<random> and writes the header of <env>
 * (its size provisional).  Returns 0, or -1 with the reason in d->err:
 * every failure here is temporary. */
int	sendmail_drop_open(struct sendmail_drop *, const char *spool,
	    const struct maildrop_env *env);

/* Appends message octets.  Returns 0 or -1 (d->err). */
int	sendmail_drop_write(struct sendmail_drop *, const void *p, size_t n);

/* Rewrites the header with <env> (same length: only the size changed),
 * syncs the file, renames it to its final name and syncs that.
 * Returns 0 once the message is on stable storage, or -1 (d->err). */
int	sendmail_drop_commit(struct sendmail_drop *,
	    const struct maildrop_env *env);

/* Closes the file; one not yet renamed into place is removed. */
void	sendmail_drop_cleanup(struct sendmail_drop *);

#endif /* SENDMAIL_DROP_H */
