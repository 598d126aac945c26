/*
 * mime_oracle.h - test-only checks of mime.c's output: a second,
 * independent reader of the MIME structure (whole message in memory,
 * recursive) with quoted-printable, base64 and RFC 2047 decoders.
 * Used by tests/check_mime.c and tests/fuzz/fuzz_mime.c; not in src/.
 */
#ifndef MIME_ORACLE_H
#define MIME_ORACLE_H

#include <stdbool.h>
#include <stddef.h>

/* NULL when every line of <p>/<n> ends in CRLF within 998 octets and
 * no CR, LF or NUL stands elsewhere; else what is wrong. */
const char	*oracle_lines(const char *p, size_t n);

/*
 * NULL when <out> is a lossless re-encoding of <in>: the same tree of
 * entities; the same header fields in order, each giving the same
 * value once unfolded and RFC 2047 decoded (Content-Transfer-Encoding
 * aside, MIME-Version and Content-Type only added); each leaf body
 * decoding (by the transfer encoding each side declares) to the same
 * octets; a leaf that needed nothing byte-identical; no line of a
 * re-encoded body starting with '.' or '-'.  Else what differs, in a
 * static buffer.  <in> is read as mime.c reads it: a last line
 * without CRLF gets one.
 */
const char	*oracle_compare(const char *in, size_t inlen, const char *out,
		    size_t outlen);

/* The decoders, exposed for unit tests.  Each returns a malloc'd
 * buffer (caller frees) and its length in *outlen. */
char		*oracle_qp_decode(const char *p, size_t n, size_t *outlen);
char		*oracle_b64_decode(const char *p, size_t n, size_t *outlen);
char		*oracle_hdr_decode(const char *p, size_t n, size_t *outlen);

#endif /* MIME_ORACLE_H */
