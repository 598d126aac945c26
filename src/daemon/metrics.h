/*
 * metrics.h - the optional Prometheus endpoint: GET /metrics (text
 * exposition format 0.0.4) and GET /health, served with evhttp.
 *
 * Read-only: it reports the queue's and the sessions' counters and
 * changes nothing.  It listens on one numeric address, normally
 * loopback; anything else is the administrator's explicit choice.
 */
#ifndef METRICS_H
#define METRICS_H

struct event_base;
struct queue;
struct session_ctx;
struct metrics;

/* Listens on <listen>, a numeric "host:port" or "[v6]:port" (port 0
 * picks a free one; the log line names it).  GET /metrics answers the
 * counters, GET /health "ok" (200) while the upstream state is ok and
 * the state's name (503) otherwise, anything else 404; methods other
 * than GET and HEAD are refused.  <queue> and <sessions> are borrowed
 * and must outlive the result.  Returns NULL after logging. */
struct metrics	*metrics_new(struct event_base *, const char *listen,
		    struct queue *, struct session_ctx *);

/* Stops listening and closes open requests.  NULL is a no-op. */
void		 metrics_free(struct metrics *);

#endif /* METRICS_H */
