/*
 * relay_head.c - the From: rewrite of one outgoing message
 * (relay_head.h): which address the upstream sends as, the name of the
 * client network for the display name, and the header block rewritten.
 */
#include "config.h"

#include "relay_head.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "envelope.h"
#include "log.h"
#include "rewrite.h"
#include "smtp.h"
#include "util.h"

/* With from rewrite = "account": the address this upstream sends as
 * (from_address, else username), or NULL when it is not a mailbox (then
 * the message goes as it is).  NULL in "keep" mode. */
static const char *
relay_account(const struct relay_head *t)
{
	const char	*a = t->up->from_address[0] != '\0' ?
			    t->up->from_address : t->up->username;

	if (t->conf->from_rewrite != CONF_FROM_ACCOUNT)
		return NULL;
	if (strlen(a) >= SMTP_PATH_MAX || !smtp_mailbox_is_valid(a)) {
		log_warnx("relay from id=%s not rewritten: upstream %s has "
		    "no from_address or username that is an address",
		    t->env->id, t->up->name);
		return NULL;
	}
	return a;
}

/* The name of the client network the message came from, or NULL. */
static const char *
relay_client_name(const struct relay_head *t)
{
	struct sockaddr_storage		 ss;
	struct sockaddr_in		*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6		*sin6 = (struct sockaddr_in6 *)&ss;
	const struct conf_network	*net;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, t->env->client, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, t->env->client, &sin6->sin6_addr) == 1)
		sin6->sin6_family = AF_INET6;
	else
		return NULL;	/* "local": smartrelay-sendmail */
	net = conf_network_find(t->conf, (const struct sockaddr *)&ss);
	return net != NULL && net->name[0] != '\0' ? net->name : NULL;
}

/* Rewrites the header block <buf>/<hlen> into t->head. */
static void
relay_head_rewrite(struct relay_head *t, const char *acct, const char *buf,
    size_t hlen)
{
	struct rewrite_params	 pa;
	struct buf		 out = BUF_INIT;
	enum rewrite_rc		 rc;

	pa.account = acct;
	pa.display = relay_client_name(t);
	pa.suffix = t->conf->from_suffix;
	rc = rewrite_from(buf, hlen, &pa, &out);
	if (rc == REWRITE_OK) {
		t->head = buf_steal(&out, &t->headlen);
		t->head_skip = hlen;
		t->size = t->env->size >= hlen ?
		    t->env->size - hlen + t->headlen : t->headlen;
		log_debug("relay from id=%s rewritten account=%s", t->env->id,
		    acct);
	} else if (rc != REWRITE_UNCHANGED)
		log_warnx("relay from id=%s not rewritten: %s", t->env->id,
		    rewrite_rc_str(rc));
	buf_free(&out);
}

/* Prepares the From: rewrite of the message (see rewrite.h): reads at
 * most REWRITE_HEADER_MAX octets of the data file, so memory stays
 * bounded whatever the message.  Sets t->size.  Returns 0, or -1 with
 * errno set when the file cannot be read. */
int
relay_head_prepare(struct relay_head *t)
{
	const char	*acct;
	char		*buf;
	size_t		 len = 0, hlen;
	ssize_t		 n = 1;
	enum rewrite_rc	 rc;

	t->size = t->env->size;
	if ((acct = t->account = relay_account(t)) == NULL)
		return 0;
	buf = xmalloc(REWRITE_HEADER_MAX);
	while (len < REWRITE_HEADER_MAX && n != 0) {
		n = read(t->fd, buf + len, REWRITE_HEADER_MAX - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			free(buf);
			return -1;
		}
		len += (size_t)n;
	}
	rc = rewrite_header_len(buf, len, n == 0, &hlen);
	if (rc == REWRITE_OK)
		relay_head_rewrite(t, acct, buf, hlen);
	else
		log_warnx("relay from id=%s not rewritten: %s", t->env->id,
		    rewrite_rc_str(rc));
	free(buf);
	return 0;
}

void
relay_head_cleanup(struct relay_head *t)
{
	free(t->head);
	t->head = NULL;
}
