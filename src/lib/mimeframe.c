/*
 * mimeframe.c - lines and boundary delimiters of a streamed message
 * (see mimeframe.h).  O(1) memory: one line start and the stack.
 */
#include "config.h"

#include "mimeframe.h"

#include <string.h>

void
mimeframe_init(struct mimeframe *f, const struct mimeframe_ops *ops)
{
	f->ops = *ops;
	f->cr = false;
	f->bol = true;
	f->headmode = false;
	f->headlen = 0;
	f->nlevel = 0;
}

int
mimeframe_push(struct mimeframe *f, const char *boundary, size_t blen,
    bool digest, unsigned int depth)
{
	struct mimeframe_level	*l;

	if (f->nlevel == MIME_DEPTH_MAX || blen > sizeof(l->b))
		return -1;
	l = &f->level[f->nlevel++];
	memcpy(l->b, boundary, blen);
	l->blen = blen;
	l->digest = digest;
	l->depth = depth;
	return 0;
}

const struct mimeframe_level *
mimeframe_level(const struct mimeframe *f, size_t k)
{
	return &f->level[k];
}

/*
 * Is the gathered line a boundary delimiter line: "--", a boundary of
 * an open multipart, "--" for the last one, then only white space (RFC
 * 2046 5.1.1)?  The innermost boundary is tried first; an outer one
 * ends the inner multiparts too.  Returns the level, or -1.  *near:
 * the line starts with "--" and a boundary without being a delimiter
 * (a reader matching prefixes would take it for one).  <whole>: the
 * line is all in f->head.
 */
static int
mimeframe_delim_level(const struct mimeframe *f, bool whole, bool *close,
    bool *near)
{
	const struct mimeframe_level	*l;
	size_t				 k, i;

	*near = *close = false;
	for (k = f->nlevel; k-- > 0;) {
		l = &f->level[k];
		if (f->headlen < 2 + l->blen ||
		    memcmp(f->head + 2, l->b, l->blen) != 0)
			continue;
		i = 2 + l->blen;
		*close = f->headlen - i >= 2 && f->head[i] == '-' &&
		    f->head[i + 1] == '-';
		for (i += *close ? 2 : 0; i < f->headlen &&
		    (f->head[i] == ' ' || f->head[i] == '\t'); i++)
			;
		if (whole && i == f->headlen)
			return (int)k;
		*near = true;
	}
	return -1;
}

/* The gathered start of a line is content after all. */
static void
mimeframe_flush(struct mimeframe *f, bool whole)
{
	bool	close, near;

	f->headmode = false;
	(void)mimeframe_delim_level(f, whole, &close, &near);
	f->ops.head(f->ops.arg, f->head, f->headlen, whole, near);
}

static void
mimeframe_data(struct mimeframe *f, const char *p, size_t n)
{
	size_t	k;

	while (n > 0) {
		if (f->bol) {
			f->bol = false;
			f->headmode = f->nlevel > 0 && p[0] == '-';
			f->headlen = 0;
		}
		if (!f->headmode) {
			f->ops.data(f->ops.arg, p, n);
			return;
		}
		k = MIME_HEAD_MAX - f->headlen < n ?
		    MIME_HEAD_MAX - f->headlen : n;
		memcpy(f->head + f->headlen, p, k);
		f->headlen += k;
		p += k;
		n -= k;
		if ((f->headlen >= 2 && f->head[1] != '-') ||
		    f->headlen == MIME_HEAD_MAX)
			mimeframe_flush(f, false);
	}
}

static void
mimeframe_eol(struct mimeframe *f)
{
	bool	close, near;
	int	k;

	if (f->bol)			/* an empty line */
		f->headmode = false;
	if (f->headmode) {
		k = mimeframe_delim_level(f, true, &close, &near);
		if (k >= 0) {
			f->headmode = false;
			f->nlevel = close ? (size_t)k : (size_t)k + 1;
			f->bol = true;
			f->ops.delim(f->ops.arg, (size_t)k, close, f->head,
			    f->headlen);
			return;
		}
		mimeframe_flush(f, true);
	}
	f->bol = true;
	f->ops.eol(f->ops.arg);
}

/* A CR is a line end only with the LF after it, which may come in the
 * next chunk. */
void
mimeframe_feed(struct mimeframe *f, const char *p, size_t n)
{
	const char	*cr;
	size_t		 k;

	while (n > 0) {
		if (f->cr) {
			f->cr = false;
			if (p[0] == '\n') {
				mimeframe_eol(f);
				p++;
				n--;
				continue;
			}
			mimeframe_data(f, "\r", 1);
		}
		cr = memchr(p, '\r', n);
		k = cr != NULL ? (size_t)(cr - p) : n;
		mimeframe_data(f, p, k);
		if (cr == NULL)
			return;
		p += k + 1;
		n -= k + 1;
		f->cr = true;
	}
}

void
mimeframe_end(struct mimeframe *f)
{
	if (f->cr) {
		f->cr = false;
		mimeframe_data(f, "\r", 1);
	}
	if (!f->bol)
		mimeframe_eol(f);
}
