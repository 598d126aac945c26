/*
 * check_mime.c - unit tests for the lossless re-encoder (mime.c,
 * mimebody.c, mimefield.c).
 *
 * A table of messages with the outcome expected, checked three ways:
 * the exact output (or text it must and must not hold), the output's
 * lines (CRLF, within 998 octets, no bare CR, LF or NUL), and the
 * oracle of tests/mime_oracle.c, which reads input and output as
 * MIME and decodes them.  Each message also goes through in 1-octet
 * chunks, which must change nothing.  Then the quick scan, the header
 * field repairs, the limits and the pass-2 mismatch.
 */
#include "config.h"

#include "mime.h"
#include "mime_scan.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimebody.h"
#include "mime_oracle.h"
#include "mimefield.h"
#include "util.h"

/* A literal with its length, NULs included. */
#define S(s)	s, sizeof(s) - 1

#define MPHDR	"MIME-Version: 1.0\r\n" \
		"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
#define QPHDR	"MIME-Version: 1.0\r\n" \
		"Content-Type: text/plain; charset=us-ascii\r\n" \
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n"

/*
 * Messages are templates: "%{N:c}" stands for N copies of c, so that
 * long lines stay readable here.
 */
static const struct {
	const char	*name;
	const char	*in;
	size_t		 inlen;
	enum mime_rc	 want;
	const char	*out;		/* exact output, a template, or NULL */
	const char	*has;		/* text the output holds, or NULL */
	const char	*hasnt;		/* text it must not hold, or NULL */
} cases[] = {
	{ "conformant: byte for byte",
	  S("From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n.\r\n..\r\n"),
	  MIME_UNCHANGED,
	  "From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n.\r\n..\r\n",
	  NULL, NULL },
	{ "conformant multipart with 8-bit text",
	  S(MPHDR "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	  "Gr\xc3\xbc\xc3\x9f\x65\r\n--XX--\r\n"), MIME_UNCHANGED,
	  MPHDR "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	  "Gr\xc3\xbc\xc3\x9f\x65\r\n--XX--\r\n", NULL, NULL },
	{ "line of 998 octets",
	  S("Subject: x\r\n\r\n%{998:a}\r\n"), MIME_UNCHANGED,
	  "Subject: x\r\n\r\n%{998:a}\r\n", NULL, NULL },
	{ "line of 999 octets",
	  S("Subject: x\r\n\r\n%{999:a}\r\n"), MIME_OK,
	  "Subject: x\r\n" QPHDR "%{75:a}=\r\n%{75:a}=\r\n%{75:a}=\r\n"
	  "%{75:a}=\r\n%{75:a}=\r\n%{75:a}=\r\n%{75:a}=\r\n%{75:a}=\r\n"
	  "%{75:a}=\r\n%{75:a}=\r\n%{75:a}=\r\n%{75:a}=\r\n%{75:a}=\r\n"
	  "%{24:a}\r\n", NULL, NULL },
	{ "a 1,500-octet line among others",
	  S("Subject: x\r\n\r\nfirst\r\n%{1500:b}\r\nlast\r\n"), MIME_OK,
	  NULL, "\r\n\r\nfirst\r\n%{75:b}=\r\n", NULL },
	{ "cron's progress bar",
	  S("Subject: Cron <root@h> job\r\n\r\n10%\r50%\r100%\r\n"),
	  MIME_OK,
	  "Subject: Cron <root@h> job\r\n" QPHDR
	  "10%=0D50%=0D100%\r\n", NULL, NULL },
	{ "NUL octets",
	  S("Subject: x\r\n\r\na\0b\r\n\0\r\n"), MIME_OK,
	  "Subject: x\r\n" QPHDR "a=00b\r\n=00\r\n", NULL, NULL },
	{ "dots, dashes, spaces and equal signs",
	  S("Subject: x\r\n\r\n.\r\n.leading\r\n-- \r\nx = y \r\n\0\r\n"),
	  MIME_OK,
	  "Subject: x\r\n" QPHDR
	  "=2E\r\n=2Eleading\r\n=2D-=20\r\nx =3D y=20\r\n=00\r\n",
	  NULL, NULL },
	{ "a soft break never leaves '.' first",
	  S("Subject: x\r\n\r\n%{75:a}.%{1000:b}\r\n"), MIME_OK,
	  NULL, "\r\n=2Eb", "\r\n.b" },
	{ "UTF-8 body gets charset utf-8",
	  S("Subject: x\r\n\r\n\xc3\xa9\0\r\n"), MIME_OK,
	  NULL, "charset=utf-8\r\n", NULL },
	{ "8-bit body that is not UTF-8: unknown-8bit",
	  S("Subject: x\r\n\r\n\xe9\0\r\n"), MIME_OK,
	  NULL, "charset=unknown-8bit\r\n", NULL },
	{ "raw UTF-8 Subject stays as it is",
	  S("Subject: Gr\xc3\xbc\xc3\x9f\x65\r\n\r\nx\ry\r\n"), MIME_OK,
	  NULL, "Subject: Gr\xc3\xbc\xc3\x9f\x65\r\nMIME-Version", NULL },
	{ "MIME message: only the encoding field changes",
	  S("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
	  "\r\nContent-Transfer-Encoding: 8bit\r\nX-A: b\r\n\r\n\r\r\n"),
	  MIME_OK,
	  "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	  "Content-Transfer-Encoding: quoted-printable\r\nX-A: b\r\n\r\n"
	  "=0D\r\n", NULL, NULL },
	{ "multipart: only the part that needs it",
	  S(MPHDR "preamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
	  "fine\r\n--XX\r\nContent-Type: text/plain\r\n\r\nbad\0\r\n"
	  "--XX  \r\nContent-Type: text/plain\r\n\r\nfine too\r\n"
	  "--XX--\r\nepilogue\r\n"), MIME_OK,
	  MPHDR "preamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
	  "fine\r\n--XX\r\nContent-Type: text/plain\r\n"
	  "Content-Transfer-Encoding: quoted-printable\r\n\r\nbad=00\r\n"
	  "--XX  \r\nContent-Type: text/plain\r\n\r\nfine too\r\n"
	  "--XX--\r\nepilogue\r\n", NULL, NULL },
	{ "multipart: body ending in an empty line keeps it",
	  S(MPHDR "--XX\r\n\r\nbad\0\r\n\r\n--XX--\r\n"), MIME_OK,
	  MPHDR "--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n"
	  "Content-Transfer-Encoding: quoted-printable\r\n\r\nbad=00\r\n"
	  "\r\n--XX--\r\n", NULL, NULL },
	{ "nested alternative inside mixed",
	  S(MPHDR "--XX\r\nContent-Type: multipart/alternative; "
	  "boundary=YY\r\n\r\n--YY\r\nContent-Type: text/plain\r\n\r\n"
	  "plain\r\n--YY\r\nContent-Type: text/html\r\n\r\n<p>%{1200:h}"
	  "</p>\r\n--YY--\r\n--XX\r\nContent-Type: text/plain\r\n\r\n"
	  "after\r\n--XX--\r\n"), MIME_OK,
	  NULL, "--YY\r\nContent-Type: text/html\r\n"
	  "Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>", NULL },
	{ "binary part goes to base64",
	  S(MPHDR "--XX\r\nContent-Type: application/octet-stream\r\n"
	  "Content-Transfer-Encoding: binary\r\n\r\n\0\1\2\r\n\r\n"
	  "--XX--\r\n"), MIME_OK,
	  MPHDR "--XX\r\nContent-Type: application/octet-stream\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\nAAECDQo=\r\n--XX--\r\n",
	  NULL, NULL },
	{ "base64 part with an over-long line is re-wrapped",
	  S(MPHDR "--XX\r\nContent-Type: image/png\r\n"
	  "Content-Transfer-Encoding: base64\r\n\r\n%{1000:A}\r\nQQ==\r\n"
	  "--XX--\r\n"), MIME_OK,
	  NULL, "\r\n\r\n%{76:A}\r\n%{76:A}\r\n",
	  "Content-Transfer-Encoding: quoted" },
	{ "base64 with junk: padding ends a line",
	  S(MPHDR "--XX\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	  "QQ==\rQUJD \0QQ=\r\n--XX--\r\n"), MIME_OK,
	  MPHDR "--XX\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	  "QQ==\r\nQUJDQQ=\r\n--XX--\r\n", NULL, NULL },
	{ "quoted-printable part: soft breaks, decoding unchanged",
	  S("MIME-Version: 1.0\r\nContent-Transfer-Encoding: "
	  "quoted-printable\r\n\r\nab=3d=\r\n%{1000:c}=41 \r\n=4\r\n"
	  "t \r\r\n.x\r\n"), MIME_OK,
	  NULL, "ab=3d=\r\n%{75:c}=\r\n", "Content-Type" },
	{ "quoted-printable part already conformant is untouched",
	  S("MIME-Version: 1.0\r\nContent-Transfer-Encoding: "
	  "quoted-printable\r\n\r\nab=3D=\r\n%{990:c}\r\n"), MIME_UNCHANGED,
	  NULL, NULL, NULL },
	{ "quoted-printable part ending in '= ' before a delimiter",
	  S(MPHDR "--XX\r\nContent-Transfer-Encoding: quoted-printable\r\n"
	  "\r\n\0x= \r\n--XX--\r\n"), MIME_OK,
	  MPHDR "--XX\r\nContent-Transfer-Encoding: quoted-printable\r\n"
	  "\r\n=00x= \r\n--XX--\r\n", NULL, NULL },
	{ "message/rfc822 part: the enclosed body",
	  S(MPHDR "--XX\r\nContent-Type: message/rfc822\r\n\r\n"
	  "Subject: inner\r\n\r\nin\0ner\r\n--XX--\r\n"), MIME_OK,
	  MPHDR "--XX\r\nContent-Type: message/rfc822\r\n\r\n"
	  "Subject: inner\r\n" QPHDR "in=00ner\r\n--XX--\r\n", NULL, NULL },
	{ "digest: a part without Content-Type is a message",
	  S("Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\n"
	  "Subject: m\r\n\r\nx\0\r\n--D--\r\n"), MIME_OK,
	  "Content-Type: multipart/digest; boundary=D\r\n\r\n--D\r\n\r\n"
	  "Subject: m\r\n" QPHDR "x=00\r\n--D--\r\n", NULL, NULL },
	{ "header ended by a line that is no field",
	  S("Subject: x\r\nhello\0\r\n"), MIME_OK,
	  "Subject: x\r\n" QPHDR "hello=00\r\n", NULL, NULL },
	{ "no header at all",
	  S("hello world\r\nx\ry\r\n"), MIME_OK,
	  QPHDR "hello world\r\nx=0Dy\r\n", NULL, NULL },
	{ "last line without CRLF gets one",
	  S("Subject: x\r\n\r\nlast\0"), MIME_OK,
	  "Subject: x\r\n" QPHDR "last=00\r\n", NULL, NULL },
	{ "a CR at the very end is data",
	  S("Subject: x\r\n\r\nlast\r"), MIME_OK,
	  "Subject: x\r\n" QPHDR "last=0D\r\n", NULL, NULL },
	{ "long header line folded at its spaces",
	  S("References: %{500:r} %{500:s} <x@y>\r\n\r\nbody\r\n"),
	  MIME_OK,
	  "References: %{500:r}\r\n %{500:s} <x@y>\r\n\r\nbody\r\n",
	  NULL, NULL },
	{ "long Subject without spaces: encoded words",
	  S("Subject: %{1000:s}\r\n\r\nbody\r\n"), MIME_OK,
	  NULL, "Subject: =?UTF-8?Q?sss", NULL },
	{ "bare CR in Subject: encoded, words around kept",
	  S("Subject: before a\rb after\r\n\r\nbody\r\n"), MIME_OK,
	  "Subject: before =?UTF-8?Q?a=0Db?= after\r\n\r\nbody\r\n",
	  NULL, NULL },
	{ "NUL next to an encoded word: the space goes inside",
	  S("Subject: =?UTF-8?Q?x?= \0\r\n\r\nbody\r\n"), MIME_OK,
	  "Subject: =?UTF-8?Q?x?= =?UTF-8?Q?_=00?=\r\n\r\nbody\r\n",
	  NULL, NULL },
	{ "bare CR in To: refused",
	  S("To: a\r@b.test\r\n\r\nbody\r\n"), MIME_EHEADER, NULL, NULL,
	  NULL },
	{ "long To without spaces: refused",
	  S("To: %{1000:t}@b.test\r\n\r\nbody\r\n"), MIME_EHEADER, NULL,
	  NULL, NULL },
	{ "unknown transfer encoding: refused",
	  S("Content-Transfer-Encoding: x-uuencode\r\n\r\n%{1000:u}\r\n"),
	  MIME_EENCODING, NULL, NULL, NULL },
	{ "unknown transfer encoding, conformant: unchanged",
	  S("Content-Transfer-Encoding: x-uuencode\r\n\r\nuu\r\n"),
	  MIME_UNCHANGED, NULL, NULL, NULL },
	{ "multipart without boundary: refused",
	  S("Content-Type: multipart/mixed\r\n\r\n%{1000:u}\r\n"),
	  MIME_ESTRUCTURE, NULL, NULL, NULL },
	{ "line nearly a boundary in a part to encode: refused",
	  S(MPHDR "--XX\r\n\r\n--XXY\r\n\0\r\n--XX--\r\n"),
	  MIME_ESTRUCTURE, NULL, NULL, NULL },
	{ "long preamble line: cut, not content",
	  S(MPHDR "%{1000:p}\r\n--XX\r\n\r\nok\r\n--XX--\r\n"), MIME_OK,
	  MPHDR "%{998:p}\r\n pp\r\n--XX\r\n\r\nok\r\n--XX--\r\n", NULL,
	  NULL },
	{ "preamble line that would become a delimiter once cut (fuzz)",
	  S(MPHDR "--XX%{1000: }\1\r\n--XX\r\n\r\nok\r\n--XX--\r\n"),
	  MIME_OK, MPHDR " -XX%{994: }\r\n %{6: }\1\r\n--XX\r\n\r\nok\r\n"
	  "--XX--\r\n", NULL, NULL },
	{ "preamble line that would become a delimiter once fixed",
	  S(MPHDR "--XX\0\r\n--XX\r\n\r\nok\r\n--XX--\r\n"), MIME_OK,
	  MPHDR " -XX \r\n--XX\r\n\r\nok\r\n--XX--\r\n", NULL, NULL },
	{ "quoted-printable without empty line gets one (fuzz)",
	  S("Content-Transfer-Encoding: quoted-printable\r\n"
	  "\xff\0*:x\r\n"), MIME_OK,
	  "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	  "=FF=00*:x\r\n", NULL, NULL },
	{ "boundary line padded over 998: padding dropped",
	  S(MPHDR "--XX%{1000: }\r\n\r\nok\r\n--XX--\r\n"), MIME_OK,
	  MPHDR "--XX\r\n\r\nok\r\n--XX--\r\n", NULL, NULL },
};

static void
buf_cb(void *arg, const char *p, size_t n)
{
	buf_add(arg, p, n);
}

/* Expands "%{N:c}" in <t>/<n>. */
static struct buf
expand(const char *t, size_t n)
{
	struct buf	 b = { NULL, 0, 0 };
	size_t		 i, k, count;
	char		*end;

	buf_add(&b, "", 0);
	for (i = 0; i < n; i++) {
		if (t[i] == '%' && i + 1 < n && t[i + 1] == '{') {
			count = strtoul(t + i + 2, &end, 10);
			ck_assert(*end == ':' && end[2] == '}');
			for (k = 0; k < count; k++)
				buf_add(&b, end + 1, 1);
			i = (size_t)(end + 2 - t);
		} else
			buf_add(&b, t + i, 1);
	}
	return b;
}

/* Runs both passes with pieces of <chunk>; the output goes in <out>. */
static enum mime_rc
run(const char *in, size_t len, size_t chunk, struct buf *out)
{
	struct mime_enc	*e = mime_enc_new();
	enum mime_rc	 rc;
	size_t		 i, k;

	out->len = 0;
	buf_add(out, "", 0);
	for (i = 0; i < len; i += k) {
		k = len - i < chunk ? len - i : chunk;
		mime_enc_scan(e, in + i, k);
	}
	rc = mime_enc_plan(e);
	if (rc == MIME_OK || rc == MIME_UNCHANGED) {
		mime_enc_emit_start(e, buf_cb, out);
		for (i = 0; i < len; i += k) {
			k = len - i < chunk ? len - i : chunk;
			mime_enc_emit(e, in + i, k);
		}
		ck_assert_int_eq(mime_enc_emit_end(e), MIME_OK);
		ck_assert_uint_eq(out->len, mime_enc_size(e));
	} else
		ck_assert_str_ne(mime_enc_detail(e), "");
	mime_enc_free(e);
	return rc;
}

/* The first pass alone, in pieces of <chunk>: mime_enc_detail(), in a
 * static buffer. */
static const char *
plan_detail(const char *in, size_t len, size_t chunk)
{
	static char	 detail[200];
	struct mime_enc	*e = mime_enc_new();
	size_t		 i, k;

	for (i = 0; i < len; i += k) {
		k = len - i < chunk ? len - i : chunk;
		mime_enc_scan(e, in + i, k);
	}
	mime_enc_plan(e);
	snprintf(detail, sizeof(detail), "%s", mime_enc_detail(e));
	mime_enc_free(e);
	return detail;
}

static bool
scan_is_clean(const char *p, size_t n)
{
	struct mime_scan	s;

	mime_scan_init(&s);
	mime_scan_feed(&s, p, n);
	return mime_scan_is_clean(&s);
}

START_TEST(test_table)
{
	struct buf	 in = expand(cases[_i].in, cases[_i].inlen);
	struct buf	 out = { NULL, 0, 0 }, small = { NULL, 0, 0 }, t;
	const char	*why;
	enum mime_rc	 rc;

	rc = run(in.p, in.len, in.len + 1, &out);
	ck_assert_msg(rc == cases[_i].want, "%s: rc %s", cases[_i].name,
	    mime_rc_str(rc));
	ck_assert(scan_is_clean(in.p, in.len) == (rc == MIME_UNCHANGED));
	if (rc != MIME_OK && rc != MIME_UNCHANGED)
		goto done;
	ck_assert_ptr_null(oracle_lines(out.p, out.len));
	why = oracle_compare(in.p, in.len, out.p, out.len);
	ck_assert_msg(why == NULL, "%s: %s", cases[_i].name, why);
	if (cases[_i].out != NULL) {
		t = expand(cases[_i].out, strlen(cases[_i].out));
		ck_assert_msg(t.len == out.len && memcmp(t.p, out.p,
		    t.len) == 0, "%s: got\n%s", cases[_i].name, out.p);
		free(t.p);
	}
	if (cases[_i].has != NULL) {
		t = expand(cases[_i].has, strlen(cases[_i].has));
		ck_assert_msg(memmem(out.p, out.len, t.p, t.len) != NULL,
		    "%s: got\n%s", cases[_i].name, out.p);
		free(t.p);
	}
	if (cases[_i].hasnt != NULL) {
		t = expand(cases[_i].hasnt, strlen(cases[_i].hasnt));
		ck_assert_msg(memmem(out.p, out.len, t.p, t.len) == NULL,
		    "%s: got\n%s", cases[_i].name, out.p);
		free(t.p);
	}
	ck_assert_int_eq(run(in.p, in.len, 1, &small), rc);
	ck_assert(small.len == out.len && memcmp(small.p, out.p,
	    out.len) == 0);
done:
	free(small.p);
	free(out.p);
	free(in.p);
}
END_TEST

static const struct {
	const char	*in;
	size_t		 len;
	bool		 clean;
} scan_cases[] = {
	{ S(""), true },
	{ S("a\r\nb\r\n"), true },
	{ S("no final CRLF"), true },
	{ S("a\rb\r\n"), false },
	{ S("a\nb\r\n"), false },
	{ S("a\0b\r\n"), false },
	{ S("ends in CR\r"), false },
	{ S("%{998:x}\r\n"), true },
	{ S("%{999:x}\r\n"), false },
	{ S("\r\r\n"), false },
};

START_TEST(test_scan)
{
	struct buf		in = expand(scan_cases[_i].in,
				    scan_cases[_i].len);
	struct mime_scan	s;
	size_t			i;

	ck_assert(scan_is_clean(in.p, in.len) == scan_cases[_i].clean);
	mime_scan_init(&s);
	for (i = 0; i < in.len; i++)	/* a CRLF split between chunks */
		mime_scan_feed(&s, in.p + i, 1);
	ck_assert(mime_scan_is_clean(&s) == scan_cases[_i].clean);
	free(in.p);
}
END_TEST

/* The quick check against an octet-by-octet model, on random lines
 * (long ones, CRs, LFs, NULs, 8-bit octets) cut at random. */
static bool
scan_model(const char *p, size_t n)
{
	size_t	i, col = 0;
	bool	cr = false;

	for (i = 0; i < n; i++) {
		if (cr) {
			cr = false;
			if (p[i] == '\n') {
				col = 0;
				continue;
			}
			return false;
		}
		if (p[i] == '\r')
			cr = true;
		else if (p[i] == '\n' || p[i] == '\0' || ++col > 998)
			return false;
	}
	return !cr;
}

START_TEST(test_scan_model)
{
	static const char	 alpha[] = "ab.\r\n\r\n\r\n\0\xc3";
	char			*p = malloc(4096);
	struct mime_scan	 s;
	size_t			 n, i, k, cut;
	unsigned int		 seed = 12345, round;

	for (round = 0; round < 20000; round++) {
		n = (size_t)rand_r(&seed) % 4096;
		/* Mostly plain text and CRLFs, sometimes long. */
		for (i = 0; i < n; i++) {
			k = (size_t)rand_r(&seed) % 64;
			if (k >= 50 && k < 58 && i + 1 < n) {
				p[i++] = '\r';
				p[i] = '\n';
			} else
				p[i] = k < 58 ? 'x' :
				    alpha[k % (sizeof(alpha) - 1)];
		}
		if (round % 3 == 0)
			memset(p, 'z', n > 1200 ? 1200 : n);
		mime_scan_init(&s);
		for (i = 0; i < n; i += cut) {
			cut = 1 + (size_t)rand_r(&seed) % 1500;
			if (cut > n - i)
				cut = n - i;
			mime_scan_feed(&s, p + i, cut);
		}
		ck_assert_msg(mime_scan_is_clean(&s) == scan_model(p, n),
		    "round %u", round);
	}
	free(p);
}
END_TEST

/* Where the quick check finds 8-bit octets: the header section ends at
 * the first empty line, whatever the chunks. */
static const struct {
	const char	*in;
	enum mime_8bit	 want;
} scan8_cases[] = {
	{ "",						MIME_8BIT_NONE },
	{ "Subject: a\r\n\r\nbody\r\n",		MIME_8BIT_NONE },
	{ "Subject: a\r\n\r\nb\xc3\xa9\r\n",		MIME_8BIT_BODY },
	{ "Subject: \xc3\xa9\r\n\r\nbody\r\n",	MIME_8BIT_HEADER },
	{ "Subject: a\r\n\tfolded \xe9\r\n\r\nx\r\n",	MIME_8BIT_HEADER },
	{ "From: a\r\n\r\n\r\nSubject: \xe9\r\n",	MIME_8BIT_BODY },
	{ "Subject: a\n\nb\xff\n",			MIME_8BIT_BODY },
	{ "Subject: a\r\n \r\nb\xff\r\n",		MIME_8BIT_HEADER },
	{ "no header end \x80",			MIME_8BIT_HEADER },
};

START_TEST(test_scan_8bit)
{
	const char		*in = scan8_cases[_i].in;
	size_t			 n = strlen(in), cut, i;
	struct mime_scan	 s;

	for (cut = 1; cut <= n + 1; cut++) {
		mime_scan_init(&s);
		for (i = 0; i < n; i += cut)
			mime_scan_feed(&s, in + i, n - i < cut ? n - i : cut);
		ck_assert_msg(mime_scan_8bit(&s) == scan8_cases[_i].want,
		    "case %d cut %zu: %d", _i, cut, mime_scan_8bit(&s));
	}
}
END_TEST

/* 7-bit output for an upstream without 8BITMIME (RFC 6152 3). */
static enum mime_rc
run7(const char *in, struct buf *out)
{
	struct mime_enc	*e = mime_enc_new();
	size_t		 len = strlen(in), i;
	enum mime_rc	 rc;

	out->len = 0;
	buf_add(out, "", 0);
	mime_enc_set_7bit(e);
	mime_enc_scan(e, in, len);
	rc = mime_enc_plan(e);
	if (rc == MIME_OK || rc == MIME_UNCHANGED) {
		mime_enc_emit_start(e, buf_cb, out);
		for (i = 0; i < len; i++)	/* in pieces of one octet */
			mime_enc_emit(e, in + i, 1);
		ck_assert_int_eq(mime_enc_emit_end(e), MIME_OK);
		ck_assert_uint_eq(out->len, mime_enc_size(e));
		for (i = 0; i < out->len; i++)
			ck_assert_uint_lt((unsigned char)out->p[i], 0x80);
		ck_assert_ptr_null(oracle_lines(out->p, out->len));
	}
	mime_enc_free(e);
	return rc;
}

START_TEST(test_7bit)
{
	static const char	plain[] = "Subject: caf\xc3\xa9?\r\n"
	    "\r\nSch\xc3\xb6ne Gr\xc3\xbc\xc3\x9f" "e.\r\n.dot\r\n";
	static const char	multi[] = "Subject: m\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	    "pre \xff\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
	    "ascii part\r\n--b\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	    "caf\xc3\xa9\r\n--b--\r\n";
	struct buf	 out = { NULL, 0, 0 };
	const char	*body;
	char		*dec;
	size_t		 declen;

	/* A message without MIME: its body becomes quoted-printable. */
	ck_assert_int_eq(run7("Subject: s\r\n\r\nSch\xc3\xb6n\r\n", &out),
	    MIME_OK);
	ck_assert_ptr_nonnull(strstr(out.p, "MIME-Version: 1.0\r\n"));
	ck_assert_ptr_nonnull(strstr(out.p, "charset=utf-8"));
	ck_assert_ptr_nonnull(strstr(out.p,
	    "Content-Transfer-Encoding: quoted-printable\r\n"));
	body = strstr(out.p, "\r\n\r\n") + 4;
	dec = oracle_qp_decode(body, out.len - (size_t)(body - out.p),
	    &declen);
	ck_assert_uint_eq(declen, 8);
	ck_assert_int_eq(memcmp(dec, "Sch\xc3\xb6n\r\n", 8), 0);
	free(dec);
	/* Only the 8-bit part changes; the preamble loses its octet. */
	ck_assert_int_eq(run7(multi, &out), MIME_OK);
	ck_assert_ptr_nonnull(strstr(out.p, "\r\n\r\nascii part\r\n--b"));
	ck_assert_ptr_nonnull(strstr(out.p, "caf=C3=A9"));
	ck_assert_ptr_null(strstr(out.p, "8bit"));
	/* 8-bit header text is not converted: the plan fails. */
	ck_assert_int_eq(run7(plain, &out), MIME_EHEADER);
	/* 7-bit stays as it is. */
	ck_assert_int_eq(run7("Subject: s\r\n\r\nplain\r\n", &out),
	    MIME_UNCHANGED);
	ck_assert_str_eq(out.p, "Subject: s\r\n\r\nplain\r\n");
	free(out.p);
}
END_TEST

/* Field repairs: what comes back, and that it unfolds and decodes to
 * the original value. */
static const struct {
	const char		*in;
	size_t			 len;
	enum mimefield_rc	 want;
	const char		*out;
} field_cases[] = {
	{ S("Subject: short\r\n"), MIMEFIELD_CLEAN, NULL },
	{ S("X-A: %{600:a} %{600:b}\r\n"), MIMEFIELD_FIXED,
	  "X-A: %{600:a}\r\n %{600:b}\r\n" },
	{ S("X-A: a b c %{1000:d}\r\n"), MIMEFIELD_FIXED, NULL },
	{ S("Received: from x by y;%{1200: }z\r\n"), MIMEFIELD_FIXED,
	  "Received: from x by\r\n y;%{203: }\r\n%{997: }z\r\n" },
	{ S("To: x\0y@z\r\n"), MIMEFIELD_EOCTET, NULL },
	{ S("To: %{1000:x}\r\n"), MIMEFIELD_ELONG, NULL },
	{ S("Subject: %{1200: }x\r\n"), MIMEFIELD_ELONG, NULL },
	{ S("Subject: a\r\n\tb\rc\r\n"), MIMEFIELD_FIXED,
	  "Subject: a\t=?UTF-8?Q?b=0Dc?=\r\n" },
	{ S("Subject: =?ISO-8859-1?Q?a?=  \0  =?ISO-8859-1?Q?b?=\r\n"),
	  MIMEFIELD_FIXED,
	  "Subject: =?ISO-8859-1?Q?a?= =?UTF-8?Q?__=00__?= "
	  "=?ISO-8859-1?Q?b?=\r\n" },
	{ S("Subject: x \xe9\0 y\r\n"), MIMEFIELD_FIXED,
	  "Subject: x =?unknown-8bit?Q?=E9=00?= y\r\n" },
	{ S("Subject: \0 \0\r\n"), MIMEFIELD_FIXED,
	  "Subject: =?UTF-8?Q?=00_=00?=\r\n" },
	{ S("Comments: a\nb\r\n"), MIMEFIELD_FIXED,
	  "Comments: =?UTF-8?Q?a=0Ab?=\r\n" },
};

START_TEST(test_field)
{
	struct buf		 in = expand(field_cases[_i].in,
				    field_cases[_i].len), t;
	enum mimefield_rc	 rc;
	char			*out, *da, *db;
	size_t			 outlen, na, nb;
	const char		*ca, *cb;

	rc = mimefield_fix(in.p, in.len, &out, &outlen);
	ck_assert_int_eq(rc, field_cases[_i].want);
	if (rc != MIMEFIELD_FIXED) {
		ck_assert_ptr_null(out);
		free(in.p);
		return;
	}
	ck_assert(mimefield_is_clean(out, outlen));
	ck_assert_ptr_null(oracle_lines(out, outlen));
	if (field_cases[_i].out != NULL) {
		t = expand(field_cases[_i].out, strlen(field_cases[_i].out));
		ck_assert_msg(t.len == outlen && memcmp(t.p, out, outlen) == 0,
		    "got %.*s", (int)outlen, out);
		free(t.p);
	}
	ca = (const char *)memchr(in.p, ':', in.len) + 1;
	cb = (const char *)memchr(out, ':', outlen) + 1;
	da = oracle_hdr_decode(ca, in.len - (size_t)(ca - in.p), &na);
	db = oracle_hdr_decode(cb, outlen - (size_t)(cb - out), &nb);
	ck_assert(na == nb && memcmp(da, db, na) == 0);
	free(da);
	free(db);
	free(out);
	free(in.p);
}
END_TEST

/* Encoded words stay within 75 octets and split between characters. */
START_TEST(test_field_words)
{
	struct buf	 in = { NULL, 0, 0 };
	char		*out, *p, *e;
	size_t		 outlen, i;

	buf_add(&in, "Subject: ", 9);
	for (i = 0; i < 700; i++)
		buf_add(&in, "\xe2\x82\xac", 3);	/* the euro sign */
	buf_add(&in, "\r\n", 2);
	ck_assert_int_eq(mimefield_fix(in.p, in.len, &out, &outlen),
	    MIMEFIELD_FIXED);
	for (p = out; (p = memmem(p, outlen - (size_t)(p - out), "=?", 2)) !=
	    NULL; p = e) {
		e = memmem(p + 10, outlen - (size_t)(p + 10 - out), "?=", 2);
		ck_assert_ptr_nonnull(e);
		e += 2;
		ck_assert_int_le(e - p, 75);
		/* "=?UTF-8?Q?" then whole =E2=82=AC triples */
		ck_assert_int_eq((e - p - 12) % 9, 0);
	}
	free(out);
	free(in.p);
}
END_TEST

/* Header and body of a message nested <n> deep in multiparts. */
static struct buf
nested(size_t n, const char *body)
{
	struct buf	b = { NULL, 0, 0 };
	char		line[128];
	size_t		i;

	buf_add(&b, "", 0);
	for (i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "Content-Type: multipart/mixed; "
		    "boundary=b%zu\r\n\r\n--b%zu\r\n", i, i);
		buf_add(&b, line, strlen(line));
	}
	buf_add(&b, "\r\n", 2);
	buf_add(&b, body, strlen(body));
	for (i = n; i-- > 0;) {
		snprintf(line, sizeof(line), "--b%zu--\r\n", i);
		buf_add(&b, line, strlen(line));
	}
	return b;
}

START_TEST(test_depth)
{
	struct buf	in, out = { NULL, 0, 0 };

	/* 32 levels: the leaf is read and re-encoded. */
	in = nested(MIME_DEPTH_MAX, "x\ry\r\n");
	ck_assert_int_eq(run(in.p, in.len, 4096, &out), MIME_OK);
	ck_assert_ptr_null(oracle_compare(in.p, in.len, out.p, out.len));
	free(in.p);
	/* 33: the 33rd multipart is opaque; refused only if it needs. */
	in = nested(MIME_DEPTH_MAX + 1, "x\ry\r\n");
	ck_assert_int_eq(run(in.p, in.len, 4096, &out), MIME_ESTRUCTURE);
	free(in.p);
	in = nested(MIME_DEPTH_MAX + 1, "xy\r\n");
	ck_assert_int_eq(run(in.p, in.len, 4096, &out), MIME_UNCHANGED);
	ck_assert(out.len == in.len && memcmp(out.p, in.p, in.len) == 0);
	free(in.p);
	free(out.p);
}
END_TEST

START_TEST(test_plan_limit)
{
	struct buf	in = { NULL, 0, 0 }, out = { NULL, 0, 0 };
	size_t		i, n;

	for (n = MIME_PLAN_MAX; n <= MIME_PLAN_MAX + 1; n++) {
		in.len = 0;
		buf_add(&in, S(MPHDR));
		for (i = 0; i < n; i++)
			buf_add(&in, S("--XX\r\n\r\n\0\r\n"));
		buf_add(&in, S("--XX--\r\n"));
		ck_assert_int_eq(run(in.p, in.len, 16384, &out),
		    n == MIME_PLAN_MAX ? MIME_OK : MIME_ELIMIT);
	}
	free(in.p);
	free(out.p);
}
END_TEST

START_TEST(test_field_limit)
{
	struct buf	in = { NULL, 0, 0 }, out = { NULL, 0, 0 };
	size_t		i;

	/* A conformant field over MIME_FIELD_MAX streams through. */
	buf_add(&in, S("References:"));
	for (i = 0; i < MIME_FIELD_MAX / 30; i++)
		buf_add(&in, S(" <0123456789012345678901234@x.test>\r\n"));
	buf_add(&in, S("\r\nbody\0\r\n"));
	ck_assert_int_eq(run(in.p, in.len, 1000, &out), MIME_OK);
	ck_assert_ptr_null(oracle_compare(in.p, in.len, out.p, out.len));
	/* One that needs repair cannot be. */
	in.len = 0;
	buf_add(&in, S("X-Big:"));
	for (i = 0; i < MIME_FIELD_MAX / 30; i++)
		buf_add(&in, S(" <0123456789012345678901234@x.test>\r\n"));
	buf_add(&in, S(" \0\r\n\r\nbody\r\n"));
	ck_assert_int_eq(run(in.p, in.len, 1000, &out), MIME_EHEADER);
	/* The failure names it, whether it came in one piece or many. */
	ck_assert_str_eq(plan_detail(in.p, in.len, 1000),
	    "header field \"X-Big\" over 64 KB");
	in.len = 0;
	buf_add(&in, S("Subject:"));
	for (i = 0; i < MIME_FIELD_MAX / 29 + 1; i++)
		buf_add(&in, S(" 0123456789012345678901234567"));
	buf_add(&in, S("\r\r\n\r\nbody\r\n"));
	ck_assert_str_eq(plan_detail(in.p, in.len, in.len),
	    "header field \"Subject\" over 64 KB");
	ck_assert_str_eq(plan_detail(in.p, in.len, 3),
	    "header field \"Subject\" over 64 KB");
	/* A Content-Type that big leaves the structure unknown. */
	in.len = 0;
	buf_add(&in, S("Content-Type: multipart/mixed; boundary=b;"));
	for (i = 0; i < MIME_FIELD_MAX / 30; i++)
		buf_add(&in, S(" x-a=\"0123456789012345678901234567\";\r\n"));
	buf_add(&in, S("\r\n--b\r\n\r\nok\r\n--b--\r\n"));
	ck_assert_int_eq(run(in.p, in.len, 1000, &out), MIME_UNCHANGED);
	buf_add(&in, S("\0\r\n"));
	ck_assert_int_eq(run(in.p, in.len, 1000, &out), MIME_ESTRUCTURE);
	free(in.p);
	free(out.p);
}
END_TEST

/* Trailing white space in quoted-printable is deleted by decoders: it
 * must stay trailing; a run too long to hold fails. */
START_TEST(test_qp_spaces)
{
	struct buf	in = { NULL, 0, 0 }, out = { NULL, 0, 0 };
	size_t		i;

	buf_add(&in, S("Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "\0x"));
	for (i = 0; i < MIMEBODY_WSP_MAX; i++)
		buf_add(&in, " ", 1);
	buf_add(&in, S("\r\n"));
	ck_assert_int_eq(run(in.p, in.len, 100, &out), MIME_OK);
	ck_assert_ptr_null(oracle_compare(in.p, in.len, out.p, out.len));
	in.len -= 2;
	buf_add(&in, S(" \r\n"));
	ck_assert_int_eq(run(in.p, in.len, 100, &out), MIME_ELIMIT);
	free(in.p);
	free(out.p);
}
END_TEST

static void
ignore_cb(void *arg, const char *p, size_t n)
{
	(void)arg;
	(void)p;
	(void)n;
}

START_TEST(test_mismatch)
{
	struct mime_enc	*e = mime_enc_new();

	mime_enc_scan(e, S("Subject: x\r\n\r\na\0\r\n"));
	ck_assert_int_eq(mime_enc_plan(e), MIME_OK);
	mime_enc_emit_start(e, ignore_cb, NULL);
	mime_enc_emit(e, S("Subject: x\r\n\r\nab\0\r\n"));
	ck_assert_int_eq(mime_enc_emit_end(e), MIME_EMISMATCH);
	/* Started again with the right octets, it is fine. */
	mime_enc_emit_start(e, ignore_cb, NULL);
	mime_enc_emit(e, S("Subject: x\r\n\r\na\0\r\n"));
	ck_assert_int_eq(mime_enc_emit_end(e), MIME_OK);
	mime_enc_free(e);
}
END_TEST

/* A 25 MB message with one long line and CRs streams in 16 KB chunks;
 * the output decodes back. */
START_TEST(test_big)
{
	struct buf	in = { NULL, 0, 0 }, out = { NULL, 0, 0 };
	size_t		n = 25 * 1024 * 1024, i;

	buf_add(&in, S("Subject: big\r\n\r\n"));
	in.p = xrealloc(in.p, n + 64);
	in.cap = n + 64;
	for (i = 0; i < n; i++)
		in.p[in.len++] = i % 4000 == 3999 ? '\r' : (char)('a' + i % 26);
	buf_add(&in, S("\r\n"));
	ck_assert_int_eq(run(in.p, in.len, 16384, &out), MIME_OK);
	ck_assert_ptr_null(oracle_compare(in.p, in.len, out.p, out.len));
	free(in.p);
	free(out.p);
}
END_TEST

static const struct {
	const char	*in;
	size_t		 len;
	const char	*want;
	size_t		 wantlen;
} qp_cases[] = {
	{ S("a=3Db=3d\r\n"), S("a=b=\r\n") },
	{ S("soft=\r\nbreak"), S("softbreak") },
	{ S("trail  \r\nx= \r\ny"), S("trail\r\nxy") },
	{ S("=4=ZZ=\rq"), S("=4=ZZ=\rq") },
};

START_TEST(test_qp_decode)
{
	char	*d;
	size_t	 n;

	d = oracle_qp_decode(qp_cases[_i].in, qp_cases[_i].len, &n);
	ck_assert(n == qp_cases[_i].wantlen &&
	    memcmp(d, qp_cases[_i].want, n) == 0);
	free(d);
}
END_TEST

static Suite *
mime_suite(void)
{
	Suite	*s = suite_create("mime");
	TCase	*tc;

#define ADD_CASE(name, fn) do {						\
	tc = tcase_create(name);					\
	tcase_set_timeout(tc, 60);					\
	tcase_add_test(tc, fn);						\
	suite_add_tcase(s, tc);						\
} while (0)
#define ADD_LOOP(name, fn, n) do {					\
	tc = tcase_create(name);					\
	tcase_set_timeout(tc, 60);					\
	tcase_add_loop_test(tc, fn, 0, n);				\
	suite_add_tcase(s, tc);						\
} while (0)
	ADD_LOOP("table", test_table, nitems(cases));
	ADD_LOOP("scan", test_scan, nitems(scan_cases));
	ADD_CASE("scan model", test_scan_model);
	ADD_LOOP("scan-8bit", test_scan_8bit, nitems(scan8_cases));
	ADD_CASE("7bit", test_7bit);
	ADD_LOOP("field", test_field, nitems(field_cases));
	ADD_CASE("field-words", test_field_words);
	ADD_CASE("depth", test_depth);
	ADD_CASE("plan-limit", test_plan_limit);
	ADD_CASE("field-limit", test_field_limit);
	ADD_CASE("qp-spaces", test_qp_spaces);
	ADD_CASE("mismatch", test_mismatch);
	ADD_CASE("big", test_big);
	ADD_LOOP("qp-decode", test_qp_decode, nitems(qp_cases));
#undef ADD_CASE
#undef ADD_LOOP
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(mime_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
