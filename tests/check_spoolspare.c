/*
 * check_spoolspare.c - unit tests for the pool of spare spool files:
 * through the spool (a delivered message's inodes carry the next
 * message, empty, and hold exactly its data), and the pool alone (cap,
 * startup adoption, planted symlinks and hard links never used).
 *
 * Every test works in its own mkdtemp() directory.  Asynchronous
 * operations are awaited on the loop under a bounded deadline.
 */
#include "config.h"

#include "spoolspare.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"
#include "spooltest.h"
#include "util.h"

static void
setup(void)
{
	spooltest_setup("check_spoolspare");
}

static ino_t
ino_of(const char *path)
{
	struct stat	st;

	ck_assert_int_eq(lstat(path, &st), 0);
	return st.st_ino;
}

static off_t
size_of(const char *path)
{
	struct stat	st;

	ck_assert_int_eq(lstat(path, &st), 0);
	return st.st_size;
}

static void
spit(const char *path, const char *s)
{
	int	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	close(fd);
}

/* The whole file, NUL-terminated; the caller frees it. */
static char *
slurp(const char *path)
{
	char	*buf = xmalloc(4096);
	ssize_t	 n;
	int	 fd;

	ck_assert_int_ne(fd = open(path, O_RDONLY), -1);
	ck_assert_int_ge(n = read(fd, buf, 4095), 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

/* Entries of <testdir>/<rel>, the inode of the last into <ino>. */
static int
count_entries(const char *rel, ino_t *ino)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	ck_assert_ptr_nonnull(d = opendir(tpath(rel)));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0) {
			n++;
			if (ino != NULL)
				*ino = de->d_ino;
		}
	closedir(d);
	return n;
}

/* Commits a message holding <data>; its id into <id>. */
static void
commit_data(struct spool *sp, const char *data, char *id)
{
	struct spool_msg	*msg;

	ck_assert_ptr_nonnull(msg = spool_msg_new(sp, "a@b", "1.2.3.4", "h"));
	snprintf(id, SPOOL_ID_LEN + 1, "%s", spool_msg_id(msg));
	/* A reused file starts empty. */
	ck_assert_int_eq(size_of(spath("tmp", id, ".msg")), 0);
	ck_assert_int_eq(spool_msg_add_rcpt(msg, "c@d"), 0);
	ck_assert_int_eq(spool_msg_write(msg, data, strlen(data)), 0);
	ck_assert_int_eq(t_commit(msg), 0);
}

START_TEST(test_spool_reuse)
{
	struct spool	*sp = tspool_open(tpath("spool"));
	struct envelope	 env;
	char		 a[SPOOL_ID_LEN + 1], b[SPOOL_ID_LEN + 1], *text;
	ino_t		 adata, aenv, ino;

	commit_data(sp, "a much longer first message\r\n", a);
	adata = ino_of(spath("queue", a, ".msg"));
	aenv = ino_of(spath("queue", a, ".env"));
	ck_assert_int_eq(t_remove(sp, a), 0);
	ck_assert_int_eq(count_entries("spool/queue", NULL), 0);
	ck_assert_int_eq(count_entries("spool/spare", NULL), 2);

	/* The next message lives in the same two inodes, with nothing of
	 * the old content. */
	commit_data(sp, "second\r\n", b);
	ck_assert_int_eq(count_entries("spool/spare", NULL), 0);
	ck_assert_int_eq(ino_of(spath("queue", b, ".msg")), adata);
	ck_assert_int_eq(ino_of(spath("queue", b, ".env")), aenv);
	text = slurp(spath("queue", b, ".msg"));
	ck_assert_str_eq(text, "second\r\n");
	free(text);
	ck_assert_int_eq(spool_env_load(sp, b, &env), 0);
	ck_assert_str_eq(env.rcpts[0].addr, "c@d");
	ck_assert_int_eq(env.size, 8);

	/* An envelope rewrite leaves the old envelope's inode a spare. */
	env.attempts = 3;
	ck_assert_int_eq(t_env_save(sp, &env), 0);
	envelope_cleanup(&env);
	ck_assert_int_eq(count_entries("spool/spare", &ino), 1);
	ck_assert_int_eq(ino, aenv);
	ck_assert_int_eq(count_entries("spool/tmp", NULL), 0);
	ck_assert_int_eq(spool_env_load(sp, b, &env), 0);
	ck_assert_int_eq(env.attempts, 3);
	envelope_cleanup(&env);

	/* Aborted messages are unlinked (they may be big; the loop does
	 * not truncate). */
	spool_abort(spool_msg_new(sp, "a@b", NULL, NULL));
	ck_assert_int_eq(count_entries("spool/tmp", NULL), 0);
	tspool_close(sp);
}
END_TEST

/* A crash between the rename into spare/ and the truncation, and one
 * in the middle of a commit: startup truncates both files, and the
 * spool reuses them (the last one taken in first). */
START_TEST(test_spool_recover)
{
	struct spool	*sp;
	char		 id[SPOOL_ID_LEN + 1], *text;
	ino_t		 ino, tino;

	sp = tspool_open(tpath("spool"));
	tspool_close(sp);
	spit(tpath("spool/spare/00000000000000aa.spare"), "old secret");
	spit(tpath("spool/spare/stranger"), "x");
	spit(tpath("spool/tmp/0001234567890def.msg"), "half a message");
	ino = ino_of(tpath("spool/spare/00000000000000aa.spare"));
	tino = ino_of(tpath("spool/tmp/0001234567890def.msg"));
	sp = tspool_open(tpath("spool"));
	ck_assert_int_eq(count_entries("spool/tmp", NULL), 0);
	ck_assert_int_eq(count_entries("spool/spare", NULL), 2);
	ck_assert_int_eq(size_of(tpath("spool/spare/00000000000000aa.spare")),
	    0);
	commit_data(sp, "new\r\n", id);
	ck_assert_int_eq(ino_of(spath("queue", id, ".msg")), tino);
	ck_assert_int_eq(ino_of(spath("queue", id, ".env")), ino);
	text = slurp(spath("queue", id, ".msg"));
	ck_assert_str_eq(text, "new\r\n");
	free(text);
	tspool_close(sp);
}
END_TEST

/*
 * The pool alone, on plain directories.
 */

static int
dir_open(const char *rel)
{
	int	fd;

	ck_assert_int_eq(mkdir(tpath(rel), 0700), 0);
	ck_assert_int_ne(fd = open(tpath(rel), O_RDONLY | O_DIRECTORY), -1);
	return fd;
}

START_TEST(test_cap)
{
	struct spoolspare	*ss;
	struct stat		 st;
	int			 dfd, fd, i;
	char			 name[16];

	dfd = dir_open("d");
	ss = spoolspare_new(dir_open("spare"), 2);
	ck_assert_int_eq(spoolspare_adopt(ss), 0);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		spit(tpath("d/x"), "content");
		ck_assert_int_eq(renameat(dfd, "x", dfd, name), 0);
		ck_assert_int_eq(spoolspare_remove(ss, dfd, name), 0);
	}
	ck_assert_int_eq(spoolspare_remove(ss, dfd, "missing"), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_uint_eq(spoolspare_count(ss), 2);
	ck_assert_int_eq(count_entries("spare", NULL), 2);
	ck_assert_int_eq(count_entries("d", NULL), 0);

	/* Taken back; the name must be free, as with O_EXCL. */
	spit(tpath("d/taken"), "");
	ck_assert_int_eq(spoolspare_create(ss, dfd, "taken"), -1);
	ck_assert_int_eq(errno, EEXIST);
	ck_assert_uint_eq(spoolspare_count(ss), 2);
	for (i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		ck_assert_int_ne(fd = spoolspare_create(ss, dfd, name), -1);
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_int_eq(st.st_size, 0);
		close(fd);
	}
	ck_assert_uint_eq(spoolspare_count(ss), 0);
	ck_assert_int_eq(count_entries("spare", NULL), 0);
	spoolspare_free(ss);
	close(dfd);
}
END_TEST

/* Startup: one of ours with content is truncated and adopted; a symlink,
 * a hard link and a stranger's name go, their targets untouched. */
START_TEST(test_adopt_planted)
{
	struct spoolspare	*ss;
	char			*text;
	ino_t			 ino;
	int			 dfd, sfd, fd;

	dfd = dir_open("d");
	sfd = dir_open("spare");
	spit(tpath("victim"), "precious");
	spit(tpath("linked"), "also precious");
	spit(tpath("spare/0000000000000001.spare"), "leftover");
	ck_assert_int_eq(symlink(tpath("victim"),
	    tpath("spare/0000000000000002.spare")), 0);
	ck_assert_int_eq(link(tpath("linked"),
	    tpath("spare/0000000000000003.spare")), 0);
	spit(tpath("spare/other"), "");
	ck_assert_int_eq(mkfifo(tpath("spare/0000000000000004.spare"), 0600),
	    0);
	ino = ino_of(tpath("spare/0000000000000001.spare"));
	ss = spoolspare_new(sfd, 8);
	ck_assert_int_eq(spoolspare_adopt(ss), 1);
	ck_assert_int_eq(count_entries("spare", NULL), 1);
	ck_assert_int_eq(size_of(tpath("spare/0000000000000001.spare")), 0);
	text = slurp(tpath("victim"));
	ck_assert_str_eq(text, "precious");
	free(text);
	text = slurp(tpath("linked"));
	ck_assert_str_eq(text, "also precious");
	free(text);
	ck_assert_int_ne(fd = spoolspare_create(ss, dfd, "new"), -1);
	close(fd);
	ck_assert_int_eq(ino_of(tpath("d/new")), ino);
	spoolspare_free(ss);
	close(dfd);
}
END_TEST

/* The name of the one file in <testdir>/<rel>, as "<rel>/<name>". */
static const char *
only_entry(const char *rel)
{
	static char	 buf[PATH_MAX];
	DIR		*d;
	struct dirent	*de;

	ck_assert_int_eq(count_entries(rel, NULL), 1);
	ck_assert_ptr_nonnull(d = opendir(tpath(rel)));
	while ((de = readdir(d)) != NULL && de->d_name[0] == '.')
		;
	ck_assert_ptr_nonnull(de);
	snprintf(buf, sizeof(buf), "%s/%s", rel, de->d_name);
	closedir(d);
	return buf;
}

/* What replaced a spare after startup is not used either: a symlink
 * (round 0) or a hard link (round 1).  The file made instead is a new
 * one, and the planted link's target keeps its data. */
START_TEST(test_planted_later)
{
	struct spoolspare	*ss;
	struct stat		 st;
	char			*text, spare[PATH_MAX];
	int			 dfd, fd;

	dfd = dir_open("d");
	ss = spoolspare_new(dir_open("spare"), 8);
	ck_assert_int_eq(spoolspare_adopt(ss), 0);
	spit(tpath("victim"), "precious");
	spit(tpath("d/x"), "delivered");
	ck_assert_int_eq(spoolspare_remove(ss, dfd, "x"), 0);
	snprintf(spare, sizeof(spare), "%s", tpath(only_entry("spare")));
	ck_assert_int_eq(size_of(spare), 0);
	ck_assert_int_eq(unlink(spare), 0);
	if (_i == 0)
		ck_assert_int_eq(symlink(tpath("victim"), spare), 0);
	else
		ck_assert_int_eq(link(tpath("victim"), spare), 0);
	ck_assert_int_ne(fd = spoolspare_create(ss, dfd, "new"), -1);
	close(fd);
	ck_assert_int_eq(lstat(tpath("d/new"), &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_nlink, 1);
	ck_assert_int_ne(st.st_ino, ino_of(tpath("victim")));
	text = slurp(tpath("victim"));
	ck_assert_str_eq(text, "precious");
	free(text);
	ck_assert_int_eq(count_entries("spare", NULL), 0);
	ck_assert_uint_eq(spoolspare_count(ss), 0);
	spoolspare_free(ss);
	close(dfd);
}
END_TEST

/* spare/ removed under a running daemon: removals still remove (a
 * delivered message must not stay in queue/), creations still create. */
START_TEST(test_spare_dir_gone)
{
	struct spoolspare	*ss;
	int			 dfd, fd;

	dfd = dir_open("d");
	ss = spoolspare_new(dir_open("spare"), 4);
	ck_assert_int_eq(spoolspare_adopt(ss), 0);
	spit(tpath("d/a"), "content");
	ck_assert_int_eq(spoolspare_remove(ss, dfd, "a"), 0);
	ck_assert_uint_eq(spoolspare_count(ss), 1);
	/* What an admin's rm -rf spare/ does. */
	ck_assert_int_eq(count_entries("spare", NULL), 1);
	ck_assert_int_eq(spooltest_rmtree(tpath("spare")), 0);

	ck_assert_int_ne(fd = spoolspare_create(ss, dfd, "n"), -1);
	ck_assert_int_eq(write(fd, "new", 3), 3);
	close(fd);
	ck_assert_uint_eq(spoolspare_count(ss), 0);
	ck_assert_int_eq(spoolspare_remove(ss, dfd, "n"), 0);
	ck_assert_int_eq(access(tpath("d/n"), F_OK), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(spoolspare_remove(ss, dfd, "n"), -1);
	ck_assert_int_eq(errno, ENOENT);
	spoolspare_free(ss);
	close(dfd);
}
END_TEST

/* Out of descriptors: the create fails with EMFILE and the spare it
 * tried goes back to the pool, which one failure must not empty. */
START_TEST(test_create_emfile)
{
	struct spoolspare	*ss;
	struct rlimit		 rl, low;
	int			 dfd, fd, fds[256], n = 0, err;

	dfd = dir_open("d");
	ss = spoolspare_new(dir_open("spare"), 4);
	ck_assert_int_eq(spoolspare_adopt(ss), 0);
	spit(tpath("d/a"), "a");
	spit(tpath("d/b"), "b");
	ck_assert_int_eq(spoolspare_remove(ss, dfd, "a"), 0);
	ck_assert_int_eq(spoolspare_remove(ss, dfd, "b"), 0);
	ck_assert_uint_eq(spoolspare_count(ss), 2);

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = 64;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (n < 256 && (fds[n] = dup(dfd)) != -1)
		n++;
	ck_assert_int_eq(errno, EMFILE);
	fd = spoolspare_create(ss, dfd, "n");
	err = errno;
	while (n > 0)
		close(fds[--n]);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_int_eq(fd, -1);
	ck_assert_int_eq(err, EMFILE);
	ck_assert_uint_eq(spoolspare_count(ss), 2);
	ck_assert_int_eq(count_entries("spare", NULL), 2);
	ck_assert_int_eq(access(tpath("d/n"), F_OK), -1);

	/* With descriptors again, the spares serve. */
	ck_assert_int_ne(fd = spoolspare_create(ss, dfd, "n"), -1);
	close(fd);
	ck_assert_uint_eq(spoolspare_count(ss), 1);
	spoolspare_free(ss);
	close(dfd);
}
END_TEST

static Suite *
spoolspare_suite(void)
{
	Suite	*s = suite_create("spoolspare");
	TCase	*tc;

#define ADD_CASE(name, fn) do {						\
	tc = tcase_create(name);					\
	tcase_add_checked_fixture(tc, setup, spooltest_teardown);	\
	tcase_add_test(tc, fn);						\
	suite_add_tcase(s, tc);						\
} while (0)
	ADD_CASE("reuse", test_spool_reuse);
	ADD_CASE("recover", test_spool_recover);
	ADD_CASE("cap", test_cap);
	ADD_CASE("adopt", test_adopt_planted);
	ADD_CASE("spare-dir-gone", test_spare_dir_gone);
	ADD_CASE("create-emfile", test_create_emfile);
#undef ADD_CASE
	tc = tcase_create("planted");
	tcase_add_checked_fixture(tc, setup, spooltest_teardown);
	tcase_add_loop_test(tc, test_planted_later, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(spoolspare_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
