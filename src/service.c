/*
 * service.c - sd_notify(3), sd_listen_fds(3) and the watchdog, behind
 * calls that do nothing when built without libsystemd or when not run
 * by systemd (sd_notify is then a no-op by itself).
 */
#include "config.h"

#include "service.h"

#include <stdint.h>
#include <stdlib.h>

#include <event2/event.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "util.h"

struct service_watchdog {
	struct event	*timer;
};

void
service_ready(const char *status)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
#else
	(void)status;
#endif
}

void
service_status(const char *status)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notifyf(0, "STATUS=%s", status);
#else
	(void)status;
#endif
}

void
service_reloading(void)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "RELOADING=1");
#endif
}

void
service_stopping(void)
{
#ifdef HAVE_LIBSYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
}

size_t
service_listen_fds(int *fds, size_t max)
{
#ifdef HAVE_LIBSYSTEMD
	int	n, i;

	if ((n = sd_listen_fds(1)) <= 0)
		return 0;
	for (i = 0; i < n && (size_t)i < max; i++)
		fds[i] = SD_LISTEN_FDS_START + i;
	return (size_t)i;
#else
	(void)fds;
	(void)max;
	return 0;
#endif
}

#ifdef HAVE_LIBSYSTEMD
static void
service_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sd_notify(0, "WATCHDOG=1");
}
#endif

struct service_watchdog *
service_watchdog_start(struct event_base *base)
{
#ifdef HAVE_LIBSYSTEMD
	struct service_watchdog	*w;
	struct timeval		 tv;
	uint64_t		 usec;

	if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
		return NULL;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	w = xcalloc(1, sizeof(*w));
	w->timer = event_new(base, -1, EV_PERSIST, service_watchdog_cb, w);
	if (w->timer == NULL || event_add(w->timer, &tv) == -1)
		fatalx("service watchdog timer");
	log_info("service watchdog interval=%lldms",
	    (long long)(usec / 1000));
	return w;
#else
	(void)base;
	return NULL;
#endif
}

void
service_watchdog_stop(struct service_watchdog *w)
{
	if (w == NULL)
		return;
	event_free(w->timer);
	free(w);
}
