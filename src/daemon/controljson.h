/*
 * controljson.h - JSON output for the control socket's answers.
 */
#ifndef CONTROLJSON_H
#define CONTROLJSON_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

struct evbuffer;

#define CONTROLJSON_TEXT_MAX	1024	/* error and reply strings */

/* Appends <n> octets of <s> as a JSON string: '"' and '\\' escaped,
 * control bytes, DEL and any octet outside valid UTF-8 as \u00XX, a NUL
 * as U+FFFD. */
void		 controljson_strn(struct evbuffer *, const char *s, size_t n);

/* A NUL-terminated string, at most CONTROLJSON_TEXT_MAX octets of it,
 * or null for NULL. */
void		 controljson_str(struct evbuffer *, const char *s);

/* {"error": <msg>, "code": <code>} and a newline. */
void		 controljson_error(struct evbuffer *, const char *code,
		    const char *msg);

/* The fields of an envelope ({"id": ..., "recipients": [...]), without
 * the closing brace, so that the caller can add its own; ages count
 * from <now>. */
void		 controljson_env(struct evbuffer *, const struct envelope *,
		    int64_t now);

/* ", "headers": ..., "headers_truncated": ..." for the data file at
 * <path>: its header section up to the first empty line, bounded. */
void		 controljson_headers(struct evbuffer *, const char *path);

#endif /* CONTROLJSON_H */
