/*
 * addrlist.c - RFC 5322 3.4 address lists (see addrlist.h).
 *
 * A small tokenizer (atoms, quoted strings, domain literals, specials;
 * white space and nested comments skipped, the last comment kept) feeds
 * a loop over list elements.  Each element is a mailbox, an empty
 * element, or the name of a group; a group ends at ';'.  Nothing
 * recurses and nothing reads past the value.
 */
#include "config.h"

#include "addrlist.h"

#include <string.h>

enum addrlist_tokt {
	ADDRLIST_T_END,
	ADDRLIST_T_ATOM,		/* atext and '.', 8-bit included */
	ADDRLIST_T_QSTR,		/* with its quotes */
	ADDRLIST_T_DLIT,		/* [domain literal] */
	ADDRLIST_T_SPECIAL,		/* one of < > @ , ; : */
	ADDRLIST_T_BAD,
};

struct addrlist_tok {
	enum addrlist_tokt	 type;
	const char		*p;
	size_t			 len;
	bool			 spaced;	/* CFWS before it */
};

struct addrlist_lex {
	const char	*p, *end;
	const char	*cmt;		/* content of the last comment */
	size_t		 cmtlen;
};

/* What one list element turned out to be. */
enum addrlist_elt {
	ADDRLIST_E_MBOX,
	ADDRLIST_E_EMPTY,
	ADDRLIST_E_GROUP,		/* a group's name and its ':' */
	ADDRLIST_E_BAD,
};

/* White space, and the CR and LF of a value that was not unfolded. */
static bool
addrlist_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 5322 3.2.3 atext, plus '.' (obs-phrase) and 8-bit (RFC 6532). */
static bool
addrlist_is_atext(unsigned char c)
{
	return c >= 0x80 || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

/* Skips the comment at l->p, nested comments and quoted pairs
 * included, and remembers its content.  False if it does not end. */
static bool
addrlist_skip_comment(struct addrlist_lex *l)
{
	const char	*start = l->p + 1;
	size_t		 depth = 0;

	for (; l->p < l->end; l->p++) {
		if (*l->p == '\\') {
			if (++l->p == l->end)
				return false;
		} else if (*l->p == '(')
			depth++;
		else if (*l->p == ')' && --depth == 0) {
			l->cmt = start;
			l->cmtlen = (size_t)(l->p - start);
			l->p++;
			return true;
		}
	}
	return false;
}

/* Scans a quoted string or domain literal ending with <close>. */
static enum addrlist_tokt
addrlist_lex_quoted(struct addrlist_lex *l, char close, enum addrlist_tokt t)
{
	for (l->p++; l->p < l->end; l->p++) {
		if (*l->p == '\\') {
			if (++l->p == l->end)
				return ADDRLIST_T_BAD;
		} else if (*l->p == close) {
			l->p++;
			return t;
		} else if (close == ']' && *l->p == '[')
			return ADDRLIST_T_BAD;
	}
	return ADDRLIST_T_BAD;
}

static void
addrlist_lex_next(struct addrlist_lex *l, struct addrlist_tok *t)
{
	unsigned char	c;

	t->spaced = false;
	for (;;) {
		while (l->p < l->end && addrlist_is_wsp((unsigned char)*l->p)) {
			l->p++;
			t->spaced = true;
		}
		if (l->p == l->end || *l->p != '(')
			break;
		t->spaced = true;
		if (!addrlist_skip_comment(l)) {
			t->type = ADDRLIST_T_BAD;
			t->p = l->p;
			t->len = 0;
			return;
		}
	}
	t->p = l->p;
	if (l->p == l->end) {
		t->type = ADDRLIST_T_END;
		t->len = 0;
		return;
	}
	c = (unsigned char)*l->p;
	if (c == '"')
		t->type = addrlist_lex_quoted(l, '"', ADDRLIST_T_QSTR);
	else if (c == '[')
		t->type = addrlist_lex_quoted(l, ']', ADDRLIST_T_DLIT);
	else if (addrlist_is_atext(c)) {
		while (l->p < l->end && addrlist_is_atext((unsigned char)*l->p))
			l->p++;
		t->type = ADDRLIST_T_ATOM;
	} else if (strchr("<>@,;:", c) != NULL) {
		l->p++;
		t->type = ADDRLIST_T_SPECIAL;
	} else
		t->type = ADDRLIST_T_BAD;
	t->len = (size_t)(l->p - t->p);
}

static bool
addrlist_tok_is(const struct addrlist_tok *t, char special)
{
	return t->type == ADDRLIST_T_SPECIAL && *t->p == special;
}

/* Trims white space at both ends of <*a>..<*z>. */
static void
addrlist_trim(const char **a, const char **z)
{
	while (*z > *a && addrlist_is_wsp((unsigned char)(*z)[-1]))
		(*z)--;
	while (*a < *z && addrlist_is_wsp((unsigned char)**a))
		(*a)++;
}

/* The angle-addr after '<': the address up to '>', trimmed, without
 * an obsolete source route (RFC 5322 4.4 obs-route). */
static bool
addrlist_angle(struct addrlist_lex *l, struct addrlist_mbox *mb)
{
	struct addrlist_tok	 t;
	const char		*a = l->p, *z, *colon;

	do {
		addrlist_lex_next(l, &t);
		if (t.type == ADDRLIST_T_END || t.type == ADDRLIST_T_BAD ||
		    addrlist_tok_is(&t, '<') || addrlist_tok_is(&t, ';'))
			return false;
	} while (!addrlist_tok_is(&t, '>'));
	z = t.p;
	addrlist_trim(&a, &z);
	if (a < z && *a == '@') {
		if ((colon = memchr(a, ':', (size_t)(z - a))) == NULL)
			return false;
		a = colon + 1;
		addrlist_trim(&a, &z);
	}
	mb->addr = a;
	mb->addrlen = (size_t)(z - a);
	return true;
}

/* The addr-spec form, one token at a time: 0 expects the local part,
 * 1 an '@' (or the end), 2 the domain, 3 the end; 4 is not an addr-spec
 * (though it may still be a phrase before '<'). */
static unsigned int
addrlist_addr_step(unsigned int form, const struct addrlist_tok *t)
{
	switch (form) {
	case 0:
		return t->type == ADDRLIST_T_ATOM ||
		    t->type == ADDRLIST_T_QSTR ? 1 : 4;
	case 1:
		return addrlist_tok_is(t, '@') ? 2 : 4;
	case 2:
		return t->type == ADDRLIST_T_ATOM ||
		    t->type == ADDRLIST_T_DLIT ? 3 : 4;
	default:
		return 4;
	}
}

/* One element of the list; <*term> gets the token that ended it (',',
 * ';' or the end; after a mailbox in <>, the token after the '>'). */
static enum addrlist_elt
addrlist_element(struct addrlist_lex *l, bool in_group,
    struct addrlist_mbox *mb, struct addrlist_tok *term)
{
	struct addrlist_tok	 t;
	const char		*start = NULL, *last = NULL;
	unsigned int		 form = 0;

	memset(mb, 0, sizeof(*mb));
	l->cmt = NULL;
	for (;;) {
		addrlist_lex_next(l, &t);
		if (t.type == ADDRLIST_T_BAD || addrlist_tok_is(&t, '>'))
			return ADDRLIST_E_BAD;
		if (addrlist_tok_is(&t, ':'))
			return in_group || start == NULL ? ADDRLIST_E_BAD :
			    ADDRLIST_E_GROUP;
		if (addrlist_tok_is(&t, '<')) {
			mb->phrase = start;
			mb->phraselen = start != NULL ?
			    (size_t)(last - start) : 0;
			if (!addrlist_angle(l, mb))
				return ADDRLIST_E_BAD;
			addrlist_lex_next(l, term);
			return ADDRLIST_E_MBOX;
		}
		if (t.type == ADDRLIST_T_END || addrlist_tok_is(&t, ',') ||
		    addrlist_tok_is(&t, ';'))
			break;
		if (start == NULL)
			start = t.p;
		last = t.p + t.len;
		form = addrlist_addr_step(form, &t);
	}
	*term = t;
	if (start == NULL)
		return ADDRLIST_E_EMPTY;
	if (form != 1 && form != 3)
		return ADDRLIST_E_BAD;
	mb->addr = start;
	mb->addrlen = (size_t)(last - start);
	mb->cmt = l->cmt;
	mb->cmtlen = l->cmtlen;
	return ADDRLIST_E_MBOX;
}

/* Records the element that failed, from <start> to where it failed. */
static int
addrlist_bad(struct addrlist_info *info, const char *start,
    const struct addrlist_lex *l)
{
	const char	*z = l->p;

	addrlist_trim(&start, &z);
	info->bad = start;
	info->badlen = (size_t)(z - start);
	return -1;
}

int
addrlist_parse(const char *v, size_t n, addrlist_cb cb, void *arg,
    struct addrlist_info *info)
{
	struct addrlist_lex	 l = { v, v + n, NULL, 0 };
	struct addrlist_mbox	 mb;
	struct addrlist_tok	 term;
	enum addrlist_elt	 e;
	const char		*start;
	bool			 in_group = false;

	memset(info, 0, sizeof(*info));
	for (;;) {
		start = l.p;
		e = addrlist_element(&l, in_group, &mb, &term);
		if (e == ADDRLIST_E_BAD)
			return addrlist_bad(info, start, &l);
		if (e == ADDRLIST_E_GROUP) {
			in_group = true;
			info->ngroups++;
			continue;
		}
		/* After a mailbox in <>: the end of the element. */
		if (term.type != ADDRLIST_T_END && !addrlist_tok_is(&term,
		    ',') && !(in_group && addrlist_tok_is(&term, ';')))
			return addrlist_bad(info, start, &l);
		if (e == ADDRLIST_E_EMPTY && !addrlist_tok_is(&term, ';'))
			info->nempty++;
		if (e == ADDRLIST_E_MBOX) {
			mb.in_group = in_group;
			info->nmbox++;
			if (cb != NULL && cb(arg, &mb) == -1)
				return -1;
		}
		if (addrlist_tok_is(&term, ';')) {
			/* The group ends; the list goes on after a ',' or,
			 * as Postfix reads it, without one. */
			in_group = false;
			start = l.p;
			addrlist_lex_next(&l, &term);
			if (term.type != ADDRLIST_T_END &&
			    !addrlist_tok_is(&term, ','))
				l.p = start;
		}
		if (term.type == ADDRLIST_T_END)
			return 0;
	}
}

int
addrlist_addr_copy(const struct addrlist_mbox *mb, char *out, size_t outsz)
{
	struct addrlist_lex	 l = { mb->addr, mb->addr + mb->addrlen,
				    NULL, 0 };
	struct addrlist_tok	 t;
	size_t			 n = 0, len;

	for (;;) {
		addrlist_lex_next(&l, &t);
		if (t.type == ADDRLIST_T_END)
			break;
		/* What does not lex goes as it is, for the caller's check
		 * of the address to refuse. */
		len = t.type == ADDRLIST_T_BAD ? (size_t)(l.end - t.p) :
		    t.len;
		if (n + len >= outsz)
			return -1;
		memcpy(out + n, t.p, len);
		n += len;
		if (t.type == ADDRLIST_T_BAD)
			break;
	}
	if (outsz == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

bool
addrlist_phrase_word(const char **p, const char *end, struct addrlist_word *w)
{
	struct addrlist_lex	l = { *p, end, NULL, 0 };
	struct addrlist_tok	t;

	addrlist_lex_next(&l, &t);
	*p = l.p;
	if (t.type == ADDRLIST_T_END || t.type == ADDRLIST_T_BAD)
		return false;
	w->quoted = t.type == ADDRLIST_T_QSTR;
	w->p = w->quoted ? t.p + 1 : t.p;
	w->len = w->quoted ? t.len - 2 : t.len;
	w->spaced = t.spaced;
	return true;
}
