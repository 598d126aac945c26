/*
 * fuzz_json.c - libFuzzer harness for json.c: json_parse() on arbitrary
 * octets, then every accessor on every object of the tree.
 *
 * Checked, besides memory safety and leaks: a refused text leaves the
 * value zeroed; an accepted tree keeps json.h's promises (nesting within
 * JSON_DEPTH_MAX, strings NUL-terminated valid UTF-8 of n octets, numbers
 * as RFC 8259 writes them, no key twice in one object) and the accessors
 * agree with it.  json.c has no writer, so the harness has two: one
 * writes strings as UTF-8, the other writes every character as \uXXXX
 * (surrogate pairs above U+FFFF).  Both texts must parse back to the
 * same tree, the first must write again to itself, and the texts cut
 * short by one octet must be refused.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* A growing output buffer. */
struct fuzz_buf {
	char	*p;
	size_t	 len, cap;
};

static void
fuzz_check(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_json: %s\n", what);
	abort();
}

static void
fuzz_put(struct fuzz_buf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 64;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void
fuzz_puts(struct fuzz_buf *b, const char *s)
{
	fuzz_put(b, s, strlen(s));
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and nothing else. */
static bool
fuzz_number_is_valid(const char *s)
{
	size_t	n;

	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if ((n = strspn(s, "0123456789")) == 0)
		return false;
	else
		s += n;
	if (*s == '.') {
		if ((n = strspn(++s, "0123456789")) == 0)
			return false;
		s += n;
	}
	if (*s == 'e' || *s == 'E') {
		if (*++s == '+' || *s == '-')
			s++;
		if ((n = strspn(s, "0123456789")) == 0)
			return false;
		s += n;
	}
	return *s == '\0';
}

/* A string member of the tree: n octets, NUL-terminated, UTF-8. */
static void
fuzz_check_str(const char *s, size_t n)
{
	fuzz_check(s != NULL && strlen(s) == n, "string length");
	fuzz_check(str_is_utf8((const unsigned char *)s, n),
	    "string is not UTF-8");
}

/* The accessors on object <o>, whose member <i> is <m>. */
static void
fuzz_check_member(const struct json *o, size_t i, const struct json *m)
{
	const char	*key = o->keys[i];
	int64_t		 want = 0;

	fuzz_check(json_get(o, key) == m, "json_get misses a member");
	if (m->type == JSON_NUM && m->num >= -0x1p63 && m->num < 0x1p63)
		want = (int64_t)m->num;
	fuzz_check(json_int(o, key) == want, "json_int");
	fuzz_check(json_str(o, key) == (m->type == JSON_STR ? m->str : NULL),
	    "json_str");
	fuzz_check(json_bool(o, key) == (m->type == JSON_BOOL && m->b),
	    "json_bool");
}

/* Walks the tree at depth <depth> (containers above it). */
static void
fuzz_walk(const struct json *v, int depth)
{
	size_t	i, j;

	switch (v->type) {
	case JSON_NULL:
	case JSON_BOOL:
		fuzz_check(v->str == NULL && v->items == NULL, "scalar");
		break;
	case JSON_NUM:
		fuzz_check_str(v->str, v->n);
		fuzz_check(fuzz_number_is_valid(v->str), "number as written");
		fuzz_check(v->num == v->num, "number is NaN");
		break;
	case JSON_STR:
		fuzz_check_str(v->str, v->n);
		break;
	case JSON_ARR:
	case JSON_OBJ:
		fuzz_check(depth < JSON_DEPTH_MAX, "too deep");
		fuzz_check(v->n == 0 || v->items != NULL, "no items");
		for (i = 0; i < v->n; i++) {
			fuzz_walk(&v->items[i], depth + 1);
			if (v->type == JSON_ARR)
				continue;
			fuzz_check_str(v->keys[i], strlen(v->keys[i]));
			for (j = 0; j < i; j++)
				fuzz_check(strcmp(v->keys[i], v->keys[j]) != 0,
				    "a key twice in one object");
			fuzz_check_member(v, i, &v->items[i]);
		}
		/* A name that is not a key. */
		for (i = 0; v->type == JSON_OBJ && i < v->n; i++)
			if (strcmp(v->keys[i], "\x01") == 0)
				break;
		fuzz_check(json_get(v, "\x01") == (v->type == JSON_OBJ &&
		    i < v->n ? &v->items[i] : NULL), "json_get of another "
		    "key");
		if (v->type == JSON_ARR && v->n > 0)
			fuzz_check(json_get(v, "") == NULL &&
			    json_str(v, "") == NULL && json_int(v, "") == 0 &&
			    !json_bool(v, ""), "accessors on an array");
		break;
	default:
		fuzz_check(false, "bad type");
	}
}

/* One code point of valid UTF-8 at <s>, of *len octets. */
static unsigned long
fuzz_utf8_decode(const unsigned char *s, size_t *len)
{
	unsigned long	cp;
	size_t		i;

	*len = s[0] < 0x80 ? 1 : s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	cp = *len == 1 ? s[0] : s[0] & (0x7f >> *len);
	for (i = 1; i < *len; i++)
		cp = cp << 6 | (s[i] & 0x3f);
	return cp;
}

/* A JSON string: with <escape_all>, every character as \uXXXX (in
 * upper case hex with <upper>); else UTF-8 as it is, with the quote,
 * the backslash and control octets escaped. */
static void
fuzz_write_str(struct fuzz_buf *b, const char *s, size_t n,
    bool escape_all, bool upper)
{
	char		 esc[16];
	unsigned long	 cp;
	size_t		 i, len;

	fuzz_puts(b, "\"");
	for (i = 0; i < n; i += len) {
		cp = fuzz_utf8_decode((const unsigned char *)s + i, &len);
		if (escape_all && cp >= 0x10000) {
			cp -= 0x10000;
			snprintf(esc, sizeof(esc), upper ? "\\u%04lX\\u%04lX" :
			    "\\u%04lx\\u%04lx", 0xd800 + (cp >> 10),
			    0xdc00 + (cp & 0x3ff));
		} else if (escape_all || cp < 0x20)
			snprintf(esc, sizeof(esc), upper ? "\\u%04lX" :
			    "\\u%04lx", cp);
		else if (cp == '"' || cp == '\\')
			snprintf(esc, sizeof(esc), "\\%c", (char)cp);
		else {
			fuzz_put(b, s + i, len);
			continue;
		}
		fuzz_puts(b, esc);
	}
	fuzz_puts(b, "\"");
}

/* The tree as JSON text without white space; numbers as written. */
static void
fuzz_write(struct fuzz_buf *b, const struct json *v, bool escape_all,
    bool upper)
{
	size_t	i;

	switch (v->type) {
	case JSON_NULL:
		fuzz_puts(b, "null");
		break;
	case JSON_BOOL:
		fuzz_puts(b, v->b ? "true" : "false");
		break;
	case JSON_NUM:
		fuzz_put(b, v->str, v->n);
		break;
	case JSON_STR:
		fuzz_write_str(b, v->str, v->n, escape_all, upper);
		break;
	case JSON_ARR:
	case JSON_OBJ:
		fuzz_puts(b, v->type == JSON_ARR ? "[" : "{");
		for (i = 0; i < v->n; i++) {
			if (i > 0)
				fuzz_puts(b, ",");
			if (v->type == JSON_OBJ) {
				fuzz_write_str(b, v->keys[i],
				    strlen(v->keys[i]), escape_all, upper);
				fuzz_puts(b, ":");
			}
			fuzz_write(b, &v->items[i], escape_all, upper);
		}
		fuzz_puts(b, v->type == JSON_ARR ? "]" : "}");
		break;
	}
}

static bool
fuzz_same(const struct json *a, const struct json *b)
{
	size_t	i;

	if (a->type != b->type || a->n != b->n)
		return false;
	switch (a->type) {
	case JSON_NULL:
		return true;
	case JSON_BOOL:
		return a->b == b->b;
	case JSON_NUM:
		return strcmp(a->str, b->str) == 0 && a->num == b->num;
	case JSON_STR:
		return memcmp(a->str, b->str, a->n + 1) == 0;
	case JSON_ARR:
	case JSON_OBJ:
		for (i = 0; i < a->n; i++)
			if ((a->type == JSON_OBJ &&
			    strcmp(a->keys[i], b->keys[i]) != 0) ||
			    !fuzz_same(&a->items[i], &b->items[i]))
				return false;
		return true;
	}
	return false;
}

static bool
fuzz_is_zeroed(const struct json *v)
{
	return v->type == JSON_NULL && !v->b && v->num == 0 &&
	    v->str == NULL && v->n == 0 && v->keys == NULL &&
	    v->items == NULL;
}

/* Writes <v>, parses the text back and compares; returns the text. */
static struct fuzz_buf
fuzz_round_trip(const struct json *v, bool escape_all, bool upper)
{
	struct fuzz_buf	b = { NULL, 0, 0 };
	struct json	back;

	fuzz_write(&b, v, escape_all, upper);
	fuzz_check(json_parse(b.p, b.len, &back) == 0,
	    "the written tree does not parse");
	fuzz_check(fuzz_same(v, &back), "the written tree parses to "
	    "another tree");
	json_free(&back);
	/* Cut short, a container or string is refused. */
	if (v->type == JSON_ARR || v->type == JSON_OBJ ||
	    v->type == JSON_STR) {
		fuzz_check(json_parse(b.p, b.len - 1, &back) == -1,
		    "the written tree cut short parses");
		fuzz_check(fuzz_is_zeroed(&back), "refused, not zeroed");
	}
	return b;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json	v, again;
	struct fuzz_buf	b, b2;

	memset(&v, 0xa5, sizeof(v));
	if (json_parse((const char *)data, size, &v) == -1) {
		fuzz_check(fuzz_is_zeroed(&v), "refused, not zeroed");
		return 0;
	}
	fuzz_walk(&v, 0);
	fuzz_check(json_get(NULL, "a") == NULL && json_int(NULL, "a") == 0 &&
	    json_str(NULL, "a") == NULL && !json_bool(NULL, "a"),
	    "accessors on NULL");

	/* Written as UTF-8: parses back, and writes again to itself. */
	b = fuzz_round_trip(&v, false, false);
	fuzz_check(json_parse(b.p, b.len, &again) == 0, "no second parse");
	b2 = fuzz_round_trip(&again, false, false);
	fuzz_check(b2.len == b.len && memcmp(b.p, b2.p, b.len) == 0,
	    "writing is not stable");
	json_free(&again);
	free(b2.p);
	free(b.p);

	/* Every character escaped. */
	b = fuzz_round_trip(&v, true, size > 0 && (data[0] & 1));
	free(b.p);

	json_free(&v);
	fuzz_check(fuzz_is_zeroed(&v), "json_free does not zero");
	return 0;
}
