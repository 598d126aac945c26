/*
 * fuzz_rewrite.c - libFuzzer harness for rewrite.c: rewrite_header_len()
 * and rewrite_from() on arbitrary octets.
 *
 * Input: byte 0 picks the network name (none, ASCII, quotes, UTF-8,
 * control characters) and whether the data ends at EOF; the rest is the
 * message.  Checked, besides memory safety: rewrite_from() writes
 * nothing unless it returns REWRITE_OK; what it writes is itself a
 * header block of CRLF lines within 998 octets with exactly one From:,
 * naming the account; every field other than From:, Sender: and those
 * the rewrite adds is kept byte for byte and in order; the block ends
 * with an empty line exactly when the input did; and rewriting the
 * result again changes nothing (REWRITE_UNCHANGED).
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "rewrite.h"
#include "util.h"

#define FUZZ_ACCOUNT	"acct@gmail.test"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const fuzz_names[] = {
	NULL, "Office printer", "Lab \"3\" \\ x", "B\xc3\xbcro-Drucker",
	"a\tb\001c", "=?UTF-8?Q?x?=", "",
};

static void
fuzz_check(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_rewrite: %s\n", what);
	abort();
}

/* The next field of a block that rewrite_header_len() accepted; its
 * length, 0 at the empty line or the end; *namelen: its name's. */
static size_t
fuzz_field(const char *p, const char *end, size_t *namelen)
{
	const char	*q = p;

	if (end - p < 2 || (p[0] == '\r' && p[1] == '\n'))
		return 0;
	for (*namelen = 0; p + *namelen < end && p[*namelen] != ':' &&
	    p[*namelen] != ' ' && p[*namelen] != '\t'; (*namelen)++)
		;
	do {
		q = memchr(q, '\r', (size_t)(end - q));
		fuzz_check(q != NULL && q + 1 < end && q[1] == '\n',
		    "a field without CRLF");
		q += 2;
	} while (q < end && (*q == ' ' || *q == '\t'));
	return (size_t)(q - p);
}

static bool
fuzz_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

/* Fields the rewrite may drop, add or rename. */
static bool
fuzz_is_ours(const char *p, size_t n)
{
	return fuzz_is(p, n, "From") || fuzz_is(p, n, "Sender") ||
	    fuzz_is(p, n, "Reply-To") || fuzz_is(p, n, "X-Original-From") ||
	    fuzz_is(p, n, "X-Original-Sender");
}

/* The next field of <*p> not ours: its length, 0 at the end. */
static size_t
fuzz_next_kept(const char **p, const char *end)
{
	size_t	len, namelen;

	while ((len = fuzz_field(*p, end, &namelen)) > 0) {
		if (!fuzz_is_ours(*p, namelen))
			return len;
		*p += len;
	}
	return 0;
}

/* Compares the kept fields of the input and the output, in order, and
 * counts the output's From: fields. */
static void
fuzz_compare(const char *in, size_t inlen, const char *out, size_t outlen)
{
	const char	*a = in, *b = out, *p, *ae = in + inlen;
	const char	*be = out + outlen;
	size_t		 la, lb, nfrom = 0, len, namelen;

	for (;;) {
		la = fuzz_next_kept(&a, ae);
		lb = fuzz_next_kept(&b, be);
		fuzz_check(la == lb && memcmp(a, b, la) == 0,
		    "a kept field changed");
		if (la == 0)
			break;
		a += la;
		b += lb;
	}
	fuzz_check((size_t)(ae - a) == (size_t)(be - b) &&
	    memcmp(a, b, (size_t)(ae - a)) == 0, "the end of the block");
	for (p = out; (len = fuzz_field(p, be, &namelen)) > 0; p += len)
		if (fuzz_is(p, namelen, "From")) {
			nfrom++;
			fuzz_check(memmem(p, len, "<" FUZZ_ACCOUNT ">",
			    strlen(FUZZ_ACCOUNT) + 2) != NULL,
			    "From: without the account");
		}
	fuzz_check(nfrom == 1, "not exactly one From:");
}

static void
fuzz_output(const struct rewrite_params *pa, const char *in, size_t inlen,
    const struct buf *out)
{
	struct buf	 again = BUF_INIT;
	const char	*o = out->p;
	size_t		 olen = out->len, hlen;

	fuzz_check(olen > 0, "OK without output");
	fuzz_check(rewrite_header_len(o, olen, true, &hlen) == REWRITE_OK &&
	    hlen == olen, "the output is not a header block");
	fuzz_compare(in, inlen, o, olen);
	fuzz_check(rewrite_from(o, olen, pa, &again) == REWRITE_UNCHANGED &&
	    again.len == 0, "a second rewrite changed it");
	buf_free(&again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rewrite_params	 pa = { FUZZ_ACCOUNT, NULL, " via smartrelay" };
	struct buf		 out = BUF_INIT;
	const char		*in = (const char *)data + 1;
	size_t			 len, hlen = 0;
	enum rewrite_rc		 rc;
	bool			 eof;

	if (size < 1)
		return 0;
	len = size - 1;
	pa.display = fuzz_names[(data[0] & 0x7f) % nitems(fuzz_names)];
	eof = (data[0] & 0x80) == 0;
	rc = rewrite_header_len(in, len, eof, &hlen);
	fuzz_check(rc != REWRITE_OK || hlen <= len, "hlen past the data");
	fuzz_check(rc == REWRITE_OK || hlen == 0, "hlen set on error");
	if (rc != REWRITE_OK)
		return 0;
	rc = rewrite_from(in, hlen, &pa, &out);
	if (rc == REWRITE_OK)
		fuzz_output(&pa, in, hlen, &out);
	else
		fuzz_check(out.len == 0, "output written on an error");
	buf_free(&out);
	return 0;
}
