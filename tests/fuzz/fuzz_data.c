/*
 * fuzz_data.c - libFuzzer harness for the DATA path: line.c's
 * line_get_piece() on an evbuffer, feeding smtp_data_line() and
 * smtp_data_piece() exactly as session_process() and
 * session_data_line() do.
 *
 * Input: byte 0 picks the options (bit 0: reject bare LF; the rest: the
 * size limit), byte 1 seeds the chunk sizes, and the rest is what the
 * client sends, added to the evbuffer in chunks of 1..2048 octets.
 * After an end of data the decoder starts over, as for a new DATA.
 * Checked: the pieces and lines put together equal the lines of a flat
 * reference splitter, however the input is chunked, and a piece is a
 * whole cap, or one octet less when a CR comes next; END comes exactly
 * for a "." line ending in CRLF after a CRLF-terminated line, never
 * after a piece; output kept while no error is recorded holds no LF
 * (bare CRs, NULs and long lines are content: issue 13), and no bare-LF
 * line when those are refused; size counts the initial octets plus
 * each unstuffed line and its CRLF, and stays within the limit while no
 * error is recorded.
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
	bool			 midline;	/* pieces of a line came */
	uint64_t		 size;		/* expected d.size */
	const uint8_t		*ref;		/* the flat input */
	size_t			 ref_len;
	size_t			 ref_pos;	/* next reference line */
	const uint8_t		*cur;		/* the reference line that */
	size_t			 cur_len;	/* pieces are being */
	size_t			 cur_off;	/* compared with */
	bool			 cur_crlf;
	bool			 cur_open;	/* no LF: the input's end */
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
	st->midline = false;
	st->size = st->initial;
}

/* The reference splitter: the next whole line of the input, found with
 * memchr, without its terminator.  False when no LF is left. */
static bool
fuzz_ref_next(struct fuzz_state *st, const uint8_t **line, size_t *len,
    bool *crlf)
{
	const uint8_t	*p = st->ref + st->ref_pos, *lf;
	size_t		 n;

	if (st->ref_pos >= st->ref_len ||
	    (lf = memchr(p, '\n', st->ref_len - st->ref_pos)) == NULL)
		return false;
	n = (size_t)(lf - p);
	*line = p;
	*crlf = n > 0 && lf[-1] == '\r';
	*len = *crlf ? n - 1 : n;
	st->ref_pos += n + 1;
	return true;
}

/* One decoded line or piece, as session_data_line() handles it.
 * Returns false at the end of data. */
static bool
fuzz_data_line(struct fuzz_state *st, size_t len, bool crlf, bool more)
{
	const char	*out;
	size_t		 outlen, ol;
	uint64_t	 add;
	bool		 end;

	end = !more && !st->midline && st->prev_crlf && crlf && len == 1 &&
	    st->line[0] == '.';
	if (more)
		smtp_data_piece(&st->d, st->line, len, &out, &outlen);
	else if (smtp_data_line(&st->d, st->line, len, crlf, &out,
	    &outlen) == SMTP_DATA_END) {
		fuzz_check(end, "END without CRLF.CRLF");
		return false;
	}
	fuzz_check(!end, "CRLF.CRLF not taken as END");

	/* One leading dot of a line is unstuffed; the rest is content. */
	ol = !st->midline && len > 0 && st->line[0] == '.' ? len - 1 : len;
	fuzz_check(outlen == ol && out == st->line + (len - ol),
	    "output is not the unstuffed line");
	add = (uint64_t)ol + (more ? 0 : 2);
	st->size = st->size > UINT64_MAX - add ? UINT64_MAX : st->size + add;
	fuzz_check(st->d.size == st->size, "size accounting");
	if (st->d.err == SMTP_DATA_OK) {
		/* This reaches the spool. */
		fuzz_check(memchr(out, '\n', outlen) == NULL, "LF kept");
		fuzz_check(more || crlf || !st->reject_bare_lf,
		    "bare LF kept");
		fuzz_check(st->d.size <= st->max_size, "size over limit");
	}
	st->midline = more;
	if (!more)
		st->prev_crlf = crlf;
	return true;
}

/* Compares what line_get_piece() returned with the reference line. */
static void
fuzz_compare(struct fuzz_state *st, size_t len, bool crlf, bool more)
{
	if (st->cur == NULL) {
		st->cur_off = 0;
		st->cur_open = !fuzz_ref_next(st, &st->cur, &st->cur_len,
		    &st->cur_crlf);
		if (st->cur_open) {
			/* Pieces of a last line that never ends. */
			st->cur = st->ref + st->ref_pos;
			st->cur_len = st->ref_len - st->ref_pos;
			st->cur_crlf = false;
			st->ref_pos = st->ref_len;
		}
	}
	fuzz_check(st->line[len] == '\0', "piece not NUL-terminated");
	fuzz_check(st->cur_off + len <= st->cur_len &&
	    memcmp(st->cur + st->cur_off, st->line, len) == 0,
	    "line_get_piece disagrees with the reference (content)");
	st->cur_off += len;
	if (more) {
		fuzz_check(!crlf, "a piece with a CRLF");
		/* A whole cap, or one less with a CR next. */
		fuzz_check(len == FUZZ_LINE_MAX || (len == FUZZ_LINE_MAX - 1 &&
		    st->cur[st->cur_off] == '\r'), "piece of the wrong size");
		return;
	}
	fuzz_check(!st->cur_open, "line_get_piece ended a line without LF");
	fuzz_check(st->cur_off == st->cur_len,
	    "line_get_piece ended the line early");
	fuzz_check(crlf == st->cur_crlf, "line_get_piece disagrees on CRLF");
	st->cur = NULL;
}

/* Takes every line and piece out of <buf>, as session_process() does
 * in SESSION_DATA. */
static void
fuzz_drain(struct fuzz_state *st, struct evbuffer *buf)
{
	size_t		len = 0;
	bool		crlf = false, more = false;

	while (line_get_piece(&st->r, buf, st->line, &len, &crlf, &more) ==
	    LINE_OK) {
		fuzz_compare(st, len, crlf, more);
		if (!fuzz_data_line(st, len, crlf, more))
			fuzz_start(st);
	}
	/* Whatever is left is shorter than a cap. */
	fuzz_check(evbuffer_get_length(buf) < FUZZ_LINE_MAX,
	    "line_get_piece left a cap or more");
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
	/* Everything is in: no complete line may be left unread, nor a
	 * line with a LF left half read. */
	fuzz_check(st.cur == NULL ? !fuzz_ref_next(&st, &rline, &rlen,
	    &rcrlf) : st.cur_open, "line_get_piece missed a line");
	evbuffer_free(buf);
	return 0;
}
