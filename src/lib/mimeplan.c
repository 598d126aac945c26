/*
 * mimeplan.c - the re-encoder's plan (see mimeplan.h): a growing
 * array, read back in order.
 */
#include "config.h"

#include "mimeplan.h"

#include <stdlib.h>

#include "mime.h"
#include "util.h"

void
mimeplan_cleanup(struct mimeplan *pl)
{
	free(pl->v);
	pl->v = NULL;
	pl->n = pl->cap = pl->next = 0;
}

bool
mimeplan_is_full(const struct mimeplan *pl)
{
	return pl->n >= MIME_PLAN_MAX;
}

void
mimeplan_add(struct mimeplan *pl, uint32_t ent, enum mimeleaf_action action,
    enum mimeleaf_cs cs)
{
	struct mimeplan_part	*p;

	if (pl->n == pl->cap) {
		pl->cap = pl->cap == 0 ? 16 : pl->cap * 2;
		pl->v = xrealloc(pl->v, pl->cap * sizeof(*pl->v));
	}
	p = &pl->v[pl->n++];
	p->ent = ent;
	p->action = (uint8_t)action;
	p->cs = (uint8_t)cs;
}

void
mimeplan_rewind(struct mimeplan *pl)
{
	pl->next = 0;
}

bool
mimeplan_take(struct mimeplan *pl, uint32_t ent,
    enum mimeleaf_action *action, enum mimeleaf_cs *cs)
{
	if (pl->next >= pl->n || pl->v[pl->next].ent != ent)
		return false;
	*action = pl->v[pl->next].action;
	*cs = pl->v[pl->next].cs;
	pl->next++;
	return true;
}

bool
mimeplan_is_done(const struct mimeplan *pl)
{
	return pl->next == pl->n;
}
