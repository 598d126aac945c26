/*
 * startup.h - smartrelayd's process set-up, in the order main() calls
 * it: look up the user (as root), bind (main.c), drop privileges, grow
 * the descriptor table, check the credentials.  Detaching comes first
 * of all, before any thread exists.
 */
#ifndef STARTUP_H
#define STARTUP_H

struct conf;
struct passwd;

/* Detaches from the terminal (daemon(3)) with stdin, stdout and stderr
 * on /dev/null.  Returns 0 or -1. */
int		 startup_daemonize(void);

/* When started as root with conf->user set: looks the user up into
 * <pw> (static storage, getpwnam(3)), creates and chowns the spool and
 * the control socket's directory for it.  Otherwise <pw> is NULL.
 * Returns 0, or -1 after logging. */
int		 startup_lookup_user(const struct conf *, struct passwd **pw);

/* Becomes <pw> (NULL: stays as is) for good: groups, gid, uid, and
 * checks that root cannot be regained.  Returns 0, or -1 after
 * logging. */
int		 startup_drop_privileges(const struct passwd *pw);

/* Grows the descriptor table to what max_clients may need, within
 * RLIMIT_NOFILE (a lower limit is logged).  Call before any thread
 * exists. */
void		 startup_grow_fds(const struct conf *);

/* Logs what the first upstream still waits for (username, password
 * file, OAuth refresh token).  Returns -1 after logging when a file
 * exists but is unsafe or unreadable (the daemon refuses to start),
 * else 0. */
int		 startup_check_credentials(const struct conf *);

#endif /* STARTUP_H */
