/*
 * fuzz_data.c - libFuzzer harness for the DATA path: line.c's line_get()
 * on an evbuffer, feeding smtp_data_line() and smtp_data_overlong()
 * exactly as session_process() and session_data_line() do.
 *
 * Input: byte 0 picks the options (bit 0: reject bare LF; the rest: the
 * size limit), byte 1 seeds the chunk sizes, and the rest is what the
 * client sends, added to the evbuffer in chunks of 1..2048 octets.
 * After an end of data the decoder starts over, as for a new DATA.
 * Checked: the lines equal those of a flat reference splitter, however
 * the input is chunked; END comes exactly for a "." line ending in CRLF
 * after a CRLF-terminated line; output kept while no error is recorded
 * holds no CR, LF or NUL, and no bare-LF line when those are refused;
 * size counts the initial octets plus each unstuffed line and its CRLF,
 * and stays within the limit while no error is recorded.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "line.h"
#include "smtp.h"

#define FUZZ_LINE_MAX	SMTP_TEXT_LINE_MAX	/* SESSION_DATA_LINE_MAX */

struct fuzz_state {
	struct smtp_data	 d;
	struct line_reader	 r;
	uint64_t		 max_size;
	uint64_t		 initial;
	bool			 reject_bare_lf;
	bool			 prev_crlf;	/* our own view of it */
	uint64_t		 size;		/* expected d.size */
	const uint8_t		*ref;		/* the flat input */
	size_t			 ref_len;
	size_t			 ref_pos;	/* next reference line */
	uint32_t		 rng;
	char			 line[FUZZ_LINE_MAX + 1];
};

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Reports a broken invariant; libFuzzer saves the input on abort(). */
static void
fuzz_check(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_data: %s\n", what);
	abort();
}

/* Starts a message, as session_cmd_data() does. */
static void
fuzz_start(struct fuzz_state *st)
{
	smtp_data_init(&st->d, st->max_size, st->reject_bare_lf, st->initial);
	line_reader_init(&st->r, FUZZ_LINE_MAX);
	st->prev_crlf = true;
	st->size = st->initial;
}

/* The reference splitter: the next line of the whole input, found with
 * memchr.  A line longer than the cap, terminator included, is
 * LINE_TOOLONG; no LF left is LINE_AGAIN. */
static enum line_rc
fuzz_ref_next(struct fuzz_state *st, const uint8_t **line, size_t *len,
    bool *crlf)
{
	const uint8_t	*p = st->ref + st->ref_pos, *lf;
	size_t		 n;

	if (st->ref_pos >= st->ref_len ||
	    (lf = memchr(p, '\n', st->ref_len - st->ref_pos)) == NULL)
		return LINE_AGAIN;
	n = (size_t)(lf - p);
	*line = p;
	*crlf = n > 0 && lf[-1] == '\r';
	*len = *crlf ? n - 1 : n;
	st->ref_pos += n + 1;
	return n + 1 <= FUZZ_LINE_MAX ? LINE_OK : LINE_TOOLONG;
}

/* One decoded line, as session_data_line() handles it.  Returns false
 * at the end of data. */
static bool
fuzz_data_line(struct fuzz_state *st, size_t len, bool crlf)
{
	const char	*out;
	size_t		 outlen, ol;
	uint64_t	 add;
	bool		 end;

	end = st->prev_crlf && crlf && len == 1 && st->line[0] == '.';
	if (smtp_data_line(&st->d, st->line, len, crlf, &out, &outlen) ==
	    SMTP_DATA_END) {
		fuzz_check(end, "END without CRLF.CRLF");
		return false;
	}
	fuzz_check(!end, "CRLF.CRLF not taken as END");

	/* One leading dot is unstuffed; the rest is the line itself. */
	ol = len > 0 && st->line[0] == '.' ? len - 1 : len;
	fuzz_check(outlen == ol && out == st->line + (len - ol),
	    "output is not the unstuffed line");
	add = (uint64_t)ol + 2;
	st->size = st->size > UINT64_MAX - add ? UINT64_MAX : st->size + add;
	fuzz_check(st->d.size == st->size, "size accounting");
	if (st->d.err == SMTP_DATA_OK) {
		/* This line would reach the spool. */
		fuzz_check(memchr(out, '\r', outlen) == NULL &&
		    memchr(out, '\n', outlen) == NULL &&
		    memchr(out, '\0', outlen) == NULL, "CR, LF or NUL kept");
		fuzz_check(crlf || !st->reject_bare_lf, "bare LF kept");
		fuzz_check(len + 2 <= SMTP_TEXT_LINE_MAX, "long line kept");
		fuzz_check(st->d.size <= st->max_size, "size over limit");
	}
	st->prev_crlf = crlf;
	return true;
}

/* Compares what line_get() returned with the reference splitter. */
static void
fuzz_compare(struct fuzz_state *st, enum line_rc rc, size_t len, bool crlf)
{
	const uint8_t	*rline = NULL;
	size_t		 rlen = 0;
	bool		 rcrlf = false;

	fuzz_check(fuzz_ref_next(st, &rline, &rlen, &rcrlf) == rc,
	    "line_get disagrees with the reference (kind)");
	fuzz_check(rcrlf == crlf, "line_get disagrees on CRLF");
	if (rc == LINE_OK)
		fuzz_check(rlen == len && memcmp(rline, st->line, len) == 0 &&
		    st->line[len] == '\0', "line_get disagrees on the line");
}

/* Takes every complete line out of <buf>, as session_process() does in
 * SESSION_DATA. */
static void
fuzz_drain(struct fuzz_state *st, struct evbuffer *buf)
{
	enum line_rc	rc;
	size_t		len = 0;
	bool		crlf = false;

	while ((rc = line_get(&st->r, buf, st->line, &len, &crlf)) !=
	    LINE_AGAIN) {
		fuzz_compare(st, rc, len, crlf);
		if (rc == LINE_TOOLONG) {
			smtp_data_overlong(&st->d, crlf);
			fuzz_check(st->d.err != SMTP_DATA_OK,
			    "overlong line not recorded");
			st->prev_crlf = crlf;
		} else if (!fuzz_data_line(st, len, crlf))
			fuzz_start(st);
	}
}

/* Chunk sizes: mostly small, sometimes large (xorshift32). */
static size_t
fuzz_chunk(struct fuzz_state *st)
{
	uint32_t	x = st->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	st->rng = x;
	return (x & 3) == 0 ? 1 + (x >> 2) % 2048 : 1 + (x >> 2) % 16;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_state	 st;
	struct evbuffer			*buf;
	const uint8_t			*rline;
	size_t				 off, n, rlen;
	bool				 rcrlf;
	unsigned int			 sel;

	if (size < 2)
		return 0;
	memset(&st, 0, sizeof(st));
	st.reject_bare_lf = (data[0] & 1) != 0;
	sel = data[0] >> 1;
	/* The top value tests saturation: no limit, nearly full count. */
	st.max_size = sel == 127 ? UINT64_MAX : (uint64_t)sel * 128;
	st.initial = sel == 127 ? UINT64_MAX - 256 : 64;
	st.rng = ((uint32_t)data[1] + 1) * 2654435761u;
	st.ref = data + 2;
	st.ref_len = size - 2;
	if ((buf = evbuffer_new()) == NULL)
		return 0;
	fuzz_start(&st);
	for (off = 0; off < st.ref_len; off += n) {
		n = fuzz_chunk(&st);
		if (n > st.ref_len - off)
			n = st.ref_len - off;
		evbuffer_add(buf, st.ref + off, n);
		fuzz_drain(&st, buf);
	}
	/* Everything is in: no complete line may be left unread. */
	fuzz_check(fuzz_ref_next(&st, &rline, &rlen, &rcrlf) == LINE_AGAIN,
	    "line_get missed a line");
	evbuffer_free(buf);
	return 0;
}
