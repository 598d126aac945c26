/*
 * mimeplan.h - the re-encoder's plan (mime.c): the parts the first
 * pass decided to re-encode, in the order they come, each with how and
 * its charset; the second pass takes them back in that same order.
 *
 * Pure code.  8 octets a part, at most MIME_PLAN_MAX parts (the caller
 * checks mimeplan_is_full() before it adds one).
 */
#ifndef MIMEPLAN_H
#define MIMEPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mimeleaf.h"

/* One part of the plan. */
struct mimeplan_part {
	uint32_t	ent;		/* entity number */
	uint8_t		action;		/* enum mimeleaf_action */
	uint8_t		cs;		/* enum mimeleaf_cs */
};

/* Embedded in its owner; all zero is an empty plan. */
struct mimeplan {
	struct mimeplan_part	*v;
	size_t			 n, cap;
	size_t			 next;		/* the next part to take */
};

void	mimeplan_cleanup(struct mimeplan *);

/* True when it holds MIME_PLAN_MAX parts. */
bool	mimeplan_is_full(const struct mimeplan *);

/* Adds entity <ent>, after those already planned. */
void	mimeplan_add(struct mimeplan *, uint32_t ent,
	    enum mimeleaf_action action, enum mimeleaf_cs cs);

/* The second pass starts: parts are taken from the first one again. */
void	mimeplan_rewind(struct mimeplan *);

/* If the next part to take is entity <ent>, takes it: sets <action>
 * and <cs> and returns true.  Else returns false. */
bool	mimeplan_take(struct mimeplan *, uint32_t ent,
	    enum mimeleaf_action *action, enum mimeleaf_cs *cs);

/* True when every part was taken. */
bool	mimeplan_is_done(const struct mimeplan *);

#endif /* MIMEPLAN_H */
