/*
 * json.h - a small, strict JSON reader (RFC 8259) for the control
 * socket's answers (smartrelayctl) and the OAuth token endpoint's
 * (oauth_answer.c), and the one string writer of the JSON the daemon
 * and smartrelayctl print.
 *
 * The whole text is parsed into a tree of struct json.  Pure code: no
 * I/O, no logging.  Strings may hold secrets (tokens), so freeing a tree
 * wipes them.
 */
#ifndef JSON_H
#define JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_DEPTH_MAX	16	/* nested objects and arrays */

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR,
    JSON_OBJ };

struct json {
	enum json_type	 type;
	bool		 b;
	double		 num;		/* JSON_NUM */
	char		*str;		/* JSON_STR decoded, JSON_NUM as
					 * written; NUL-terminated */
	size_t		 n;		/* octets of str, or items */
	char		**keys;		/* JSON_OBJ */
	struct json	*items;		/* JSON_ARR, JSON_OBJ */
};

/*
 * Parses the <len> octets at <text> (no NUL needed; never read past)
 * into <v>: exactly one value and white space around it.  Refuses what
 * RFC 8259 does not allow (trailing data, a bad number such as 01 or
 * 1., control octets or bad UTF-8 in strings, a lone surrogate), the
 * \u0000 escape (strings are C strings), a key repeated in one object,
 * and nesting deeper than JSON_DEPTH_MAX.  The tree takes memory in
 * proportion to <len>.  Returns 0 (the caller frees with json_free())
 * or -1 with <v> zeroed.
 */
int		 json_parse(const char *text, size_t len, struct json *v);

/* Wipes and frees what <v> holds (not <v> itself) and zeroes it. */
void		 json_free(struct json *v);

/* The member <key> of object <o>, or NULL (json_int: 0, json_str: NULL,
 * json_bool: false) when <o> is not an object, has no such member, or
 * it has another type.  json_int truncates a fraction toward zero and
 * gives 0 for a number outside [-2^63, 2^63).  Results are borrowed
 * from <o>. */
const struct json *json_get(const struct json *o, const char *key);
int64_t		 json_int(const struct json *o, const char *key);
const char	*json_str(const struct json *o, const char *key);
bool		 json_bool(const struct json *o, const char *key);

/* Where json_put_str() writes: <n> octets at <p>. */
typedef void	(*json_put_fn)(void *arg, const void *p, size_t n);

/* Writes the <n> octets at <s> as a JSON string, quotes included:
 * '"' and '\\' escaped, control octets, DEL and any octet outside
 * valid UTF-8 as \u00XX, a NUL as U+FFFD (readers take strings as C
 * strings); valid UTF-8 as it is.  Plain runs go out in one call. */
void		 json_put_str(json_put_fn put, void *arg, const char *s,
		    size_t n);

#endif /* JSON_H */
