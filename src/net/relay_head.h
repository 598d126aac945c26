/*
 * relay_head.h - the From: rewrite of one outgoing message (rewrite.h):
 * the address its upstream sends as, and the header block rewritten to
 * match, read from the start of the spool file (at most
 * REWRITE_HEADER_MAX octets, so memory stays bounded whatever the
 * message).  relay_txn.c sends the rewritten block in place of the
 * file's first <head_skip> octets.
 */
#ifndef RELAY_HEAD_H
#define RELAY_HEAD_H

#include <stddef.h>
#include <stdint.h>

struct conf;
struct conf_upstream;
struct envelope;

struct relay_head {
	/* Set by the caller, borrowed. */
	const struct conf		*conf;
	const struct conf_upstream	*up;
	const struct envelope		*env;
	int				 fd;	/* data file, at its start */
	/* Set by relay_head_prepare(); zeroed by the caller before. */
	const char	*account;	/* MAIL FROM, or NULL to keep the
					 * envelope sender */
	char		*head;		/* rewritten header block, or NULL */
	size_t		 headlen, head_skip;
	uint64_t	 size;		/* the message's size as sent */
};

/* Prepares the From: rewrite of the message: reads the header block
 * from t->fd (leaving the offset anywhere).  Returns 0, or -1 with errno
 * set when the file cannot be read. */
int	relay_head_prepare(struct relay_head *t);

/* Frees what relay_head_prepare() made. */
void	relay_head_cleanup(struct relay_head *t);

#endif /* RELAY_HEAD_H */
