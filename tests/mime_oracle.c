/*
 * mime_oracle.c - an independent reader of what mime.c writes (see
 * mime_oracle.h).  Written from the rules in mime.c's and mimefield.h's
 * comments, not from their code: lines split at CRLF; a header ends at
 * an empty line, or at a line that is neither a field (a name of
 * printable ASCII, white space, a colon within 998 octets) nor a
 * continuation; a delimiter is "--" boundary ["--"] white space, on a
 * line under MIME_HEAD_MAX octets, the innermost boundary first; a
 * container needs its empty line and a depth within MIME_DEPTH_MAX.
 * Only Content-Type and Content-Transfer-Encoding values are read with
 * mimefield.c's readers.
 */
#include "config.h"

#include "mime_oracle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "mimefield.h"

enum oracle_kind {
	ORACLE_LEAF,
	ORACLE_MULTI,
	ORACLE_RFC822,
};

struct oracle_line {
	const char	*p;
	size_t		 len;		/* without CRLF */
};

struct oracle_msg {
	struct oracle_line	*l;
	size_t			 n;
};

struct oracle_field {
	const char	*p;
	size_t		 len;		/* with its CRLFs */
};

struct oracle_ent {
	enum oracle_kind	 kind;
	struct oracle_field	*f;
	size_t			 nf;
	enum mimefield_cte	 cte;
	const char		*body;	/* a leaf's content */
	size_t			 blen;
	bool			 needs;	/* a body line to re-encode */
	struct oracle_ent	*kid;
	size_t			 nkid;
};

struct oracle_stack {
	const char	*b[MIME_DEPTH_MAX + 1];
	size_t		 blen[MIME_DEPTH_MAX + 1];
	size_t		 n;
};

static char	oracle_why[256];

static const char * __attribute__((format(printf, 1, 2)))
oracle_say(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(oracle_why, sizeof(oracle_why), fmt, ap);
	va_end(ap);
	return oracle_why;
}

static bool
oracle_wsp(char c)
{
	return c == ' ' || c == '\t';
}

const char *
oracle_lines(const char *p, size_t n)
{
	size_t	i, col = 0;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') {
			i++;
			col = 0;
		} else if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			return oracle_say("bare CR, LF or NUL at %zu", i);
		else if (++col > MIME_LINE_MAX)
			return oracle_say("line over 998 octets at %zu", i);
	}
	return n > 0 && col != 0 ? "last line without CRLF" : NULL;
}

/* Splits <p>/<n>, which ends in CRLF, into lines. */
static void
oracle_split(const char *p, size_t n, struct oracle_msg *m)
{
	size_t	i, start = 0;

	m->l = calloc(n / 2 + 1, sizeof(*m->l));
	m->n = 0;
	for (i = 0; i + 1 < n; i++)
		if (p[i] == '\r' && p[i + 1] == '\n') {
			m->l[m->n].p = p + start;
			m->l[m->n].len = i - start;
			m->n++;
			start = i + 2;
			i++;
		}
}

/* The level whose delimiter line <l> is, or -1. */
static int
oracle_delim(const struct oracle_line *l, const struct oracle_stack *s,
    bool *close)
{
	size_t	k, i;

	if (l->len >= MIME_HEAD_MAX || l->len < 2 || l->p[0] != '-' ||
	    l->p[1] != '-')
		return -1;
	for (k = s->n; k-- > 0;) {
		if (l->len < 2 + s->blen[k] ||
		    memcmp(l->p + 2, s->b[k], s->blen[k]) != 0)
			continue;
		i = 2 + s->blen[k];
		*close = l->len - i >= 2 && l->p[i] == '-' &&
		    l->p[i + 1] == '-';
		if (*close)
			i += 2;
		while (i < l->len && oracle_wsp(l->p[i]))
			i++;
		if (i == l->len)
			return (int)k;
	}
	return -1;
}

/* The first delimiter line at or after <i> (any level), or m->n. */
static size_t
oracle_next_delim(const struct oracle_msg *m, size_t i,
    const struct oracle_stack *s, int *level, bool *close)
{
	for (; i < m->n; i++)
		if ((*level = oracle_delim(&m->l[i], s, close)) >= 0)
			return i;
	*level = -1;
	return m->n;
}

static bool
oracle_is_field_start(const struct oracle_line *l)
{
	size_t	i = 0;

	while (i < l->len && i < MIME_LINE_MAX &&
	    (unsigned char)l->p[i] > ' ' && (unsigned char)l->p[i] < 0x7f &&
	    l->p[i] != ':')
		i++;
	if (i == 0)
		return false;
	while (i < l->len && i < MIME_LINE_MAX && oracle_wsp(l->p[i]))
		i++;
	return i < l->len && i < MIME_LINE_MAX && l->p[i] == ':';
}

static bool
oracle_line_needs(const struct oracle_line *l)
{
	return l->len > MIME_LINE_MAX || memchr(l->p, '\r', l->len) ||
	    memchr(l->p, '\n', l->len) || memchr(l->p, '\0', l->len);
}

static void	oracle_entity(const struct oracle_msg *, size_t *, unsigned int,
		    bool, struct oracle_stack *, struct oracle_ent *);

static void
oracle_add_kid(struct oracle_ent *t, struct oracle_ent *k)
{
	t->kid = realloc(t->kid, (t->nkid + 1) * sizeof(*t->kid));
	t->kid[t->nkid++] = *k;
}

/* The parts of a multipart whose preamble starts at *pos. */
static void
oracle_multipart(const struct oracle_msg *m, size_t *pos, unsigned int depth,
    bool digest, struct oracle_stack *s, struct oracle_ent *t)
{
	struct oracle_ent	k;
	size_t			i = *pos, me = s->n - 1;
	int			lv;
	bool			close;

	for (;;) {
		i = oracle_next_delim(m, i, s, &lv, &close);
		if (lv < 0 || (size_t)lv < me)
			break;
		if (close) {
			s->n--;
			i = oracle_next_delim(m, i + 1, s, &lv, &close);
			*pos = i;
			return;
		}
		i++;
		oracle_entity(m, &i, depth + 1, digest, s, &k);
		oracle_add_kid(t, &k);
	}
	s->n--;
	*pos = i;
}

/* One entity from line *pos; *pos ends on the delimiter line that ends
 * it, or at the end. */
static void
oracle_entity(const struct oracle_msg *m, size_t *pos, unsigned int depth,
    bool dflt_rfc822, struct oracle_stack *s, struct oracle_ent *t)
{
	struct mimefield_ctype	 ct;
	enum mimefield_type	 type;
	const struct oracle_line *l;
	size_t			 i = *pos, j, flen;
	bool			 blank = false, has_ct = false, has_cte = false;
	bool			 close, over = false, infield = false;
	int			 lv;

	memset(t, 0, sizeof(*t));
	memset(&ct, 0, sizeof(ct));
	t->cte = MIMEFIELD_CTE_IDENTITY;
	for (; i < m->n; i++) {
		l = &m->l[i];
		if (oracle_delim(l, s, &close) >= 0)
			break;
		if (l->len == 0) {
			blank = true;
			i++;
			break;
		}
		if (oracle_wsp(l->p[0]) && infield) {
			t->f[t->nf - 1].len = (size_t)(l->p + l->len + 2 -
			    t->f[t->nf - 1].p);
			continue;
		}
		if (oracle_wsp(l->p[0]) || !oracle_is_field_start(l))
			break;
		t->f = realloc(t->f, (t->nf + 1) * sizeof(*t->f));
		t->f[t->nf].p = l->p;
		t->f[t->nf].len = l->len + 2;
		t->nf++;
		infield = true;
	}
	for (j = 0; j < t->nf; j++) {
		flen = t->f[j].len;
		if (mimefield_is(t->f[j].p, flen, "Content-Type") && !has_ct) {
			has_ct = true;
			over = flen > MIME_FIELD_MAX;
			if (!over)
				mimefield_ctype(t->f[j].p, flen, &ct);
		}
		if (mimefield_is(t->f[j].p, flen,
		    "Content-Transfer-Encoding") && !has_cte) {
			has_cte = true;
			t->cte = flen > MIME_FIELD_MAX ? MIMEFIELD_CTE_OTHER :
			    mimefield_cte(t->f[j].p, flen);
		}
	}
	type = has_ct ? ct.type : dflt_rfc822 ? MIMEFIELD_RFC822 :
	    MIMEFIELD_TEXT;
	if (!over && blank && depth + 1 <= MIME_DEPTH_MAX &&
	    type == MIMEFIELD_MULTIPART && ct.blen > 0) {
		t->kind = ORACLE_MULTI;
		s->b[s->n] = ct.boundary;
		s->blen[s->n++] = ct.blen;
		*pos = i;
		oracle_multipart(m, pos, depth, ct.digest, s, t);
		return;
	}
	if (!over && blank && depth + 1 <= MIME_DEPTH_MAX &&
	    type == MIMEFIELD_RFC822 && t->cte == MIMEFIELD_CTE_IDENTITY) {
		t->kind = ORACLE_RFC822;
		t->kid = calloc(1, sizeof(*t->kid));
		t->nkid = 1;
		*pos = i;
		oracle_entity(m, pos, depth + 1, false, s, t->kid);
		return;
	}
	t->kind = ORACLE_LEAF;
	j = oracle_next_delim(m, i, s, &lv, &close);
	t->body = i < m->n ? m->l[i].p : "";
	if (j == i)
		t->blen = 0;
	else if (j < m->n)
		t->blen = (size_t)(m->l[j - 1].p + m->l[j - 1].len - t->body);
	else
		t->blen = (size_t)(m->l[m->n - 1].p + m->l[m->n - 1].len + 2 -
		    t->body);
	for (; i < j; i++)
		if (oracle_line_needs(&m->l[i]))
			t->needs = true;
	*pos = j;
}

static void
oracle_free(struct oracle_ent *t)
{
	size_t	i;

	for (i = 0; i < t->nkid; i++)
		oracle_free(&t->kid[i]);
	free(t->kid);
	free(t->f);
}

/*
 * Decoders.
 */

static int
oracle_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* RFC 2045 6.7: trailing white space of each line deleted, "=" at a
 * line end a soft break, "=XX" an octet, any other "=" itself. */
char *
oracle_qp_decode(const char *p, size_t n, size_t *outlen)
{
	char		*o = malloc(n + 1);
	const char	*end = p + n, *eol, *le;
	size_t		 k = 0;
	bool		 crlf;

	while (p < end) {
		eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		crlf = eol != NULL;
		if (eol == NULL)
			eol = end;
		le = eol;
		while (le > p && oracle_wsp(le[-1]))
			le--;
		if (le > p && le[-1] == '=') {
			le--;
			crlf = false;
		}
		for (; p < le; p++) {
			if (*p == '=' && le - p >= 3 && oracle_hex(p[1]) >= 0 &&
			    oracle_hex(p[2]) >= 0) {
				o[k++] = (char)(oracle_hex(p[1]) << 4 |
				    oracle_hex(p[2]));
				p += 2;
			} else
				o[k++] = *p;
		}
		if (crlf) {
			o[k++] = '\r';
			o[k++] = '\n';
		}
		p = eol == end ? end : eol + 2;
	}
	*outlen = k;
	return o;
}

static int
oracle_b64_val(char c)
{
	const char	*a = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	const char	*q = c != '\0' ? strchr(a, c) : NULL;

	return q != NULL ? (int)(q - a) : -1;
}

/* Octets outside the alphabet ignored (RFC 2045 6.8); what is left, in
 * groups of four, each read up to its first '='. */
char *
oracle_b64_decode(const char *p, size_t n, size_t *outlen)
{
	char	*o = malloc(n + 1), *sig = malloc(n + 1);
	int	 v[4];
	size_t	 i, k = 0, ns = 0, g, m;

	for (i = 0; i < n; i++)
		if (p[i] == '=' || oracle_b64_val(p[i]) >= 0)
			sig[ns++] = p[i];
	for (i = 0; i < ns; i += 4) {
		g = ns - i < 4 ? ns - i : 4;
		for (m = 0; m < g && sig[i + m] != '='; m++)
			v[m] = oracle_b64_val(sig[i + m]);
		if (m >= 2)
			o[k++] = (char)(v[0] << 2 | v[1] >> 4);
		if (m >= 3)
			o[k++] = (char)((v[1] & 0xf) << 4 | v[2] >> 2);
		if (m >= 4)
			o[k++] = (char)((v[2] & 0x3) << 6 | v[3]);
	}
	free(sig);
	*outlen = k;
	return o;
}

/* RFC 2047 2: "=?" charset "?" B|Q "?" text "?=", printable ASCII, no
 * '?' in the text. */
static bool
oracle_is_eword(const char *p, size_t n)
{
	size_t	i, cs;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 33 || (unsigned char)p[i] > 126)
			return false;
	if (n < 8 || strncmp(p, "=?", 2) != 0 || p[n - 2] != '?' ||
	    p[n - 1] != '=')
		return false;
	for (cs = 2; cs < n && p[cs] != '?'; cs++)
		;
	if (cs == 2 || cs + 3 > n - 2 || p[cs + 2] != '?' ||
	    strchr("BbQq", p[cs + 1]) == NULL)
		return false;
	for (i = cs + 3; i < n - 2; i++)
		if (p[i] == '?')
			return false;
	return true;
}

/* The octets of encoded word <p>/<n>, appended to <o> at *k. */
static void
oracle_eword_decode(const char *p, size_t n, char *o, size_t *k)
{
	const char	*text = (const char *)memchr(p + 2, '?', n - 2) + 3;
	size_t		 tlen = (size_t)(p + n - 2 - text), i, dl;
	char		*d;

	if (text[-2] == 'B' || text[-2] == 'b') {
		d = oracle_b64_decode(text, tlen, &dl);
		memcpy(o + *k, d, dl);
		*k += dl;
		free(d);
		return;
	}
	for (i = 0; i < tlen; i++) {
		if (text[i] == '_')
			o[(*k)++] = ' ';
		else if (text[i] == '=' && i + 2 < tlen &&
		    oracle_hex(text[i + 1]) >= 0 &&
		    oracle_hex(text[i + 2]) >= 0) {
			o[(*k)++] = (char)(oracle_hex(text[i + 1]) << 4 |
			    oracle_hex(text[i + 2]));
			i += 2;
		} else
			o[(*k)++] = text[i];
	}
}

/* A field value: unfolded (CRLF pairs dropped), encoded words decoded,
 * white space between two encoded words dropped (RFC 2047 6.2). */
char *
oracle_hdr_decode(const char *p, size_t n, size_t *outlen)
{
	char	*u = malloc(n + 1), *o = malloc(n + 1);
	size_t	 i, j, un = 0, k = 0, wsp_at = 0;
	bool	 prev_ew = false, pending = false;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			i++;
		else
			u[un++] = p[i];
	}
	for (i = 0; i < un; i = j) {
		if (oracle_wsp(u[i])) {
			for (j = i; j < un && oracle_wsp(u[j]); j++)
				;
			wsp_at = k;
			memcpy(o + k, u + i, j - i);
			k += j - i;
			pending = true;
			continue;
		}
		for (j = i; j < un && !oracle_wsp(u[j]); j++)
			;
		if (oracle_is_eword(u + i, j - i)) {
			if (prev_ew && pending)
				k = wsp_at;
			oracle_eword_decode(u + i, j - i, o, &k);
			prev_ew = true;
		} else {
			memcpy(o + k, u + i, j - i);
			k += j - i;
			prev_ew = false;
		}
		pending = false;
	}
	free(u);
	*outlen = k;
	return o;
}

/*
 * Comparing the trees.
 */

static bool
oracle_is_cte(const struct oracle_field *f)
{
	return mimefield_is(f->p, f->len, "Content-Transfer-Encoding");
}

/* Is <f> a field that mime.c may add, absent from <a>? */
static bool
oracle_is_added(const struct oracle_field *f, const struct oracle_ent *a)
{
	const char	*names[] = { "MIME-Version", "Content-Type" };
	size_t		 i, j;

	for (i = 0; i < 2; i++) {
		if (!mimefield_is(f->p, f->len, names[i]))
			continue;
		for (j = 0; j < a->nf; j++)
			if (mimefield_is(a->f[j].p, a->f[j].len, names[i]))
				return false;
		return true;
	}
	return false;
}

static const char *
oracle_field_cmp(const struct oracle_field *x, const struct oracle_field *y)
{
	const char	*cx = memchr(x->p, ':', x->len);
	const char	*cy = memchr(y->p, ':', y->len);
	char		*dx, *dy;
	size_t		 nx, ny;
	bool		 same;

	if (x->len == y->len && memcmp(x->p, y->p, x->len) == 0)
		return NULL;
	if (mimefield_is_clean(x->p, x->len))
		return oracle_say("clean field changed: %.*s", (int)(cx - x->p),
		    x->p);
	if (cx - x->p != cy - y->p || memcmp(x->p, y->p,
	    (size_t)(cx - x->p)) != 0)
		return oracle_say("field name changed");
	dx = oracle_hdr_decode(cx + 1, (size_t)(x->p + x->len - cx - 1), &nx);
	dy = oracle_hdr_decode(cy + 1, (size_t)(y->p + y->len - cy - 1), &ny);
	same = nx == ny && memcmp(dx, dy, nx) == 0;
	free(dx);
	free(dy);
	return same ? NULL : oracle_say("field value changed: %.*s",
	    (int)(cx - x->p), x->p);
}

/* The header fields of <a> and <b> in order; when <recoded>, the
 * transfer encoding may differ and <b> may add MIME-Version and
 * Content-Type. */
static const char *
oracle_fields(const struct oracle_ent *a, const struct oracle_ent *b,
    bool recoded)
{
	const char	*why;
	size_t		 i = 0, j = 0;

	for (;;) {
		while (recoded && i < a->nf && oracle_is_cte(&a->f[i]))
			i++;
		while (recoded && j < b->nf && (oracle_is_cte(&b->f[j]) ||
		    oracle_is_added(&b->f[j], a)))
			j++;
		if (i == a->nf || j == b->nf)
			break;
		if ((why = oracle_field_cmp(&a->f[i], &b->f[j])) != NULL)
			return why;
		i++;
		j++;
	}
	return i == a->nf && j == b->nf ? NULL : "header fields differ";
}

static char *
oracle_body_decode(const struct oracle_ent *t, size_t *n)
{
	char	*d;

	switch (t->cte) {
	case MIMEFIELD_CTE_QP:
		return oracle_qp_decode(t->body, t->blen, n);
	case MIMEFIELD_CTE_BASE64:
		return oracle_b64_decode(t->body, t->blen, n);
	default:
		d = malloc(t->blen + 1);
		memcpy(d, t->body, t->blen);
		*n = t->blen;
		return d;
	}
}

static const char *
oracle_leaf(const struct oracle_ent *a, const struct oracle_ent *b)
{
	char	*da, *db;
	size_t	 na, nb, i;
	bool	 same;

	if (!a->needs)
		return a->blen == b->blen && memcmp(a->body, b->body,
		    a->blen) == 0 ? NULL : "a conformant body changed";
	if (b->cte == MIMEFIELD_CTE_IDENTITY || b->cte == MIMEFIELD_CTE_OTHER)
		return "a body to re-encode was not";
	for (i = 0; i < b->blen; i++)
		if ((i == 0 || b->body[i - 1] == '\n') &&
		    (b->body[i] == '.' || b->body[i] == '-'))
			return "a re-encoded line starts with '.' or '-'";
	da = oracle_body_decode(a, &na);
	db = oracle_body_decode(b, &nb);
	same = na == nb && memcmp(da, db, na) == 0;
	free(da);
	free(db);
	return same ? NULL : "a re-encoded body decodes differently";
}

static const char *
oracle_tree(const struct oracle_ent *a, const struct oracle_ent *b)
{
	const char	*why;
	size_t		 i;

	if (a->kind != b->kind || a->nkid != b->nkid)
		return "the MIME tree differs";
	why = oracle_fields(a, b, a->kind == ORACLE_LEAF && a->needs);
	if (why == NULL && a->kind == ORACLE_LEAF)
		why = oracle_leaf(a, b);
	for (i = 0; why == NULL && i < a->nkid; i++)
		why = oracle_tree(&a->kid[i], &b->kid[i]);
	return why;
}

static void
oracle_parse(const char *p, size_t n, struct oracle_msg *m,
    struct oracle_ent *t)
{
	struct oracle_stack	s;
	size_t			pos = 0;

	memset(&s, 0, sizeof(s));
	oracle_split(p, n, m);
	oracle_entity(m, &pos, 0, false, &s, t);
}

const char *
oracle_compare(const char *in, size_t inlen, const char *out, size_t outlen)
{
	struct oracle_msg	 ma, mb;
	struct oracle_ent	 a, b;
	const char		*why;
	char			*norm;
	size_t			 nlen = inlen;

	if ((why = oracle_lines(out, outlen)) != NULL)
		return why;
	norm = malloc(inlen + 2);
	memcpy(norm, in, inlen);
	if (inlen > 0 && (inlen < 2 || in[inlen - 2] != '\r' ||
	    in[inlen - 1] != '\n')) {
		norm[nlen++] = '\r';
		norm[nlen++] = '\n';
	}
	oracle_parse(norm, nlen, &ma, &a);
	oracle_parse(out, outlen, &mb, &b);
	why = oracle_tree(&a, &b);
	oracle_free(&a);
	oracle_free(&b);
	free(ma.l);
	free(mb.l);
	free(norm);
	return why;
}
