/*
 * check_datascan.c - unit tests for datascan.c: a few messages by hand,
 * then random messages cut at random points, compared with the path
 * the daemon used before it, kept as the model (datascan_model.h).  The
 * model and the scanner must agree on the end of data, the error, the
 * size, the octets written and what the quick check (mime_scan) makes
 * of them.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datascan_model.h"

static struct dsm_result	model, scan;

/* Runs both and compares. */
static void
compare(const char *in, size_t n, const size_t *cuts, size_t ncuts,
    uint64_t max, bool reject, uint64_t initial, unsigned int seed)
{
	struct dsm_input	 di = { in, n, cuts, ncuts, max, reject,
				    initial };
	const char		*diff;

	dsm_free(&model);
	dsm_free(&scan);
	dsm_model(&model, &di);
	dsm_scan(&scan, &di);
	diff = dsm_diff(&model, &scan);
	ck_assert_msg(diff == NULL, "seed %u: %s differs", seed, diff);
}

static void
compare_str(const char *in, uint64_t max, bool reject)
{
	compare(in, strlen(in), NULL, 0, max, reject, 100, 0);
}

START_TEST(test_hand)
{
	compare_str("Subject: x\r\n\r\nbody\r\n.\r\n", 1000, false);
	compare_str("Date: x\r\nMessage-ID: <a@b>\r\n\r\n..dot\r\n.\r\n"
	    "QUIT\r\n", 1000, false);
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
	ck_assert(memcmp(scan.out + 1202, "Date:", 5) == 0);
	in[999] = 'N';
	in[1000] = ':';
	compare(in, 1207, NULL, 0, 100000, false, 0, 0);
	ck_assert(memcmp(scan.out, "Date:", 5) == 0);
}
END_TEST

START_TEST(test_end_left)
{
	const char	*in = "Subject: x\r\n\r\nhi\r\n.\r\nMAIL FROM:<>\r\n";

	compare_str(in, 1000, false);
	ck_assert(scan.end);
	ck_assert_uint_eq(scan.used, strstr(in, "MAIL") - in);
	ck_assert(memcmp(scan.out, "Subject: x\r\nDate: now\r\n", 23)
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
