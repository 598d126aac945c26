/*
 * rewrite.h - From: rewriting for upstreams that only send as their
 * own account (Gmail), keeping the original author visible.
 *
 * Pure code: a header block in, a new header block out, no files and no
 * logging.  Only From:, Sender: and the fields it adds change; every
 * other header line is copied byte for byte, so a DKIM signature over
 * other fields stays valid (one over From: breaks: that is the choice
 * the user made by configuring the rewrite).
 */
#ifndef REWRITE_H
#define REWRITE_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

#define REWRITE_HEADER_MAX	(256 * 1024)	/* longest header block */
#define REWRITE_LINE_MAX	998	/* RFC 5322 2.1.1, without CRLF */

enum rewrite_rc {
	REWRITE_OK,		/* the new header block was written */
	REWRITE_UNCHANGED,	/* From: already is the account: send the
				 * message as it is */
	REWRITE_ETOOBIG,	/* header block over REWRITE_HEADER_MAX */
	REWRITE_ELONGLINE,	/* a line over REWRITE_LINE_MAX, or a field
				 * we would write could not be folded under
				 * it */
	REWRITE_EMALFORMED,	/* not CRLF header lines: bare CR or LF, a
				 * NUL, a line that is no field, a partial
				 * last line */
	REWRITE_EPARAM,		/* the account is not a plain mailbox, or
				 * display/suffix hold CR, LF or NUL */
};

struct rewrite_params {
	const char	*account;	/* "user@gmail.com", no brackets */
	const char	*display;	/* the client network's name, or NULL
					 * or "" to use the original's */
	const char	*suffix;	/* appended to the display name, such
					 * as " via smartrelay"; NULL is "" */
};

/* Finds the header block at the start of the <len> octets at <buf>:
 * canonical CRLF lines up to and including the first empty one.  When
 * there is no empty line, the block is all of <buf> if <eof> says the
 * message ends there (a message without body); otherwise <buf> must
 * hold at least REWRITE_HEADER_MAX octets, or the block is too big.
 * Returns REWRITE_OK with *hlen set, or ETOOBIG, ELONGLINE, EMALFORMED.
 * Never reads past <buf> + <len>. */
enum rewrite_rc	rewrite_header_len(const char *buf, size_t len, bool eof,
		    size_t *hlen);

/*
 * Rewrites the header block <hdr>/<len> (as rewrite_header_len() finds
 * it; it need not end with an empty line) and appends the new block to
 * <out>.  The first From: becomes
 *	From: "<display><suffix>" <account>
 * where display is params->display when set, else the original display
 * name (encoded words kept as they are), else the comment of an
 * "addr (Name)" From, else the original address.  The phrase is a
 * quoted string (RFC 5322 3.2.4) when it is printable ASCII, and RFC
 * 2047 Q encoded words (UTF-8, or ISO-8859-1 for bytes that are not
 * UTF-8) otherwise.  Right after it come "X-Original-From:" with each
 * original From: value and, when the message has no Reply-To: and one
 * From: with mailboxes that all have a domain, "Reply-To:" with the
 * original value.  Several From: fields, groups and values that do not
 * parse: the display is params->display alone (no suffix without it)
 * and no Reply-To: is added.  No From: at all: one is added at the end
 * of the block, without X-Original-From:.  A Sender: naming anyone but
 * the account would say that someone else sent the account's mail: it
 * is renamed "X-Original-Sender:", value kept.  Fields we write are
 * unfolded and refolded at whitespace (78 octets when possible, never
 * over 998).
 * Returns REWRITE_OK (something appended to <out>), or another code with
 * <out> unchanged: UNCHANGED when the one From: is already exactly the
 * account, or an error from rewrite_header_len() / REWRITE_EPARAM, after
 * which the caller sends the message as it is.
 */
enum rewrite_rc	rewrite_from(const char *hdr, size_t len,
		    const struct rewrite_params *params, struct buf *out);

/* A short static name for <rc> for log lines ("too-big"). */
const char	*rewrite_rc_str(enum rewrite_rc rc);

#endif /* REWRITE_H */
