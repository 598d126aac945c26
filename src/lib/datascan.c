/*
 * datascan.c - the DATA phase in bulk (datascan.h).
 *
 * The body is scanned a line at a time with memchr(); a line costs a
 * few comparisons at its start and its end, and its octets go on as
 * part of one span of the input.  Only the start of a header line is
 * looked at octet by octet, and held (at most one cap) until it is
 * known whether it is a field, since the missing Date:/Message-ID: go
 * before the first line that is not.  To say and count exactly what
 * the line-based path did, the scanner follows where line_get_piece()
 * would cut a long line (every SMTP_TEXT_LINE_MAX raw octets, one fewer
 * when the last is a CR): the size limit was checked at each cut, and
 * only the first piece was looked at for a field name.
 */
#include "config.h"

#include "datascan.h"

#include <string.h>

#define DATASCAN_CUT	SMTP_TEXT_LINE_MAX	/* line_get_piece()'s cap */

static const char datascan_rcvd[] = "Received:";

#define DATASCAN_RCVD	((int)sizeof(datascan_rcvd) - 1)

/* How the start of a header line was judged. */
enum datascan_line {
	DATASCAN_FIELD,		/* "Name:" */
	DATASCAN_CONT,		/* a blank: the field goes on */
	DATASCAN_NOTFIELD,	/* the header section ended before it */
};

void
datascan_init(struct datascan *ds, const struct datascan_sink *sink,
    uint64_t max_size, bool reject_bare_lf, uint64_t initial_size)
{
	memset(ds, 0, sizeof(*ds));
	ds->sink = *sink;
	ds->max_size = max_size;
	ds->reject_bare_lf = reject_bare_lf;
	ds->err = SMTP_DATA_OK;
	ds->size = initial_size;
	ds->prev_crlf = true;		/* the DATA command ended in CRLF */
	ds->hops_on = true;
	stamp_scan_init(&ds->stamp);
	ds->at = DATASCAN_BOL;
	ds->rmatch = -1;
}

static void
datascan_fail(struct datascan *ds, enum smtp_data_err err)
{
	if (ds->err == SMTP_DATA_OK)
		ds->err = err;
}

/* Hands a span to the sink while no violation is recorded: after one,
 * the message is refused and nothing more of it is kept. */
static void
datascan_put(struct datascan *ds, const char *p, size_t n)
{
	if (n > 0 && ds->err == SMTP_DATA_OK)
		ds->sink.put(ds->sink.arg, p, n);
}

static uint64_t
datascan_sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Counts <add> canonical octets and checks the limit, where the line
 * decoder did: then the stamp fields written before count too. */
static void
datascan_count(struct datascan *ds, uint64_t add)
{
	ds->size = datascan_sat_add(ds->size, add);
	if (ds->size > ds->max_size)
		datascan_fail(ds, SMTP_DATA_ESIZE);
	ds->size = datascan_sat_add(ds->size, ds->deferred);
	ds->deferred = 0;
}

static char
datascan_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* The held start of the line is judged: the stamp goes before it when
 * the header section ends there; then the held octets go on. */
static void
datascan_decide(struct datascan *ds, enum datascan_line how)
{
	size_t	n = ds->holdlen;

	switch (how) {
	case DATASCAN_FIELD:		/* the ':' is the last octet held */
		stamp_scan_field(&ds->stamp, ds->hold, n - 1);
		break;
	case DATASCAN_CONT:
		break;
	case DATASCAN_NOTFIELD:
		ds->stamp.in_headers = false;
		if (ds->err == SMTP_DATA_OK)
			ds->deferred += ds->sink.stamp(ds->sink.arg);
		break;
	}
	ds->holding = false;
	ds->holdlen = 0;
	datascan_put(ds, ds->hold, n);
}

/* line_get_piece() would cut the line here: a piece of the cap, or one
 * fewer when its last octet is a CR, which then starts the next. */
static void
datascan_cut(struct datascan *ds, bool cr_last)
{
	size_t	raw = cr_last ? DATASCAN_CUT - 1 : DATASCAN_CUT;
	size_t	u = raw - (ds->ncut == 0 && ds->dotted ? 1 : 0);

	ds->ucut += u;
	datascan_count(ds, u);
	ds->ncut++;
	ds->pfill = DATASCAN_CUT - raw;
	/* Only the first piece was looked at for a field name. */
	if (ds->holding)
		datascan_decide(ds, DATASCAN_NOTFIELD);
}

/* Follows <k> raw octets of the line (none of them its LF) for the
 * cuts. */
static void
datascan_raw(struct datascan *ds, const char *q, size_t k)
{
	size_t	m;

	while (k >= (m = DATASCAN_CUT - ds->pfill)) {
		ds->pfill = DATASCAN_CUT;
		datascan_cut(ds, q[m - 1] == '\r');
		q += m;
		k -= m;
	}
	ds->pfill += k;
}

/* The line's content starts (after a stuffing dot, if any). */
static void
datascan_start(struct datascan *ds)
{
	ds->rmatch = ds->hops_on ? 0 : -1;
	ds->holding = ds->stamp.in_headers && ds->err == SMTP_DATA_OK;
	ds->holdlen = 0;
	ds->at = ds->holding || ds->rmatch == 0 ? DATASCAN_HEAD :
	    DATASCAN_BODY;
}

/* One content octet at the start of a line: the Received: prefix, and
 * while held, the field name. */
static void
datascan_head(struct datascan *ds, char c)
{
	unsigned char	u = (unsigned char)c;

	if (ds->rmatch >= 0 && ds->rmatch < DATASCAN_RCVD)
		ds->rmatch = datascan_lower(c) ==
		    datascan_lower(datascan_rcvd[ds->rmatch]) ?
		    ds->rmatch + 1 : -1;
	if (ds->holding) {
		ds->hold[ds->holdlen++] = c;
		if (ds->holdlen == 1 && (c == ' ' || c == '\t') &&
		    ds->stamp.in_field)
			datascan_decide(ds, DATASCAN_CONT);
		else if (c == ':')
			datascan_decide(ds, ds->holdlen > 1 ? DATASCAN_FIELD :
			    DATASCAN_NOTFIELD);
		else if (u < 33 || u > 126)
			datascan_decide(ds, DATASCAN_NOTFIELD);
	}
	ds->ulen++;
	ds->last_cr = c == '\r';
}

/* After datascan_head(): the rest of the line needs only its end. */
static void
datascan_head_done(struct datascan *ds)
{
	if (!ds->holding && (ds->rmatch < 0 || ds->rmatch >= DATASCAN_RCVD))
		ds->at = DATASCAN_BODY;
}

/* The LF at p[i] ends the line: CRLF out, the line's checks in the
 * order smtp_data_line() made them.  <*span> is where the octets not
 * yet handed on start. */
static void
datascan_eol(struct datascan *ds, const char *p, size_t i, size_t *span)
{
	bool		crlf = ds->last_cr;
	uint64_t	content = ds->ulen - (crlf ? 1 : 0);

	if (ds->holding || !crlf) {
		datascan_put(ds, p + *span, i - *span);
		*span = i;
	}
	if (ds->holding)
		datascan_decide(ds, DATASCAN_NOTFIELD);
	if (!crlf) {
		datascan_put(ds, "\r", 1);	/* the LF follows */
		if (ds->reject_bare_lf)
			datascan_fail(ds, SMTP_DATA_EBARELF);
	}
	datascan_count(ds, content - ds->ucut + 2);
	if (ds->hops_on) {
		if (content == 0)
			ds->hops_on = false;
		else if (ds->rmatch == DATASCAN_RCVD) {
			if (ds->hops < SMTP_HOPS_MAX)
				ds->hops++;
			if (ds->hops >= SMTP_HOPS_MAX)
				datascan_fail(ds, SMTP_DATA_ELOOP);
		}
	}
	ds->prev_crlf = crlf;
	ds->at = DATASCAN_BOL;
	ds->dotted = false;
	ds->last_cr = false;
	ds->rmatch = -1;
	ds->ulen = ds->ucut = 0;
	ds->pfill = 0;
	ds->ncut = 0;
}

/* The held CR of ".\r" turned out to be content. */
static void
datascan_dot_cr(struct datascan *ds)
{
	bool	held = ds->holding;

	if (ds->at == DATASCAN_HEAD) {
		datascan_head(ds, '\r');
		datascan_head_done(ds);
	} else {
		ds->ulen++;
		ds->last_cr = true;
	}
	if (!held)
		datascan_put(ds, "\r", 1);
}

size_t
datascan_feed(struct datascan *ds, const char *p, size_t n, bool *end)
{
	const char	*nl;
	size_t		 i = 0, j, span = 0;
	bool		 held;

	*end = false;
	while (i < n) {
		switch (ds->at) {
		case DATASCAN_BOL:
			if (p[i] != '.') {
				datascan_start(ds);
				if (ds->holding) {
					datascan_put(ds, p + span, i - span);
					span = i;
				}
				break;
			}
			/* RFC 5321 4.5.2: the leading dot goes. */
			datascan_put(ds, p + span, i - span);
			ds->dotted = true;
			datascan_raw(ds, p + i, 1);
			ds->at = DATASCAN_DOT;
			span = ++i;
			break;
		case DATASCAN_DOT:
			if (p[i] != '\r') {
				datascan_start(ds);
				break;
			}
			datascan_raw(ds, p + i, 1);
			ds->at = DATASCAN_DOTCR;
			span = ++i;
			break;
		case DATASCAN_DOTCR:
			/* Only "." between CRLFs ends the data (RFC 5321
			 * 4.1.1.4): anything else is smuggling bait. */
			if (p[i] == '\n' && ds->prev_crlf) {
				*end = true;
				return i + 1;
			}
			datascan_start(ds);
			datascan_dot_cr(ds);
			break;
		case DATASCAN_HEAD:
			if (p[i] == '\n') {
				datascan_eol(ds, p, i, &span);
				i++;
				break;
			}
			held = ds->holding;
			datascan_head(ds, p[i]);
			datascan_raw(ds, p + i, 1);
			i++;
			/* A held octet is handed on with the hold. */
			if (held)
				span = i;
			datascan_head_done(ds);
			break;
		case DATASCAN_BODY:
			nl = memchr(p + i, '\n', n - i);
			j = nl != NULL ? (size_t)(nl - p) : n;
			if (j > i) {
				datascan_raw(ds, p + i, j - i);
				ds->ulen += j - i;
				ds->last_cr = p[j - 1] == '\r';
			}
			i = j;
			if (nl != NULL) {
				datascan_eol(ds, p, i, &span);
				i++;
			}
			break;
		}
	}
	datascan_put(ds, p + span, i - span);
	return n;
}

void
datascan_add(struct datascan *ds, size_t n)
{
	ds->size = datascan_sat_add(ds->size, n);
}
