/*
 * service.h - what the daemon tells its service manager: readiness,
 * status lines, reloads, stops, watchdog keep-alives, and the sockets
 * systemd hands over with socket activation.
 *
 * Built without libsystemd, every call is a harmless no-op, so the rest
 * of the daemon never needs an #ifdef.
 */
#ifndef SERVICE_H
#define SERVICE_H

#include <stddef.h>

struct event_base;
struct service_watchdog;

/* READY=1 with a first STATUS= line. */
void	service_ready(const char *status);
/* STATUS=...: one line a human reads in "systemctl status". */
void	service_status(const char *status);
void	service_reloading(void);
void	service_stopping(void);

/* Sockets passed by systemd (LISTEN_FDS), consumed from the
 * environment.  Stores them in <fds> (up to <max>) and returns how many;
 * 0 without socket activation. */
size_t	service_listen_fds(int *fds, size_t max);

/* When the unit sets WatchdogSec=, sends WATCHDOG=1 at half that
 * interval from a timer on <base>; otherwise returns NULL and sets no
 * timer at all (no idle wake-ups). */
struct service_watchdog *service_watchdog_start(struct event_base *base);
void	service_watchdog_stop(struct service_watchdog *);

#endif /* SERVICE_H */
