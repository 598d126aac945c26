/*
 * mimefield.c - reading and repairing one header field (see
 * mimefield.h).
 *
 * Values are read unfolded (CRLF pairs dropped, RFC 5322 2.2.3) by a
 * small RFC 2045 tokenizer that skips nested comments.  A repair never
 * changes what unfolding and RFC 2047 decoding give: folds go only
 * before white space that stays, and the octets that must go are
 * written as encoded words whose neighbours keep their meaning.
 */
#include "config.h"

#include "mimefield.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "qword.h"
#include "util.h"

/* A word or a run of white space of an unfolded value. */
enum mimefield_tokk {
	MIMEFIELD_K_WSP,
	MIMEFIELD_K_PLAIN,
	MIMEFIELD_K_EWORD,		/* an RFC 2047 encoded word */
	MIMEFIELD_K_BAD,		/* to be encoded */
};

struct mimefield_tok {
	enum mimefield_tokk	 kind;
	const char		*p;
	size_t			 len;
};

/* Reads a value: p moves along, end is fixed. */
struct mimefield_lex {
	const char	*p, *end;
};

static const char *const mimefield_unstructured[] = {
	"Subject", "Comments", "Content-Description", "Organization",
	"Thread-Topic",
};

static bool
mimefield_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

size_t
mimefield_name_len(const char *f, size_t len)
{
	size_t	i, name;

	for (i = 0; i < len && f[i] > ' ' && f[i] < 0x7f && f[i] != ':'; i++)
		;
	name = i;
	while (i < len && mimefield_is_wsp((unsigned char)f[i]))
		i++;
	return name > 0 && i < len && f[i] == ':' ? name : 0;
}

bool
mimefield_is(const char *f, size_t len, const char *name)
{
	size_t	n = mimefield_name_len(f, len);

	return n > 0 && n == strlen(name) && strncasecmp(f, name, n) == 0;
}

bool
mimefield_is_clean(const char *f, size_t len)
{
	size_t	i, col = 0;

	for (i = 0; i < len; i++) {
		if (f[i] == '\r' && i + 1 < len && f[i + 1] == '\n') {
			col = 0;
			i++;
			continue;
		}
		if (f[i] == '\r' || f[i] == '\n' || f[i] == '\0' ||
		    ++col > MIMEFIELD_LINE_MAX)
			return false;
	}
	return true;
}

/* The value of field <f>, unfolded, NUL-terminated (it may hold NULs
 * of its own: use *n).  Caller frees. */
static char *
mimefield_value(const char *f, size_t len, size_t *n)
{
	const char	*colon = memchr(f, ':', len);
	char		*v = xmalloc(len + 1);
	size_t		 i;

	*n = 0;
	i = colon != NULL ? (size_t)(colon - f) + 1 : len;
	for (; i < len; i++) {
		if (f[i] == '\r' && i + 1 < len && f[i + 1] == '\n')
			i++;
		else
			v[(*n)++] = f[i];
	}
	v[*n] = '\0';
	return v;
}

/*
 * Reading Content-Type and Content-Transfer-Encoding.
 */

/* RFC 2045 5.1 token characters. */
static bool
mimefield_is_tchar(unsigned char c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

/* Skips white space and comments (nested, with quoted pairs).  An
 * unterminated comment runs to the end. */
static void
mimefield_skip_cfws(struct mimefield_lex *l)
{
	size_t	depth;

	for (;;) {
		while (l->p < l->end && mimefield_is_wsp((unsigned char)*l->p))
			l->p++;
		if (l->p == l->end || *l->p != '(')
			return;
		for (depth = 0; l->p < l->end; l->p++) {
			if (*l->p == '\\' && l->p + 1 < l->end)
				l->p++;
			else if (*l->p == '(')
				depth++;
			else if (*l->p == ')' && --depth == 0) {
				l->p++;
				break;
			}
		}
	}
}

/* A token: its length, 0 when there is none. */
static size_t
mimefield_token(struct mimefield_lex *l, const char **tok)
{
	*tok = l->p;
	while (l->p < l->end && mimefield_is_tchar((unsigned char)*l->p))
		l->p++;
	return (size_t)(l->p - *tok);
}

static bool
mimefield_tok_is(const char *t, size_t n, const char *s)
{
	return n == strlen(s) && strncasecmp(t, s, n) == 0;
}

/* A parameter value, token or quoted string, copied unquoted into
 * <v> (<vsz> octets).  Returns its length, or -1 when it is missing,
 * unterminated or too long. */
static int
mimefield_param_value(struct mimefield_lex *l, char *v, size_t vsz)
{
	const char	*t;
	size_t		 n = 0;

	if (l->p < l->end && *l->p == '"') {
		for (l->p++; l->p < l->end && *l->p != '"'; l->p++) {
			if (*l->p == '\\' && l->p + 1 < l->end)
				l->p++;
			if (n == vsz)
				return -1;
			v[n++] = *l->p;
		}
		if (l->p == l->end)
			return -1;
		l->p++;
		return (int)n;
	}
	n = mimefield_token(l, &t);
	if (n == 0 || n > vsz)
		return -1;
	memcpy(v, t, n);
	return (int)n;
}

/* The parameters after type/subtype: only boundary matters. */
static void
mimefield_params(struct mimefield_lex *l, struct mimefield_ctype *ct)
{
	char		 v[MIMEFIELD_BOUNDARY_MAX];
	const char	*a;
	size_t		 alen;
	int		 n;

	for (;;) {
		mimefield_skip_cfws(l);
		if (l->p == l->end || *l->p != ';')
			return;
		l->p++;
		mimefield_skip_cfws(l);
		if ((alen = mimefield_token(l, &a)) == 0)
			return;
		mimefield_skip_cfws(l);
		if (l->p == l->end || *l->p != '=')
			return;
		l->p++;
		mimefield_skip_cfws(l);
		n = mimefield_param_value(l, v, sizeof(v));
		if (!mimefield_tok_is(a, alen, "boundary"))
			continue;
		if (n > 0 && memchr(v, '\r', (size_t)n) == NULL &&
		    memchr(v, '\n', (size_t)n) == NULL &&
		    memchr(v, '\0', (size_t)n) == NULL) {
			memcpy(ct->boundary, v, (size_t)n);
			ct->boundary[n] = '\0';
			ct->blen = (size_t)n;
		}
		return;
	}
}

void
mimefield_ctype(const char *f, size_t len, struct mimefield_ctype *ct)
{
	struct mimefield_lex	 l;
	const char		*t, *s;
	size_t			 tlen, slen, n;
	char			*v;

	memset(ct, 0, sizeof(*ct));
	ct->type = MIMEFIELD_TEXT;
	v = mimefield_value(f, len, &n);
	l.p = v;
	l.end = v + n;
	mimefield_skip_cfws(&l);
	tlen = mimefield_token(&l, &t);
	mimefield_skip_cfws(&l);
	if (tlen == 0 || l.p == l.end || *l.p != '/')
		goto done;
	l.p++;
	mimefield_skip_cfws(&l);
	if ((slen = mimefield_token(&l, &s)) == 0)
		goto done;
	if (mimefield_tok_is(t, tlen, "multipart")) {
		ct->type = MIMEFIELD_MULTIPART;
		ct->digest = mimefield_tok_is(s, slen, "digest");
		mimefield_params(&l, ct);
	} else if (mimefield_tok_is(t, tlen, "message"))
		ct->type = mimefield_tok_is(s, slen, "rfc822") ?
		    MIMEFIELD_RFC822 : MIMEFIELD_MESSAGE;
	else if (!mimefield_tok_is(t, tlen, "text"))
		ct->type = MIMEFIELD_OTHER;
done:
	free(v);
}

enum mimefield_cte
mimefield_cte(const char *f, size_t len)
{
	struct mimefield_lex	 l;
	enum mimefield_cte	 cte = MIMEFIELD_CTE_OTHER;
	const char		*t;
	size_t			 tlen, n;
	char			*v;

	v = mimefield_value(f, len, &n);
	l.p = v;
	l.end = v + n;
	mimefield_skip_cfws(&l);
	tlen = mimefield_token(&l, &t);
	mimefield_skip_cfws(&l);
	if (l.p != l.end)
		;	/* more than one token: not an encoding we know */
	else if (tlen == 0 || mimefield_tok_is(t, tlen, "7bit") ||
	    mimefield_tok_is(t, tlen, "8bit") ||
	    mimefield_tok_is(t, tlen, "binary"))
		cte = MIMEFIELD_CTE_IDENTITY;
	else if (mimefield_tok_is(t, tlen, "quoted-printable"))
		cte = MIMEFIELD_CTE_QP;
	else if (mimefield_tok_is(t, tlen, "base64"))
		cte = MIMEFIELD_CTE_BASE64;
	free(v);
	return cte;
}

/*
 * Folding.
 */

/* Writes line <l>/<n> (no CRLF) with CRLF, folded before white space
 * so that no line is over 998 octets: at the last place within 78
 * octets, else at the first one after.  A fold goes only where the new
 * line reaches a word within 998 octets, so that no line holds only
 * white space (RFC 5322 3.2.2), and never before the first word after
 * <skip> octets (the field name of a first line).  Returns 0, or -1
 * when some piece stays too long. */
static int
mimefield_fold_line(struct buf *b, const char *l, size_t n,
    size_t skip)
{
	size_t	pos = 0, i, best, soft, nw, nn;

	while (n - pos > MIMEFIELD_LINE_MAX) {
		best = soft = 0;
		for (nw = pos + skip; nw < n &&
		    mimefield_is_wsp((unsigned char)l[nw]); nw++)
			;
		skip = 0;
		for (i = nw + 1, nn = i; i + 1 < n &&
		    i - pos <= MIMEFIELD_LINE_MAX; i++) {
			if (!mimefield_is_wsp((unsigned char)l[i]))
				continue;
			for (nn = nn > i ? nn : i + 1; nn < n &&
			    mimefield_is_wsp((unsigned char)l[nn]); nn++)
				;
			if (nn == n || nn - i >= MIMEFIELD_LINE_MAX)
				continue;
			if (i - pos <= MIMEFIELD_FOLD)
				soft = i;
			else if (best == 0)
				best = i;
		}
		if (soft != 0)
			best = soft;
		if (best == 0)
			return -1;
		buf_add(b, l + pos, best - pos);
		buf_adds(b, "\r\n");
		pos = best;
	}
	buf_add(b, l + pos, n - pos);
	buf_adds(b, "\r\n");
	return 0;
}

/* Folds each over-long line of a field free of CR, LF and NUL. */
static int
mimefield_fold(struct buf *b, const char *f, size_t len)
{
	const char	*p = f, *end = f + len, *crlf;
	size_t		 skip = (size_t)((const char *)memchr(f, ':', len) -
			    f) + 1;

	while (p < end) {
		crlf = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (crlf == NULL)
			crlf = end;
		if (mimefield_fold_line(b, p, (size_t)(crlf - p),
		    p == f ? skip : 0) == -1)
			return -1;
		p = crlf + 2;
	}
	return 0;
}

/*
 * RFC 2047 encoded words.
 */

static bool
mimefield_is_unstructured(const char *f, size_t len)
{
	size_t	i;

	if (mimefield_name_len(f, len) > 2 && strncasecmp(f, "X-", 2) == 0)
		return true;
	for (i = 0; i < nitems(mimefield_unstructured); i++)
		if (mimefield_is(f, len, mimefield_unstructured[i]))
			return true;
	return false;
}

/* The token of value <v>/<n> at <pos>: a run of white space or a word,
 * classified.  Its length is 0 at the end. */
static struct mimefield_tok
mimefield_token_at(const char *v, size_t n, size_t pos)
{
	struct mimefield_tok	t;
	size_t			j;
	bool			wsp;

	t.p = v + pos;
	t.len = 0;
	t.kind = MIMEFIELD_K_PLAIN;
	if (pos >= n)
		return t;
	wsp = mimefield_is_wsp((unsigned char)v[pos]);
	for (j = pos; j < n && mimefield_is_wsp((unsigned char)v[j]) == wsp;
	    j++)
		;
	t.len = j - pos;
	if (wsp)
		t.kind = MIMEFIELD_K_WSP;
	else if (memchr(t.p, '\r', t.len) != NULL ||
	    memchr(t.p, '\n', t.len) != NULL ||
	    memchr(t.p, '\0', t.len) != NULL || t.len > MIMEFIELD_WORD_MAX)
		t.kind = MIMEFIELD_K_BAD;
	else if (qword_is_encoded(t.p, t.len))
		t.kind = MIMEFIELD_K_EWORD;
	return t;
}

/* Writes the bad words from the one at <pos> on, with the white space
 * between them, as encoded words; white space next to an original
 * encoded word goes inside too (<lead>: the run before, or NULL), with
 * a plain space left as the separator.  Returns where to go on. */
static size_t
mimefield_group(struct buf *b, const char *v, size_t n,
    size_t pos, const struct mimefield_tok *lead)
{
	struct buf		g = BUF_INIT;
	struct mimefield_tok	t, w, x;

	if (lead != NULL) {
		buf_adds(b, " ");
		buf_add(&g, lead->p, lead->len);
	}
	t = mimefield_token_at(v, n, pos);
	buf_add(&g, t.p, t.len);
	pos += t.len;
	for (;;) {
		w = mimefield_token_at(v, n, pos);
		x = mimefield_token_at(v, n, pos + w.len);
		if (w.kind != MIMEFIELD_K_WSP || w.len == 0 || x.len == 0 ||
		    (x.kind != MIMEFIELD_K_BAD && x.kind != MIMEFIELD_K_EWORD))
			break;
		buf_add(&g, w.p, w.len);
		pos += w.len;
		if (x.kind == MIMEFIELD_K_EWORD) {
			qword_encode(b, (unsigned char *)g.p, g.len,
			    "unknown-8bit", 0);
			buf_adds(b, " ");
			free(g.p);
			return pos;
		}
		buf_add(&g, x.p, x.len);
		pos += x.len;
	}
	qword_encode(b, (unsigned char *)g.p, g.len, "unknown-8bit",
	    0);
	free(g.p);
	return pos;
}

/* The field rebuilt on one line: its name as it was, then the value
 * with the bad words encoded.  Returns the line, caller frees. */
static struct buf
mimefield_reencode(const char *f, size_t len)
{
	struct buf		 b = BUF_INIT;
	struct mimefield_tok	 t, next, held;
	const char		*colon = memchr(f, ':', len);
	enum mimefield_tokk	 prev = MIMEFIELD_K_WSP;
	char			*v;
	size_t			 n, pos = 0;
	bool			 hold = false;

	v = mimefield_value(f, len, &n);
	buf_add(&b, f, (size_t)(colon - f) + 1);
	while ((t = mimefield_token_at(v, n, pos)).len > 0) {
		if (t.kind == MIMEFIELD_K_BAD) {
			pos = mimefield_group(&b, v, n, pos,
			    hold ? &held : NULL);
			hold = false;
			prev = MIMEFIELD_K_BAD;
			continue;
		}
		next = mimefield_token_at(v, n, pos + t.len);
		if (t.kind == MIMEFIELD_K_WSP && prev == MIMEFIELD_K_EWORD &&
		    next.kind == MIMEFIELD_K_BAD && next.len > 0) {
			held = t;	/* goes inside the next group */
			hold = true;
		} else
			buf_add(&b, t.p, t.len);
		prev = t.kind;
		pos += t.len;
	}
	free(v);
	return b;
}

static bool
mimefield_has_bad_octet(const char *f, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++) {
		if (f[i] == '\r' && i + 1 < len && f[i + 1] == '\n')
			i++;
		else if (f[i] == '\r' || f[i] == '\n' || f[i] == '\0')
			return true;
	}
	return false;
}

enum mimefield_rc
mimefield_fix(const char *f, size_t len, char **out, size_t *outlen)
{
	struct buf		b = BUF_INIT, line;
	bool			bad;

	*out = NULL;
	*outlen = 0;
	if (mimefield_is_clean(f, len))
		return MIMEFIELD_CLEAN;
	bad = mimefield_has_bad_octet(f, len);
	if (!bad && mimefield_fold(&b, f, len) == 0)
		goto fixed;
	b.len = 0;
	if (!mimefield_is_unstructured(f, len) ||
	    mimefield_name_len(f, len) == 0) {
		free(b.p);
		return bad ? MIMEFIELD_EOCTET : MIMEFIELD_ELONG;
	}
	line = mimefield_reencode(f, len);
	if (mimefield_fold_line(&b, line.p, line.len, (size_t)((const char *)
	    memchr(f, ':', len) - f) + 1) == -1) {
		free(line.p);
		free(b.p);
		return MIMEFIELD_ELONG;
	}
	free(line.p);
fixed:
	*out = b.p;
	*outlen = b.len;
	return MIMEFIELD_FIXED;
}

/*
 * A field as it streams in.
 */

enum mimefield_name {
	MIMEFIELD_N_NAME,		/* in the name */
	MIMEFIELD_N_WSP,		/* white space after it */
	MIMEFIELD_N_FIELD,		/* the colon came: a field */
};

void
mimefield_in_init(struct mimefield_in *fi, size_t max,
    void (*cb)(void *, const char *, size_t), void *arg)
{
	char	*p = fi->p;
	size_t	 cap = fi->cap;

	memset(fi, 0, sizeof(*fi));
	fi->p = p;		/* kept for the next message */
	fi->cap = cap;
	fi->max = max;
	fi->cb = cb;
	fi->arg = arg;
}

void
mimefield_in_free(struct mimefield_in *fi)
{
	free(fi->p);
	fi->p = NULL;
	fi->cap = 0;
}

void
mimefield_in_start(struct mimefield_in *fi)
{
	fi->open = true;
	fi->len = 0;
	fi->over = fi->dirty = false;
	fi->name = MIMEFIELD_N_NAME;
	fi->startlen = 0;
}

bool
mimefield_in_name(struct mimefield_in *fi, const char *p, size_t n,
    size_t col)
{
	unsigned char	c;
	size_t		i;

	for (i = 0; i < n && fi->name != MIMEFIELD_N_FIELD; i++) {
		c = (unsigned char)p[i];
		if (col + i >= MIMEFIELD_LINE_MAX)
			break;
		if (c == ':' && col + i > 0)
			fi->name = MIMEFIELD_N_FIELD;
		else if (c == ' ' || c == '\t')
			fi->name = MIMEFIELD_N_WSP;
		else if (fi->name == MIMEFIELD_N_WSP || c <= ' ' ||
		    c >= 0x7f || c == ':')
			break;
	}
	return fi->name == MIMEFIELD_N_FIELD || i == n;
}

bool
mimefield_in_is_field(const struct mimefield_in *fi)
{
	return fi->name == MIMEFIELD_N_FIELD;
}

/* A field over <max> is not kept, not even its name: its start is,
 * for a failure to name it.  The first pass fails the message if what
 * streamed was not conformant. */
void
mimefield_in_add(struct mimefield_in *fi, const char *p, size_t n, bool eol,
    size_t col)
{
	size_t	k = sizeof(fi->start) - fi->startlen;

	if (k > n)
		k = n;
	memcpy(fi->start + fi->startlen, p, k);
	fi->startlen += k;
	if (!fi->over && fi->len + n > fi->max) {
		fi->over = true;
		fi->dirty = !mimefield_is_clean(fi->p, fi->len);
		if (fi->len > 0)
			fi->cb(fi->arg, fi->p, fi->len);
	}
	if (fi->over) {
		if (!eol && (col + n > MIMEFIELD_LINE_MAX ||
		    memchr(p, '\r', n) != NULL || memchr(p, '\n', n) != NULL ||
		    memchr(p, '\0', n) != NULL))
			fi->dirty = true;
		fi->cb(fi->arg, p, n);
		return;
	}
	while (fi->cap - fi->len < n) {
		fi->cap = fi->cap == 0 ? 1024 : fi->cap * 2;
		fi->p = xrealloc(fi->p, fi->cap);
	}
	memcpy(fi->p + fi->len, p, n);
	fi->len += n;
}
