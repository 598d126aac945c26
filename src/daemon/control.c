/*
 * control.c - the control socket: one request line in, one JSON
 * document out, then close.
 *
 * The socket file is created 0660 (fchmod before bind, so it is never
 * more open than that, then chmod to exactly 0660), and every peer is
 * checked with SO_PEERCRED besides.  Answers are appended to the
 * bufferevent's output as they are formed (controljson.h).  The
 * operations on messages (hold, release, delete, requeue, flush ID) are
 * controljob.c's: those that change the disk run on the workers and are
 * answered only once their change is on stable storage.
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
#include "controljob.h"
#include "controljson.h"
#include "envelope.h"
#include "line.h"
#include "log.h"
#include "queue.h"
#include "session.h"
#include "spool.h"
#include "upstream.h"
#include "util.h"

#define CONTROL_CLIENTS_MAX	16	/* admin connections at once */
#define CONTROL_READ_SECS	10	/* to send the request line */
#define CONTROL_WRITE_SECS	60	/* to read the whole answer */
#define CONTROL_GROUPS_MAX	256	/* peer's supplementary groups */

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
	struct controljob	*job;		/* hold, delete...; or NULL */
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
	struct controljob_sched	*jobs;
};

/* ------------------------------------------------------------------ */
/* Requests */

/* Closes the connection (whatever is unwritten is lost: only on
 * timeout, error or control_free()). */
static void
control_client_free(struct control_client *c)
{
	TAILQ_REMOVE(&c->ctl->clients, c, entry);
	c->ctl->nclients--;
	controljob_cancel(c->job);
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
	controljson_error(bufferevent_get_output(c->bev), code, msg);
	control_answered(c);
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
	controljson_env(l->out, env, l->now);
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
	controljson_env(l->out, env, l->now);
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
	controljson_env(out, &env, time_wall());
	evbuffer_add_printf(out, ", \"data_path\": ");
	controljson_str(out, data);
	controljson_headers(out, data);
	evbuffer_add_printf(out, "}\n");
	envelope_cleanup(&env);
	control_answered(c);
}

/* Each upstream section, in failover order, as JSON objects. */
static void
control_json_upstreams(struct evbuffer *out, struct queue *q)
{
	struct upstream_stats		st;
	unsigned int			i;

	for (i = 0; i < queue_upstreams(q); i++) {
		queue_get_upstream(q, i, &st);
		evbuffer_add_printf(out, "%s{\"name\": ", i > 0 ? ", " : "");
		controljson_str(out, st.name);
		evbuffer_add_printf(out, ", \"state\": \"%s\", \"reason\": ",
		    health_state_name(st.state));
		controljson_str(out, st.reason);
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
	controljson_str(out, st.upstream_reason);
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

/* The answer is complete: close once it is written. */
static void
control_job_done(void *arg)
{
	control_answered(arg);
}

/* The per-message operations (controljob.h has the answers' forms), on
 * the ids given or on every message <sel> picks. */
static void
control_cmd_ops(struct control_client *c, const char *verb,
    controljob_op_fn op, char **ids, size_t nids, bool all,
    enum queue_select sel)
{
	struct queue_id	*list;
	size_t		 i, n;

	/* A snapshot: deleting as we go changes the queue's list. */
	if (all)
		list = queue_ids(c->ctl->queue, sel, &n);
	else {
		list = xcalloc(nids, sizeof(*list));
		for (i = 0; i < nids; i++)
			memcpy(list[i].id, ids[i], sizeof(list[i].id));
		n = nids;
	}
	/* One request per connection: read no more meanwhile. */
	bufferevent_disable(c->bev, EV_READ);
	if (nids != 1 || all)
		log_info("control %s%s count=%zu uid=%u pid=%ld", verb, all ?
		    " ALL" : "", n, (unsigned)c->uid, (long)c->pid);
	c->job = controljob_start(c->ctl->jobs, verb, op, list, n,
	    nids == 1 && !all, bufferevent_get_output(c->bev), c->uid, c->pid,
	    control_job_done, c);
	if (c->job == NULL)
		control_error(c, "EIO", "out of event resources");
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
	controljob_op_fn op;
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
	if ((fd = control_bind(ctl, &addr)) == -1) {
		free(ctl);
		return NULL;
	}
	ctl->jobs = controljob_sched_new(base, queue);
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
	controljob_sched_free(ctl->jobs);
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
