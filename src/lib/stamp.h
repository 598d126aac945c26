/*
 * stamp.h - the Date: and Message-ID: fields a message must carry when
 * it leaves (RFC 5322 3.6: Date is required, Message-ID should be
 * there, and Gmail refuses mail without one).
 *
 * A scan follows the header section line by line as the message streams
 * past, in constant memory, and tells where the section ends; the
 * fields it did not see are then made here, once, at acceptance, so
 * that every retry and every upstream sends the same ones.  The one
 * Message-ID generator of smartrelay (the DSN has its own form).
 */
#ifndef STAMP_H
#define STAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Room stamp_missing() needs at most: both fields, any domain. */
#define STAMP_FIELDS_MAX	400

struct stamp_scan {
	bool	in_headers;	/* the header section goes on */
	bool	in_field;	/* a field started: blanks continue it */
	bool	mid_line;	/* the last piece did not end its line */
	bool	has_date;
	bool	has_msgid;
};

void	 stamp_scan_init(struct stamp_scan *);

/* Feeds one line of the message, without its line end, or a piece of
 * one: <eol> is false for a piece that its line goes on after (a line
 * too long to take at once), true otherwise; only a piece that starts
 * a line is looked at.  Returns true when the header section ends
 * before this line: at the empty line, or at a line that is neither a
 * field nor a field's continuation (the body of a message without the
 * empty line).  The caller writes the missing fields there, before the
 * line.  Returns false for the lines of the header section, for every
 * line after its end, and for a piece inside a line. */
bool	 stamp_scan_line(struct stamp_scan *, const char *line, size_t len,
	    bool eol);

/* For a scanner that finds the header lines itself: a field named by
 * the <n> octets at <name> (without the ':') starts here. */
void	 stamp_scan_field(struct stamp_scan *, const char *name, size_t n);

/* The fields the scan did not see, each line ending in <eol> ("\r\n"
 * or "\n"), into <buf>: "Date: <now, RFC 5322>" and "Message-ID:
 * <stamp_msgid()>".  Returns the length written (0 when nothing is
 * missing), or -1 when <bufsz> is too small (STAMP_FIELDS_MAX is
 * enough).  The new Message-ID goes to <msgid> (may be NULL), "" when
 * none was made. */
int	 stamp_missing(const struct stamp_scan *, int64_t now,
	    const char *domain, const char *eol, char *buf, size_t bufsz,
	    char *msgid, size_t msgidsz);

/* A new Message-ID, "<20231114231320.0123456789abcdef@domain>": the
 * local time (TIME_COMPACT), 64 random bits, the domain, as Postfix
 * makes them with its queue id.  The random part comes from getrandom()
 * without blocking, else from the clock, the pid and a counter, so it
 * differs between calls and processes either way.  Returns 0, or -1
 * when <bufsz> is too small. */
int	 stamp_msgid(int64_t now, const char *domain, char *buf,
	    size_t bufsz);

/* Length of the field name when <line> starts a header field ("Name:",
 * RFC 5322 3.6.8: printable ASCII but ':', at least one), else 0. */
size_t	 stamp_field_name(const char *line, size_t len);

#endif /* STAMP_H */
