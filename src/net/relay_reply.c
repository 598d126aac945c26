/*
 * relay_reply.c - reads the smarthost's replies (relay_reply.h).
 */
#include "config.h"

#include "relay_reply.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

const char *
relay_reply_text(const char *reply)
{
	return strlen(reply) > 4 ? reply + 4 : "";
}

enum relay_status
relay_classify(int code, const char *text)
{
	/* Gmail's sending limits: pause, never bounce. */
	if ((code == 550 && strncmp(text, "5.4.5", 5) == 0) ||
	    (code == 450 && strncmp(text, "4.2.1", 5) == 0))
		return RELAY_QUOTA;
	if (code >= 200 && code < 400)
		return RELAY_OK;
	if (code >= 400 && code < 500)
		return RELAY_TEMPFAIL;
	return RELAY_PERMFAIL;
}

void
relay_reply_init(struct relay_reply *r)
{
	line_reader_init(&r->reader, RELAY_REPLY_LINE_MAX);
	r->replylen = 0;
	r->code = 0;
	r->reply[0] = '\0';
}

int
relay_reply_read(struct relay_reply *r, struct evbuffer *in,
    void (*more)(void *arg, const char *text), void *arg,
    const char **error)
{
	size_t		 len, n;
	bool		 crlf, last;
	int		 code;

	for (;;) {
		switch (line_get(&r->reader, in, r->line, &len, &crlf)) {
		case LINE_AGAIN:
			return 0;
		case LINE_TOOLONG:
			*error = "reply line too long";
			return -1;
		case LINE_OK:
			break;
		}
		if (len < 3 || r->line[0] < '2' || r->line[0] > '5' ||
		    r->line[1] < '0' || r->line[1] > '9' ||
		    r->line[2] < '0' || r->line[2] > '9' ||
		    (len > 3 && r->line[3] != ' ' && r->line[3] != '-')) {
			*error = "malformed reply";
			return -1;
		}
		code = atoi(r->line);
		last = len == 3 || r->line[3] == ' ';
		if (r->replylen > 0 && code != r->code) {
			*error = "inconsistent multi-line reply";
			return -1;
		}
		r->code = code;
		if (more != NULL && r->replylen > 0 && len > 4)
			more(arg, r->line + 4);
		/* Keep "250 text; more text" for logs and reports. */
		if (r->replylen == 0) {
			n = (size_t)snprintf(r->reply, sizeof(r->reply), "%s",
			    r->line);
		} else {
			n = r->replylen + (size_t)snprintf(r->reply +
			    r->replylen, sizeof(r->reply) - r->replylen,
			    " %s", len > 4 ? r->line + 4 : "");
		}
		r->replylen = n < sizeof(r->reply) ? n : sizeof(r->reply) - 1;
		if (last) {
			r->replylen = 0;
			return 1;
		}
		if (r->replylen == 0)
			r->replylen = 1;
	}
}
