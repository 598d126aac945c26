/*
 * smtpload.c - a light SMTP load generator for the accept-side
 * benchmarks (bench/accept.py, bench/footprint.py).
 *
 * One thread, one libevent loop, plain SMTP on loopback, so that the
 * client costs far less CPU than the daemon it measures (a threaded
 * Python client spent more CPU than the daemon on a two-CPU machine).
 *
 * Kinds of connections, all optional and run together:
 *   workers (-c N)	each loops: connect, 220, EHLO, then transactions
 *			(MAIL, RCPT, DATA pipelined as RFC 2920 allows; the
 *			body and the dot after the 354), -m per connection
 *			(0: unlimited), then QUIT and a new connection.
 *			The latency of a transaction is MAIL sent -> final
 *			250 received.
 *   big (-b SIZE)	one client sending SIZE-octet messages in a loop,
 *			streamed in 64 KiB pieces under write backpressure.
 *   probes (-g HZ)	HZ times a second a new connection: connect -> 220
 *			is the greeting latency, then QUIT.
 *   idle (-I N)	N connections opened at once (at most -r a second
 *			if given), greeted, then left idle; when all are
 *			greeted a line {"greeted": N, ...} is printed and
 *			flushed, so a caller can measure the daemon then.
 * The run lasts -t seconds; then workers finish the transaction they
 * are in (the big client sends at least one message), say QUIT, and
 * the summary is printed as one JSON line on stdout.  Every final 250
 * counts as accepted, so the caller can check that the spool holds at
 * least that many messages.
 *
 * build: cc -O2 -o smtpload bench/smtpload.c $(pkg-config --cflags
 *        --libs libevent)
 * usage: smtpload -p PORT [-c N] [-m PER_CONN] [-z SIZE] [-t SECONDS]
 *                 [-b BIGSIZE] [-g HZ] [-I N [-r RATE]]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define LOAD_CHUNK	(64 * 1024)	/* big-message piece */

enum load_kind { LOAD_WORKER, LOAD_BIG, LOAD_PROBE, LOAD_IDLE };

enum load_state {
	LOAD_GREETING,	/* waiting for 220 */
	LOAD_EHLO,	/* waiting for 250 to EHLO */
	LOAD_TXN,	/* waiting for MAIL, RCPT, DATA replies */
	LOAD_BODY,	/* big: streaming the content */
	LOAD_DOT,	/* waiting for the final reply */
	LOAD_QUIT,	/* waiting for 221 */
	LOAD_IDLING	/* idle connection, greeted */
};

struct load_conn {
	LIST_ENTRY(load_conn)	 entry;		/* in load_all */
	struct bufferevent	*bev;
	enum load_kind		 kind;
	enum load_state		 state;
	double			 t_connect;
	double			 t_txn;
	unsigned		 replies;	/* to MAIL, RCPT, DATA */
	unsigned long		 in_conn;	/* messages so far */
	size_t			 sent;		/* big: content octets out */
};

/* A growing array of latencies, in seconds. */
struct load_lat {
	double	*v;
	size_t	 n;
	size_t	 cap;
};

static LIST_HEAD(, load_conn)	 load_all = LIST_HEAD_INITIALIZER(load_all);
static struct event_base	*load_base;
static struct sockaddr_in	 load_sin;
static char			*load_body;	/* content + ".\r\n" */
static size_t			 load_body_len;
static char			*load_chunk;	/* one big-message piece */
static size_t			 load_big;	/* big message size, 0: none */
static unsigned long		 load_per_conn;
static bool			 load_stopping;
static double			 load_t0;
static unsigned			 load_live;	/* workers + big still on */
static unsigned			 load_idle_want, load_idle_greeted;
static unsigned			 load_idle_opened;
static unsigned long		 load_accepted, load_refused, load_errors;
static unsigned long		 load_big_done, load_conns;
static unsigned long long	 load_octets;
static struct load_lat		 load_txn_lat, load_greet_lat, load_probe_lat;
static struct load_lat		 load_idle_lat, load_big_lat;

static const char	load_group[] = "MAIL FROM:<bench@example.org>\r\n"
    "RCPT TO:<sink@example.org>\r\nDATA\r\n";

static double
load_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
load_lat_add(struct load_lat *l, double v)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1024;
		if ((l->v = realloc(l->v, l->cap * sizeof(*l->v))) == NULL)
			abort();
	}
	l->v[l->n++] = v;
}

static int
load_cmp(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Prints "name": {"n": .., "p50_ms": .., "p99_ms": .., "max_ms": ..}. */
static void
load_lat_print(const char *name, struct load_lat *l, bool comma)
{
	double	p50 = 0, p99 = 0, max = 0;

	if (l->n > 0) {
		qsort(l->v, l->n, sizeof(*l->v), load_cmp);
		p50 = l->v[l->n / 2];
		p99 = l->v[l->n * 99 / 100 < l->n ? l->n * 99 / 100 :
		    l->n - 1];
		max = l->v[l->n - 1];
	}
	printf("\"%s\": {\"n\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
	    "\"max_ms\": %.3f}%s", name, l->n, p50 * 1e3, p99 * 1e3,
	    max * 1e3, comma ? ", " : "");
}

static void	load_open(enum load_kind);
static void	load_read_cb(struct bufferevent *, void *);
static void	load_write_cb(struct bufferevent *, void *);

static void
load_send(struct load_conn *c, const char *s)
{
	bufferevent_write(c->bev, s, strlen(s));
}

/* A worker or the big client is done for good. */
static void
load_retire(void)
{
	if (--load_live == 0 && load_stopping)
		event_base_loopexit(load_base, NULL);
}

static void
load_close(struct load_conn *c, bool reopen)
{
	enum load_kind	kind = c->kind;

	LIST_REMOVE(c, entry);
	bufferevent_free(c->bev);
	free(c);
	if (kind == LOAD_PROBE || kind == LOAD_IDLE)
		return;
	if (reopen && !load_stopping)
		load_open(kind);
	else
		load_retire();
}

static void
load_txn_start(struct load_conn *c)
{
	c->t_txn = load_now();
	c->replies = 0;
	c->state = LOAD_TXN;
	load_send(c, load_group);
}

/* The final reply to a message arrived. */
static void
load_dot_reply(struct load_conn *c, int code)
{
	double	lat = load_now() - c->t_txn;

	if (code == 250) {
		if (c->kind == LOAD_BIG) {
			load_big_done++;
			load_lat_add(&load_big_lat, lat);
		} else {
			load_accepted++;
			load_octets += load_body_len - 3;
			load_lat_add(&load_txn_lat, lat);
		}
	} else
		load_refused++;
	c->in_conn++;
	if (load_stopping || (load_per_conn > 0 &&
	    c->in_conn >= load_per_conn && c->kind == LOAD_WORKER)) {
		c->state = LOAD_QUIT;
		load_send(c, "QUIT\r\n");
	} else
		load_txn_start(c);
}

/* The 354 arrived: the content goes out. */
static void
load_body_start(struct load_conn *c)
{
	if (c->kind == LOAD_BIG) {
		c->state = LOAD_BODY;
		c->sent = 0;
		bufferevent_setwatermark(c->bev, EV_WRITE, LOAD_CHUNK, 0);
		load_write_cb(c->bev, c);
		return;
	}
	c->state = LOAD_DOT;
	evbuffer_add_reference(bufferevent_get_output(c->bev), load_body,
	    load_body_len, NULL, NULL);
}

/* Handles one complete reply with <code>; returns -1 if <c> is gone. */
static int
load_reply(struct load_conn *c, int code)
{
	switch (c->state) {
	case LOAD_GREETING:
		load_lat_add(c->kind == LOAD_PROBE ? &load_probe_lat :
		    c->kind == LOAD_IDLE ? &load_idle_lat : &load_greet_lat,
		    load_now() - c->t_connect);
		if (code != 220) {
			load_errors++;
			load_close(c, false);
			return -1;
		}
		if (c->kind == LOAD_IDLE) {
			c->state = LOAD_IDLING;
			if (++load_idle_greeted == load_idle_want) {
				printf("{\"greeted\": %u, \"seconds\": %.3f}\n",
				    load_idle_greeted, load_now() - load_t0);
				fflush(stdout);
			}
			return 0;
		}
		c->state = c->kind == LOAD_PROBE ? LOAD_QUIT : LOAD_EHLO;
		load_send(c, c->kind == LOAD_PROBE ? "QUIT\r\n" :
		    "EHLO load.test\r\n");
		return 0;
	case LOAD_EHLO:
		/* The big client sends at least one message. */
		if (code != 250 || (load_stopping && c->kind != LOAD_BIG)) {
			load_errors += code != 250;
			c->state = LOAD_QUIT;
			load_send(c, "QUIT\r\n");
			return 0;
		}
		load_txn_start(c);
		return 0;
	case LOAD_TXN:
		if (++c->replies < 3)
			return 0;
		if (code == 354)
			load_body_start(c);
		else {
			load_refused++;
			c->state = LOAD_QUIT;
			load_send(c, "QUIT\r\n");
		}
		return 0;
	case LOAD_BODY:
	case LOAD_DOT:
		load_dot_reply(c, code);
		return 0;
	case LOAD_QUIT:
		load_close(c, true);
		return -1;
	case LOAD_IDLING:
		load_close(c, false);	/* e.g. a 421 timeout */
		return -1;
	}
	return 0;
}

static void
load_read_cb(struct bufferevent *bev, void *arg)
{
	struct load_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	char			*line;
	size_t			 len;
	int			 code;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		if (len < 3 || (len > 3 && line[3] == '-')) {
			free(line);
			continue;
		}
		code = atoi(line);
		free(line);
		if (load_reply(c, code) == -1)
			return;
	}
}

/* Big client: tops up the output with another piece of content. */
static void
load_write_cb(struct bufferevent *bev, void *arg)
{
	struct load_conn	*c = arg;
	size_t			 n;

	if (c->kind != LOAD_BIG || c->state != LOAD_BODY)
		return;
	while (c->sent < load_big &&
	    evbuffer_get_length(bufferevent_get_output(bev)) < LOAD_CHUNK) {
		n = load_big - c->sent < LOAD_CHUNK ? load_big - c->sent :
		    LOAD_CHUNK;
		evbuffer_add_reference(bufferevent_get_output(bev),
		    load_chunk, n, NULL, NULL);
		c->sent += n;
	}
	if (c->sent >= load_big) {
		evbuffer_add(bufferevent_get_output(bev), ".\r\n", 3);
		c->state = LOAD_DOT;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	}
}

static void
load_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct load_conn	*c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (c->state != LOAD_QUIT)
		load_errors++;
	load_close(c, c->state != LOAD_IDLING);
}

static void
load_open(enum load_kind kind)
{
	struct load_conn	*c;
	int			 one = 1;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	c->kind = kind;
	c->state = LOAD_GREETING;
	LIST_INSERT_HEAD(&load_all, c, entry);
	c->bev = bufferevent_socket_new(load_base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, load_read_cb, load_write_cb, load_event_cb,
	    c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->t_connect = load_now();
	load_conns++;
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&load_sin,
	    sizeof(load_sin)) == -1) {
		load_errors++;
		LIST_REMOVE(c, entry);
		bufferevent_free(c->bev);
		free(c);
		if (kind == LOAD_WORKER || kind == LOAD_BIG)
			load_retire();
		return;
	}
	setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one,
	    sizeof(one));
}

static void
load_probe_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!load_stopping)
		load_open(LOAD_PROBE);
}

/* Opens idle connections, at most <burst> per tick. */
static void
load_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	unsigned	*burst = arg;
	unsigned	 i;

	(void)fd;
	(void)what;
	for (i = 0; i < *burst && load_idle_opened < load_idle_want; i++) {
		load_idle_opened++;
		load_open(LOAD_IDLE);
	}
}

static void
load_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	grace = { 60, 0 };

	(void)fd;
	(void)what;
	(void)arg;
	load_stopping = true;
	if (load_idle_want > 0 && load_idle_greeted < load_idle_want) {
		/* Not all greeted: say so, the caller waits for the line. */
		printf("{\"greeted\": %u, \"seconds\": %.3f}\n",
		    load_idle_greeted, load_now() - load_t0);
		fflush(stdout);
	}
	if (load_live == 0)
		event_base_loopexit(load_base, NULL);
	else
		event_base_loopexit(load_base, &grace);
}

static void
load_prepare(size_t size)
{
	static const char	head[] = "Subject: smtpload\r\n\r\n";
	size_t			i;

	/* Lines of 74 'x' and CRLF; never a leading dot. */
	load_body_len = sizeof(head) - 1 + (size / 76 + 1) * 76 + 3;
	if ((load_body = malloc(load_body_len)) == NULL ||
	    (load_chunk = malloc(LOAD_CHUNK)) == NULL)
		abort();
	memcpy(load_body, head, sizeof(head) - 1);
	for (i = sizeof(head) - 1; i < sizeof(head) - 1 + size; i += 76) {
		memset(load_body + i, 'x', 74);
		memcpy(load_body + i + 74, "\r\n", 2);
	}
	memcpy(load_body + i, ".\r\n", 3);
	load_body_len = i + 3;
	for (i = 0; i < LOAD_CHUNK; i += 64) {
		memset(load_chunk + i, 'y', 62);
		memcpy(load_chunk + i + 62, "\r\n", 2);
	}
}

static void
load_usage(void)
{
	fprintf(stderr, "usage: smtpload -p PORT [-c N] [-m PER_CONN] "
	    "[-z SIZE] [-t SECONDS]\n\t[-b BIGSIZE] [-g HZ] "
	    "[-I N [-r RATE]]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct event	*ev_stop, *ev_probe = NULL, *ev_idle = NULL;
	struct load_conn *c;
	struct timeval	 tv;
	struct rlimit	 rl;
	double		 secs = 5, hz = 0, elapsed;
	unsigned	 clients = 0, rate = 0, burst, i;
	size_t		 size = 1024;
	int		 ch, port = 0;

	while ((ch = getopt(argc, argv, "b:c:g:I:m:p:r:t:z:")) != -1) {
		switch (ch) {
		case 'b': load_big = (size_t)atol(optarg); break;
		case 'c': clients = (unsigned)atoi(optarg); break;
		case 'g': hz = atof(optarg); break;
		case 'I': load_idle_want = (unsigned)atoi(optarg); break;
		case 'm': load_per_conn = strtoul(optarg, NULL, 10); break;
		case 'p': port = atoi(optarg); break;
		case 'r': rate = (unsigned)atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'z': size = (size_t)atol(optarg); break;
		default: load_usage();
		}
	}
	if (port <= 0)
		load_usage();
	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	load_prepare(size);
	memset(&load_sin, 0, sizeof(load_sin));
	load_sin.sin_family = AF_INET;
	load_sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	load_sin.sin_port = htons((uint16_t)port);
	if ((load_base = event_base_new()) == NULL)
		return 1;
	load_t0 = load_now();
	tv.tv_sec = (time_t)secs;
	tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
	ev_stop = evtimer_new(load_base, load_stop_cb, NULL);
	evtimer_add(ev_stop, &tv);
	for (i = 0; i < clients; i++) {
		load_live++;
		load_open(LOAD_WORKER);
	}
	if (load_big > 0) {
		load_live++;
		load_open(LOAD_BIG);
	}
	if (hz > 0) {
		tv.tv_sec = (time_t)(1 / hz);
		tv.tv_usec = (suseconds_t)((1 / hz - (double)tv.tv_sec) * 1e6);
		ev_probe = event_new(load_base, -1, EV_PERSIST, load_probe_cb,
		    NULL);
		event_add(ev_probe, &tv);
	}
	if (load_idle_want > 0) {
		/* Ticks of 10 ms: RATE/100 connections each, or all now. */
		burst = rate > 0 ? (rate + 99) / 100 : load_idle_want;
		tv.tv_sec = 0;
		tv.tv_usec = 10000;
		ev_idle = event_new(load_base, -1, EV_PERSIST, load_idle_cb,
		    &burst);
		load_idle_cb(-1, 0, &burst);
		event_add(ev_idle, &tv);
	}
	event_base_dispatch(load_base);
	/* Until the last worker finished its last transaction. */
	elapsed = load_now() - load_t0;
	printf("{\"seconds\": %.3f, \"accepted\": %lu, \"refused\": %lu, "
	    "\"errors\": %lu, \"connections\": %lu, \"big_done\": %lu, "
	    "\"msgs_per_s\": %.1f, \"mb_per_s\": %.3f, \"idle_greeted\": %u, ",
	    elapsed, load_accepted, load_refused, load_errors, load_conns,
	    load_big_done, (double)load_accepted / elapsed,
	    (double)load_octets / elapsed / 1e6, load_idle_greeted);
	load_lat_print("txn", &load_txn_lat, true);
	load_lat_print("greet", &load_greet_lat, true);
	load_lat_print("probe_greet", &load_probe_lat, true);
	load_lat_print("idle_greet", &load_idle_lat, true);
	load_lat_print("big_txn", &load_big_lat, false);
	printf("}\n");
	/* Idle connections, and any still open after the grace time. */
	while ((c = LIST_FIRST(&load_all)) != NULL) {
		LIST_REMOVE(c, entry);
		bufferevent_free(c->bev);
		free(c);
	}
	if (ev_probe != NULL)
		event_free(ev_probe);
	if (ev_idle != NULL)
		event_free(ev_idle);
	event_free(ev_stop);
	event_base_free(load_base);
	free(load_body);
	free(load_chunk);
	free(load_txn_lat.v);
	free(load_greet_lat.v);
	free(load_probe_lat.v);
	free(load_idle_lat.v);
	free(load_big_lat.v);
	return 0;
}
