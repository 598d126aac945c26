/*
 * bevtest.h - what the socket-free state machine tests (check_session,
 * check_relay) share: a scratch directory, a configuration written into
 * it, a test certificate, and running the loop until a condition holds
 * or a bounded time passes.
 */
#ifndef BEVTEST_H
#define BEVTEST_H

#include <stdbool.h>
#include <sys/types.h>

struct conf;
struct event_base;

/* A fresh mkdtemp() directory; caller frees it after bt_rmdir(). */
char		*bt_tmpdir(void);

/* Removes <dir> and everything under it. */
void		 bt_rmdir(const char *dir);

/* Writes <text> to <dir>/<name> with <mode>; returns the path (caller
 * frees). */
char		*bt_write(const char *dir, const char *name, const char *text,
		    mode_t mode);

/* Loads a configuration of hostname relay.test, spool <dir>/spool,
 * plus the lines <extra>. */
struct conf	*bt_conf(const char *dir, const char *extra);

/* Makes <dir>/cert.pem and <dir>/key.pem, self-signed for localhost,
 * with the openssl command.  Returns 0 or -1. */
int		 bt_cert(const char *dir);

/* Runs <base> until <done>(<arg>) holds, at most <secs> seconds.
 * Returns whether it holds. */
bool		 bt_run_until(struct event_base *base, bool (*done)(void *),
		    void *arg, int secs);

#endif /* BEVTEST_H */
