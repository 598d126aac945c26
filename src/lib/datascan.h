/*
 * datascan.h - the DATA phase of an SMTP session in bulk: takes the
 * client's octets in spans of any size, cut anywhere, and hands on the
 * canonical message (CRLF lines, leading dots unstuffed) as spans of the
 * same input wherever nothing changes, so a body goes to the spool in
 * one write per span of input, with no line buffer.
 *
 * It keeps every rule of the line-based decoder (smtp_data_line() fed by
 * line_get_piece(), and stamp_scan_line()): only "." between CRLFs ends
 * the data, bare LFs become CRLF (or are refused), bare CRs, NULs and
 * long lines are content, the size limit, the Received: count, and the
 * point where the header section ends, for the missing Date: and
 * Message-ID:.  Pure code: no I/O, constant memory.
 */
#ifndef DATASCAN_H
#define DATASCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp.h"
#include "stamp.h"

/* Where the scanner sends the message: <put> gets each span of the
 * canonical message in order (borrowed for the call); <stamp> is called
 * once, where the header section ends, to write the missing fields, and
 * returns how many octets it wrote (they count against the size limit
 * from the next line on, as they did in msgin). */
struct datascan_sink {
	void	(*put)(void *arg, const char *p, size_t n);
	size_t	(*stamp)(void *arg);
	void	*arg;
};

/* Where in the current line the scanner is. */
enum datascan_at {
	DATASCAN_BOL,		/* nothing of the line seen */
	DATASCAN_DOT,		/* it began with ".": held */
	DATASCAN_DOTCR,		/* it began with ".\r": held */
	DATASCAN_HEAD,		/* its start is looked at octet by octet */
	DATASCAN_BODY,		/* only its end is looked for */
};

struct datascan {
	struct datascan_sink	 sink;
	uint64_t		 max_size;
	bool			 reject_bare_lf;
	enum smtp_data_err	 err;		/* first violation */
	uint64_t		 size;		/* canonical octets so far */
	uint64_t		 deferred;	/* stamp octets, uncounted */
	bool			 prev_crlf;	/* last line ended in CRLF */
	bool			 hops_on;	/* no empty line yet */
	unsigned int		 hops;		/* Received: lines seen */
	struct stamp_scan	 stamp;		/* Date:, Message-ID: seen */
	/* The current line. */
	enum datascan_at	 at;
	bool			 dotted;	/* a stuffing dot was dropped */
	bool			 last_cr;	/* its last octet was a CR */
	int			 rmatch;	/* of "Received:"; -1: not */
	uint64_t		 ulen;		/* unstuffed octets */
	uint64_t		 ucut;		/* ... in cut pieces */
	size_t			 pfill;		/* raw octets since a cut */
	unsigned int		 ncut;		/* pieces cut */
	bool			 holding;	/* is it a field?  Not known */
	size_t			 holdlen;
	char			 hold[SMTP_TEXT_LINE_MAX];
};

/* Starts a message after the 354 reply; <initial_size> counts octets the
 * server wrote itself (the Received: header).  <sink> is copied. */
void	datascan_init(struct datascan *, const struct datascan_sink *sink,
	    uint64_t max_size, bool reject_bare_lf, uint64_t initial_size);

/* Scans <p>/<n>, the next octets from the client, and hands the message
 * they hold to the sink (nothing more once an error is recorded in
 * ds->err).  Returns how many octets it consumed: all <n>, or fewer when
 * the end-of-data line ends inside them, which sets <*end>; the octets
 * after it are the client's next commands. */
size_t	datascan_feed(struct datascan *, const char *p, size_t n, bool *end);

/* Counts <n> octets the caller wrote itself at the end (the fields of a
 * message that is all header section). */
void	datascan_add(struct datascan *, size_t n);

#endif /* DATASCAN_H */
