/*
 * smartrelayctl.c - the administrator's tool: asks the daemon over its
 * control socket (queue, show, flush, delete, hold, release, stats,
 * failed, requeue) and prints the JSON answer raw (--json) or as text
 * for humans; "test" (ctl_test.c) instead makes one real connection to
 * the upstream, as the daemon would, and explains in plain words what
 * is wrong and how to fix it.
 *
 * The daemon's answers are read with lib/json.c (strict, depth-bounded).
 * Text from the daemon may come from anyone (message headers, upstream
 * replies): control bytes are escaped before they reach the terminal.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "ctl_mailq.h"
#include "ctl_oauth.h"
#include "ctl_out.h"
#include "ctl_test.h"
#include "envelope.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define CTL_ANSWER_MAX		(256u * 1024 * 1024)	/* a huge queue */
#define CTL_TIMEOUT_SECS	60	/* daemon answer */

/* ------------------------------------------------------------------ */
/* Output for humans */

/* "5m ago", "in 2h", "now": <t> relative to <now>, both unix times,
 * in <buf>.  Returns the text. */
static const char *
ctl_rel(int64_t t, int64_t now, char *buf, size_t bufsz)
{
	char	d[32];

	if (t == now)
		return "now";
	str_fmt_duration((uint64_t)(t > now ? t - now : now - t), d,
	    sizeof(d));
	snprintf(buf, bufsz, t > now ? "in %s" : "%s ago", d);
	return buf;
}

/* The recipients of a message, one line each, indented. */
static void
ctl_print_rcpts(const struct json *msg, const char *indent)
{
	const struct json	*rc = json_get(msg, "recipients");
	const char		*dsn, *reply;
	size_t			 i;

	for (i = 0; rc != NULL && rc->type == JSON_ARR && i < rc->n; i++) {
		printf("%s%-8s <", indent, json_str(&rc->items[i], "state") ?
		    json_str(&rc->items[i], "state") : "?");
		ctl_put(stdout, json_str(&rc->items[i], "addr"), false);
		printf(">");
		dsn = json_str(&rc->items[i], "dsn");
		reply = json_str(&rc->items[i], "reply");
		if (dsn != NULL)
			printf(" %s", dsn);
		if (reply != NULL) {
			printf(" (");
			ctl_put(stdout, reply, false);
			printf(")");
		}
		printf("\n");
	}
}

/* "next attempt" of a message: "-" when held, "sending", or relative. */
static const char *
ctl_next(const struct json *m, int64_t now, char *buf, size_t bufsz)
{
	int64_t	next = json_int(m, "next_attempt");

	if (json_bool(m, "held"))
		return "-";
	if (json_bool(m, "sending"))
		return "sending";
	if (next <= now)
		return "now";
	return ctl_rel(next, now, buf, bufsz);
}

/* The verbs' text output.  Each takes the daemon's answer (an object
 * without "error") and returns the exit status: EX_SOFTWARE when the
 * answer lacks what the verb needs. */

/* "show": the envelope as aligned fields, then the header section as
 * it is in the spool (CRLF shown as line ends). */
static int
ctl_show_message(const struct json *m)
{
	int64_t		now = time_wall();
	int64_t		arrival = json_int(m, "arrival");
	char		date[64], rel[40];

	printf("id:           %s\n", json_str(m, "id") ? json_str(m, "id") :
	    "?");
	printf("arrival:      %s (%s)\n", time_fmt(arrival, TIME_ISO, date,
	    sizeof(date)), ctl_rel(arrival, now, rel, sizeof(rel)));
	printf("size:         %lld bytes\n", (long long)json_int(m, "size"));
	printf("sender:       <");
	ctl_put(stdout, json_str(m, "sender"), false);
	printf(">\nclient:       ");
	ctl_put(stdout, json_str(m, "client"), false);
	printf(" (helo ");
	ctl_put(stdout, json_str(m, "helo"), false);
	printf(")\nattempts:     %lld\n", (long long)json_int(m, "attempts"));
	printf("next attempt: %s\n", ctl_next(m, now, rel, sizeof(rel)));
	printf("held:         %s\n", json_bool(m, "held") ? "yes" : "no");
	if (json_str(m, "last_error") != NULL) {
		printf("last error:   ");
		ctl_put(stdout, json_str(m, "last_error"), false);
		printf("\n");
	}
	printf("recipients:\n");
	ctl_print_rcpts(m, "  ");
	printf("data file:    ");
	ctl_put(stdout, json_str(m, "data_path"), false);
	printf("\n\n");
	ctl_put(stdout, json_str(m, "headers"), true);
	if (json_bool(m, "headers_truncated"))
		printf("[... header section longer than shown]\n");
	return EX_OK;
}

/* "upstream.N.quota: 412/500 messages, 430/500 recipients in 24 h,
 * pacing, next send in 3h12m" when the upstream has a quota. */
static void
ctl_show_quota(const struct json *qj, size_t n, int64_t now)
{
	char	rel[40];
	int64_t	next;

	if (qj == NULL || qj->type != JSON_OBJ)
		return;
	printf("upstream.%zu.quota: %lld/%lld messages, %lld/%lld recipients "
	    "in 24 h", n, (long long)json_int(qj, "messages"),
	    (long long)json_int(qj, "limit_messages"),
	    (long long)json_int(qj, "recipients"),
	    (long long)json_int(qj, "limit_recipients"));
	if (json_bool(qj, "at_limit"))
		printf(", limit reached");
	else if (json_bool(qj, "pacing"))
		printf(", pacing");
	if ((next = json_int(qj, "next_send")) != 0)
		printf(", sending resumes %s", ctl_rel(next, now, rel,
		    sizeof(rel)));
	printf("\n");
}

/* One "upstream.N: name state [reason] ..." line per upstream section,
 * in failover order. */
static void
ctl_show_upstreams(const struct json *ups, int64_t now)
{
	const struct json	*u;
	const char		*reason;
	char			 rel[40];
	size_t			 i;
	int64_t			 at;

	if (ups == NULL || ups->type != JSON_ARR)
		return;
	for (i = 0; i < ups->n; i++) {
		u = &ups->items[i];
		printf("upstream.%zu: ", i + 1);
		ctl_put(stdout, json_str(u, "name"), false);
		printf(" ");
		ctl_put(stdout, json_str(u, "state"), false);
		printf(" connections=%lld", (long long)json_int(u,
		    "connections"));
		if ((at = json_int(u, "next_probe")) != 0)
			printf(" next-probe=%s", ctl_rel(at, now, rel,
			    sizeof(rel)));
		else if (json_bool(u, "probing"))
			printf(" next-probe=now");
		if ((reason = json_str(u, "reason")) != NULL &&
		    reason[0] != '\0') {
			printf(" reason=\"");
			ctl_put(stdout, reason, false);
			printf("\"");
		}
		printf("\n");
		ctl_show_quota(json_get(u, "quota"), i + 1, now);
	}
}

/* "stats": "key: value" lines with the JSON keys, easy to grep. */
static int
ctl_show_stats(const struct json *s)
{
	static const char *const counters[] = { "accepted", "sent",
	    "deferred", "bounced", "expired", "reports", "depth", "held" };
	int64_t		 now = json_int(s, "now"), last;
	char		 buf[64], rel[40];
	size_t		 i;

	for (i = 0; i < nitems(counters); i++)
		printf("%s: %lld\n", counters[i],
		    (long long)json_int(s, counters[i]));
	printf("oldest_age: %s\n", str_fmt_duration(
	    (uint64_t)json_int(s, "oldest_age_s"), buf, sizeof(buf)));
	printf("upstream: ");
	ctl_put(stdout, json_str(s, "upstream"), false);
	if (json_str(s, "upstream_reason") != NULL &&
	    json_str(s, "upstream_reason")[0] != '\0') {
		printf("\nupstream_reason: ");
		ctl_put(stdout, json_str(s, "upstream_reason"), false);
	}
	printf("\nconnections: %lld\n", (long long)json_int(s,
	    "connections"));
	if ((last = json_int(s, "last_sent")) != 0)
		printf("last_sent: %s (%s)\n", time_fmt(last, TIME_ISO, buf,
		    sizeof(buf)), ctl_rel(last, now, rel, sizeof(rel)));
	else
		printf("last_sent: never\n");
	printf("clients: %lld\n", (long long)json_int(s, "clients"));
	ctl_show_upstreams(json_get(s, "upstreams"), now);
	return EX_OK;
}

/* flush, delete, hold, release, requeue: one line saying what
 * happened. */
static int
ctl_show_action(const struct json *doc)
{
	const char	*action = json_str(doc, "action");
	const char	*id = json_str(doc, "id");

	if (action == NULL)
		return EX_SOFTWARE;
	if (strcmp(action, "flush") == 0 && id == NULL)
		printf("flush: every deferred message is due now (%lld in "
		    "the queue)\n", (long long)json_int(doc, "messages"));
	else if (strcmp(action, "flush") == 0)
		printf("%s: delivery attempt scheduled now\n", id);
	else if (strcmp(action, "delete") == 0)
		printf("%s: deleted (no report sent)\n", id ? id : "?");
	else if (strcmp(action, "hold") == 0)
		printf("%s: on hold; \"release\" lets it go again\n",
		    id ? id : "?");
	else if (strcmp(action, "requeue") == 0)
		printf("%s: back in the queue; delivery attempt scheduled "
		    "now\n", id ? id : "?");
	else
		printf("%s: released; delivery attempt scheduled now\n",
		    id ? id : "?");
	return EX_OK;
}

/* ------------------------------------------------------------------ */
/* The control socket */

/* Connects to the control socket at <path>.  Returns the fd, or -1
 * with the exit code in *rc after saying why on stderr. */
static int
ctl_connect(const char *path, int *rc)
{
	struct sockaddr_un	 addr;
	struct timeval		 tv = { CTL_TIMEOUT_SECS, 0 };
	int			 fd, err;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if (strcopy(addr.sun_path, path, sizeof(addr.sun_path)) == -1) {
		fprintf(stderr, "smartrelayctl: control_socket %s: path too "
		    "long\n", path);
		*rc = EX_CONFIG;
		return -1;
	}
	/* The daemon answers at once; the timeouts only bound a hang. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == -1) {
		fprintf(stderr, "smartrelayctl: socket: %s\n", strerror(errno));
		*rc = EX_OSERR;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == -1) {
		err = errno;
		close(fd);
		if (err == EACCES || err == EPERM) {
			fprintf(stderr, "smartrelayctl: %s: permission denied: "
			    "run as root or as a member of the socket's "
			    "group\n", path);
			*rc = EX_NOPERM;
		} else {
			fprintf(stderr, "smartrelayctl: cannot connect to %s: "
			    "%s: is smartrelayd running?\n", path,
			    strerror(err));
			*rc = EX_UNAVAILABLE;
		}
		return -1;
	}
	return fd;
}

/* Reads until the daemon closes, at most CTL_ANSWER_MAX octets, into
 * a new NUL-terminated buffer.  Returns it (caller frees) with its
 * length in *lenp, or NULL with errno set. */
static char *
ctl_read_all(int fd, size_t *lenp)
{
	size_t	 len = 0, cap = 65536;
	char	*buf;
	ssize_t	 n;

	buf = xmalloc(cap);
	for (;;) {
		if (len + 1 == cap) {
			if (cap > CTL_ANSWER_MAX)
				break;
			buf = xrealloc(buf, cap *= 2);
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n == -1 && errno == EINTR)
			continue;
		/* A reset after the answer is the daemon closing with our
		 * request unread: the answer is complete. */
		if (n == 0 || (n == -1 && errno == ECONNRESET))
			break;
		if (n == -1) {
			free(buf);
			return NULL;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

/* Connects, sends <req> and reads the whole answer into *out (caller
 * frees; NUL-terminated).  Returns EX_OK or an exit code after saying
 * why on stderr. */
static int
ctl_request(const char *path, const char *req, char **out, size_t *outlen)
{
	int	fd, rc;

	if ((fd = ctl_connect(path, &rc)) == -1)
		return rc;
	/* The daemon may have answered and closed already (a refused
	 * peer): its answer is still there to read. */
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) == -1 &&
	    errno != EPIPE && errno != ECONNRESET) {
		fprintf(stderr, "smartrelayctl: %s: send: %s\n", path,
		    strerror(errno));
		close(fd);
		return EX_UNAVAILABLE;
	}
	*out = ctl_read_all(fd, outlen);
	close(fd);
	if (*out == NULL) {
		fprintf(stderr, "smartrelayctl: %s: %s\n", path,
		    errno == EAGAIN ? "no answer in time" : strerror(errno));
		return EX_TEMPFAIL;
	}
	if (*outlen == 0) {
		fprintf(stderr, "smartrelayctl: %s: the daemon closed the "
		    "connection without an answer\n", path);
		free(*out);
		return EX_UNAVAILABLE;
	}
	return EX_OK;
}

/* The daemon's error codes (control.c) and our exit statuses; any
 * other code (EINVAL, EIO) means we and the daemon disagree or it
 * failed: EX_SOFTWARE. */
static const struct {
	const char	*code;
	int		 exit;
} ctl_errors[] = {
	{ "ENOENT",	EX_DATAERR },
	{ "EHELD",	EX_DATAERR },
	{ "EEXIST",	EX_DATAERR },
	{ "EDONE",	EX_DATAERR },
	{ "EBUSY",	EX_TEMPFAIL },
	{ "EPERM",	EX_NOPERM },
};

/* The exit status for a failed result's or an error's <code>. */
static int
ctl_code_exit(const char *code)
{
	size_t	i;

	for (i = 0; code != NULL && i < nitems(ctl_errors); i++)
		if (strcmp(code, ctl_errors[i].code) == 0)
			return ctl_errors[i].exit;
	return EX_SOFTWARE;
}

/* The exit status for an {"error": ...} answer. */
static int
ctl_error_exit(const struct json *doc)
{
	return ctl_code_exit(json_str(doc, "code"));
}

/* Every verb, its arguments (none, one message id, ids or ALL, or
 * optionally those), its text output, and what it did to a message
 * for a list of several; "test" does not talk to the daemon. */
enum ctl_arg { CTL_ARG_NONE, CTL_ARG_ID, CTL_ARG_IDS, CTL_ARG_OPT_IDS };

static const struct ctl_verb {
	const char	*verb;
	enum ctl_arg	 arg;
	int		(*show)(const struct json *);
	const char	*done;		/* "ID: deleted" */
} ctl_verbs[] = {
	{ "queue",	CTL_ARG_NONE,	ctl_mailq_queue,	NULL },
	{ "show",	CTL_ARG_ID,	ctl_show_message,	NULL },
	{ "stats",	CTL_ARG_NONE,	ctl_show_stats,		NULL },
	{ "flush",	CTL_ARG_OPT_IDS, ctl_show_action,	"scheduled" },
	{ "delete",	CTL_ARG_IDS,	ctl_show_action,	"deleted" },
	{ "hold",	CTL_ARG_IDS,	ctl_show_action,	"held" },
	{ "release",	CTL_ARG_IDS,	ctl_show_action,	"released" },
	{ "failed",	CTL_ARG_NONE,	ctl_mailq_failed,	NULL },
	{ "requeue",	CTL_ARG_IDS,	ctl_show_action,	"requeued" },
	{ "test",	CTL_ARG_NONE,	NULL,			NULL },
};

/* Ids per request: CONTROL_REQUEST_MAX (4096) holds about 240. */
#define CTL_IDS_PER_REQUEST	200

/* What a run over several ids has seen so far. */
struct ctl_ops {
	const struct ctl_verb	*v;
	bool			 raw;
	size_t			 done;
	size_t			 failed;
	int			 rc;		/* of the first failure */
};

/* The results of one answer: a line per id (failures on stderr), or
 * with --json the result objects, re-written into the one document. */
static int
ctl_ops_answer(struct ctl_ops *o, const struct json *doc)
{
	const struct json	*res = json_get(doc, "results"), *r;
	const char		*id, *code;
	size_t			 i;

	if (res == NULL || res->type != JSON_ARR)
		return -1;
	for (i = 0; i < res->n; i++) {
		r = &res->items[i];
		if ((id = json_str(r, "id")) == NULL)
			return -1;
		code = json_str(r, "code");
		if (o->raw) {
			printf("%s{\"id\": ", o->done + o->failed > 0 ?
			    ",\n" : "");
			ctl_put_json(stdout, id);
			printf(", \"ok\": %s", json_bool(r, "ok") ? "true" :
			    "false");
			if (!json_bool(r, "ok")) {
				printf(", \"code\": ");
				ctl_put_json(stdout, code);
				printf(", \"error\": ");
				ctl_put_json(stdout, json_str(r, "error"));
			}
			printf("}");
		} else if (json_bool(r, "ok"))
			printf("%s: %s\n", id, o->v->done);
		else {
			fprintf(stderr, "smartrelayctl: %s: ", id);
			ctl_put(stderr, json_str(r, "error"), false);
			fprintf(stderr, "\n");
		}
		if (json_bool(r, "ok"))
			o->done++;
		else if (o->failed++ == 0)
			o->rc = ctl_code_exit(code);
	}
	return 0;
}

/* One request for <ids> (or "ALL"), its answer counted and printed.
 * Returns EX_OK or the exit status of a failed request. */
static int
ctl_ops_request(struct ctl_ops *o, const char *path, char **ids, size_t n)
{
	struct json	 doc;
	char		*req, *text;
	size_t		 i, len, off;
	int		 rc;

	req = xmalloc(strlen(o->v->verb) + n * (ENVELOPE_ID_LEN + 1) + 2);
	off = (size_t)sprintf(req, "%s", o->v->verb);
	for (i = 0; i < n; i++)
		off += (size_t)sprintf(req + off, " %s", ids[i]);
	sprintf(req + off, "\n");
	rc = ctl_request(path, req, &text, &len);
	free(req);
	if (rc != EX_OK)
		return rc;
	if (json_parse(text, len, &doc) == -1 || doc.type != JSON_OBJ) {
		free(text);
		fprintf(stderr, "smartrelayctl: protocol error: the daemon's "
		    "answer is not the JSON expected\n");
		return EX_SOFTWARE;
	}
	if (json_get(&doc, "error") != NULL) {
		rc = ctl_error_exit(&doc);
		fprintf(stderr, "smartrelayctl: %s: ", o->v->verb);
		ctl_put(stderr, json_str(&doc, "error"), false);
		fprintf(stderr, "\n");
	} else if (ctl_ops_answer(o, &doc) == -1) {
		fprintf(stderr, "smartrelayctl: protocol error: unexpected "
		    "answer\n");
		rc = EX_SOFTWARE;
	}
	json_free(&doc);
	free(text);
	return rc;
}

/*
 * delete, hold, release or flush on several ids, or on ALL: requests of
 * at most CTL_IDS_PER_REQUEST ids each, a line per message and a count
 * at the end (with --json, one document: {"action", "results", "done",
 * "failed", "ok"}, as the daemon's answer to one request).  Returns 0
 * when every message was done, else the exit status of the first that
 * was not, or of a request that failed (the messages before it stay
 * done).
 */
static int
ctl_run_ops(const struct conf *conf, const struct ctl_verb *v, char **ids,
    size_t nids, bool raw)
{
	struct ctl_ops	o;
	size_t		i, n;
	int		rc = EX_OK;

	memset(&o, 0, sizeof(o));
	o.v = v;
	o.raw = raw;
	if (raw)
		printf("{\"action\": \"%s\", \"results\": [", v->verb);
	for (i = 0; i < nids && rc == EX_OK; i += n) {
		n = nids - i < CTL_IDS_PER_REQUEST ? nids - i :
		    CTL_IDS_PER_REQUEST;
		rc = ctl_ops_request(&o, conf->control_socket, ids + i, n);
	}
	if (raw)
		printf("], \"done\": %zu, \"failed\": %zu, \"ok\": %s}\n",
		    o.done, o.failed, o.failed == 0 && rc == EX_OK ? "true" :
		    "false");
	else
		printf("%s %zu message%s%s", v->done, o.done, o.done == 1 ?
		    "" : "s", o.failed > 0 ? "" : "\n");
	if (!raw && o.failed > 0)
		printf("; %zu failed\n", o.failed);
	return rc != EX_OK ? rc : o.failed > 0 ? o.rc : EX_OK;
}

/* One request to the daemon, its answer printed: raw with --json
 * (errors included, for scripts), else as text, errors on stderr.
 * Returns the exit status. */
static int
ctl_run(const struct conf *conf, const struct ctl_verb *v, char **args,
    size_t nargs, bool raw)
{
	struct json	 doc;
	const char	*arg = nargs > 0 ? args[0] : NULL;
	char		 req[64], *text;
	size_t		 len;
	int		 rc;

	/* "flush ALL" is the daemon's one "flush". */
	if (nargs > 1 || (nargs == 1 && strcmp(arg, "ALL") == 0 &&
	    strcmp(v->verb, "flush") != 0))
		return ctl_run_ops(conf, v, args, nargs, raw);
	snprintf(req, sizeof(req), "%s%s%s\n", v->verb, arg ? " " : "",
	    arg ? arg : "");
	if ((rc = ctl_request(conf->control_socket, req, &text, &len)) != 0)
		return rc;
	if (json_parse(text, len, &doc) == -1 || doc.type != JSON_OBJ) {
		fprintf(stderr, "smartrelayctl: protocol error: the daemon's "
		    "answer is not the JSON expected\n");
		free(text);
		return EX_SOFTWARE;
	}
	if (raw)
		fwrite(text, 1, len, stdout);
	if (json_get(&doc, "error") != NULL) {
		rc = ctl_error_exit(&doc);
		if (!raw) {
			fprintf(stderr, "smartrelayctl: %s%s",
			    arg ? arg : "", arg ? ": " : "");
			ctl_put(stderr, json_str(&doc, "error"), false);
			fprintf(stderr, "\n");
		}
	} else if (!raw)
		rc = v->show(&doc);
	else
		rc = EX_OK;
	if (rc == EX_SOFTWARE && json_get(&doc, "error") == NULL)
		fprintf(stderr, "smartrelayctl: protocol error: unexpected "
		    "answer\n");
	json_free(&doc);
	free(text);
	return rc;
}

/* ------------------------------------------------------------------ */

static void
ctl_usage(void)
{
	/* As conf_default_path() picks: the build's path when it exists,
	 * else the system one (the path an error names). */
	bool	two = strcmp(CONF_DEFAULT_PATH, CONF_SYSTEM_PATH) != 0;

	fprintf(stderr, "usage: smartrelayctl [-f file] [--json] [-v] verb "
	    "[id ...]\n"
	    "verbs:\n"
	    "  queue         list the queued messages (as Postfix's mailq)\n"
	    "  show ID       one message: envelope and headers\n"
	    "  flush [ID...] attempt every deferred message (or these) now\n"
	    "  hold ID...    keep messages from being delivered\n"
	    "  release ID... let held messages go again\n"
	    "  delete ID...  remove messages from the queue, without a "
	    "report\n"
	    "  failed        list the messages kept in failed/\n"
	    "  requeue ID... send messages in failed/ again, to the "
	    "recipients\n"
	    "                that failed (ID... may be ALL; ids are "
	    "case-insensitive)\n"
	    "  stats         counters and upstream state\n"
	    "  test          try one real login to the upstream\n"
	    "  oauth-setup   get the OAuth refresh token for auth = xoauth2\n"
	    "                [--manual] [--port N] [--auth-url URL] "
	    "[--upstream NAME]\n"
	    "configuration: -f, else $SMARTRELAY_CONFIG, else\n  %s%s%s\n",
	    CONF_DEFAULT_PATH, two ? " if it exists, else\n  " : "",
	    two ? CONF_SYSTEM_PATH : "");
	exit(EX_USAGE);
}

/* The verb named <name> if <nargs> arguments <args> suit it, else NULL
 * after saying why (ctl_usage() for a wrong verb or argument count).
 * Ids are case-insensitive: they are lowercased in place, as the
 * daemon would, and "ALL" in any case becomes "ALL". */
static const struct ctl_verb *
ctl_verb_find(const char *name, char **args, size_t nargs)
{
	const struct ctl_verb	*v = NULL;
	char			*p;
	size_t			 i;

	for (i = 0; i < nitems(ctl_verbs) && v == NULL; i++)
		if (strcmp(name, ctl_verbs[i].verb) == 0)
			v = &ctl_verbs[i];
	if (v == NULL || (nargs > 0 && v->arg == CTL_ARG_NONE) ||
	    (nargs != 1 && v->arg == CTL_ARG_ID) ||
	    (nargs == 0 && v->arg == CTL_ARG_IDS))
		ctl_usage();
	for (i = 0; i < nargs; i++) {
		if (strcasecmp(args[i], "ALL") == 0 && v->arg != CTL_ARG_ID) {
			if (nargs > 1) {
				fprintf(stderr, "smartrelayctl: ALL stands "
				    "alone\n");
				return NULL;
			}
			memcpy(args[i], "ALL", 3);
			continue;
		}
		for (p = args[i]; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		/* Checked here too so that a typo never reaches the
		 * daemon. */
		if (!envelope_id_is_valid(args[i])) {
			fprintf(stderr, "smartrelayctl: \"");
			ctl_put(stderr, args[i], false);
			fprintf(stderr, "\" is not a message id (16 hex "
			    "digits, as \"queue\" shows)\n");
			return NULL;
		}
	}
	return v;
}

int
main(int argc, char *argv[])
{
	static const struct option	 longopts[] = {
		{ "file",	required_argument,	NULL, 'f' },
		{ "json",	no_argument,		NULL, 'j' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 },
	};
	const struct ctl_verb	*v = NULL;
	const char		*path = getenv("SMARTRELAY_CONFIG");
	struct conf		*conf;
	char			 errbuf[4096];
	bool			 raw = false, verbose = false;
	int			 ch, rc;

	/* Its own options (--manual, --port ...): see ctl_oauth.c. */
	if (ctl_oauth_is_verb(argc, argv))
		return ctl_oauth_main(argc, argv);
	while ((ch = getopt_long(argc, argv, "f:jvh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			path = optarg;
			break;
		case 'j':
			raw = true;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			ctl_usage();
		}
	}
	if (optind >= argc)
		ctl_usage();
	if ((v = ctl_verb_find(argv[optind], argv + optind + 1,
	    (size_t)(argc - optind - 1))) == NULL)
		return EX_USAGE;
	if (path == NULL || path[0] == '\0')
		path = conf_default_path();
	/* Library warnings (TLS setup) on stderr; -v shows the dialog. */
	log_init(false, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
	    "smartrelayctl");
	if ((conf = conf_load(path, errbuf, sizeof(errbuf))) == NULL) {
		fprintf(stderr, "%s", errbuf);
		if (errbuf[0] != '\0' && errbuf[strlen(errbuf) - 1] != '\n')
			fputc('\n', stderr);
		return EX_CONFIG;
	}
	if (strcmp(v->verb, "test") == 0)
		rc = ctl_test(conf);
	else
		rc = ctl_run(conf, v, argv + optind + 1,
		    (size_t)(argc - optind - 1), raw);
	conf_free(conf);
	if (fflush(stdout) == EOF && rc == EX_OK)
		rc = EX_IOERR;
	return rc;
}
