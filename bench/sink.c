/*
 * sink.c - a fast local SMTP sink with STARTTLS and AUTH, for the drain
 * benchmark (bench/drain.py): it plays Gmail, receives and discards.
 *
 * One thread, one libevent loop, bufferevent_openssl for TLS.  Speaks
 * EHLO/HELO, STARTTLS, AUTH PLAIN and LOGIN, MAIL, RCPT, DATA, RSET,
 * NOOP and QUIT.  EHLO offers PIPELINING SIZE 35882577 8BITMIME
 * ENHANCEDSTATUSCODES and, before TLS, STARTTLS, after TLS, AUTH PLAIN
 * LOGIN.  Commands are handled strictly in input order and every reply
 * is appended to the output in that order, so pipelined groups are
 * answered correctly.  DATA is read until <CRLF>.<CRLF> and thrown
 * away; only messages and octets are counted.  MAIL requires AUTH
 * (unless -A), AUTH requires TLS, and the credentials must be those of
 * -u and -w.
 *
 * The running count goes to a status file (-s FILE, written by tmp +
 * rename) every -e messages (100), when the count reaches -N, at every
 * QUIT or closed connection, and on SIGTERM/SIGINT.  Its one line is
 *
 *	count N bytes B conns C last T
 *
 * with T the CLOCK_MONOTONIC time (seconds) of the last message's end
 * of data, the same clock as Python's time.monotonic() on Linux.  The
 * listening ports are printed on stdout at start, as one JSON line:
 * {"port": P, "tls_port": Q} (Q is 0 without -P).
 *
 * Self-test ("the sink's own ceiling"): with -T N the sink forks -n
 * client processes (1) that each connect to the plain port, STARTTLS,
 * AUTH PLAIN, then send N/n messages of -z octets (1024) over that one
 * connection, pipelining whole messages (MAIL, RCPT, DATA, body, dot)
 * with at most -W (16) messages in flight; it prints one JSON line with
 * messages/s and the sink's CPU per message, and exits.
 *
 * build: cc -O2 -o sink bench/sink.c $(pkg-config --cflags --libs
 *        libevent libevent_openssl openssl)
 * usage: sink -c CERT -k KEY [-p PORT] [-P TLSPORT] [-u USER] [-w PASS]
 *             [-s FILE] [-e EVERY] [-N EXPECT] [-A]
 *             [-T N [-n CONNS] [-W WINDOW] [-z SIZE]]
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
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define SINK_LINE_MAX	2048	/* longest command line accepted */
#define SINK_SIZE	35882577ULL	/* Gmail's SIZE */

enum sink_state {
	SINK_CMD,		/* reading commands */
	SINK_DATA,		/* reading message content */
	SINK_AUTH_PLAIN,	/* AUTH PLAIN, waiting for the response */
	SINK_AUTH_USER,		/* AUTH LOGIN, waiting for the user name */
	SINK_AUTH_PASS,		/* AUTH LOGIN, waiting for the password */
	SINK_STARTTLS,		/* 220 sent, switching to TLS when flushed */
	SINK_QUIT		/* 221 sent, closing when flushed */
};

struct sink_conn {
	struct bufferevent	*bev;
	evutil_socket_t		 fd;
	enum sink_state		 state;
	bool			 tls;
	bool			 authed;
	bool			 mail;
	bool			 data_start;	/* at the start of content */
	unsigned		 nrcpt;
	char			 login_user[256];
};

/* Global settings and counters (one process, one loop). */
static struct event_base	*sink_base;
static SSL_CTX			*sink_ctx;
static const char		*sink_user = "user@test";
static const char		*sink_pass = "secret";
static const char		*sink_status;
static bool			 sink_auth_optional;
static unsigned long		 sink_every = 100;
static unsigned long		 sink_expect;
static unsigned long		 sink_count;
static unsigned long long	 sink_bytes;
static unsigned long		 sink_conns;
static double			 sink_last;

static double
sink_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Publishes the counters in the status file, atomically. */
static void
sink_status_write(void)
{
	char	tmp[4096];
	FILE	*f;

	if (sink_status == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", sink_status);
	if ((f = fopen(tmp, "w")) == NULL) {
		perror(tmp);
		return;
	}
	fprintf(f, "count %lu bytes %llu conns %lu last %.6f\n", sink_count,
	    sink_bytes, sink_conns, sink_last);
	if (fclose(f) != 0 || rename(tmp, sink_status) == -1)
		perror(sink_status);
}

static void
sink_reply(struct sink_conn *c, const char *text)
{
	evbuffer_add(bufferevent_get_output(c->bev), text, strlen(text));
}

static void
sink_conn_free(struct sink_conn *c)
{
	bufferevent_free(c->bev);	/* BEV_OPT_CLOSE_ON_FREE */
	free(c);
	sink_status_write();
}

/*
 * Decodes base64 <in> into <out> (NUL-terminated); returns the decoded
 * length or -1.  EVP_DecodeBlock counts padding as zero bytes: undo it.
 */
static int
sink_b64_decode(const char *in, char *out, size_t outsz)
{
	size_t	len = strlen(in);
	int	n;

	if (len == 0 || len % 4 != 0 || len / 4 * 3 + 1 > outsz)
		return -1;
	n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)in,
	    (int)len);
	if (n < 0)
		return -1;
	if (in[len - 1] == '=')
		n--;
	if (in[len - 2] == '=')
		n--;
	out[n] = '\0';
	return n;
}

/* Checks an AUTH PLAIN response: [authzid] NUL authcid NUL passwd. */
static bool
sink_plain_ok(const char *b64)
{
	char	buf[1024], *user, *pass;
	int	n;

	if ((n = sink_b64_decode(b64, buf, sizeof(buf))) < 0 ||
	    (user = memchr(buf, '\0', (size_t)n)) == NULL)
		return false;
	user++;
	pass = user + strlen(user) + 1;
	if (pass > buf + n)
		return false;
	return strcmp(user, sink_user) == 0 && strcmp(pass, sink_pass) == 0;
}

static void
sink_auth_result(struct sink_conn *c, bool ok)
{
	c->state = SINK_CMD;
	c->authed = ok;
	sink_reply(c, ok ? "235 2.7.0 Accepted\r\n" :
	    "535 5.7.8 Username and Password not accepted\r\n");
}

/* A line while an AUTH exchange is going on. */
static void
sink_auth_line(struct sink_conn *c, const char *line)
{
	char	pass[256];

	if (strcmp(line, "*") == 0) {
		c->state = SINK_CMD;
		sink_reply(c, "501 5.7.0 Authentication cancelled\r\n");
		return;
	}
	switch (c->state) {
	case SINK_AUTH_PLAIN:
		sink_auth_result(c, sink_plain_ok(line));
		break;
	case SINK_AUTH_USER:
		if (sink_b64_decode(line, c->login_user,
		    sizeof(c->login_user)) < 0) {
			sink_auth_result(c, false);
			break;
		}
		c->state = SINK_AUTH_PASS;
		sink_reply(c, "334 UGFzc3dvcmQ6\r\n");
		break;
	default:
		sink_auth_result(c, sink_b64_decode(line, pass,
		    sizeof(pass)) >= 0 &&
		    strcmp(c->login_user, sink_user) == 0 &&
		    strcmp(pass, sink_pass) == 0);
		break;
	}
}

static void
sink_auth(struct sink_conn *c, const char *arg)
{
	const char	*sp = strchr(arg, ' ');
	size_t		 mlen = sp != NULL ? (size_t)(sp - arg) : strlen(arg);

	if (!c->tls) {
		sink_reply(c,
		    "530 5.7.0 Must issue a STARTTLS command first\r\n");
		return;
	}
	if (c->authed) {
		sink_reply(c, "503 5.5.1 Already authenticated\r\n");
		return;
	}
	if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
		if (sp != NULL)
			sink_auth_result(c, sink_plain_ok(sp + 1));
		else {
			c->state = SINK_AUTH_PLAIN;
			sink_reply(c, "334 \r\n");
		}
	} else if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
		c->state = SINK_AUTH_USER;
		if (sp != NULL)
			sink_auth_line(c, sp + 1);
		else
			sink_reply(c, "334 VXNlcm5hbWU6\r\n");
	} else
		sink_reply(c, "504 5.5.4 Unrecognized authentication type\r\n");
}

static void
sink_ehlo(struct sink_conn *c, bool ehlo)
{
	c->mail = false;
	c->nrcpt = 0;
	if (!ehlo) {
		sink_reply(c, "250 sink.test\r\n");
		return;
	}
	sink_reply(c, "250-sink.test\r\n250-PIPELINING\r\n250-SIZE 35882577\r\n"
	    "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n");
	sink_reply(c, c->tls ? "250 AUTH PLAIN LOGIN\r\n" : "250 STARTTLS\r\n");
}

static void
sink_mail(struct sink_conn *c, const char *arg)
{
	const char	*size;

	if (!c->authed && !sink_auth_optional)
		sink_reply(c, "530 5.7.0 Authentication Required\r\n");
	else if (c->mail)
		sink_reply(c, "503 5.5.1 Nested MAIL command\r\n");
	else if (strncasecmp(arg, "FROM:", 5) != 0)
		sink_reply(c, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
	else if ((size = strcasestr(arg, " SIZE=")) != NULL &&
	    strtoull(size + 6, NULL, 10) > SINK_SIZE)
		sink_reply(c, "552 5.3.4 Message size exceeds fixed limit\r\n");
	else {
		c->mail = true;
		c->nrcpt = 0;
		sink_reply(c, "250 2.1.0 OK\r\n");
	}
}

/* Handles one command line; the verb is case-insensitive. */
static void
sink_command(struct sink_conn *c, const char *line)
{
	const char	*arg = strchr(line, ' ');
	size_t		 vlen;

	vlen = arg != NULL ? (size_t)(arg - line) : strlen(line);
	arg = arg != NULL ? arg + 1 : "";
#define VERB(v)	(vlen == sizeof(v) - 1 && strncasecmp(line, v, vlen) == 0)
	if (VERB("MAIL"))
		sink_mail(c, arg);
	else if (VERB("RCPT")) {
		if (!c->mail)
			sink_reply(c, "503 5.5.1 Need MAIL command\r\n");
		else if (strncasecmp(arg, "TO:", 3) != 0)
			sink_reply(c,
			    "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
		else {
			c->nrcpt++;
			sink_reply(c, "250 2.1.5 OK\r\n");
		}
	} else if (VERB("DATA")) {
		if (c->nrcpt == 0)
			sink_reply(c, "503 5.5.1 Need RCPT command\r\n");
		else {
			c->state = SINK_DATA;
			c->data_start = true;
			sink_reply(c, "354 Go ahead\r\n");
		}
	} else if (VERB("EHLO") || VERB("HELO"))
		sink_ehlo(c, VERB("EHLO"));
	else if (VERB("RSET")) {
		c->mail = false;
		c->nrcpt = 0;
		sink_reply(c, "250 2.0.0 OK\r\n");
	} else if (VERB("NOOP"))
		sink_reply(c, "250 2.0.0 OK\r\n");
	else if (VERB("AUTH"))
		sink_auth(c, arg);
	else if (VERB("STARTTLS")) {
		if (c->tls)
			sink_reply(c, "503 5.5.1 TLS already active\r\n");
		else {
			c->state = SINK_STARTTLS;
			sink_reply(c, "220 2.0.0 Ready to start TLS\r\n");
		}
	} else if (VERB("QUIT")) {
		c->state = SINK_QUIT;
		sink_reply(c, "221 2.0.0 closing connection\r\n");
	} else
		sink_reply(c, "502 5.5.1 Unrecognized command\r\n");
#undef VERB
}

/* The end of a message's content. */
static void
sink_data_done(struct sink_conn *c)
{
	c->state = SINK_CMD;
	c->mail = false;
	c->nrcpt = 0;
	sink_count++;
	sink_last = sink_now();
	sink_reply(c, "250 2.0.0 OK accepted\r\n");
	if ((sink_every > 0 && sink_count % sink_every == 0) ||
	    sink_count == sink_expect)
		sink_status_write();
}

/*
 * Consumes message content from <in>.  Returns true at the end of data.
 * Keeps the last 4 octets when no end is found, so that a terminator
 * split across reads is still seen.
 */
static bool
sink_data(struct sink_conn *c, struct evbuffer *in)
{
	struct evbuffer_ptr	 p;
	unsigned char		*head;
	size_t			 len = evbuffer_get_length(in);

	if (len == 0)
		return false;
	if (c->data_start) {
		/* An empty message: ".\r\n" right after the 354. */
		head = evbuffer_pullup(in, len < 3 ? (ssize_t)len : 3);
		if (len < 3 && memcmp(head, ".\r\n", len) == 0)
			return false;
		c->data_start = false;
		if (len >= 3 && memcmp(head, ".\r\n", 3) == 0) {
			evbuffer_drain(in, 3);
			return true;
		}
	}
	p = evbuffer_search(in, "\r\n.\r\n", 5, NULL);
	if (p.pos != -1) {
		sink_bytes += (unsigned long long)p.pos + 2;
		evbuffer_drain(in, (size_t)p.pos + 5);
		return true;
	}
	if (len > 4) {
		sink_bytes += len - 4;
		evbuffer_drain(in, len - 4);
	}
	return false;
}

static void	sink_read_cb(struct bufferevent *, void *);
static void	sink_write_cb(struct bufferevent *, void *);
static void	sink_event_cb(struct bufferevent *, short, void *);

static void
sink_read_cb(struct bufferevent *bev, void *arg)
{
	struct sink_conn	*c = arg;
	struct evbuffer		*in = bufferevent_get_input(bev);
	struct evbuffer_ptr	 eol;
	char			 line[SINK_LINE_MAX + 1];
	size_t			 eol_len;

	for (;;) {
		if (c->state == SINK_STARTTLS || c->state == SINK_QUIT) {
			/* RFC 3207: input after STARTTLS is discarded. */
			evbuffer_drain(in, evbuffer_get_length(in));
			bufferevent_disable(bev, EV_READ);
			return;
		}
		if (c->state == SINK_DATA) {
			if (!sink_data(c, in))
				return;
			sink_data_done(c);
			continue;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len,
		    EVBUFFER_EOL_CRLF);
		if (eol.pos == -1) {
			if (evbuffer_get_length(in) > SINK_LINE_MAX) {
				sink_reply(c, "500 5.5.2 Line too long\r\n");
				c->state = SINK_QUIT;
			}
			return;
		}
		if ((size_t)eol.pos > SINK_LINE_MAX) {
			evbuffer_drain(in, (size_t)eol.pos + eol_len);
			sink_reply(c, "500 5.5.2 Line too long\r\n");
			continue;
		}
		evbuffer_remove(in, line, (size_t)eol.pos);
		line[eol.pos] = '\0';
		evbuffer_drain(in, eol_len);
		if (c->state == SINK_CMD)
			sink_command(c, line);
		else
			sink_auth_line(c, line);
	}
}

/*
 * Replaces the plain bufferevent by a TLS one on a duplicate of the
 * socket (the plain one closes its own descriptor when freed).
 */
static void
sink_starttls(struct sink_conn *c)
{
	SSL	*ssl;

	c->fd = dup(c->fd);
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->fd == -1 || (ssl = SSL_new(sink_ctx)) == NULL) {
		perror("sink: starttls");
		if (c->fd != -1)
			evutil_closesocket(c->fd);
		free(c);
		return;
	}
	c->bev = bufferevent_openssl_socket_new(sink_base, c->fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	c->tls = true;
	c->authed = false;
	c->mail = false;
	c->nrcpt = 0;
	c->state = SINK_CMD;
	bufferevent_setcb(c->bev, sink_read_cb, sink_write_cb, sink_event_cb,
	    c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* The output buffer is empty: finish a STARTTLS or a QUIT. */
static void
sink_write_cb(struct bufferevent *bev, void *arg)
{
	struct sink_conn	*c = arg;

	(void)bev;
	if (c->state == SINK_STARTTLS)
		sink_starttls(c);
	else if (c->state == SINK_QUIT)
		sink_conn_free(c);
}

static void
sink_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct sink_conn	*c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		sink_conn_free(c);
}

static void
sink_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct sink_conn	*c;
	SSL			*ssl;
	int			 one = 1;

	(void)l;
	(void)sa;
	(void)salen;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	sink_conns++;
	if (arg != NULL) {
		/* Implicit TLS port. */
		ssl = SSL_new(sink_ctx);
		c->bev = bufferevent_openssl_socket_new(sink_base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
		c->tls = true;
	} else
		c->bev = bufferevent_socket_new(sink_base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, sink_read_cb, sink_write_cb, sink_event_cb,
	    c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	sink_reply(c, "220 sink.test ESMTP ready\r\n");
}

static struct evconnlistener *
sink_listen(int port, void *tls, int *bound)
{
	struct evconnlistener	*l;
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	l = evconnlistener_new_bind(sink_base, sink_accept_cb, tls,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL) {
		perror("sink: listen");
		exit(1);
	}
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len);
	*bound = ntohs(sin.sin_port);
	return l;
}

static void
sink_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	sink_status_write();
	event_base_loopexit(sink_base, NULL);
}

/*
 * Self-test client (runs in a child process, blocking I/O).
 */

struct sink_client {
	int	 fd;
	SSL	*ssl;
	char	 buf[65536];
	size_t	 len;
};

static void
sink_die(const char *what)
{
	fprintf(stderr, "sink selftest: %s\n", what);
	ERR_print_errors_fp(stderr);
	_exit(1);
}

static void
sink_client_write(struct sink_client *k, const char *p, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = k->ssl != NULL ? SSL_write(k->ssl, p, (int)len) :
		    write(k->fd, p, len);
		if (n <= 0)
			sink_die("write failed");
		p += n;
		len -= (size_t)n;
	}
}

/* Reads one complete reply (the last line of a multi-line one); returns
 * its code. */
static int
sink_client_reply(struct sink_client *k)
{
	char	*eol, *start;
	int	 code;
	ssize_t	 n;

	for (;;) {
		start = k->buf;
		while ((eol = memmem(start, k->len - (size_t)(start - k->buf),
		    "\r\n", 2)) != NULL) {
			if (eol - start >= 4 && start[3] == ' ') {
				code = atoi(start);
				k->len -= (size_t)(eol + 2 - k->buf);
				memmove(k->buf, eol + 2, k->len);
				return code;
			}
			start = eol + 2;
		}
		if (k->len == sizeof(k->buf))
			sink_die("reply too long");
		n = k->ssl != NULL ? SSL_read(k->ssl, k->buf + k->len,
		    (int)(sizeof(k->buf) - k->len)) :
		    read(k->fd, k->buf + k->len, sizeof(k->buf) - k->len);
		if (n <= 0)
			sink_die("connection closed");
		k->len += (size_t)n;
	}
}

static void
sink_client_cmd(struct sink_client *k, const char *cmd, int want)
{
	sink_client_write(k, cmd, strlen(cmd));
	if (sink_client_reply(k) != want)
		sink_die(cmd);
}

/* Connects, STARTTLS, AUTH PLAIN; leaves <k> ready for MAIL. */
static void
sink_client_open(struct sink_client *k, int port)
{
	struct sockaddr_in	 sin;
	SSL_CTX			*ctx;
	char			 cred[512], b64[1024], cmd[1100];
	int			 one = 1, n;

	memset(k, 0, sizeof(*k));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if ((k->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(k->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		sink_die("connect");
	setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (sink_client_reply(k) != 220)
		sink_die("greeting");
	sink_client_cmd(k, "EHLO selftest\r\n", 250);
	sink_client_cmd(k, "STARTTLS\r\n", 220);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    (k->ssl = SSL_new(ctx)) == NULL ||
	    SSL_set_fd(k->ssl, k->fd) != 1 || SSL_connect(k->ssl) != 1)
		sink_die("TLS handshake");
	SSL_CTX_free(ctx);	/* the SSL keeps a reference */
	sink_client_cmd(k, "EHLO selftest\r\n", 250);
	n = snprintf(cred, sizeof(cred), "%c%s%c%s", '\0', sink_user, '\0',
	    sink_pass);
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)cred, n);
	snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s\r\n", b64);
	sink_client_cmd(k, cmd, 235);
}

/* Child <i>: sends <n> messages of <size> octets, with at most <window>
 * in flight; writes "n t0 t1" to <out>. */
static void
sink_client_run(int port, unsigned long n, unsigned window, size_t size,
    int out)
{
	struct sink_client	 k;
	char			*msg, res[128];
	size_t			 mlen, hlen;
	unsigned long		 sent = 0, done = 0, replies = 0;
	double			 t0, t1;
	int			 code;

	static const char	 head[] = "MAIL FROM:<bench@example.org>\r\n"
	    "RCPT TO:<sink@example.org>\r\nDATA\r\n"
	    "Subject: selftest\r\n\r\n";

	hlen = sizeof(head) - 1;
	mlen = hlen + (size / 76 + 1) * 76 + 3;
	if ((msg = malloc(mlen)) == NULL)
		sink_die("malloc");
	memcpy(msg, head, hlen);
	for (mlen = hlen; mlen < hlen + size; mlen += 76) {
		memset(msg + mlen, 'x', 74);
		memcpy(msg + mlen + 74, "\r\n", 2);
	}
	memcpy(msg + mlen, ".\r\n", 3);
	mlen += 3;
	sink_client_open(&k, port);
	t0 = sink_now();
	while (done < n) {
		while (sent < n && sent - done < window) {
			sink_client_write(&k, msg, mlen);
			sent++;
		}
		code = sink_client_reply(&k);
		if (code != (replies % 4 == 2 ? 354 : 250))
			sink_die("unexpected reply");
		if (++replies % 4 == 0)
			done++;
	}
	t1 = sink_now();
	sink_client_cmd(&k, "QUIT\r\n", 221);
	snprintf(res, sizeof(res), "%lu %.6f %.6f\n", done, t0, t1);
	if (write(out, res, strlen(res)) == -1)
		sink_die("write result");
	SSL_free(k.ssl);
	close(k.fd);
	free(msg);
	_exit(0);
}

static void
sink_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Forks the clients, runs the loop until they are done, prints JSON. */
static int
sink_selftest(int port, unsigned long n, unsigned conns, unsigned window,
    size_t size)
{
	struct timeval	 tv = { 0, 20000 };
	struct rusage	 r0, r1;
	struct event	*tick;
	FILE		*f;
	pid_t		 pid;
	double		 t0, t1, first = 0, last = 0, cpu;
	unsigned long	 done, total = 0;
	unsigned	 i, ok = 0;
	int		 fds[2], status;

	if (pipe(fds) == -1)
		sink_die("pipe");
	getrusage(RUSAGE_SELF, &r0);
	for (i = 0; i < conns; i++) {
		if ((pid = fork()) == -1)
			sink_die("fork");
		if (pid == 0) {
			close(fds[0]);
			sink_client_run(port, n / conns + (i < n % conns),
			    window, size, fds[1]);
		}
	}
	close(fds[1]);
	/* The loop runs until every child has exited; the timer makes
	 * sure the loop wakes up to reap them. */
	tick = event_new(sink_base, -1, EV_PERSIST, sink_tick_cb, NULL);
	event_add(tick, &tv);
	while (ok < conns) {
		event_base_loop(sink_base, EVLOOP_ONCE);
		while (waitpid(-1, &status, WNOHANG) > 0)
			ok++;
	}
	getrusage(RUSAGE_SELF, &r1);
	event_free(tick);
	f = fdopen(fds[0], "r");
	while (fscanf(f, "%lu %lf %lf", &done, &t0, &t1) == 3) {
		total += done;
		first = first == 0 || t0 < first ? t0 : first;
		last = t1 > last ? t1 : last;
	}
	fclose(f);
	cpu = (double)(r1.ru_utime.tv_sec - r0.ru_utime.tv_sec +
	    r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
	    (double)(r1.ru_utime.tv_usec - r0.ru_utime.tv_usec +
	    r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e6;
	printf("{\"messages\": %lu, \"received\": %lu, \"conns\": %u, "
	    "\"window\": %u, \"size\": %zu, \"seconds\": %.3f, "
	    "\"msgs_per_s\": %.1f, \"sink_cpu_ms_per_msg\": %.4f}\n", total,
	    sink_count, conns, window, size, last - first,
	    last > first ? (double)total / (last - first) : 0.0,
	    sink_count > 0 ? cpu * 1000 / (double)sink_count : 0.0);
	return total == n && sink_count == n ? 0 : 1;
}

static void
sink_usage(void)
{
	fprintf(stderr, "usage: sink -c CERT -k KEY [-p PORT] [-P TLSPORT] "
	    "[-u USER] [-w PASS]\n\t[-s FILE] [-e EVERY] [-N EXPECT] [-A] "
	    "[-T N [-n CONNS] [-W WINDOW] [-z SIZE]]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct evconnlistener	*plain, *tls = NULL;
	struct event	*sigterm, *sigint;
	const char	*cert = NULL, *key = NULL;
	unsigned long	 selftest = 0;
	unsigned	 conns = 1, window = 16;
	size_t		 size = 1024;
	int		 ch, port = 0, tls_port = -1, bound, tls_bound = 0, rc;

	while ((ch = getopt(argc, argv, "Ac:e:k:N:n:P:p:s:T:u:W:w:z:")) != -1) {
		switch (ch) {
		case 'A': sink_auth_optional = true; break;
		case 'c': cert = optarg; break;
		case 'e': sink_every = strtoul(optarg, NULL, 10); break;
		case 'k': key = optarg; break;
		case 'N': sink_expect = strtoul(optarg, NULL, 10); break;
		case 'n': conns = (unsigned)atoi(optarg); break;
		case 'P': tls_port = atoi(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 's': sink_status = optarg; break;
		case 'T': selftest = strtoul(optarg, NULL, 10); break;
		case 'u': sink_user = optarg; break;
		case 'W': window = (unsigned)atoi(optarg); break;
		case 'w': sink_pass = optarg; break;
		case 'z': size = (size_t)atol(optarg); break;
		default: sink_usage();
		}
	}
	if (cert == NULL || key == NULL || conns == 0 || window == 0)
		sink_usage();
	signal(SIGPIPE, SIG_IGN);
	if ((sink_ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(sink_ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_use_certificate_chain_file(sink_ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(sink_ctx, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	if ((sink_base = event_base_new()) == NULL)
		return 1;
	plain = sink_listen(port, NULL, &bound);
	if (tls_port >= 0)
		tls = sink_listen(tls_port, sink_ctx, &tls_bound);
	printf("{\"port\": %d, \"tls_port\": %d}\n", bound, tls_bound);
	fflush(stdout);
	if (selftest > 0)
		rc = sink_selftest(bound, selftest, conns, window, size);
	else {
		sigterm = evsignal_new(sink_base, SIGTERM, sink_signal_cb,
		    NULL);
		sigint = evsignal_new(sink_base, SIGINT, sink_signal_cb, NULL);
		event_add(sigterm, NULL);
		event_add(sigint, NULL);
		sink_status_write();
		event_base_dispatch(sink_base);
		event_free(sigterm);
		event_free(sigint);
		rc = 0;
	}
	/* Connections still open at exit are left to the kernel. */
	evconnlistener_free(plain);
	if (tls != NULL)
		evconnlistener_free(tls);
	event_base_free(sink_base);
	SSL_CTX_free(sink_ctx);
	return rc;
}
