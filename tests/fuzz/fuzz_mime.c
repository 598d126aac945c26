/*
 * fuzz_mime.c - libFuzzer harness for the re-encoder of mime.c.
 *
 * Input: byte 0 picks the chunk sizes of the two passes (the octets are
 * fed in pieces of that size), the rest is the message.  Checked,
 * besides memory safety: a message that mime_scan finds clean plans
 * MIME_UNCHANGED and is written back byte for byte (with a CRLF ending
 * a last partial line); a planned message is written with no line over
 * 998 octets and no bare CR, LF or NUL, in exactly mime_enc_size()
 * octets, the same whatever the chunking, and decodes to what the
 * sender wrote (tests/mime_oracle.c: same tree, same header values, each
 * re-encoded body decoding to the original octets); its output scans
 * clean, so a second pass would change nothing.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "mime_scan.h"
#include "../mime_oracle.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fuzz_buf {
	char	*p;
	size_t	 len, cap;
};

static const size_t	fuzz_chunks[16] = {
	0, 1, 2, 3, 5, 7, 16, 64, 997, 998, 999, 1023, 1024, 1025, 4096, 0,
};

static void
fuzz_check(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_mime: %s\n", what);
	abort();
}

static void
fuzz_out_cb(void *arg, const char *p, size_t n)
{
	struct fuzz_buf	*b = arg;

	if (b->cap - b->len < n) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		fuzz_check(b->p != NULL, "out of memory");
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* Feeds <p>/<n> to <fn> in pieces of <chunk> (0: at once). */
static void
fuzz_feed(void (*fn)(struct mime_enc *, const char *, size_t),
    struct mime_enc *e, const char *p, size_t n, size_t chunk)
{
	size_t	i, k;

	if (chunk == 0)
		chunk = n > 0 ? n : 1;
	for (i = 0; i < n; i += k) {
		k = n - i < chunk ? n - i : chunk;
		fn(e, p + i, k);
	}
}

static bool
fuzz_is_clean(const char *p, size_t n, size_t chunk)
{
	struct mime_scan	s;
	size_t			i, k;

	mime_scan_init(&s);
	if (chunk == 0)
		chunk = n > 0 ? n : 1;
	for (i = 0; i < n; i += k) {
		k = n - i < chunk ? n - i : chunk;
		mime_scan_feed(&s, p + i, k);
	}
	return mime_scan_is_clean(&s);
}

/* Writes the planned message into <b> with pieces of <chunk>. */
static void
fuzz_emit(struct mime_enc *e, const char *p, size_t n, size_t chunk,
    struct fuzz_buf *b)
{
	b->len = 0;
	mime_enc_emit_start(e, fuzz_out_cb, b);
	fuzz_feed(mime_enc_emit, e, p, n, chunk);
	fuzz_check(mime_enc_emit_end(e) == MIME_OK, "emit did not end OK");
	fuzz_check(b->len == mime_enc_size(e), "size differs from the plan");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_buf	 out = { NULL, 0, 0 }, again = { NULL, 0, 0 };
	struct mime_enc	*e;
	const char	*in = (const char *)data + 1, *why;
	size_t		 len, c1, c2;
	enum mime_rc	 rc;
	bool		 clean;

	if (size < 1)
		return 0;
	len = size - 1;
	c1 = fuzz_chunks[data[0] & 0x0f];
	c2 = fuzz_chunks[data[0] >> 4];
	clean = fuzz_is_clean(in, len, c2);
	fuzz_check(clean == fuzz_is_clean(in, len, 1),
	    "scan depends on chunks");
	e = mime_enc_new();
	fuzz_feed(mime_enc_scan, e, in, len, c1);
	rc = mime_enc_plan(e);
	fuzz_check(!clean || rc == MIME_UNCHANGED, "clean but not unchanged");
	fuzz_check(clean || rc != MIME_UNCHANGED, "unchanged but not clean");
	if (rc != MIME_OK && rc != MIME_UNCHANGED) {
		fuzz_check(mime_enc_detail(e)[0] != '\0',
		    "error without detail");
		mime_enc_free(e);
		return 0;
	}
	fuzz_emit(e, in, len, c2, &out);
	if (rc == MIME_UNCHANGED)
		fuzz_check(out.len >= len && (len == 0 ||
		    memcmp(out.p, in, len) == 0) &&
		    (out.len == len || (out.len == len + 2 &&
		    memcmp(out.p + len, "\r\n", 2) == 0)),
		    "unchanged message not copied byte for byte");
	if ((why = oracle_compare(in, len, out.p, out.len)) != NULL) {
		fprintf(stderr, "fuzz_mime: oracle: %s\n", why);
		abort();
	}
	fuzz_check(fuzz_is_clean(out.p, out.len, 0), "output not clean");
	fuzz_emit(e, in, len, 1, &again);
	fuzz_check(again.len == out.len && (out.len == 0 ||
	    memcmp(again.p, out.p, out.len) == 0), "output depends on chunks");
	free(out.p);
	free(again.p);
	mime_enc_free(e);
	return 0;
}
