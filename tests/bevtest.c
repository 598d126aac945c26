/*
 * bevtest.c - helpers of the bufferevent_pair tests (bevtest.h).
 */
#include "config.h"

#include "bevtest.h"

#include <sys/stat.h>

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "util.h"

char *
bt_tmpdir(void)
{
	char	*dir = xstrdup("/tmp/smartrelay-bevtest-XXXXXX");

	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

static int
bt_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

void
bt_rmdir(const char *dir)
{
	nftw(dir, bt_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

char *
bt_write(const char *dir, const char *name, const char *text, mode_t mode)
{
	size_t	 n = strlen(dir) + strlen(name) + 2;
	char	*path = xmalloc(n);
	int	 fd;

	snprintf(path, n, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ck_assert_int_ne(fd, -1);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

struct conf *
bt_conf(const char *dir, const char *extra)
{
	char		 text[4096], err[512], *path;
	struct conf	*c;
	int		 n;

	n = snprintf(text, sizeof(text),
	    "hostname = \"relay.test\"\n"
	    "spool = \"%s/spool\"\n"
	    "user = \"\"\n"
	    "log = \"stderr\"\n"
	    "%s\n", dir, extra);
	ck_assert_int_lt(n, (int)sizeof(text));
	path = bt_write(dir, "smartrelay.conf", text, 0600);
	c = conf_load(path, err, sizeof(err));
	ck_assert_msg(c != NULL, "conf_load: %s", err);
	free(path);
	return c;
}

int
bt_cert(const char *dir)
{
	char	cmd[1024];

	snprintf(cmd, sizeof(cmd), "openssl req -x509 -newkey ec "
	    "-pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
	    "-subj /CN=localhost -addext subjectAltName=DNS:localhost "
	    "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
bt_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

bool
bt_run_until(struct event_base *base, bool (*done)(void *), void *arg,
    int secs)
{
	struct timeval	 tv = { secs, 0 };
	struct event	*timer;
	bool		 expired = false;

	timer = evtimer_new(base, bt_timeout_cb, &expired);
	ck_assert_ptr_nonnull(timer);
	evtimer_add(timer, &tv);
	/* Each turn blocks until something happens; the timer bounds the
	 * wait when nothing does. */
	while (!done(arg) && !expired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(timer);
	return done(arg);
}
