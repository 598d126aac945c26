/*
 * mimefield.h - one header field of a message or a MIME part: what its
 * Content-Type and Content-Transfer-Encoding say (RFC 2045, 2046), and
 * its repair when a line is over 998 octets or it holds a bare CR, LF
 * or NUL (RFC 5322 2.1.1, 2.2).
 *
 * Pure code, no I/O.  A field here is its raw octets as they stand in
 * the header: the name, the colon, the value, each line with its CRLF
 * (the last one included).  A CRLF is always a line end; a CR or LF
 * not in a CRLF is data.
 */
#ifndef MIMEFIELD_H
#define MIMEFIELD_H

#include <stdbool.h>
#include <stddef.h>

#define MIMEFIELD_LINE_MAX	998	/* RFC 5322 2.1.1, without CRLF */
#define MIMEFIELD_FOLD		78	/* RFC 5322 2.1.1 SHOULD */
#define MIMEFIELD_BOUNDARY_MAX	200	/* RFC 2046 says 70; we read more */
#define MIMEFIELD_WORD_MAX	900	/* longer words get encoded */

/* What a Content-Type makes of an entity. */
enum mimefield_type {
	MIMEFIELD_TEXT,		/* text/any, and any value we cannot read
				 * (RFC 2045 5.2: the default) */
	MIMEFIELD_MULTIPART,	/* multipart/any */
	MIMEFIELD_RFC822,	/* message/rfc822 */
	MIMEFIELD_MESSAGE,	/* other message/any (line-oriented) */
	MIMEFIELD_OTHER,	/* anything else: octets, not lines */
};

struct mimefield_ctype {
	enum mimefield_type	type;
	bool			digest;		/* multipart/digest */
	size_t			blen;		/* 0: no usable boundary */
	char			boundary[MIMEFIELD_BOUNDARY_MAX + 1];
};

enum mimefield_cte {
	MIMEFIELD_CTE_IDENTITY,	/* 7bit, 8bit, binary, an empty value */
	MIMEFIELD_CTE_QP,	/* quoted-printable */
	MIMEFIELD_CTE_BASE64,	/* base64 */
	MIMEFIELD_CTE_OTHER,	/* x-uuencode and the like */
};

enum mimefield_rc {
	MIMEFIELD_CLEAN,	/* conformant: send it as it is */
	MIMEFIELD_FIXED,	/* the repaired field was returned */
	MIMEFIELD_ELONG,	/* a line over 998 octets and no lossless way
				 * to fold it */
	MIMEFIELD_EOCTET,	/* a bare CR, LF or NUL in a field that RFC
				 * 2047 does not let us encode */
};

/* The length of the field name that starts <f>/<len> when it is
 * printable ASCII without ':', then optional white space and ':' (RFC
 * 5322 3.6.8, with obsolete white space before the colon); 0 when <f>
 * does not start a field. */
size_t	mimefield_name_len(const char *f, size_t len);

/* True when field <f>/<len> is named <name> (ASCII, any case). */
bool	mimefield_is(const char *f, size_t len, const char *name);

/* True when every line of <f>/<len> ends in CRLF within 998 octets
 * and no CR, LF or NUL stands elsewhere. */
bool	mimefield_is_clean(const char *f, size_t len);

/* Reads a Content-Type field (RFC 2045 5.1, comments allowed).  A
 * value without a type/subtype reads as text; a multipart without a
 * boundary of 1 to MIMEFIELD_BOUNDARY_MAX octets free of CR, LF and NUL
 * gets blen 0.  Only the first "boundary" parameter counts. */
void	mimefield_ctype(const char *f, size_t len, struct mimefield_ctype *ct);

/* Reads a Content-Transfer-Encoding field (RFC 2045 6.1). */
enum mimefield_cte mimefield_cte(const char *f, size_t len);

/*
 * Makes field <f>/<len> conformant without changing what a reader
 * gets from it.  A field with only over-long lines is folded before
 * existing white space (RFC 5322 2.2.3: unfolding gives it back); only
 * lines over 998 octets are touched, cut at 78 octets where possible.
 * When that is not enough or a CR, LF or NUL is in the way, and the
 * field is unstructured text where RFC 2047 5 (1) allows encoded words
 * (Subject, Comments, Content-Description, Organization, Thread-Topic,
 * X-*), the words holding those octets or too long to fit a line
 * (over MIMEFIELD_WORD_MAX) become Q encoded words (UTF-8, or
 * unknown-8bit when the octets are not UTF-8, RFC 1428); white space
 * next to an original encoded word goes inside ours, where decoders
 * keep it (RFC 2047 6.2).  Then the field is folded as above.
 * Returns CLEAN (nothing written), FIXED with *out (caller frees) and
 * *outlen set, or ELONG / EOCTET.
 */
enum mimefield_rc mimefield_fix(const char *f, size_t len, char **out,
		    size_t *outlen);

/*
 * One header field as it streams in (the re-encoder's), kept whole up
 * to <max> octets so that it can be read and repaired; beyond that it
 * streams through <cb> as it is, and <dirty> tells whether it needed a
 * repair it could not get.
 */
struct mimefield_in {
	char	*p;			/* the field so far */
	size_t	 len, cap, max;
	bool	 open;			/* a field is being read */
	bool	 over;			/* over <max>: not kept */
	bool	 dirty;			/* over, and not conformant */
	int	 name;			/* where its name check stands */
	char	 start[40];		/* its first octets, to name it */
	size_t	 startlen;		/* when it is not kept */
	void	(*cb)(void *arg, const char *p, size_t n);
	void	*arg;
};

/* Sets up <fi> (no field open); <cb> takes what goes over <max>. */
void	mimefield_in_init(struct mimefield_in *fi, size_t max,
	    void (*cb)(void *, const char *, size_t), void *arg);
void	mimefield_in_free(struct mimefield_in *fi);

/* A line that may start a field begins. */
void	mimefield_in_start(struct mimefield_in *fi);

/* Checks the next octets of the field's first line, <col> octets into
 * it, against RFC 5322 3.6.8 (name, white space, colon, within 998
 * octets).  False when the line cannot be a field. */
bool	mimefield_in_name(struct mimefield_in *fi, const char *p, size_t n,
	    size_t col);

/* True once the first line had its colon. */
bool	mimefield_in_is_field(const struct mimefield_in *fi);

/* Adds octets of a line <col> octets in, or (<eol>) the CRLF that ends
 * one. */
void	mimefield_in_add(struct mimefield_in *fi, const char *p, size_t n,
	    bool eol, size_t col);

#endif /* MIMEFIELD_H */
