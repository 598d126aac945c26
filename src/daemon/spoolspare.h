/*
 * spoolspare.h - a pool of empty spool files kept for reuse.
 *
 * A file system that allocates inodes slowly right after others were
 * freed (ext4 skips every inode freed in the last minute, scanning under
 * the directory's lock) makes a relay that creates and deletes two files
 * per message slower the longer it runs.  So a removed spool file is
 * truncated and renamed into spare/ instead, and a new one is a spare
 * renamed into place; only when the pool is empty (or full) is an inode
 * allocated (or freed).  Spares are named "<16 hex digits>.spare", hold
 * nothing, and nothing outside this module looks into spare/.  Safe on
 * any thread: the pool is guarded by a mutex, the file operations run
 * outside it.
 */
#ifndef SPOOLSPARE_H
#define SPOOLSPARE_H

#include <stddef.h>

#define SPOOLSPARE_SUFFIX	".spare"

struct spoolspare;

/* A pool of at most <cap> spares in the directory <sparefd>, which it
 * then owns (closed by spoolspare_free()).  Starts empty: call
 * spoolspare_adopt() before any other thread uses it. */
struct spoolspare *spoolspare_new(int sparefd, size_t cap);
void		 spoolspare_free(struct spoolspare *);

/* Startup: takes into the pool every spare in spare/ (truncating one
 * that is not empty), up to the cap; unlinks the rest, and whatever is
 * not a regular file with one link named as ours.  Returns the number
 * of spares adopted, or -1 if spare/ could not be read. */
long		 spoolspare_adopt(struct spoolspare *);

/* Spares in the pool now. */
size_t		 spoolspare_count(struct spoolspare *);

/* Creates <dirfd>/<name> as open(2) with O_WRONLY|O_CREAT|O_EXCL would
 * (mode 0600), from a spare when there is one that is still an empty
 * regular file with one link.  Returns the fd (O_CLOEXEC), or -1 with
 * errno (EEXIST: the name is taken). */
int		 spoolspare_create(struct spoolspare *, int dirfd,
		    const char *name);

/* spoolspare_create() <dirfd>/<name>, then writes the <len> octets at
 * <p>, fsync, close.  Returns 0, or -1 with errno, the file gone. */
int		 spoolspare_file_write(struct spoolspare *, int dirfd,
		    const char *name, const char *p, size_t len);

/* Removes <dirfd>/<name> as unlinkat(2) would (-1 with errno ENOENT if
 * it is not there), keeping its inode as an empty spare when the pool
 * has room and it is a regular file with no other link.  The file is
 * truncated here: call it off the loop.  Durable removal is the
 * caller's fsync of <dirfd>, as with unlink. */
int		 spoolspare_remove(struct spoolspare *, int dirfd,
		    const char *name);

/* Renames <fromfd>/<from> over <tofd>/<to> as renameat(2) would, in one
 * atomic step; the file it replaces becomes a spare (or is unlinked).
 * Returns 0 or -1 with errno. */
int		 spoolspare_replace(struct spoolspare *, int fromfd,
		    const char *from, int tofd, const char *to);

#endif /* SPOOLSPARE_H */
