/*
 * json.c - a strict JSON reader (RFC 8259) into a tree.
 *
 * Bounded: the input length is the caller's, nesting is limited, and a
 * decoded string is never longer than its JSON text.  Numbers are kept
 * both as a double (the daemon sends only integers below 2^53, which a
 * double holds exactly) and as written, for callers that need exact
 * integer checks (expires_in).
 */
#include "config.h"

#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct json_parser {
	const char	*p, *end;
	int		 depth;
};

static int	json_value(struct json_parser *, struct json *);

void
json_free(struct json *v)
{
	size_t	i;

	if (v->type == JSON_ARR || v->type == JSON_OBJ) {
		for (i = 0; i < v->n; i++) {
			json_free(&v->items[i]);
			if (v->keys != NULL) {
				explicit_bzero(v->keys[i], strlen(v->keys[i]));
				free(v->keys[i]);
			}
		}
		free(v->items);
		free(v->keys);
	} else if (v->str != NULL)
		explicit_bzero(v->str, v->n);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

static void
json_ws(struct json_parser *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' ||
	    *jp->p == '\n' || *jp->p == '\r'))
		jp->p++;
}

/* Appends code point <cp> as UTF-8; surrogates and NUL are refused. */
static int
json_put_utf8(char *buf, size_t *len, unsigned long cp)
{
	if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return -1;
	if (cp < 0x80)
		buf[(*len)++] = (char)cp;
	else if (cp < 0x800) {
		buf[(*len)++] = (char)(0xc0 | (cp >> 6));
		buf[(*len)++] = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		buf[(*len)++] = (char)(0xe0 | (cp >> 12));
		buf[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[(*len)++] = (char)(0x80 | (cp & 0x3f));
	} else {
		buf[(*len)++] = (char)(0xf0 | (cp >> 18));
		buf[(*len)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
		buf[(*len)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[(*len)++] = (char)(0x80 | (cp & 0x3f));
	}
	return 0;
}

/* Four hex digits after "\u".  Returns the value or -1. */
static long
json_hex4(struct json_parser *jp)
{
	long	v = 0;
	int	i, c;

	if (jp->end - jp->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		c = (unsigned char)*jp->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* One escape sequence, after its backslash, appended to <buf>. */
static int
json_escape(struct json_parser *jp, char *buf, size_t *len)
{
	static const char	 from[] = "\"\\/bfnrt";
	static const char	 to[] = "\"\\/\b\f\n\r\t";
	const char		*e;
	long			 cp, lo;

	if (jp->p >= jp->end)
		return -1;
	if (*jp->p != 'u') {
		if (*jp->p == '\0' || (e = strchr(from, *jp->p)) == NULL)
			return -1;
		buf[(*len)++] = to[e - from];
		jp->p++;
		return 0;
	}
	jp->p++;
	if ((cp = json_hex4(jp)) == -1)
		return -1;
	/* A high surrogate must be followed by a low one: together they
	 * are one code point (RFC 8259 section 7). */
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (jp->end - jp->p < 2 || jp->p[0] != '\\' || jp->p[1] != 'u')
			return -1;
		jp->p += 2;
		if ((lo = json_hex4(jp)) < 0xdc00 || lo > 0xdfff)
			return -1;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return json_put_utf8(buf, len, (unsigned long)cp);
}

/* A string.  Its decoded form is never longer than its JSON text up to
 * the first quote that no backslash escapes, so one allocation of that
 * size suffices.  (Sized by all the text left, a document of many short
 * strings would take memory quadratic in its length.)  Returns 0 with
 * *out owned by the caller, or -1. */
static int
json_string(struct json_parser *jp, char **out, size_t *outlen)
{
	const char	*q;
	char		*buf;
	size_t		 len = 0, u;

	if (jp->p >= jp->end || *jp->p++ != '"')
		return -1;
	for (q = jp->p; q < jp->end && *q != '"'; q++)
		if (*q == '\\' && q + 1 < jp->end)
			q++;
	buf = xmalloc((size_t)(q - jp->p) + 1);
	while (jp->p < jp->end && *jp->p != '"') {
		if ((unsigned char)*jp->p < 0x20)	/* must be escaped */
			goto fail;
		if (*jp->p == '\\') {
			jp->p++;
			if (json_escape(jp, buf, &len) == -1)
				goto fail;
			continue;
		}
		u = str_utf8_len((const unsigned char *)jp->p,
		    (size_t)(jp->end - jp->p));
		if (u == 0)
			goto fail;
		memcpy(buf + len, jp->p, u);
		len += u;
		jp->p += u;
	}
	if (jp->p >= jp->end)
		goto fail;
	jp->p++;
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
fail:
	explicit_bzero(buf, len);
	free(buf);
	return -1;
}

static size_t
json_digits(struct json_parser *jp)
{
	size_t	n = 0;

	while (jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9') {
		jp->p++;
		n++;
	}
	return n;
}

/* A number, as RFC 8259 writes them: -?(0|[1-9][0-9]*)(.[0-9]+)?
 * ([eE][+-]?[0-9]+)?; kept as text and as a double. */
static int
json_number(struct json_parser *jp, struct json *v)
{
	const char	*start = jp->p;

	if (jp->p < jp->end && *jp->p == '-')
		jp->p++;
	if (jp->p < jp->end && *jp->p == '0')
		jp->p++;
	else if (json_digits(jp) == 0)
		return -1;
	if (jp->p < jp->end && *jp->p == '.') {
		jp->p++;
		if (json_digits(jp) == 0)
			return -1;
	}
	if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E')) {
		jp->p++;
		if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-'))
			jp->p++;
		if (json_digits(jp) == 0)
			return -1;
	}
	v->type = JSON_NUM;
	v->n = (size_t)(jp->p - start);
	v->str = xmalloc(v->n + 1);
	memcpy(v->str, start, v->n);
	v->str[v->n] = '\0';
	v->num = strtod(v->str, NULL);
	return 0;
}

/* An object member's key, refused when the object already has it. */
static int
json_key(struct json_parser *jp, const struct json *obj, char **key)
{
	size_t	len, i;

	if (json_string(jp, key, &len) == -1)
		return -1;
	for (i = 0; i < obj->n; i++)
		if (strcmp(obj->keys[i], *key) == 0) {
			explicit_bzero(*key, len);
			free(*key);
			return -1;
		}
	json_ws(jp);
	if (jp->p >= jp->end || *jp->p++ != ':') {
		free(*key);
		return -1;
	}
	return 0;
}

/* Appends one item (and its key, for an object) to <v>. */
static void
json_append(struct json *v, size_t *cap, char *key, struct json *item)
{
	if (v->n == *cap) {
		*cap = *cap == 0 ? 8 : *cap * 2;
		v->items = xrealloc(v->items, *cap * sizeof(*v->items));
		if (v->type == JSON_OBJ)
			v->keys = xrealloc(v->keys, *cap * sizeof(*v->keys));
	}
	if (v->type == JSON_OBJ)
		v->keys[v->n] = key;
	v->items[v->n++] = *item;
}

/* An array (<close> ']') or an object ('}'), after its opening. */
static int
json_container(struct json_parser *jp, struct json *v, char close)
{
	struct json	 item;
	size_t		 cap = 0;
	char		*key = NULL;

	v->type = close == ']' ? JSON_ARR : JSON_OBJ;
	json_ws(jp);
	if (jp->p < jp->end && *jp->p == close) {
		jp->p++;
		return 0;
	}
	for (;;) {
		json_ws(jp);
		if (v->type == JSON_OBJ && json_key(jp, v, &key) == -1)
			return -1;
		if (json_value(jp, &item) == -1) {
			free(key);
			return -1;
		}
		json_append(v, &cap, key, &item);
		key = NULL;
		json_ws(jp);
		if (jp->p >= jp->end)
			return -1;
		if (*jp->p == close) {
			jp->p++;
			return 0;
		}
		if (*jp->p++ != ',')
			return -1;
	}
}

/* true, false or null. */
static int
json_word(struct json_parser *jp, const char *w)
{
	size_t	len = strlen(w);

	if ((size_t)(jp->end - jp->p) < len || memcmp(jp->p, w, len) != 0)
		return -1;
	jp->p += len;
	return 0;
}

static int
json_value(struct json_parser *jp, struct json *v)
{
	int	rc = -1;

	memset(v, 0, sizeof(*v));
	json_ws(jp);
	if (jp->p >= jp->end)
		return -1;
	if (*jp->p == '{' || *jp->p == '[') {
		if (++jp->depth > JSON_DEPTH_MAX)
			return -1;
		jp->p++;
		rc = json_container(jp, v, jp->p[-1] == '{' ? '}' : ']');
		jp->depth--;
	} else if (*jp->p == '"') {
		v->type = JSON_STR;
		rc = json_string(jp, &v->str, &v->n);
	} else if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9'))
		rc = json_number(jp, v);
	else if (*jp->p == 'n')
		rc = json_word(jp, "null");
	else if (*jp->p == 't' || *jp->p == 'f') {
		v->type = JSON_BOOL;
		v->b = *jp->p == 't';
		rc = json_word(jp, v->b ? "true" : "false");
	}
	if (rc == -1)
		json_free(v);
	return rc;
}

int
json_parse(const char *text, size_t len, struct json *v)
{
	struct json_parser	jp = { text, text + len, 0 };

	if (json_value(&jp, v) == -1)
		return -1;
	json_ws(&jp);
	if (jp.p != jp.end) {
		json_free(v);
		return -1;
	}
	return 0;
}

const struct json *
json_get(const struct json *o, const char *key)
{
	size_t	i;

	if (o == NULL || o->type != JSON_OBJ)
		return NULL;
	for (i = 0; i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0)
			return &o->items[i];
	return NULL;
}

int64_t
json_int(const struct json *o, const char *key)
{
	const struct json	*v = json_get(o, key);

	/* Converting a double outside int64_t is undefined (C11
	 * 6.3.1.4); the text may hold any number. */
	if (v == NULL || v->type != JSON_NUM || !(v->num >= -0x1p63 &&
	    v->num < 0x1p63))
		return 0;
	return (int64_t)v->num;
}

const char *
json_str(const struct json *o, const char *key)
{
	const struct json	*v = json_get(o, key);

	return v != NULL && v->type == JSON_STR ? v->str : NULL;
}

bool
json_bool(const struct json *o, const char *key)
{
	const struct json	*v = json_get(o, key);

	return v != NULL && v->type == JSON_BOOL && v->b;
}

void
json_put_str(json_put_fn put, void *arg, const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, run, u;
	char			 esc[8];

	put(arg, "\"", 1);
	while (i < n) {
		for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x7f &&
		    p[run] != '"' && p[run] != '\\'; run++)
			;
		if (run > i) {
			put(arg, p + i, run - i);
			i = run;
			continue;
		}
		if (p[i] == '"' || p[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)p[i++];
			put(arg, esc, 2);
		} else if (p[i] >= 0x80 &&
		    (u = str_utf8_len(p + i, n - i)) > 0) {
			put(arg, p + i, u);
			i += u;
		} else if (p[i] == '\0') {
			put(arg, "\\ufffd", 6);
			i++;
		} else {
			snprintf(esc, sizeof(esc), "\\u%04x", p[i++]);
			put(arg, esc, 6);
		}
	}
	put(arg, "\"", 1);
}
