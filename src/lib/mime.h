/*
 * mime.h - makes a message conformant for relaying without changing
 * what its reader gets (issue 13): lines over 998 octets, bare CRs,
 * bare LFs and NULs are re-encoded, part by part, so that decoding
 * gives back the octets the sender wrote.
 *
 * Pure code: no files, no sockets, no logging.  Two passes over the
 * same octets, each fed in chunks of any size: mime_enc_scan() reads
 * the message and makes a small plan (which parts to re-encode), then
 * mime_enc_emit() writes the result through a callback.  Memory is
 * bounded whatever the message (see mime.c).  The input is the
 * message as the spool holds it: CRLF lines, unstuffed; the output is
 * CRLF lines of at most 998 octets with no bare CR, LF or NUL, still
 * unstuffed (the relay dot-stuffs it as it sends it).  Whether a
 * message needs re-encoding at all, mime_scan.h tells in one pass.
 */
#ifndef MIME_H
#define MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIME_LINE_MAX	998		/* RFC 5322 2.1.1, without CRLF */
#define MIME_DEPTH_MAX	32		/* nested multiparts and messages */
#define MIME_FIELD_MAX	(64 * 1024)	/* one header field, read whole */
#define MIME_PLAN_MAX	10000		/* parts re-encoded per message */
#define MIME_HEAD_MAX	1024		/* start of a line kept to tell a
					 * boundary delimiter */

enum mime_rc {
	MIME_OK,		/* planned: send what mime_enc_emit() writes */
	MIME_UNCHANGED,		/* nothing to change: send the message as
				 * it is */
	MIME_EHEADER,		/* a header field cannot be made conformant
				 * without changing it (structured field
				 * with a bare CR, LF or NUL, a word too
				 * long to fold outside unstructured text,
				 * a field over MIME_FIELD_MAX) */
	MIME_EENCODING,		/* a part to re-encode is in a transfer
				 * encoding we do not know (x-uuencode) */
	MIME_ESTRUCTURE,	/* a part to re-encode where the structure
				 * is not known for sure: nesting over
				 * MIME_DEPTH_MAX, a multipart without a
				 * boundary, a line that is nearly a
				 * boundary delimiter */
	MIME_ELIMIT,		/* over MIME_PLAN_MAX parts to re-encode, or
				 * a quoted-printable part with a run of
				 * white space it cannot place */
	MIME_EMISMATCH,		/* the second pass did not see what the
				 * first one saw: its output is unusable */
};

/* What a plan changes, for the log. */
struct mime_stats {
	uint32_t	parts;		/* bodies re-encoded or re-wrapped */
	uint32_t	fields;		/* header fields folded or encoded */
	uint32_t	altered;	/* preamble/epilogue lines changed */
};

struct mime_enc;

/* A new encoder, ready for the first pass.  Never NULL; the caller
 * owns it and frees it with mime_enc_free() (NULL is a no-op). */
struct mime_enc	*mime_enc_new(void);
void		 mime_enc_free(struct mime_enc *e);

/* Asks for 7-bit output (RFC 6152 3: for an upstream without
 * 8BITMIME), before the first pass: a leaf body with octets over 0x7f
 * is re-encoded as well (quoted-printable or base64, as above), and
 * such octets in a preamble or epilogue become spaces.  A header field
 * with them fails the plan (MIME_EHEADER): 8-bit header text is not
 * converted. */
void		 mime_enc_set_7bit(struct mime_enc *e);

/* First pass: the message, in order, in chunks of any size. */
void		 mime_enc_scan(struct mime_enc *e, const char *p, size_t n);

/*
 * Ends the first pass.  Returns MIME_OK (a plan is ready), MIME_UNCHANGED
 * or an error (MIME_EHEADER, MIME_EENCODING, MIME_ESTRUCTURE,
 * MIME_ELIMIT): the message cannot be made conformant without loss, and
 * mime_enc_detail() says where, for the failure report.
 */
enum mime_rc	 mime_enc_plan(struct mime_enc *e);

/* After MIME_OK or MIME_UNCHANGED: the exact size of what
 * mime_enc_emit() writes (for SIZE=, RFC 1870). */
uint64_t	 mime_enc_size(const struct mime_enc *e);

/* After an error: where it was ("header field \"To\" ..."); "" else.
 * Borrowed until mime_enc_free(). */
const char	*mime_enc_detail(const struct mime_enc *e);

/* After mime_enc_plan(): what the plan changes, into <st>. */
void		 mime_enc_stats(const struct mime_enc *e,
		    struct mime_stats *st);

/*
 * Second pass, after MIME_OK (or MIME_UNCHANGED, which writes the
 * message as it is).  Starts over: feed the same octets again through
 * mime_enc_emit(), in chunks of any size; each call writes its output
 * through <cb> before it returns: at most about 3.2 times the chunk
 * (quoted-printable of binary octets), plus one header field held back
 * until its end (up to MIME_FIELD_MAX, about 4.3 times that once
 * repaired, 280 KB).  It may be started again to write the message once
 * more.  A last line without CRLF gets one.
 */
void		 mime_enc_emit_start(struct mime_enc *e,
		    void (*cb)(void *arg, const char *p, size_t n), void *arg);
void		 mime_enc_emit(struct mime_enc *e, const char *p, size_t n);

/* Ends the second pass, writing what is left.  Returns MIME_OK, or
 * MIME_EMISMATCH when the octets were not those of the first pass (then
 * the output must not be sent: end the connection without the final
 * dot), or the plan's error if there was no plan. */
enum mime_rc	 mime_enc_emit_end(struct mime_enc *e);

/* A short static text for <rc>, for logs and replies ("header field
 * cannot be made conformant"). */
const char	*mime_rc_str(enum mime_rc rc);

#endif /* MIME_H */
