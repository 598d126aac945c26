/*
 * mimebody.h - streaming transfer encoders for one MIME body: raw
 * octets to quoted-printable or base64, and the repair of a body that
 * already claims quoted-printable or base64 (RFC 2045 6.7, 6.8).
 *
 * Pure code: octets in, CRLF lines out through a callback, O(1) state.
 * Every line written is at most 76 octets (MIMEBODY_WSP_MAX when
 * QP_FIX keeps trailing white space literal, see mimebody.c) plus CRLF,
 * has no bare CR, LF or NUL, and never starts with '.' or '-': no
 * output line can end DATA or be taken for a MIME boundary.
 */
#ifndef MIMEBODY_H
#define MIMEBODY_H

#include <stdbool.h>
#include <stddef.h>

#define MIMEBODY_QP_LINE	76	/* RFC 2045 6.7 (5), with the '=' */
#define MIMEBODY_WSP_MAX	900	/* white space held back (QP_FIX) */
#define MIMEBODY_OUT_MAX	1024	/* output line buffer */

enum mimebody_mode {
	MIMEBODY_QP,		/* raw text to quoted-printable: CRLF is a
				 * hard line break, a bare CR, LF, NUL, '='
				 * and 8-bit octets are =XX */
	MIMEBODY_B64,		/* raw octets to base64, CRLF included */
	MIMEBODY_QP_FIX,	/* quoted-printable to quoted-printable
				 * that decodes to the same octets, with
				 * soft breaks instead of long lines */
	MIMEBODY_B64_FIX,	/* base64 re-wrapped: the alphabet and '='
				 * kept in order, what decoders ignore
				 * (RFC 2045 6.8) dropped */
};

/* Where the output goes; <arg> is handed back. */
struct mimebody_out {
	void	(*cb)(void *arg, const char *p, size_t n);
	void	*arg;
};

/* The state of one body being encoded; the fields are private. */
struct mimebody {
	enum mimebody_mode	mode;
	struct mimebody_out	out;
	bool			any;	/* content seen */
	bool			failed;	/* QP_FIX: white space run too long */
	int			st;	/* QP_FIX decoder state */
	int			wsp;	/* QP: held white space or -1 */
	unsigned char		hex;	/* QP_FIX: "=" and this digit */
	unsigned char		q[3];	/* B64: octets of a quantum */
	size_t			qlen;
	bool			pad;	/* B64_FIX: the last was '=' */
	size_t			wlen;	/* QP_FIX: held white space */
	char			w[MIMEBODY_WSP_MAX];
	size_t			len;	/* octets in <line> */
	char			line[MIMEBODY_OUT_MAX];
};

/* Starts encoding a body in <mode>, writing through <out>. */
void	mimebody_init(struct mimebody *b, enum mimebody_mode mode,
	    const struct mimebody_out *out);

/* Encodes <n> content octets.  A CR, LF or NUL here is data; line
 * breaks of the content come through mimebody_eol(). */
void	mimebody_put(struct mimebody *b, const char *p, size_t n);

/* A CRLF of the content: a hard line break (QP), the octets CR LF
 * (B64), an encoded line end (QP_FIX), nothing (B64_FIX). */
void	mimebody_eol(struct mimebody *b);

/* Ends the body and its last line.  <delim>: a boundary delimiter
 * follows, so the CRLF written last is the one RFC 2046 5.1.1 attaches
 * to it and not content.  Returns 0, or -1 when QP_FIX met a run of
 * white space over MIMEBODY_WSP_MAX that it could not place without
 * changing what decodes (the output is then not usable). */
int	mimebody_finish(struct mimebody *b, bool delim);

#endif /* MIMEBODY_H */
