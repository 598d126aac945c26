/*
 * mimeleaf.h - one leaf body of a message through the re-encoder's two
 * passes (mime.c).  The first pass copies the body as it is and, beside
 * it, runs the candidate encoder into a counter, and notes whether the
 * body needs re-encoding and its charset; the second pass copies it or
 * encodes it, as planned.
 *
 * Pure code, O(1) memory (the encoder's state, mimebody.h).  Output
 * goes through a callback.
 */
#ifndef MIMELEAF_H
#define MIMELEAF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mimebody.h"
#include "mimefield.h"

enum mimeleaf_action {
	MIMELEAF_NONE,
	MIMELEAF_QP,			/* raw to quoted-printable */
	MIMELEAF_B64,			/* raw to base64 */
	MIMELEAF_QP_FIX,		/* quoted-printable repaired */
	MIMELEAF_B64_FIX,		/* base64 re-wrapped */
};

enum mimeleaf_cs {
	MIMELEAF_CS_ASCII,
	MIMELEAF_CS_UTF8,
	MIMELEAF_CS_8BIT,
};

/* UTF-8 check of a body as it streams: a character may straddle. */
struct mimeleaf_u8 {
	unsigned char	c[4];
	size_t		n;
	bool		ascii, valid;
};

struct mimeleaf {
	enum mimeleaf_action	 action;
	bool			 scan;		/* the first pass */
	bool			 needs;		/* scan: it must be
						 * re-encoded */
	bool			 eol_pending;	/* a CRLF not yet encoded */
	uint64_t		 verb;		/* scan: octets as it is */
	uint64_t		 alt;		/* scan: octets encoded */
	struct mimeleaf_u8	 u8;
	struct mimebody		 body;		/* the encoder */
	struct mimebody_out	 out;
};

/* The action for a body in <cte> of <type>, should it need one: raw
 * octets are encoded (base64 for types that are not lines), an encoding
 * we know is repaired, one we do not know cannot be re-encoded. */
enum mimeleaf_action mimeleaf_action(enum mimefield_cte cte,
	    enum mimefield_type type);

/* True for the actions that encode raw octets (a new
 * Content-Transfer-Encoding). */
bool	mimeleaf_action_is_raw(enum mimeleaf_action a);

/* Starts a body with <action> (the candidate in the first pass, the
 * plan's in the second), writing through <out>. */
void	mimeleaf_start(struct mimeleaf *, enum mimeleaf_action action,
	    bool scan, const struct mimebody_out *out);

/* Content of the body; <col>: octets of the line before it. */
void	mimeleaf_data(struct mimeleaf *, const char *p, size_t n, size_t col);

/* A line break of the body.  The encoder gets it only when more of the
 * body follows: before a delimiter it belongs to the delimiter. */
void	mimeleaf_eol(struct mimeleaf *);

/* Ends the body, at a boundary delimiter (<delim>) or at the end of
 * the message, and stores its charset in *cs.  Returns 0, or -1 when
 * the encoder failed (mimebody_finish()). */
int	mimeleaf_end(struct mimeleaf *, bool delim, enum mimeleaf_cs *cs);

#endif /* MIMELEAF_H */
