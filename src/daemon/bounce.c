/*
 * bounce.c - the failure report for a message's failed recipients (see
 * bounce.h).  The report is composed by dsn.c from the envelope and the
 * original's header section, addressed as mail to its sender would be
 * (route.c), and committed by the spool's workers.
 */
#include "config.h"

#include "bounce.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "dsn.h"
#include "envelope.h"
#include "log.h"
#include "route.h"
#include "spool.h"
#include "util.h"

#define BOUNCE_HEADERS_MAX	(64 * 1024)

/* Reads the header section of message <id> (up to the first empty
 * line, bounded) for the failure report.  Caller frees. */
static char *
bounce_read_headers(struct spool *spool, const char *id, size_t *len)
{
	char	 path[1024], *buf, *end;
	ssize_t	 n;
	int	 fd;

	*len = 0;
	buf = xmalloc(BOUNCE_HEADERS_MAX + 1);
	buf[0] = '\0';
	if (spool_data_path(spool, id, path, sizeof(path)) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return buf;
	n = read(fd, buf, BOUNCE_HEADERS_MAX);
	close(fd);
	if (n <= 0)
		return buf;
	buf[n] = '\0';
	if ((end = strstr(buf, "\r\n\r\n")) != NULL)
		end[2] = '\0';
	else if ((end = strrchr(buf, '\n')) != NULL)
		end[1] = '\0';	/* whole lines only */
	*len = strlen(buf);
	return buf;
}

/* A failure report being committed, for the log line once it is. */
struct bounce {
	char			 id[ENVELOPE_ID_LEN + 1];	/* original */
	char			*to;
	char			*list;		/* " rewritten=..." or "" */
	bounce_done_cb		 done;
	void			*arg;
};

/* The report is on disk (or could not be): tell the caller. */
static void
bounce_commit_cb(const char *id, int err, void *arg)
{
	struct bounce	*r = arg;

	if (err != 0) {
		errno = err;
		log_warn("queue id=%s cannot commit the failure report",
		    r->id);
		r->done(NULL, r->arg);
	} else {
		log_info("queue id=%s failure report id=%s to=<%s>%s",
		    r->id, id, r->to, r->list);
		r->done(id, r->arg);
	}
	free(r->to);
	free(r->list);
	free(r);
}

int
bounce_start(struct spool *spool, const struct conf *conf,
    const struct envelope *env, bounce_done_cb done, void *arg)
{
	const char		*to = conf->queue.bounce_to;
	struct spool_msg	*msg;
	struct route_result	 res;
	struct bounce		*r;
	char			*headers, *text;
	char			 err[256], list[1024] = "";
	size_t			 hlen, tlen, i;
	int			 rc;

	if (env->sender[0] == '\0')
		return -1;
	if (to[0] == '\0')
		to = env->sender;
	headers = bounce_read_headers(spool, env->id, &hlen);
	if (dsn_compose(env, conf->hostname, to, time_wall(), headers,
	    hlen, &text, &tlen) == -1) {
		free(headers);
		return -1;
	}
	free(headers);
	/* A local sender (a scanner@domain) has no mailbox either: its
	 * report goes where mail to it would go. */
	if (route_rcpt(&conf->route, to, &res, err, sizeof(err)) == -1) {
		route_result_cleanup(&res);
		memset(&res, 0, sizeof(res));
	}
	msg = spool_msg_new(spool, "", "127.0.0.1", conf->hostname);
	rc = msg != NULL ? 0 : -1;
	if (rc == 0 && res.naddrs == 0)
		rc = spool_msg_add_rcpt(msg, to);
	for (i = 0; rc == 0 && i < res.naddrs; i++)
		rc = spool_msg_add_rcpt(msg, res.addrs[i]);
	if (res.how != ROUTE_REMOTE && res.naddrs > 0) {
		strcopy(list, " rewritten=", sizeof(list));
		route_result_fmt(&res, list + strlen(list),
		    sizeof(list) - strlen(list));
	}
	route_result_cleanup(&res);
	if (rc == -1 || spool_msg_write(msg, text, tlen) == -1) {
		log_warnx("queue id=%s cannot queue the failure report",
		    env->id);
		if (msg != NULL)
			spool_abort(msg);
		free(text);
		return -1;
	}
	free(text);
	r = xcalloc(1, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", env->id);
	r->to = xstrdup(to);
	r->list = xstrdup(list);
	r->done = done;
	r->arg = arg;
	spool_commit_start(msg, bounce_commit_cb, r);
	return 0;
}
