/*
 * smtp.c - the pure part of SMTP: verbs, HELO/MAIL/RCPT arguments,
 * mailbox syntax (RFC 5321 4.1.2), DATA decoding and dot-stuffing.
 *
 * Every function is total: any byte sequence gives a defined result and
 * nothing is written past a caller's buffer, because lengths are checked
 * before anything is copied.  Character classes are plain ASCII tests,
 * never <ctype.h>, so the locale cannot change what we accept.  No I/O,
 * no allocation, no event loop: the session turns results into replies.
 */
#include "config.h"

#include "smtp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <string.h>

#include "util.h"

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} smtp_verbs[] = {
	{ "HELO",	SMTP_VERB_HELO },
	{ "EHLO",	SMTP_VERB_EHLO },
	{ "MAIL",	SMTP_VERB_MAIL },
	{ "RCPT",	SMTP_VERB_RCPT },
	{ "DATA",	SMTP_VERB_DATA },
	{ "RSET",	SMTP_VERB_RSET },
	{ "NOOP",	SMTP_VERB_NOOP },
	{ "QUIT",	SMTP_VERB_QUIT },
	{ "VRFY",	SMTP_VERB_VRFY },
	{ "HELP",	SMTP_VERB_HELP },
	{ "STARTTLS",	SMTP_VERB_STARTTLS },
	{ "AUTH",	SMTP_VERB_AUTH },
};

static bool
smtp_is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static const char *
smtp_skip_ws(const char *p)
{
	while (smtp_is_ws((unsigned char)*p))
		p++;
	return p;
}

static bool
smtp_is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
smtp_is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    smtp_is_digit(c);
}

/* RFC 5322 3.2.3 atext. */
static bool
smtp_is_atext(unsigned char c)
{
	return smtp_is_alnum(c) ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 4.1.2 qtextSMTP: %d32-33 / %d35-91 / %d93-126. */
static bool
smtp_is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

static unsigned char
smtp_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* ASCII-only case-insensitive comparison of <n> bytes; <s> may be
 * shorter than <n> (its NUL then mismatches). */
static bool
smtp_ci_eq(const char *s, const char *t, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (smtp_lower((unsigned char)s[i]) !=
		    smtp_lower((unsigned char)t[i]))
			return false;
		if (s[i] == '\0')
			return false;
	}
	return true;
}

static bool
smtp_ci_prefix(const char *s, const char *prefix)
{
	return smtp_ci_eq(s, prefix, strlen(prefix));
}

enum smtp_verb
smtp_parse_verb(const char *line, const char **args)
{
	size_t	i, n;

	for (i = 0; i < nitems(smtp_verbs); i++) {
		n = strlen(smtp_verbs[i].name);
		if (!smtp_ci_eq(line, smtp_verbs[i].name, n))
			continue;
		/* "MAILFROM" is not MAIL.  HTAB is tolerated as SP. */
		if (line[n] != '\0' && !smtp_is_ws((unsigned char)line[n]))
			continue;
		if (args != NULL)
			*args = smtp_skip_ws(line + n);
		return smtp_verbs[i].verb;
	}
	if (args != NULL)
		*args = line + strlen(line);
	return SMTP_VERB_UNKNOWN;
}

bool
smtp_line_is_clean(const char *line, size_t len)
{
	size_t		i;
	unsigned char	c;

	for (i = 0; i < len; i++) {
		c = (unsigned char)line[i];
		if (c != '\t' && (c < 0x20 || c > 0x7e))
			return false;
	}
	return true;
}

enum smtp_rc
smtp_parse_helo(const char *args, char *out, size_t outsz)
{
	const char	*p, *end;
	size_t		 len;

	if (outsz > 0)
		out[0] = '\0';
	p = smtp_skip_ws(args);
	for (end = p; (unsigned char)*end > 0x20 &&
	    (unsigned char)*end < 0x7f; end++)
		;
	len = (size_t)(end - p);
	if (len == 0 || len > SMTP_DOMAIN_MAX || len >= outsz)
		return SMTP_ESYNTAX;
	/* Only trailing blanks may follow the one word. */
	if (*smtp_skip_ws(end) != '\0')
		return SMTP_ESYNTAX;
	memcpy(out, p, len);
	out[len] = '\0';
	return SMTP_OK;
}

/*
 * Mailbox syntax, RFC 5321 4.1.2.
 */

/* Length of the Local-part at the start of <s> (Dot-string or
 * Quoted-string), or 0 when there is none.  Stops before the '@'. */
static size_t
smtp_local_len(const char *s)
{
	size_t	i = 0;

	if (s[0] == '"') {
		for (i = 1; s[i] != '"'; i++) {
			if (s[i] == '\\') {
				/* quoted-pairSMTP: backslash, then %d32-126 */
				if ((unsigned char)s[i + 1] < 32 ||
				    (unsigned char)s[i + 1] > 126)
					return 0;
				i++;
			} else if (!smtp_is_qtext((unsigned char)s[i]))
				return 0;	/* also the NUL: unclosed */
		}
		return i + 1;
	}
	/* Dot-string = Atom *("." Atom): no leading, trailing or double
	 * dot, since every dot must be followed by an atom. */
	for (;;) {
		if (!smtp_is_atext((unsigned char)s[i]))
			return 0;
		while (smtp_is_atext((unsigned char)s[i]))
			i++;
		if (s[i] != '.')
			return i;
		i++;
	}
}

/* Domain = sub-domain *("." sub-domain), sub-domain = Let-dig
 * [Ldh-str]: LDH labels of 1..63 octets not starting or ending with a
 * hyphen.  <s> need not be NUL-terminated at <len>. */
static bool
smtp_domain_is_valid(const char *s, size_t len)
{
	size_t	i = 0, start;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	for (;;) {
		start = i;
		while (i < len && (smtp_is_alnum((unsigned char)s[i]) ||
		    s[i] == '-'))
			i++;
		if (i == start || i - start > 63 || s[start] == '-' ||
		    s[i - 1] == '-')
			return false;
		if (i == len)
			return true;
		/* An empty label after the dot (a trailing dot) fails on
		 * the next pass. */
		if (s[i] != '.')
			return false;
		i++;
	}
}

/* IPv4-address-literal = Snum 3("." Snum), Snum = 1*3DIGIT of value
 * 0..255 (leading zeros are allowed by the grammar). */
static bool
smtp_ipv4_is_valid(const char *s, size_t len)
{
	size_t		i = 0, digits;
	unsigned int	parts = 0, n;

	for (;;) {
		for (n = 0, digits = 0; i < len && digits < 4 &&
		    smtp_is_digit((unsigned char)s[i]); i++, digits++)
			n = n * 10 + (unsigned int)(s[i] - '0');
		if (digits == 0 || digits > 3 || n > 255)
			return false;
		parts++;
		if (i == len)
			return parts == 4;
		if (s[i] != '.' || parts == 4)
			return false;
		i++;
	}
}

/* address-literal: "[" IPv4 "]" or "[IPv6:" IPv6 "]".  General
 * (tagged) literals are not supported.  <s>/<len> includes brackets. */
static bool
smtp_literal_is_valid(const char *s, size_t len)
{
	char		buf[INET6_ADDRSTRLEN];
	struct in6_addr	a6;
	const char	*in;
	size_t		inlen;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return false;
	in = s + 1;
	inlen = len - 2;
	if (inlen > 5 && smtp_ci_eq(in, "IPv6:", 5)) {
		if (inlen - 5 >= sizeof(buf))
			return false;
		memcpy(buf, in + 5, inlen - 5);
		buf[inlen - 5] = '\0';
		return inet_pton(AF_INET6, buf, &a6) == 1;
	}
	return smtp_ipv4_is_valid(in, inlen);
}

bool
smtp_mailbox_is_valid(const char *mailbox)
{
	size_t		 llen, dlen;
	const char	*dom;

	llen = smtp_local_len(mailbox);
	if (llen == 0 || llen > SMTP_LOCAL_MAX || mailbox[llen] != '@')
		return false;
	dom = mailbox + llen + 1;
	dlen = strlen(dom);
	if (dlen == 0 || dlen > SMTP_DOMAIN_MAX)
		return false;
	if (dom[0] == '[')
		return smtp_literal_is_valid(dom, dlen);
	return smtp_domain_is_valid(dom, dlen);
}

bool
smtp_local_is_valid(const char *local)
{
	size_t	llen = smtp_local_len(local);

	return llen > 0 && llen <= SMTP_LOCAL_MAX && local[llen] == '\0';
}

/*
 * Paths and parameters, RFC 5321 4.1.1.2-3 and 4.1.2.
 */

/* Finds the '>' closing the path that starts at <p> (a '<'), skipping
 * quoted strings so that <"a>b"@x> is not cut short.  Returns NULL when
 * the path is never closed. */
static const char *
smtp_path_end(const char *p)
{
	bool	quoted = false;

	for (p++; *p != '\0'; p++) {
		if (quoted && *p == '\\') {
			if (p[1] == '\0')
				return NULL;
			p++;
		} else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '>')
			return p;
	}
	return NULL;
}

/* Skips a source route (A-d-l ":", e.g. "@a.example,@b.example:"),
 * RFC 5321 4.1.2.  Each At-domain must be a valid Domain.  Returns the
 * mailbox after the route, <s> itself when there is no route, or NULL
 * when the route is malformed. */
static const char *
smtp_skip_route(const char *s)
{
	const char	*colon, *p, *q;

	if (s[0] != '@')
		return s;
	if ((colon = strchr(s, ':')) == NULL)
		return NULL;
	for (p = s;; p = q + 1) {
		if (*p != '@')
			return NULL;
		q = memchr(p, ',', (size_t)(colon - p));
		if (q == NULL)
			q = colon;
		if (!smtp_domain_is_valid(p + 1, (size_t)(q - p - 1)))
			return NULL;
		if (q == colon)
			return colon + 1;
	}
}

/* The end of a path given without angle brackets: the first blank (or
 * the end) outside a quoted string, so that "a b"@x stays one word. */
static const char *
smtp_word_end(const char *p)
{
	bool	quoted = false;

	for (; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && smtp_is_ws((unsigned char)*p))
			break;
	}
	return p;
}

/*
 * Parses the path at <*pp> into <out> (SMTP_ADDR_BUFSZ bytes), "" for
 * "<>", and advances <*pp> past it.  RFC 5321 wants "<path>"; old
 * devices send the bare address, which Postfix accepts too
 * (strict_rfc821_envelopes = no): then the path is the word up to the
 * first blank, and may hold no angle bracket at all.  The mailbox may
 * lack its domain (a local part alone: "<scanner>", "<postmaster>", RFC
 * 5321 4.5.1); the caller qualifies it.  What is dangerous stays out:
 * nested or unbalanced brackets, control bytes, over-long paths.
 */
static enum smtp_rc
smtp_parse_path(const char **pp, char *out)
{
	char		 inner[SMTP_ADDR_BUFSZ];
	const char	*p = *pp, *end, *mbox;
	size_t		 len;

	out[0] = '\0';
	if (*p == '<') {
		if ((end = smtp_path_end(p)) == NULL)
			return SMTP_ESYNTAX;
		*pp = end + 1;
		p++;
	} else {
		end = smtp_word_end(p);
		if (end == p || memchr(p, '<', (size_t)(end - p)) != NULL ||
		    memchr(p, '>', (size_t)(end - p)) != NULL)
			return SMTP_ESYNTAX;
		*pp = end;
		/* A second path after it is no parameter. */
		if (*smtp_skip_ws(end) == '<')
			return SMTP_ESYNTAX;
	}
	/* The limit counts the brackets, whether sent or not. */
	len = (size_t)(end - p);
	if (len + 2 > SMTP_PATH_MAX)
		return SMTP_EADDR;
	memcpy(inner, p, len);
	inner[len] = '\0';
	if (inner[0] == '\0')		/* "<>": a bare word is never empty */
		return SMTP_OK;
	if ((mbox = smtp_skip_route(inner)) == NULL ||
	    (!smtp_mailbox_is_valid(mbox) && !smtp_local_is_valid(mbox)))
		return SMTP_EADDR;
	/* Fits: mbox is a suffix of inner, which is shorter than out. */
	memcpy(out, mbox, strlen(mbox) + 1);
	return SMTP_OK;
}

/* RFC 1870: SIZE=1*20DIGIT.  Bad digits are syntax errors; a declared
 * size over the limit is SMTP_ETOOBIG, including 20-digit values past
 * uint64 (they are valid syntax, just very large). */
static enum smtp_rc
smtp_param_size(const char *v, size_t vlen, uint64_t max_size,
    uint64_t *size)
{
	uint64_t	n = 0, d;
	size_t		i;

	if (v == NULL || vlen == 0 || vlen > 20)
		return SMTP_ESYNTAX;
	for (i = 0; i < vlen; i++) {
		if (!smtp_is_digit((unsigned char)v[i]))
			return SMTP_ESYNTAX;
		d = (uint64_t)(v[i] - '0');
		n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
	}
	*size = n;
	return n > max_size ? SMTP_ETOOBIG : SMTP_OK;
}

/* RFC 6152: BODY=7BIT or BODY=8BITMIME.  BINARYMIME (RFC 3030) is not
 * advertised, so it is a bad parameter like any other value. */
static enum smtp_rc
smtp_param_body(const char *v, size_t vlen, enum smtp_body *body)
{
	if (v != NULL && vlen == 4 && smtp_ci_eq(v, "7BIT", 4))
		*body = SMTP_BODY_7BIT;
	else if (v != NULL && vlen == 8 && smtp_ci_eq(v, "8BITMIME", 8))
		*body = SMTP_BODY_8BITMIME;
	else
		return SMTP_EPARAM;
	return SMTP_OK;
}

/* RFC 4954 5: AUTH=xtext (RFC 3461), or AUTH=<>.  Clients that logged
 * in send it; the identity is not passed on, so any well-formed value
 * is accepted and ignored, as a relay that does not trust it would. */
static enum smtp_rc
smtp_param_auth(const char *v, size_t vlen)
{
	size_t	i;

	if (v == NULL || vlen == 0 || vlen > SMTP_ADDR_BUFSZ)
		return SMTP_ESYNTAX;
	if (vlen == 2 && v[0] == '<' && v[1] == '>')
		return SMTP_OK;
	for (i = 0; i < vlen; i++) {
		if (v[i] == '+') {
			if (i + 2 >= vlen || !isxdigit((unsigned char)v[i + 1])
			    || !isxdigit((unsigned char)v[i + 2]))
				return SMTP_ESYNTAX;
			i += 2;
		} else if (v[i] < 33 || v[i] > 126 || v[i] == '=')
			return SMTP_ESYNTAX;
	}
	return SMTP_OK;
}

/* Mail-parameters: space-separated "keyword[=value]" after the path,
 * checked left to right; the first failing one decides the result. */
static enum smtp_rc
smtp_mail_params(const char *p, uint64_t max_size, struct smtp_mail *out)
{
	const char	*eq, *v;
	size_t		 len, klen, vlen;
	bool		 seen_size = false, seen_body = false;
	bool		 seen_auth = false;
	enum smtp_rc	 rc;

	for (;;) {
		p = smtp_skip_ws(p);
		if (*p == '\0')
			return SMTP_OK;
		for (len = 0; p[len] != '\0' &&
		    !smtp_is_ws((unsigned char)p[len]); len++)
			;
		eq = memchr(p, '=', len);
		klen = eq != NULL ? (size_t)(eq - p) : len;
		v = eq != NULL ? eq + 1 : NULL;
		vlen = eq != NULL ? len - klen - 1 : 0;
		if (klen == 4 && smtp_ci_eq(p, "SIZE", 4)) {
			rc = seen_size ? SMTP_ESYNTAX :
			    smtp_param_size(v, vlen, max_size, &out->size);
			seen_size = true;
		} else if (klen == 4 && smtp_ci_eq(p, "BODY", 4)) {
			rc = seen_body ? SMTP_ESYNTAX :
			    smtp_param_body(v, vlen, &out->body);
			seen_body = true;
		} else if (klen == 4 && smtp_ci_eq(p, "AUTH", 4)) {
			rc = seen_auth ? SMTP_ESYNTAX : smtp_param_auth(v, vlen);
			seen_auth = true;
		} else
			rc = SMTP_EPARAM;	/* SMTPUTF8, RET=, ENVID=... */
		if (rc != SMTP_OK)
			return rc;
		p += len;
	}
}

enum smtp_rc
smtp_parse_mail(const char *args, uint64_t max_size, struct smtp_mail *out)
{
	const char	*p = args;
	enum smtp_rc	 rc;

	memset(out, 0, sizeof(*out));
	if (!smtp_ci_prefix(p, "FROM:"))
		return SMTP_ESYNTAX;
	/* Postfix-style tolerance of "FROM: <a@b>". */
	p = smtp_skip_ws(p + 5);
	if ((rc = smtp_parse_path(&p, out->path)) != SMTP_OK)
		return rc;
	if (*p != '\0' && !smtp_is_ws((unsigned char)*p))
		rc = SMTP_ESYNTAX;	/* "<a@b>garbage" */
	else
		rc = smtp_mail_params(p, max_size, out);
	if (rc != SMTP_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

enum smtp_rc
smtp_parse_rcpt(const char *args, struct smtp_rcpt *out)
{
	const char	*p = args;
	enum smtp_rc	 rc;

	memset(out, 0, sizeof(*out));
	if (!smtp_ci_prefix(p, "TO:"))
		return SMTP_ESYNTAX;
	p = smtp_skip_ws(p + 3);
	if ((rc = smtp_parse_path(&p, out->path)) != SMTP_OK)
		return rc;
	if (out->path[0] == '\0')
		rc = SMTP_EADDR;	/* "<>" is never a recipient */
	else if (*p != '\0' && !smtp_is_ws((unsigned char)*p))
		rc = SMTP_ESYNTAX;
	else if (*smtp_skip_ws(p) != '\0')
		rc = SMTP_EPARAM;	/* we support no RCPT parameters */
	if (rc != SMTP_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

/*
 * DATA decoding.  Only a "." line that both follows and ends with CRLF
 * ends the message (RFC 5321 4.1.1.4): treating a bare-LF variant as
 * the end here while the upstream does not (or the reverse) is what
 * SMTP smuggling exploits.  Every other line is content, whatever its
 * length and octets: a bare CR or a NUL is kept, and the relay
 * re-encodes what does not conform (issue 13).
 */

void
smtp_data_init(struct smtp_data *d, uint64_t max_size, bool reject_bare_lf,
    uint64_t initial_size)
{
	memset(d, 0, sizeof(*d));
	d->max_size = max_size;
	d->framed = true;
	d->reject_bare_lf = reject_bare_lf;
	d->prev_crlf = true;		/* the DATA command ended in CRLF */
	d->in_headers = true;
	d->hops = 0;
	d->size = initial_size;
	d->err = SMTP_DATA_OK;
}

void
smtp_data_init_plain(struct smtp_data *d, uint64_t max_size,
    uint64_t initial_size)
{
	smtp_data_init(d, max_size, false, initial_size);
	d->framed = false;
}

/* Records <err> unless an earlier violation is already recorded. */
static void
smtp_data_fail(struct smtp_data *d, enum smtp_data_err err)
{
	if (d->err == SMTP_DATA_OK)
		d->err = err;
}

/* Counts Received: headers (RFC 5321 6.3 loop detection) in the header
 * section, which ends at the first empty line.  <p>/<n> is canonical
 * content of the current line; <end> says the line ends with it. */
static void
smtp_data_header(struct smtp_data *d, const char *p, size_t n, bool end)
{
	size_t	k;

	if (!d->in_headers)
		return;
	if (d->linelen < SMTP_DATA_HEAD) {
		k = SMTP_DATA_HEAD - (size_t)d->linelen;
		memcpy(d->head + d->linelen, p, n < k ? n : k);
	}
	d->linelen += n;
	if (!end)
		return;
	if (d->linelen == 0)
		d->in_headers = false;
	else if (d->linelen >= SMTP_DATA_HEAD &&
	    smtp_ci_eq(d->head, "Received:", SMTP_DATA_HEAD)) {
		if (d->hops < SMTP_HOPS_MAX)
			d->hops++;
		if (d->hops >= SMTP_HOPS_MAX)
			smtp_data_fail(d, SMTP_DATA_ELOOP);
	}
	d->linelen = 0;
}

/* A line or a piece of one; <end>: the line ends here, with <crlf>. */
static void
smtp_data_chunk(struct smtp_data *d, const char *p, size_t len, bool end,
    bool crlf, const char **out, size_t *outlen)
{
	uint64_t	add;

	/* RFC 5321 4.5.2: drop one leading dot of every content line. */
	if (d->framed && !d->midline && len > 0 && p[0] == '.') {
		p++;
		len--;
	}
	if (end && !crlf && d->reject_bare_lf)
		smtp_data_fail(d, SMTP_DATA_EBARELF);
	/* Canonical octets: the unstuffed content plus CRLF.  Saturate
	 * rather than wrap, however long the client keeps sending. */
	add = (uint64_t)len + (end ? 2 : 0);
	d->size = d->size > UINT64_MAX - add ? UINT64_MAX : d->size + add;
	if (d->size > d->max_size)
		smtp_data_fail(d, SMTP_DATA_ESIZE);
	smtp_data_header(d, p, len, end);
	d->midline = !end;
	if (end)
		d->prev_crlf = crlf;
	*out = p;
	*outlen = len;
}

enum smtp_data_rc
smtp_data_line(struct smtp_data *d, const char *line, size_t len, bool crlf,
    const char **out, size_t *outlen)
{
	*out = line;
	*outlen = 0;
	/* A lone "." after a CRLF is the end; the last piece of a longer
	 * line never is. */
	if (d->framed && !d->midline && d->prev_crlf && crlf && len == 1 &&
	    line[0] == '.')
		return SMTP_DATA_END;
	smtp_data_chunk(d, line, len, true, crlf, out, outlen);
	return SMTP_DATA_LINE;
}

void
smtp_data_piece(struct smtp_data *d, const char *piece, size_t len,
    const char **out, size_t *outlen)
{
	smtp_data_chunk(d, piece, len, false, false, out, outlen);
}

const char *
smtp_data_err_reply(enum smtp_data_err err)
{
	switch (err) {
	case SMTP_DATA_ESIZE:
		return "552 5.3.4 Message size exceeds fixed maximum "
		    "message size";
	case SMTP_DATA_EBARELF:
		return "554 5.6.0 Message contains a bare LF (line ends "
		    "must be CRLF)";
	case SMTP_DATA_ELOOP:
		return "554 5.4.6 Too many Received: headers: mail loop";
	case SMTP_DATA_OK:
		break;
	}
	/* Not a violation: a caller bug.  A temporary failure loses
	 * nothing: the client keeps the message and retries. */
	return "451 4.3.0 Internal error";
}

bool
smtp_line_needs_stuffing(const char *line, size_t len)
{
	return len > 0 && line[0] == '.';
}
