/*
 * spoolrecover.h - the spool's startup recovery: what a crash at any
 * step of a commit, a move or a requeue left behind becomes a message
 * exactly once again (in queue/ or failed/), or is set aside in
 * corrupt/ with a log line.
 */
#ifndef SPOOLRECOVER_H
#define SPOOLRECOVER_H

struct spoolspare;

/* The spool's subdirectories, open, and its pool of spare files. */
struct spoolrecover_dirs {
	int			 tmpfd;
	int			 queuefd;
	int			 failedfd;
	int			 corruptfd;
	struct spoolspare	*spare;
};

/* Adopts spare/ (spoolspare_adopt()), empties tmp/ (its files become
 * spares while the pool has room), checks every entry of queue/ (data
 * without envelope deleted; envelopes without data, unreadable or
 * truncated ones moved to corrupt/), removes from failed/ what an
 * interrupted requeue already put in queue/, and syncs the directories
 * it may have changed (not spare/: it holds nothing that matters after
 * a crash).  Returns 0, or -1 with errno when a directory could not be
 * read or synced. */
int		 spoolrecover_run(const struct spoolrecover_dirs *);

#endif /* SPOOLRECOVER_H */
