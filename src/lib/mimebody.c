/*
 * mimebody.c - streaming quoted-printable and base64 encoders (see
 * mimebody.h).
 *
 * Output is gathered one line at a time in b->line and handed to the
 * callback at each CRLF, so b->len is also the current column.  QP
 * holds back one white space octet (it must be =20 or =09 when a line
 * break follows, RFC 2045 6.7 (3)); QP_FIX holds back a whole run of
 * white space, because in the body it repairs, trailing white space is
 * deleted by decoders and must stay trailing, literal, to keep that
 * meaning.  A '.' or '-' that would start a line is written =2E / =2D:
 * decoders give the same octet, and no line can then be "." or a
 * boundary delimiter.
 */
#include "config.h"

#include "mimebody.h"

#include <string.h>

#include "log.h"

enum mimebody_qpst {
	MIMEBODY_ST_TEXT,		/* ordinary content */
	MIMEBODY_ST_EQ,			/* after '=' */
	MIMEBODY_ST_EQH,		/* after '=' and a hex digit */
	MIMEBODY_ST_EQW,		/* after '=' and white space */
};

static const char mimebody_hex[] = "0123456789ABCDEF";
static const char mimebody_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool
mimebody_is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static bool
mimebody_is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
	    (c >= 'a' && c <= 'f');
}

static bool
mimebody_is_b64(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static void
mimebody_add(struct mimebody *b, const char *s, size_t n)
{
	if (b->len + n > sizeof(b->line))
		fatalx("mimebody: line overflow");
	memcpy(b->line + b->len, s, n);
	b->len += n;
}

/* Ends the current output line with <eol> and hands it out. */
static void
mimebody_endline(struct mimebody *b, const char *eol)
{
	mimebody_add(b, eol, strlen(eol));
	b->out.cb(b->out.arg, b->line, b->len);
	b->len = 0;
}

void
mimebody_init(struct mimebody *b, enum mimebody_mode mode,
    const struct mimebody_out *out)
{
	/* The buffers need no clearing: a body this size starts often. */
	b->mode = mode;
	b->out = *out;
	b->any = b->failed = b->pad = false;
	b->st = MIMEBODY_ST_TEXT;
	b->wsp = -1;
	b->hex = 0;
	memset(b->q, 0, sizeof(b->q));
	b->qlen = b->wlen = b->len = 0;
}

/*
 * Quoted-printable.
 */

/* May <c> stand for itself at the current column?  White space is
 * only passed here when no line break follows it. */
static bool
mimebody_qp_is_lit(const struct mimebody *b, unsigned char c)
{
	if (mimebody_is_wsp(c))
		return true;
	if (c < 33 || c > 126 || c == '=')
		return false;
	return b->len > 0 || (c != '.' && c != '-');
}

/* Room for <w> more octets on the line, keeping one for a soft break's
 * '='; otherwise a soft line break first. */
static void
mimebody_qp_room(struct mimebody *b, size_t w)
{
	if (b->len + w > MIMEBODY_QP_LINE - 1)
		mimebody_endline(b, "=\r\n");
}

/* Writes octet <c>, literally where it may stand for itself unless
 * <enc>, else as =XX. */
static void
mimebody_qp_char(struct mimebody *b, unsigned char c, bool enc)
{
	char	e[3];

	mimebody_qp_room(b, !enc && mimebody_qp_is_lit(b, c) ? 1 : 3);
	if (!enc && mimebody_qp_is_lit(b, c)) {
		mimebody_add(b, (const char *)&c, 1);
		return;
	}
	e[0] = '=';
	e[1] = mimebody_hex[c >> 4];
	e[2] = mimebody_hex[c & 0xf];
	mimebody_add(b, e, 3);
}

/* Writes an escape of the original body as it was ("=3d" stays). */
static void
mimebody_qp_esc(struct mimebody *b, unsigned char h1, unsigned char h2)
{
	char	e[3] = { '=', (char)h1, (char)h2 };

	mimebody_qp_room(b, 3);
	mimebody_add(b, e, 3);
}

static void
mimebody_qp_put(struct mimebody *b, const unsigned char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (b->wsp >= 0)
			mimebody_qp_char(b, (unsigned char)b->wsp, false);
		b->wsp = -1;
		if (mimebody_is_wsp(p[i]))
			b->wsp = p[i];
		else
			mimebody_qp_char(b, p[i], false);
	}
}

/* White space held back turned out to be followed by more text. */
static void
mimebody_qpfix_release(struct mimebody *b)
{
	size_t	i;

	for (i = 0; i < b->wlen; i++)
		mimebody_qp_char(b, (unsigned char)b->w[i], false);
	b->wlen = 0;
}

/* White space held back ends a line: it stays literal and trailing,
 * so decoders delete it as they deleted it in the original. */
static void
mimebody_qpfix_trailing(struct mimebody *b)
{
	if (b->len > 0 && b->len + b->wlen > MIMEBODY_QP_LINE - 1)
		mimebody_endline(b, "=\r\n");
	mimebody_add(b, b->w, b->wlen);
	b->wlen = 0;
}

static void
mimebody_qpfix_hold(struct mimebody *b, unsigned char c)
{
	if (b->wlen == sizeof(b->w)) {
		b->failed = true;
		return;
	}
	b->w[b->wlen++] = (char)c;
}

/* One octet of a body that claims to be quoted-printable: what a
 * decoder makes of it (RFC 2045 6.7, with its note (2) for an '=' that
 * starts no escape) decides what is written. */
static void
mimebody_qpfix_byte(struct mimebody *b, unsigned char c)
{
	for (;;) {
		switch (b->st) {
		case MIMEBODY_ST_TEXT:
			if (mimebody_is_wsp(c)) {
				mimebody_qpfix_hold(b, c);
				return;
			}
			mimebody_qpfix_release(b);
			if (c == '=')
				b->st = MIMEBODY_ST_EQ;
			else
				mimebody_qp_char(b, c, false);
			return;
		case MIMEBODY_ST_EQ:
			if (mimebody_is_hex(c)) {
				b->hex = c;
				b->st = MIMEBODY_ST_EQH;
				return;
			}
			if (mimebody_is_wsp(c)) {
				mimebody_qpfix_hold(b, c);
				b->st = MIMEBODY_ST_EQW;
				return;
			}
			mimebody_qp_char(b, '=', true);
			b->st = MIMEBODY_ST_TEXT;
			continue;
		case MIMEBODY_ST_EQH:
			b->st = MIMEBODY_ST_TEXT;
			if (mimebody_is_hex(c)) {
				mimebody_qp_esc(b, b->hex, c);
				return;
			}
			mimebody_qp_char(b, '=', true);
			mimebody_qp_char(b, b->hex, false);
			continue;
		case MIMEBODY_ST_EQW:
			if (mimebody_is_wsp(c)) {
				mimebody_qpfix_hold(b, c);
				return;
			}
			mimebody_qp_char(b, '=', true);
			b->st = MIMEBODY_ST_TEXT;
			mimebody_qpfix_release(b);
			continue;
		}
		fatalx("mimebody: bad state %d", b->st);
	}
}

/* The end of an original line (<eol>) or of the content: "=" then
 * nothing or white space only is a soft line break at a line end, and
 * kept as it is at the end of the content, where the CRLF that follows
 * belongs to a boundary. */
static void
mimebody_qpfix_end(struct mimebody *b, bool eol)
{
	switch (b->st) {
	case MIMEBODY_ST_TEXT:
		if (b->wlen > 0)
			mimebody_qpfix_trailing(b);
		break;
	case MIMEBODY_ST_EQ:
		mimebody_add(b, "=", 1);
		break;
	case MIMEBODY_ST_EQH:
		mimebody_qp_char(b, '=', true);
		mimebody_qp_char(b, b->hex, false);
		break;
	case MIMEBODY_ST_EQW:
		if (eol) {
			b->wlen = 0;	/* transport padding */
			mimebody_add(b, "=", 1);
			break;
		}
		if (b->len > 0 && b->len + 1 + b->wlen > MIMEBODY_QP_LINE - 1)
			mimebody_endline(b, "=\r\n");
		mimebody_add(b, "=", 1);
		mimebody_add(b, b->w, b->wlen);
		b->wlen = 0;
		break;
	}
	b->st = MIMEBODY_ST_TEXT;
}

/*
 * Base64.
 */

static void
mimebody_b64_quantum(struct mimebody *b)
{
	unsigned char	*q = b->q;
	char		 e[4];

	if (b->len + 4 > MIMEBODY_QP_LINE)
		mimebody_endline(b, "\r\n");
	e[0] = mimebody_b64[q[0] >> 2];
	e[1] = mimebody_b64[(q[0] & 0x03) << 4 | q[1] >> 4];
	e[2] = b->qlen > 1 ? mimebody_b64[(q[1] & 0x0f) << 2 | q[2] >> 6] :
	    '=';
	e[3] = b->qlen > 2 ? mimebody_b64[q[2] & 0x3f] : '=';
	mimebody_add(b, e, 4);
	memset(b->q, 0, sizeof(b->q));
	b->qlen = 0;
}

static void
mimebody_b64_put(struct mimebody *b, const unsigned char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		b->q[b->qlen++] = p[i];
		if (b->qlen == 3)
			mimebody_b64_quantum(b);
	}
}

/* The alphabet and '=' in order, 76 to a line, and a line break after
 * padding, so that a decoder that works line by line still finds each
 * run of padding at a line end. */
static void
mimebody_b64fix_put(struct mimebody *b, const unsigned char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (p[i] != '=' && !mimebody_is_b64(p[i]))
			continue;
		if (b->len >= MIMEBODY_QP_LINE ||
		    (b->pad && p[i] != '=' && b->len > 0))
			mimebody_endline(b, "\r\n");
		b->pad = p[i] == '=';
		mimebody_add(b, (const char *)p + i, 1);
	}
}

void
mimebody_put(struct mimebody *b, const char *p, size_t n)
{
	const unsigned char	*u = (const unsigned char *)p;
	size_t			 i;

	if (n == 0)
		return;
	b->any = true;
	switch (b->mode) {
	case MIMEBODY_QP:
		mimebody_qp_put(b, u, n);
		break;
	case MIMEBODY_B64:
		mimebody_b64_put(b, u, n);
		break;
	case MIMEBODY_QP_FIX:
		for (i = 0; i < n; i++)
			mimebody_qpfix_byte(b, u[i]);
		break;
	case MIMEBODY_B64_FIX:
		mimebody_b64fix_put(b, u, n);
		break;
	}
}

void
mimebody_eol(struct mimebody *b)
{
	b->any = true;
	switch (b->mode) {
	case MIMEBODY_QP:
		if (b->wsp >= 0)
			mimebody_qp_char(b, (unsigned char)b->wsp, true);
		b->wsp = -1;
		mimebody_endline(b, "\r\n");
		break;
	case MIMEBODY_B64:
		mimebody_b64_put(b, (const unsigned char *)"\r\n", 2);
		break;
	case MIMEBODY_QP_FIX:
		mimebody_qpfix_end(b, true);
		mimebody_endline(b, "\r\n");
		break;
	case MIMEBODY_B64_FIX:
		break;
	}
}

int
mimebody_finish(struct mimebody *b, bool delim)
{
	switch (b->mode) {
	case MIMEBODY_QP:
		if (b->wsp >= 0)
			mimebody_qp_char(b, (unsigned char)b->wsp, true);
		b->wsp = -1;
		break;
	case MIMEBODY_QP_FIX:
		mimebody_qpfix_end(b, false);
		break;
	case MIMEBODY_B64:
		if (b->qlen > 0)
			mimebody_b64_quantum(b);
		break;
	case MIMEBODY_B64_FIX:
		break;
	}
	/*
	 * Before a delimiter a text body always ends its line: when the
	 * content ended with a line break, this CRLF is the delimiter's
	 * and the hard break before it stays content.  Base64 ignores
	 * line breaks, so only a partial line needs ending.
	 */
	if ((delim && b->any && (b->mode == MIMEBODY_QP ||
	    b->mode == MIMEBODY_QP_FIX)) || b->len > 0)
		mimebody_endline(b, "\r\n");
	return b->failed ? -1 : 0;
}
