/*
 * relay_reply.h - reads the smarthost's replies (RFC 5321 4.2): one
 * complete, possibly multi-line, reply at a time from the connection's
 * input, checked for form, its lines joined for logs and reports; and
 * what a reply means (relay_classify()).
 */
#ifndef RELAY_REPLY_H
#define RELAY_REPLY_H

#include <stddef.h>

#include "line.h"
#include "relay.h"

struct evbuffer;

#define RELAY_REPLY_LINE_MAX	2048
#define RELAY_REPLY_TEXT_MAX	512

struct relay_reply {
	struct line_reader	 reader;
	char			 line[RELAY_REPLY_LINE_MAX + 1];
	char			 reply[RELAY_REPLY_TEXT_MAX]; /* "250 text;
						 * more text", truncated */
	size_t			 replylen;	/* 0 between replies */
	int			 code;
};

/* Starts afresh: no reply, no partial line. */
void	relay_reply_init(struct relay_reply *);

/* Reads one complete reply from <in> into r->code and r->reply.  Each
 * line after the first is also given to <more> (when not NULL) without
 * its code, as EHLO's keywords are.  Returns 1 when one is ready, 0 when
 * more input is needed, -1 on a malformed reply, <*error> saying how. */
int	relay_reply_read(struct relay_reply *r, struct evbuffer *in,
	    void (*more)(void *arg, const char *text), void *arg,
	    const char **error);

/* The text after the code of <reply> ("250 2.1.5 ok"), or "". */
const char *relay_reply_text(const char *reply);

/* Classification of an upstream reply: <code> is the 3-digit code,
 * <text> the reply text after it. */
enum relay_status relay_classify(int code, const char *text);

#endif /* RELAY_REPLY_H */
