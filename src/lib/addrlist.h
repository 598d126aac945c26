/*
 * addrlist.h - the one RFC 5322 address-list parser (section 3.4):
 * To:/Cc:/Bcc: for the injector's -t, its -f and recipient arguments,
 * and From:/Sender: for the From: rewrite.
 *
 * Pure code: a value in (unfolded: no CRLF line breaks), slices of it
 * out, through a callback.  Accepted: mailboxes "[phrase] <addr>",
 * "addr-spec", "addr-spec (comment)", a bare local part ("root"),
 * groups "name: a, b;" (empty ones too), nested comments, quoted
 * strings, domain literals, and the obsolete forms Postfix takes
 * (RFC 5322 4.4): empty list elements (",,"), a source route before
 * the address ("<@a,@b:user@c>", dropped), '.' in a phrase.
 * Anything else fails the whole value, naming the element.
 */
#ifndef ADDRLIST_H
#define ADDRLIST_H

#include <stdbool.h>
#include <stddef.h>

/* One mailbox, as slices of the value handed to addrlist_parse(). */
struct addrlist_mbox {
	const char	*phrase;	/* display name before '<', or NULL */
	size_t		 phraselen;
	const char	*addr;		/* the address as written: within
					 * <> trimmed, source route dropped */
	size_t		 addrlen;
	const char	*cmt;		/* the last comment of an addr-spec
					 * form ("a@b (Name)"), or NULL */
	size_t		 cmtlen;
	bool		 in_group;
};

/* What a whole value held. */
struct addrlist_info {
	size_t		 nmbox;
	size_t		 ngroups;
	size_t		 nempty;	/* empty elements (obsolete) */
	const char	*bad;		/* on a syntax error: the element */
	size_t		 badlen;
};

/* Called for each mailbox in order; returning -1 stops the parse. */
typedef int	(*addrlist_cb)(void *arg, const struct addrlist_mbox *mb);

/*
 * Parses the address list <v>/<n>, calling <cb> (unless NULL) with each
 * mailbox.  Returns 0 when all of it parsed; -1 on a syntax error
 * (info->bad/badlen: the element that failed, up to where it failed)
 * or when <cb> returned -1.  <info> is filled in both cases.  Never
 * reads past v + n, never recurses.
 */
int	addrlist_parse(const char *v, size_t n, addrlist_cb cb, void *arg,
	    struct addrlist_info *info);

/* Copies the address of <mb> into <out> without comments and white
 * space outside quoted strings ("a(x)@ b" gives "a@b").  Returns 0, or
 * -1 when it does not fit in <outsz> octets with its NUL. */
int	addrlist_addr_copy(const struct addrlist_mbox *mb, char *out,
	    size_t outsz);

/* One word of a phrase (a display name): an atom, the content of a
 * quoted string (quoted pairs still escaped), or a special. */
struct addrlist_word {
	const char	*p;
	size_t		 len;
	bool		 quoted;	/* it was a quoted string */
	bool		 spaced;	/* white space or a comment before it */
};

/* Reads the next word of the phrase <*p>..<end> (comments skipped),
 * moving *p past it.  False at the end, or at what is no word (an
 * unterminated quoted string or comment). */
bool	addrlist_phrase_word(const char **p, const char *end,
	    struct addrlist_word *w);

#endif /* ADDRLIST_H */
