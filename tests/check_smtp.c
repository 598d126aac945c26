/*
 * check_smtp.c - unit tests for smtp.c: verbs, clean lines, HELO, MAIL
 * and RCPT arguments, mailbox syntax, DATA decoding and dot-stuffing.
 *
 * Parsers are tested from tables, one row per input; long inputs are
 * built from string-literal macros whose lengths a sanity test checks.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"
#include "util.h"

/* Repeated characters, for the length limits. */
#define A4	"aaaa"
#define A16	A4 A4 A4 A4
#define A32	A16 A16
#define A60	A32 A16 A4 A4 A4
#define A62	A60 "aa"
/* U+7528 U+6237 @ U+4F8B U+5B50 . U+516C U+53F8 */
#define YONGHU	"\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90." \
		"\xe5\x85\xac\xe5\x8f\xb8"
#define A63	A60 "aaa"
#define A64	A32 A32
#define A65	A64 "a"
/* Labels of 63 octets: "b"x63 etc. Domains of exact total lengths. */
#define B4	"bbbb"
#define B16	B4 B4 B4 B4
#define L61	B16 B16 B16 B4 B4 B4 "b"
#define L63	L61 "bb"
#define L64	L63 "b"
#define L62	L61 "b"
#define D189	L63 "." L63 "." L61		/* 63+1+63+1+61 */
#define D190	L63 "." L63 "." L62
#define D255	L63 "." L63 "." L63 "." L63	/* 4*63+3 */
#define D256	L63 "." L63 "." L63 "." L61 ".bb"
#define H255	D255
#define H256	D255 "x"

#define MAXSZ	10000000ULL

/*
 * Sanity: the macros above have the lengths their names claim.
 */
START_TEST(test_lengths)
{
	ck_assert_uint_eq(strlen(A63), 63);
	ck_assert_uint_eq(strlen(A64), 64);
	ck_assert_uint_eq(strlen(A65), 65);
	ck_assert_uint_eq(strlen(L61), 61);
	ck_assert_uint_eq(strlen(L63), 63);
	ck_assert_uint_eq(strlen(L64), 64);
	ck_assert_uint_eq(strlen(D189), 189);
	ck_assert_uint_eq(strlen(D190), 190);
	ck_assert_uint_eq(strlen(D255), 255);
	ck_assert_uint_eq(strlen(D256), 256);
	/* "<" A64 "@" D189 ">" is exactly SMTP_PATH_MAX. */
	ck_assert_uint_eq(strlen("<" A64 "@" D189 ">"), SMTP_PATH_MAX);
}
END_TEST

/*
 * smtp_parse_verb
 */
static const struct {
	const char	*line;
	enum smtp_verb	 want;
	const char	*want_args;
} verb_cases[] = {
	{ "HELO client.example",	SMTP_VERB_HELO,	"client.example" },
	{ "helo client.example",	SMTP_VERB_HELO,	"client.example" },
	{ "EHLO x",			SMTP_VERB_EHLO,	"x" },
	{ "eHlO   x  ",			SMTP_VERB_EHLO,	"x  " },
	{ "EHLO",			SMTP_VERB_EHLO,	"" },
	{ "MAIL FROM:<a@b.example>",	SMTP_VERB_MAIL,	"FROM:<a@b.example>" },
	{ "mail from:<>",		SMTP_VERB_MAIL,	"from:<>" },
	{ "MAIL \t FROM:<>",		SMTP_VERB_MAIL,	"FROM:<>" },
	{ "MAIL\tFROM:<>",		SMTP_VERB_MAIL,	"FROM:<>" },
	{ "MAILFROM:<a@b.example>",	SMTP_VERB_UNKNOWN, "" },
	{ " MAIL FROM:<>",		SMTP_VERB_UNKNOWN, "" },
	{ "RCPT TO:<a@b.example>",	SMTP_VERB_RCPT,	"TO:<a@b.example>" },
	{ "Rcpt to:<a@b.example>",	SMTP_VERB_RCPT,	"to:<a@b.example>" },
	{ "DATA",			SMTP_VERB_DATA,	"" },
	{ "data ",			SMTP_VERB_DATA,	"" },
	{ "DATAX",			SMTP_VERB_UNKNOWN, "" },
	{ "RSET",			SMTP_VERB_RSET,	"" },
	{ "NOOP anything at all",	SMTP_VERB_NOOP,	"anything at all" },
	{ "QUIT",			SMTP_VERB_QUIT,	"" },
	{ "quit",			SMTP_VERB_QUIT,	"" },
	{ "QUIT extra",			SMTP_VERB_QUIT,	"extra" },
	{ "VRFY postmaster",		SMTP_VERB_VRFY,	"postmaster" },
	{ "HELP",			SMTP_VERB_HELP,	"" },
	{ "HELP MAIL",			SMTP_VERB_HELP,	"MAIL" },
	{ "STARTTLS",			SMTP_VERB_STARTTLS, "" },
	{ "StartTls",			SMTP_VERB_STARTTLS, "" },
	{ "STARTTLSX",			SMTP_VERB_UNKNOWN, "" },
	{ "START",			SMTP_VERB_UNKNOWN, "" },
	{ "AUTH PLAIN AGFsaWNlAHNlY3JldA==", SMTP_VERB_AUTH,
	    "PLAIN AGFsaWNlAHNlY3JldA==" },
	{ "",				SMTP_VERB_UNKNOWN, "" },
	{ " ",				SMTP_VERB_UNKNOWN, "" },
	{ "HEL",			SMTP_VERB_UNKNOWN, "" },
	{ "XYZZY",			SMTP_VERB_UNKNOWN, "" },
	{ "HELO\r",			SMTP_VERB_UNKNOWN, "" },
	{ "HELO\x80",			SMTP_VERB_UNKNOWN, "" },
	{ "\x80HELO x",			SMTP_VERB_UNKNOWN, "" },
	{ "HEL\xcf x",			SMTP_VERB_UNKNOWN, "" },
	{ "GET / HTTP/1.0",		SMTP_VERB_UNKNOWN, "" },
};

START_TEST(test_parse_verb)
{
	const char	*args = NULL;
	enum smtp_verb	 v;

	v = smtp_parse_verb(verb_cases[_i].line, &args);
	ck_assert_msg(v == verb_cases[_i].want, "line \"%s\": verb %d, "
	    "want %d", verb_cases[_i].line, v, verb_cases[_i].want);
	ck_assert_ptr_nonnull(args);
	ck_assert_str_eq(args, verb_cases[_i].want_args);
	/* args always points into the line itself. */
	ck_assert(args >= verb_cases[_i].line && args <=
	    verb_cases[_i].line + strlen(verb_cases[_i].line));
}
END_TEST

START_TEST(test_parse_verb_null_args)
{
	ck_assert_int_eq(smtp_parse_verb("QUIT", NULL), SMTP_VERB_QUIT);
	ck_assert_int_eq(smtp_parse_verb("BOGUS", NULL), SMTP_VERB_UNKNOWN);
}
END_TEST

/*
 * smtp_line_is_clean
 */
static const struct {
	const char	*line;
	size_t		 len;
	bool		 want;
} clean_cases[] = {
#define CL(s, w)	{ s, sizeof(s) - 1, w }
	CL("MAIL FROM:<a@b.example>",	true),
	CL("",				true),
	CL("a\tb",			true),
	CL(" ~!\"#$%&'()*+,-./0189:;<=>?@AZ[\\]^_`az{|}", true),
	CL("a\rb",			false),
	CL("a\r",			false),
	CL("a\nb",			false),
	CL("a\0b",			false),
	CL("\0",			false),
	CL("\x01",			false),
	CL("\x1b[31m",			false),
	CL("\x1f",			false),
	CL("\x7f",			false),
	CL("\x80",			false),
	/* RFC 6531: well-formed UTF-8, and nothing else over 0x7f. */
	CL("caf\xc3\xa9",		true),
	CL("MAIL FROM:<j\xc3\xb6rg@\xc3\xa9.example> SMTPUTF8", true),
	CL("\xe2\x82\xac\xf0\x9f\x98\x80",	true),
	CL("caf\xc3",			false),	/* cut short */
	CL("caf\xc3\x41",		false),	/* no continuation */
	CL("\xc0\xaf",			false),	/* over-long '/' */
	CL("\xe0\x80\xaf",		false),	/* over-long '/' */
	CL("\xed\xa0\x80",		false),	/* a surrogate */
	CL("\xf4\x90\x80\x80",		false),	/* over U+10FFFF */
	CL("\xc3\xa9\r",		false),
	CL("\xc3\0",			false),
	CL("\xff",			false),
	CL("\v",			false),
	CL("\f",			false),
#undef CL
};

START_TEST(test_line_is_clean)
{
	ck_assert_msg(smtp_line_is_clean(clean_cases[_i].line,
	    clean_cases[_i].len) == clean_cases[_i].want, "row %d", _i);
}
END_TEST

/*
 * smtp_parse_helo
 */
static const struct {
	const char	*args;
	enum smtp_rc	 want;
	const char	*want_out;
} helo_cases[] = {
	{ "client.example",		SMTP_OK,	"client.example" },
	{ "[192.0.2.1]",		SMTP_OK,	"[192.0.2.1]" },
	{ "[IPv6:2001:db8::1]",		SMTP_OK,	"[IPv6:2001:db8::1]" },
	{ "printer_3F",			SMTP_OK,	"printer_3F" },
	/* What LAN devices send (issue 13): an address without brackets,
	 * a name with underscores. */
	{ "192.168.1.20",		SMTP_OK,	"192.168.1.20" },
	{ "my_printer",			SMTP_OK,	"my_printer" },
	{ "::1",			SMTP_OK,	"::1" },
	{ "localhost   ",		SMTP_OK,	"localhost" },
	{ "localhost\t",		SMTP_OK,	"localhost" },
	{ "  lead.example",		SMTP_OK,	"lead.example" },
	{ H255,				SMTP_OK,	H255 },
	{ H256,				SMTP_ESYNTAX,	"" },
	{ "",				SMTP_ESYNTAX,	"" },
	{ "   ",			SMTP_ESYNTAX,	"" },
	{ "two words",			SMTP_ESYNTAX,	"" },
	{ "a\tb",			SMTP_ESYNTAX,	"" },
	{ "host\x01",			SMTP_ESYNTAX,	"" },
	{ "host\r",			SMTP_ESYNTAX,	"" },
	{ "h\xc3\xa9te",		SMTP_ESYNTAX,	"" },
	{ "\x80",			SMTP_ESYNTAX,	"" },
};

START_TEST(test_parse_helo)
{
	char		out[SMTP_DOMAIN_MAX + 1];
	enum smtp_rc	rc;

	memset(out, 'Z', sizeof(out));
	rc = smtp_parse_helo(helo_cases[_i].args, out, sizeof(out));
	ck_assert_msg(rc == helo_cases[_i].want, "row %d: rc %d", _i, rc);
	ck_assert_str_eq(out, helo_cases[_i].want_out);
}
END_TEST

START_TEST(test_parse_helo_small_buffer)
{
	char	out[8];

	ck_assert_int_eq(smtp_parse_helo("1234567", out, sizeof(out)),
	    SMTP_OK);
	ck_assert_str_eq(out, "1234567");
	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(smtp_parse_helo("12345678", out, sizeof(out)),
	    SMTP_ESYNTAX);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(smtp_parse_helo("x", out, 0), SMTP_ESYNTAX);
}
END_TEST

/*
 * smtp_parse_mail
 */
static const struct {
	const char	*args;
	enum smtp_rc	 want;
	const char	*want_path;
	uint64_t	 want_size;
	enum smtp_body	 want_body;
} mail_cases[] = {
#define MOK(p)		SMTP_OK, p, 0, SMTP_BODY_UNSPEC
#define MOKP(p, n, b)	SMTP_OK, p, n, SMTP_BODY_##b
#define MERR(rc)	SMTP_##rc, "", 0, SMTP_BODY_UNSPEC
	/* Plain forms. */
	{ "FROM:<alice@example.org>",	MOK("alice@example.org") },
	{ "from:<alice@example.org>",	MOK("alice@example.org") },
	{ "From:<A.Smith@Example.ORG>",	MOK("A.Smith@Example.ORG") },
	{ "FROM:<>",			MOK("") },
	{ "FROM: <a@b.example>",	MOK("a@b.example") },
	{ "FROM:  \t<a@b.example>  ",	MOK("a@b.example") },
	{ "FROM:<a+tag@b.example>",	MOK("a+tag@b.example") },
	{ "FROM:<!#$%&'*+-/=?^_`{|}~@x.example>",
	    MOK("!#$%&'*+-/=?^_`{|}~@x.example") },
	{ "FROM:<a@b>",			MOK("a@b") },
	/* Not a MAIL argument at all. */
	{ "",				MERR(ESYNTAX) },
	{ "FROM",			MERR(ESYNTAX) },
	{ "FROM:",			MERR(ESYNTAX) },
	{ "FROM :<a@b.example>",	MERR(ESYNTAX) },
	{ "TO:<a@b.example>",		MERR(ESYNTAX) },
	{ "FROM:<alice@example.org",	MERR(ESYNTAX) },
	{ "FROM:alice@example.org>",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example>garbage",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example><c@d.example>", MERR(ESYNTAX) },
	{ "FROM:<a@b.example>SIZE=10",	MERR(ESYNTAX) },
	/* Tolerated, as Postfix does (issue 13): no angle brackets, a
	 * local part without domain (the session qualifies it). */
	{ "FROM:alice@example.org",	MOK("alice@example.org") },
	{ "FROM: alice@example.org",	MOK("alice@example.org") },
	{ "FROM:scanner@lan SIZE=42",	MOKP("scanner@lan", 42, UNSPEC) },
	{ "FROM:scanner@lan\tBODY=8BITMIME", MOKP("scanner@lan", 0,
	    8BITMIME) },
	{ "FROM:scanner@lan  ",		MOK("scanner@lan") },
	{ "FROM:\"a b\"@x.example SIZE=1", MOKP("\"a b\"@x.example", 1,
	    UNSPEC) },
	{ "FROM:<scanner>",		MOK("scanner") },
	{ "FROM:<alice>",		MOK("alice") },
	{ "FROM:<postmaster>",		MOK("postmaster") },
	{ "FROM: <Scanner.3F>",		MOK("Scanner.3F") },
	{ "FROM:scanner",		MOK("scanner") },
	{ "FROM:<\"a b\">",		MOK("\"a b\"") },
	{ "FROM:<@a.example:scanner>",	MOK("scanner") },
	{ "FROM:<" A64 ">",		MOK(A64) },
	{ "FROM:" A64 "@" D189,		MOK(A64 "@" D189) },
	/* Still refused: what could smuggle or overflow. */
	{ "FROM:<" A65 ">",		MERR(EADDR) },
	{ "FROM:" A64 "@" D190,		MERR(EADDR) },
	{ "FROM:a@" D256,		MERR(EADDR) },
	{ "FROM:<<a@b.example>>",	MERR(EADDR) },
	{ "FROM:<a<b@x.example>",	MERR(EADDR) },
	{ "FROM:<a@b.example>>",	MERR(ESYNTAX) },
	{ "FROM:a@b.example>",		MERR(ESYNTAX) },
	{ "FROM:a<b@x.example",		MERR(ESYNTAX) },
	{ "FROM:>",			MERR(ESYNTAX) },
	{ "FROM:<",			MERR(ESYNTAX) },
	{ "FROM:  ",			MERR(ESYNTAX) },
	{ "FROM:Scanner <s@x.example>",	MERR(ESYNTAX) },
	{ "FROM:s@x.example <t@x.example>", MERR(ESYNTAX) },
	{ "FROM:a\r@b.example",		MERR(EADDR) },
	{ "FROM:<a\r\n@b.example>",	MERR(EADDR) },
	{ "FROM:<a\nRCPT TO:<x@y>",	MERR(EADDR) },
	{ "FROM:a\n@b.example",		MERR(EADDR) },
	{ "FROM:a\x01b",			MERR(EADDR) },
	{ "FROM:<a@b\x7f.example>",	MERR(EADDR) },
	{ "FROM:a b",			MERR(EPARAM) },
	{ "FROM:a.@b.example",		MERR(EADDR) },
	{ "FROM:.a",			MERR(EADDR) },
	{ "FROM:a@",			MERR(EADDR) },
	{ "FROM:@x.example",		MERR(EADDR) },
	{ "FROM:@a.example:",		MERR(EADDR) },
	{ "FROM:\"a b@x.example",	MERR(EADDR) },
	{ "FROM:caf\xc3\xa9",		MOK("caf\xc3\xa9") },
	{ "FROM:caf\xc3",		MERR(EADDR) },
	/* Source routes: accepted, dropped (RFC 5321 4.1.2, C.). */
	{ "FROM:<@a.example,@b.example:user@c.example>",
	    MOK("user@c.example") },
	{ "FROM:<@a.example:user@c.example>", MOK("user@c.example") },
	{ "FROM:<@a.example user@c.example>", MERR(EADDR) },
	{ "FROM:<@:user@c.example>",	MERR(EADDR) },
	{ "FROM:<@a.example,:user@c.example>", MERR(EADDR) },
	{ "FROM:<@a.example,b.example:u@c.example>", MERR(EADDR) },
	{ "FROM:<@a.example:>",		MERR(EADDR) },
	{ "FROM:<@-a.example:u@c.example>", MERR(EADDR) },
	/* Quoted local parts: '>', spaces and escapes inside quotes. */
	{ "FROM:<\"a b>c\"@x.example>",	MOK("\"a b>c\"@x.example") },
	{ "FROM:<\"a\\\"b\"@x.example>", MOK("\"a\\\"b\"@x.example") },
	{ "FROM:<\"a\\\\\"@x.example> SIZE=5",
	    MOKP("\"a\\\\\"@x.example", 5, UNSPEC) },
	{ "FROM:<\"\"@x.example>",	MOK("\"\"@x.example") },
	{ "FROM:<\"a b@x.example>",	MERR(ESYNTAX) },
	{ "FROM:<\"a\\\">",		MERR(ESYNTAX) },
	{ "FROM:<\"a\"b@x.example>",	MERR(EADDR) },
	{ "FROM:<\"a\tb\"@x.example>",	MERR(EADDR) },
	{ "FROM:<\"a\\\x01\"@x.example>", MERR(EADDR) },
	/* Local part and domain shapes. */
	{ "FROM:<a b@x.example>",	MERR(EADDR) },
	{ "FROM:<.a@x.example>",	MERR(EADDR) },
	{ "FROM:<a.@x.example>",	MERR(EADDR) },
	{ "FROM:<a..b@x.example>",	MERR(EADDR) },
	{ "FROM:<a@x.example.>",	MERR(EADDR) },
	{ "FROM:<a@x..example>",	MERR(EADDR) },
	{ "FROM:<a@-x.example>",	MERR(EADDR) },
	{ "FROM:<a@x-.example>",	MERR(EADDR) },
	{ "FROM:<a@x_y.example>",	MERR(EADDR) },
	{ "FROM:<a@>",			MERR(EADDR) },
	{ "FROM:<@x.example>",		MERR(EADDR) },
	{ "FROM:<a@b@c.example>",	MERR(EADDR) },
	/* UTF-8 (RFC 6531 3.3), whether or not SMTPUTF8 comes along. */
	{ "FROM:<caf\xc3\xa9@x.example>", MOK("caf\xc3\xa9@x.example") },
	{ "FROM:<a@\xc3\xa9.example>",	MOK("a@\xc3\xa9.example") },
	{ "FROM:<\"j\xc3\xb6 rg\"@x.example>",
	    MOK("\"j\xc3\xb6 rg\"@x.example") },
	{ "FROM:<caf\xc3@x.example>",	MERR(EADDR) },
	{ "FROM:<caf\xc3\xa9\xa9@x.example>", MERR(EADDR) },
	{ "FROM:<a@\xc3.example>",	MERR(EADDR) },
	{ "FROM:<a@x.\xed\xa0\x80>",	MERR(EADDR) },
	/* An over-long '<'. */
	{ "FROM:<\xc0\xbc" "a@x.example>",	MERR(EADDR) },
	{ "FROM:<\xc3\xa9\r@x.example>", MERR(EADDR) },
	{ "FROM:<" A62 "\xc3\xa9@x.example>", MOK(A62 "\xc3\xa9@x.example") },
	{ "FROM:<" A63 "\xc3\xa9@x.example>", MERR(EADDR) },	/* 65 octets */
	{ "FROM:<" A64 "@x.example>",	MOK(A64 "@x.example") },
	{ "FROM:<" A65 "@x.example>",	MERR(EADDR) },
	{ "FROM:<a@" L63 ".example>",	MOK("a@" L63 ".example") },
	{ "FROM:<a@" L64 ".example>",	MERR(EADDR) },
	{ "FROM:<" A64 "@" D189 ">",	MOK(A64 "@" D189) },
	{ "FROM:<" A64 "@" D190 ">",	MERR(EADDR) },
	{ "FROM:<a@" D256 ">",		MERR(EADDR) },
	/* Address literals. */
	{ "FROM:<a@[192.0.2.1]>",	MOK("a@[192.0.2.1]") },
	{ "FROM:<a@[255.255.255.255]>",	MOK("a@[255.255.255.255]") },
	{ "FROM:<a@[1.2.3.256]>",	MERR(EADDR) },
	{ "FROM:<a@[1.2.3]>",		MERR(EADDR) },
	{ "FROM:<a@[1.2.3.4.5]>",	MERR(EADDR) },
	{ "FROM:<a@[1.2.3.4]x>",	MERR(EADDR) },
	{ "FROM:<a@[IPv6:::1]>",	MOK("a@[IPv6:::1]") },
	{ "FROM:<a@[IPv6:2001:db8::1]>", MOK("a@[IPv6:2001:db8::1]") },
	{ "FROM:<a@[IPv6:zz]>",		MERR(EADDR) },
	{ "FROM:<a@[IPv6:1.2.3.4]>",	MERR(EADDR) },
	{ "FROM:<a@[::1]>",		MERR(EADDR) },
	/* SIZE (RFC 1870). */
	{ "FROM:<a@b.example> SIZE=1000", MOKP("a@b.example", 1000, UNSPEC) },
	{ "FROM:<a@b.example> size=0",	MOK("a@b.example") },
	{ "FROM:<a@b.example>  SIZE=42  ", MOKP("a@b.example", 42, UNSPEC) },
	{ "FROM:<a@b.example> SIZE=10000000",
	    MOKP("a@b.example", MAXSZ, UNSPEC) },
	{ "FROM:<a@b.example> SIZE=10000001", MERR(ETOOBIG) },
	{ "FROM:<a@b.example> SIZE=18446744073709551615", MERR(ETOOBIG) },
	{ "FROM:<a@b.example> SIZE=18446744073709551616", MERR(ETOOBIG) },
	{ "FROM:<a@b.example> SIZE=99999999999999999999", MERR(ETOOBIG) },
	{ "FROM:<a@b.example> SIZE=000000000000000000001", MERR(ESYNTAX) },
	{ "FROM:<a@b.example> SIZE=",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example> SIZE",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example> SIZE=abc", MERR(ESYNTAX) },
	{ "FROM:<a@b.example> SIZE=12k", MERR(ESYNTAX) },
	{ "FROM:<a@b.example> SIZE=-1",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example> SIZE=+1",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example> SIZE=1 SIZE=1", MERR(ESYNTAX) },
	/* BODY (RFC 6152). */
	{ "FROM:<a@b.example> BODY=8BITMIME",
	    MOKP("a@b.example", 0, 8BITMIME) },
	{ "FROM:<a@b.example> body=8bitmime",
	    MOKP("a@b.example", 0, 8BITMIME) },
	{ "FROM:<a@b.example> BODY=7BIT SIZE=7",
	    MOKP("a@b.example", 7, 7BIT) },
	{ "FROM:<> SIZE=7 BODY=8BITMIME", MOKP("", 7, 8BITMIME) },
	{ "FROM:<a@b.example> BODY=BINARYMIME", MERR(EPARAM) },
	{ "FROM:<a@b.example> BODY=",	MERR(EPARAM) },
	{ "FROM:<a@b.example> BODY",	MERR(EPARAM) },
	{ "FROM:<a@b.example> BODY=7BIT BODY=7BIT", MERR(ESYNTAX) },
	/* SMTPUTF8 (RFC 6531): see utf8_cases. */
	{ "FROM:<a@b.example> SMTPUTF8", MOK("a@b.example") },
	{ "FROM:<a@b.example> SMTPUTF8=yes", MERR(ESYNTAX) },
	{ "FROM:<a@b.example> SMTPUTF8 SMTPUTF8", MERR(ESYNTAX) },
	/* Everything else is an unsupported parameter. */
	/* AUTH (RFC 4954 5): accepted and ignored when well formed. */
	{ "FROM:<a@b.example> AUTH=<>",	MOKP("a@b.example", 0, UNSPEC) },
	{ "FROM:<a@b.example> AUTH=a+2Bb@c.example SIZE=3",
	    MOKP("a@b.example", 3, UNSPEC) },
	{ "FROM:<a@b.example> AUTH=",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example> AUTH",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example> AUTH=a+2",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example> AUTH=a+zz",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example> AUTH=a=b",	MERR(ESYNTAX) },
	{ "FROM:<a@b.example> AUTH=<> AUTH=<>", MERR(ESYNTAX) },
	{ "FROM:<a@b.example> RET=HDRS", MERR(EPARAM) },
	{ "FROM:<a@b.example> ENVID=x",	MERR(EPARAM) },
	{ "FROM:<a@b.example> SIZES=1",	MERR(EPARAM) },
	{ "FROM:<a@b.example> =1",	MERR(EPARAM) },
	{ "FROM:<a@b.example> SIZE=1 FOO", MERR(EPARAM) },
	{ "FROM:<a@b.example> \x80",	MERR(EPARAM) },
	/* The first failing parameter decides. */
	{ "FROM:<a@b.example> FOO SIZE=x", MERR(EPARAM) },
	{ "FROM:<a@b.example> SIZE=x FOO", MERR(ESYNTAX) },
	{ "FROM:<x@b.example SIZE=1",	MERR(ESYNTAX) },
#undef MOK
#undef MOKP
#undef MERR
};

START_TEST(test_parse_mail)
{
	struct smtp_mail	m;
	enum smtp_rc		rc;

	memset(&m, 'Z', sizeof(m));
	rc = smtp_parse_mail(mail_cases[_i].args, MAXSZ, &m);
	ck_assert_msg(rc == mail_cases[_i].want, "row %d \"%.60s\": rc %d, "
	    "want %d", _i, mail_cases[_i].args, rc, mail_cases[_i].want);
	ck_assert_str_eq(m.path, mail_cases[_i].want_path);
	ck_assert_uint_eq(m.size, mail_cases[_i].want_size);
	ck_assert_int_eq(m.body, mail_cases[_i].want_body);
}
END_TEST

/* What SMTPUTF8 and BODY= leave in struct smtp_mail. */
static const struct {
	const char	*args;
	bool		 smtputf8;
	enum smtp_body	 body;
} utf8_cases[] = {
	{ "FROM:<a@b.example>",			false, SMTP_BODY_UNSPEC },
	{ "FROM:<a@b.example> SMTPUTF8",	true,  SMTP_BODY_UNSPEC },
	{ "FROM:<a@b.example> smtputf8",	true,  SMTP_BODY_UNSPEC },
	{ "FROM:<j\xc3\xb6rg@b.example> SMTPUTF8 BODY=8BITMIME",
	    true, SMTP_BODY_8BITMIME },
	{ "FROM:<j\xc3\xb6rg@b.example>",	false, SMTP_BODY_UNSPEC },
	{ "FROM:<> BODY=7BIT SMTPUTF8 SIZE=1",		true,  SMTP_BODY_7BIT },
};

START_TEST(test_parse_mail_utf8)
{
	struct smtp_mail	m;

	memset(&m, 'Z', sizeof(m));
	ck_assert_int_eq(smtp_parse_mail(utf8_cases[_i].args, MAXSZ, &m),
	    SMTP_OK);
	ck_assert(m.smtputf8 == utf8_cases[_i].smtputf8);
	ck_assert_int_eq(m.body, utf8_cases[_i].body);
	/* A refused command leaves nothing behind. */
	ck_assert_int_eq(smtp_parse_mail("FROM:<a@b.example> SMTPUTF8 X",
	    MAXSZ, &m), SMTP_EPARAM);
	ck_assert(!m.smtputf8);
}
END_TEST

START_TEST(test_parse_mail_size_limit_max)
{
	struct smtp_mail	m;

	ck_assert_int_eq(smtp_parse_mail(
	    "FROM:<a@b.example> SIZE=18446744073709551615", UINT64_MAX, &m),
	    SMTP_OK);
	ck_assert(m.size == UINT64_MAX);
	ck_assert_int_eq(smtp_parse_mail("FROM:<a@b.example> SIZE=1", 0,
	    &m), SMTP_ETOOBIG);
}
END_TEST

/*
 * smtp_parse_rcpt
 */
static const struct {
	const char	*args;
	enum smtp_rc	 want;
	const char	*want_path;
} rcpt_cases[] = {
	{ "TO:<bob@example.org>",	SMTP_OK,	"bob@example.org" },
	{ "to:<bob@example.org>",	SMTP_OK,	"bob@example.org" },
	{ "To: <bob@example.org>  ",	SMTP_OK,	"bob@example.org" },
	{ "TO:<postmaster>",		SMTP_OK,	"postmaster" },
	{ "TO:<Postmaster>",		SMTP_OK,	"Postmaster" },
	{ "to: <POSTMASTER>",		SMTP_OK,	"POSTMASTER" },
	{ "TO:<postmaster@x.example>",	SMTP_OK, "postmaster@x.example" },
	{ "TO:<@r.example:bob@x.example>", SMTP_OK,	"bob@x.example" },
	{ "TO:<\"b o>b\"@x.example>",	SMTP_OK,	"\"b o>b\"@x.example" },
	{ "TO:<a@[IPv6:::1]>",		SMTP_OK,	"a@[IPv6:::1]" },
	/* Local names and bare addresses (issue 13), for the session to
	 * route; a space after the colon. */
	{ "TO:<root>",			SMTP_OK,	"root" },
	{ "TO:root",			SMTP_OK,	"root" },
	{ "TO: <x@y>",			SMTP_OK,	"x@y" },
	{ "TO: x@y",			SMTP_OK,	"x@y" },
	{ "TO:bob@example.org",		SMTP_OK,	"bob@example.org" },
	{ "TO:bob@example.org  ",	SMTP_OK,	"bob@example.org" },
	{ "TO:<postmasterx>",		SMTP_OK,	"postmasterx" },
	{ "TO:<@r.example:postmaster>",	SMTP_OK,	"postmaster" },
	{ "TO:<\"postmaster\">",	SMTP_OK,	"\"postmaster\"" },
	{ "TO:bob@example.org NOTIFY=NEVER", SMTP_EPARAM, "" },
	{ "TO:root <x@y>",		SMTP_ESYNTAX,	"" },
	{ "TO:<<root>>",		SMTP_EADDR,	"" },
	{ "TO:<ro\rot>",		SMTP_EADDR,	"" },
	{ "TO:<" A65 ">",		SMTP_EADDR,	"" },
	{ "TO:<a.>",			SMTP_EADDR,	"" },
	{ "TO:<>",			SMTP_EADDR,	"" },
	{ "TO:<> NOTIFY=NEVER",		SMTP_EADDR,	"" },
	{ "TO:<a..b@x.example>",	SMTP_EADDR,	"" },
	{ "TO:<a@-b.example>",		SMTP_EADDR,	"" },
	{ "TO:<a@b.example.>",		SMTP_EADDR,	"" },
	{ "TO:<a@[1.2.3.256]>",		SMTP_EADDR,	"" },
	{ "TO:<" A65 "@x.example>",	SMTP_EADDR,	"" },
	{ "TO:<" A64 "@" D190 ">",	SMTP_EADDR,	"" },
	{ "TO:<b\xff@x.example>",	SMTP_EADDR,	"" },
	{ "TO:<j\xc3\xb6rg@x.example>",	SMTP_OK,
	    "j\xc3\xb6rg@x.example" },
	{ "TO:<" YONGHU ">",		SMTP_OK,	YONGHU },
	{ "TO:<r\xc3\xb6\xc3\xb6t>",	SMTP_OK,	"r\xc3\xb6\xc3\xb6t" },
	{ "TO:<<j\xc3\xb6rg@x.example>>", SMTP_EADDR,	"" },
	{ "TO:<j\xc3\xb6rg@x.example> SMTPUTF8", SMTP_EPARAM, "" },
	{ "TO:<bob@example.org> NOTIFY=NEVER", SMTP_EPARAM, "" },
	{ "TO:<bob@example.org> ORCPT=rfc822;bob@example.org", SMTP_EPARAM,
	    "" },
	{ "TO:<postmaster> X",		SMTP_EPARAM,	"" },
	{ "TO:<bob@example.org",	SMTP_ESYNTAX,	"" },
	{ "TO:<bob@example.org>x",	SMTP_ESYNTAX,	"" },
	{ "TO <bob@example.org>",	SMTP_ESYNTAX,	"" },
	{ "TO:",			SMTP_ESYNTAX,	"" },
	{ "",				SMTP_ESYNTAX,	"" },
	{ "FROM:<bob@example.org>",	SMTP_ESYNTAX,	"" },
};

START_TEST(test_parse_rcpt)
{
	struct smtp_rcpt	r;
	enum smtp_rc		rc;

	memset(&r, 'Z', sizeof(r));
	rc = smtp_parse_rcpt(rcpt_cases[_i].args, &r);
	ck_assert_msg(rc == rcpt_cases[_i].want, "row %d \"%.60s\": rc %d, "
	    "want %d", _i, rcpt_cases[_i].args, rc, rcpt_cases[_i].want);
	ck_assert_str_eq(r.path, rcpt_cases[_i].want_path);
}
END_TEST

/*
 * smtp_mailbox_is_valid, directly (no path or length-of-path limit).
 */
static const struct {
	const char	*mailbox;
	bool		 want;
} mbox_cases[] = {
	{ "a@b",			true },
	{ "a.b.c@x-y.example",		true },
	{ "1@2.3",			true },
	{ "\"\"@x.example",		true },
	{ "\"a@b\"@x.example",		true },
	{ "\" \"@x.example",		true },
	{ "\"\\ \"@x.example",		true },
	{ "\"\\~\"@x.example",		true },
	{ "\"a\\\x7f\"@x.example",	false },
	{ "\"a\x7f\"@x.example",	false },
	{ "\"a\\",			false },
	{ "\"a",			false },
	{ A64 "@x.example",		true },
	{ "\"" A60 "aa\"@x.example",	true },		/* 64 with quotes */
	{ "\"" A60 "aaa\"@x.example",	false },	/* 65 with quotes */
	{ A65 "@x.example",		false },
	{ "a@" D255,			true },
	{ "a@" D256,			false },
	{ "a@" L63,			true },
	{ "a@" L64,			false },
	{ "a@x.example.",		false },
	{ "a@.x.example",		false },
	{ "a@x",			true },
	{ "a@x-",			false },
	{ "a@-",			false },
	{ "a@x--y",			true },
	{ "a@1.2.3.4",			true },	/* LDH labels, not a literal */
	{ "a@[1.2.3.4]",		true },
	{ "a@[001.002.003.004]",	true },
	{ "a@[0.0.0.0]",		true },
	{ "a@[1.2.3.256]",		false },
	{ "a@[1.2.3.1000]",		false },
	{ "a@[1.2.3.-4]",		false },
	{ "a@[1..3.4]",			false },
	{ "a@[1.2.3.4.]",		false },
	{ "a@[.1.2.3]",			false },
	{ "a@[1.2.3.4",			false },
	{ "a@1.2.3.4]",			false },
	{ "a@[]",			false },
	{ "a@[",			false },
	{ "a@[IPv6:::1]",		true },
	{ "a@[ipv6:::1]",		true },
	{ "a@[IPv6:::ffff:192.0.2.1]",	true },
	{ "a@[IPv6:1:2:3:4:5:6:7:8]",	true },
	{ "a@[IPv6:1:2:3:4:5:6:7:8:9]",	false },
	{ "a@[IPv6:]",			false },
	{ "a@[IPv6:zz]",		false },
	{ "a@[IPv6:::1%eth0]",		false },
	{ "a@[IPv6:" A64 "]",		false },
	{ "a@[x-tag:content]",		false },
	{ "",				false },
	{ "@",				false },
	{ "a",				false },
	{ "a@",				false },
	{ "@b",				false },
	{ "a@b@c",			false },
	{ "a b@c",			false },
	{ "a@b c",			false },
	{ "a@b\r",			false },
	{ "a\n@b",			false },
	{ "a@b\x80",			false },
	{ "j\xc3\xb6rg@b",		true },
	{ "a@b\xc3\xa9",		true },
	{ "a@\xc3\xa9-\xc3\xa9",		true },
	{ "a@-\xc3\xa9",		false },
	{ "\xc3\xa9.\xc3\xa9@b",		true },
	{ "\xc3\xa9..\xc3\xa9@b",		false },
	{ "a@b\xc3",			false },
	{ "a\xef\xbf@b",			false },
	{ "<a@b>",			false },
	{ "a(comment)@b",		false },
};

START_TEST(test_mailbox_is_valid)
{
	ck_assert_msg(smtp_mailbox_is_valid(mbox_cases[_i].mailbox) ==
	    mbox_cases[_i].want, "row %d \"%.60s\"", _i,
	    mbox_cases[_i].mailbox);
}
END_TEST

/*
 * DATA decoding.  Each case feeds a sequence of lines and checks the
 * canonical output (each returned line followed by CRLF), where the
 * end-of-data marker was found, the recorded error and the hop count.
 */
enum in_kind {
	IN_NONE,		/* end of the input list */
	IN_TEXT,		/* <s>/<len>, <repeat> times */
	IN_FILL,		/* <len> octets of 'x' */
	IN_PIECE,		/* <s>/<len> through smtp_data_piece() */
	IN_PIECE_FILL,		/* <len> octets of 'x', the same way */
};

struct data_in {
	enum in_kind	 kind;
	const char	*s;
	size_t		 len;
	bool		 crlf;
	unsigned int	 repeat;
};

#define T(s)		{ IN_TEXT, s, sizeof(s) - 1, true, 1 }
#define TLF(s)		{ IN_TEXT, s, sizeof(s) - 1, false, 1 }
#define REP(s, n)	{ IN_TEXT, s, sizeof(s) - 1, true, n }
#define FILL(n)		{ IN_FILL, NULL, n, true, 1 }
#define FILL_LF(n)	{ IN_FILL, NULL, n, false, 1 }
#define P(s)		{ IN_PIECE, s, sizeof(s) - 1, false, 1 }
#define PFILL(n)	{ IN_PIECE_FILL, NULL, n, false, 1 }
#define W(s)		s, sizeof(s) - 1
#define WLEN(n)		NULL, n		/* compare only the length */

static const struct data_case {
	const char	*name;
	uint64_t	 max_size;
	bool		 reject_lf;
	uint64_t	 initial;
	struct data_in	 in[8];
	const char	*want;		/* NULL: check want_len only */
	size_t		 want_len;
	int		 want_end;	/* index in in[], -1: no end */
	enum smtp_data_err want_err;
	unsigned int	 want_hops;
} data_cases[] = {
	{ "normal", MAXSZ, false, 0,
	    { T("Subject: hi"), T(""), T("body"), T(".") },
	    W("Subject: hi\r\n\r\nbody\r\n"), 3, SMTP_DATA_OK, 0 },
	{ "empty message", MAXSZ, false, 0, { T(".") },
	    W(""), 0, SMTP_DATA_OK, 0 },
	{ "dot-stuffed", MAXSZ, false, 0,
	    { T(""), T(".."), T("..x"), T(".y"), T("..."), T(".") },
	    W("\r\n.\r\n.x\r\ny\r\n..\r\n"), 5, SMTP_DATA_OK, 0 },
	{ "lines after end are not read", MAXSZ, false, 0,
	    { T("a"), T("."), T("b") }, W("a\r\n"), 1, SMTP_DATA_OK, 0 },
	{ "no end marker", MAXSZ, false, 0, { T("a"), T("b") },
	    W("a\r\nb\r\n"), -1, SMTP_DATA_OK, 0 },
	/* Smuggling: only CRLF "." CRLF ends the data. */
	{ "LF.LF", MAXSZ, false, 0,
	    { T(""), TLF("a"), TLF("."), T("b"), T(".") },
	    W("\r\na\r\n\r\nb\r\n"), 4, SMTP_DATA_OK, 0 },
	{ "LF.CRLF", MAXSZ, false, 0,
	    { T(""), TLF("a"), T("."), T("b"), T(".") },
	    W("\r\na\r\n\r\nb\r\n"), 4, SMTP_DATA_OK, 0 },
	{ "CRLF.LF", MAXSZ, false, 0,
	    { T(""), T("a"), TLF("."), T("b"), T(".") },
	    W("\r\na\r\n\r\nb\r\n"), 4, SMTP_DATA_OK, 0 },
	{ "CRLF.LF then MAIL", MAXSZ, false, 0,
	    { T(""), T("a"), TLF("."), T("MAIL FROM:<x@y>"), T(".") },
	    W("\r\na\r\n\r\nMAIL FROM:<x@y>\r\n"), 4, SMTP_DATA_OK, 0 },
	{ "first line LF.", MAXSZ, false, 0, { TLF("."), T("."), T(".") },
	    W("\r\n\r\n"), 2, SMTP_DATA_OK, 0 },
	{ "CR.CR as bare CRs", MAXSZ, false, 0,
	    { T("a\r.\rb"), T(".") }, W("a\r.\rb\r\n"), 1,
	    SMTP_DATA_OK, 0 },
	{ "dot then bare CR", MAXSZ, false, 0, { T(".\r"), T(".") },
	    W("\r\r\n"), 1, SMTP_DATA_OK, 0 },
	{ "CRLF.CR then CRLF.CRLF", MAXSZ, false, 0,
	    { T("a"), T(".\r"), T("MAIL FROM:<x@y>"), T(".") },
	    W("a\r\n\r\r\nMAIL FROM:<x@y>\r\n"), 3, SMTP_DATA_OK, 0 },
	/* A piece never ends the data, nor does the line it starts. */
	{ "piece dot", MAXSZ, false, 0, { P("."), T(""), T(".") },
	    W("\r\n"), 2, SMTP_DATA_OK, 0 },
	{ "last piece dot", MAXSZ, false, 0, { P("a"), T("."), T(".") },
	    W("a.\r\n"), 2, SMTP_DATA_OK, 0 },
	{ "pieces keep one unstuffing", MAXSZ, false, 0,
	    { P(".."), P(".."), T(".."), T(".") },
	    W(".....\r\n"), 3, SMTP_DATA_OK, 0 },
	{ "LF.LF rejected", MAXSZ, true, 0,
	    { T(""), TLF("a"), TLF("."), T("b"), T(".") },
	    W("\r\na\r\n\r\nb\r\n"), 4, SMTP_DATA_EBARELF, 0 },
	/* Bare CR and NUL are content (issue 13); bare LF. */
	{ "bare CR", MAXSZ, false, 0, { T(""), T("a\rb"), T(".") },
	    W("\r\na\rb\r\n"), 2, SMTP_DATA_OK, 0 },
	{ "progress bar", MAXSZ, false, 0,
	    { T(""), T("10%\r50%\r100%"), T(".") },
	    W("\r\n10%\r50%\r100%\r\n"), 2, SMTP_DATA_OK, 0 },
	{ "trailing CR", MAXSZ, false, 0, { T(""), T("ab\r"), T(".") },
	    W("\r\nab\r\r\n"), 2, SMTP_DATA_OK, 0 },
	{ "NUL", MAXSZ, false, 0, { T(""), T("a\0b"), T(".") },
	    W("\r\na\0b\r\n"), 2, SMTP_DATA_OK, 0 },
	{ "bare LF normalized", MAXSZ, false, 0,
	    { T(""), TLF("a"), TLF("b"), T(".") },
	    W("\r\na\r\nb\r\n\r\n"), -1, SMTP_DATA_OK, 0 },
	{ "bare LF normalized then end", MAXSZ, false, 0,
	    { T(""), TLF("a"), T("b"), T(".") },
	    W("\r\na\r\nb\r\n"), 3, SMTP_DATA_OK, 0 },
	{ "bare LF rejected", MAXSZ, true, 0,
	    { T(""), TLF("a"), T("b"), T(".") },
	    W("\r\na\r\nb\r\n"), 3, SMTP_DATA_EBARELF, 0 },
	/* Line length: 998 octets + CRLF is the RFC 5321 limit. */
	{ "998 octets", MAXSZ, false, 0, { T(""), FILL(998), T(".") },
	    WLEN(2 + 1000), 2, SMTP_DATA_OK, 0 },
	{ "998 octets bare LF", MAXSZ, false, 0,
	    { T(""), FILL_LF(998), T("b"), T(".") },
	    WLEN(2 + 1000 + 3), 3, SMTP_DATA_OK, 0 },
	/* Longer lines are content (issue 13), whole or in pieces. */
	{ "999 octets", MAXSZ, false, 0, { T(""), FILL(999), T(".") },
	    WLEN(2 + 1001), 2, SMTP_DATA_OK, 0 },
	{ "3000 octets in pieces", MAXSZ, false, 0,
	    { T(""), PFILL(1000), PFILL(999), FILL(1001), T(".") },
	    WLEN(2 + 3002), 4, SMTP_DATA_OK, 0 },
	{ "long line bare LF then dot", MAXSZ, true, 0,
	    { T(""), PFILL(1000), FILL_LF(5), T("."), T(".") },
	    WLEN(2 + 1007 + 2), 4, SMTP_DATA_EBARELF, 0 },
	{ "empty pieces", MAXSZ, false, 0,
	    { P(""), P(""), T(""), T(""), T(".") }, W("\r\n\r\n"), 4,
	    SMTP_DATA_OK, 0 },
	/* Size: canonical octets including CRLF and <initial>. */
	{ "size exactly at limit", 10, false, 0,
	    { T("abc"), T("..de"), T(".") }, W("abc\r\n.de\r\n"), 2,
	    SMTP_DATA_OK, 0 },
	{ "size one over", 9, false, 0,
	    { T("abc"), T("..de"), T(".") }, W("abc\r\n.de\r\n"), 2,
	    SMTP_DATA_ESIZE, 0 },
	{ "size with initial, at", 10, false, 5, { T("abc"), T(".") },
	    W("abc\r\n"), 1, SMTP_DATA_OK, 0 },
	{ "size with initial, over", 9, false, 5, { T("abc"), T(".") },
	    W("abc\r\n"), 1, SMTP_DATA_ESIZE, 0 },
	{ "size bare LF counts CRLF", 10, false, 0,
	    { TLF("abc"), TLF("de"), T("x"), T(".") },
	    W("abc\r\nde\r\nx\r\n"), 3, SMTP_DATA_ESIZE, 0 },
	/* Received: headers: 100 is a loop; only the header section. */
	{ "99 Received", MAXSZ, false, 0,
	    { REP("Received: from x", 99), T(""), T(".") },
	    WLEN(99 * 18 + 2), 2, SMTP_DATA_OK, 99 },
	{ "100 Received", MAXSZ, false, 0,
	    { REP("received: from x", 100), T(""), T(".") },
	    WLEN(100 * 18 + 2), 2, SMTP_DATA_ELOOP, 100 },
	{ "stuffed Received counts", MAXSZ, false, 0,
	    { REP("Received: x", 99), T(".Received: y"), T(".") },
	    WLEN(99 * 13 + 13), 2, SMTP_DATA_ELOOP, 100 },
	{ "Received after the blank line", MAXSZ, false, 0,
	    { REP("Received: x", 50), T(""), REP("Received: y", 80),
	    T(".") }, WLEN(50 * 13 + 2 + 80 * 13), 3, SMTP_DATA_OK, 50 },
	{ "Received-Foo and X-Received", MAXSZ, false, 0,
	    { T("Received-SPF: pass"), T("X-Received: x"),
	    T("Received:x"), T(".") },
	    W("Received-SPF: pass\r\nX-Received: x\r\nReceived:x\r\n"), 3,
	    SMTP_DATA_OK, 1 },
	{ "long line does not end headers", MAXSZ, false, 0,
	    { REP("Received: x", 2), PFILL(1000), T(""), T("Received: y"),
	    T(".") }, WLEN(2 * 13 + 1002 + 13), 4, SMTP_DATA_OK, 3 },
	{ "empty pieces make an empty line", MAXSZ, false, 0,
	    { T("Received: x"), P(""), T(""), T("Received: y"), T(".") },
	    WLEN(13 + 2 + 13), 4, SMTP_DATA_OK, 1 },
	{ "Received: in pieces", MAXSZ, false, 0,
	    { P("Rec"), P(""), P("eived"), T(":x"), T("Received: y"),
	    T(".") }, WLEN(12 + 13), 5, SMTP_DATA_OK, 2 },
	{ "stuffed Received: in pieces", MAXSZ, false, 0,
	    { P(".R"), T("eceived:"), T(".") }, WLEN(11), 2,
	    SMTP_DATA_OK, 1 },
	{ "long Received: counts", MAXSZ, false, 0,
	    { REP("Received: x", 99), P("Received: "), PFILL(1000), T(""),
	    T(".") }, WLEN(99 * 13 + 1012), 4, SMTP_DATA_ELOOP, 100 },
	{ "stuffed empty line ends headers", MAXSZ, false, 0,
	    { T("Received: x"), TLF("."), T("Received: y"), T(".") },
	    W("Received: x\r\n\r\nReceived: y\r\n"), 3, SMTP_DATA_OK, 1 },
	/* Only the first violation is recorded. */
	{ "first error wins: size, LF", 10, true, 0,
	    { FILL(20), TLF("x"), T(".") }, WLEN(22 + 3 + 2), -1,
	    SMTP_DATA_ESIZE, 0 },
	{ "first error wins: LF, size", 10, true, 0,
	    { TLF("x"), FILL(20), T(".") }, WLEN(3 + 22), 2,
	    SMTP_DATA_EBARELF, 0 },
	{ "size counts pieces", 100, false, 0,
	    { PFILL(60), PFILL(39), T(""), T(".") }, WLEN(101), 3,
	    SMTP_DATA_ESIZE, 0 },
	{ "size counts pieces, at the limit", 100, false, 0,
	    { PFILL(60), PFILL(38), T(""), T(".") }, WLEN(100), 3,
	    SMTP_DATA_OK, 0 },
	{ "CR and NUL with bare LF refused", MAXSZ, true, 0,
	    { TLF("\r\0"), T(".") }, W("\r\0\r\n\r\n"), -1,
	    SMTP_DATA_EBARELF, 0 },
};

/* Appends <len> bytes to the growing output buffer. */
static void
data_append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
	if (*len + n > *cap) {
		*cap = (*len + n) * 2;
		*buf = realloc(*buf, *cap);
		ck_assert_ptr_nonnull(*buf);
	}
	if (n > 0)
		memcpy(*buf + *len, p, n);
	*len += n;
}

START_TEST(test_data_decode)
{
	const struct data_case	*c = &data_cases[_i];
	struct smtp_data	 d;
	char			 fill[1100], *got = NULL;
	const char		*line, *out;
	size_t			 gotlen = 0, cap = 0, outlen, len;
	unsigned int		 i, r;
	int			 end = -1;
	enum smtp_data_rc	 rc;

	memset(fill, 'x', sizeof(fill));
	smtp_data_init(&d, c->max_size, c->reject_lf, c->initial);
	for (i = 0; i < nitems(c->in) && c->in[i].kind != IN_NONE &&
	    end == -1; i++) {
		line = c->in[i].kind == IN_FILL ||
		    c->in[i].kind == IN_PIECE_FILL ? fill : c->in[i].s;
		len = c->in[i].len;
		ck_assert_uint_le(len, sizeof(fill));
		if (c->in[i].kind == IN_PIECE ||
		    c->in[i].kind == IN_PIECE_FILL) {
			smtp_data_piece(&d, line, len, &out, &outlen);
			ck_assert(out >= line && out + outlen == line + len);
			data_append(&got, &gotlen, &cap, out, outlen);
			continue;
		}
		for (r = 0; r < c->in[i].repeat && end == -1; r++) {
			rc = smtp_data_line(&d, line, len, c->in[i].crlf,
			    &out, &outlen);
			if (rc == SMTP_DATA_END) {
				end = (int)i;
				break;
			}
			ck_assert_int_eq(rc, SMTP_DATA_LINE);
			ck_assert(out >= line && out + outlen == line + len);
			data_append(&got, &gotlen, &cap, out, outlen);
			data_append(&got, &gotlen, &cap, "\r\n", 2);
		}
	}
	ck_assert_msg(end == c->want_end, "%s: end at %d, want %d", c->name,
	    end, c->want_end);
	ck_assert_msg(d.err == c->want_err, "%s: err %d, want %d", c->name,
	    d.err, c->want_err);
	ck_assert_msg(d.hops == c->want_hops, "%s: hops %u, want %u",
	    c->name, d.hops, c->want_hops);
	ck_assert_msg(gotlen == c->want_len, "%s: %zu octets, want %zu",
	    c->name, gotlen, c->want_len);
	if (c->want != NULL)
		ck_assert_msg(gotlen == 0 || memcmp(got, c->want, gotlen) == 0,
		    "%s: output differs", c->name);
	/* The size counts exactly the canonical output. */
	ck_assert_uint_eq(d.size, c->initial + gotlen);
	free(got);
}
END_TEST

START_TEST(test_data_init)
{
	struct smtp_data	d;

	memset(&d, 0xa5, sizeof(d));
	smtp_data_init(&d, 1234, true, 77);
	ck_assert_uint_eq(d.max_size, 1234);
	ck_assert(d.reject_bare_lf);
	ck_assert(d.prev_crlf);
	ck_assert(d.in_headers);
	ck_assert_uint_eq(d.hops, 0);
	ck_assert_uint_eq(d.size, 77);
	ck_assert_int_eq(d.err, SMTP_DATA_OK);
}
END_TEST

/* The end marker does not count towards the size. */
START_TEST(test_data_end_size)
{
	struct smtp_data	 d;
	const char		*out;
	size_t			 outlen;

	smtp_data_init(&d, 100, false, 10);
	ck_assert_int_eq(smtp_data_line(&d, ".", 1, true, &out, &outlen),
	    SMTP_DATA_END);
	ck_assert_uint_eq(d.size, 10);
	ck_assert_int_eq(d.err, SMTP_DATA_OK);
}
END_TEST

/* The error replies carry the right codes. */
static const struct {
	enum smtp_data_err	 err;
	const char		*prefix;
} reply_cases[] = {
	{ SMTP_DATA_ESIZE,	"552 5.3.4 " },
	{ SMTP_DATA_EBARELF,	"554 5.6.0 " },
	{ SMTP_DATA_ELOOP,	"554 5.4.6 " },
	{ SMTP_DATA_OK,		"451 4.3.0 " },
};

START_TEST(test_data_err_reply)
{
	const char	*r = smtp_data_err_reply(reply_cases[_i].err);

	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(strncmp(r, reply_cases[_i].prefix,
	    strlen(reply_cases[_i].prefix)), 0);
	ck_assert(smtp_line_is_clean(r, strlen(r)));
	ck_assert_uint_lt(strlen(r), SMTP_CMD_LINE_MAX);
}
END_TEST

/* The reference dot-stuffing: one octet at a time. */
static size_t
stuff_ref(const char *p, size_t n, char *out)
{
	size_t	i, o = 0;
	bool	bol = true;

	for (i = 0; i < n; i++) {
		if (bol && p[i] == '.')
			out[o++] = '.';
		out[o++] = p[i];
		bol = p[i] == '\n';
	}
	return o;
}

/* smtp_stuff_span() as the relay drives it, over chunks of <cut>. */
static size_t
stuff_spans(const char *p, size_t n, size_t cut, char *out, size_t *calls)
{
	size_t	o = 0, k, c, len, span;
	bool	bol = true, dot;

	*calls = 0;
	for (c = 0; c < n; c += len) {
		len = n - c < cut ? n - c : cut;
		for (k = 0; k < len; k += span) {
			span = smtp_stuff_span(p + c + k, len - k, &bol, &dot);
			ck_assert_uint_gt(span, 0);
			(*calls)++;
			if (dot)
				out[o++] = '.';
			memcpy(out + o, p + c + k, span);
			o += span;
		}
	}
	return o;
}

static const char *const stuff_cases[] = {
	"",
	".\r\n",
	"..\r\n",
	"a\r\n.\r\nb\r\n",
	".a\r\n.b\r\n..c\r\n",
	"no dots here\r\nnor here\r\n",
	"x.\r\n .\r\n\r\n.\r\n",
	"bare\rcr.\r\n.\rx\r\n",
	"last line without CRLF\r\n.end",
	"\r\n\r\n.\r\n\r\n.",
};

START_TEST(test_stuff_span)
{
	const char	*in = stuff_cases[_i];
	size_t		 n = strlen(in), cut, want, got, calls;
	char		 ref[128], out[128];

	want = stuff_ref(in, n, ref);
	for (cut = 1; cut <= n + 1; cut++) {
		got = stuff_spans(in, n, cut, out, &calls);
		ck_assert_msg(got == want && memcmp(out, ref, want) == 0,
		    "case %d cut %zu", _i, cut);
	}
	/* Bulk: one span per stuffed line, plus the rest, not one a line. */
	(void)stuff_spans(in, n, n + 1, out, &calls);
	ck_assert_uint_le(calls, 1 + (size_t)(want - n));
}
END_TEST

START_TEST(test_stuff_span_edges)
{
	bool	bol = true, dot = true;

	ck_assert_uint_eq(smtp_stuff_span(NULL, 0, &bol, &dot), 0);
	ck_assert(!dot && bol);
	ck_assert_uint_eq(smtp_stuff_span(".x", 2, &bol, &dot), 2);
	ck_assert(dot && !bol);
	/* Mid-line, a dot is content. */
	ck_assert_uint_eq(smtp_stuff_span(".\r\n", 3, &bol, &dot), 3);
	ck_assert(!dot && bol);
	/* A chunk that ends with a LF: the next starts a line. */
	ck_assert_uint_eq(smtp_stuff_span("a\r\n", 3, &bol, &dot), 3);
	ck_assert(!dot && bol);
	ck_assert_uint_eq(smtp_stuff_span("a\r\n.b\r\n", 7, &bol, &dot), 3);
	ck_assert(!dot && bol);
}
END_TEST

/* Decoding then re-stuffing gives back what a compliant client sent. */
START_TEST(test_stuffing_round_trip)
{
	static const char	*lines[] = { ".", "..", ".x", "x", "", "..." };
	struct smtp_data	 d;
	char			 wire[8];
	const char		*out;
	size_t			 i, outlen, n;

	smtp_data_init(&d, MAXSZ, false, 0);
	for (i = 0; i < nitems(lines); i++) {
		n = (size_t)snprintf(wire, sizeof(wire), "%s%s",
		    lines[i][0] == '.' ? "." : "", lines[i]);
		ck_assert_int_eq(smtp_data_line(&d, wire, n, true, &out,
		    &outlen), SMTP_DATA_LINE);
		ck_assert_uint_eq(outlen, strlen(lines[i]));
		ck_assert_int_eq(memcmp(out, lines[i], outlen), 0);
	}
	ck_assert_int_eq(d.err, SMTP_DATA_OK);
}
END_TEST

static Suite *
smtp_suite(void)
{
	Suite	*s = suite_create("smtp");
	TCase	*tc;

	tc = tcase_create("lengths");
	tcase_add_test(tc, test_lengths);
	suite_add_tcase(s, tc);

	tc = tcase_create("verb");
	tcase_add_loop_test(tc, test_parse_verb, 0, nitems(verb_cases));
	tcase_add_test(tc, test_parse_verb_null_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("clean");
	tcase_add_loop_test(tc, test_line_is_clean, 0, nitems(clean_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("helo");
	tcase_add_loop_test(tc, test_parse_helo, 0, nitems(helo_cases));
	tcase_add_test(tc, test_parse_helo_small_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("mail");
	tcase_add_loop_test(tc, test_parse_mail, 0, nitems(mail_cases));
	tcase_add_test(tc, test_parse_mail_size_limit_max);
	tcase_add_loop_test(tc, test_parse_mail_utf8, 0, nitems(utf8_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("rcpt");
	tcase_add_loop_test(tc, test_parse_rcpt, 0, nitems(rcpt_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("mailbox");
	tcase_add_loop_test(tc, test_mailbox_is_valid, 0, nitems(mbox_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("data");
	tcase_add_test(tc, test_data_init);
	tcase_add_loop_test(tc, test_data_decode, 0, nitems(data_cases));
	tcase_add_test(tc, test_data_end_size);
	tcase_add_loop_test(tc, test_data_err_reply, 0, nitems(reply_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("stuffing");
	tcase_add_loop_test(tc, test_stuff_span, 0, nitems(stuff_cases));
	tcase_add_test(tc, test_stuff_span_edges);
	tcase_add_test(tc, test_stuffing_round_trip);
	suite_add_tcase(s, tc);

	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(smtp_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
