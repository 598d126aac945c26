/*
 * check_spool.c - unit tests for the on-disk queue.  The envelope text
 * format has its own tests in check_envelope.c; here only its file I/O.
 *
 * Every test works in its own mkdtemp() directory and removes it again.
 * Asynchronous commits are awaited with poll() on the notify fd under a
 * bounded deadline, never with sleeps.
 */
#include "config.h"

#include "spool.h"

#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "spooltest.h"
#include "util.h"
#include "worker.h"

#define BIG_SIZE	(300 * 1024)
#define WAIT_MS		10000		/* deadline for the local waits */

static int	done_total;		/* callbacks run so far */

/*
 * Helpers (the ones the spool tests share are in spooltest.c).
 */

static void
setup(void)
{
	spooltest_setup("check_spool");
	done_total = 0;
}

static struct spool *
open_spool(void)
{
	struct spool	*sp = tspool_open(tpath("spool"));

	ck_assert_ptr_nonnull(sp);
	return sp;
}

static int
count_entries(const char *sub)
{
	char		 rel[64];
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	snprintf(rel, sizeof(rel), "spool/%s", sub);
	ck_assert_ptr_nonnull(d = opendir(tpath(rel)));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static bool
exists(const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0;
}

/* The whole file, NUL-terminated; the caller frees it. */
static char *
slurp(const char *path, size_t *lenp)
{
	struct stat	 st;
	char		*buf;
	int		 fd;

	ck_assert_int_ne(fd = open(path, O_RDONLY), -1);
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = xmalloc((size_t)st.st_size + 1);
	ck_assert_int_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	if (lenp != NULL)
		*lenp = (size_t)st.st_size;
	return buf;
}

static void
spit(const char *path, const char *data, size_t len)
{
	int	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void
spits(const char *path, const char *s)
{
	spit(path, s, strlen(s));
}

static unsigned char
pattern(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 9));
}

/* Writes <size> pattern octets in uneven chunks, some larger than the
 * 64 KiB buffer.  Returns 0, or -1 at the first failing write. */
static int
write_pattern(struct spool_msg *msg, size_t size)
{
	static const size_t	 chunks[] = { 1, 1000, 65535, 70001, 4096 };
	unsigned char		*buf = xmalloc(70001);
	size_t			 off = 0, n, i, c = 0;
	int			 rc = 0;

	while (off < size && rc == 0) {
		n = chunks[c++ % nitems(chunks)];
		if (n > size - off)
			n = size - off;
		for (i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		rc = spool_msg_write(msg, buf, n);
		off += n;
	}
	free(buf);
	return rc;
}

static struct spool_msg *
new_msg(struct spool *sp, const char *sender, const char *rcpt)
{
	struct spool_msg	*msg;

	msg = spool_msg_new(sp, sender, "127.0.0.1", "client.example");
	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(spool_msg_add_rcpt(msg, rcpt), 0);
	return msg;
}

/* Commits a small message synchronously; its id goes into <id>. */
static void
commit_small(struct spool *sp, char *id)
{
	struct spool_msg	*msg = new_msg(sp, "a@example.org",
				    "b@example.org");

	strcopy(id, spool_msg_id(msg), SPOOL_ID_LEN + 1);
	ck_assert_int_eq(spool_msg_write(msg, "Subject: x\r\n\r\nhi\r\n", 18),
	    0);
	ck_assert_int_eq(t_commit(msg), 0);
}

static void
scan_count_cb(const struct envelope *env, void *arg)
{
	(void)env;
	(*(int *)arg)++;
}

/* Callback bookkeeping for asynchronous commits. */
struct done_rec {
	char	id[SPOOL_ID_LEN + 1];
	int	calls;
	int	err;
};

static void
done_cb(const char *id, int err, void *arg)
{
	struct done_rec	*r = arg;

	ck_assert_str_eq(id, r->id);
	r->calls++;
	r->err = err;
	done_total++;
}

static void
wait_done(struct spool *sp, int want)
{
	struct timeval	tick = { 0, 100000 };
	uint64_t	deadline = time_mono_ms() + WAIT_MS;

	(void)sp;
	while (done_total < want) {
		ck_assert_msg(time_mono_ms() < deadline,
		    "async commit timed out");
		/* Wakes at the latest after a tick to look at the clock. */
		event_base_loopexit(tbase, &tick);
		event_base_loop(tbase, EVLOOP_ONCE);
	}
}

/*
 * Layout and ids.
 */

START_TEST(test_open_layout)
{
	static const char	*subs[] = {
		"tmp", "queue", "failed", "corrupt",
	};
	struct spool		*sp;
	struct stat		 st;
	size_t			 i;
	int			 n = 0;

	/* Missing parents are created too. */
	sp = tspool_open(tpath("a/b/spool"));
	ck_assert_ptr_nonnull(sp);
	for (i = 0; i < nitems(subs); i++) {
		char	rel[64];

		snprintf(rel, sizeof(rel), "a/b/spool/%s", subs[i]);
		ck_assert_int_eq(stat(tpath(rel), &st), 0);
		ck_assert(S_ISDIR(st.st_mode));
		ck_assert_int_eq(st.st_mode & 07777, 0700);
	}
	ck_assert_int_eq(stat(tpath("a/b/spool"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(spool_scan(sp, scan_count_cb, &n), 0);
	tspool_close(sp);

	/* A file where the directory should be. */
	spit(tpath("file"), "x", 1);
	ck_assert_ptr_null(tspool_open(tpath("file")));
	ck_assert_ptr_null(tspool_open(tpath("file/spool")));
}
END_TEST

START_TEST(test_ids)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg;
	char			 ids[200][SPOOL_ID_LEN + 1];
	size_t			 i, j;

	for (i = 0; i < nitems(ids); i++) {
		msg = new_msg(sp, "a@example.org", "b@example.org");
		strcopy(ids[i], spool_msg_id(msg), sizeof(ids[i]));
		ck_assert_uint_eq(strlen(ids[i]), SPOOL_ID_LEN);
		ck_assert_uint_eq(strspn(ids[i], "0123456789abcdef"),
		    SPOOL_ID_LEN);
		ck_assert(exists(spath("tmp", ids[i], ".msg")));
		/* The time part never goes backwards. */
		if (i > 0)
			ck_assert_int_le(strncmp(ids[i - 1], ids[i], 11), 0);
		for (j = 0; j < i; j++)
			ck_assert_str_ne(ids[i], ids[j]);
		spool_abort(msg);
	}
	ck_assert_int_eq(count_entries("tmp"), 0);
	tspool_close(sp);
}
END_TEST

/*
 * Commits.
 */

START_TEST(test_commit_big)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg;
	struct envelope		 env;
	struct stat		 st;
	char			 id[SPOOL_ID_LEN + 1], path[PATH_MAX], *data;
	char			*text, small[10];
	size_t			 len, i;
	int64_t			 t0 = time_wall();

	msg = spool_msg_new(sp, "alice@example.org", "192.0.2.7",
	    "client.example");
	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(spool_msg_add_rcpt(msg, "bob@example.org"), 0);
	ck_assert_int_eq(spool_msg_add_rcpt(msg, "carol@example.net"), 0);
	strcopy(id, spool_msg_id(msg), sizeof(id));
	ck_assert_int_eq(write_pattern(msg, BIG_SIZE), 0);
	ck_assert_uint_eq(spool_msg_size(msg), BIG_SIZE);
	ck_assert_int_eq(t_commit(msg), 0);

	ck_assert_int_eq(count_entries("tmp"), 0);
	ck_assert_int_eq(spool_data_path(sp, id, path, sizeof(path)), 0);
	ck_assert_str_eq(path, spath("queue", id, ".msg"));
	ck_assert_int_eq(spool_data_path(sp, id, small, sizeof(small)), -1);
	ck_assert_int_eq(spool_data_path(sp, "nothex", path, sizeof(path)),
	    -1);
	ck_assert_int_eq(spool_data_path(sp, id, path, sizeof(path)), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	data = slurp(path, &len);
	ck_assert_uint_eq(len, BIG_SIZE);
	for (i = 0; i < len; i++)
		if ((unsigned char)data[i] != pattern(i))
			ck_abort_msg("data differs at octet %zu", i);
	free(data);

	text = slurp(spath("queue", id, ".env"), &len);
	ck_assert(strncmp(text, "smartrelay-envelope 1\nid ", 25) == 0);
	ck_assert(len > 4 && strcmp(text + len - 4, "end\n") == 0);
	free(text);

	ck_assert_int_eq(spool_env_load(sp, id, &env), 0);
	ck_assert_str_eq(env.id, id);
	ck_assert_str_eq(env.sender, "alice@example.org");
	ck_assert_str_eq(env.client, "192.0.2.7");
	ck_assert_str_eq(env.helo, "client.example");
	ck_assert(env.arrival >= t0 && env.arrival <= time_wall());
	ck_assert_uint_eq(env.size, BIG_SIZE);
	ck_assert_uint_eq(env.attempts, 0);
	ck_assert_int_eq(env.next_attempt, 0);
	ck_assert(!env.held);
	ck_assert_ptr_null(env.last_error);
	ck_assert_uint_eq(env.nrcpt, 2);
	ck_assert_str_eq(env.rcpts[0].addr, "bob@example.org");
	ck_assert_str_eq(env.rcpts[1].addr, "carol@example.net");
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(env.rcpts[i].state, ENVELOPE_RCPT_PENDING);
		ck_assert_ptr_null(env.rcpts[i].dsn);
		ck_assert_ptr_null(env.rcpts[i].reply);
	}
	envelope_cleanup(&env);
	tspool_close(sp);
}
END_TEST

START_TEST(test_commit_async)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg;
	struct done_rec		 rec[6];
	size_t			 i;
	int			 n = 0;

	memset(rec, 0, sizeof(rec));
	for (i = 0; i < nitems(rec); i++) {
		msg = new_msg(sp, "a@example.org", "b@example.org");
		strcopy(rec[i].id, spool_msg_id(msg), sizeof(rec[i].id));
		rec[i].err = -1;
		ck_assert_int_eq(write_pattern(msg, i * 40000), 0);
		spool_commit_start(msg, done_cb, &rec[i]);
	}
	wait_done(sp, (int)nitems(rec));
	event_base_loop(tbase, EVLOOP_NONBLOCK);	/* nothing runs twice */
	ck_assert_int_eq(done_total, (int)nitems(rec));
	for (i = 0; i < nitems(rec); i++) {
		ck_assert_int_eq(rec[i].calls, 1);
		ck_assert_int_eq(rec[i].err, 0);
		ck_assert(exists(spath("queue", rec[i].id, ".env")));
		ck_assert(exists(spath("queue", rec[i].id, ".msg")));
	}
	ck_assert_int_eq(count_entries("tmp"), 0);
	ck_assert_int_eq(spool_scan(sp, scan_count_cb, &n), 6);
	ck_assert_int_eq(n, 6);
	tspool_close(sp);
}
END_TEST

/* tspool_close() finishes pending commits and runs their callbacks. */
START_TEST(test_close_flushes)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg;
	struct done_rec		 rec[3];
	size_t			 i;
	int			 n = 0;

	memset(rec, 0, sizeof(rec));
	for (i = 0; i < nitems(rec); i++) {
		msg = new_msg(sp, "a@example.org", "b@example.org");
		strcopy(rec[i].id, spool_msg_id(msg), sizeof(rec[i].id));
		rec[i].err = -1;
		ck_assert_int_eq(spool_msg_write(msg, "x\r\n", 3), 0);
		spool_commit_start(msg, done_cb, &rec[i]);
	}
	tspool_close(sp);
	for (i = 0; i < nitems(rec); i++) {
		ck_assert_int_eq(rec[i].calls, 1);
		ck_assert_int_eq(rec[i].err, 0);
	}
	sp = open_spool();
	ck_assert_int_eq(spool_scan(sp, scan_count_cb, &n), 3);
	ck_assert_int_eq(n, 3);
	tspool_close(sp);
}
END_TEST

START_TEST(test_abort)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg = new_msg(sp, "a@example.org", "b@x");

	ck_assert_int_eq(write_pattern(msg, BIG_SIZE), 0);
	ck_assert_int_eq(count_entries("tmp"), 1);
	spool_abort(msg);
	spool_abort(NULL);
	ck_assert_int_eq(count_entries("tmp"), 0);
	ck_assert_int_eq(count_entries("queue"), 0);
	tspool_close(sp);
}
END_TEST

/*
 * Write failures: RLIMIT_FSIZE with SIGXFSZ ignored makes write() fail
 * with EFBIG, for small messages at commit time (the flush) and for big
 * ones while writing.  Synchronous and asynchronous commits.
 */
static const struct {
	size_t	size;
	bool	async;
} fail_cases[] = {
	{ 20 * 1024, false }, { BIG_SIZE, false },
	{ 20 * 1024, true }, { BIG_SIZE, true },
};

START_TEST(test_write_fail)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg;
	struct done_rec		 rec;
	struct rlimit		 old, lim;
	char			 keep[SPOOL_ID_LEN + 1];
	int			 rc;

	commit_small(sp, keep);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 10 * 1024;
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);

	msg = new_msg(sp, "a@example.org", "b@example.org");
	rc = write_pattern(msg, fail_cases[_i].size);
	if (fail_cases[_i].size > 64 * 1024) {
		ck_assert_int_eq(rc, -1);
		ck_assert_int_eq(errno, EFBIG);
		/* The failure sticks. */
		ck_assert_int_eq(spool_msg_write(msg, "x", 1), -1);
		ck_assert_int_eq(errno, EFBIG);
	} else
		ck_assert_int_eq(rc, 0);
	if (fail_cases[_i].async) {
		memset(&rec, 0, sizeof(rec));
		strcopy(rec.id, spool_msg_id(msg), sizeof(rec.id));
		spool_commit_start(msg, done_cb, &rec);
		wait_done(sp, 1);
		ck_assert_int_eq(rec.calls, 1);
		ck_assert_int_eq(rec.err, EFBIG);
	} else {
		errno = 0;
		ck_assert_int_eq(t_commit(msg), -1);
		ck_assert_int_eq(errno, EFBIG);
	}
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	ck_assert_int_eq(count_entries("tmp"), 0);
	ck_assert_int_eq(count_entries("queue"), 2);	/* <keep> only */
	ck_assert(exists(spath("queue", keep, ".env")));
	tspool_close(sp);
}
END_TEST

/*
 * A real full disk, on a small tmpfs in a private mount namespace.
 * Needs CAP_SYS_ADMIN; without it the test only says so and passes.
 */
START_TEST(test_enospc)
{
	struct spool		*sp;
	struct spool_msg	*msg;
	char			 keep[SPOOL_ID_LEN + 1];
	int			 rc, n = 0;

	ck_assert_int_eq(mkdir(tpath("spool"), 0700), 0);
	if (unshare(CLONE_NEWNS) == -1 ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) == -1 ||
	    mount("tmpfs", tpath("spool"), "tmpfs", 0, "size=256k") == -1) {
		fprintf(stderr, "test_enospc: no tmpfs (%s), skipped\n",
		    strerror(errno));
		return;
	}
	sp = open_spool();
	commit_small(sp, keep);
	msg = new_msg(sp, "a@example.org", "b@example.org");
	rc = write_pattern(msg, 1024 * 1024);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(t_commit(msg), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(count_entries("tmp"), 0);
	ck_assert_int_eq(count_entries("queue"), 2);
	ck_assert_int_eq(spool_scan(sp, scan_count_cb, &n), 1);
	tspool_close(sp);
	umount(tpath("spool"));
}
END_TEST

/*
 * Recovery at startup.
 */

static void
scan_id_cb(const struct envelope *env, void *arg)
{
	strcopy(arg, env->id, SPOOL_ID_LEN + 1);
}

START_TEST(test_recover)
{
	static const char	 good_env[] = "smartrelay-envelope 1\n"
	    "id 0000000000000004\nsender a@b\nrcpt pending - c@d\nend\n";
	struct spool		*sp = open_spool();
	char			 keep[SPOOL_ID_LEN + 1], got[SPOOL_ID_LEN + 1];

	commit_small(sp, keep);
	tspool_close(sp);

	/* Leftovers of writes in progress. */
	spit(spath("tmp", "leftover", ""), "x", 1);
	spit(spath("tmp", "0000000000000009", ".msg"), "x", 1);
	spit(spath("tmp", "0000000000000009", ".env"), "x", 1);
	/* Data whose envelope never arrived: an interrupted commit. */
	spit(spath("queue", "0000000000000001", ".msg"), "x", 1);
	/* An envelope without its end line. */
	spits(spath("queue", "0000000000000002", ".env"),
	    "smartrelay-envelope 1\nid 0000000000000002\nsender a@b\n"
	    "rcpt pending - c@d\n");
	spit(spath("queue", "0000000000000002", ".msg"), "x", 1);
	/* Garbage. */
	spits(spath("queue", "0000000000000003", ".env"), "\x01\xff garbage");
	spit(spath("queue", "0000000000000003", ".msg"), "x", 1);
	/* A fine envelope without data. */
	spits(spath("queue", "0000000000000004", ".env"), good_env);

	sp = open_spool();
	ck_assert_int_eq(count_entries("tmp"), 0);
	ck_assert_int_eq(count_entries("queue"), 2);
	ck_assert(exists(spath("queue", keep, ".env")));
	ck_assert(exists(spath("queue", keep, ".msg")));
	ck_assert(!exists(spath("corrupt", "0000000000000001", ".msg")));
	ck_assert(exists(spath("corrupt", "0000000000000002", ".env")));
	ck_assert(exists(spath("corrupt", "0000000000000002", ".msg")));
	ck_assert(exists(spath("corrupt", "0000000000000003", ".env")));
	ck_assert(exists(spath("corrupt", "0000000000000003", ".msg")));
	ck_assert(exists(spath("corrupt", "0000000000000004", ".env")));
	ck_assert_int_eq(count_entries("corrupt"), 5);
	ck_assert_int_eq(spool_scan(sp, scan_id_cb, got), 1);
	ck_assert_str_eq(got, keep);
	tspool_close(sp);
}
END_TEST

/*
 * Envelopes.
 */

/* Load, change, save, load: the I/O around envelope_format() and
 * envelope_parse(), which check_envelope.c tests in depth. */
START_TEST(test_env_roundtrip)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg;
	struct envelope		 env, back;
	char			 id[SPOOL_ID_LEN + 1], *text;
	struct stat		 st;

	msg = spool_msg_new(sp, "\"john doe\"@x", "::1", "my host+=");
	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(spool_msg_add_rcpt(msg, "a+b=c@example.org"), 0);
	ck_assert_int_eq(spool_msg_add_rcpt(msg, "plain@example.org"), 0);
	strcopy(id, spool_msg_id(msg), sizeof(id));
	ck_assert_int_eq(t_commit(msg), 0);

	ck_assert_int_eq(spool_env_load(sp, id, &env), 0);
	ck_assert_str_eq(env.sender, "\"john doe\"@x");
	ck_assert_str_eq(env.helo, "my host+=");
	ck_assert_uint_eq(env.size, 0);
	env.attempts = 3;
	env.next_attempt = 1795000123;
	env.last_error = xstrdup("421 try\r\nlater");
	env.rcpts[0].state = ENVELOPE_RCPT_FAILED;
	env.rcpts[0].dsn = xstrdup("5.1.1");
	env.rcpts[0].reply = xstrdup("550 5.1.1 no such user");
	ck_assert_int_eq(t_env_save(sp, &env), 0);
	ck_assert_int_eq(count_entries("tmp"), 0);
	ck_assert_int_eq(count_entries("queue"), 2);
	ck_assert_int_eq(stat(spath("queue", id, ".env"), &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);

	text = slurp(spath("queue", id, ".env"), NULL);
	ck_assert_ptr_nonnull(strstr(text, "\nattempts 3\nnext 1795000123\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nerror 421 try  later\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nrcpt failed 5.1.1 "
	    "a+2Bb+3Dc@example.org 550 5.1.1 no such user\n"));
	free(text);

	ck_assert_int_eq(spool_env_load(sp, id, &back), 0);
	ck_assert_str_eq(back.id, id);
	ck_assert_str_eq(back.client, "::1");
	ck_assert_int_eq(back.arrival, env.arrival);
	ck_assert_uint_eq(back.attempts, 3);
	ck_assert_int_eq(back.next_attempt, 1795000123);
	ck_assert_str_eq(back.last_error, "421 try  later");
	ck_assert_uint_eq(back.nrcpt, 2);
	ck_assert_int_eq(back.rcpts[0].state, ENVELOPE_RCPT_FAILED);
	ck_assert_str_eq(back.rcpts[0].reply, "550 5.1.1 no such user");
	ck_assert_int_eq(back.rcpts[1].state, ENVELOPE_RCPT_PENDING);
	envelope_cleanup(&back);

	/* Envelopes that would not load again are refused, and the file
	 * on disk stays as it was. */
	env.nrcpt = 0;
	ck_assert_int_eq(t_env_save(sp, &env), -1);
	ck_assert_int_eq(errno, EINVAL);
	env.nrcpt = 2;
	ck_assert_int_eq(count_entries("tmp"), 0);
	ck_assert_int_eq(spool_env_load(sp, id, &back), 0);
	ck_assert_uint_eq(back.attempts, 3);
	envelope_cleanup(&back);
	envelope_cleanup(&env);
	tspool_close(sp);
}
END_TEST

START_TEST(test_null_sender)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg = new_msg(sp, "", "b@example.org");
	struct envelope		 env;
	char			 id[SPOOL_ID_LEN + 1], *text;

	strcopy(id, spool_msg_id(msg), sizeof(id));
	ck_assert_int_eq(t_commit(msg), 0);
	text = slurp(spath("queue", id, ".env"), NULL);
	ck_assert_ptr_nonnull(strstr(text, "\nsender <>\n"));
	free(text);
	ck_assert_int_eq(spool_env_load(sp, id, &env), 0);
	ck_assert_str_eq(env.sender, "");
	ck_assert_int_eq(t_env_save(sp, &env), 0);
	envelope_cleanup(&env);
	ck_assert_int_eq(spool_env_load(sp, id, &env), 0);
	ck_assert_str_eq(env.sender, "");
	envelope_cleanup(&env);
	tspool_close(sp);
}
END_TEST

/* The envelope says whether the data needs re-encoding before it is
 * relayed (mime.h): the data is checked as it is written, in pieces of
 * any size. */
static const struct {
	const char	*data;
	size_t		 len;
	bool		 reencode;
} reencode_cases[] = {
	{ "Subject: x\r\n\r\nhi\r\n", 18, false },
	{ "", 0, false },
	{ "Subject: x\r\n\r\n10%\r50%\r100%\r\n", 28, true },
	{ "Subject: x\r\n\r\nnul\0byte\r\n", 25, true },
	{ "Subject: x\r\n\r\nends in CR\r", 25, true },
};

START_TEST(test_reencode_flag)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg = new_msg(sp, "a@example.org",
				    "b@example.org");
	struct envelope		 env;
	char			 id[SPOOL_ID_LEN + 1], *text, *line;
	size_t			 i, len = reencode_cases[_i].len;
	const char		*p = reencode_cases[_i].data;

	strcopy(id, spool_msg_id(msg), sizeof(id));
	for (i = 0; i < len; i++)	/* one octet at a time */
		ck_assert_int_eq(spool_msg_write(msg, p + i, 1), 0);
	ck_assert_int_eq(t_commit(msg), 0);
	ck_assert_int_eq(spool_env_load(sp, id, &env), 0);
	ck_assert_int_eq(env.reencode, reencode_cases[_i].reencode);
	envelope_cleanup(&env);
	text = slurp(spath("queue", id, ".env"), NULL);
	line = strstr(text, "\nreencode ");
	if (reencode_cases[_i].reencode)
		ck_assert_ptr_nonnull(strstr(text, "\nreencode 1\n"));
	else
		ck_assert_ptr_null(line);
	free(text);
	tspool_close(sp);
}
END_TEST

/* A line of 998 octets is conformant; one of 999 is not. */
START_TEST(test_reencode_long_line)
{
	struct spool		*sp = open_spool();
	struct spool_msg	*msg;
	struct envelope		 env;
	char			 id[SPOOL_ID_LEN + 1], line[1001];
	int			 n;

	for (n = 998; n <= 999; n++) {
		msg = new_msg(sp, "a@example.org", "b@example.org");
		strcopy(id, spool_msg_id(msg), sizeof(id));
		memset(line, 'x', (size_t)n);
		memcpy(line + n, "\r\n", 2);
		ck_assert_int_eq(spool_msg_write(msg, "S: x\r\n\r\n", 8), 0);
		ck_assert_int_eq(spool_msg_write(msg, line, (size_t)n + 2), 0);
		ck_assert_int_eq(t_commit(msg), 0);
		ck_assert_int_eq(spool_env_load(sp, id, &env), 0);
		ck_assert_int_eq(env.reencode, (n == 999));
		envelope_cleanup(&env);
	}
	tspool_close(sp);
}
END_TEST

#define EID	"0006123abcd01f2e"
#define EMIN	"smartrelay-envelope 1\nid " EID "\nsender <>\n" \
		"rcpt pending - b@x\n"

/* What spool_env_load() does with files it cannot use: errno tells
 * corrupt (EINVAL, EFBIG) from unreadable, and <env> is left zeroed. */
START_TEST(test_env_load_errors)
{
	struct spool	*sp = open_spool();
	struct envelope	 env;
	char		*big;

	spit(spath("queue", EID, ".msg"), "x", 1);
	spits(spath("queue", EID, ".env"), EMIN "end\n");
	ck_assert_int_eq(spool_env_load(sp, EID, &env), 0);
	ck_assert_str_eq(env.client, "");
	envelope_cleanup(&env);

	spits(spath("queue", EID, ".env"), EMIN);	/* no end */
	ck_assert_int_eq(spool_env_load(sp, EID, &env), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_null(env.sender);
	ck_assert_uint_eq(env.nrcpt, 0);

	big = xmalloc(ENVELOPE_MAX + 1);
	memset(big, 'a', ENVELOPE_MAX + 1);
	spit(spath("queue", EID, ".env"), big, ENVELOPE_MAX + 1);
	free(big);
	ck_assert_int_eq(spool_env_load(sp, EID, &env), -1);
	ck_assert_int_eq(errno, EFBIG);

	ck_assert_int_eq(unlink(spath("queue", EID, ".env")), 0);
	ck_assert_int_eq(mkdir(spath("queue", EID, ".env"), 0700), 0);
	ck_assert_int_eq(spool_env_load(sp, EID, &env), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(rmdir(spath("queue", EID, ".env")), 0);

	ck_assert_int_eq(spool_env_load(sp, "not-an-id", &env), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(spool_env_load(sp, "../queue/" EID, &env), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(spool_env_load(sp, "0000000000000000", &env), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_ptr_null(env.sender);
	tspool_close(sp);
}
END_TEST

/*
 * Removal and failure.
 */

START_TEST(test_remove)
{
	struct spool	*sp = open_spool();
	char		 id[SPOOL_ID_LEN + 1];
	int		 n = 0;

	commit_small(sp, id);
	ck_assert_int_eq(t_remove(sp, id), 0);
	ck_assert_int_eq(count_entries("queue"), 0);
	ck_assert_int_eq(t_remove(sp, id), 0);	/* gone already: fine */
	ck_assert_int_eq(t_remove(sp, "../etc/passwd"), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(spool_scan(sp, scan_count_cb, &n), 0);
	ck_assert_int_eq(n, 0);
	tspool_close(sp);
}
END_TEST

START_TEST(test_move_failed)
{
	struct spool	*sp = open_spool();
	char		 id[SPOOL_ID_LEN + 1], other[SPOOL_ID_LEN + 1];
	int		 n = 0;

	commit_small(sp, id);
	commit_small(sp, other);
	ck_assert_int_eq(t_move_failed(sp, id), 0);
	ck_assert(exists(spath("failed", id, ".env")));
	ck_assert(exists(spath("failed", id, ".msg")));
	ck_assert(!exists(spath("queue", id, ".env")));
	ck_assert(!exists(spath("queue", id, ".msg")));
	ck_assert_int_eq(t_move_failed(sp, id), -1);
	ck_assert_int_eq(spool_scan(sp, scan_count_cb, &n), 1);
	tspool_close(sp);
	/* failed/ is left alone at startup. */
	sp = open_spool();
	ck_assert_int_eq(count_entries("failed"), 2);
	ck_assert_int_eq(count_entries("queue"), 2);
	tspool_close(sp);
}
END_TEST

/* Back from failed/: the queue's names, the same data, nothing left
 * in failed/; and an interrupted requeue, at either step, loses
 * nothing at the next start. */
START_TEST(test_requeue)
{
	struct spool	*sp = open_spool();
	struct envelope	 env;
	char		 id[SPOOL_ID_LEN + 1], other[SPOOL_ID_LEN + 1];
	char		*before, *after, envpath[PATH_MAX];
	size_t		 blen, alen;
	int		 n = 0;

	commit_small(sp, id);
	commit_small(sp, other);
	before = slurp(spath("queue", id, ".msg"), &blen);
	ck_assert_int_eq(t_move_failed(sp, id), 0);
	ck_assert_int_eq(spool_scan_failed(sp, scan_count_cb, &n), 1);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(spool_failed_load(sp, other, &env), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(spool_failed_load(sp, id, &env), 0);
	env.attempts = 9;
	ck_assert_int_eq(t_requeue(sp, &env), 0);
	ck_assert_int_eq(count_entries("failed"), 0);
	after = slurp(spath("queue", id, ".msg"), &alen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_mem_eq(after, before, blen);
	free(after);
	envelope_cleanup(&env);
	ck_assert_int_eq(spool_env_load(sp, id, &env), 0);
	ck_assert_uint_eq(env.attempts, 9);
	/* Queued already; never was in failed/. */
	ck_assert_int_eq(t_requeue(sp, &env), -1);
	ck_assert_int_eq(errno, EEXIST);
	envelope_cleanup(&env);
	ck_assert_int_eq(spool_env_load(sp, other, &env), 0);
	ck_assert_int_eq(t_requeue(sp, &env), -1);
	ck_assert_int_eq(errno, EEXIST);
	memcpy(env.id, "0000000000000001", SPOOL_ID_LEN);
	ck_assert_int_eq(t_requeue(sp, &env), -1);
	ck_assert_int_eq(errno, ENOENT);
	envelope_cleanup(&env);

	/* A crash once the data is linked, before the envelope: the
	 * queue's data goes, failed/ keeps the message. */
	ck_assert_int_eq(t_move_failed(sp, id), 0);
	tspool_close(sp);
	ck_assert_int_eq(link(spath("failed", id, ".msg"),
	    tpath("data.tmp")), 0);
	ck_assert_int_eq(rename(tpath("data.tmp"), spath("queue", id,
	    ".msg")), 0);
	sp = open_spool();
	ck_assert(!exists(spath("queue", id, ".msg")));
	ck_assert(exists(spath("failed", id, ".env")));
	after = slurp(spath("failed", id, ".msg"), &alen);
	ck_assert_mem_eq(after, before, blen);
	free(after);

	/* A crash after the envelope, before failed/ is cleared: the
	 * next start removes the failed/ copy, the queue's stays. */
	tspool_close(sp);
	ck_assert_int_eq(link(spath("failed", id, ".msg"),
	    spath("queue", id, ".msg")), 0);
	snprintf(envpath, sizeof(envpath), "%s", spath("queue", id, ".env"));
	ck_assert_int_eq(link(spath("failed", id, ".env"), envpath), 0);
	sp = open_spool();
	ck_assert_int_eq(count_entries("failed"), 0);
	ck_assert(exists(spath("queue", id, ".env")));
	after = slurp(spath("queue", id, ".msg"), &alen);
	ck_assert_mem_eq(after, before, blen);
	free(after);
	n = 0;
	ck_assert_int_eq(spool_scan(sp, scan_count_cb, &n), 2);
	free(before);
	tspool_close(sp);
}
END_TEST

static Suite *
spool_suite(void)
{
	Suite	*s = suite_create("spool");
	TCase	*tc;

#define ADD_CASE(name, fn) do {						\
	tc = tcase_create(name);					\
	tcase_add_checked_fixture(tc, setup, spooltest_teardown);	\
	tcase_add_test(tc, fn);						\
	suite_add_tcase(s, tc);						\
} while (0)
	ADD_CASE("open", test_open_layout);
	ADD_CASE("ids", test_ids);
	ADD_CASE("commit", test_commit_big);
	ADD_CASE("async", test_commit_async);
	ADD_CASE("close", test_close_flushes);
	ADD_CASE("abort", test_abort);
	ADD_CASE("enospc", test_enospc);
	ADD_CASE("recover", test_recover);
	ADD_CASE("roundtrip", test_env_roundtrip);
	ADD_CASE("nullsender", test_null_sender);
	ADD_CASE("loaderrors", test_env_load_errors);
	ADD_CASE("remove", test_remove);
	ADD_CASE("failed", test_move_failed);
	ADD_CASE("requeue", test_requeue);
	ADD_CASE("reencodelong", test_reencode_long_line);
#undef ADD_CASE
	tc = tcase_create("reencode");
	tcase_add_checked_fixture(tc, setup, spooltest_teardown);
	tcase_add_loop_test(tc, test_reencode_flag, 0,
	    nitems(reencode_cases));
	suite_add_tcase(s, tc);
	tc = tcase_create("writefail");
	tcase_add_checked_fixture(tc, setup, spooltest_teardown);
	tcase_add_loop_test(tc, test_write_fail, 0, nitems(fail_cases));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(spool_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
