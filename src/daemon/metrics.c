/*
 * metrics.c - Prometheus text exposition (format 0.0.4) and a health
 * check over evhttp.
 *
 * Every scrape reads the counters afresh from the queue and the session
 * context; nothing is cached and nothing here changes state.  The
 * socket is bound with evconnlistener (close-on-exec, numeric address
 * only: no DNS at startup) and handed to evhttp.  Connections that
 * were refused by the listener (allow-list, caps) are not counted: that
 * needs counters in listener.c.
 */
#include "config.h"

#include "metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "conf.h"
#include "log.h"
#include "queue.h"
#include "session.h"
#include "spool.h"
#include "spoolbatch.h"
#include "upstream.h"
#include "util.h"

#define METRICS_TIMEOUT_SECS	10	/* per request */
#define METRICS_HEADERS_MAX	8192	/* request header octets */
#define METRICS_BODY_MAX	4096	/* requests have none */
#define METRICS_CONTENT_TYPE	"text/plain; version=0.0.4; charset=utf-8"

struct metrics {
	struct evhttp		*http;
	struct queue		*queue;
	struct session_ctx	*sessions;
};

/* The # HELP and # TYPE lines of one metric family. */
static void
metrics_family(struct evbuffer *out, const char *name, const char *type,
    const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* One family with a single unlabelled sample. */
static void
metrics_single(struct evbuffer *out, const char *name, const char *type,
    const char *help, int64_t value)
{
	metrics_family(out, name, type, help);
	evbuffer_add_printf(out, "%s %" PRId64 "\n", name, value);
}

/* A label value: backslash and double quote escaped (names have no
 * control characters or spaces: conf.c checks them). */
static void
metrics_label(struct evbuffer *out, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add(out, "\\", 1);
		evbuffer_add(out, v, 1);
	}
}

static void	metrics_quota(const struct metrics *, struct evbuffer *);
static void	metrics_up_sample(struct evbuffer *, const char *,
		    const char *, const char *, int64_t);

/* Per upstream section: its state, one series per state. */
static void
metrics_upstreams(const struct metrics *m, struct evbuffer *out)
{
	struct upstream_stats		st;
	unsigned int			i;
	int				up;

	metrics_family(out, "smartrelay_upstream_section_state", "gauge",
	    "State of each upstream section, in failover order.");
	for (i = 0; i < queue_upstreams(m->queue); i++) {
		queue_get_upstream(m->queue, i, &st);
		for (up = HEALTH_OK; up <= HEALTH_QUOTA; up++) {
			evbuffer_add_printf(out, "smartrelay_upstream_section_"
			    "state{upstream=\"");
			metrics_label(out, st.name);
			evbuffer_add_printf(out, "\",state=\"%s\"} %d\n",
			    health_state_name((enum health_state)up),
			    (int)st.state == up);
		}
	}
	metrics_quota(m, out);
}

/* One sample "family{upstream="name"[,kind="kind"]} value". */
static void
metrics_up_sample(struct evbuffer *out, const char *family,
    const char *name, const char *kind, int64_t value)
{
	evbuffer_add_printf(out, "%s{upstream=\"", family);
	metrics_label(out, name);
	if (kind != NULL)
		evbuffer_add_printf(out, "\",kind=\"%s", kind);
	evbuffer_add_printf(out, "\"} %" PRId64 "\n", value);
}

/* The sending quota of each upstream that has one: one family at a
 * time, as the exposition format wants. */
static void
metrics_quota(const struct metrics *m, struct evbuffer *out)
{
	static const char *const	 fam[] = {
		"smartrelay_upstream_quota_used",
		"smartrelay_upstream_quota_limit",
		"smartrelay_upstream_quota_next_send_timestamp_seconds",
	};
	static const char *const	 help[] = {
		"Messages and recipients sent in the last 24 hours.",
		"The configured 24-hour limits (0: none).",
		"When the next message may go by the quota (0: now).",
	};
	struct upstream_stats		 st;
	const struct quota_status	*q = &st.quota;
	unsigned int			 f, i;

	for (f = 0; f < nitems(fam); f++) {
		metrics_family(out, fam[f], "gauge", help[f]);
		for (i = 0; i < queue_upstreams(m->queue); i++) {
			queue_get_upstream(m->queue, i, &st);
			if (!st.has_quota)
				continue;
			if (f == 2) {
				metrics_up_sample(out, fam[f], st.name, NULL,
				    q->next_send);
				continue;
			}
			metrics_up_sample(out, fam[f], st.name, "messages",
			    (int64_t)(f == 0 ? q->messages :
			    q->limits.messages));
			metrics_up_sample(out, fam[f], st.name, "recipients",
			    (int64_t)(f == 0 ? q->recipients :
			    q->limits.recipients));
		}
	}
}

/* The spool's commit batches (spoolbatch.h): a histogram of their
 * durations, from the moment a batch takes what is pending to its fsync
 * of queue/, and the operations they carried. */
static void
metrics_spool_batches(const struct metrics *m, struct evbuffer *out)
{
	struct spoolbatch_stats	 st;
	unsigned long		 cum = 0, bound;
	size_t			 i;

	spool_get_batch_stats(m->sessions->spool, &st);
	metrics_family(out, "smartrelay_spool_commit_batch_seconds",
	    "histogram", "Spool commit batches: time from taking the "
	    "pending operations to the fsync of queue/.");
	for (i = 0; i < SPOOLBATCH_NBUCKETS; i++) {
		cum += st.buckets[i];
		if ((bound = spoolbatch_bucket_bound_us(i)) == 0)
			evbuffer_add_printf(out, "smartrelay_spool_commit_"
			    "batch_seconds_bucket{le=\"+Inf\"} %lu\n", cum);
		else
			evbuffer_add_printf(out, "smartrelay_spool_commit_"
			    "batch_seconds_bucket{le=\"%lu.%06lu\"} %lu\n",
			    bound / 1000000, bound % 1000000, cum);
	}
	evbuffer_add_printf(out,
	    "smartrelay_spool_commit_batch_seconds_sum %llu.%06llu\n"
	    "smartrelay_spool_commit_batch_seconds_count %lu\n",
	    st.total_us / 1000000, st.total_us % 1000000, st.batches);
	metrics_single(out, "smartrelay_spool_batched_operations_total",
	    "counter", "Spool operations (commits, envelope saves, "
	    "removals) run in commit batches.", (int64_t)st.items);
	metrics_single(out, "smartrelay_spool_commit_batch_max_operations",
	    "gauge", "Operations in the largest commit batch so far.",
	    (int64_t)st.max_items);
}

/* Every family of the exposition, with HELP and TYPE lines.  Counters
 * restart at 0 with the daemon, which Prometheus' rate() expects.
 * Deferred recipients are counted per attempt, as the queue counts
 * them. */
static void
metrics_render(const struct metrics *m, struct evbuffer *out)
{
	struct queue_stats	 st;
	int64_t			 now = time_wall();
	int			 up;

	queue_get_stats(m->queue, &st);
	metrics_single(out, "smartrelay_messages_accepted_total", "counter",
	    "Messages queued from SMTP clients and the maildrop.",
	    (int64_t)m->sessions->accepted);
	metrics_family(out, "smartrelay_recipients_total", "counter",
	    "Recipient delivery outcomes (deferred counts attempts).");
	evbuffer_add_printf(out,
	    "smartrelay_recipients_total{status=\"sent\"} %lu\n"
	    "smartrelay_recipients_total{status=\"deferred\"} %lu\n"
	    "smartrelay_recipients_total{status=\"bounced\"} %lu\n"
	    "smartrelay_recipients_total{status=\"expired\"} %lu\n",
	    st.sent, st.deferred, st.bounced, st.expired);
	metrics_single(out, "smartrelay_reports_total", "counter",
	    "Failure reports (DSN) queued.", (int64_t)st.reports);
	metrics_single(out, "smartrelay_queue_messages", "gauge",
	    "Messages in the queue.", (int64_t)st.depth);
	metrics_single(out, "smartrelay_queue_held_messages", "gauge",
	    "Messages on hold.", (int64_t)st.held);
	metrics_single(out, "smartrelay_queue_oldest_age_seconds", "gauge",
	    "Age of the oldest queued message (0 when empty).",
	    st.oldest != 0 && now > st.oldest ? now - st.oldest : 0);
	metrics_single(out, "smartrelay_upstream_connections", "gauge",
	    "Open connections to the upstream.", (int64_t)st.connections);
	/* One series per state so that alerts need no regex. */
	metrics_family(out, "smartrelay_upstream_state", "gauge",
	    "Upstream state as the queue sees it (1 for the current one).");
	for (up = HEALTH_OK; up <= HEALTH_QUOTA; up++)
		evbuffer_add_printf(out,
		    "smartrelay_upstream_state{state=\"%s\"} %d\n",
		    health_state_name((enum health_state)up),
		    (int)st.upstream == up);
	metrics_upstreams(m, out);
	metrics_single(out, "smartrelay_last_sent_timestamp_seconds", "gauge",
	    "Unix time of the last delivery (0 if none yet).", st.last_sent);
	metrics_spool_batches(m, out);
	metrics_single(out, "smartrelay_clients_connected", "gauge",
	    "SMTP clients connected now.", (int64_t)m->sessions->nsessions);
	metrics_family(out, "smartrelay_connections_refused_total", "counter",
	    "Client connections turned away at accept, by reason.");
	evbuffer_add_printf(out,
	    "smartrelay_connections_refused_total{reason=\"not-allowed\"} %lu\n"
	    "smartrelay_connections_refused_total{reason=\"max-clients\"} %lu\n"
	    "smartrelay_connections_refused_total{reason=\"max-clients-per-ip\"} "
	    "%lu\n"
	    "smartrelay_connections_refused_total{reason=\"early-talker\"} %lu\n"
	    "smartrelay_connections_refused_total{reason=\"shutting-down\"} %lu\n",
	    m->sessions->refused_not_allowed, m->sessions->refused_max_clients,
	    m->sessions->refused_max_per_ip, m->sessions->refused_early_talker,
	    m->sessions->refused_stopping);
}

/* 200 "ok" when the upstream state is ok, else 503 and its name. */
static int
metrics_health(const struct metrics *m, struct evbuffer *out)
{
	enum health_state	up = queue_upstream_state(m->queue);

	evbuffer_add_printf(out, "%s\n", health_state_name(up));
	return up == HEALTH_OK ? 200 : 503;
}

/* Every request: GET or HEAD of /metrics or /health (evhttp leaves
 * the body out for HEAD), 404 for other paths, 405 for other methods.
 * The query string is ignored. */
static void
metrics_request_cb(struct evhttp_request *req, void *arg)
{
	const struct metrics	*m = arg;
	enum evhttp_cmd_type	 cmd = evhttp_request_get_command(req);
	struct evkeyvalq	*hdrs = evhttp_request_get_output_headers(req);
	struct evbuffer		*out;
	const char		*path;
	int			 code;

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(hdrs, "Allow", "GET, HEAD");
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (path == NULL ||
	    (strcmp(path, "/metrics") != 0 && strcmp(path, "/health") != 0)) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	if ((out = evbuffer_new()) == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (strcmp(path, "/metrics") == 0) {
		metrics_render(m, out);
		evhttp_add_header(hdrs, "Content-Type", METRICS_CONTENT_TYPE);
		code = 200;
	} else {
		code = metrics_health(m, out);
		evhttp_add_header(hdrs, "Content-Type",
		    "text/plain; charset=utf-8");
	}
	evhttp_add_header(hdrs, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, code == 200 ? "OK" :
	    "Service Unavailable", out);
	evbuffer_free(out);
}

/* "metrics listening addr=127.0.0.1:9325", with the real port. */
static void
metrics_log_addr(struct evconnlistener *evl)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	char			 host[64] = "?";
	unsigned int		 port = 0;

	if (getsockname(evconnlistener_get_fd(evl), (struct sockaddr *)&ss,
	    &len) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			host[0] = '[';
			evutil_inet_ntop(AF_INET6, &s6->sin6_addr, host + 1,
			    sizeof(host) - 2);
			strcat(host, "]");
			port = ntohs(s6->sin6_port);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

			evutil_inet_ntop(AF_INET, &s4->sin_addr, host,
			    sizeof(host));
			port = ntohs(s4->sin_port);
		}
	}
	log_info("metrics listening addr=%s:%u", host, port);
}

/* <listen> as a socket address: numeric only, so no DNS at startup;
 * "*" is every IPv4 address.  Returns 0 or -1. */
static int
metrics_addr(const char *listen, struct sockaddr_storage *ss, int *sslen)
{
	struct sockaddr_in	*s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)ss;
	char			 host[64];
	uint16_t		 port;

	memset(ss, 0, sizeof(*ss));
	if (conf_split_hostport(listen, host, sizeof(host), &port) == -1)
		return -1;
	if (evutil_inet_pton(AF_INET, host[0] ? host : "0.0.0.0",
	    &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*sslen = (int)sizeof(*s4);
	} else if (evutil_inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*sslen = (int)sizeof(*s6);
	} else
		return -1;
	return 0;
}

struct metrics *
metrics_new(struct event_base *base, const char *listen,
    struct queue *queue, struct session_ctx *sessions)
{
	struct metrics		*m;
	struct evconnlistener	*evl;
	struct sockaddr_storage	 ss;
	int			 sslen;

	if (metrics_addr(listen, &ss, &sslen) == -1) {
		log_warnx("metrics listen \"%s\": expected a numeric "
		    "address and port, such as 127.0.0.1:9325", listen);
		return NULL;
	}
	evl = evconnlistener_new_bind(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE |
	    LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&ss, sslen);
	if (evl == NULL) {
		log_warn("metrics cannot listen on %s", listen);
		return NULL;
	}
	m = xcalloc(1, sizeof(*m));
	m->queue = queue;
	m->sessions = sessions;
	if ((m->http = evhttp_new(base)) == NULL ||
	    evhttp_bind_listener(m->http, evl) == NULL) {
		log_warnx("metrics cannot set up HTTP on %s", listen);
		if (m->http != NULL)
			evhttp_free(m->http);
		evconnlistener_free(evl);
		free(m);
		return NULL;
	}
	evhttp_set_timeout(m->http, METRICS_TIMEOUT_SECS);
	evhttp_set_max_headers_size(m->http, METRICS_HEADERS_MAX);
	evhttp_set_max_body_size(m->http, METRICS_BODY_MAX);
	evhttp_set_gencb(m->http, metrics_request_cb, m);
	metrics_log_addr(evl);
	return m;
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	/* Frees the bound listener and closes open connections. */
	evhttp_free(m->http);
	free(m);
}
