/*
 * datascan_model.c - the line-based DATA path as the model of the
 * scanner (datascan_model.h).
 */
#include "config.h"

#include "datascan_model.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "datascan.h"
#include "line.h"
#include "stamp.h"

static void
dsm_put(struct dsm_result *r, const char *p, size_t n)
{
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2 + 1024;
		if ((r->out = realloc(r->out, r->cap)) == NULL)
			abort();
	}
	memcpy(r->out + r->len, p, n);
	r->len += n;
}

/* The fields msgin would write, without the clock and the randomness. */
static size_t
dsm_stamp(struct dsm_result *r, const struct stamp_scan *s)
{
	size_t	before = r->len;

	if (!s->has_date)
		dsm_put(r, "Date: now\r\n", 11);
	if (!s->has_msgid)
		dsm_put(r, "Message-ID: <new@x>\r\n", 21);
	return r->len - before;
}

static void
dsm_finish(struct dsm_result *r)
{
	struct mime_scan	ms;

	mime_scan_init(&ms);
	mime_scan_feed(&ms, r->out, r->len);
	r->clean = mime_scan_is_clean(&ms);
	r->eightbit = mime_scan_8bit(&ms);
}

void
dsm_model(struct dsm_result *r, const struct dsm_input *in)
{
	struct evbuffer		*buf = evbuffer_new();
	struct line_reader	 lr;
	struct smtp_data	 d;
	struct stamp_scan	 st;
	char			 line[SMTP_TEXT_LINE_MAX + 1];
	const char		*o;
	size_t			 len, olen, off = 0, c, to;
	bool			 crlf, more;

	memset(r, 0, sizeof(*r));
	line_reader_init(&lr, SMTP_TEXT_LINE_MAX);
	smtp_data_init(&d, in->max_size, in->reject_bare_lf, in->initial);
	stamp_scan_init(&st);
	for (c = 0; c <= in->ncuts && !r->end; c++) {
		to = c < in->ncuts ? in->cuts[c] : in->n;
		evbuffer_add(buf, in->in + off, to - off);
		off = to;
		while (!r->end && line_get_piece(&lr, buf, line, &len,
		    &crlf, &more) == LINE_OK) {
			if (more)
				smtp_data_piece(&d, line, len, &o, &olen);
			else if (smtp_data_line(&d, line, len, crlf, &o,
			    &olen) == SMTP_DATA_END) {
				r->end = true;
				break;
			}
			if (d.err != SMTP_DATA_OK)
				continue;
			if (stamp_scan_line(&st, o, olen, !more))
				d.size += dsm_stamp(r, &st);
			dsm_put(r, o, olen);
			if (!more)
				dsm_put(r, "\r\n", 2);
		}
	}
	r->used = off - evbuffer_get_length(buf);
	if (r->end && d.err == SMTP_DATA_OK && st.in_headers) {
		st.in_headers = false;
		d.size += dsm_stamp(r, &st);
	}
	r->err = d.err;
	r->size = d.size;
	dsm_finish(r);
	evbuffer_free(buf);
}

struct dsm_scan_ctx {
	struct dsm_result	*r;
	struct datascan		 ds;
};

static void
dsm_put_cb(void *arg, const char *p, size_t n)
{
	struct dsm_scan_ctx	*x = arg;

	dsm_put(x->r, p, n);
}

static size_t
dsm_stamp_cb(void *arg)
{
	struct dsm_scan_ctx	*x = arg;

	return dsm_stamp(x->r, &x->ds.stamp);
}

void
dsm_scan(struct dsm_result *r, const struct dsm_input *in)
{
	struct dsm_scan_ctx	*x = calloc(1, sizeof(*x));
	struct datascan_sink	 sink = { dsm_put_cb, dsm_stamp_cb, NULL };
	size_t			 off = 0, c, to, used;

	if (x == NULL)
		abort();
	memset(r, 0, sizeof(*r));
	x->r = r;
	sink.arg = x;
	datascan_init(&x->ds, &sink, in->max_size, in->reject_bare_lf,
	    in->initial);
	for (c = 0; c <= in->ncuts && !r->end; c++) {
		to = c < in->ncuts ? in->cuts[c] : in->n;
		if (to < off)
			continue;	/* inside what the end consumed */
		used = datascan_feed(&x->ds, in->in + off, to - off, &r->end);
		if (used != to - off && !r->end)
			abort();
		off += used;
	}
	r->used = off;
	if (r->end && x->ds.err == SMTP_DATA_OK && x->ds.stamp.in_headers) {
		x->ds.stamp.in_headers = false;
		datascan_add(&x->ds, dsm_stamp(r, &x->ds.stamp));
	}
	r->err = x->ds.err;
	r->size = x->ds.size;
	dsm_finish(r);
	free(x);
}

void
dsm_free(struct dsm_result *r)
{
	free(r->out);
	r->out = NULL;
}

const char *
dsm_diff(const struct dsm_result *m, const struct dsm_result *s)
{
	if (m->end != s->end)
		return "end of data";
	if (m->err != s->err)
		return "error";
	if (!m->end)
		return NULL;
	if (m->used != s->used)
		return "octets consumed";
	if (m->err != SMTP_DATA_OK)
		return NULL;
	if (m->size != s->size)
		return "size";
	if (m->len != s->len || memcmp(m->out, s->out, m->len) != 0)
		return "octets written";
	if (m->clean != s->clean || m->eightbit != s->eightbit)
		return "quick check";
	return NULL;
}
