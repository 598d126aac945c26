/*
 * pickupfile.h - one maildrop file into a spool message (the work of
 * the maildrop pickup that may block: reads and writes of up to
 * max_message_size), for a worker thread.
 */
#ifndef PICKUPFILE_H
#define PICKUPFILE_H

#include <sys/stat.h>

#include <stddef.h>

#include "maildrop.h"

struct conf;
struct spool;
struct spool_msg;

#define PICKUPFILE_BUF_SIZE	(64 * 1024)	/* body read buffer */

/* What became of one file. */
enum pickupfile_result {
	PICKUPFILE_DONE,	/* ready to commit, or moved aside */
	PICKUPFILE_GONE,	/* not there (already picked up) */
	PICKUPFILE_RETRY,	/* temporary failure: left in place */
};

/* Where the files are and go; borrowed. */
struct pickupfile_dirs {
	int		 dirfd;		/* maildrop/ */
	int		 corruptfd;	/* corrupt/ */
	struct spool	*spool;
	char		*buf;		/* PICKUPFILE_BUF_SIZE octets */
};

/* One file being picked up: the caller sets conf, name and fd = -1 and
 * zeroes the rest; pickupfile_run() fills in the rest. */
struct pickupfile {
	const struct conf	*conf;		/* borrowed for the run */
	const char		*name;
	int			 fd;
	struct stat		 st;		/* its owner is the sender */
	struct maildrop_env	 env;		/* maildrop_env_cleanup() */
	size_t			 nrcpt;		/* once routed */
	size_t			 hdrlen;
	struct spool_msg	*msg;		/* the result, or NULL */
	struct maildrop_canon	 canon;
};

/* Picks up <f>->name: on PICKUPFILE_DONE with f->msg set, the message is
 * written but not committed (the caller commits it, then removes the
 * file); without, the file was rejected (moved to corrupt/, logged).
 * Touches only <f>, its file and <dirs>' buffer: safe on any thread
 * while nothing else uses that buffer. */
enum pickupfile_result pickupfile_run(const struct pickupfile_dirs *dirs,
		    struct pickupfile *f);

#endif /* PICKUPFILE_H */
