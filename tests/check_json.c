/*
 * check_json.c - unit tests for json.c, the strict JSON reader, against
 * the contract of json.h: every type, nesting up to JSON_DEPTH_MAX,
 * escapes and surrogate pairs, numbers as RFC 8259 writes them, white
 * space, duplicate keys, UTF-8 and control octets in strings, trailing
 * data, every prefix of valid documents, large documents, and the
 * accessors on missing members and wrong types.
 *
 * Every text is copied into a heap block of exactly its length, so that
 * a sanitizer build catches a read past the caller's length.
 */
#include "config.h"

#include <check.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "util.h"

/* A table entry's text and its length, NUL octets included. */
#define T(s)	s, sizeof(s) - 1

#define DUMP_MAX	4096

/* Parses the <len> octets at <text> from a copy of exactly that size. */
static int
parse_n(const char *text, size_t len, struct json *v)
{
	char	*copy = xmalloc(len > 0 ? len : 1);
	int	 rc;

	memcpy(copy, text, len);
	memset(v, 0xa5, sizeof(*v));	/* a failure must zero it */
	rc = json_parse(copy, len, v);
	free(copy);
	return rc;
}

static bool
is_zeroed(const struct json *v)
{
	static const struct json	zero;

	return v->type == zero.type && v->b == zero.b && v->num == 0 &&
	    v->str == NULL && v->n == 0 && v->keys == NULL &&
	    v->items == NULL;
}

/* Appends <s> to the dump in <buf> (of DUMP_MAX octets). */
static void
dump_put(char *buf, const char *s)
{
	size_t	len = strlen(buf);

	ck_assert_uint_lt(len + strlen(s), DUMP_MAX);
	memcpy(buf + len, s, strlen(s) + 1);
}

/* A string in quotes, any octet outside printable ASCII (and the quote
 * and backslash) as \xHH, so that the tables can spell exact octets. */
static void
dump_str(char *buf, const char *s, size_t n)
{
	char	hex[8];
	size_t	i;

	ck_assert_uint_eq(strlen(s), n);	/* NUL-terminated, no NUL */
	dump_put(buf, "\"");
	for (i = 0; i < n; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' &&
		    s[i] != '\\') {
			hex[0] = s[i];
			hex[1] = '\0';
		} else
			snprintf(hex, sizeof(hex), "\\x%02x",
			    (unsigned char)s[i]);
		dump_put(buf, hex);
	}
	dump_put(buf, "\"");
}

/* A compact text of the tree: numbers as written, strings as above. */
static void
dump(char *buf, const struct json *v)
{
	size_t	i;

	switch (v->type) {
	case JSON_NULL:
		dump_put(buf, "null");
		break;
	case JSON_BOOL:
		dump_put(buf, v->b ? "true" : "false");
		break;
	case JSON_NUM:
		ck_assert_ptr_nonnull(v->str);
		ck_assert_uint_eq(strlen(v->str), v->n);
		dump_put(buf, v->str);
		break;
	case JSON_STR:
		ck_assert_ptr_nonnull(v->str);
		dump_str(buf, v->str, v->n);
		break;
	case JSON_ARR:
	case JSON_OBJ:
		dump_put(buf, v->type == JSON_ARR ? "[" : "{");
		for (i = 0; i < v->n; i++) {
			if (i > 0)
				dump_put(buf, ",");
			if (v->type == JSON_OBJ) {
				dump_str(buf, v->keys[i], strlen(v->keys[i]));
				dump_put(buf, ":");
			}
			dump(buf, &v->items[i]);
		}
		dump_put(buf, v->type == JSON_ARR ? "]" : "}");
		break;
	default:
		ck_abort_msg("bad type %d", v->type);
	}
}

/*
 * Valid documents and the tree each gives (as dump() writes it).
 */
static const struct {
	const char	*text;
	size_t		 len;
	const char	*want;
} ok_cases[] = {
	/* Every type, also alone at the top (RFC 8259 section 2). */
	{ T("null"),				"null" },
	{ T("true"),				"true" },
	{ T("false"),				"false" },
	{ T("0"),				"0" },
	{ T("\"\""),				"\"\"" },
	{ T("\"abc\""),				"\"abc\"" },
	{ T("[]"),				"[]" },
	{ T("{}"),				"{}" },
	{ T("[null,true,false,1,\"s\",[],{}]"),
	    "[null,true,false,1,\"s\",[],{}]" },
	{ T("{\"a\":null,\"b\":true,\"c\":false,\"d\":-2,\"e\":\"s\","
	    "\"f\":[],\"g\":{}}"),
	    "{\"a\":null,\"b\":true,\"c\":false,\"d\":-2,\"e\":\"s\","
	    "\"f\":[],\"g\":{}}" },
	/* Members keep their order; more than the first allocation. */
	{ T("{\"z\":1,\"a\":2,\"m\":3}"),	"{\"z\":1,\"a\":2,\"m\":3}" },
	{ T("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]"),
	    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]" },
	/* Nesting. */
	{ T("[[[]]]"),				"[[[]]]" },
	{ T("{\"a\":{\"b\":{\"c\":[1,{\"d\":[]}]}}}"),
	    "{\"a\":{\"b\":{\"c\":[1,{\"d\":[]}]}}}" },
	{ T("[{},{\"a\":[{}]},[]]"),		"[{},{\"a\":[{}]},[]]" },
	/* White space: space, tab, LF and CR, around every token. */
	{ T(" \t\r\n[ \t\r\n1 \t\r\n, \t\r\n2 \t\r\n] \t\r\n"), "[1,2]" },
	{ T("\n{ \"a\" :\t\"b\" ,\r\n\"c\":[ ] }\n"),
	    "{\"a\":\"b\",\"c\":[]}" },
	{ T("  null  "),			"null" },
	/* Escapes (RFC 8259 section 7). */
	{ T("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
	    "\"\\x22\\x5c/\\x08\\x0c\\x0a\\x0d\\x09\"" },
	{ T("\"\\u0041\\u0062\""),		"\"Ab\"" },
	{ T("\"\\u00e9\\u00E9\""),		"\"\\xc3\\xa9\\xc3\\xa9\"" },
	{ T("\"\\u0001\\u001f\\u007f\""),	"\"\\x01\\x1f\\x7f\"" },
	{ T("\"\\u0080\\u07ff\""),		"\"\\xc2\\x80\\xdf\\xbf\"" },
	{ T("\"\\u0800\\u20ac\\uffff\""),
	    "\"\\xe0\\xa0\\x80\\xe2\\x82\\xac\\xef\\xbf\\xbf\"" },
	{ T("\"\\ud83d\\ude00\""),		"\"\\xf0\\x9f\\x98\\x80\"" },
	{ T("\"\\uD83D\\uDE00\""),		"\"\\xf0\\x9f\\x98\\x80\"" },
	{ T("\"\\ud800\\udc00\""),		"\"\\xf0\\x90\\x80\\x80\"" },
	{ T("\"\\udbff\\udfff\""),		"\"\\xf4\\x8f\\xbf\\xbf\"" },
	/* UTF-8 as written, from one to four octets. */
	{ T("\"\x7f\""),			"\"\\x7f\"" },
	{ T("\"\xc2\x80\xdf\xbf\""),		"\"\\xc2\\x80\\xdf\\xbf\"" },
	{ T("\"\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\""),
	    "\"\\xe0\\xa0\\x80\\xed\\x9f\\xbf\\xee\\x80\\x80"
	    "\\xef\\xbf\\xbf\"" },
	{ T("\"\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\""),
	    "\"\\xf0\\x90\\x80\\x80\\xf4\\x8f\\xbf\\xbf\"" },
	{ T("{\"cl\xc3\xa9\":\"\xe2\x82\xac\"}"),
	    "{\"cl\\xc3\\xa9\":\"\\xe2\\x82\\xac\"}" },
	/* Keys: empty, escaped, the same name in different objects. */
	{ T("{\"\":1}"),			"{\"\":1}" },
	{ T("{\"k\\u0061y\":1,\"k\\\"\":2}"),	"{\"kay\":1,\"k\\x22\":2}" },
	{ T("{\"a\":{\"a\":1},\"b\":{\"a\":2}}"),
	    "{\"a\":{\"a\":1},\"b\":{\"a\":2}}" },
	{ T("{\"a\":1,\"A\":2,\"a \":3}"),	"{\"a\":1,\"A\":2,\"a \":3}" },
	{ T("[{\"a\":1},{\"a\":1}]"),		"[{\"a\":1},{\"a\":1}]" },
	/* Realistic answers of the token endpoint (RFC 6749 section 5). */
	{ T("{\n  \"access_token\": \"ya29.a0AfB_byC\",\n"
	    "  \"expires_in\": 3599,\n"
	    "  \"refresh_token\": \"1//0gLx-Yz\",\n"
	    "  \"scope\": \"https://mail.google.com/\",\n"
	    "  \"token_type\": \"Bearer\",\n"
	    "  \"id_token\": \"eyJhbGciOiJSUzI1NiJ9.e30.c2ln\"\n}"),
	    "{\"access_token\":\"ya29.a0AfB_byC\",\"expires_in\":3599,"
	    "\"refresh_token\":\"1//0gLx-Yz\","
	    "\"scope\":\"https://mail.google.com/\","
	    "\"token_type\":\"Bearer\","
	    "\"id_token\":\"eyJhbGciOiJSUzI1NiJ9.e30.c2ln\"}" },
	{ T("{\n  \"error\": \"invalid_grant\",\n"
	    "  \"error_description\": \"Bad Request\"\n}"),
	    "{\"error\":\"invalid_grant\","
	    "\"error_description\":\"Bad Request\"}" },
};

START_TEST(test_ok)
{
	struct json	v;
	char		buf[DUMP_MAX] = "";

	ck_assert_msg(parse_n(ok_cases[_i].text, ok_cases[_i].len, &v) == 0,
	    "refused: %s", ok_cases[_i].text);
	dump(buf, &v);
	ck_assert_str_eq(buf, ok_cases[_i].want);
	json_free(&v);
	ck_assert(is_zeroed(&v));
}
END_TEST

/*
 * Texts json_parse() refuses, each with <v> zeroed after.
 */
static const struct {
	const char	*text;
	size_t		 len;
} bad_cases[] = {
	/* Not one value. */
	{ T("") },
	{ T(" \t\r\n") },
	{ T("\0") },
	/* White space JSON does not have. */
	{ T("\f[]") },
	{ T("[\v]") },
	{ T("[1,\xc2\xa0" "2]") },		/* U+00A0 */
	{ T("\xe2\x80\xa8[]") },		/* U+2028 */
	{ T("\xef\xbb\xbf{}") },		/* a byte order mark */
	{ T("[1,\0" "2]") },
	/* Trailing data. */
	{ T("{} x") },
	{ T("{}{}") },
	{ T("[]]") },
	{ T("1 2") },
	{ T("\"a\"\"b\"") },
	{ T("null,") },
	{ T("true false") },
	{ T("{}\0") },
	{ T("[1]//") },
	{ T("{} /* c */") },
	{ T("{\"a\":1}}") },
	/* Literals. */
	{ T("nul") },
	{ T("nulll") },
	{ T("tru") },
	{ T("True") },
	{ T("FALSE") },
	{ T("t") },
	{ T("NaN") },
	{ T("Infinity") },
	{ T("-Infinity") },
	{ T("undefined") },
	{ T("[truefalse]") },
	/* Structure. */
	{ T("[") },
	{ T("]") },
	{ T("{") },
	{ T("}") },
	{ T("[1,]") },
	{ T("[,1]") },
	{ T("[,]") },
	{ T("[1,,2]") },
	{ T("[1 2]") },
	{ T("[1:2]") },
	{ T("[1}") },
	{ T("{\"a\":1]") },
	{ T("{\"a\"}") },
	{ T("{\"a\":}") },
	{ T("{\"a\" 1}") },
	{ T("{\"a\"::1}") },
	{ T("{\"a\":1,}") },
	{ T("{,\"a\":1}") },
	{ T("{,}") },
	{ T("{\"a\":1 \"b\":2}") },
	{ T("{\"a\":1;\"b\":2}") },
	{ T("{1:2}") },
	{ T("{null:1}") },
	{ T("{[]:1}") },
	{ T("{'a':1}") },
	{ T("{a:1}") },
	{ T("['a']") },
	/* Duplicate keys, also when escapes spell the same name. */
	{ T("{\"a\":1,\"a\":2}") },
	{ T("{\"a\":1,\"b\":2,\"a\":3}") },
	{ T("{\"a\":1,\"\\u0061\":2}") },
	{ T("{\"\":1,\"\":1}") },
	{ T("{\"x\":{\"a\":[],\"a\":[]}}") },
	/* Unterminated strings. */
	{ T("\"") },
	{ T("\"abc") },
	{ T("[\"abc]") },
	{ T("{\"a\":\"b}") },
	/* Escapes. */
	{ T("\"\\a\"") },
	{ T("\"\\x41\"") },
	{ T("\"\\'\"") },
	{ T("\"\\U0041\"") },
	{ T("\"\\0\"") },
	{ T("\"\\\n\"") },
	{ T("\"\\") },
	{ T("\"\\\"") },
	{ T("\"\\u\"") },
	{ T("\"\\u12\"") },
	{ T("\"\\u12G4\"") },
	{ T("\"\\u-123\"") },
	{ T("\"\\u 123\"") },
	{ T("\"\\u004") },
	/* \u0000: strings are C strings. */
	{ T("\"\\u0000\"") },
	{ T("\"a\\u0000b\"") },
	{ T("{\"\\u0000\":1}") },
	/* Lone or misordered surrogates. */
	{ T("\"\\ud800\"") },
	{ T("\"\\udbff\"") },
	{ T("\"\\udc00\"") },
	{ T("\"\\udfff\"") },
	{ T("\"\\ude00\\ud83d\"") },
	{ T("\"\\ud83d\\ud83d\"") },
	{ T("\"\\ud83dx\"") },
	{ T("\"\\ud83d\\n\"") },
	{ T("\"\\ud83d\\u0041\"") },
	{ T("\"\\ud83d\\ue000\"") },
	{ T("\"\\ud83d\\u") },
	{ T("\"\\ud83d\\ude0\"") },
	{ T("\"\\ud83d") },
	{ T("{\"\\udc00\":1}") },
	/* Bad UTF-8: stray continuation, overlong forms, surrogates,
	 * beyond U+10FFFF, octets UTF-8 never uses, cut sequences. */
	{ T("\"\x80\"") },
	{ T("\"\xbf\"") },
	{ T("\"\xc0\x80\"") },
	{ T("\"\xc1\xbf\"") },
	{ T("\"\xe0\x80\x80\"") },
	{ T("\"\xe0\x9f\xbf\"") },
	{ T("\"\xf0\x80\x80\x80\"") },
	{ T("\"\xf0\x8f\xbf\xbf\"") },
	{ T("\"\xed\xa0\x80\"") },
	{ T("\"\xed\xbf\xbf\"") },
	{ T("\"\xed\xa0\xbd\xed\xb8\x80\"") },	/* CESU-8 */
	{ T("\"\xf4\x90\x80\x80\"") },
	{ T("\"\xf5\x80\x80\x80\"") },
	{ T("\"\xf8\x88\x80\x80\x80\"") },
	{ T("\"\xfe\"") },
	{ T("\"\xff\"") },
	{ T("\"\xc3\"") },
	{ T("\"\xe2\x82\"") },
	{ T("\"\xf0\x9f\x98\"") },
	{ T("\"\xc3") },
	{ T("\"\xc3\x28\"") },
	{ T("\"\xe2\x28\xa1\"") },
	{ T("{\"\xff\":1}") },
	{ T("\xc3\xa9") },			/* outside a string */
	/* Control octets written as they are inside strings. */
	{ T("\"a\tb\"") },
	{ T("\"a\nb\"") },
	{ T("\"a\0b\"") },
	{ T("{\"a\rb\":1}") },
};

START_TEST(test_bad)
{
	struct json	v;

	ck_assert_msg(parse_n(bad_cases[_i].text, bad_cases[_i].len, &v) ==
	    -1, "accepted: %s", bad_cases[_i].text);
	ck_assert(is_zeroed(&v));
}
END_TEST

/* Each octet below 0x20, written as it is, in a string or a key. */
START_TEST(test_control_octets)
{
	char		text[16];
	struct json	v;

	snprintf(text, sizeof(text), "\"a?b\"");
	text[2] = (char)_i;
	ck_assert_int_eq(parse_n(text, 5, &v), -1);
	ck_assert(is_zeroed(&v));
	snprintf(text, sizeof(text), "{\"?\":1}");
	text[2] = (char)_i;
	ck_assert_int_eq(parse_n(text, 7, &v), -1);
	/* Escaped, they are fine (all but \u0000). */
	snprintf(text, sizeof(text), "\"\\u%04x\"", _i);
	if (_i == 0)
		ck_assert_int_eq(parse_n(text, 8, &v), -1);
	else {
		ck_assert_int_eq(parse_n(text, 8, &v), 0);
		ck_assert_int_eq(v.type, JSON_STR);
		ck_assert_uint_eq(v.n, 1);
		ck_assert_int_eq(v.str[0], _i);
		ck_assert_int_eq(v.str[1], '\0');
		json_free(&v);
	}
}
END_TEST

/*
 * Numbers: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, kept as
 * written and as a double.
 */
static const struct {
	const char	*text;
	double		 num;
} num_cases[] = {
	{ "0",			0 },
	{ "-0",			-0.0 },
	{ "1",			1 },
	{ "-1",			-1 },
	{ "10",			10 },
	{ "3599",		3599 },
	{ "123456789",		123456789 },
	{ "0.5",		0.5 },
	{ "-0.5",		-0.5 },
	{ "1.25",		1.25 },
	{ "1e3",		1000 },
	{ "1E3",		1000 },
	{ "1e+3",		1000 },
	{ "1e-3",		0.001 },
	{ "1.5e-3",		0.0015 },
	{ "-1.5E+3",		-1500 },
	{ "0e0",		0 },
	{ "-0.0e-0",		-0.0 },
	{ "1e007",		1e7 },
	{ "9007199254740992",	9007199254740992.0 },
	{ "9007199254740993",	9007199254740992.0 },	/* text is exact */
	{ "-9223372036854775808", -9223372036854775808.0 },
	{ "1e308",		1e308 },
	{ "1e-400",		0 },
	{ "0.0000000000000000000000000000000000000000001", 1e-43 },
};

START_TEST(test_numbers)
{
	char		text[128];
	struct json	v;
	int		len;

	ck_assert_int_eq(parse_n(num_cases[_i].text,
	    strlen(num_cases[_i].text), &v), 0);
	ck_assert_int_eq(v.type, JSON_NUM);
	ck_assert_str_eq(v.str, num_cases[_i].text);
	ck_assert_uint_eq(v.n, strlen(num_cases[_i].text));
	ck_assert_msg(v.num == num_cases[_i].num && signbit(v.num) ==
	    signbit(num_cases[_i].num), "%s: %.17g, want %.17g",
	    num_cases[_i].text, v.num, num_cases[_i].num);
	json_free(&v);
	/* The same inside an array and as an object's member. */
	len = snprintf(text, sizeof(text), "[%s,{\"n\":%s}]",
	    num_cases[_i].text, num_cases[_i].text);
	ck_assert_int_eq(parse_n(text, (size_t)len, &v), 0);
	ck_assert_str_eq(v.items[0].str, num_cases[_i].text);
	ck_assert_str_eq(json_get(&v.items[1], "n")->str,
	    num_cases[_i].text);
	json_free(&v);
}
END_TEST

/* Beyond a double's range the text stays; the double is infinite. */
START_TEST(test_numbers_huge)
{
	char		digits[1100];
	struct json	v;

	ck_assert_int_eq(parse_n(T("1e400"), &v), 0);
	ck_assert_str_eq(v.str, "1e400");
	ck_assert(v.num > 1e308);
	json_free(&v);
	ck_assert_int_eq(parse_n(T("-1e400"), &v), 0);
	ck_assert(v.num < -1e308);
	json_free(&v);
	/* A thousand digits. */
	memset(digits, '7', 1000);
	ck_assert_int_eq(parse_n(digits, 1000, &v), 0);
	ck_assert_uint_eq(v.n, 1000);
	ck_assert_uint_eq(strspn(v.str, "7"), 1000);
	json_free(&v);
}
END_TEST

static const char *const num_bad[] = {
	"01", "-01", "00", "007", "1.", "-1.", ".5", "-.5", "-", "+1",
	"--1", "- 1", "1e", "1E", "1e+", "1e-", "1.e5", "1..2", "0.1.2",
	"1ee5", "1e5.5", "1e+-5", "0x10", "0X1", "1_000", "1f",
	"0b1", "\xd9\xa1",
};

START_TEST(test_numbers_bad)
{
	char		text[64];
	struct json	v;
	int		len;

	ck_assert_int_eq(parse_n(num_bad[_i], strlen(num_bad[_i]), &v), -1);
	ck_assert(is_zeroed(&v));
	len = snprintf(text, sizeof(text), "[%s]", num_bad[_i]);
	ck_assert_int_eq(parse_n(text, (size_t)len, &v), -1);
	len = snprintf(text, sizeof(text), "{\"n\":%s}", num_bad[_i]);
	ck_assert_int_eq(parse_n(text, (size_t)len, &v), -1);
}
END_TEST

/* The length is the caller's: what follows it is never read. */
START_TEST(test_length)
{
	struct json	v;

	ck_assert_int_eq(parse_n("[1]]", 3, &v), 0);
	json_free(&v);
	ck_assert_int_eq(parse_n("truex", 4, &v), 0);
	ck_assert(v.type == JSON_BOOL && v.b);
	json_free(&v);
	ck_assert_int_eq(parse_n("123", 2, &v), 0);
	ck_assert_str_eq(v.str, "12");
	json_free(&v);
	ck_assert_int_eq(parse_n("\"ab\"", 3, &v), -1);
	ck_assert_int_eq(parse_n("[1]", 2, &v), -1);
	ck_assert_int_eq(parse_n("true", 3, &v), -1);
	ck_assert_int_eq(parse_n("\"\\u0041\"", 6, &v), -1);
	ck_assert_int_eq(parse_n("\"\\ud83d\\ude00\"", 12, &v), -1);
	ck_assert_int_eq(parse_n("\"\xc3\xa9\"", 2, &v), -1);
	ck_assert_int_eq(parse_n("x", 0, &v), -1);
	ck_assert(is_zeroed(&v));
}
END_TEST

/*
 * Every proper prefix of a valid document is refused cleanly: none of
 * these ends in white space or a digit.
 */
static const char *const prefix_docs[] = {
	"{\"access_token\":\"ya29.a0AfB_byC\",\"expires_in\":3599,"
	    "\"refresh_token\":\"1//0gLx-Yz\",\"scope\":"
	    "\"https://mail.google.com/\",\"token_type\":\"Bearer\","
	    "\"id_token\":\"eyJhbGciOiJSUzI1NiJ9.e30.c2ln\"}",
	"{\"error\":\"invalid_grant\",\"error_description\":\"Bad Request\"}",
	"{ \"a\" : [ 1 , -2.5e+3 , true , false , null , \"\\u00e9\\ud83d"
	    "\\ude00\\n\" ] , \"b\" : { \"c\" : { } , \"d\" : [ [ ] ] } , "
	    "\"cl\xc3\xa9\" : \"\xe2\x82\xac\xf0\x9f\x98\x80\" }",
	"[{\"messages\":[{\"id\":\"0006123abcd01f2e\",\"size\":1832,"
	    "\"held\":false,\"recipients\":[{\"addr\":\"a@b\","
	    "\"state\":\"pending\"}]}],\"now\":1700000000}]",
	"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\"",
	"[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]",
	"true",
	"false",
	"null",
};

START_TEST(test_prefixes)
{
	const char	*doc = prefix_docs[_i];
	size_t		 len = strlen(doc), n;
	struct json	 v;

	ck_assert_int_eq(parse_n(doc, len, &v), 0);
	json_free(&v);
	for (n = 0; n < len; n++) {
		ck_assert_msg(parse_n(doc, n, &v) == -1, "prefix %zu of <%s> "
		    "accepted", n, doc);
		ck_assert(is_zeroed(&v));
	}
}
END_TEST

/*
 * JSON_DEPTH_MAX levels of arrays, objects or both parse; one more
 * does not, and a huge depth is refused without exhausting the stack.
 */
static size_t
nest(char *buf, size_t depth, int kind)
{
	size_t	i, n = 0;
	bool	obj;

	for (i = 0; i < depth; i++) {
		obj = kind == 1 || (kind == 2 && i % 2 == 1);
		if (obj) {
			memcpy(buf + n, "{\"k\":", 5);
			n += 5;
		} else
			buf[n++] = '[';
	}
	buf[n++] = '0';
	for (i = depth; i > 0; i--) {
		obj = kind == 1 || (kind == 2 && (i - 1) % 2 == 1);
		buf[n++] = obj ? '}' : ']';
	}
	return n;
}

START_TEST(test_depth)
{
	char			 buf[256];
	struct json		 v;
	const struct json	*p;
	size_t			 len, d;

	len = nest(buf, JSON_DEPTH_MAX, _i);
	ck_assert_int_eq(parse_n(buf, len, &v), 0);
	for (p = &v, d = 0; p->type == JSON_ARR || p->type == JSON_OBJ;
	    p = &p->items[0], d++)
		ck_assert_uint_eq(p->n, 1);
	ck_assert_uint_eq(d, JSON_DEPTH_MAX);
	ck_assert_int_eq(p->type, JSON_NUM);
	json_free(&v);
	len = nest(buf, JSON_DEPTH_MAX + 1, _i);
	ck_assert_int_eq(parse_n(buf, len, &v), -1);
	ck_assert(is_zeroed(&v));
	/* Depth counts nesting, not how many containers there are. */
	len = (size_t)snprintf(buf, sizeof(buf), "[");
	for (d = 0; d < 40; d++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s",
		    _i == 1 ? "{}," : "[],");
	buf[len - 1] = ']';
	ck_assert_int_eq(parse_n(buf, len, &v), 0);
	ck_assert_uint_eq(v.n, 40);
	json_free(&v);
}
END_TEST

START_TEST(test_depth_huge)
{
	size_t		 n = 1000000, i;
	char		*buf = xmalloc(n);
	struct json	 v;

	memset(buf, '[', n);
	ck_assert_int_eq(parse_n(buf, n, &v), -1);
	for (i = 0; i + 5 <= n; i += 5)
		memcpy(buf + i, "{\"a\":", 5);
	ck_assert_int_eq(parse_n(buf, i, &v), -1);
	ck_assert(is_zeroed(&v));
	free(buf);
}
END_TEST

/* No size limit but the caller's: long strings, long arrays, many
 * members (each checked against the others for duplicates). */
START_TEST(test_large)
{
	size_t		 n = 1 << 20, i, len;
	char		*buf = xmalloc(16 * n);
	struct json	 v;

	buf[0] = '"';
	for (i = 1; i <= n; i++)
		buf[i] = (char)('a' + i % 26);
	buf[n + 1] = '"';
	ck_assert_int_eq(parse_n(buf, n + 2, &v), 0);
	ck_assert_uint_eq(v.n, n);
	ck_assert_uint_eq(strlen(v.str), n);
	ck_assert_int_eq(memcmp(v.str, buf + 1, n), 0);
	json_free(&v);

	len = 0;
	buf[len++] = '[';
	for (i = 0; i < 100000; i++)
		len += (size_t)sprintf(buf + len, "%zu,", i);
	buf[len - 1] = ']';
	ck_assert_int_eq(parse_n(buf, len, &v), 0);
	ck_assert_int_eq(v.type, JSON_ARR);
	ck_assert_uint_eq(v.n, 100000);
	ck_assert_str_eq(v.items[99999].str, "99999");
	json_free(&v);

	len = 0;
	buf[len++] = '{';
	for (i = 0; i < 3000; i++)
		len += (size_t)sprintf(buf + len, "\"k%zu\":%zu,", i, i);
	buf[len - 1] = '}';
	ck_assert_int_eq(parse_n(buf, len, &v), 0);
	ck_assert_uint_eq(v.n, 3000);
	ck_assert_int_eq(json_int(&v, "k2999"), 2999);
	ck_assert_int_eq(json_int(&v, "k0"), 0);
	ck_assert_ptr_null(json_get(&v, "k3000"));
	json_free(&v);
	free(buf);
}
END_TEST

/*
 * The tree's memory is proportional to the text: a short string in a
 * long document holds a short allocation.  Sized by the rest of the
 * text instead, 21000 empty strings in 63 KB (a token endpoint's answer
 * may be 64 KB) took 630 MB of heap.
 */
START_TEST(test_memory)
{
	size_t		 n = 20000, i, len = 0;
	char		*buf = xmalloc(4 * n + 16);
	struct json	 v;

	buf[len++] = '[';
	for (i = 0; i < n; i++) {
		memcpy(buf + len, i % 2 == 0 ? "\"\"," : "\"a\",",
		    i % 2 == 0 ? 3 : 4);
		len += i % 2 == 0 ? 3 : 4;
	}
	buf[len - 1] = ']';
	ck_assert_int_eq(parse_n(buf, len, &v), 0);
	ck_assert_uint_eq(v.n, n);
	for (i = 0; i < n; i++)
		ck_assert_msg(malloc_usable_size(v.items[i].str) <= 64,
		    "string %zu of 1 octet holds %zu octets", i,
		    malloc_usable_size(v.items[i].str));
	json_free(&v);
	/* Keys too. */
	ck_assert_int_eq(parse_n(T("{\"k\":1,                                "
	    "                                                            "
	    "\"l\":\"m\"}"), &v), 0);
	ck_assert_uint_le(malloc_usable_size(v.keys[0]), 64);
	ck_assert_uint_le(malloc_usable_size(v.keys[1]), 64);
	json_free(&v);
	free(buf);
}
END_TEST

/*
 * json_get(), json_int(), json_str() and json_bool() on every type.
 */
static const char acc_doc[] =
    "{\"s\":\"str\",\"e\":\"\",\"num_s\":\"5\",\"i\":42,\"neg\":-7,"
    "\"big\":9007199254740992,\"zero\":0,\"t\":true,\"f\":false,"
    "\"n\":null,\"a\":[1,\"x\",true],\"o\":{\"s\":\"inner\",\"i\":1},"
    "\"\":\"empty key\",\"cl\xc3\xa9\":true}";

static const struct {
	const char	*key;
	int		 type;		/* -1: json_get() is NULL */
	int64_t		 i;
	const char	*s;
	bool		 b;
} acc_cases[] = {
	{ "s",		JSON_STR,	0,	"str",	false },
	{ "e",		JSON_STR,	0,	"",	false },
	{ "num_s",	JSON_STR,	0,	"5",	false },
	{ "i",		JSON_NUM,	42,	NULL,	false },
	{ "neg",	JSON_NUM,	-7,	NULL,	false },
	{ "big",	JSON_NUM,	9007199254740992LL, NULL, false },
	{ "zero",	JSON_NUM,	0,	NULL,	false },
	{ "t",		JSON_BOOL,	0,	NULL,	true },
	{ "f",		JSON_BOOL,	0,	NULL,	false },
	{ "n",		JSON_NULL,	0,	NULL,	false },
	{ "a",		JSON_ARR,	0,	NULL,	false },
	{ "o",		JSON_OBJ,	0,	NULL,	false },
	{ "",		JSON_STR,	0,	"empty key", false },
	{ "cl\xc3\xa9",	JSON_BOOL,	0,	NULL,	true },
	/* Missing: names are exact, members of members are not ours. */
	{ "missing",	-1,		0,	NULL,	false },
	{ "S",		-1,		0,	NULL,	false },
	{ "s ",		-1,		0,	NULL,	false },
	{ "inner",	-1,		0,	NULL,	false },
	{ "cl",		-1,		0,	NULL,	false },
};

START_TEST(test_accessors)
{
	struct json		 v;
	const struct json	*m;
	const char		*s;

	ck_assert_int_eq(parse_n(T(acc_doc), &v), 0);
	m = json_get(&v, acc_cases[_i].key);
	if (acc_cases[_i].type == -1)
		ck_assert_ptr_null(m);
	else {
		ck_assert_ptr_nonnull(m);
		ck_assert_int_eq(m->type, acc_cases[_i].type);
		/* Borrowed from the tree, not a copy. */
		ck_assert(m >= v.items && m < v.items + v.n);
	}
	ck_assert_int_eq(json_int(&v, acc_cases[_i].key), acc_cases[_i].i);
	s = json_str(&v, acc_cases[_i].key);
	if (acc_cases[_i].s == NULL)
		ck_assert_ptr_null(s);
	else {
		ck_assert_str_eq(s, acc_cases[_i].s);
		ck_assert_ptr_eq(s, m->str);
	}
	ck_assert(json_bool(&v, acc_cases[_i].key) == acc_cases[_i].b);
	json_free(&v);
}
END_TEST

/* json_int() of numbers a double holds but int64_t does not: 0, never
 * the undefined conversion.  A fraction is truncated toward zero. */
static const struct {
	const char	*num;
	int64_t		 want;
} int_cases[] = {
	{ "1e300",			0 },
	{ "-1e300",			0 },
	{ "1e400",			0 },
	{ "-1e400",			0 },
	{ "9223372036854775808",	0 },
	{ "18446744073709551616",	0 },
	{ "-9223372036854777856",	0 },
	{ "9223372036854774784",	9223372036854774784LL },
	{ "-9223372036854775808",	INT64_MIN },
	{ "-9.2233720368547758e18",	INT64_MIN },
	{ "1.9",			1 },
	{ "-1.9",			-1 },
	{ "0.5",			0 },
	{ "1e3",			1000 },
	{ "-0",				0 },
};

START_TEST(test_int_range)
{
	char		text[64];
	struct json	v;
	int		len;

	len = snprintf(text, sizeof(text), "{\"n\":%s}", int_cases[_i].num);
	ck_assert_int_eq(parse_n(text, (size_t)len, &v), 0);
	ck_assert_int_eq(json_int(&v, "n"), int_cases[_i].want);
	json_free(&v);
}
END_TEST

/* On anything but an object: NULL, 0, NULL, false. */
static const char *const nonobj_docs[] = {
	"null", "true", "false", "0", "42", "\"s\"", "[]",
	"[{\"s\":\"x\"}]", "[\"s\",1]",
};

START_TEST(test_accessors_nonobj)
{
	struct json	v;

	ck_assert_int_eq(parse_n(nonobj_docs[_i], strlen(nonobj_docs[_i]),
	    &v), 0);
	ck_assert_ptr_null(json_get(&v, "s"));
	ck_assert_int_eq(json_int(&v, "s"), 0);
	ck_assert_ptr_null(json_str(&v, "s"));
	ck_assert(!json_bool(&v, "s"));
	ck_assert_ptr_null(json_get(&v, ""));
	json_free(&v);
	/* A zeroed struct (a failed parse, a freed tree) and NULL. */
	ck_assert_ptr_null(json_get(&v, "s"));
	ck_assert_ptr_null(json_get(NULL, "s"));
	ck_assert_int_eq(json_int(NULL, "s"), 0);
	ck_assert_ptr_null(json_str(NULL, "s"));
	ck_assert(!json_bool(NULL, "s"));
}
END_TEST

/* The accessors on a member object, as callers walk a tree. */
START_TEST(test_accessors_nested)
{
	struct json		 v;
	const struct json	*o, *a;

	ck_assert_int_eq(parse_n(T(acc_doc), &v), 0);
	o = json_get(&v, "o");
	ck_assert_str_eq(json_str(o, "s"), "inner");
	ck_assert_int_eq(json_int(o, "i"), 1);
	ck_assert_ptr_null(json_get(o, "o"));
	a = json_get(&v, "a");
	ck_assert_uint_eq(a->n, 3);
	ck_assert_ptr_null(json_get(a, "0"));
	ck_assert_str_eq(a->items[1].str, "x");
	ck_assert(a->items[2].b);
	json_free(&v);
}
END_TEST

/* json_free() zeroes <v>, and a zeroed <v> frees as a no-op. */
START_TEST(test_free)
{
	struct json	v;

	ck_assert_int_eq(parse_n(T(acc_doc), &v), 0);
	json_free(&v);
	ck_assert(is_zeroed(&v));
	json_free(&v);
	ck_assert(is_zeroed(&v));
	ck_assert_int_eq(parse_n(T("\"secret\""), &v), 0);
	json_free(&v);
	ck_assert(is_zeroed(&v));
}
END_TEST

/* The writer: each input, what it writes, and what the reader makes of
 * that (NULL: the same octets). */
static const struct {
	const char	*in;
	size_t		 n;
	const char	*out;
	const char	*back;
} put_cases[] = {
	{ "", 0, "\"\"", NULL },
	{ "plain text", 10, "\"plain text\"", NULL },
	{ "a\"b\\c", 5, "\"a\\\"b\\\\c\"", NULL },
	{ "tab\there\r\n", 10, "\"tab\\u0009here\\u000d\\u000a\"", NULL },
	{ "del\x7f", 4, "\"del\\u007f\"", NULL },
	{ "nul\0x", 5, "\"nul\\ufffdx\"", "nul\xef\xbf\xbdx" },
	{ "j\xc3\xb6rg \xf0\x9f\x93\xa7", 10, "\"j\xc3\xb6rg \xf0\x9f\x93\xa7\"",
	    NULL },
	{ "bad \xc3 \xff", 7, "\"bad \\u00c3 \\u00ff\"", "bad \xc3\x83 \xc3\xbf" },
	{ "cut \xe2\x82", 6, "\"cut \\u00e2\\u0082\"", "cut \xc3\xa2\xc2\x82" },
};

static void
put_buf(void *arg, const void *p, size_t n)
{
	buf_add(arg, p, n);
}

START_TEST(test_put_str)
{
	struct buf	 b = BUF_INIT;
	struct json	 v;
	const char	*back = put_cases[_i].back;

	json_put_str(put_buf, &b, put_cases[_i].in, put_cases[_i].n);
	ck_assert_str_eq(b.p, put_cases[_i].out);
	ck_assert_int_eq(json_parse(b.p, b.len, &v), 0);
	ck_assert_int_eq(v.type, JSON_STR);
	if (back == NULL) {
		ck_assert_uint_eq(v.n, put_cases[_i].n);
		ck_assert_mem_eq(v.str, put_cases[_i].in, v.n);
	} else
		ck_assert_str_eq(v.str, back);
	json_free(&v);
	buf_free(&b);
}
END_TEST

static Suite *
json_suite(void)
{
	Suite	*s = suite_create("json");
	TCase	*tc;

	tc = tcase_create("valid");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_ok, 0, nitems(ok_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("invalid");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_bad, 0, nitems(bad_cases));
	tcase_add_loop_test(tc, test_control_octets, 0, 0x20);
	suite_add_tcase(s, tc);

	tc = tcase_create("numbers");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_numbers, 0, nitems(num_cases));
	tcase_add_test(tc, test_numbers_huge);
	tcase_add_loop_test(tc, test_numbers_bad, 0, nitems(num_bad));
	suite_add_tcase(s, tc);

	tc = tcase_create("bounds");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_length);
	tcase_add_loop_test(tc, test_prefixes, 0, nitems(prefix_docs));
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_depth, 0, 3);
	tcase_add_test(tc, test_depth_huge);
	tcase_add_test(tc, test_large);
	tcase_add_test(tc, test_memory);
	suite_add_tcase(s, tc);

	tc = tcase_create("accessors");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_accessors, 0, nitems(acc_cases));
	tcase_add_loop_test(tc, test_int_range, 0, nitems(int_cases));
	tcase_add_loop_test(tc, test_accessors_nonobj, 0,
	    nitems(nonobj_docs));
	tcase_add_test(tc, test_accessors_nested);
	tcase_add_test(tc, test_free);
	suite_add_tcase(s, tc);
	tc = tcase_create("write");
	tcase_add_loop_test(tc, test_put_str, 0, nitems(put_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(json_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
