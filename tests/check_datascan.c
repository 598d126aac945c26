/*
 * check_datascan.c - unit tests for datascan.c: a few messages by hand,
 * then random messages cut at random points, compared with the path
 * the daemon used before it, kept here as the model: line_get_piece()
 * on an evbuffer, smtp_data_line()/smtp_data_piece() and
 * stamp_scan_line(), as msgin_line() put them together.  The model and
 * the scanner must agree on the end of data, the error, the size, the
 * octets written and what the quick check (mime_scan) makes of them.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "datascan.h"
#include "line.h"
#include "mime_scan.h"
#include "smtp.h"
#include "stamp.h"

#define OUT_MAX		(256 * 1024)

struct out {
	char	buf[OUT_MAX];
	size_t	len;
};

static void
out_put(struct out *o, const char *p, size_t n)
{
	ck_assert_uint_le(o->len + n, OUT_MAX);
	memcpy(o->buf + o->len, p, n);
	o->len += n;
}

/* The fields msgin would write, without the clock and the randomness. */
static size_t
out_stamp(struct out *o, const struct stamp_scan *s)
{
	size_t	before = o->len;

	if (!s->has_date)
		out_put(o, "Date: now\r\n", 11);
	if (!s->has_msgid)
		out_put(o, "Message-ID: <new@x>\r\n", 21);
	return o->len - before;
}

struct result {
	struct out		 out;
	bool			 end;
	size_t			 used;		/* octets up to the end */
	enum smtp_data_err	 err;
	uint64_t		 size;
	bool			 clean;
	enum mime_8bit		 eightbit;
};

static struct result	model, scan;

static void
result_scan(struct result *r)
{
	struct mime_scan	ms;

	mime_scan_init(&ms);
	mime_scan_feed(&ms, r->out.buf, r->out.len);
	r->clean = mime_scan_is_clean(&ms);
	r->eightbit = mime_scan_8bit(&ms);
}

/* The model: today's msgin_line() and msgin_end(), fed from an evbuffer
 * the input arrives in with the cuts given. */
static void
model_run(const char *in, size_t n, const size_t *cuts, size_t ncuts,
    uint64_t max, bool reject, uint64_t initial)
{
	struct evbuffer		*buf = evbuffer_new();
	struct line_reader	 r;
	struct smtp_data	 d;
	struct stamp_scan	 st;
	char			 line[SMTP_TEXT_LINE_MAX + 1];
	const char		*o;
	size_t			 len, olen, off = 0, c;
	bool			 crlf, more;

	memset(&model, 0, sizeof(model));
	line_reader_init(&r, SMTP_TEXT_LINE_MAX);
	smtp_data_init(&d, max, reject, initial);
	stamp_scan_init(&st);
	for (c = 0; c <= ncuts && !model.end; c++) {
		size_t	to = c < ncuts ? cuts[c] : n;

		evbuffer_add(buf, in + off, to - off);
		off = to;
		while (!model.end && line_get_piece(&r, buf, line, &len,
		    &crlf, &more) == LINE_OK) {
			if (more)
				smtp_data_piece(&d, line, len, &o, &olen);
			else if (smtp_data_line(&d, line, len, crlf, &o,
			    &olen) == SMTP_DATA_END) {
				model.end = true;
				break;
			}
			if (d.err != SMTP_DATA_OK)
				continue;
			if (stamp_scan_line(&st, o, olen, !more))
				d.size += out_stamp(&model.out, &st);
			out_put(&model.out, o, olen);
			if (!more)
				out_put(&model.out, "\r\n", 2);
		}
	}
	model.used = off - evbuffer_get_length(buf);
	if (model.end && d.err == SMTP_DATA_OK && st.in_headers) {
		st.in_headers = false;
		d.size += out_stamp(&model.out, &st);
	}
	model.err = d.err;
	model.size = d.size;
	result_scan(&model);
	evbuffer_free(buf);
}

static struct datascan	ds;

static void
scan_put_cb(void *arg, const char *p, size_t n)
{
	out_put(arg, p, n);
}

static size_t
scan_stamp_cb(void *arg)
{
	return out_stamp(arg, &ds.stamp);
}

static void
scan_run(const char *in, size_t n, const size_t *cuts, size_t ncuts,
    uint64_t max, bool reject, uint64_t initial)
{
	struct datascan_sink	sink = { scan_put_cb, scan_stamp_cb, NULL };
	size_t			off = 0, c, used;

	memset(&scan, 0, sizeof(scan));
	sink.arg = &scan.out;
	datascan_init(&ds, &sink, max, reject, initial);
	for (c = 0; c <= ncuts && !scan.end; c++) {
		size_t	to = c < ncuts ? cuts[c] : n;

		used = datascan_feed(&ds, in + off, to - off, &scan.end);
		ck_assert(used == to - off || scan.end);
		off += used;
	}
	scan.used = off;
	if (scan.end && ds.err == SMTP_DATA_OK && ds.stamp.in_headers) {
		ds.stamp.in_headers = false;
		datascan_add(&ds, out_stamp(&scan.out, &ds.stamp));
	}
	scan.err = ds.err;
	scan.size = ds.size;
	result_scan(&scan);
}

/* Runs both and compares; the octets only when a message came whole. */
static void
compare(const char *in, size_t n, const size_t *cuts, size_t ncuts,
    uint64_t max, bool reject, uint64_t initial, unsigned int seed)
{
	model_run(in, n, cuts, ncuts, max, reject, initial);
	scan_run(in, n, cuts, ncuts, max, reject, initial);
	ck_assert_msg(model.end == scan.end, "seed %u: end", seed);
	ck_assert_msg(model.err == scan.err, "seed %u: err %d vs %d", seed,
	    model.err, scan.err);
	if (!model.end)
		return;
	ck_assert_msg(model.used == scan.used, "seed %u: used", seed);
	if (model.err != SMTP_DATA_OK)
		return;
	ck_assert_msg(model.size == scan.size, "seed %u: size %llu vs %llu",
	    seed, (unsigned long long)model.size,
	    (unsigned long long)scan.size);
	ck_assert_msg(model.out.len == scan.out.len &&
	    memcmp(model.out.buf, scan.out.buf, model.out.len) == 0,
	    "seed %u: octets differ (%zu vs %zu)", seed, model.out.len,
	    scan.out.len);
	ck_assert(model.clean == scan.clean);
	ck_assert(model.eightbit == scan.eightbit);
}

static void
compare_str(const char *in, uint64_t max, bool reject)
{
	compare(in, strlen(in), NULL, 0, max, reject, 100, 0);
}

START_TEST(test_hand)
{
	compare_str("Subject: x\r\n\r\nbody\r\n.\r\n", 1000, false);
	compare_str("Date: x\r\nMessage-ID: <a@b>\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
	    1000, false);
	compare_str("no header\nbare lf\r\n.\n.\r\n.\r\n", 1000, false);
	compare_str("a\r\n.\r\n", 1000, true);
	compare_str("a\nb\r\n.\r\n", 1000, true);
	compare_str("Received: a\r\n\r\n.\r\n", 10, false);
	compare_str(".\r\n", 1000, false);
	compare_str(".x\r\n.\r\r\n.\r\n", 1000, false);
	compare_str("x\r\n.\r", 1000, false);
	ck_assert(!scan.end);
}
END_TEST

/* Where line_get_piece() cut a long line decided which of two errors
 * came first: the size limit, checked at each piece, or the bare LF,
 * checked at the line's end. */
#define CUTS_HEAD	"Date: x\r\nMessage-ID: y\r\n\r\n"

START_TEST(test_cuts)
{
	static char	in[4096];
	size_t		n, h;

	/* A CR as the 1000th octet starts the next piece.  The header
	 * section has both fields: no stamp octets are counted. */
	memset(in, 'a', sizeof(in));
	memcpy(in, CUTS_HEAD, strlen(CUTS_HEAD));
	h = strlen(CUTS_HEAD);
	in[h + 999] = '\r';
	n = h + 999 + 1 + 1000 + 5;
	memcpy(in + n, "\nx\r\n.\r\n", 7);
	compare(in, n + 7, NULL, 0, 100 + h + 1999, true, 100, 0);
	ck_assert_int_eq(scan.err, SMTP_DATA_EBARELF);
	compare(in, n + 7, NULL, 0, 100 + h + 1998, true, 100, 0);
	ck_assert_int_eq(scan.err, SMTP_DATA_ESIZE);
	/* The stuffing dot is not counted in the first piece. */
	memset(in, 'a', sizeof(in));
	memcpy(in, CUTS_HEAD, h);
	in[h] = '.';
	n = h + 1500;
	memcpy(in + n, "\nx\r\n.\r\n", 7);
	compare(in, n + 7, NULL, 0, 100 + h + 999, true, 100, 0);
	ck_assert_int_eq(scan.err, SMTP_DATA_EBARELF);
	/* A field name is looked for in the first piece only. */
	memset(in, 'N', sizeof(in));
	in[999] = ':';
	memcpy(in + 1200, "\r\n\r\n.\r\n", 7);
	compare(in, 1207, NULL, 0, 100000, false, 0, 0);
	ck_assert(memcmp(scan.out.buf + 1202, "Date:", 5) == 0);
	in[999] = 'N';
	in[1000] = ':';
	compare(in, 1207, NULL, 0, 100000, false, 0, 0);
	ck_assert(memcmp(scan.out.buf, "Date:", 5) == 0);
}
END_TEST

START_TEST(test_end_left)
{
	const char	*in = "Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<>\r\n";

	compare_str(in, 1000, false);
	ck_assert(scan.end);
	ck_assert_uint_eq(scan.used, strstr(in, "MAIL") - in);
	ck_assert(memcmp(scan.out.buf, "Subject: x\r\nDate: now\r\n", 23)
	    == 0);
}
END_TEST

static unsigned int	rng;

static unsigned int
rnd(unsigned int n)
{
	rng = rng * 1103515245u + 12345u;
	return ((rng >> 8) & 0xffffff) % n;
}

static const char *const heads[] = {
	"Date: x", "DATE:y", "Message-ID: <a@b>", "message-id:<c>",
	"Received: from a", "received:b", "Receive: c", "Subject: s",
	" cont", "\tcont", "NoColon", ":x", "X\x01: y", "X\xc3\xa9: z",
	".Dot: d", "Date", "Message-ID", "Received",
};

/* A random line content of up to <max> octets from a mean alphabet. */
static size_t
gen_content(char *p, size_t max)
{
	static const char	alpha[] = "aaaaaaaa..::  \r\r\n\0\xe9Zd";
	size_t			n = rnd(8) == 0 ? rnd(2200) : rnd(40), i;

	if (n > max)
		n = max;
	for (i = 0; i < n; i++)
		p[i] = alpha[rnd(sizeof(alpha) - 1)];
	/* Long name-like runs put the ':' near the cut. */
	if (n > 990 && rnd(2) == 0) {
		memset(p, 'N', n);
		p[rnd(2) ? 999 : 990 + rnd(n - 990)] = rnd(2) ? ':' : '\r';
	}
	return n;
}

static size_t
gen_message(char *buf, size_t bufsz, unsigned int *hops)
{
	static const char *const ends[] = { "\r\n", "\r\n", "\r\n", "\n",
	    "\r", "\r\r\n" };
	size_t		n = 0, lines = rnd(30), i;
	const char	*e;

	*hops = rnd(20) == 0 ? 95 + rnd(10) : 0;
	for (i = 0; i < *hops && n + 64 < bufsz; i++)
		n += (size_t)snprintf(buf + n, bufsz - n, "Received: %zu\r\n",
		    i);
	for (i = 0; i < lines && n + 2300 < bufsz; i++) {
		switch (rnd(6)) {
		case 0:
		case 1:
			e = heads[rnd(sizeof(heads) / sizeof(heads[0]))];
			memcpy(buf + n, e, strlen(e));
			n += strlen(e);
			break;
		case 2:
			break;			/* an empty line */
		case 3:
			buf[n++] = '.';
			if (rnd(3) == 0)
				buf[n++] = '.';
			n += gen_content(buf + n, 2200);
			break;
		default:
			n += gen_content(buf + n, 2200);
			break;
		}
		e = ends[rnd(sizeof(ends) / sizeof(ends[0]))];
		memcpy(buf + n, e, strlen(e));
		n += strlen(e);
		/* The end marker, or its look-alikes, anywhere. */
		if (rnd(12) == 0 && n + 8 < bufsz) {
			static const char *const marks[] = { ".\r\n",
			    ".\n", ".\r", ".\r\r\n", "..\r\n", ". \r\n" };

			e = marks[rnd(sizeof(marks) / sizeof(marks[0]))];
			memcpy(buf + n, e, strlen(e));
			n += strlen(e);
		}
	}
	if (rnd(10) != 0 && n + 16 < bufsz) {
		memcpy(buf + n, "\r\n.\r\nRSET\r\n", 11);
		n += 11;
	}
	return n;
}

START_TEST(test_random)
{
	static char	in[160 * 1024];
	size_t		cuts[64], n, ncuts, i;
	unsigned int	hops, seed;
	uint64_t	max;

	for (seed = 1; seed <= 20000; seed++) {
		rng = seed;
		n = gen_message(in, sizeof(in), &hops);
		ncuts = rnd(3) == 0 ? 0 : rnd(64);
		for (i = 0; i < ncuts; i++)
			cuts[i] = n == 0 ? 0 : rnd((unsigned int)n + 1);
		/* Sorted: the points where a read() ends. */
		for (i = 1; i < ncuts; i++) {
			size_t	v = cuts[i], j = i;

			for (; j > 0 && cuts[j - 1] > v; j--)
				cuts[j] = cuts[j - 1];
			cuts[j] = v;
		}
		if (rnd(4) == 0)
			for (i = 0; i < ncuts; i++)
				cuts[i] = i + 1 < n ? i + 1 : n;
		max = rnd(3) == 0 ? rnd(4000) : 25u * 1024 * 1024;
		compare(in, n, cuts, ncuts, max, rnd(3) == 0, rnd(300),
		    seed);
	}
}
END_TEST

static Suite *
datascan_suite(void)
{
	Suite	*s = suite_create("datascan");
	TCase	*tc = tcase_create("hand");

	tcase_add_test(tc, test_hand);
	tcase_add_test(tc, test_cuts);
	tcase_add_test(tc, test_end_left);
	suite_add_tcase(s, tc);
	tc = tcase_create("random");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_random);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(datascan_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
