/*
 * controljson.c - the JSON the control socket answers with, appended to
 * an evbuffer as it forms (a queue of 10,000 messages is a chain of
 * evbuffer chunks, never one big allocation).  Every string that came
 * from a client, a message or the upstream goes through
 * controljson_str(), lib/json.c's json_put_str(), which escapes what
 * JSON requires and any byte that is not part of valid UTF-8.
 */
#include "config.h"

#include "controljson.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "json.h"
#include "util.h"

#define CONTROLJSON_HEADERS_MAX	(64 * 1024)	/* "show": header section */

/* Appends <n> octets of <s> as a JSON string: '"' and '\\' escaped,
 * control bytes, DEL and any octet outside valid UTF-8 as \u00XX, a
 * NUL as U+FFFD. */
static void
controljson_put(void *arg, const void *p, size_t n)
{
	evbuffer_add(arg, p, n);
}

void
controljson_strn(struct evbuffer *out, const char *s, size_t n)
{
	json_put_str(controljson_put, out, s, n);
}

/* A NUL-terminated string, at most CONTROLJSON_TEXT_MAX octets of it, or
 * null for NULL. */
void
controljson_str(struct evbuffer *out, const char *s)
{
	size_t	n;

	if (s == NULL) {
		evbuffer_add(out, "null", 4);
		return;
	}
	n = strnlen(s, CONTROLJSON_TEXT_MAX);
	controljson_strn(out, s, n);
}

/* {"error": <msg>, "code": <code>} */
void
controljson_error(struct evbuffer *out, const char *code, const char *msg)
{
	evbuffer_add_printf(out, "{\"error\": ");
	controljson_str(out, msg);
	evbuffer_add_printf(out, ", \"code\": \"%s\"}\n", code);
}

static const char *const controljson_rcpt_state[] = {
	[ENVELOPE_RCPT_PENDING] = "pending",
	[ENVELOPE_RCPT_SENT] = "sent",
	[ENVELOPE_RCPT_FAILED] = "failed",
};

/* The fields of an envelope, without the closing brace, so that the
 * caller can add its own. */
void
controljson_env(struct evbuffer *out, const struct envelope *env,
    int64_t now)
{
	const struct envelope_rcpt	*rc;
	size_t				 i;

	evbuffer_add_printf(out, "{\"id\": \"%s\", \"arrival\": %" PRId64
	    ", \"age_s\": %" PRId64 ", \"size\": %" PRIu64 ", \"sender\": ",
	    env->id, env->arrival, now > env->arrival ? now - env->arrival :
	    0, env->size);
	controljson_str(out, env->sender);
	evbuffer_add_printf(out, ", \"client\": ");
	controljson_str(out, env->client);
	evbuffer_add_printf(out, ", \"helo\": ");
	controljson_str(out, env->helo);
	evbuffer_add_printf(out, ", \"attempts\": %u, \"next_attempt\": %"
	    PRId64 ", \"held\": %s, \"last_error\": ", env->attempts,
	    env->next_attempt, env->held ? "true" : "false");
	controljson_str(out, env->last_error);
	evbuffer_add_printf(out, ", \"recipients\": [");
	for (i = 0; i < env->nrcpt; i++) {
		rc = &env->rcpts[i];
		evbuffer_add_printf(out, "%s{\"addr\": ", i > 0 ? ", " : "");
		controljson_str(out, rc->addr);
		evbuffer_add_printf(out, ", \"state\": \"%s\", \"dsn\": ",
		    rc->state < nitems(controljson_rcpt_state) ?
		    controljson_rcpt_state[rc->state] : "unknown");
		controljson_str(out, rc->dsn);
		evbuffer_add_printf(out, ", \"reply\": ");
		controljson_str(out, rc->reply);
		evbuffer_add_printf(out, "}");
	}
	evbuffer_add_printf(out, "]");
}


/* Appends the header section of the data file at <path> (up to the
 * first empty line, at most CONTROLJSON_HEADERS_MAX octets) as a string. */
void
controljson_headers(struct evbuffer *out, const char *path)
{
	char	*buf, *end;
	size_t	 len = 0;
	ssize_t	 n;
	bool	 complete = false;
	int	 fd;

	buf = xmalloc(CONTROLJSON_HEADERS_MAX);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		while (len < CONTROLJSON_HEADERS_MAX && (n = read(fd, buf + len,
		    CONTROLJSON_HEADERS_MAX - len)) > 0)
			len += (size_t)n;
		close(fd);
	}
	/* The spool holds canonical CRLF lines (RFC 5322 section 2.1). */
	if (len >= 2 && memcmp(buf, "\r\n", 2) == 0) {
		len = 0;
		complete = true;
	} else if ((end = memmem(buf, len, "\r\n\r\n", 4)) != NULL) {
		len = (size_t)(end - buf) + 2;
		complete = true;
	}
	evbuffer_add_printf(out, ", \"headers\": ");
	controljson_strn(out, buf, len);
	evbuffer_add_printf(out, ", \"headers_truncated\": %s",
	    complete ? "false" : "true");
	free(buf);
}
