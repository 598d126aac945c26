/*
 * check_dsn.c - unit tests for the delivery status notification.
 *
 * Each report is taken apart by a small MIME reader written here, which
 * first checks the line discipline (CRLF only, at most 998 octets per
 * line), then splits the top header section and the parts on the
 * boundary it declares.  Envelopes are built in memory from literals.
 */
#include "config.h"

#include "dsn.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "envelope.h"
#include "util.h"

#define ID		"0006123abcd01f2e"
#define HOST		"relay.example"
#define ARRIVAL		1700000000	/* Tue, 14 Nov 2023 22:13:20 */
#define NOW		1700432000	/* Sun, 19 Nov 2023 22:13:20 */
#define NOW_S		"1700432000"
#define DEF_BOUNDARY	"=_smartrelay." ID "." NOW_S

static const char orig_headers[] =
    "Received: from client.example (127.0.0.1)\r\n"
    "\tby relay.example; Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "From: Alice <alice@example.org>\r\n"
    "To: bob@example.org, carol@example.net, dan@example.com\r\n"
    "Subject: quarterly report\r\n"
    "Message-ID: <1234@client.example>\r\n";

/*
 * A small reader for the reports.
 */

struct part {
	char	*head;		/* header section, CRLF lines */
	char	*body;
};

struct report {
	char		*top;	/* the report's own header section */
	char		*boundary;
	struct part	 parts[4];
	int		 nparts;
};

/* Every line ends in CRLF, no CR or LF stands alone, no line is over
 * 998 octets, and the text ends with CRLF. */
static void
assert_lines(const char *buf, size_t len)
{
	size_t	i, start = 0;

	ck_assert_uint_ge(len, 2);
	ck_assert(buf[len - 2] == '\r' && buf[len - 1] == '\n');
	for (i = 0; i < len; i++) {
		if (buf[i] == '\n')
			ck_assert_msg(0, "bare LF at %zu", i);
		if (buf[i] != '\r')
			continue;
		ck_assert_msg(i + 1 < len && buf[i + 1] == '\n',
		    "bare CR at %zu", i);
		ck_assert_msg(i - start <= 998, "line of %zu octets",
		    i - start);
		i++;
		start = i + 1;
	}
}

/* The unfolded value of the first <name> field of <sect>, or NULL.
 * Caller frees. */
static char *
field(const char *sect, const char *name)
{
	size_t		 nlen = strlen(name);
	const char	*p = sect, *end;
	char		*v, *w;

	for (; *p != '\0'; p = strstr(p, "\r\n") + 2) {
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':')
			break;
	}
	if (*p == '\0')
		return NULL;
	p += nlen + 1;
	p += strspn(p, " \t");
	end = p;
	do
		end = strstr(end, "\r\n") + 2;
	while (*end == ' ' || *end == '\t');
	v = xmalloc((size_t)(end - p) + 1);
	for (w = v; p < end - 2; p++)
		if (*p != '\r' && *p != '\n')
			*w++ = *p;
	*w = '\0';
	return v;
}

static char *
dup_range(const char *s, const char *e)
{
	char	*p = xmalloc((size_t)(e - s) + 1);

	memcpy(p, s, (size_t)(e - s));
	p[e - s] = '\0';
	return p;
}

/* Takes the report apart; fails the test if it is not well formed. */
static void
report_parse(struct report *r, const char *buf, size_t len)
{
	const char	*top_end, *p, *eol, *start = NULL, *sep;
	char		*ct, *b;
	size_t		 blen;
	int		 closed = 0;

	memset(r, 0, sizeof(*r));
	assert_lines(buf, len);
	ck_assert_uint_eq(strlen(buf), len);
	top_end = strstr(buf, "\r\n\r\n");
	ck_assert_ptr_nonnull(top_end);
	r->top = dup_range(buf, top_end + 2);
	ct = field(r->top, "Content-Type");
	ck_assert_ptr_nonnull(ct);
	ck_assert_ptr_nonnull(strstr(ct, "multipart/report;"));
	ck_assert_ptr_nonnull(strstr(ct, "report-type=delivery-status"));
	b = strstr(ct, "boundary=\"");
	ck_assert_ptr_nonnull(b);
	b += strlen("boundary=\"");
	ck_assert_ptr_nonnull(strchr(b, '"'));
	r->boundary = dup_range(b, strchr(b, '"'));
	free(ct);
	blen = strlen(r->boundary);
	ck_assert_uint_ge(blen, 1);
	ck_assert_uint_le(blen, 70);
	for (p = top_end + 4; *p != '\0' && !closed; p = eol + 2) {
		eol = strstr(p, "\r\n");
		if (p[0] != '-' || p[1] != '-' ||
		    strncmp(p + 2, r->boundary, blen) != 0)
			continue;
		if (eol == p + 2 + blen + 2 && p[2 + blen] == '-')
			closed = 1;
		else
			ck_assert_ptr_eq(eol, p + 2 + blen);
		if (start != NULL) {
			/* RFC 2046: the CRLF before "--" is the delimiter's. */
			ck_assert_int_lt(r->nparts, 4);
			sep = strstr(start, "\r\n\r\n");
			ck_assert(sep != NULL && sep < p);
			r->parts[r->nparts].head = dup_range(start, sep + 2);
			r->parts[r->nparts].body = dup_range(sep + 4, p - 2);
			r->nparts++;
		}
		start = eol + 2;
	}
	ck_assert_msg(closed, "no closing delimiter");
	ck_assert_str_eq(p, "");
}

static void
report_free(struct report *r)
{
	int	i;

	free(r->top);
	free(r->boundary);
	for (i = 0; i < r->nparts; i++) {
		free(r->parts[i].head);
		free(r->parts[i].body);
	}
}

static void
assert_field(const char *sect, const char *name, const char *want)
{
	char	*v = field(sect, name);

	ck_assert_msg(v != NULL, "no %s field", name);
	ck_assert_str_eq(v, want);
	free(v);
}

static size_t
count(const char *hay, const char *needle)
{
	size_t		 n = 0;
	const char	*p;

	for (p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* Splits the delivery-status body into its blank-line separated
 * blocks, each a NUL-terminated copy ending in CRLF. */
static int
status_blocks(const char *body, char **blocks, int max)
{
	const char	*p = body, *sep;
	int		 n = 0;

	while (*p != '\0') {
		ck_assert_int_lt(n, max);
		sep = strstr(p, "\r\n\r\n");
		if (sep == NULL) {
			blocks[n++] = xstrdup(p);
			break;
		}
		blocks[n++] = dup_range(p, sep + 2);
		p = sep + 4;
	}
	return n;
}

/*
 * Envelopes.
 */

static struct envelope_rcpt base_rcpts[] = {
	{ (char *)"bob@example.org", ENVELOPE_RCPT_SENT, (char *)"2.0.0",
	    (char *)"250 2.0.0 OK queued" },
	{ (char *)"carol@example.net", ENVELOPE_RCPT_FAILED, (char *)"5.1.1",
	    (char *)"550 5.1.1 <carol@example.net>: no such user" },
	{ (char *)"dan@example.com", ENVELOPE_RCPT_FAILED, (char *)"4.4.7",
	    NULL },
};

static void
env_init(struct envelope *env, struct envelope_rcpt *rcpts, size_t n)
{
	memset(env, 0, sizeof(*env));
	memcpy(env->id, ID, sizeof(ID));
	env->sender = (char *)"alice@example.org";
	env->client = (char *)"127.0.0.1";
	env->helo = (char *)"client.example";
	env->arrival = ARRIVAL;
	env->size = 1234;
	env->rcpts = rcpts;
	env->nrcpt = n;
}

/* Composes and parses; the caller frees *text and the report. */
static void
compose(const struct envelope *env, const char *hdrs, size_t hlen,
    struct report *r, char **text)
{
	size_t	len;

	ck_assert_int_eq(dsn_compose(env, HOST, env->sender, NOW, hdrs, hlen,
	    text, &len), 0);
	ck_assert_ptr_nonnull(*text);
	report_parse(r, *text, len);
}

/*
 * Tests.
 */

START_TEST(test_basic)
{
	struct envelope	 env;
	struct report	 r;
	char		*text, *blocks[8];
	int		 nb, i;

	env_init(&env, base_rcpts, nitems(base_rcpts));
	compose(&env, orig_headers, strlen(orig_headers), &r, &text);

	assert_field(r.top, "From", "Mail Delivery System "
	    "<MAILER-DAEMON@" HOST ">");
	assert_field(r.top, "To", "<alice@example.org>");
	assert_field(r.top, "Subject", "Undelivered Mail Returned to Sender");
	assert_field(r.top, "Date", "Sun, 19 Nov 2023 22:13:20 +0000");
	assert_field(r.top, "Message-ID", "<" ID "." NOW_S ".dsn@" HOST ">");
	assert_field(r.top, "Auto-Submitted", "auto-replied");
	assert_field(r.top, "MIME-Version", "1.0");
	ck_assert_str_eq(r.boundary, DEF_BOUNDARY);
	ck_assert_int_eq(r.nparts, 3);

	/* Part 1: for humans. */
	assert_field(r.parts[0].head, "Content-Type",
	    "text/plain; charset=us-ascii");
	ck_assert_ptr_nonnull(strstr(r.parts[0].body, HOST));
	ck_assert_ptr_nonnull(strstr(r.parts[0].body, "<carol@example.net>: "
	    "host said: 550 5.1.1 <carol@example.net>: no such user\r\n"));
	ck_assert_ptr_nonnull(strstr(r.parts[0].body,
	    "<dan@example.com>: delivery time expired\r\n"));
	ck_assert_ptr_null(strstr(r.parts[0].body, "bob@"));

	/* Part 2: RFC 3464. */
	assert_field(r.parts[1].head, "Content-Type",
	    "message/delivery-status");
	nb = status_blocks(r.parts[1].body, blocks, 8);
	ck_assert_int_eq(nb, 3);
	assert_field(blocks[0], "Reporting-MTA", "dns; " HOST);
	assert_field(blocks[0], "Arrival-Date",
	    "Tue, 14 Nov 2023 22:13:20 +0000");
	ck_assert_ptr_null(field(blocks[0], "Final-Recipient"));
	assert_field(blocks[1], "Final-Recipient", "rfc822; carol@example.net");
	assert_field(blocks[1], "Action", "failed");
	assert_field(blocks[1], "Status", "5.1.1");
	assert_field(blocks[1], "Diagnostic-Code",
	    "smtp; 550 5.1.1 <carol@example.net>: no such user");
	assert_field(blocks[2], "Final-Recipient", "rfc822; dan@example.com");
	assert_field(blocks[2], "Action", "failed");
	assert_field(blocks[2], "Status", "4.4.7");
	ck_assert_ptr_null(field(blocks[2], "Diagnostic-Code"));
	ck_assert_uint_eq(count(r.parts[1].body, "Final-Recipient:"), 2);
	ck_assert_ptr_null(strstr(r.parts[1].body, "bob@"));
	for (i = 0; i < nb; i++)
		free(blocks[i]);

	/* Part 3: the original header section, verbatim. */
	assert_field(r.parts[2].head, "Content-Type", "text/rfc822-headers");
	ck_assert_str_eq(r.parts[2].body, orig_headers);
	ck_assert_ptr_null(strstr(text, "8bit"));
	report_free(&r);
	free(text);
}
END_TEST

/* The header section may come with its blank line and the body, with
 * bare LF line ends, or not at all. */
START_TEST(test_header_forms)
{
	static const char	 with_body[] = "Subject: a\r\nX-A: b\r\n"
	    "\r\nbody line\r\n--" DEF_BOUNDARY "\r\n";
	static const char	 lf[] = "Subject: a\nX-A: b";
	struct envelope		 env;
	struct report		 r;
	char			*text;

	env_init(&env, base_rcpts, nitems(base_rcpts));
	compose(&env, with_body, strlen(with_body), &r, &text);
	ck_assert_int_eq(r.nparts, 3);
	ck_assert_str_eq(r.parts[2].body, "Subject: a\r\nX-A: b\r\n");
	ck_assert_ptr_null(strstr(text, "body line"));
	/* Only the header section is searched for the boundary. */
	ck_assert_str_eq(r.boundary, DEF_BOUNDARY);
	report_free(&r);
	free(text);

	compose(&env, lf, strlen(lf), &r, &text);
	ck_assert_str_eq(r.parts[2].body, "Subject: a\r\nX-A: b\r\n");
	report_free(&r);
	free(text);

	compose(&env, NULL, 0, &r, &text);
	ck_assert_int_eq(r.nparts, 2);
	ck_assert_ptr_null(strstr(text, "rfc822-headers"));
	report_free(&r);
	free(text);
}
END_TEST

START_TEST(test_no_failed)
{
	struct envelope_rcpt	 rcpts[] = {
		{ (char *)"bob@example.org", ENVELOPE_RCPT_SENT,
		    (char *)"2.0.0", NULL },
		{ (char *)"eve@example.org", ENVELOPE_RCPT_PENDING, NULL,
		    NULL },
	};
	struct envelope		 env;
	char			*text = (char *)"x";
	size_t			 len = 42;

	env_init(&env, rcpts, nitems(rcpts));
	ck_assert_int_eq(dsn_compose(&env, HOST, "alice@example.org", NOW,
	    orig_headers, strlen(orig_headers), &text, &len), -1);
	ck_assert_ptr_null(text);
	ck_assert_uint_eq(len, 0);
	env.nrcpt = 0;
	ck_assert_int_eq(dsn_compose(&env, HOST, "alice@example.org", NOW,
	    orig_headers, strlen(orig_headers), &text, &len), -1);
}
END_TEST

/* Drops spaces (a hard cut inserts one) and returns a new string. */
static char *
no_spaces(const char *s)
{
	char	*p = xmalloc(strlen(s) + 1), *w = p;

	for (; *s != '\0'; s++)
		if (*s != ' ')
			*w++ = *s;
	*w = '\0';
	return p;
}

/* Replies with line ends in them and replies, addresses and original
 * headers far over 998 octets: the limits hold, nothing is lost. */
START_TEST(test_long_and_broken)
{
	char			 worded[3000], solid[3001], addr[1100];
	char			 hdrs[6000], *text, *v, *blocks[8], *s;
	struct envelope_rcpt	 rcpts[4] = {
		{ (char *)"x@example.org", ENVELOPE_RCPT_FAILED,
		    (char *)"5.7.1", (char *)"550-5.7.1 first\r\n"
		    "550 5.7.1 second\nthird\rend" },
		{ worded, ENVELOPE_RCPT_FAILED, (char *)"5.2.2", worded },
		{ addr, ENVELOPE_RCPT_FAILED, (char *)"5.0.0", solid },
		{ (char *)"y@example.org", ENVELOPE_RCPT_FAILED,
		    (char *)"5.1", NULL },
	};
	struct envelope		 env;
	struct report		 r;
	size_t			 i;
	int			 nb;

	for (i = 0; i + 1 < sizeof(worded); i++)
		worded[i] = i % 7 == 6 ? ' ' : (char)('a' + i % 26);
	worded[0] = '5';
	worded[sizeof(worded) - 1] = '\0';
	memset(solid, 'S', sizeof(solid) - 1);
	solid[sizeof(solid) - 1] = '\0';
	/* A quoted local part: any printable ASCII may appear. */
	addr[0] = '"';
	for (i = 1; i < 1010; i++)
		addr[i] = (char)('!' + i % 94) == '"' ? 'q' :
		    (char)('!' + i % 94);
	snprintf(addr + 1010, sizeof(addr) - 1010, "\"@example.org");
	snprintf(hdrs, sizeof(hdrs), "Subject: x\r\nX-Long: %s\r\n"
	    "X-Solid: %.2000s\r\n", worded, solid);

	env_init(&env, rcpts, nitems(rcpts));
	compose(&env, hdrs, strlen(hdrs), &r, &text);
	ck_assert_int_eq(r.nparts, 3);
	nb = status_blocks(r.parts[1].body, blocks, 8);
	ck_assert_int_eq(nb, 5);
	assert_field(blocks[1], "Diagnostic-Code",
	    "smtp; 550-5.7.1 first  550 5.7.1 second third end");
	/* Folding at blanks loses nothing once unfolded (RFC 5322). */
	v = field(blocks[2], "Diagnostic-Code");
	ck_assert_str_eq(v + strlen("smtp; "), worded);
	free(v);
	v = field(blocks[2], "Final-Recipient");
	ck_assert_str_eq(v + strlen("rfc822; "), worded);
	free(v);
	/* Without blanks the line is cut; only spaces are added. */
	v = field(blocks[3], "Diagnostic-Code");
	s = no_spaces(v);
	ck_assert_uint_eq(strlen(s), strlen("smtp;") + strlen(solid));
	ck_assert_int_eq(strncmp(s, "smtp;", 5), 0);
	ck_assert_str_eq(s + 5, solid);
	free(s);
	free(v);
	v = field(blocks[3], "Final-Recipient");
	s = no_spaces(v);
	ck_assert_int_eq(strncmp(s, "rfc822;", 7), 0);
	ck_assert_str_eq(s + 7, addr);
	free(s);
	free(v);
	/* A malformed status falls back to 5.0.0. */
	assert_field(blocks[4], "Status", "5.0.0");
	for (i = 0; i < (size_t)nb; i++)
		free(blocks[i]);
	v = field(r.parts[2].body, "X-Long");
	ck_assert_str_eq(v, worded);
	free(v);
	report_free(&r);
	free(text);
}
END_TEST

/* Original headers holding the default boundary force another one. */
START_TEST(test_boundary_clash)
{
	static const char	 trap[] = "Subject: trap\r\n"
	    "X-Trap: --" DEF_BOUNDARY "\r\n--" DEF_BOUNDARY "--\r\n";
	struct envelope		 env;
	struct report		 r;
	char			*text;

	env_init(&env, base_rcpts, nitems(base_rcpts));
	compose(&env, trap, strlen(trap), &r, &text);
	ck_assert_str_ne(r.boundary, DEF_BOUNDARY);
	ck_assert_ptr_null(strstr(trap, r.boundary));
	ck_assert_int_eq(r.nparts, 3);
	ck_assert_str_eq(r.parts[2].body, trap);
	report_free(&r);
	free(text);
}
END_TEST

/* 8-bit original headers are kept and declared; 8-bit or control
 * octets in our own parts are not let through. */
START_TEST(test_8bit)
{
	static const char	 utf8[] = "Subject: caf\xc3\xa9\r\n";
	struct envelope_rcpt	 rcpts[] = {
		{ (char *)"j\xc3\xb6rg@example.org", ENVELOPE_RCPT_FAILED,
		    (char *)"5.1.1", (char *)"550 bad\x01\x7f" "byte \xff" },
	};
	struct envelope		 env;
	struct report		 r;
	char			*text, *v;
	size_t			 i;

	env_init(&env, rcpts, nitems(rcpts));
	compose(&env, utf8, strlen(utf8), &r, &text);
	assert_field(r.top, "Content-Transfer-Encoding", "8bit");
	assert_field(r.parts[2].head, "Content-Transfer-Encoding", "8bit");
	ck_assert_str_eq(r.parts[2].body, utf8);
	for (i = 0; r.parts[1].body[i] != '\0'; i++)
		ck_assert((unsigned char)r.parts[1].body[i] < 0x80);
	for (i = 0; r.parts[0].body[i] != '\0'; i++)
		ck_assert((unsigned char)r.parts[0].body[i] < 0x80);
	v = field(r.parts[1].body, "Diagnostic-Code");
	ck_assert_str_eq(v, "smtp; 550 bad  byte ?");
	free(v);
	report_free(&r);
	free(text);
}
END_TEST

static Suite *
dsn_suite(void)
{
	Suite	*s = suite_create("dsn");
	TCase	*tc;

#define ADD_CASE(name, fn) do {						\
	tc = tcase_create(name);					\
	tcase_add_test(tc, fn);						\
	suite_add_tcase(s, tc);						\
} while (0)
	ADD_CASE("basic", test_basic);
	ADD_CASE("header-forms", test_header_forms);
	ADD_CASE("no-failed", test_no_failed);
	ADD_CASE("long-and-broken", test_long_and_broken);
	ADD_CASE("boundary-clash", test_boundary_clash);
	ADD_CASE("8bit", test_8bit);
#undef ADD_CASE
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(dsn_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
