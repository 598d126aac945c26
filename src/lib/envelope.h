/*
 * envelope.h - the envelope of a queued message and its text format.
 *
 * Pure code: formats a struct envelope into a memory buffer and parses
 * one back, with no files, no threads and no logging, so that it can be
 * unit-tested and fuzzed directly.  The spool does the file I/O.  The
 * format itself is described at the top of envelope.c.
 */
#ifndef ENVELOPE_H
#define ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENVELOPE_ID_LEN		16	/* hex digits of a message id */
#define ENVELOPE_MAX		(4 * 1024 * 1024) /* largest envelope text */
#define ENVELOPE_FIELD_MAX	1024	/* address, helo, client octets */

enum envelope_rcpt_state {
	ENVELOPE_RCPT_PENDING,
	ENVELOPE_RCPT_SENT,
	ENVELOPE_RCPT_FAILED,
};

/* What the client declared with BODY= (RFC 6152). */
enum envelope_body {
	ENVELOPE_BODY_UNSPEC,
	ENVELOPE_BODY_7BIT,
	ENVELOPE_BODY_8BITMIME,
};

/* Where the data holds octets over 0x7f, as the spool found it. */
enum envelope_8bit {
	ENVELOPE_8BIT_NONE,		/* 7-bit, or not known (an envelope
					 * written before the field) */
	ENVELOPE_8BIT_BODY,		/* in the body only */
	ENVELOPE_8BIT_HEADER,		/* in the header section */
};

struct envelope_rcpt {
	char				*addr;
	enum envelope_rcpt_state	 state;
	char				*dsn;	/* "5.1.1", or NULL */
	char				*reply;	/* last upstream reply or NULL */
};

/* The envelope of a committed message.  Strings are owned by the
 * envelope and freed by envelope_cleanup(). */
struct envelope {
	char			 id[ENVELOPE_ID_LEN + 1];
	char			*sender;	/* "" is the null sender */
	char			*client;	/* client address "127.0.0.1" */
	char			*helo;
	int64_t			 arrival;	/* unix time */
	uint64_t		 size;		/* data file octets */
	unsigned int		 attempts;
	int64_t			 next_attempt;	/* unix time, 0 = now */
	bool			 held;
	bool			 reencode;	/* data needs mime.h before
						 * relaying (written by the
						 * spool, read by the relay) */
	enum envelope_body	 body;		/* BODY= of the client */
	bool			 smtputf8;	/* SMTPUTF8 asked for (RFC
						 * 6531), or an address is
						 * UTF-8 */
	enum envelope_8bit	 eightbit;	/* found by the spool */
	char			*last_error;	/* or NULL */
	struct envelope_rcpt	*rcpts;
	size_t			 nrcpt;
};

/* Why envelope_parse() refused a text: <reason> is a static token such
 * as "no-end" or "bad-number", <line> the 1-based line it was found on. */
struct envelope_error {
	const char	*reason;
	size_t		 line;
};

/* True iff <s> is exactly ENVELOPE_ID_LEN lowercase hex digits.  Ids
 * become file names, so nothing else (no '/', no "..") passes. */
bool		 envelope_id_is_valid(const char *s);

/* True iff <s> is non-NULL, at most ENVELOPE_FIELD_MAX octets, and not
 * empty unless <allow_empty>: what envelope_format() accepts as sender,
 * client, helo (empty allowed) or recipient address (not empty). */
bool		 envelope_field_is_valid(const char *s, bool allow_empty);

/* Appends recipient <addr> (copied) to <env>, pending, without DSN or
 * reply.  Returns 0, or -1 with errno EINVAL if <addr> fails
 * envelope_field_is_valid(addr, false); <env> is then unchanged. */
int		 envelope_add_rcpt(struct envelope *env, const char *addr);

/* Makes the envelope of a message kept in failed/ ready to be sent
 * again at <now>: each FAILED recipient becomes PENDING (its status code
 * and reply dropped) while SENT ones stay sent, never to be sent twice;
 * attempts start again from 0, the message is due at once, not held,
 * has no last error, and its lifetime starts again (arrival = <now>).
 * Returns the number of recipients made pending. */
size_t		 envelope_requeue(struct envelope *env, int64_t now);

/* Formats <env> as envelope text into a new NUL-terminated buffer *out
 * of *outlen octets (the NUL not counted); the caller frees *out.
 * client and helo may be NULL (written empty); an unknown rcpt DSN is
 * written as "-" and control bytes in error and reply text as spaces.
 * Returns 0, or -1 with errno EINVAL and *out NULL when the envelope
 * would not parse again: invalid id, negative time, no recipient, a
 * field failing envelope_field_is_valid(), a bad rcpt state, or text
 * longer than ENVELOPE_MAX. */
int		 envelope_format(const struct envelope *env, char **out,
		    size_t *outlen);

/* Parses the <len> octets at <buf> (no NUL needed) into <env>, which
 * need not be initialised.  The text must be a complete envelope whose
 * id is <expect_id>.  On success client and helo are never NULL (""
 * when absent) and the caller owns <env> until envelope_cleanup().
 * Returns 0, or -1 with <env> cleaned up (all zero) and, if <err> is
 * not NULL, the reason and line stored there.  Never reads past
 * <buf> + <len>, whatever the bytes. */
int		 envelope_parse(struct envelope *env, const char *buf,
		    size_t len, const char *expect_id,
		    struct envelope_error *err);

/* Frees the strings and recipients of <env> and zeroes it; safe on a
 * zeroed or already cleaned-up envelope. */
void		 envelope_cleanup(struct envelope *env);

#endif /* ENVELOPE_H */
