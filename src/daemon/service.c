/*
 * service.c - the two service-manager protocols, spoken directly:
 * the sd_notify datagram (READY=1, STATUS=, RELOADING=1, STOPPING=1,
 * WATCHDOG=1 to $NOTIFY_SOCKET, a path or an abstract socket) and
 * socket activation ($LISTEN_PID, $LISTEN_FDS, $LISTEN_FDNAMES).  Both
 * are documented by systemd as stable interfaces for exactly this
 * (sd_notify(3) "Standalone Implementations", sd_listen_fds(3)), so the
 * daemon links no libsystemd and none of the libraries it drags in.
 * Without a service manager every call is a no-op.
 */
#include "config.h"

#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "util.h"

#define SERVICE_LISTEN_FDS_START	3	/* sd_listen_fds(3) */
#define SERVICE_MSG_MAX			2048	/* one datagram */

struct service_watchdog {
	struct event	*timer;
};

/* Names from $LISTEN_FDNAMES, kept for the daemon's life. */
static char	*service_fdnames;

int
service_notify_addr(const char *env, struct sockaddr_un *sun,
    socklen_t *len)
{
	size_t	n;

	if (env == NULL || (env[0] != '/' && env[0] != '@'))
		return -1;
	n = strlen(env);
	if (n < 2 || n >= sizeof(sun->sun_path))
		return -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, env, n);
	if (env[0] == '@') {
		/* Abstract namespace: a leading NUL, no trailing one. */
		sun->sun_path[0] = '\0';
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
		    1);
	return 0;
}

/* Sends one datagram of "KEY=VALUE" lines to $NOTIFY_SOCKET. */
static void
service_notify(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
service_notify(const char *fmt, ...)
{
	struct sockaddr_un	sun;
	socklen_t		len;
	char			msg[SERVICE_MSG_MAX];
	va_list			ap;
	int			fd, n;

	if (service_notify_addr(getenv("NOTIFY_SOCKET"), &sun, &len) == -1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;	/* a status line cut short */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	/* The manager may be gone or busy: never wait, never die of it. */
	if (sendto(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT,
	    (struct sockaddr *)&sun, len) == -1)
		log_debug("service notify failed: %s", strerror(errno));
	close(fd);
}

void
service_ready(const char *status)
{
	service_notify("READY=1\nSTATUS=%s", status);
}

void
service_status(const char *status)
{
	service_notify("STATUS=%s", status);
}

void
service_reloading(void)
{
	struct timespec	ts;

	/* Type=notify-reload (systemd 253) wants the monotonic time of
	 * the reload with it; older managers ignore the field. */
	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		ts.tv_sec = ts.tv_nsec = 0;
	service_notify("RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
	    (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000);
}

void
service_stopping(void)
{
	service_notify("STOPPING=1");
}

/* A decimal number without sign or junk, or -1. */
static long long
service_number(const char *s)
{
	char		*end;
	long long	 v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return v;
}

long
service_parse_listen(const char *pid, const char *nfds, long mypid)
{
	long long	p = service_number(pid), n = service_number(nfds);

	if (p <= 0 || p != mypid || n <= 0 ||
	    n > INT32_MAX - SERVICE_LISTEN_FDS_START)
		return 0;
	return (long)n;
}

size_t
service_listen_fds(int *fds, const char **names, size_t max)
{
	const char	*fdnames = getenv("LISTEN_FDNAMES");
	char		*p;
	long		 n;
	size_t		 i;
	int		 fd;

	n = service_parse_listen(getenv("LISTEN_PID"), getenv("LISTEN_FDS"),
	    (long)getpid());
	free(service_fdnames);
	service_fdnames = fdnames != NULL ? xstrdup(fdnames) : NULL;
	/* As sd_listen_fds(1): the variables are for this process only,
	 * not for anything it might start. */
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	p = service_fdnames;
	for (i = 0; i < (size_t)n && i < max; i++) {
		fd = SERVICE_LISTEN_FDS_START + (int)i;
		if (fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
			log_warn("service inherited descriptor %d", fd);
			break;
		}
		fds[i] = fd;
		names[i] = p != NULL ? strsep(&p, ":") : NULL;
		if (names[i] == NULL || names[i][0] == '\0')
			names[i] = "unknown";
	}
	return i;
}

uint64_t
service_parse_watchdog(const char *usec, const char *pid, long mypid)
{
	long long	u = service_number(usec), p;

	if (u <= 0)
		return 0;
	/* WATCHDOG_PID, when set, names the process meant. */
	if (pid != NULL && ((p = service_number(pid)) <= 0 || p != mypid))
		return 0;
	return (uint64_t)u;
}

static void
service_watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	service_notify("WATCHDOG=1");
}

struct service_watchdog *
service_watchdog_start(struct event_base *base)
{
	struct service_watchdog	*w;
	struct timeval		 tv;
	uint64_t		 usec;

	usec = service_parse_watchdog(getenv("WATCHDOG_USEC"),
	    getenv("WATCHDOG_PID"), (long)getpid());
	if (usec == 0 || getenv("NOTIFY_SOCKET") == NULL)
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
}

void
service_watchdog_stop(struct service_watchdog *w)
{
	if (w == NULL)
		return;
	event_free(w->timer);
	free(w);
}
