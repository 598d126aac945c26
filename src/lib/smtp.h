/*
 * smtp.h - the pure part of the SMTP protocol: command and path parsing,
 * DATA line decoding (dot-unstuffing, line-ending policy, limits) and
 * dot-stuffing for output.  No I/O, no event loop: everything here is a
 * function of its arguments and is unit-tested directly.
 *
 * Strings handed in are NUL-terminated lines without their CRLF/LF.
 */
#ifndef SMTP_H
#define SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5321 section 4.5.3.1: size limits, in octets. */
#define SMTP_CMD_LINE_MAX	512	/* 4.5.3.1.4, including CRLF */
#define SMTP_TEXT_LINE_MAX	1000	/* 4.5.3.1.6, including CRLF */
#define SMTP_LOCAL_MAX		64	/* 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX		255	/* 4.5.3.1.2 */
#define SMTP_PATH_MAX		256	/* 4.5.3.1.3, including "<>" */
#define SMTP_HOPS_MAX		100	/* Received: headers before a loop */

/* Buffer size able to hold any accepted address plus its NUL. */
#define SMTP_ADDR_BUFSZ		(SMTP_PATH_MAX + 1)

enum smtp_verb {
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_UNKNOWN,
};

/* Parse results.  Each maps to one reply in the session. */
enum smtp_rc {
	SMTP_OK = 0,
	SMTP_ESYNTAX,		/* 501 5.5.4 malformed arguments */
	SMTP_EADDR,		/* 501 5.1.7 (MAIL) / 501 5.1.3 (RCPT) */
	SMTP_EPARAM,		/* 555 5.5.4 unknown or bad MAIL/RCPT param */
	SMTP_ETOOBIG,		/* 552 5.3.4 SIZE= over the limit */
};

enum smtp_body {
	SMTP_BODY_UNSPEC,
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
};

struct smtp_mail {
	char		path[SMTP_ADDR_BUFSZ];	/* "" for the null sender; may
						 * be a local part alone */
	uint64_t	size;			/* SIZE=, 0 when absent */
	enum smtp_body	body;
};

struct smtp_rcpt {
	char		path[SMTP_ADDR_BUFSZ];	/* never ""; may be a local
						 * part alone */
};

/* Splits a command line into its verb (case-insensitive) and arguments.
 * <*args> points into <line> after the verb and following spaces, or to
 * "" when there are none.  Unknown verbs give SMTP_VERB_UNKNOWN.  A verb
 * must be followed by a space or the end of the line ("MAILFROM" is
 * unknown). */
enum smtp_verb	smtp_parse_verb(const char *line, const char **args);

/* True when the line holds only printable ASCII, SP and HTAB: no NUL,
 * no CR, no other control bytes.  Used for command lines. */
bool		smtp_line_is_clean(const char *line, size_t len);

/* HELO/EHLO argument: one word of printable ASCII, at most 255 octets.
 * Copies it into <out>.  Returns SMTP_OK or SMTP_ESYNTAX (missing,
 * several words, too long). */
enum smtp_rc	smtp_parse_helo(const char *args, char *out, size_t outsz);

/* "FROM:<path> [params]" (RFC 5321 4.1.1.2, RFC 1870 SIZE, RFC 6152
 * BODY).  As Postfix does by default, blanks after the colon, a path
 * without angle brackets ("FROM:a@b SIZE=5") and a local part without
 * domain ("<scanner>", left for the caller to qualify) are tolerated;
 * nested brackets, control bytes and paths over SMTP_PATH_MAX are not.
 * <max_size> is the message size limit (SIZE=n above it gives
 * SMTP_ETOOBIG).  Source routes are accepted and dropped. */
enum smtp_rc	smtp_parse_mail(const char *args, uint64_t max_size,
		    struct smtp_mail *out);

/* "TO:<path> [params]", with the tolerances of smtp_parse_mail(): a
 * local part alone ("<postmaster>", RFC 5321 4.5.1, or "<root>") is
 * accepted as it is, for the caller to route.  No RCPT parameters are
 * supported (SMTP_EPARAM). */
enum smtp_rc	smtp_parse_rcpt(const char *args, struct smtp_rcpt *out);

/* Checks a mailbox "local@domain" (no angle brackets): dot-string or
 * quoted-string local part of at most 64 octets, a domain of LDH labels
 * or an address literal ([1.2.3.4], [IPv6:...]) of at most 255 octets,
 * ASCII only. */
bool		smtp_mailbox_is_valid(const char *mailbox);

/* Checks a Local-part alone ("root", "\"a b\""): a dot-string or
 * quoted-string of at most 64 octets, as in smtp_mailbox_is_valid(). */
bool		smtp_local_is_valid(const char *local);

/*
 * DATA decoding.  The session feeds each line of the message (content
 * without its terminator, and whether the terminator was CRLF) to
 * smtp_data_line(); a line too long for its buffer comes first in
 * pieces through smtp_data_piece(), then its last piece as the line.
 * The decoder finds the end of data (only a "." line that follows a
 * CRLF and ends with CRLF: no bare-LF or bare-CR variant ends a
 * message, and a piece never does), unstuffs leading dots, and records
 * the first policy violation.  Lines over 998 octets, bare CRs and NULs
 * are content, not violations (issue 13: the relay re-encodes them).
 * The caller writes the canonical content it returns (and, at the end
 * of each line, CRLF) to the spool unless an error is recorded.
 */
enum smtp_data_err {
	SMTP_DATA_OK = 0,
	SMTP_DATA_ESIZE,	/* message over the size limit: 552 5.3.4 */
	SMTP_DATA_EBARELF,	/* bare LF with bare_lf = reject: 554 5.6.0 */
	SMTP_DATA_ELOOP,	/* SMTP_HOPS_MAX Received: headers: 554 5.4.6 */
};

#define SMTP_DATA_HEAD	9	/* strlen("Received:") */

struct smtp_data {
	uint64_t		max_size;	/* set by smtp_data_init */
	bool			framed;		/* SMTP: stuffed dots, "."
						 * ends; else plain lines */
	bool			reject_bare_lf;
	bool			prev_crlf;	/* last line ended in CRLF */
	bool			in_headers;
	bool			midline;	/* pieces of a line came */
	uint64_t		linelen;	/* its canonical octets */
	char			head[SMTP_DATA_HEAD];	/* its start */
	unsigned int		hops;		/* Received: headers seen */
	uint64_t		size;		/* canonical octets so far */
	enum smtp_data_err	err;		/* first violation */
};

enum smtp_data_rc {
	SMTP_DATA_LINE,		/* a content line: *out, *outlen set */
	SMTP_DATA_END,		/* the end-of-data marker */
};

/* Starts decoding after the 354 reply.  <initial_size> counts octets the
 * server prepends itself (the Received: header). */
void		smtp_data_init(struct smtp_data *, uint64_t max_size,
		    bool reject_bare_lf, uint64_t initial_size);

/* Starts decoding lines that are not SMTP-framed (the maildrop): the
 * same limits, but no dot is unstuffed and nothing is the end of data,
 * so smtp_data_line() always returns SMTP_DATA_LINE.  Bare LF allowed. */
void		smtp_data_init_plain(struct smtp_data *, uint64_t max_size,
		    uint64_t initial_size);

/* Decodes one line, or the last piece of one.  <line>/<len> is the
 * content without terminator; <crlf> tells whether it ended in CRLF
 * (false: bare LF).  On SMTP_DATA_LINE, <*out>/<*outlen> is the
 * canonical content (a slice of <line>), to be written, then CRLF, only
 * while d->err == SMTP_DATA_OK. */
enum smtp_data_rc smtp_data_line(struct smtp_data *d, const char *line,
		    size_t len, bool crlf, const char **out, size_t *outlen);

/* Decodes a piece of a line that goes on (any length, even 0): the
 * first piece is the line's start (dot-unstuffed), the others follow
 * it.  <*out>/<*outlen> as for smtp_data_line(), written without CRLF.
 * Never the end of data. */
void		smtp_data_piece(struct smtp_data *d, const char *piece,
		    size_t len, const char **out, size_t *outlen);

/* The reply for a finished DATA phase with error <err> (not OK), e.g.
 * "552 5.3.4 Message size exceeds fixed limit".  Static string. */
const char	*smtp_data_err_reply(enum smtp_data_err err);

/* Dot-stuffing for output (RFC 5321 4.5.2): true when <line> needs an
 * extra leading "." before it is sent. */
bool		smtp_line_needs_stuffing(const char *line, size_t len);

#endif /* SMTP_H */
