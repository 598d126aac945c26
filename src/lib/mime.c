/*
 * mime.c - lossless re-encoding for relaying (see mime.h).
 *
 * What changes: a leaf whose body has a line over 998 octets, a bare CR
 * or LF, or a NUL is re-encoded: quoted-printable for text (text/ and
 * message/ leaves, no Content-Type), base64 otherwise; its
 * Content-Transfer-Encoding is replaced, a message gets MIME-Version, a
 * part without Content-Type gets "text/plain; charset=" us-ascii, utf-8
 * or unknown-8bit (RFC 1428).  A body already in quoted-printable gets
 * soft breaks, one in base64 is re-wrapped; header fields are folded or
 * RFC 2047 encoded (mimefield.c).  All else is copied byte for byte.
 * Preamble and epilogue lines (ignored by readers, RFC 2046 5.1.1) are
 * cut with CRLF SP and their CR, LF, NUL become spaces (mimeign.c).
 * Here: the entities and the plan; the lines and the boundaries are
 * mimeframe.c's, a leaf's body mimeleaf.c's, the plan's storage
 * mimeplan.c's.
 * Memory: one field (MIME_FIELD_MAX), one line start (MIME_HEAD_MAX),
 * MIME_DEPTH_MAX boundaries, the plan (8 octets a part, MIME_PLAN_MAX):
 * under 256 KB, and for a moment about 1 MB to repair a 64 KB field.
 * Beyond a limit (deeper nesting, a bigger field, an unknown encoding,
 * a line that is nearly a boundary), a part that needs re-encoding
 * fails the message with mime_enc_detail(): no guess, no loss.
 */
#include "config.h"

#include "mime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mimebody.h"
#include "mimefield.h"
#include "mimeframe.h"
#include "mimeign.h"
#include "mimeleaf.h"
#include "mimeplan.h"
#include "util.h"

enum mime_pass {
	MIME_PASS_SCAN,
	MIME_PASS_EMIT,
};

enum mime_state {
	MIME_S_HEADER,			/* an entity's header */
	MIME_S_LEAF,			/* a leaf's body */
	MIME_S_IGNORE,			/* a preamble or an epilogue */
};

/* The entity being read: the message, a part or an enclosed message. */
struct mime_ent {
	uint32_t		 index;
	unsigned int		 depth;
	bool			 root;		/* a message's own header */
	bool			 dflt_rfc822;	/* in a multipart/digest */
	bool			 has_ct, ct_over, has_mv, has_cte;
	struct mimefield_ctype	 ct;
	enum mimefield_cte	 cte;
	bool			 blank;		/* header ended with an empty
						 * line */
	enum mimeleaf_action	 action;	/* pass 2: planned; pass 1:
						 * the candidate */
	enum mimeleaf_cs	 cs;
	bool			 cte_done;	/* our CTE field written */
	const char		*opaque;	/* why the structure is not
						 * known, or NULL */
	bool			 ambiguous;
	uint64_t		 cte_bytes;	/* its CTE fields, written */
};

struct mime_enc {
	enum mime_pass		 pass;
	enum mime_rc		 rc;
	bool			 planned;	/* pass 1 is over */
	bool			 seven;		/* mime_enc_set_7bit() */
	bool			 f8bit;		/* 7-bit: the field being read
						 * has an octet over 0x7f */
	char			 detail[160];
	bool			 changed;
	void			(*cb)(void *, const char *, size_t);
	void			*arg;
	uint64_t		 out;		/* written or counted */
	int64_t			 delta;		/* pass 1: planned parts */
	uint64_t		 size;		/* pass 1: the output's size */
	uint64_t		 inlen, scan_inlen;
	uint32_t		 nent, scan_nent;
	/* lines */
	struct mimeframe	 frame;		/* lines, open multiparts */
	size_t			 col;		/* octets of this line so far */
	struct mimeign		 ign;		/* a preamble or epilogue */
	/* structure */
	enum mime_state		 state;
	struct mime_ent		 ent;
	struct mimeleaf		 leaf;		/* the leaf's body */
	struct mimefield_in	 fin;		/* the header field being
						 * read */
	struct mimeplan		 plan;		/* parts to re-encode */
	struct mime_stats	 stats;
};

static const char *const mime_cs_name[] = {
	"us-ascii", "utf-8", "unknown-8bit",
};

const char *
mime_rc_str(enum mime_rc rc)
{
	switch (rc) {
	case MIME_OK:
		return "re-encoded";
	case MIME_UNCHANGED:
		return "unchanged";
	case MIME_EHEADER:
		return "header field cannot be made conformant";
	case MIME_EENCODING:
		return "part in an unknown transfer encoding";
	case MIME_ESTRUCTURE:
		return "MIME structure not known for sure";
	case MIME_ELIMIT:
		return "over the re-encoding limits";
	case MIME_EMISMATCH:
		return "message changed between passes";
	}
	return "?";
}

/*
 * Output and failure.
 */

static void
mime_out(struct mime_enc *e, const char *p, size_t n)
{
	e->out += n;
	if (e->pass == MIME_PASS_EMIT && n > 0)
		e->cb(e->arg, p, n);
}

static void
mime_outs(struct mime_enc *e, const char *s)
{
	mime_out(e, s, strlen(s));
}

static void __attribute__((format(printf, 3, 4)))
mime_fail(struct mime_enc *e, enum mime_rc rc, const char *fmt, ...)
{
	va_list	ap;

	if (e->pass != MIME_PASS_SCAN || e->rc != MIME_OK)
		return;
	e->rc = rc;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
}

static void
mime_body_out_cb(void *arg, const char *p, size_t n)
{
	mime_out(arg, p, n);
}

/*
 * Entities.
 */

static void
mime_ent_start(struct mime_enc *e, unsigned int depth, bool root,
    bool dflt_rfc822)
{
	struct mime_ent	*t = &e->ent;

	memset(t, 0, sizeof(*t));
	t->index = e->nent++;
	t->depth = depth;
	t->root = root;
	t->dflt_rfc822 = dflt_rfc822;
	t->cte = MIMEFIELD_CTE_IDENTITY;
	if (e->pass == MIME_PASS_EMIT)
		mimeplan_take(&e->plan, t->index, &t->action, &t->cs);
	e->state = MIME_S_HEADER;
	e->fin.open = false;
}

static const char *
mime_cte_line(enum mimeleaf_action a)
{
	return a == MIMELEAF_QP ?
	    "Content-Transfer-Encoding: quoted-printable\r\n" :
	    "Content-Transfer-Encoding: base64\r\n";
}

/* The fields added to the header of an entity re-encoded from raw
 * octets, written (pass 2) or only measured.  Returns their size. */
static size_t
mime_additions(struct mime_enc *e, bool write)
{
	struct mime_ent	*t = &e->ent;
	char		 ct[80];
	size_t		 n = 0;

	if (t->root && !t->has_mv) {
		if (write)
			mime_outs(e, "MIME-Version: 1.0\r\n");
		n += strlen("MIME-Version: 1.0\r\n");
	}
	if (!t->has_ct) {
		snprintf(ct, sizeof(ct), "Content-Type: text/plain; "
		    "charset=%s\r\n", mime_cs_name[t->cs]);
		if (write)
			mime_outs(e, ct);
		n += strlen(ct);
	}
	if (!t->cte_done) {
		if (write)
			mime_outs(e, mime_cte_line(t->action));
		n += strlen(mime_cte_line(t->action));
	}
	t->cte_done = true;
	return n;
}

static void
mime_leaf_start(struct mime_enc *e, enum mimefield_type type)
{
	struct mime_ent		*t = &e->ent;
	struct mimebody_out	 o = { mime_body_out_cb, e };

	if (e->pass == MIME_PASS_SCAN)
		t->action = t->opaque != NULL ? MIMELEAF_NONE :
		    mimeleaf_action(t->cte, type);
	/*
	 * A body we re-encode gets the empty line when its header had
	 * none: its first line, encoded, could read as a field.
	 */
	if (e->pass == MIME_PASS_EMIT && mimeleaf_action_is_raw(t->action))
		mime_additions(e, true);
	if (t->blank || (e->pass == MIME_PASS_EMIT &&
	    t->action != MIMELEAF_NONE))
		mime_outs(e, "\r\n");
	mimeleaf_start(&e->leaf, t->action, e->pass == MIME_PASS_SCAN, &o);
	e->state = MIME_S_LEAF;
}

/*
 * The header has ended: with an empty line (<blank>, written here) or
 * with a line that is no field, which the caller then gives the body.
 * Decides what the entity is.  A container needs the empty line; a
 * multipart or message/rfc822 that cannot be read as one is a leaf
 * whose structure is not known (opaque).
 */
static void
mime_hdr_end(struct mime_enc *e, bool blank)
{
	struct mime_ent		*t = &e->ent;
	enum mimefield_type	 type;
	bool			 deeper = t->depth + 1 <= MIME_DEPTH_MAX;

	t->blank = blank;
	if (t->has_ct)
		type = t->ct.type;
	else
		type = t->dflt_rfc822 ? MIMEFIELD_RFC822 : MIMEFIELD_TEXT;
	if (t->ct_over)
		t->opaque = "Content-Type over 64 KB";
	else if (type == MIMEFIELD_MULTIPART) {
		if (blank && deeper && t->ct.blen > 0 &&
		    mimeframe_push(&e->frame, t->ct.boundary, t->ct.blen,
		    t->ct.digest, t->depth + 1) == 0) {
			mime_outs(e, "\r\n");
			e->state = MIME_S_IGNORE;
			mimeign_start(&e->ign, e->seven, mime_body_out_cb, e);
			return;
		}
		t->opaque = !blank ? "multipart header without empty line" :
		    !deeper ? "nesting over 32 levels" :
		    "multipart without boundary";
	} else if (type == MIMEFIELD_RFC822 &&
	    t->cte == MIMEFIELD_CTE_IDENTITY) {
		if (blank && deeper) {
			mime_outs(e, "\r\n");
			mime_ent_start(e, t->depth + 1, true, false);
			return;
		}
		t->opaque = !blank ? "message header without empty line" :
		    "nesting over 32 levels";
	}
	mime_leaf_start(e, type);
}

/*
 * Header fields.
 */

/* What the field says about the entity. */
static void
mime_field_read(struct mime_enc *e)
{
	struct mime_ent	*t = &e->ent;
	const char	*f = e->fin.f.p;
	size_t		 n = e->fin.f.len;

	if (mimefield_is(f, n, "Content-Type") && !t->has_ct) {
		t->has_ct = true;
		t->ct_over = e->fin.over;
		if (!e->fin.over)
			mimefield_ctype(f, n, &t->ct);
	} else if (mimefield_is(f, n, "Content-Transfer-Encoding") &&
	    !t->has_cte) {
		t->has_cte = true;
		t->cte = e->fin.over ? MIMEFIELD_CTE_OTHER :
		    mimefield_cte(f, n);
	} else if (mimefield_is(f, n, "MIME-Version"))
		t->has_mv = true;
}

/* The field is complete: read it, then write it, repaired if needed,
 * or in place of the first Content-Transfer-Encoding of a part we
 * re-encode, our own. */
static void
mime_field_end(struct mime_enc *e)
{
	struct mime_ent		*t = &e->ent;
	enum mimefield_rc	 rc;
	bool			 is_cte;
	uint64_t		 before = e->out;
	char			*fix;
	size_t			 fixlen;

	if (!e->fin.open)
		return;
	e->fin.open = false;
	mime_field_read(e);
	is_cte = mimefield_is(e->fin.f.p, e->fin.f.len,
	    "Content-Transfer-Encoding");
	if (e->seven && e->f8bit)
		mime_fail(e, MIME_EHEADER, "header field \"%.*s\": 8-bit "
		    "octets and no 8BITMIME", (int)mimefield_name_len(
		    e->fin.start, e->fin.startlen), e->fin.start);
	if (e->fin.over) {
		if (e->fin.dirty)
			mime_fail(e, MIME_EHEADER, "header field \"%.*s\" "
			    "over 64 KB", (int)mimefield_name_len(e->fin.start,
			    e->fin.startlen), e->fin.start);
	} else if (is_cte && e->pass == MIME_PASS_EMIT &&
	    mimeleaf_action_is_raw(t->action)) {
		if (!t->cte_done)
			mime_outs(e, mime_cte_line(t->action));
		t->cte_done = true;
	} else {
		rc = mimefield_fix(e->fin.f.p, e->fin.f.len, &fix, &fixlen);
		if (rc == MIMEFIELD_FIXED) {
			mime_out(e, fix, fixlen);
			free(fix);
			e->changed = true;
			if (e->pass == MIME_PASS_SCAN)
				e->stats.fields++;
		} else {
			mime_out(e, e->fin.f.p, e->fin.f.len);
			if (rc != MIMEFIELD_CLEAN)
				mime_fail(e, MIME_EHEADER, "header field "
				    "\"%.*s\": %s",
				    (int)mimefield_name_len(e->fin.f.p,
				    e->fin.f.len > 40 ? 40 : e->fin.f.len),
				    e->fin.f.p,
				    rc == MIMEFIELD_ELONG ?
				    "line over 998 octets cannot be folded" :
				    "bare CR, LF or NUL");
		}
	}
	if (is_cte)
		t->cte_bytes += e->out - before;
}

/* The line that started as a field candidate is none: the header ends
 * and the line, from its start, is the body's. */
static void
mime_hdr_nonfield(struct mime_enc *e, const char *p, size_t n)
{
	size_t	col0 = e->col;

	e->fin.open = false;
	mime_hdr_end(e, false);
	e->col = 0;
	if (col0 > 0)
		mimeleaf_data(&e->leaf, e->fin.f.p, col0, e->col);
	e->col = col0;
	if (n > 0)
		mimeleaf_data(&e->leaf, p, n, e->col);
}

static void
mime_hdr_data(struct mime_enc *e, const char *p, size_t n)
{
	size_t	i;

	if (e->col == 0 && !(e->fin.open &&
	    (p[0] == ' ' || p[0] == '\t'))) {
		mime_field_end(e);
		if (p[0] == ' ' || p[0] == '\t') {
			mime_hdr_nonfield(e, p, n);
			return;
		}
		mimefield_in_start(&e->fin);
		e->f8bit = false;
	}
	if (!mimefield_in_name(&e->fin, p, n, e->col)) {
		mime_hdr_nonfield(e, p, n);
		return;
	}
	for (i = 0; i < n && e->seven && !e->f8bit; i++)
		e->f8bit = (unsigned char)p[i] >= 0x80;
	mimefield_in_add(&e->fin, p, n, false, e->col);
}

static void
mime_hdr_eol(struct mime_enc *e)
{
	if (e->col == 0) {		/* the empty line */
		mime_field_end(e);
		mime_hdr_end(e, true);
		return;
	}
	if (!mimefield_in_is_field(&e->fin)) {	/* a line that is no field */
		mime_hdr_nonfield(e, NULL, 0);
		mimeleaf_eol(&e->leaf);
		return;
	}
	mimefield_in_add(&e->fin, "\r\n", 2, true, e->col);
}

/*
 * Leaf bodies (mimeleaf.c), and the plan the first pass makes of them.
 */

static void
mime_plan_add(struct mime_enc *e)
{
	struct mime_ent		*t = &e->ent;

	mimeplan_add(&e->plan, t->index, t->action, t->cs);
	e->delta += (int64_t)e->leaf.alt - (int64_t)e->leaf.verb +
	    (t->blank ? 0 : 2);
	if (mimeleaf_action_is_raw(t->action))
		e->delta += (int64_t)mime_additions(e, false) -
		    (int64_t)t->cte_bytes;
	e->changed = true;
	e->stats.parts++;
}

/* The leaf ends, at a delimiter (<delim>) or at the end of the
 * message.  The first pass decides here whether it is re-encoded. */
static void
mime_leaf_end(struct mime_enc *e, bool delim)
{
	struct mime_ent		*t = &e->ent;
	enum mimeleaf_cs	 cs;
	int			 r;

	r = mimeleaf_end(&e->leaf, delim, &cs);
	/* 7-bit output: 8-bit octets, whole characters or not. */
	if (e->pass == MIME_PASS_SCAN && e->seven && cs != MIMELEAF_CS_ASCII)
		e->leaf.needs = true;
	if (e->pass != MIME_PASS_SCAN || !e->leaf.needs)
		return;
	t->cs = cs;
	if (t->opaque != NULL)
		mime_fail(e, MIME_ESTRUCTURE, "part %u: %s", t->index,
		    t->opaque);
	else if (t->ambiguous)
		mime_fail(e, MIME_ESTRUCTURE, "part %u: a line is nearly a "
		    "boundary delimiter", t->index);
	else if (t->action == MIMELEAF_NONE)
		mime_fail(e, MIME_EENCODING, "part %u: transfer encoding not "
		    "known", t->index);
	else if (r == -1)
		mime_fail(e, MIME_ELIMIT, "part %u: quoted-printable with "
		    "over %d spaces in a row", t->index, MIMEBODY_WSP_MAX);
	else if (mimeplan_is_full(&e->plan))
		mime_fail(e, MIME_ELIMIT, "over %d parts to re-encode",
		    MIME_PLAN_MAX);
	else
		mime_plan_add(e);
}

/*
 * Lines, as mimeframe.c finds them: the entity in progress takes them.
 */

static void
mime_data_cb(void *arg, const char *p, size_t n)
{
	struct mime_enc	*e = arg;

	switch (e->state) {
	case MIME_S_HEADER:
		mime_hdr_data(e, p, n);
		break;
	case MIME_S_LEAF:
		mimeleaf_data(&e->leaf, p, n, e->col);
		break;
	case MIME_S_IGNORE:
		mimeign_data(&e->ign, p, n);
		break;
	}
	e->col += n;
}

/* The gathered start of a line is content after all.  In a preamble
 * or epilogue, a line that starts with "--" and is to be cut or have
 * octets replaced could become a delimiter: its first '-' becomes a
 * space, so that no piece of it can. */
static void
mime_head_cb(void *arg, char *head, size_t len, bool whole, bool near)
{
	struct mime_enc	*e = arg;

	if (near)
		e->ent.ambiguous = true;
	if (e->state == MIME_S_IGNORE && len >= 2 && head[1] == '-' &&
	    (!whole || len > MIME_LINE_MAX || memchr(head, '\r', len) !=
	    NULL || memchr(head, '\n', len) != NULL ||
	    memchr(head, '\0', len) != NULL)) {
		head[0] = ' ';
		mimeign_alter(&e->ign);
	}
	mime_data_cb(e, head, len);
}

static void
mime_eol_cb(void *arg)
{
	struct mime_enc	*e = arg;

	switch (e->state) {
	case MIME_S_HEADER:
		mime_hdr_eol(e);
		break;
	case MIME_S_LEAF:
		mimeleaf_eol(&e->leaf);
		break;
	case MIME_S_IGNORE:
		/* Not content (RFC 2046 5.1.1): counted in mime_stats. */
		if (mimeign_eol(&e->ign) && e->pass == MIME_PASS_SCAN) {
			e->changed = true;
			e->stats.altered++;
		}
		break;
	}
	e->col = 0;
}

/* A delimiter of level <k>: the entity in progress ends, so do the
 * multiparts inside level <k>; then a part starts or, after the last
 * delimiter, the epilogue. */
static void
mime_delim_cb(void *arg, size_t k, bool close, const char *line,
    size_t len)
{
	struct mime_enc			*e = arg;
	const struct mimeframe_level	*l = mimeframe_level(&e->frame, k);

	switch (e->state) {
	case MIME_S_HEADER:
		mime_field_end(e);
		break;
	case MIME_S_LEAF:
		mime_leaf_end(e, true);
		break;
	case MIME_S_IGNORE:
		break;
	}
	if (len <= MIME_LINE_MAX)
		mime_out(e, line, len);
	else {
		/* Transport padding is not part of it (RFC 2046 5.1.1). */
		mime_outs(e, "--");
		mime_out(e, l->b, l->blen);
		if (close)
			mime_outs(e, "--");
		if (e->pass == MIME_PASS_SCAN) {
			e->changed = true;
			e->stats.altered++;
		}
	}
	mime_outs(e, "\r\n");
	e->col = 0;
	if (close) {
		e->state = MIME_S_IGNORE;
		mimeign_start(&e->ign, e->seven, mime_body_out_cb, e);
	} else
		mime_ent_start(e, l->depth, false, l->digest);
}

static void
mime_feed(struct mime_enc *e, const char *p, size_t n)
{
	e->inlen += n;
	mimeframe_feed(&e->frame, p, n);
}

/* The end of the message: a last line without CRLF is ended, and so is
 * the entity in progress. */
static void
mime_feed_end(struct mime_enc *e)
{
	mimeframe_end(&e->frame);
	switch (e->state) {
	case MIME_S_HEADER:
		mime_field_end(e);
		break;
	case MIME_S_LEAF:
		mime_leaf_end(e, false);
		break;
	case MIME_S_IGNORE:
		break;
	}
}

static void
mime_pass_start(struct mime_enc *e, enum mime_pass pass)
{
	const struct mimeframe_ops	ops = { mime_data_cb, mime_head_cb,
					    mime_eol_cb, mime_delim_cb, e };

	e->pass = pass;
	e->out = 0;
	e->inlen = 0;
	e->nent = 0;
	mimeframe_init(&e->frame, &ops);
	e->col = 0;
	mimeign_start(&e->ign, e->seven, mime_body_out_cb, e);
	mimefield_in_init(&e->fin, MIME_FIELD_MAX, mime_body_out_cb, e);
	mimeplan_rewind(&e->plan);
	mime_ent_start(e, 0, true, false);
}

/*
 * The interface.
 */

void
mime_enc_set_7bit(struct mime_enc *e)
{
	e->seven = true;
}

struct mime_enc *
mime_enc_new(void)
{
	struct mime_enc	*e = xcalloc(1, sizeof(*e));

	e->rc = MIME_OK;
	mime_pass_start(e, MIME_PASS_SCAN);
	return e;
}

void
mime_enc_free(struct mime_enc *e)
{
	if (e == NULL)
		return;
	mimefield_in_free(&e->fin);
	mimeplan_cleanup(&e->plan);
	free(e);
}

void
mime_enc_scan(struct mime_enc *e, const char *p, size_t n)
{
	if (e->pass == MIME_PASS_SCAN && !e->planned && e->rc == MIME_OK)
		mime_feed(e, p, n);
}

enum mime_rc
mime_enc_plan(struct mime_enc *e)
{
	if (e->planned)
		return e->rc;
	if (e->rc == MIME_OK)
		mime_feed_end(e);
	e->planned = true;
	e->scan_inlen = e->inlen;
	e->scan_nent = e->nent;
	if (e->rc == MIME_OK) {
		e->size = (uint64_t)((int64_t)e->out + e->delta);
		if (!e->changed)
			e->rc = MIME_UNCHANGED;
	}
	return e->rc;
}

uint64_t
mime_enc_size(const struct mime_enc *e)
{
	return e->size;
}

const char *
mime_enc_detail(const struct mime_enc *e)
{
	return e->detail;
}

void
mime_enc_stats(const struct mime_enc *e, struct mime_stats *st)
{
	*st = e->stats;
}

static bool
mime_rc_is_plan(enum mime_rc rc)
{
	return rc == MIME_OK || rc == MIME_UNCHANGED;
}

void
mime_enc_emit_start(struct mime_enc *e,
    void (*cb)(void *arg, const char *p, size_t n), void *arg)
{
	if (!mime_rc_is_plan(mime_enc_plan(e)))
		return;
	e->cb = cb;
	e->arg = arg;
	mime_pass_start(e, MIME_PASS_EMIT);
}

void
mime_enc_emit(struct mime_enc *e, const char *p, size_t n)
{
	if (e->pass == MIME_PASS_EMIT && mime_rc_is_plan(e->rc))
		mime_feed(e, p, n);
}

enum mime_rc
mime_enc_emit_end(struct mime_enc *e)
{
	if (!mime_rc_is_plan(mime_enc_plan(e)))
		return e->rc;
	if (e->pass != MIME_PASS_EMIT)
		return MIME_EMISMATCH;
	mime_feed_end(e);
	if (e->inlen != e->scan_inlen || e->nent != e->scan_nent ||
	    !mimeplan_is_done(&e->plan) || e->out != e->size)
		return MIME_EMISMATCH;
	return MIME_OK;
}
