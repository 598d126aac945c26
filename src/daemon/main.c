/*
 * main.c - smartrelayd: read the configuration (-n: only check it),
 * detach unless -d, set up the process (startup.h: the user, privilege
 * drop, descriptors), listen (or take sockets from systemd), open the
 * spool, create the modules and connect them with callbacks (a commit
 * from a session or the maildrop pickup goes to queue_add(), a network
 * change to queue_network_changed(), queue changes to systemd's
 * STATUS=), run the event loop, and tear down in reverse order.
 *
 * Signals are events on the loop (never async handlers): SIGTERM and
 * SIGINT drain gracefully (at most MAIN_STOP_GRACE_SECS for sessions),
 * SIGHUP reloads the configuration (refused whole when anything in it
 * does not load), SIGUSR1 flushes the queue.  A replaced configuration
 * or TLS context lives on while a session or connection holds a
 * reference to it.  docs/architecture.md shows how the modules fit.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "aliases.h"
#include "authcheck.h"
#include "conf.h"
#include "control.h"
#include "listener.h"
#include "log.h"
#include "pickup.h"
#include "metrics.h"
#include "netwatch.h"
#include "queue.h"
#include "service.h"
#include "session.h"
#include "spool.h"
#include "startup.h"
#include "tls.h"
#include "users.h"
#include "util.h"
#include "worker.h"

#define MAIN_STOP_GRACE_SECS	10	/* bound on a graceful stop */
#define MAIN_LISTEN_FDS_MAX	16
/* Worker threads (worker.h).  The spool's fsyncs issued at the same
 * moment by several threads share the file system's journal commits
 * (group commit), which one thread syncing file after file cannot do.
 * 16 measured best on two CPUs (docs/performance.md): 4 capped a
 * journaled ext4 at 2,728 messages/s where 16 reached 4,305, and 32
 * were no better.  Idle threads cost a few kB each and never wake. */
#ifndef MAIN_NWORKERS
#define MAIN_NWORKERS		16
#endif

struct main_state {
	struct event_base	*base;
	struct conf		*conf;
	struct spool		*spool;
	struct worker		*worker;	/* fsyncs, crypt_r, pickup */
	struct listener		*listener;
	struct evdns_base	*dns;
	struct tls_client	*tls;
	struct tls_server	*tls_server;	/* LAN side; NULL if unset */
	struct users		*users;		/* inbound AUTH, or NULL */
	struct authcheck	*authcheck;	/* once there are users */
	struct queue		*queue;
	struct pickup		*pickup;
	struct control		*control;
	struct metrics		*metrics;
	struct netwatch		*netwatch;	/* NULL without netlink */
	bool			 queue_drained;
	bool			 sessions_drained;
	struct session_ctx	 sessions;
	struct event		*ev_sig[5];
	struct event		*ev_stop_timer;
	struct event		*ev_status;	/* deferred STATUS= update */
	struct service_watchdog	*watchdog;
	const char		*conf_path;
	bool			 socket_activated;
};

static void
main_usage(void)
{
	/* As conf_default_path() picks: the build's path when it exists,
	 * else the system one. */
	bool	two = strcmp(CONF_DEFAULT_PATH, CONF_SYSTEM_PATH) != 0;

	fprintf(stderr, "usage: smartrelayd [-dn] [-f file]\n"
	    "  -f file  configuration file (default %s%s%s)\n"
	    "  -n       check the configuration and exit\n"
	    "  -d       stay in the foreground, log to stderr\n",
	    CONF_DEFAULT_PATH, two ? "\n           if it exists, else " : "",
	    two ? CONF_SYSTEM_PATH : "");
	exit(EX_USAGE);
}

/* Stops the loop once both the sessions and the relays are done. */
static void
main_sessions_drained_cb(void *arg)
{
	struct main_state	*m = arg;

	m->sessions_drained = true;
	if (m->queue_drained)
		event_base_loopexit(m->base, NULL);
}

static void
main_queue_drained_cb(void *arg)
{
	struct main_state	*m = arg;

	m->queue_drained = true;
	if (m->sessions_drained)
		event_base_loopexit(m->base, NULL);
}

/* STATUS= for "systemctl status": "queue=3 oldest=5m upstream=ok". */
static void
main_status_cb(evutil_socket_t fd, short what, void *arg)
{
	struct main_state	*m = arg;
	struct queue_stats	 st;
	char			 line[256], age[32];

	(void)fd;
	(void)what;
	queue_get_stats(m->queue, &st);
	str_fmt_duration(st.oldest != 0 ? (uint64_t)(time_wall() -
	    st.oldest) : 0, age, sizeof(age));
	snprintf(line, sizeof(line), "queue=%lu oldest=%s upstream=%s "
	    "clients=%u", st.depth, age, health_state_name(st.upstream),
	    m->sessions.nsessions);
	service_status(line);
}

/* Coalesces status updates to at most one a second, and none at all
 * while nothing changes: an idle daemon sets no timer. */
static void
main_status_changed(void *arg)
{
	struct main_state	*m = arg;
	struct timeval		 tv = { 1, 0 };

	if (m->ev_status != NULL && !evtimer_pending(m->ev_status, NULL))
		evtimer_add(m->ev_status, &tv);
}

/* The session's hook: a message was committed. */
static void
main_committed_cb(const char *id, void *arg)
{
	struct main_state	*m = arg;

	if (!m->sessions.stopping && m->queue != NULL)
		queue_add(m->queue, id);
}

/* The pickup's hook: a message came in through the maildrop.  It was
 * accepted as much as one from an SMTP client, and counts the same. */
/* The files the maildrop held at start are in the queue: ready. */
static void
main_ready_cb(void *arg)
{
	struct main_state	*m = arg;
	char			 buf[128];
	long			 nqueued = (long)queue_size(m->queue);

	log_info("smartrelayd ready version=%s queue=%ld spool=%s",
	    PACKAGE_VERSION, nqueued, m->conf->spool);
	snprintf(buf, sizeof(buf), "queue=%ld upstream=%s", nqueued,
	    health_state_name(queue_upstream_state(m->queue)));
	service_ready(buf);
}

static void
main_picked_up_cb(const char *id, void *arg)
{
	struct main_state	*m = arg;

	m->sessions.accepted++;
	main_committed_cb(id, arg);
}

/* A link, address or default route came up: probe a lost upstream now
 * rather than at the end of its backoff. */
static void
main_network_cb(void *arg)
{
	struct main_state	*m = arg;

	if (!m->sessions.stopping)
		queue_network_changed(m->queue);
}

static void
main_stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct main_state	*m = arg;

	(void)fd;
	(void)what;
	log_warnx("smartrelayd stop: sessions still open after %ds, closing",
	    MAIN_STOP_GRACE_SECS);
	event_base_loopexit(m->base, NULL);
}

/* Says where mail to root and other local names goes (route.h), at
 * start and after each reload, or warns that it goes nowhere useful. */
static void
main_log_local(const struct conf *conf)
{
	char	aliases[64] = "";

	if (conf->aliases != NULL)
		snprintf(aliases, sizeof(aliases), " aliases=%zu",
		    aliases_count(conf->aliases));
	if (conf->admin_from == CONF_ADMIN_NONE) {
		log_warnx("smartrelayd local mail domain=%s admin=none%s: "
		    "mail to root and other local names is sent to "
		    "name@%s, which is likely to bounce; set admin_address "
		    "(or an upstream username that is an address)",
		    conf->domain, aliases, conf->domain);
		return;
	}
	log_info("smartrelayd local mail domain=%s admin=<%s> from=%s%s%s%s",
	    conf->domain, conf->admin_address,
	    conf->admin_from == CONF_ADMIN_SET ? "admin_address" :
	    "upstream-username", aliases, conf->aliases != NULL ? " file=" :
	    "", conf->aliases_path);
}

/* True when two lists of strings are the same. */
static bool
main_same_list(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t	i;

	if (na != nb)
		return false;
	for (i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* True when two configurations listen on the same addresses, in the
 * same ways (implicit TLS, plaintext AUTH). */
static bool
main_same_listen(const struct conf *a, const struct conf *b)
{
	return main_same_list(a->listen, a->nlisten, b->listen, b->nlisten) &&
	    main_same_list(a->listen_tls, a->nlisten_tls, b->listen_tls,
	    b->nlisten_tls) &&
	    main_same_list(a->client_auth.plaintext,
	    a->client_auth.nplaintext, b->client_auth.plaintext,
	    b->client_auth.nplaintext);
}

/* The LAN side's TLS context and AUTH accounts, when configured (each
 * result stays NULL otherwise).  Returns 0, or -1 after logging with
 * nothing created. */
static int
main_lan_new(const struct conf *conf, struct tls_server **ts,
    struct users **users)
{
	const struct conf_server_tls	*t = &conf->server_tls;
	char				 err[512];

	*ts = NULL;
	*users = NULL;
	if (t->cert_file[0] != '\0' && (*ts = tls_server_new(t->cert_file,
	    t->key_file, t->min_version)) == NULL)
		return -1;
	if (conf->client_auth.users_file[0] != '\0') {
		if ((*users = users_load(conf->client_auth.users_file, err,
		    sizeof(err))) == NULL) {
			log_errx("smartrelayd auth: %s", err);
			tls_server_free(*ts);
			*ts = NULL;
			return -1;
		}
		log_info("smartrelayd auth accounts=%zu file=%s",
		    users_count(*users), conf->client_auth.users_file);
	}
	return 0;
}

/* Password checks run on their own thread once accounts exist; without
 * it (no thread) they run on the loop. */
static void
main_authcheck(struct main_state *m)
{
	if (m->users != NULL && m->authcheck == NULL)
		m->authcheck = authcheck_new(m->worker);
	m->sessions.authcheck = m->authcheck;
}

/*
 * SIGHUP: load the file again and switch to it as one step.  A new
 * configuration that does not load, or whose listeners or TLS context
 * cannot be set up, is refused and the running one stays.  The spool and
 * the user cannot change while running (they need a restart).
 */
static void
main_reload(struct main_state *m)
{
	struct conf		*nc;
	struct listener		*nl = NULL;
	struct tls_client	*nt, *ot;
	struct tls_server	*nts;
	struct users		*nu;
	enum log_level		 level;
	char			 errbuf[4096], *nl_at;
	const struct conf	*old = m->conf;

	service_reloading();
	if ((nc = conf_load(m->conf_path, errbuf, sizeof(errbuf))) == NULL) {
		if ((nl_at = strchr(errbuf, '\n')) != NULL)
			*nl_at = '\0';
		log_errx("smartrelayd reload refused, keeping the running "
		    "configuration: %s", errbuf);
		goto done;
	}
	if (strcmp(nc->spool, old->spool) != 0 ||
	    strcmp(nc->user, old->user) != 0)
		log_warnx("smartrelayd reload: spool and user changes take "
		    "effect at the next restart");
	free(nc->spool);
	nc->spool = xstrdup(old->spool);
	if ((nt = tls_client_new(nc->upstream[0].ca_file)) == NULL) {
		log_errx("smartrelayd reload refused: TLS set-up failed");
		conf_free(nc);
		goto done;
	}
	if (main_lan_new(nc, &nts, &nu) == -1) {
		log_errx("smartrelayd reload refused: LAN TLS or AUTH set-up "
		    "failed");
		tls_client_free(nt);
		conf_free(nc);
		goto done;
	}
	if (!m->socket_activated && !main_same_listen(nc, old)) {
		/* Bind the new set first; the old one goes only after. */
		m->sessions.conf = nc;
		nl = listener_new(&m->sessions);
		m->sessions.conf = old;
		if (nl == NULL) {
			log_errx("smartrelayd reload refused: cannot listen "
			    "on the new addresses (ports below 1024 need "
			    "root, CAP_NET_BIND_SERVICE or socket activation)");
			tls_server_free(nts);
			users_free(nu);
			tls_client_free(nt);
			conf_free(nc);
			goto done;
		}
		listener_free(m->listener);
		m->listener = nl;
	}
	ot = m->tls;
	m->conf = nc;
	m->tls = nt;
	m->sessions.conf = nc;
	/* Sessions keep no pointer to these, and TLS connections hold
	 * their own reference to the old context. */
	tls_server_free(m->tls_server);
	users_free(m->users);
	m->sessions.tls = m->tls_server = nts;
	m->sessions.users = m->users = nu;
	main_authcheck(m);
	queue_set_conf(m->queue, nc, nt);
	if (m->pickup != NULL)
		pickup_set_conf(m->pickup, nc);
	/* Sessions, relays and token sources that still use the old ones
	 * hold their own references: the last of them frees them. */
	conf_free(old);
	tls_client_free(ot);
	if (log_level_parse(nc->log_level, &level) == 0)
		log_set_level(level);
	log_notice("smartrelayd reloaded %s", m->conf_path);
	main_log_local(nc);
done:
	/* sd_notify(3): a reload ends with READY=1, whatever its outcome. */
	service_ready("reload done");
	main_status_changed(m);
	main_status_cb(-1, 0, m);
}

static void
main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct main_state	*m = arg;
	struct timeval		 tv = { MAIN_STOP_GRACE_SECS, 0 };

	(void)what;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		if (m->sessions.stopping)
			return;
		log_info("smartrelayd stopping signal=%s sessions=%u",
		    sig == SIGTERM ? "TERM" : "INT", m->sessions.nsessions);
		service_stopping();
		listener_free(m->listener);
		m->listener = NULL;
		evtimer_add(m->ev_stop_timer, &tv);
		queue_stop(m->queue, main_queue_drained_cb, m);
		session_stop_all(&m->sessions);
		break;
	case SIGHUP:
		if (!m->sessions.stopping)
			main_reload(m);
		break;
	case SIGUSR1:
		queue_flush(m->queue);
		break;
	default:
		break;
	}
}

static int
main_setup_events(struct main_state *m)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	size_t			 i;

	m->ev_stop_timer = evtimer_new(m->base, main_stop_timer_cb, m);
	m->ev_status = evtimer_new(m->base, main_status_cb, m);
	if (m->ev_stop_timer == NULL || m->ev_status == NULL)
		return -1;
	for (i = 0; i < nitems(sigs); i++) {
		m->ev_sig[i] = evsignal_new(m->base, sigs[i], main_signal_cb,
		    m);
		if (m->ev_sig[i] == NULL || event_add(m->ev_sig[i], NULL) == -1)
			return -1;
	}
	return 0;
}

static void
main_teardown(struct main_state *m)
{
	size_t	i;

	listener_free(m->listener);
	pickup_free(m->pickup);
	metrics_free(m->metrics);
	control_free(m->control);
	netwatch_free(m->netwatch);
	service_watchdog_stop(m->watchdog);
	/* Checks in flight are dropped: their sessions go soon. */
	authcheck_free(m->authcheck);
	/* Spool operations in flight finish and report to the sessions and
	 * the queue, which must both still exist then. */
	worker_free(m->worker);
	spool_close(m->spool);
	queue_free(m->queue);
	session_free_all(&m->sessions);
	tls_server_free(m->tls_server);
	users_free(m->users);
	if (m->dns != NULL)
		evdns_base_free(m->dns, 0);
	tls_client_free(m->tls);
	for (i = 0; i < nitems(m->ev_sig); i++)
		if (m->ev_sig[i] != NULL)
			event_free(m->ev_sig[i]);
	if (m->ev_stop_timer != NULL)
		event_free(m->ev_stop_timer);
	if (m->ev_status != NULL)
		event_free(m->ev_status);
	if (m->base != NULL)
		event_base_free(m->base);
	conf_free(m->conf);
}

/* Listens where systemd says (socket activation) or where the
 * configuration says.  Returns 0 or -1. */
static int
main_listen(struct main_state *m)
{
	const char	*names[MAIN_LISTEN_FDS_MAX];
	int		 fds[MAIN_LISTEN_FDS_MAX];
	size_t		 n, i;

	n = service_listen_fds(fds, names, nitems(fds));
	if (n > 0) {
		m->socket_activated = true;
		log_info("smartrelayd using %zu socket(s) from systemd; the "
		    "listen setting is not used", n);
		for (i = 0; i < n; i++)
			log_debug("smartrelayd socket fd=%d name=%s", fds[i],
			    names[i]);
		/* Inherited sockets are all plain SMTP (STARTTLS offered
		 * when tls is set). */
		if (m->conf->nlisten_tls > 0 ||
		    m->conf->client_auth.nplaintext > 0)
			log_warnx("smartrelayd listen_tls and auth.plaintext "
			    "do not apply to sockets from systemd: start the "
			    "service without smartrelay.socket to use them");
		m->listener = listener_new_fds(&m->sessions, fds, n);
	} else
		m->listener = listener_new(&m->sessions);
	return m->listener != NULL ? 0 : -1;
}

int
main(int argc, char *argv[])
{
	struct main_state	 m;
	struct passwd		*pw;
	const char		*path = conf_default_path();
	char			*abspath;
	char			 errbuf[4096];
	enum log_level		 level;
	bool			 check_only = false, foreground = false;
	long			 nqueued;
	int			 ch, rc = EX_OK;

	while ((ch = getopt(argc, argv, "df:nh")) != -1) {
		switch (ch) {
		case 'd':
			foreground = true;
			break;
		case 'f':
			path = optarg;
			break;
		case 'n':
			check_only = true;
			break;
		default:
			main_usage();
		}
	}
	if (optind != argc)
		main_usage();

	memset(&m, 0, sizeof(m));
	/* Absolute: a detached daemon runs in "/", and reloads read it. */
	abspath = realpath(path, NULL);
	m.conf_path = abspath != NULL ? abspath : path;
	if ((m.conf = conf_load(path, errbuf, sizeof(errbuf))) == NULL) {
		fprintf(stderr, "%s", errbuf);
		if (errbuf[0] != '\0' && errbuf[strlen(errbuf) - 1] != '\n')
			fputc('\n', stderr);
		free(abspath);
		return EX_CONFIG;
	}
	if (check_only) {
		fprintf(stderr, "%s: configuration OK\n", path);
		conf_free(m.conf);
		free(abspath);
		return EX_OK;
	}
	if (log_level_parse(m.conf->log_level, &level) == -1)
		level = LOG_LEVEL_INFO;
	/* Once detached, stderr leads nowhere: use syslog then. */
	log_init(m.conf->log_syslog || !foreground, level, "smartrelayd");
	signal(SIGPIPE, SIG_IGN);
	/* Before any thread exists: fork keeps only the calling thread. */
	if (!foreground && startup_daemonize() == -1)
		fatal("smartrelayd daemon");

	if (startup_lookup_user(m.conf, &pw) == -1) {
		rc = EX_NOUSER;
		goto out;
	}
	if ((m.base = event_base_new()) == NULL)
		fatalx("event_base_new");
	session_ctx_init(&m.sessions);
	m.sessions.base = m.base;
	m.sessions.conf = m.conf;
	m.sessions.drained = main_sessions_drained_cb;
	m.sessions.drained_arg = &m;
	m.sessions.committed = main_committed_cb;
	m.sessions.committed_arg = &m;
	if (main_listen(&m) == -1) {
		rc = EX_OSERR;
		goto out;
	}
	if (startup_drop_privileges(pw) == -1) {
		rc = EX_OSERR;
		goto out;
	}
	startup_grow_fds(m.conf);
	if ((m.worker = worker_new(m.base, MAIN_NWORKERS)) == NULL) {
		rc = EX_OSERR;
		goto out;
	}
	if ((m.spool = spool_open(m.conf->spool, m.worker)) == NULL ||
	    pickup_prepare(m.conf->spool) == -1) {
		rc = EX_CANTCREAT;
		goto out;
	}
	m.sessions.spool = m.spool;
	if (main_setup_events(&m) == -1) {
		log_errx("smartrelayd cannot set up events");
		rc = EX_OSERR;
		goto out;
	}
	/* Resolution never blocks the loop, and an idle resolver keeps
	 * no timers running. */
	m.dns = evdns_base_new(m.base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (m.dns == NULL)
		log_warnx("smartrelayd no DNS resolver configured; only "
		    "numeric upstream addresses will work");
	if ((m.tls = tls_client_new(m.conf->upstream[0].ca_file)) == NULL) {
		rc = EX_CONFIG;
		goto out;
	}
	if (startup_check_credentials(m.conf) == -1) {
		rc = EX_CONFIG;
		goto out;
	}
	/* As the user the daemon runs as, so that a reload can read the
	 * key and the accounts again. */
	if (main_lan_new(m.conf, &m.tls_server, &m.users) == -1) {
		rc = EX_CONFIG;
		goto out;
	}
	m.sessions.tls = m.tls_server;
	m.sessions.users = m.users;
	main_authcheck(&m);
	m.queue = queue_new(m.base, m.dns, m.conf, m.spool, m.tls);
	if ((nqueued = queue_load(m.queue)) == -1) {
		rc = EX_IOERR;
		goto out;
	}
	queue_set_observer(m.queue, main_status_changed, &m);
	m.netwatch = netwatch_new(m.base, main_network_cb, &m);
	/* After queue_load(): picked-up messages go to queue_add(). */
	if ((m.pickup = pickup_new(m.base, m.conf, m.spool, m.worker,
	    main_picked_up_cb, main_ready_cb, &m)) == NULL) {
		rc = EX_CANTCREAT;
		goto out;
	}
	/* After the privilege drop: the socket belongs to the daemon's
	 * user, and only it, its group and root may talk to it. */
	if ((m.control = control_new(m.base, m.conf, m.queue,
	    &m.sessions)) == NULL) {
		rc = EX_OSERR;
		goto out;
	}
	if (m.conf->metrics_listen[0] != '\0' && (m.metrics =
	    metrics_new(m.base, m.conf->metrics_listen, m.queue,
	    &m.sessions)) == NULL) {
		rc = EX_OSERR;
		goto out;
	}
	m.watchdog = service_watchdog_start(m.base);
	main_log_local(m.conf);
	/* Ready once the maildrop's files are in: main_ready_cb(). */
	event_base_dispatch(m.base);
	log_info("smartrelayd stopped accepted=%lu", m.sessions.accepted);
out:
	main_teardown(&m);
	free(abspath);
	return rc;
}
