/*
 * mimeleaf.c - one leaf body through the two passes (see mimeleaf.h).
 */
#include "config.h"

#include "mimeleaf.h"

#include <string.h>

#include "util.h"

#define MIMELEAF_LINE_MAX	998	/* RFC 5322 2.1.1, without CRLF */

static void
mimeleaf_u8_init(struct mimeleaf_u8 *u)
{
	memset(u, 0, sizeof(*u));
	u->ascii = u->valid = true;
}

/* Takes the whole characters gathered; at <end>, all must be. */
static void
mimeleaf_u8_drain(struct mimeleaf_u8 *u, bool end)
{
	size_t	k;

	while (u->valid && u->n > 0) {
		k = str_utf8_len(u->c, u->n);
		if (k == 0) {
			if (end || u->n == sizeof(u->c))
				u->valid = false;
			return;
		}
		memmove(u->c, u->c + k, u->n - k);
		u->n -= k;
	}
}

static void
mimeleaf_u8_feed(struct mimeleaf_u8 *u, const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n && u->valid; i++) {
		if (u->n == 0 && (unsigned char)p[i] < 0x80)
			continue;
		u->ascii = false;
		u->c[u->n++] = (unsigned char)p[i];
		mimeleaf_u8_drain(u, false);
	}
}

static void
mimeleaf_count_cb(void *arg, const char *p, size_t n)
{
	uint64_t	*count = arg;

	(void)p;
	*count += n;
}

enum mimeleaf_action
mimeleaf_action(enum mimefield_cte cte, enum mimefield_type type)
{
	switch (cte) {
	case MIMEFIELD_CTE_IDENTITY:
		return type == MIMEFIELD_OTHER ? MIMELEAF_B64 : MIMELEAF_QP;
	case MIMEFIELD_CTE_QP:
		return MIMELEAF_QP_FIX;
	case MIMEFIELD_CTE_BASE64:
		return MIMELEAF_B64_FIX;
	case MIMEFIELD_CTE_OTHER:
		break;
	}
	return MIMELEAF_NONE;
}

bool
mimeleaf_action_is_raw(enum mimeleaf_action a)
{
	return a == MIMELEAF_QP || a == MIMELEAF_B64;
}

void
mimeleaf_start(struct mimeleaf *l, enum mimeleaf_action action, bool scan,
    const struct mimebody_out *out)
{
	static const enum mimebody_mode	 modes[] = {
		MIMEBODY_QP, MIMEBODY_QP, MIMEBODY_B64, MIMEBODY_QP_FIX,
		MIMEBODY_B64_FIX,
	};
	struct mimebody_out		 o;

	memset(l, 0, sizeof(*l));
	l->action = action;
	l->scan = scan;
	l->out = *out;
	if (action != MIMELEAF_NONE) {
		o.cb = scan ? mimeleaf_count_cb : out->cb;
		o.arg = scan ? (void *)&l->alt : out->arg;
		mimebody_init(&l->body, modes[action], &o);
	}
	mimeleaf_u8_init(&l->u8);
}

void
mimeleaf_data(struct mimeleaf *l, const char *p, size_t n, size_t col)
{
	if (n == 0)
		return;
	if (l->scan) {
		if (col + n > MIMELEAF_LINE_MAX || memchr(p, '\r', n) != NULL ||
		    memchr(p, '\n', n) != NULL || memchr(p, '\0', n) != NULL)
			l->needs = true;
		mimeleaf_u8_feed(&l->u8, p, n);
		l->verb += n;
	}
	if (l->action != MIMELEAF_NONE) {
		if (l->eol_pending)
			mimebody_eol(&l->body);
		l->eol_pending = false;
		mimebody_put(&l->body, p, n);
	}
	if (l->scan || l->action == MIMELEAF_NONE)
		l->out.cb(l->out.arg, p, n);
}

void
mimeleaf_eol(struct mimeleaf *l)
{
	if (l->scan) {
		mimeleaf_u8_drain(&l->u8, true);
		l->verb += 2;
	}
	if (l->action != MIMELEAF_NONE) {
		if (l->eol_pending)
			mimebody_eol(&l->body);
		l->eol_pending = true;
	}
	if (l->scan || l->action == MIMELEAF_NONE)
		l->out.cb(l->out.arg, "\r\n", 2);
}

int
mimeleaf_end(struct mimeleaf *l, bool delim, enum mimeleaf_cs *cs)
{
	int	r = 0;

	if (l->action != MIMELEAF_NONE) {
		if (l->eol_pending && !delim)
			mimebody_eol(&l->body);
		l->eol_pending = false;
		r = mimebody_finish(&l->body, delim);
	}
	mimeleaf_u8_drain(&l->u8, true);
	if (l->u8.ascii)
		*cs = MIMELEAF_CS_ASCII;
	else
		*cs = l->u8.valid ? MIMELEAF_CS_UTF8 : MIMELEAF_CS_8BIT;
	return r;
}
