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
 * cut with CRLF SP and their CR, LF, NUL become spaces (mime_stats).
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

enum mime_action {
	MIME_A_NONE,
	MIME_A_QP,			/* raw to quoted-printable */
	MIME_A_B64,			/* raw to base64 */
	MIME_A_QP_FIX,			/* quoted-printable repaired */
	MIME_A_B64_FIX,			/* base64 re-wrapped */
};

enum mime_cs {
	MIME_CS_ASCII,
	MIME_CS_UTF8,
	MIME_CS_8BIT,
};

/* Where a field name check stands. */
enum mime_name {
	MIME_N_NAME,			/* in the name */
	MIME_N_WSP,			/* white space after it */
	MIME_N_FIELD,			/* the colon came: a field */
};

/* One part of the plan, in the order parts come. */
struct mime_plan {
	uint32_t	ent;		/* entity number */
	uint8_t		action;		/* enum mime_action */
	uint8_t		cs;		/* enum mime_cs */
};

struct mime_level {
	size_t		blen;
	char		b[MIMEFIELD_BOUNDARY_MAX];
	bool		digest;
	unsigned int	depth;		/* of its parts */
};

/* UTF-8 check of a body as it streams: a character may straddle. */
struct mime_u8 {
	unsigned char	c[4];
	size_t		n;
	bool		ascii, valid;
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
	enum mime_action	 action;	/* pass 2: planned; pass 1:
						 * the candidate */
	enum mime_cs		 cs;
	bool			 cte_done;	/* our CTE field written */
	const char		*opaque;	/* why the structure is not
						 * known, or NULL */
	bool			 needs, ambiguous;
	uint64_t		 cte_bytes;	/* its CTE fields, written */
	uint64_t		 verb;		/* its body as it is */
	uint64_t		 alt;		/* its body encoded */
	bool			 eol_pending;
	struct mime_u8		 u8;
};

struct mime_enc {
	enum mime_pass		 pass;
	enum mime_rc		 rc;
	bool			 planned;	/* pass 1 is over */
	bool			 seven;		/* mime_enc_set_7bit() */
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
	bool			 cr;		/* a CR ended the last chunk */
	bool			 bol;		/* nothing of this line yet */
	size_t			 col;		/* octets of this line so far */
	bool			 headmode;	/* gathering a line's start */
	size_t			 headlen;
	char			 head[MIME_HEAD_MAX];
	size_t			 ign_col;	/* output column (IGNORE) */
	bool			 ign_alt;	/* this line was changed */
	/* structure */
	enum mime_state		 state;
	struct mime_ent		 ent;
	struct mimebody		 body;		/* the leaf's encoder */
	size_t			 nlevel;
	struct mime_level	 level[MIME_DEPTH_MAX];
	/* the header field being read */
	char			*field;
	size_t			 flen, fcap;
	bool			 fopen, fover, fdirty;
	bool			 f8bit;		/* an octet over 0x7f */
	enum mime_name		 fname;
	char			 fstart[40];	/* its first octets, to name */
	size_t			 fstartlen;	/* it when it is too big */
	/* the plan */
	struct mime_plan	*plan;
	size_t			 nplan, cplan, iplan;
	struct mime_stats	 stats;
};

static void	mime_data(struct mime_enc *, const char *, size_t);
static void	mime_leaf_data(struct mime_enc *, const char *, size_t);
static void	mime_leaf_eol(struct mime_enc *);

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
 * The quick check.
 */

void
mime_scan_init(struct mime_scan *s)
{
	memset(s, 0, sizeof(*s));
}

/* The 8-bit part of the quick check: the header section octet by octet
 * (to find its end), the body only until the first 8-bit octet. */
static void
mime_scan_8bit_feed(struct mime_scan *s, const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n && !s->in_body &&
	    s->eightbit != MIME_8BIT_HEADER; i++) {
		if ((unsigned char)p[i] >= 0x80)
			s->eightbit = MIME_8BIT_HEADER;
		if (p[i] == '\n') {
			s->in_body = s->hcol == 0;
			s->hcol = 0;
		} else if (p[i] != '\r')
			s->hcol++;
	}
	for (; i < n && s->eightbit == MIME_8BIT_NONE; i++)
		if ((unsigned char)p[i] >= 0x80)
			s->eightbit = MIME_8BIT_BODY;
}

void
mime_scan_feed(struct mime_scan *s, const char *p, size_t n)
{
	size_t	i;

	mime_scan_8bit_feed(s, p, n);
	for (i = 0; i < n && !s->dirty; i++) {
		if (s->cr) {
			s->cr = false;
			if (p[i] == '\n') {
				s->col = 0;
				continue;
			}
			s->dirty = true;	/* a bare CR */
		}
		if (p[i] == '\r')
			s->cr = true;
		else if (p[i] == '\n' || p[i] == '\0' ||
		    ++s->col > MIME_LINE_MAX)
			s->dirty = true;
	}
}

bool
mime_scan_is_clean(const struct mime_scan *s)
{
	return !s->dirty && !s->cr;
}

enum mime_8bit
mime_scan_8bit(const struct mime_scan *s)
{
	return s->eightbit;
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

static void
mime_body_count_cb(void *arg, const char *p, size_t n)
{
	uint64_t	*count = arg;

	(void)p;
	*count += n;
}

/*
 * UTF-8 of a body, for the charset of a Content-Type we add.
 */

static void
mime_u8_init(struct mime_u8 *u)
{
	memset(u, 0, sizeof(*u));
	u->ascii = u->valid = true;
}

/* Takes the whole characters gathered; at <end>, all must be. */
static void
mime_u8_drain(struct mime_u8 *u, bool end)
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
mime_u8_feed(struct mime_u8 *u, const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n && u->valid; i++) {
		if (u->n == 0 && (unsigned char)p[i] < 0x80)
			continue;
		u->ascii = false;
		u->c[u->n++] = (unsigned char)p[i];
		mime_u8_drain(u, false);
	}
}

static enum mime_cs
mime_u8_cs(struct mime_u8 *u)
{
	mime_u8_drain(u, true);
	if (u->ascii)
		return MIME_CS_ASCII;
	return u->valid ? MIME_CS_UTF8 : MIME_CS_8BIT;
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
	if (e->pass == MIME_PASS_EMIT && e->iplan < e->nplan &&
	    e->plan[e->iplan].ent == t->index) {
		t->action = e->plan[e->iplan].action;
		t->cs = e->plan[e->iplan].cs;
		e->iplan++;
	}
	e->state = MIME_S_HEADER;
	e->fopen = false;
}

static bool
mime_action_is_raw(enum mime_action a)
{
	return a == MIME_A_QP || a == MIME_A_B64;
}

static const char *
mime_cte_line(enum mime_action a)
{
	return a == MIME_A_QP ?
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

/* The candidate action of a leaf from its header. */
static enum mime_action
mime_leaf_action(const struct mime_ent *t, enum mimefield_type type)
{
	if (t->opaque != NULL)
		return MIME_A_NONE;
	switch (t->cte) {
	case MIMEFIELD_CTE_IDENTITY:
		return type == MIMEFIELD_OTHER ? MIME_A_B64 : MIME_A_QP;
	case MIMEFIELD_CTE_QP:
		return MIME_A_QP_FIX;
	case MIMEFIELD_CTE_BASE64:
		return MIME_A_B64_FIX;
	case MIMEFIELD_CTE_OTHER:
		break;
	}
	return MIME_A_NONE;
}

static void
mime_leaf_start(struct mime_enc *e, enum mimefield_type type)
{
	static const enum mimebody_mode	 modes[] = {
		MIMEBODY_QP, MIMEBODY_QP, MIMEBODY_B64, MIMEBODY_QP_FIX,
		MIMEBODY_B64_FIX,
	};
	struct mime_ent			*t = &e->ent;
	struct mimebody_out		 o;

	if (e->pass == MIME_PASS_SCAN)
		t->action = mime_leaf_action(t, type);
	/*
	 * A body we re-encode gets the empty line when its header had
	 * none: its first line, encoded, could read as a field.
	 */
	if (e->pass == MIME_PASS_EMIT && mime_action_is_raw(t->action))
		mime_additions(e, true);
	if (t->blank || (e->pass == MIME_PASS_EMIT &&
	    t->action != MIME_A_NONE))
		mime_outs(e, "\r\n");
	if (t->action != MIME_A_NONE) {
		o.cb = e->pass == MIME_PASS_SCAN ? mime_body_count_cb :
		    mime_body_out_cb;
		o.arg = e->pass == MIME_PASS_SCAN ? (void *)&t->alt : e;
		mimebody_init(&e->body, modes[t->action], &o);
	}
	mime_u8_init(&t->u8);
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
	struct mime_level	*l;
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
		if (blank && deeper && t->ct.blen > 0) {
			mime_outs(e, "\r\n");
			l = &e->level[e->nlevel++];
			memcpy(l->b, t->ct.boundary, t->ct.blen);
			l->blen = t->ct.blen;
			l->digest = t->ct.digest;
			l->depth = t->depth + 1;
			e->state = MIME_S_IGNORE;
			e->ign_col = 0;
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

static void
mime_field_grow(struct mime_enc *e, size_t n)
{
	while (e->fcap - e->flen < n) {
		e->fcap = e->fcap == 0 ? 1024 : e->fcap * 2;
		e->field = xrealloc(e->field, e->fcap);
	}
}

/* Octets that make a field need repair, for one that is streamed. */
static void
mime_field_dirty(struct mime_enc *e, const char *p, size_t n)
{
	if (e->col + n > MIME_LINE_MAX || memchr(p, '\r', n) != NULL ||
	    memchr(p, '\n', n) != NULL || memchr(p, '\0', n) != NULL)
		e->fdirty = true;
}

/* Adds octets to the field (<eol>: the CRLF that ends a line); beyond
 * MIME_FIELD_MAX it streams as it is (the first pass fails the message
 * if it is not conformant). */
static void
mime_field_add(struct mime_enc *e, const char *p, size_t n, bool eol)
{
	size_t	k = sizeof(e->fstart) - e->fstartlen, i;

	for (i = 0; i < n && e->seven && !e->f8bit; i++)
		e->f8bit = (unsigned char)p[i] >= 0x80;
	/* A field over MIME_FIELD_MAX is not kept, not even its name: keep
	 * that much, for a failure to name it. */
	if (k > n)
		k = n;
	memcpy(e->fstart + e->fstartlen, p, k);
	e->fstartlen += k;
	if (!e->fover && e->flen + n > MIME_FIELD_MAX) {
		e->fover = true;
		e->fdirty = !mimefield_is_clean(e->field, e->flen);
		mime_out(e, e->field, e->flen);
	}
	if (e->fover) {
		if (!eol)
			mime_field_dirty(e, p, n);
		mime_out(e, p, n);
		return;
	}
	mime_field_grow(e, n);
	memcpy(e->field + e->flen, p, n);
	e->flen += n;
}

/* What the field says about the entity. */
static void
mime_field_read(struct mime_enc *e)
{
	struct mime_ent	*t = &e->ent;
	const char	*f = e->field;
	size_t		 n = e->flen;

	if (mimefield_is(f, n, "Content-Type") && !t->has_ct) {
		t->has_ct = true;
		t->ct_over = e->fover;
		if (!e->fover)
			mimefield_ctype(f, n, &t->ct);
	} else if (mimefield_is(f, n, "Content-Transfer-Encoding") &&
	    !t->has_cte) {
		t->has_cte = true;
		t->cte = e->fover ? MIMEFIELD_CTE_OTHER : mimefield_cte(f, n);
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

	if (!e->fopen)
		return;
	e->fopen = false;
	mime_field_read(e);
	is_cte = mimefield_is(e->field, e->flen, "Content-Transfer-Encoding");
	if (e->seven && e->f8bit)
		mime_fail(e, MIME_EHEADER, "header field \"%.*s\": 8-bit "
		    "octets and no 8BITMIME", (int)mimefield_name_len(e->fstart,
		    e->fstartlen), e->fstart);
	if (e->fover) {
		if (e->fdirty)
			mime_fail(e, MIME_EHEADER, "header field \"%.*s\" "
			    "over 64 KB", (int)mimefield_name_len(e->fstart,
			    e->fstartlen), e->fstart);
	} else if (is_cte && e->pass == MIME_PASS_EMIT &&
	    mime_action_is_raw(t->action)) {
		if (!t->cte_done)
			mime_outs(e, mime_cte_line(t->action));
		t->cte_done = true;
	} else {
		rc = mimefield_fix(e->field, e->flen, &fix, &fixlen);
		if (rc == MIMEFIELD_FIXED) {
			mime_out(e, fix, fixlen);
			free(fix);
			e->changed = true;
			if (e->pass == MIME_PASS_SCAN)
				e->stats.fields++;
		} else {
			mime_out(e, e->field, e->flen);
			if (rc != MIMEFIELD_CLEAN)
				mime_fail(e, MIME_EHEADER, "header field "
				    "\"%.*s\": %s",
				    (int)mimefield_name_len(e->field,
				    e->flen > 40 ? 40 : e->flen), e->field,
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

	e->fopen = false;
	mime_hdr_end(e, false);
	e->col = 0;
	if (col0 > 0)
		mime_leaf_data(e, e->field, col0);
	e->col = col0;
	if (n > 0)
		mime_leaf_data(e, p, n);
}

static void
mime_hdr_data(struct mime_enc *e, const char *p, size_t n)
{
	unsigned char	c;
	size_t		i;

	if (e->col == 0 && !(e->fopen &&
	    (p[0] == ' ' || p[0] == '\t'))) {
		mime_field_end(e);
		if (p[0] == ' ' || p[0] == '\t') {
			mime_hdr_nonfield(e, p, n);
			return;
		}
		e->fopen = true;
		e->flen = 0;
		e->fover = e->fdirty = e->f8bit = false;
		e->fname = MIME_N_NAME;
		e->fstartlen = 0;
	}
	/* RFC 5322 3.6.8: name, white space, colon, within a line. */
	for (i = 0; i < n && e->fname != MIME_N_FIELD; i++) {
		c = (unsigned char)p[i];
		if (e->col + i >= MIME_LINE_MAX)
			break;
		if (c == ':' && e->col + i > 0)
			e->fname = MIME_N_FIELD;
		else if (c == ' ' || c == '\t')
			e->fname = MIME_N_WSP;
		else if (e->fname == MIME_N_WSP || c <= ' ' || c >= 0x7f ||
		    c == ':')
			break;
	}
	if (e->fname != MIME_N_FIELD && i < n) {
		mime_hdr_nonfield(e, p, n);
		return;
	}
	mime_field_add(e, p, n, false);
}

static void
mime_hdr_eol(struct mime_enc *e)
{
	if (e->col == 0) {		/* the empty line */
		mime_field_end(e);
		mime_hdr_end(e, true);
		return;
	}
	if (e->fname != MIME_N_FIELD) {	/* a line that is no field */
		mime_hdr_nonfield(e, NULL, 0);
		mime_leaf_eol(e);
		return;
	}
	mime_field_add(e, "\r\n", 2, true);
}

/*
 * Leaf bodies.  The first pass copies (counts) each body as it is and,
 * beside it, runs the candidate encoder into a counter; the second
 * pass does one or the other, as planned.
 */

static bool
mime_has_bad_octet(const char *p, size_t n)
{
	return memchr(p, '\r', n) != NULL || memchr(p, '\n', n) != NULL ||
	    memchr(p, '\0', n) != NULL;
}

static void
mime_leaf_data(struct mime_enc *e, const char *p, size_t n)
{
	struct mime_ent	*t = &e->ent;

	if (n == 0)
		return;
	if (e->pass == MIME_PASS_SCAN) {
		if (e->col + n > MIME_LINE_MAX || mime_has_bad_octet(p, n))
			t->needs = true;
		mime_u8_feed(&t->u8, p, n);
		t->verb += n;
	}
	if (t->action != MIME_A_NONE) {
		if (t->eol_pending)
			mimebody_eol(&e->body);
		t->eol_pending = false;
		mimebody_put(&e->body, p, n);
	}
	if (e->pass == MIME_PASS_SCAN || t->action == MIME_A_NONE)
		mime_out(e, p, n);
}

/* A line break of the body.  The encoder gets it only when more of the
 * body follows: before a delimiter it belongs to the delimiter. */
static void
mime_leaf_eol(struct mime_enc *e)
{
	struct mime_ent	*t = &e->ent;

	if (e->pass == MIME_PASS_SCAN) {
		mime_u8_drain(&t->u8, true);
		t->verb += 2;
	}
	if (t->action != MIME_A_NONE) {
		if (t->eol_pending)
			mimebody_eol(&e->body);
		t->eol_pending = true;
	}
	if (e->pass == MIME_PASS_SCAN || t->action == MIME_A_NONE)
		mime_outs(e, "\r\n");
}

static void
mime_plan_add(struct mime_enc *e)
{
	struct mime_ent		*t = &e->ent;
	struct mime_plan	*pl;

	if (e->nplan == e->cplan) {
		e->cplan = e->cplan == 0 ? 16 : e->cplan * 2;
		e->plan = xrealloc(e->plan, e->cplan * sizeof(*e->plan));
	}
	pl = &e->plan[e->nplan++];
	pl->ent = t->index;
	pl->action = (uint8_t)t->action;
	pl->cs = (uint8_t)t->cs;
	e->delta += (int64_t)t->alt - (int64_t)t->verb + (t->blank ? 0 : 2);
	if (mime_action_is_raw(t->action))
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
	struct mime_ent	*t = &e->ent;
	int		 r = 0;

	if (t->action != MIME_A_NONE) {
		if (t->eol_pending && !delim)
			mimebody_eol(&e->body);
		t->eol_pending = false;
		r = mimebody_finish(&e->body, delim);
	}
	/* Before mime_u8_cs(): 8-bit octets, whole characters or not. */
	if (e->pass == MIME_PASS_SCAN && e->seven && !t->u8.ascii)
		t->needs = true;
	if (e->pass != MIME_PASS_SCAN || !t->needs)
		return;
	t->cs = mime_u8_cs(&t->u8);
	if (t->opaque != NULL)
		mime_fail(e, MIME_ESTRUCTURE, "part %u: %s", t->index,
		    t->opaque);
	else if (t->ambiguous)
		mime_fail(e, MIME_ESTRUCTURE, "part %u: a line is nearly a "
		    "boundary delimiter", t->index);
	else if (t->action == MIME_A_NONE)
		mime_fail(e, MIME_EENCODING, "part %u: transfer encoding not "
		    "known", t->index);
	else if (r == -1)
		mime_fail(e, MIME_ELIMIT, "part %u: quoted-printable with "
		    "over %d spaces in a row", t->index, MIMEBODY_WSP_MAX);
	else if (e->nplan == MIME_PLAN_MAX)
		mime_fail(e, MIME_ELIMIT, "over %d parts to re-encode",
		    MIME_PLAN_MAX);
	else
		mime_plan_add(e);
}

/*
 * Preambles and epilogues: not content (RFC 2046 5.1.1), so they are
 * made conformant the simple way, counted in mime_stats.
 */

static void
mime_ign_data(struct mime_enc *e, const char *p, size_t n)
{
	size_t	i = 0, k;

	while (i < n) {
		if (e->ign_col == MIME_LINE_MAX) {
			mime_outs(e, "\r\n ");	/* no delimiter, no dot */
			e->ign_col = 1;
			e->ign_alt = true;
		}
		for (k = 0; i + k < n && e->ign_col + k < MIME_LINE_MAX &&
		    p[i + k] != '\r' && p[i + k] != '\n' && p[i + k] != '\0' &&
		    !(e->seven && (unsigned char)p[i + k] >= 0x80); k++)
			;
		if (k > 0) {
			mime_out(e, p + i, k);
			e->ign_col += k;
			i += k;
		} else if (e->ign_col < MIME_LINE_MAX) {
			mime_outs(e, " ");
			e->ign_col++;
			e->ign_alt = true;
			i++;
		}
	}
}

static void
mime_ign_eol(struct mime_enc *e)
{
	mime_outs(e, "\r\n");
	if (e->ign_alt && e->pass == MIME_PASS_SCAN) {
		e->changed = true;
		e->stats.altered++;
	}
	e->ign_col = 0;
	e->ign_alt = false;
}

/*
 * Lines.  line.c-style framing on a stream: only CRLF ends a line.  A
 * line that may be a boundary delimiter is gathered in e->head first.
 */

static void
mime_dispatch(struct mime_enc *e, const char *p, size_t n)
{
	switch (e->state) {
	case MIME_S_HEADER:
		mime_hdr_data(e, p, n);
		break;
	case MIME_S_LEAF:
		mime_leaf_data(e, p, n);
		break;
	case MIME_S_IGNORE:
		mime_ign_data(e, p, n);
		break;
	}
	e->col += n;
}

/*
 * Is the gathered line a boundary delimiter line: "--", a boundary of
 * an open multipart, "--" for the last one, then only white space (RFC
 * 2046 5.1.1)?  The innermost boundary is tried first; an outer one
 * ends the inner multiparts too.  Returns the level, or -1.  *near:
 * the line starts with "--" and a boundary without being a delimiter
 * (a reader matching prefixes would take it for one).  <whole>: the
 * line is all in e->head.
 */
static int
mime_delim_level(struct mime_enc *e, bool whole, bool *close, bool *near)
{
	const struct mime_level	*l;
	size_t			 k, i;

	*near = *close = false;
	for (k = e->nlevel; k-- > 0;) {
		l = &e->level[k];
		if (e->headlen < 2 + l->blen ||
		    memcmp(e->head + 2, l->b, l->blen) != 0)
			continue;
		i = 2 + l->blen;
		*close = e->headlen - i >= 2 && e->head[i] == '-' &&
		    e->head[i + 1] == '-';
		for (i += *close ? 2 : 0; i < e->headlen &&
		    (e->head[i] == ' ' || e->head[i] == '\t'); i++)
			;
		if (whole && i == e->headlen)
			return (int)k;
		*near = true;
	}
	return -1;
}

/* The gathered start of a line is content after all.  In a preamble
 * or epilogue, a line that starts with "--" and is to be cut or have
 * octets replaced could become a delimiter: its first '-' becomes a
 * space, so that no piece of it can. */
static void
mime_head_flush(struct mime_enc *e, bool whole)
{
	bool	close, near;

	e->headmode = false;
	(void)mime_delim_level(e, whole, &close, &near);
	if (near)
		e->ent.ambiguous = true;
	if (e->state == MIME_S_IGNORE && e->headlen >= 2 &&
	    e->head[1] == '-' && (!whole || e->headlen > MIME_LINE_MAX ||
	    mime_has_bad_octet(e->head, e->headlen))) {
		e->head[0] = ' ';
		e->ign_alt = true;
	}
	mime_dispatch(e, e->head, e->headlen);
}

/* A delimiter of level <k>: the entity in progress ends, so do the
 * multiparts inside level <k>; then a part starts or, after the last
 * delimiter, the epilogue. */
static void
mime_delim(struct mime_enc *e, size_t k, bool close)
{
	struct mime_level	*l = &e->level[k];

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
	e->nlevel = k + 1;
	if (e->headlen <= MIME_LINE_MAX)
		mime_out(e, e->head, e->headlen);
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
	if (close) {
		e->nlevel = k;
		e->state = MIME_S_IGNORE;
		e->ign_col = 0;
		e->ign_alt = false;
	} else
		mime_ent_start(e, l->depth, false, l->digest);
}

static void
mime_data(struct mime_enc *e, const char *p, size_t n)
{
	size_t	k;

	while (n > 0) {
		if (e->bol) {
			e->bol = false;
			e->col = 0;
			e->headmode = e->nlevel > 0 && p[0] == '-';
			e->headlen = 0;
		}
		if (!e->headmode) {
			mime_dispatch(e, p, n);
			return;
		}
		k = MIME_HEAD_MAX - e->headlen < n ?
		    MIME_HEAD_MAX - e->headlen : n;
		memcpy(e->head + e->headlen, p, k);
		e->headlen += k;
		p += k;
		n -= k;
		if ((e->headlen >= 2 && e->head[1] != '-') ||
		    e->headlen == MIME_HEAD_MAX)
			mime_head_flush(e, false);
	}
}

static void
mime_eol(struct mime_enc *e)
{
	bool	close, near;
	int	k;

	if (e->bol) {			/* an empty line */
		e->col = 0;
		e->headmode = false;
	}
	if (e->headmode) {
		k = mime_delim_level(e, true, &close, &near);
		if (k >= 0) {
			e->headmode = false;
			mime_delim(e, (size_t)k, close);
			e->bol = true;
			e->col = 0;
			return;
		}
		mime_head_flush(e, true);
	}
	switch (e->state) {
	case MIME_S_HEADER:
		mime_hdr_eol(e);
		break;
	case MIME_S_LEAF:
		mime_leaf_eol(e);
		break;
	case MIME_S_IGNORE:
		mime_ign_eol(e);
		break;
	}
	e->bol = true;
	e->col = 0;
}

/* Frames a chunk: a CR is a line end only with the LF after it, which
 * may come in the next chunk. */
static void
mime_feed(struct mime_enc *e, const char *p, size_t n)
{
	const char	*cr;
	size_t		 k;

	e->inlen += n;
	while (n > 0) {
		if (e->cr) {
			e->cr = false;
			if (p[0] == '\n') {
				mime_eol(e);
				p++;
				n--;
				continue;
			}
			mime_data(e, "\r", 1);
		}
		cr = memchr(p, '\r', n);
		k = cr != NULL ? (size_t)(cr - p) : n;
		mime_data(e, p, k);
		if (cr == NULL)
			return;
		p += k + 1;
		n -= k + 1;
		e->cr = true;
	}
}

/* The end of the message: a last line without CRLF is ended. */
static void
mime_feed_end(struct mime_enc *e)
{
	if (e->cr) {
		e->cr = false;
		mime_data(e, "\r", 1);
	}
	if (!e->bol)
		mime_eol(e);
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
	e->pass = pass;
	e->out = 0;
	e->inlen = 0;
	e->nent = 0;
	e->cr = false;
	e->bol = true;
	e->col = 0;
	e->headmode = false;
	e->headlen = 0;
	e->ign_col = 0;
	e->ign_alt = false;
	e->nlevel = 0;
	e->fopen = e->fover = false;
	e->flen = 0;
	e->iplan = 0;
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
	free(e->field);
	free(e->plan);
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
	    e->iplan != e->nplan || e->out != e->size)
		return MIME_EMISMATCH;
	return MIME_OK;
}
