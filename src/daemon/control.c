/*
 * control.c - the control socket: one request line in, one JSON
 * document out, then close.
 *
 * The socket file is created 0660 (fchmod before bind, so it is never
 * more open than that, then chmod to exactly 0660), and every peer is
 * checked with SO_PEERCRED besides.  Answers are appended to the
 * bufferevent's output as they are formed: a queue of 10,000 messages
 * is a chain of evbuffer chunks, never one big allocation.  Every
 * string that came from a client, a message or the upstream goes
 * through control_json_str(), which escapes what JSON requires and any
 * byte that is not part of valid UTF-8.  The operations that change the
 * disk (hold, release, delete, requeue) run on the spool's workers and
 * are answered only once their change is on stable storage; several
 * messages (ids or ALL) go CONTROL_OPS_PER_TURN at a time, their syncs
 * shared, SMTP clients served in between.
 */
#include "config.h"

#include "control.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "conf.h"
#include "envelope.h"
#include "line.h"
#include "log.h"
#include "queue.h"
#include "session.h"
#include "spool.h"
#include "util.h"

#define CONTROL_CLIENTS_MAX	16	/* admin connections at once */
#define CONTROL_READ_SECS	10	/* to send the request line */
#define CONTROL_WRITE_SECS	60	/* to read the whole answer */
#define CONTROL_HEADERS_MAX	(64 * 1024)	/* "show": header section */
#define CONTROL_TEXT_MAX	1024	/* error and reply strings */
#define CONTROL_GROUPS_MAX	256	/* peer's supplementary groups */
#define CONTROL_OPS_PER_TURN	32	/* messages in flight at once */

/* One admin connection: it lives until its answer is written, the
 * peer goes away, or a timeout fires; control_client_free() is the one
 * place it ends. */
struct control_client {
	TAILQ_ENTRY(control_client) entry;
	struct control		*ctl;
	struct bufferevent	*bev;
	struct line_reader	 reader;
	uid_t			 uid;		/* SO_PEERCRED, for the log */
	pid_t			 pid;
	struct control_job	*job;		/* several messages, or NULL */
};

/* A queue operation: 0 once started (<done> reports later, or from
 * inside the call for the synchronous flush), or -1 with errno. */
typedef int	(*control_op_fn)(struct queue *, const char *,
		    queue_done_cb, void *);

/* One message of a job's turn, the argument of its completion. */
struct control_slot {
	struct control_job	*job;
	int			 err;		/* errno, 0, or -1 running */
};

/* An operation on one or several messages, CONTROL_OPS_PER_TURN in
 * flight at a time; the results of a turn are answered in order once
 * the whole turn is done.  When its client goes first, the job stays
 * (c == NULL) until the operations in flight have reported.  One job at
 * a time has operations in flight (control->running): two requests on
 * the same messages never meet half-done (EBUSY). */
struct control_job {
	TAILQ_ENTRY(control_job) wait;		/* in control->waiting */
	bool			 waiting;
	struct control		*ctl;		/* NULL after control_free() */
	struct control_client	*c;
	const char		*verb;
	control_op_fn		 op;
	struct queue_id		*ids;
	size_t			 n;
	size_t			 next;		/* first id of this turn */
	size_t			 end;		/* past its last */
	size_t			 running;	/* operations in flight */
	bool			 starting;	/* inside control_job_turn() */
	bool			 single;	/* one id: a plain answer */
	size_t			 done;
	size_t			 failed;
	struct control_slot	 slots[CONTROL_OPS_PER_TURN];
	struct event		*ev;		/* the next turn */
};

struct control {
	struct event_base	*base;
	struct queue		*queue;
	struct session_ctx	*sessions;
	struct evconnlistener	*evl;
	struct event		*resume;	/* after EMFILE */
	char			*path;
	gid_t			 sock_gid;	/* group of the socket file */
	TAILQ_HEAD(, control_client) clients;
	unsigned int		 nclients;
	struct control_job	*running;	/* has operations in flight */
	TAILQ_HEAD(, control_job) waiting;	/* for their turn */
};

/* ------------------------------------------------------------------ */
/* JSON output */

/* Appends <n> octets of <s> as a JSON string: '"' and '\\' escaped,
 * control bytes, DEL and any octet outside valid UTF-8 as \u00XX, a
 * NUL as U+FFFD. */
static void
control_json_strn(struct evbuffer *out, const char *s, size_t n)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, run, u;

	evbuffer_add(out, "\"", 1);
	while (i < n) {
		/* Copy plain runs in one call. */
		for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x7f &&
		    p[run] != '"' && p[run] != '\\'; run++)
			;
		if (run > i) {
			evbuffer_add(out, p + i, run - i);
			i = run;
			continue;
		}
		if (p[i] == '"' || p[i] == '\\') {
			evbuffer_add_printf(out, "\\%c", p[i]);
			i++;
		} else if (p[i] >= 0x80 &&
		    (u = str_utf8_len(p + i, n - i)) > 0) {
			evbuffer_add(out, p + i, u);
			i += u;
		} else if (p[i] == '\0') {
			/* Readers take strings as C strings. */
			evbuffer_add(out, "\\ufffd", 6);
			i++;
		} else
			evbuffer_add_printf(out, "\\u%04x", p[i++]);
	}
	evbuffer_add(out, "\"", 1);
}

/* A NUL-terminated string, at most CONTROL_TEXT_MAX octets of it, or
 * null for NULL. */
static void
control_json_str(struct evbuffer *out, const char *s)
{
	size_t	n;

	if (s == NULL) {
		evbuffer_add(out, "null", 4);
		return;
	}
	n = strnlen(s, CONTROL_TEXT_MAX);
	control_json_strn(out, s, n);
}

/* {"error": <msg>, "code": <code>} */
static void
control_json_error(struct evbuffer *out, const char *code, const char *msg)
{
	evbuffer_add_printf(out, "{\"error\": ");
	control_json_str(out, msg);
	evbuffer_add_printf(out, ", \"code\": \"%s\"}\n", code);
}

static const char *const control_rcpt_state[] = {
	[ENVELOPE_RCPT_PENDING] = "pending",
	[ENVELOPE_RCPT_SENT] = "sent",
	[ENVELOPE_RCPT_FAILED] = "failed",
};

/* The fields of an envelope, without the closing brace, so that the
 * caller can add its own. */
static void
control_json_env(struct evbuffer *out, const struct envelope *env,
    int64_t now)
{
	const struct envelope_rcpt	*rc;
	size_t				 i;

	evbuffer_add_printf(out, "{\"id\": \"%s\", \"arrival\": %" PRId64
	    ", \"age_s\": %" PRId64 ", \"size\": %" PRIu64 ", \"sender\": ",
	    env->id, env->arrival, now > env->arrival ? now - env->arrival :
	    0, env->size);
	control_json_str(out, env->sender);
	evbuffer_add_printf(out, ", \"client\": ");
	control_json_str(out, env->client);
	evbuffer_add_printf(out, ", \"helo\": ");
	control_json_str(out, env->helo);
	evbuffer_add_printf(out, ", \"attempts\": %u, \"next_attempt\": %"
	    PRId64 ", \"held\": %s, \"last_error\": ", env->attempts,
	    env->next_attempt, env->held ? "true" : "false");
	control_json_str(out, env->last_error);
	evbuffer_add_printf(out, ", \"recipients\": [");
	for (i = 0; i < env->nrcpt; i++) {
		rc = &env->rcpts[i];
		evbuffer_add_printf(out, "%s{\"addr\": ", i > 0 ? ", " : "");
		control_json_str(out, rc->addr);
		evbuffer_add_printf(out, ", \"state\": \"%s\", \"dsn\": ",
		    rc->state < nitems(control_rcpt_state) ?
		    control_rcpt_state[rc->state] : "unknown");
		control_json_str(out, rc->dsn);
		evbuffer_add_printf(out, ", \"reply\": ");
		control_json_str(out, rc->reply);
		evbuffer_add_printf(out, "}");
	}
	evbuffer_add_printf(out, "]");
}

/* ------------------------------------------------------------------ */
/* Requests */

static void
control_job_free(struct control_job *job)
{
	if (job->waiting)
		TAILQ_REMOVE(&job->ctl->waiting, job, wait);
	if (job->ev != NULL)
		event_free(job->ev);
	free(job->ids);
	free(job);
}

/* Closes the connection (whatever is unwritten is lost: only on
 * timeout, error or control_free()). */
static void
control_client_free(struct control_client *c)
{
	TAILQ_REMOVE(&c->ctl->clients, c, entry);
	c->ctl->nclients--;
	if (c->job != NULL) {
		event_free(c->job->ev);
		c->job->ev = NULL;
		c->job->c = NULL;
		if (c->job->running == 0)
			control_job_free(c->job);
	}
	bufferevent_free(c->bev);
	free(c);
}

/* Called once the output buffer is empty: the answer has gone. */
static void
control_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	control_client_free(arg);
}

/* EOF, error or timeout: nothing more to do for this peer. */
static void
control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct control_client	*c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		log_notice("control timeout uid=%u pid=%ld", (unsigned)c->uid,
		    (long)c->pid);
	control_client_free(c);
}

/* The answer is in the output buffer: read no more, and close once it
 * is written.  Every request handler ends here, exactly once. */
static void
control_answered(struct control_client *c)
{
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_setcb(c->bev, NULL, control_write_cb, control_event_cb, c);
	bufferevent_enable(c->bev, EV_WRITE);
}

/* Answers {"error": <msg>, "code": <code>}; smartrelayctl maps the
 * code to its exit status. */
static void
control_error(struct control_client *c, const char *code, const char *msg)
{
	control_json_error(bufferevent_get_output(c->bev), code, msg);
	control_answered(c);
}

/* The answer's code and text for a failed operation on a message. */
static const char *
control_op_reason(const char *verb, int err, char *buf, size_t bufsz,
    const char **code)
{
	*code = "EIO";
	if (err == ENOENT) {
		*code = "ENOENT";
		return strcmp(verb, "requeue") == 0 ? "no such message in "
		    "failed/" : "no such message in the queue";
	}
	if (err == EEXIST) {
		*code = "EEXIST";
		return "the message is in the queue, not in failed/";
	}
	if (err == EINVAL && strcmp(verb, "requeue") == 0) {
		*code = "EDONE";
		return "the message has no failed recipient to send again";
	}
	if (err == EBUSY) {
		*code = "EBUSY";
		return "the message is being delivered right now; try again "
		    "in a moment";
	}
	if (err == EPERM) {
		*code = "EHELD";
		return "the message is held; release it first";
	}
	snprintf(buf, bufsz, "%s failed: %s", verb, strerror(err));
	return buf;
}

/* Answers a failed queue operation by its errno. */
static void
control_op_error(struct control_client *c, const char *verb, const char *id,
    int err)
{
	const char	*code, *msg;
	char		 buf[256];

	log_info("control %s id=%s uid=%u failed: %s", verb, id,
	    (unsigned)c->uid, strerror(err));
	msg = control_op_reason(verb, err, buf, sizeof(buf), &code);
	control_error(c, code, msg);
}

/* "queue": the answer is {"now": T, "messages": [...], "count": N}.
 * queue_list() calls back once per message with its envelope as on
 * disk; each becomes one object appended to the output at once. */
struct control_list {
	struct evbuffer		*out;
	int64_t			 now;
	long			 n;
};

static void
control_list_cb(const struct envelope *env, bool busy, void *arg)
{
	struct control_list	*l = arg;

	if (l->n++ > 0)
		evbuffer_add(l->out, ",\n", 2);
	control_json_env(l->out, env, l->now);
	evbuffer_add_printf(l->out, ", \"sending\": %s}",
	    busy ? "true" : "false");
}

static void
control_cmd_queue(struct control_client *c, const char *arg)
{
	struct control_list	 l;

	(void)arg;
	l.out = bufferevent_get_output(c->bev);
	l.now = time_wall();
	l.n = 0;
	log_debug("control queue uid=%u", (unsigned)c->uid);
	evbuffer_add_printf(l.out, "{\"now\": %" PRId64 ", \"messages\": [\n",
	    l.now);
	queue_list(c->ctl->queue, control_list_cb, &l);
	evbuffer_add_printf(l.out, "], \"count\": %ld}\n", l.n);
	control_answered(c);
}

/* "failed": the messages kept in failed/, {"now": T, "messages":
 * [...], "count": N}, each envelope as in "queue" (its recipients in
 * their final states). */
static void
control_failed_cb(const struct envelope *env, void *arg)
{
	struct control_list	*l = arg;

	if (l->n++ > 0)
		evbuffer_add(l->out, ",\n", 2);
	control_json_env(l->out, env, l->now);
	evbuffer_add(l->out, "}", 1);
}

static void
control_cmd_failed(struct control_client *c, const char *arg)
{
	struct control_list	 l;

	(void)arg;
	l.out = bufferevent_get_output(c->bev);
	l.now = time_wall();
	l.n = 0;
	log_debug("control failed uid=%u", (unsigned)c->uid);
	evbuffer_add_printf(l.out, "{\"now\": %" PRId64 ", \"messages\": [\n",
	    l.now);
	spool_scan_failed(c->ctl->sessions->spool, control_failed_cb, &l);
	evbuffer_add_printf(l.out, "], \"count\": %ld}\n", l.n);
	control_answered(c);
}

/* Appends the header section of the data file at <path> (up to the
 * first empty line, at most CONTROL_HEADERS_MAX octets) as a string. */
static void
control_json_headers(struct evbuffer *out, const char *path)
{
	char	*buf, *end;
	size_t	 len = 0;
	ssize_t	 n;
	bool	 complete = false;
	int	 fd;

	buf = xmalloc(CONTROL_HEADERS_MAX);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		while (len < CONTROL_HEADERS_MAX && (n = read(fd, buf + len,
		    CONTROL_HEADERS_MAX - len)) > 0)
			len += (size_t)n;
		close(fd);
	}
	/* The spool holds canonical CRLF lines (RFC 5322 section 2.1). */
	if (len >= 2 && memcmp(buf, "\r\n", 2) == 0) {
		len = 0;
		complete = true;
	} else if ((end = memmem(buf, len, "\r\n\r\n", 4)) != NULL) {
		len = (size_t)(end - buf) + 2;
		complete = true;
	}
	evbuffer_add_printf(out, ", \"headers\": ");
	control_json_strn(out, buf, len);
	evbuffer_add_printf(out, ", \"headers_truncated\": %s",
	    complete ? "false" : "true");
	free(buf);
}

/* "show ID": the envelope, the data file's path and its headers.  The
 * envelope comes from disk, so this works whatever the queue's state
 * (whether a relay has it right now is what "queue" tells). */
static void
control_cmd_show(struct control_client *c, const char *id)
{
	struct spool		*sp = c->ctl->sessions->spool;
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	struct envelope		 env;
	struct stat		 st;
	char			 data[4096], envpath[4096];
	size_t			 n;

	log_debug("control show id=%s uid=%u", id, (unsigned)c->uid);
	if (spool_data_path(sp, id, data, sizeof(data)) == -1 ||
	    (n = strlen(data)) < 4) {
		control_error(c, "EIO", "spool path too long");
		return;
	}
	/* queue/<id>.env exists exactly when the message is committed
	 * (spool.h); looking first keeps a typo out of the log. */
	snprintf(envpath, sizeof(envpath), "%.*s.env", (int)(n - 4), data);
	if (stat(envpath, &st) == -1 ||
	    spool_env_load(sp, id, &env) == -1) {
		control_error(c, "ENOENT", "no such message in the queue");
		return;
	}
	control_json_env(out, &env, time_wall());
	evbuffer_add_printf(out, ", \"data_path\": ");
	control_json_str(out, data);
	control_json_headers(out, data);
	evbuffer_add_printf(out, "}\n");
	envelope_cleanup(&env);
	control_answered(c);
}

/* Each upstream section, in failover order, as JSON objects. */
static void
control_json_upstreams(struct evbuffer *out, struct queue *q)
{
	struct queue_upstream_stats	st;
	unsigned int			i;

	for (i = 0; i < queue_upstreams(q); i++) {
		queue_get_upstream(q, i, &st);
		evbuffer_add_printf(out, "%s{\"name\": ", i > 0 ? ", " : "");
		control_json_str(out, st.name);
		evbuffer_add_printf(out, ", \"state\": \"%s\", \"reason\": ",
		    health_state_name(st.state));
		control_json_str(out, st.reason);
		/* retry_at is the older name of next_probe. */
		evbuffer_add_printf(out, ", \"connections\": %u, \"retry_at\": "
		    "%" PRId64 ", \"next_probe\": %" PRId64 ", \"probing\": "
		    "%s", st.connections, st.retry_at, st.retry_at,
		    st.probing ? "true" : "false");
		if (st.has_quota)
			evbuffer_add_printf(out, ", \"quota\": {\"messages\": "
			    "%" PRIu64 ", \"recipients\": %" PRIu64 ", "
			    "\"limit_messages\": %u, \"limit_recipients\": "
			    "%u, \"pacing\": %s, \"at_limit\": %s, "
			    "\"next_send\": %" PRId64 "}", st.quota.messages,
			    st.quota.recipients, st.quota.limits.messages,
			    st.quota.limits.recipients, st.quota.pacing ?
			    "true" : "false", st.quota.at_limit ? "true" :
			    "false", st.quota.next_send);
		evbuffer_add_printf(out, "}");
	}
}

/* "stats": the queue's counters, the sessions' and the time. */
static void
control_cmd_stats(struct control_client *c, const char *arg)
{
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	struct queue_stats	 st;
	int64_t			 now = time_wall();

	(void)arg;
	log_debug("control stats uid=%u", (unsigned)c->uid);
	queue_get_stats(c->ctl->queue, &st);
	evbuffer_add_printf(out, "{\"now\": %" PRId64 ", \"accepted\": %lu, "
	    "\"sent\": %lu, \"deferred\": %lu, \"bounced\": %lu, "
	    "\"expired\": %lu, \"reports\": %lu, \"depth\": %lu, "
	    "\"held\": %lu, \"oldest_age_s\": %" PRId64 ", \"upstream\": "
	    "\"%s\", \"upstream_reason\": ", now, c->ctl->sessions->accepted,
	    st.sent, st.deferred, st.bounced, st.expired, st.reports,
	    st.depth, st.held, st.oldest != 0 && now > st.oldest ?
	    now - st.oldest : 0, health_state_name(st.upstream));
	control_json_str(out, st.upstream_reason);
	evbuffer_add_printf(out, ", \"connections\": %u, \"last_sent\": %"
	    PRId64 ", \"clients\": %u, \"upstreams\": [", st.connections,
	    st.last_sent, c->ctl->sessions->nsessions);
	control_json_upstreams(out, c->ctl->queue);
	evbuffer_add_printf(out, "]}\n");
	control_answered(c);
}

/* "flush" and "flush ALL" are SIGUSR1: everything due, a paused
 * upstream retried.  (With ids, each is made due: control_cmd_op().) */
static void
control_cmd_flush(struct control_client *c, const char *arg)
{
	struct evbuffer	*out = bufferevent_get_output(c->bev);

	(void)arg;
	log_info("control flush uid=%u pid=%ld", (unsigned)c->uid,
	    (long)c->pid);
	queue_flush(c->ctl->queue);
	evbuffer_add_printf(out, "{\"ok\": true, \"action\": \"flush\", "
	    "\"messages\": %lu}\n", queue_size(c->ctl->queue));
	control_answered(c);
}

/* "flush ID": makes it due now, nothing to wait for. */
static int
control_flush_one(struct queue *q, const char *id, queue_done_cb done,
    void *arg)
{
	if (queue_flush_one(q, id) == -1)
		return -1;
	done(id, 0, arg);
	return 0;
}

/* Appends the results of the turn that just ended, one log line each. */
static void
control_job_results(struct control_job *job)
{
	struct control_client	*c = job->c;
	struct evbuffer		*out = bufferevent_get_output(c->bev);
	const char		*id, *code, *msg;
	char			 buf[256];
	size_t			 i;
	int			 err;

	for (i = job->next; i < job->end; i++) {
		id = job->ids[i].id;
		err = job->slots[i - job->next].err;
		if (job->single && err != 0) {
			control_op_error(c, job->verb, id, err);
			return;
		}
		if (err == 0) {
			log_info("control %s id=%s uid=%u pid=%ld", job->verb,
			    id, (unsigned)c->uid, (long)c->pid);
			job->done++;
		} else {
			log_info("control %s id=%s uid=%u failed: %s",
			    job->verb, id, (unsigned)c->uid, strerror(err));
			job->failed++;
		}
		if (job->single) {
			evbuffer_add_printf(out, "{\"ok\": true, \"action\": "
			    "\"%s\", \"id\": \"%s\"}\n", job->verb, id);
			control_answered(c);
			return;
		}
		evbuffer_add_printf(out, "%s{\"id\": \"%s\", ", i > 0 ?
		    ",\n" : "", id);
		if (err == 0) {
			evbuffer_add_printf(out, "\"ok\": true}");
			continue;
		}
		msg = control_op_reason(job->verb, err, buf, sizeof(buf),
		    &code);
		evbuffer_add_printf(out, "\"ok\": false, \"code\": \"%s\", "
		    "\"error\": ", code);
		control_json_str(out, msg);
		evbuffer_add(out, "}", 1);
	}
	job->next = job->end;
	if (job->next < job->n) {
		struct timeval	now = { 0, 0 };

		/* A zero timeout: pending I/O is served first. */
		evtimer_add(job->ev, &now);
		return;
	}
	evbuffer_add_printf(out, "], \"done\": %zu, \"failed\": %zu, "
	    "\"ok\": %s}\n", job->done, job->failed, job->failed == 0 ?
	    "true" : "false");
	control_answered(c);
}

/* A turn ended: the first job waiting may start its own. */
static void
control_job_yield(struct control_job *job)
{
	struct control		*ctl = job->ctl;
	struct control_job	*next;
	struct timeval		 now = { 0, 0 };

	if (ctl == NULL)
		return;
	ctl->running = NULL;
	if ((next = TAILQ_FIRST(&ctl->waiting)) != NULL) {
		TAILQ_REMOVE(&ctl->waiting, next, wait);
		next->waiting = false;
		evtimer_add(next->ev, &now);
	}
}

/* An operation of the turn reported; the last one ends the turn. */
static void
control_op_done_cb(const char *id, int err, void *arg)
{
	struct control_slot	*slot = arg;
	struct control_job	*job = slot->job;

	(void)id;
	slot->err = err;
	job->running--;
	if (job->running > 0 || job->starting)
		return;
	control_job_yield(job);
	if (job->c == NULL)
		control_job_free(job);
	else
		control_job_results(job);
}

/* Starts the next CONTROL_OPS_PER_TURN operations of the job. */
static void
control_job_turn(evutil_socket_t fd, short what, void *arg)
{
	struct control_job	*job = arg;
	struct control_slot	*slot;
	size_t			 i;

	(void)fd;
	(void)what;
	if (job->ctl->running != NULL) {
		/* Another job's turn is out: after it. */
		TAILQ_INSERT_TAIL(&job->ctl->waiting, job, wait);
		job->waiting = true;
		return;
	}
	job->ctl->running = job;
	job->end = job->next + CONTROL_OPS_PER_TURN;
	if (job->end > job->n)
		job->end = job->n;
	job->starting = true;
	for (i = job->next; i < job->end; i++) {
		slot = &job->slots[i - job->next];
		slot->job = job;
		slot->err = -1;
		job->running++;
		if (job->op(job->c->ctl->queue, job->ids[i].id,
		    control_op_done_cb, slot) == -1) {
			slot->err = errno;
			job->running--;
		}
	}
	job->starting = false;
	if (job->running == 0) {
		control_job_yield(job);
		control_job_results(job);
	}
}

/*
 * One id: {"ok": true, "action": <verb>, "id": ID} or an error.  Several
 * ids, or every message <sel> picks: one result per message,
 * {"action": <verb>, "results": [{"id": ID, "ok": true} or {"id": ID,
 * "ok": false, "code": C, "error": TEXT}, ...], "done": N, "failed": M,
 * "ok": <all done>}.  Each message is one operation, so those before a
 * failure stay done.
 */
static void
control_cmd_ops(struct control_client *c, const char *verb,
    control_op_fn op, char **ids, size_t nids, bool all,
    enum queue_select sel)
{
	struct control_job	*job;
	size_t			 i;

	job = xcalloc(1, sizeof(*job));
	job->ctl = c->ctl;
	job->c = c;
	job->verb = verb;
	job->op = op;
	job->single = nids == 1 && !all;
	/* A snapshot: deleting as we go changes the queue's list. */
	if (all)
		job->ids = queue_ids(c->ctl->queue, sel, &job->n);
	else {
		job->ids = xcalloc(nids, sizeof(*job->ids));
		for (i = 0; i < nids; i++)
			memcpy(job->ids[i].id, ids[i], sizeof(job->ids[i].id));
		job->n = nids;
	}
	if ((job->ev = evtimer_new(c->ctl->base, control_job_turn, job)) ==
	    NULL) {
		control_job_free(job);
		control_error(c, "EIO", "out of event resources");
		return;
	}
	c->job = job;
	/* One request per connection: read no more meanwhile. */
	bufferevent_disable(c->bev, EV_READ);
	if (!job->single) {
		log_info("control %s%s count=%zu uid=%u pid=%ld", verb, all ?
		    " ALL" : "", job->n, (unsigned)c->uid, (long)c->pid);
		evbuffer_add_printf(bufferevent_get_output(c->bev),
		    "{\"action\": \"%s\", \"results\": [", verb);
	}
	control_job_turn(-1, 0, job);
}

enum control_arg {
	CONTROL_ARG_NONE,
	CONTROL_ARG_ID,		/* exactly one id */
	CONTROL_ARG_IDS,	/* one or more ids, or ALL */
	CONTROL_ARG_OPT_IDS,	/* none, ids, or ALL */
};

/* Each request runs either its own handler <fn> or, for the per-message
 * operations, the queue function <op> on each id; <sel> is what ALL
 * means for it. */
static const struct control_cmd {
	const char	*verb;
	enum control_arg arg;
	void		(*fn)(struct control_client *, const char *);
	control_op_fn	 op;
	enum queue_select sel;
} control_cmds[] = {
	{ "queue",	CONTROL_ARG_NONE,	control_cmd_queue,	NULL,
	    QUEUE_SELECT_ALL },
	{ "stats",	CONTROL_ARG_NONE,	control_cmd_stats,	NULL,
	    QUEUE_SELECT_ALL },
	{ "show",	CONTROL_ARG_ID,		control_cmd_show,	NULL,
	    QUEUE_SELECT_ALL },
	{ "flush",	CONTROL_ARG_OPT_IDS,	control_cmd_flush,
	    control_flush_one,	QUEUE_SELECT_NOT_HELD },
	{ "delete",	CONTROL_ARG_IDS,	NULL,	queue_delete,
	    QUEUE_SELECT_ALL },
	{ "hold",	CONTROL_ARG_IDS,	NULL,	queue_hold,
	    QUEUE_SELECT_NOT_HELD },
	{ "release",	CONTROL_ARG_IDS,	NULL,	queue_release,
	    QUEUE_SELECT_HELD },
	{ "failed",	CONTROL_ARG_NONE,	control_cmd_failed,	NULL,
	    QUEUE_SELECT_ALL },
	{ "requeue",	CONTROL_ARG_IDS,	NULL,	queue_requeue,
	    QUEUE_SELECT_FAILED },
};

/* Splits the arguments at <args> (NULL: none) into <argv> in place:
 * ids in lowercase (ids are case-insensitive), "ALL" in any case as
 * "ALL".  Returns the count, or -1 with the reason in *why. */
static long
control_split_args(char *args, char **argv, size_t max, const char **why)
{
	char	*tok, *save = NULL, *p;
	size_t	 n = 0;

	for (tok = args != NULL ? strtok_r(args, " ", &save) : NULL;
	    tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		if (n == max) {
			*why = "too many arguments";
			return -1;
		}
		if (strcasecmp(tok, "ALL") == 0) {
			argv[n++] = strcpy(tok, "ALL");
			continue;
		}
		for (p = tok; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!envelope_id_is_valid(tok)) {
			*why = "invalid message id (16 hex digits)";
			return -1;
		}
		argv[n++] = tok;
	}
	return (long)n;
}

/* One request line: "VERB", "VERB ID", "VERB ID ID ..." or "VERB ALL". */
static void
control_dispatch(struct control_client *c, char *line)
{
	const struct control_cmd	*cmd = NULL;
	char				*arg;
	char				*argv[CONTROL_REQUEST_MAX /
					    (ENVELOPE_ID_LEN + 1) + 1];
	const char			*why = NULL;
	long				 n;
	bool				 all;
	size_t				 i;

	if ((arg = strchr(line, ' ')) != NULL)
		*arg++ = '\0';
	for (i = 0; i < nitems(control_cmds) && cmd == NULL; i++)
		if (strcmp(line, control_cmds[i].verb) == 0)
			cmd = &control_cmds[i];
	if (cmd == NULL) {
		control_error(c, "EINVAL", "unknown request");
		return;
	}
	if ((n = control_split_args(arg, argv, nitems(argv), &why)) == -1) {
		control_error(c, "EINVAL", why);
		return;
	}
	all = n > 0 && strcmp(argv[0], "ALL") == 0;
	if (n > 0 && cmd->arg == CONTROL_ARG_NONE)
		why = "this request takes no argument";
	else if (n != 1 && cmd->arg == CONTROL_ARG_ID)
		why = "this request needs one message id";
	else if (n == 0 && cmd->arg == CONTROL_ARG_IDS)
		why = "this request needs message ids or ALL";
	else if (all && cmd->op == NULL)
		why = "ALL is for the requests that act on messages";
	else if (all && n > 1)
		why = "ALL stands alone";
	for (i = 1; why == NULL && i < (size_t)n; i++)
		if (strcmp(argv[i], "ALL") == 0)
			why = "ALL stands alone";
	if (why != NULL) {
		control_error(c, "EINVAL", why);
		return;
	}
	/* "flush" and "flush ALL" are SIGUSR1's flush. */
	if (cmd->fn != NULL && (cmd->op == NULL || n == 0 || all))
		cmd->fn(c, cmd->op == NULL && n > 0 ? argv[0] : NULL);
	else
		control_cmd_ops(c, cmd->verb, cmd->op, argv, (size_t)n, all,
		    cmd->sel);
}

/* The request is one line of at most CONTROL_REQUEST_MAX octets;
 * line.c bounds what a peer sending no newline can make us buffer. */
static void
control_read_cb(struct bufferevent *bev, void *arg)
{
	struct control_client	*c = arg;
	char			 line[CONTROL_REQUEST_MAX + 1];
	size_t			 len;
	bool			 crlf;

	switch (line_get(&c->reader, bufferevent_get_input(bev), line, &len,
	    &crlf)) {
	case LINE_AGAIN:
		break;
	case LINE_TOOLONG:
		control_error(c, "EINVAL", "request too long");
		break;
	case LINE_OK:
		if (strlen(line) != len) {
			control_error(c, "EINVAL", "NUL in request");
			break;
		}
		control_dispatch(c, line);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Accepting */

/* Root, the daemon's own user, and members of the socket's group (by
 * primary or supplementary group, from SO_PEERGROUPS) may talk to us:
 * the same set the file mode 0660 lets connect. */
static bool
control_peer_is_allowed(const struct control *ctl, int fd,
    const struct ucred *cred)
{
	gid_t		groups[CONTROL_GROUPS_MAX];
	socklen_t	len = sizeof(groups);
	size_t		i;

	if (cred->uid == 0 || cred->uid == geteuid() ||
	    cred->gid == ctl->sock_gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == -1)
		return false;
	for (i = 0; i < len / sizeof(groups[0]); i++)
		if (groups[i] == ctl->sock_gid)
			return true;
	return false;
}

/* A new admin connection.  The peer is identified by the kernel
 * (SO_PEERCRED), never by anything it says.  A refused peer gets one
 * error document, so that smartrelayctl can say why. */
static void
control_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct control		*ctl = arg;
	struct control_client	*c;
	struct ucred		 cred;
	socklen_t		 len = sizeof(cred);
	struct timeval		 rtv = { CONTROL_READ_SECS, 0 };
	struct timeval		 wtv = { CONTROL_WRITE_SECS, 0 };

	(void)evl;
	(void)sa;
	(void)salen;
	if (ctl->nclients >= CONTROL_CLIENTS_MAX ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_notice("control connection dropped: %s",
		    ctl->nclients >= CONTROL_CLIENTS_MAX ? "too many" :
		    "no peer credentials");
		evutil_closesocket(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->ctl = ctl;
	c->uid = cred.uid;
	c->pid = cred.pid;
	line_reader_init(&c->reader, CONTROL_REQUEST_MAX);
	c->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&ctl->clients, c, entry);
	ctl->nclients++;
	bufferevent_setcb(c->bev, control_read_cb, NULL, control_event_cb, c);
	bufferevent_set_timeouts(c->bev, &rtv, &wtv);
	if (!control_peer_is_allowed(ctl, fd, &cred)) {
		log_notice("control refused uid=%u pid=%ld reason=not-allowed",
		    (unsigned)cred.uid, (long)cred.pid);
		control_error(c, "EPERM", "permission denied: only root, the "
		    "daemon's user and its group may use the control socket");
		return;
	}
	bufferevent_enable(c->bev, EV_READ);
}

static void
control_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control	*ctl = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(ctl->evl);
}

/* Out of descriptors: pause a second rather than spin. */
static void
control_accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct control	*ctl = arg;
	struct timeval	 tv = { 1, 0 };

	log_warn("control accept");
	evconnlistener_disable(evl);
	evtimer_add(ctl->resume, &tv);
}

/* ------------------------------------------------------------------ */
/* The socket file */

/* Creates the parent directory of <path> (0750) when it is missing. */
static int
control_make_parent(const char *path)
{
	char	*dir, *slash;
	int	 rc = 0;

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
			log_warn("control cannot create directory %s", dir);
			rc = -1;
		}
	}
	free(dir);
	return rc;
}

/* Makes room at <path>: a socket nobody answers on is a leftover of a
 * dead daemon and goes; a live one, or anything else, stays and we
 * refuse to start.  Returns 0 or -1 after logging. */
static int
control_clear_stale(const struct sockaddr_un *addr)
{
	struct stat	st;
	int		fd, rc, err;

	if (lstat(addr->sun_path, &st) == -1) {
		if (errno == ENOENT)
			return 0;
		log_warn("control %s", addr->sun_path);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		log_warnx("control %s exists and is not a socket; remove it "
		    "or change control_socket", addr->sun_path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("control socket");
		return -1;
	}
	rc = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	err = errno;
	close(fd);
	if (rc == 0 || err == EAGAIN) {
		log_warnx("control another daemon answers on %s; not "
		    "starting a second one", addr->sun_path);
		return -1;
	}
	if (err != ECONNREFUSED) {
		errno = err;
		log_warn("control cannot check %s", addr->sun_path);
		return -1;
	}
	if (unlink(addr->sun_path) == -1 && errno != ENOENT) {
		log_warn("control cannot remove stale socket %s",
		    addr->sun_path);
		return -1;
	}
	log_info("control removed stale socket %s", addr->sun_path);
	return 0;
}

/* socket, 0660 before bind, bind, exactly 0660 after.  Returns the
 * non-blocking close-on-exec fd, or -1 after logging. */
static int
control_bind(struct control *ctl, const struct sockaddr_un *addr)
{
	struct stat	st;
	int		fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		log_warn("control socket");
		return -1;
	}
	/* Linux creates the file with the socket inode's mode minus the
	 * umask: it is never more open than 0660, even for an instant. */
	if (fchmod(fd, 0660) == -1 ||
	    bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) == -1) {
		log_warn("control cannot bind %s", addr->sun_path);
		close(fd);
		return -1;
	}
	if (chmod(addr->sun_path, 0660) == -1 ||
	    stat(addr->sun_path, &st) == -1) {
		log_warn("control cannot set the mode of %s", addr->sun_path);
		unlink(addr->sun_path);
		close(fd);
		return -1;
	}
	ctl->sock_gid = st.st_gid;
	return fd;
}

struct control *
control_new(struct event_base *base, const struct conf *conf,
    struct queue *queue, struct session_ctx *sessions)
{
	struct control		*ctl;
	struct sockaddr_un	 addr;
	int			 fd;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if (strcopy(addr.sun_path, conf->control_socket,
	    sizeof(addr.sun_path)) == -1) {
		log_warnx("control_socket %s: path too long",
		    conf->control_socket);
		return NULL;
	}
	if (control_make_parent(addr.sun_path) == -1 ||
	    control_clear_stale(&addr) == -1)
		return NULL;
	ctl = xcalloc(1, sizeof(*ctl));
	ctl->base = base;
	ctl->queue = queue;
	ctl->sessions = sessions;
	TAILQ_INIT(&ctl->clients);
	TAILQ_INIT(&ctl->waiting);
	if ((fd = control_bind(ctl, &addr)) == -1) {
		free(ctl);
		return NULL;
	}
	ctl->path = xstrdup(addr.sun_path);
	ctl->resume = evtimer_new(base, control_resume_cb, ctl);
	ctl->evl = evconnlistener_new(base, control_accept_cb, ctl,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (ctl->evl == NULL || ctl->resume == NULL) {
		log_warnx("control cannot listen on %s", ctl->path);
		if (ctl->evl == NULL)
			close(fd);
		control_free(ctl);
		return NULL;
	}
	evconnlistener_set_error_cb(ctl->evl, control_accept_error_cb);
	log_info("control listening path=%s", ctl->path);
	return ctl;
}

void
control_free(struct control *ctl)
{
	struct control_client	*c;

	if (ctl == NULL)
		return;
	while ((c = TAILQ_FIRST(&ctl->clients)) != NULL)
		control_client_free(c);
	/* A job whose client went reports to nobody now. */
	if (ctl->running != NULL)
		ctl->running->ctl = NULL;
	if (ctl->evl != NULL)
		evconnlistener_free(ctl->evl);
	if (ctl->resume != NULL)
		event_free(ctl->resume);
	/* A parent directory only root may write (systemd's
	 * RuntimeDirectory= of a unit without User=) keeps the file; the
	 * next start removes it as stale. */
	if (unlink(ctl->path) == -1 && errno != ENOENT) {
		if (errno == EACCES || errno == EPERM)
			log_debug("control cannot remove %s: %s", ctl->path,
			    strerror(errno));
		else
			log_warn("control cannot remove %s", ctl->path);
	}
	free(ctl->path);
	free(ctl);
}
