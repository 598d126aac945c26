/*
 * rewrite.c - From: rewriting that keeps provenance (see rewrite.h).
 *
 * The header block is checked first (canonical CRLF lines, each a field
 * or a continuation, none over 998 octets), so that everything after
 * that may rely on it.  Addresses are read by the one address-list
 * parser (addrlist.h), which never recurses and never reads past the
 * value.  Every line we
 * write is built from checked input or checked parameters and ends in
 * CRLF; the relay dot-stuffs it like any other line.
 */
#include "config.h"

#include "rewrite.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addrlist.h"
#include "buf.h"
#include "qword.h"
#include "smtp.h"
#include "util.h"

#define REWRITE_FOLD_SOFT	78	/* RFC 5322 2.1.1 SHOULD */
#define REWRITE_PARAM_MAX	1024	/* display and suffix octets */

/* One field of a checked header block. */
struct rewrite_field {
	const char	*p;		/* its first octet */
	size_t		 len;		/* with every CRLF */
	size_t		 namelen;	/* octets of the name */
	const char	*val;		/* after the colon */
	size_t		 vallen;	/* up to the final CRLF */
};

struct rewrite_list {
	size_t			 nmbox;
	bool			 all_domains;	/* every address has '@' */
	struct addrlist_mbox	 first;
};

/* The display name being built: plain text gathers in <run> until an
 * encoded word or the end decides how it is written to <out>. */
struct rewrite_disp {
	struct buf	*out;
	struct buf	 run;
	bool		 any;		/* something written to out */
	bool		 prev_enc;	/* and it ended with an encoded word */
};

static bool
rewrite_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

const char *
rewrite_rc_str(enum rewrite_rc rc)
{
	switch (rc) {
	case REWRITE_OK:
		return "ok";
	case REWRITE_UNCHANGED:
		return "unchanged";
	case REWRITE_ETOOBIG:
		return "header-too-big";
	case REWRITE_ELONGLINE:
		return "line-too-long";
	case REWRITE_EMALFORMED:
		return "malformed-header";
	case REWRITE_EPARAM:
		return "bad-account";
	}
	return "?";
}

/* The CRLF line at <p> (<n> octets available): *linelen gets its length
 * with the CRLF, or 0 when it is not complete within <n>. */
static enum rewrite_rc
rewrite_line(const char *p, size_t n, size_t *linelen)
{
	size_t	i;

	*linelen = 0;
	for (i = 0; i < n; i++) {
		if (p[i] == '\r') {
			if (i + 1 == n)
				break;
			if (p[i + 1] != '\n')
				return REWRITE_EMALFORMED;
			*linelen = i + 2;
			return REWRITE_OK;
		}
		if (p[i] == '\n' || p[i] == '\0')
			return REWRITE_EMALFORMED;
		if (i >= REWRITE_LINE_MAX)
			return REWRITE_ELONGLINE;
	}
	return REWRITE_OK;
}

/* The length of the field name that starts line <p>/<n> (no CRLF), or
 * 0 when the line does not start a field (RFC 5322 3.6.8, with the
 * obsolete white space before the colon). */
static size_t
rewrite_field_name(const char *p, size_t n)
{
	size_t	i, name;

	for (i = 0; i < n && p[i] > ' ' && p[i] < 0x7f && p[i] != ':'; i++)
		;
	name = i;
	while (i < n && rewrite_is_wsp((unsigned char)p[i]))
		i++;
	return name > 0 && i < n && p[i] == ':' ? name : 0;
}

enum rewrite_rc
rewrite_header_len(const char *buf, size_t len, bool eof, size_t *hlen)
{
	enum rewrite_rc	rc;
	size_t		pos = 0, ll;

	*hlen = 0;
	while (pos < len) {
		if ((rc = rewrite_line(buf + pos, len - pos, &ll)) !=
		    REWRITE_OK)
			return rc;
		if (ll == 0)	/* a partial line: the data stops here */
			return eof ? REWRITE_EMALFORMED : REWRITE_ETOOBIG;
		if (pos + ll > REWRITE_HEADER_MAX)
			return REWRITE_ETOOBIG;
		if (ll == 2) {
			*hlen = pos + 2;
			return REWRITE_OK;
		}
		if (rewrite_is_wsp((unsigned char)buf[pos]) ? pos == 0 :
		    rewrite_field_name(buf + pos, ll - 2) == 0)
			return REWRITE_EMALFORMED;
		pos += ll;
	}
	if (!eof)
		return REWRITE_ETOOBIG;
	*hlen = len;
	return REWRITE_OK;
}

/* The field at <p> in a checked block ending at <end>; returns its
 * length, 0 at the empty line or the end. */
static size_t
rewrite_next_field(const char *p, const char *end, struct rewrite_field *f)
{
	const char	*q = p, *colon;

	if (end - p < 2 || (p[0] == '\r' && p[1] == '\n'))
		return 0;
	f->p = p;
	f->namelen = rewrite_field_name(p, (size_t)(end - p));
	colon = memchr(p, ':', (size_t)(end - p));
	do {
		q = memchr(q, '\r', (size_t)(end - q));
		q += 2;		/* checked: every CR starts a CRLF */
	} while (q < end && rewrite_is_wsp((unsigned char)*q));
	f->len = (size_t)(q - p);
	f->val = colon + 1;
	f->vallen = (size_t)(q - 2 - f->val);
	return f->len;
}

static bool
rewrite_field_is(const struct rewrite_field *f, const char *name)
{
	return f->namelen == strlen(name) &&
	    strncasecmp(f->p, name, f->namelen) == 0;
}

/* The value of <f> without its line breaks, NUL-terminated (a checked
 * block has no NUL).  Caller frees. */
static char *
rewrite_unfold(const struct rewrite_field *f, size_t *outlen)
{
	char	*s = xmalloc(f->vallen + 1);
	size_t	 i, n = 0;

	for (i = 0; i < f->vallen; i++)
		if (f->val[i] != '\r' && f->val[i] != '\n')
			s[n++] = f->val[i];
	s[n] = '\0';
	*outlen = n;
	return s;
}

static int
rewrite_list_cb(void *arg, const struct addrlist_mbox *mb)
{
	struct rewrite_list	*list = arg;

	if (list->nmbox++ == 0)
		list->first = *mb;
	if (mb->addrlen == 0 || memchr(mb->addr, '@', mb->addrlen) == NULL)
		list->all_domains = false;
	return 0;
}

/* A mailbox-list (RFC 5322 3.4): no group, no empty element.  False
 * for anything else. */
static bool
rewrite_parse_list(const char *v, size_t n, struct rewrite_list *out)
{
	struct addrlist_info	info;

	memset(out, 0, sizeof(*out));
	out->all_domains = true;
	return addrlist_parse(v, n, rewrite_list_cb, out, &info) == 0 &&
	    info.nmbox > 0 && info.ngroups == 0 && info.nempty == 0;
}

static bool
rewrite_addr_is(const char *a, size_t alen, const char *account)
{
	return alen == strlen(account) && strncasecmp(a, account, alen) == 0;
}

/* True when <v> is exactly one mailbox whose address is <account>. */
static bool
rewrite_value_is_account(const char *v, size_t n, const char *account)
{
	struct rewrite_list	list;

	return rewrite_parse_list(v, n, &list) && list.nmbox == 1 &&
	    rewrite_addr_is(list.first.addr, list.first.addrlen, account);
}

/*
 * The display name: plain words gather in a run; an original encoded
 * word is copied as it is (it is ASCII already) and never quoted.  A run
 * is written as one quoted string when it is printable ASCII, else as Q
 * encoded words.
 */

static bool
rewrite_is_plain(const unsigned char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}

/* RFC 5322 3.2.4: a quoted string, '"' and '\' escaped. */
static void
rewrite_quote(struct buf *out, const unsigned char *p, size_t n)
{
	size_t	i;

	buf_add(out, "\"", 1);
	for (i = 0; i < n; i++) {
		if (p[i] == '"' || p[i] == '\\')
			buf_add(out, "\\", 1);
		buf_add(out, p + i, 1);
	}
	buf_add(out, "\"", 1);
}

/* Writes the run; <next_enc> tells whether an encoded word follows. */
static void
rewrite_disp_flush(struct rewrite_disp *d, bool next_enc)
{
	size_t			 n = d->run.len;
	const unsigned char	*p = (const unsigned char *)d->run.p;
	bool			 plain;

	if (n == 0)
		return;
	plain = rewrite_is_plain(p, n);
	if (d->any)
		buf_add(d->out, " ", 1);
	if (plain)
		rewrite_quote(d->out, p, n);
	else
		qword_encode(d->out, p, n, "ISO-8859-1",
		    (d->prev_enc ? QWORD_LEAD : 0) |
		    (next_enc ? QWORD_TRAIL : 0));
	d->run.len = 0;
	d->any = true;
	d->prev_enc = !plain;
}

static void
rewrite_disp_encoded(struct rewrite_disp *d, const char *p, size_t n)
{
	rewrite_disp_flush(d, true);
	if (d->any)
		buf_add(d->out, " ", 1);
	buf_add(d->out, p, n);
	d->any = true;
	d->prev_enc = true;
}

/* Adds a word to the run, after a space if one separated it; <quoted>
 * content loses its quoted-pair backslashes.  Tabs become spaces. */
static void
rewrite_disp_text(struct rewrite_disp *d, const char *p, size_t n,
    bool spaced, bool quoted)
{
	size_t	i;
	char	c;

	if (spaced && d->run.len > 0)
		buf_add(&d->run, " ", 1);
	for (i = 0; i < n; i++) {
		c = p[i];
		if (quoted && c == '\\' && i + 1 < n)
			c = p[++i];
		if (c == '\t')
			c = ' ';
		buf_add(&d->run, &c, 1);
	}
}

static bool
rewrite_disp_is_empty(const struct rewrite_disp *d)
{
	return !d->any && d->run.len == 0;
}

/* The words of an original display name; comments are left out. */
static void
rewrite_disp_phrase(struct rewrite_disp *d, const char *p, size_t n)
{
	const char		*end = p + n;
	struct addrlist_word	 w;

	while (addrlist_phrase_word(&p, end, &w)) {
		if (!w.quoted && qword_is_encoded(w.p, w.len))
			rewrite_disp_encoded(d, w.p, w.len);
		else
			rewrite_disp_text(d, w.p, w.len, w.spaced, w.quoted);
	}
}

/* The display name for the new From: (see rewrite.h), then the suffix
 * when there is one.  After an encoded word, the suffix's leading
 * white space is the separator we write anyway. */
static void
rewrite_disp_build(struct rewrite_disp *d, const struct rewrite_params *pa,
    const struct addrlist_mbox *mb)
{
	const char	*suffix = pa->suffix != NULL ? pa->suffix : "";

	if (pa->display != NULL && pa->display[0] != '\0')
		rewrite_disp_text(d, pa->display, strlen(pa->display), false,
		    false);
	else if (mb != NULL) {
		if (mb->phrase != NULL)
			rewrite_disp_phrase(d, mb->phrase, mb->phraselen);
		if (rewrite_disp_is_empty(d) && mb->cmt != NULL &&
		    memmem(mb->cmt, mb->cmtlen, "=?", 2) == NULL)
			rewrite_disp_text(d, mb->cmt, mb->cmtlen, false, true);
		if (rewrite_disp_is_empty(d))
			rewrite_disp_text(d, mb->addr, mb->addrlen, false,
			    false);
	}
	if (rewrite_disp_is_empty(d))
		return;
	if (d->run.len == 0 && d->prev_enc)
		while (rewrite_is_wsp((unsigned char)*suffix))
			suffix++;
	buf_add(&d->run, suffix, strlen(suffix));
	rewrite_disp_flush(d, false);
}

/* The new From: value, unfolded: " phrase <account>" or " <account>".
 * <mb> is the original's only mailbox, or NULL. */
static void
rewrite_from_value(struct buf *v, const struct rewrite_params *pa,
    const struct addrlist_mbox *mb)
{
	struct rewrite_disp	d;

	memset(&d, 0, sizeof(d));
	d.out = v;
	buf_add(v, " ", 1);
	rewrite_disp_build(&d, pa, mb);
	buf_printf(v, "%s<%s>", d.any ? " " : "", pa->account);
	buf_free(&d.run);
}

/*
 * Output.
 */

/* Writes "name:" and the unfolded value <v>/<n>, folded before white
 * space (RFC 5322 2.2.3): lines of 78 octets where the value allows,
 * never over 998; a fold always leaves text on both lines.  Returns 0,
 * or -1 when no fold keeps a line under 998 (<out> is then partly
 * written: the caller drops it). */
static int
rewrite_fold(struct buf *out, const char *name, const char *v,
    size_t n)
{
	size_t	col = strlen(name) + 1, pos = 0, first = 0, best, i;

	buf_printf(out, "%s:", name);
	while (first < n && rewrite_is_wsp((unsigned char)v[first]))
		first++;
	while (col + (n - pos) > REWRITE_FOLD_SOFT) {
		best = 0;
		for (i = pos + 1; i + 1 < n &&
		    col + (i - pos) <= REWRITE_LINE_MAX; i++) {
			if (col + (i - pos) > REWRITE_FOLD_SOFT && best != 0)
				break;
			if (!rewrite_is_wsp((unsigned char)v[i]) ||
			    rewrite_is_wsp((unsigned char)v[i + 1]) ||
			    i <= first)
				continue;
			best = i;
			if (col + (i - pos) > REWRITE_FOLD_SOFT)
				break;
		}
		if (best == 0)
			break;
		buf_add(out, v + pos, best - pos);
		buf_add(out, "\r\n", 2);
		col = 0;
		pos = best;
	}
	if (col + (n - pos) > REWRITE_LINE_MAX)
		return -1;
	buf_add(out, v + pos, n - pos);
	buf_add(out, "\r\n", 2);
	return 0;
}

/* Writes field <f>'s value under another name, refolded. */
static int
rewrite_rename(struct buf *out, const char *name,
    const struct rewrite_field *f)
{
	char	*v;
	size_t	 n;
	int	 rc;

	v = rewrite_unfold(f, &n);
	rc = rewrite_fold(out, name, v, n);
	free(v);
	return rc;
}

/* At the first From: of <p>..<end>: the new From: <val>, each original
 * From: as X-Original-From:, then Reply-To: <rt> unless it is NULL. */
static int
rewrite_put_from(struct buf *out, struct buf *val,
    const char *p, const char *end, const char *rt, size_t rtlen)
{
	struct rewrite_field	f;
	size_t			n;
	int			rc;

	rc = rewrite_fold(out, "From", val->p, val->len);
	for (; (n = rewrite_next_field(p, end, &f)) > 0; p += n)
		if (rewrite_field_is(&f, "From"))
			rc |= rewrite_rename(out, "X-Original-From", &f);
	if (rt != NULL)
		rc |= rewrite_fold(out, "Reply-To", rt, rtlen);
	return rc;
}

static bool
rewrite_sender_is_account(const struct rewrite_field *f,
    const char *account)
{
	char	*v;
	size_t	 n;
	bool	 is;

	v = rewrite_unfold(f, &n);
	is = rewrite_value_is_account(v, n, account);
	free(v);
	return is;
}

/* Copies the checked block <hdr>/<len> to <out> with the changes.
 * <mb>: the one original mailbox (or NULL); <rt>: the Reply-To: value
 * to add (or NULL). */
static enum rewrite_rc
rewrite_emit(const char *hdr, size_t len, const struct rewrite_params *pa,
    const struct addrlist_mbox *mb, const char *rt, size_t rtlen,
    struct buf *out)
{
	struct buf		 res = BUF_INIT, val = BUF_INIT;
	struct rewrite_field	 f;
	const char		*p = hdr, *end = hdr + len;
	bool			 from_done = false;
	size_t			 n;
	int			 rc = 0;

	rewrite_from_value(&val, pa, mb);
	for (; (n = rewrite_next_field(p, end, &f)) > 0; p += n) {
		if (rewrite_field_is(&f, "From")) {
			if (!from_done)
				rc |= rewrite_put_from(&res, &val, p, end, rt,
				    rtlen);
			from_done = true;
		} else if (rewrite_field_is(&f, "Sender") &&
		    !rewrite_sender_is_account(&f, pa->account))
			rc |= rewrite_rename(&res, "X-Original-Sender", &f);
		else
			buf_add(&res, f.p, f.len);
	}
	if (!from_done)
		rc |= rewrite_fold(&res, "From", val.p, val.len);
	buf_add(&res, p, (size_t)(end - p));	/* the empty line */
	if (rc == 0)
		buf_add(out, res.p, res.len);
	buf_free(&val);
	buf_free(&res);
	return rc == 0 ? REWRITE_OK : REWRITE_ELONGLINE;
}

static bool
rewrite_text_is_ok(const char *s)
{
	return s == NULL || (strlen(s) <= REWRITE_PARAM_MAX &&
	    strpbrk(s, "\r\n") == NULL);
}

enum rewrite_rc
rewrite_from(const char *hdr, size_t len, const struct rewrite_params *pa,
    struct buf *out)
{
	struct rewrite_field	 f;
	struct rewrite_list	 list;
	const char		*p, *end = hdr + len;
	char			*v = NULL;
	size_t			 hl, n, vlen = 0, nfrom = 0;
	bool			 parsed = false, reply_to = false, one;
	enum rewrite_rc		 rc;

	if (pa->account == NULL || strlen(pa->account) >= SMTP_PATH_MAX ||
	    !smtp_mailbox_is_valid(pa->account) ||
	    !rewrite_text_is_ok(pa->display) || !rewrite_text_is_ok(pa->suffix))
		return REWRITE_EPARAM;
	if ((rc = rewrite_header_len(hdr, len, true, &hl)) != REWRITE_OK)
		return rc;
	if (hl != len)
		return REWRITE_EMALFORMED;
	for (p = hdr; (n = rewrite_next_field(p, end, &f)) > 0; p += n) {
		if (rewrite_field_is(&f, "From") && nfrom++ == 0) {
			v = rewrite_unfold(&f, &vlen);
			parsed = rewrite_parse_list(v, vlen, &list);
		} else if (rewrite_field_is(&f, "Reply-To"))
			reply_to = true;
	}
	one = nfrom == 1 && parsed && list.nmbox == 1;
	if (one && rewrite_addr_is(list.first.addr, list.first.addrlen,
	    pa->account))
		rc = REWRITE_UNCHANGED;
	else
		rc = rewrite_emit(hdr, len, pa, one ? &list.first : NULL,
		    nfrom == 1 && parsed && list.all_domains && !reply_to ?
		    v : NULL, vlen, out);
	free(v);
	return rc;
}
