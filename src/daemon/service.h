/*
 * service.h - what the daemon tells its service manager: readiness,
 * status lines, reloads, stops, watchdog keep-alives, and the sockets
 * systemd hands over with socket activation.
 *
 * Spoken directly (no libsystemd); without a service manager every
 * call is a harmless no-op, so the rest of the daemon needs no #ifdef.
 */
#ifndef SERVICE_H
#define SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

struct event_base;
struct service_watchdog;

/* READY=1 with a first STATUS= line. */
void	service_ready(const char *status);
/* STATUS=...: one line a human reads in "systemctl status". */
void	service_status(const char *status);
void	service_reloading(void);
void	service_stopping(void);

/* Sockets passed by systemd (LISTEN_FDS, meant for this pid), consumed
 * from the environment.  Stores them in <fds> and their names from
 * LISTEN_FDNAMES ("unknown" when unnamed; borrowed for the process's
 * life) in <names>, up to <max>, marks them close-on-exec and returns
 * how many; 0 without socket activation. */
size_t	service_listen_fds(int *fds, const char **names, size_t max);

/* Pure parts, for unit tests. */

/* $NOTIFY_SOCKET ("/path" or "@abstract") as an address; 0, or -1 when
 * unset or malformed. */
int	service_notify_addr(const char *env, struct sockaddr_un *,
	    socklen_t *len);
/* How many sockets $LISTEN_PID and $LISTEN_FDS pass to process
 * <mypid>: 0 unless both are well-formed and the pid is ours. */
long	service_parse_listen(const char *pid, const char *nfds, long mypid);
/* The watchdog interval in microseconds from $WATCHDOG_USEC and
 * $WATCHDOG_PID (which, when set, must be <mypid>), or 0: none. */
uint64_t service_parse_watchdog(const char *usec, const char *pid,
	    long mypid);

/* When the unit sets WatchdogSec=, sends WATCHDOG=1 at half that
 * interval from a timer on <base>; otherwise returns NULL and sets no
 * timer at all (no idle wake-ups). */
struct service_watchdog *service_watchdog_start(struct event_base *base);
void	service_watchdog_stop(struct service_watchdog *);

#endif /* SERVICE_H */
