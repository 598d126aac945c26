/*
 * line.c - the one place that looks for end-of-line in client input.
 *
 * The buffered length is compared with the cap before searching, and the
 * search never goes past the cap: a line that cannot fit is drained as
 * it arrives, or handed over in pieces as it arrives (line_get_piece),
 * so a client streaming megabytes without LF costs at most one cap of
 * memory.  CRLF and bare LF both end a line; the caller learns which,
 * and judges any other CR it finds inside.  A CR that would end a piece
 * waits for the next one: the octet after it may make it a terminator.
 */
#include "config.h"

#include "line.h"

#include <string.h>

#include <event2/buffer.h>

void
line_reader_init(struct line_reader *r, size_t max)
{
	r->max = max;
	r->skipping = false;
	r->skip_cr = false;
}

/* True when the byte at <pos> of <buf> is a CR. */
static bool
line_is_cr_at(struct evbuffer *buf, size_t pos)
{
	struct evbuffer_ptr	p;
	unsigned char		c = 0;

	if (evbuffer_ptr_set(buf, &p, pos, EVBUFFER_PTR_SET) == -1 ||
	    evbuffer_copyout_from(buf, &p, &c, 1) != 1)
		return false;
	return c == '\r';
}

/* Drops the rest of an over-long line.  Returns LINE_TOOLONG once the
 * LF that ends it has been drained, LINE_AGAIN while it goes on.  The
 * search cost is linear overall: whatever is scanned is drained. */
static enum line_rc
line_skip(struct line_reader *r, struct evbuffer *buf, bool *crlf)
{
	struct evbuffer_ptr	 p;
	size_t			 len = evbuffer_get_length(buf);

	if (len == 0)
		return LINE_AGAIN;
	p = evbuffer_search(buf, "\n", 1, NULL);
	if (p.pos == -1) {
		r->skip_cr = line_is_cr_at(buf, len - 1);
		evbuffer_drain(buf, len);
		return LINE_AGAIN;
	}
	if (p.pos > 0)
		r->skip_cr = line_is_cr_at(buf, (size_t)p.pos - 1);
	evbuffer_drain(buf, (size_t)p.pos + 1);
	*crlf = r->skip_cr;
	r->skipping = false;
	r->skip_cr = false;
	return LINE_TOOLONG;
}

enum line_rc
line_get(struct line_reader *r, struct evbuffer *buf, char *out, size_t *len,
    bool *crlf)
{
	struct evbuffer_ptr	 end, p;
	size_t			 avail, n;

	if (r->skipping)
		return line_skip(r, buf, crlf);
	avail = evbuffer_get_length(buf);
	if (avail == 0)
		return LINE_AGAIN;
	/* Search only as far as a line that fits could reach. */
	evbuffer_ptr_set(buf, &end, avail < r->max ? avail : r->max,
	    EVBUFFER_PTR_SET);
	p = evbuffer_search_range(buf, "\n", 1, NULL, &end);
	if (p.pos == -1) {
		if (avail < r->max)
			return LINE_AGAIN;
		r->skipping = true;
		r->skip_cr = false;
		return line_skip(r, buf, crlf);
	}
	n = (size_t)p.pos;
	evbuffer_remove(buf, out, n + 1);
	*crlf = n > 0 && out[n - 1] == '\r';
	if (*crlf)
		n--;
	out[n] = '\0';
	*len = n;
	return LINE_OK;
}

enum line_rc
line_get_piece(struct line_reader *r, struct evbuffer *buf, char *out,
    size_t *len, bool *crlf, bool *more)
{
	struct evbuffer_ptr	 end, p;
	size_t			 avail = evbuffer_get_length(buf), n;

	*more = false;
	if (avail < r->max)
		return line_get(r, buf, out, len, crlf);
	/* A whole cap is buffered: a line if there is a LF in it. */
	evbuffer_ptr_set(buf, &end, r->max, EVBUFFER_PTR_SET);
	p = evbuffer_search_range(buf, "\n", 1, NULL, &end);
	if (p.pos != -1)
		return line_get(r, buf, out, len, crlf);
	n = r->max;
	evbuffer_copyout(buf, out, n);
	if (out[n - 1] == '\r')
		n--;
	evbuffer_drain(buf, n);
	out[n] = '\0';
	*len = n;
	*crlf = false;
	*more = true;
	return LINE_OK;
}
