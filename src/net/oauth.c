/*
 * oauth.c - OAuth 2.0 access tokens for XOAUTH2: the HTTPS POST to the
 * token endpoint (evhttp over a verifying bufferevent_openssl), and a
 * caching token source per upstream on top of it.
 *
 * Invariants: one POST at most per source (waiters coalesce); callbacks
 * always come from the loop; a token, secret or refresh token is never
 * logged (lengths and expiry only) and every copy we hold is wiped with
 * OPENSSL_cleanse() before it is freed.  The endpoint is verified as
 * strictly as the upstream: TLS 1.2+, chain, host name, SNI.  Not done
 * here: retries (the queue's backoff covers them).
 */
#include "config.h"

#include "oauth.h"

#include <sys/queue.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "log.h"
#include "sasl.h"
#include "tls.h"
#include "util.h"

#define OAUTH_HTTP_TIMEOUT	30		/* seconds, each phase */
#define OAUTH_BODY_MAX		(64 * 1024)	/* answer body octets */
#define OAUTH_HEADERS_MAX	(16 * 1024)
#define OAUTH_EARLY_MAX		300		/* refresh 5 min early, */
#define OAUTH_EARLY_DIV		10		/* or with 10 % left */
#define OAUTH_DEFAULT_LIFE	600		/* no expires_in: assume */

/* ------------------------------------------------------------------ */
/* One POST */

struct oauth_post {
	SSL_CTX			*ctx;
	struct evhttp_connection *conn;		/* owns the bufferevent */
	struct event		*done;		/* reports from the loop */
	oauth_post_cb		 cb;
	void			*arg;
	struct oauth_answer	 ans;
	char			 where[300];	/* "host:port" for reasons */
	int			 verify_err;	/* first X509_V_ERR_*, or 0 */
	bool			 timed_out;
};

static int	oauth_post_ex = -1;	/* SSL ex_data slot: the post */

static void
oauth_post_fail(struct oauth_post *p, enum oauth_status st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
oauth_post_fail(struct oauth_post *p, enum oauth_status st,
    const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(p->ans.reason, sizeof(p->ans.reason), fmt, ap);
	va_end(ap);
	p->ans.status = st;
	event_active(p->done, EV_TIMEOUT, 1);
}

/* Remembers why the chain was refused, for the reason; OpenSSL's own
 * decision stands. */
static int
oauth_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL			*ssl;
	struct oauth_post	*p;

	if (ok)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(xs,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	p = ssl != NULL ? SSL_get_ex_data(ssl, oauth_post_ex) : NULL;
	if (p != NULL && p->verify_err == 0)
		p->verify_err = X509_STORE_CTX_get_error(xs);
	return ok;
}

/* The verifying context: TLS 1.2+, peer verification, our CAs. */
static SSL_CTX *
oauth_ctx_new(const char *ca_file, char *err, size_t errsz)
{
	SSL_CTX	*ctx;
	char	 e[256] = "";

	/* The relay's policy (tls.c), with our own verify callback to
	 * remember why a chain failed. */
	if ((ctx = tls_policy_ctx_new(ca_file, oauth_verify_cb)) != NULL)
		return ctx;
	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	ERR_clear_error();
	snprintf(err, errsz, "cannot load the CA certificates for the token "
	    "endpoint%s%s: %s", ca_file && ca_file[0] ? " from " : "",
	    ca_file ? ca_file : "", e);
	return NULL;
}

/* An SSL for <host>: SNI and the name check, or the IP check. */
static SSL *
oauth_ssl_new(struct oauth_post *p, const char *host)
{
	SSL	*ssl;

	if ((ssl = tls_policy_ssl_new(p->ctx, host)) == NULL)
		return NULL;
	if (SSL_set_ex_data(ssl, oauth_post_ex, p) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

static void
oauth_post_err_cb(enum evhttp_request_error err, void *arg)
{
	struct oauth_post	*p = arg;

	if (err == EVREQ_HTTP_TIMEOUT)
		p->timed_out = true;
}

/* Why a request got no HTTP answer, in words. */
static void
oauth_post_why(struct oauth_post *p)
{
	if (p->verify_err != 0)
		oauth_post_fail(p, OAUTH_TEMPORARY, "TLS with the token "
		    "endpoint %s failed: certificate verify failed: %s",
		    p->where, X509_verify_cert_error_string(p->verify_err));
	else if (p->timed_out)
		oauth_post_fail(p, OAUTH_TEMPORARY, "the token endpoint %s "
		    "timed out", p->where);
	else
		oauth_post_fail(p, OAUTH_TEMPORARY, "cannot reach the token "
		    "endpoint %s (connection, TLS or HTTP error)", p->where);
}

static void
oauth_post_req_cb(struct evhttp_request *req, void *arg)
{
	struct oauth_post	*p = arg;
	struct evbuffer		*in;
	unsigned char		*body;
	size_t			 len;
	int			 code;

	if (req == NULL ||
	    (code = evhttp_request_get_response_code(req)) == 0) {
		oauth_post_why(p);
		return;
	}
	in = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(in);
	body = evbuffer_pullup(in, -1);
	oauth_parse_answer(code, (const char *)body, body ? len : 0, &p->ans);
	/* The answer may hold tokens: leave nothing behind. */
	if (body != NULL)
		OPENSSL_cleanse(body, len);
	ERR_clear_error();
	event_active(p->done, EV_TIMEOUT, 1);
}

static void
oauth_post_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct oauth_post	*p = arg;
	oauth_post_cb		 cb = p->cb;

	(void)fd;
	(void)what;
	/* Never from inside evhttp's own callback: freeing the connection
	 * there is not allowed. */
	if (p->conn != NULL)
		evhttp_connection_free(p->conn);
	p->conn = NULL;
	cb(&p->ans, p->arg);
	oauth_answer_clear(&p->ans);
	event_free(p->done);
	SSL_CTX_free(p->ctx);
	free(p);
}

/* Adds the headers and the body, and sends.  Returns 0 or -1. */
static int
oauth_post_send(struct oauth_post *p, const struct evhttp_uri *u,
    const char *host, const char *form)
{
	struct evhttp_request	*req;
	struct evkeyvalq	*h;
	const char		*path = evhttp_uri_get_path(u);
	const char		*query = evhttp_uri_get_query(u);
	char			 target[2048];

	if (snprintf(target, sizeof(target), "%s%s%s", path && path[0] ?
	    path : "/", query ? "?" : "", query ? query : "") >=
	    (int)sizeof(target))
		return -1;
	if ((req = evhttp_request_new(oauth_post_req_cb, p)) == NULL)
		return -1;
	evhttp_request_set_error_cb(req, oauth_post_err_cb);
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "Content-Type",
	    "application/x-www-form-urlencoded");
	evhttp_add_header(h, "Accept", "application/json");
	evhttp_add_header(h, "User-Agent", PACKAGE_NAME "/" PACKAGE_VERSION);
	evhttp_add_header(h, "Connection", "close");
	evbuffer_add(evhttp_request_get_output_buffer(req), form,
	    strlen(form));
	/* On failure libevent has freed the request. */
	return evhttp_make_request(p->conn, req, EVHTTP_REQ_POST, target);
}

/* Connection setup.  Returns 0, or -1 with the post failed. */
static int
oauth_post_connect(struct oauth_post *p, struct event_base *base,
    struct evdns_base *dns, const struct evhttp_uri *u, const char *form)
{
	const char		*host = evhttp_uri_get_host(u);
	int			 port = evhttp_uri_get_port(u);
	struct bufferevent	*bev;
	SSL			*ssl;

	if (port == -1)
		port = 443;
	snprintf(p->where, sizeof(p->where), "%s:%d", host, port);
	if ((ssl = oauth_ssl_new(p, host)) == NULL) {
		oauth_post_fail(p, OAUTH_TEMPORARY, "cannot set up TLS for "
		    "%s", p->where);
		return -1;
	}
	bev = bufferevent_openssl_socket_new(base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);
		oauth_post_fail(p, OAUTH_TEMPORARY, "cannot set up TLS");
		return -1;
	}
	/* Token endpoints often close without close_notify. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	p->conn = evhttp_connection_base_bufferevent_new(base, dns, bev, host,
	    (unsigned short)port);
	if (p->conn == NULL) {
		bufferevent_free(bev);
		oauth_post_fail(p, OAUTH_TEMPORARY, "cannot set up HTTP");
		return -1;
	}
	evhttp_connection_set_timeout(p->conn, OAUTH_HTTP_TIMEOUT);
	evhttp_connection_set_retries(p->conn, 0);
	evhttp_connection_set_max_body_size(p->conn, OAUTH_BODY_MAX);
	evhttp_connection_set_max_headers_size(p->conn, OAUTH_HEADERS_MAX);
	if (oauth_post_send(p, u, host, form) == -1) {
		oauth_post_fail(p, OAUTH_TEMPORARY, "cannot send the request "
		    "to %s", p->where);
		return -1;
	}
	return 0;
}

struct oauth_post *
oauth_post_start(struct event_base *base, struct evdns_base *dns,
    const char *url, const char *ca_file, const char *form,
    oauth_post_cb cb, void *arg)
{
	struct oauth_post	*p;
	struct evhttp_uri	*u;
	const char		*scheme;
	char			 err[sizeof(p->ans.reason)];

	if (oauth_post_ex == -1)
		oauth_post_ex = SSL_get_ex_new_index(0, NULL, NULL, NULL,
		    NULL);
	p = xcalloc(1, sizeof(*p));
	p->cb = cb;
	p->arg = arg;
	p->ans.expires_in = -1;
	if ((p->done = event_new(base, -1, 0, oauth_post_done_cb, p)) == NULL)
		fatalx("oauth: cannot create an event");
	u = evhttp_uri_parse_with_flags(url, 0);
	scheme = u != NULL ? evhttp_uri_get_scheme(u) : NULL;
	if (u == NULL || scheme == NULL || strcasecmp(scheme, "https") != 0 ||
	    evhttp_uri_get_host(u) == NULL || evhttp_uri_get_host(u)[0] == '\0')
		oauth_post_fail(p, OAUTH_REJECTED, "the token URL is not an "
		    "https URL");
	else if ((p->ctx = oauth_ctx_new(ca_file, err, sizeof(err))) == NULL)
		oauth_post_fail(p, OAUTH_REJECTED, "%s", err);
	else
		oauth_post_connect(p, base, dns, u, form);
	if (u != NULL)
		evhttp_uri_free(u);
	return p;
}

void
oauth_post_cancel(struct oauth_post *p)
{
	if (p == NULL)
		return;
	/* Pending requests are freed without their callback. */
	if (p->conn != NULL)
		evhttp_connection_free(p->conn);
	oauth_answer_clear(&p->ans);
	event_free(p->done);
	SSL_CTX_free(p->ctx);
	free(p);
}

/* ------------------------------------------------------------------ */
/* The token source */

struct oauth_req {
	TAILQ_ENTRY(oauth_req)	 entry;
	struct oauth		*o;
	struct oauth_reqs	*list;		/* the one it is on */
	oauth_cb		 cb;
	void			*arg;
};
TAILQ_HEAD(oauth_reqs, oauth_req);

struct oauth {
	struct event_base	*base;
	struct evdns_base	*dns;
	const struct conf	*conf;		/* a reference: holds <up> */
	const struct conf_upstream *up;
	struct oauth_reqs	 waiting;	/* for the next answer */
	struct oauth_reqs	 firing;	/* being answered now */
	struct event		*kick;		/* answers from the loop */
	struct oauth_post	*post;		/* the POST in flight */
	char			*token;		/* cached access token */
	uint64_t		 expires_ms;	/* monotonic */
	uint64_t		 early_ms;	/* refresh this much early */
	char			*rt_sent;	/* refresh token of the POST */
	char			*rt_mem;	/* rotated, not yet saved */
	uint64_t		 nfetch;
	unsigned int		 depth;		/* callbacks running */
	bool			 dying;
};

static void	oauth_fetch(struct oauth *);

static void
oauth_forget(struct oauth *o)
{
	str_wipe_free(o->token);
	o->token = NULL;
}

/* Usable now and not due for a refresh. */
static bool
oauth_is_fresh(const struct oauth *o)
{
	return o->token != NULL &&
	    time_mono_ms() + o->early_ms < o->expires_ms;
}

static void
oauth_destroy(struct oauth *o)
{
	struct oauth_req	*w;

	while ((w = TAILQ_FIRST(&o->waiting)) != NULL)
		oauth_cancel(w);
	while ((w = TAILQ_FIRST(&o->firing)) != NULL)
		oauth_cancel(w);
	oauth_post_cancel(o->post);
	event_free(o->kick);
	oauth_forget(o);
	str_wipe_free(o->rt_sent);
	str_wipe_free(o->rt_mem);
	conf_free(o->conf);
	free(o);
}

/* Answers every waiter.  A callback may ask again (a new waiter, for
 * the next answer), cancel others, or free the source. */
static void
oauth_fire(struct oauth *o, enum oauth_status st, const char *reason)
{
	struct oauth_req	*w;

	TAILQ_CONCAT(&o->firing, &o->waiting, entry);
	TAILQ_FOREACH(w, &o->firing, entry)
		w->list = &o->firing;
	o->depth++;
	while (!o->dying && (w = TAILQ_FIRST(&o->firing)) != NULL) {
		TAILQ_REMOVE(&o->firing, w, entry);
		w->cb(st, st == OAUTH_OK ? o->token : NULL,
		    st == OAUTH_OK ? NULL : reason, w->arg);
		free(w);
	}
	if (--o->depth == 0 && o->dying)
		oauth_destroy(o);
	else if (!o->dying && !TAILQ_EMPTY(&o->waiting))
		event_active(o->kick, EV_TIMEOUT, 1);
}

static void
oauth_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct oauth	*o = arg;

	(void)fd;
	(void)what;
	if (TAILQ_EMPTY(&o->waiting) || o->post != NULL)
		return;
	if (oauth_is_fresh(o))
		oauth_fire(o, OAUTH_OK, NULL);
	else
		oauth_fetch(o);
}

struct oauth *
oauth_new(struct event_base *base, struct evdns_base *dns,
    const struct conf *conf, const struct conf_upstream *up)
{
	struct oauth	*o;

	o = xcalloc(1, sizeof(*o));
	o->base = base;
	o->dns = dns;
	o->conf = conf_ref(conf);
	o->up = up;
	TAILQ_INIT(&o->waiting);
	TAILQ_INIT(&o->firing);
	if ((o->kick = event_new(base, -1, 0, oauth_kick_cb, o)) == NULL)
		fatalx("oauth: cannot create an event");
	return o;
}

void
oauth_free(struct oauth *o)
{
	if (o == NULL)
		return;
	if (o->depth > 0) {
		o->dying = true;
		return;
	}
	oauth_destroy(o);
}

/* Same string, both set or both NULL. */
static bool
oauth_same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) ||
	    (a != NULL && b != NULL && strcmp(a, b) == 0);
}

void
oauth_set_upstream(struct oauth *o, const struct conf *conf,
    const struct conf_upstream *up)
{
	const struct conf_upstream	*old = o->up;

	if (!oauth_same(old->oauth_client_id, up->oauth_client_id) ||
	    !oauth_same(old->oauth_client_secret_file,
	    up->oauth_client_secret_file) ||
	    !oauth_same(old->oauth_refresh_token_file,
	    up->oauth_refresh_token_file) ||
	    !oauth_same(old->oauth_token_url, up->oauth_token_url) ||
	    !oauth_same(old->oauth_ca_file, up->oauth_ca_file) ||
	    !oauth_same(old->username, up->username)) {
		oauth_forget(o);
		str_wipe_free(o->rt_mem);
		o->rt_mem = NULL;
	}
	o->up = up;
	conf_ref(conf);
	conf_free(o->conf);
	o->conf = conf;
}

struct oauth_req *
oauth_get(struct oauth *o, oauth_cb cb, void *arg)
{
	struct oauth_req	*w;

	w = xcalloc(1, sizeof(*w));
	w->o = o;
	w->cb = cb;
	w->arg = arg;
	w->list = &o->waiting;
	TAILQ_INSERT_TAIL(&o->waiting, w, entry);
	/* A POST in flight answers everyone when it ends. */
	if (o->post == NULL)
		event_active(o->kick, EV_TIMEOUT, 1);
	return w;
}

void
oauth_cancel(struct oauth_req *w)
{
	if (w == NULL)
		return;
	TAILQ_REMOVE(w->list, w, entry);
	free(w);
}

void
oauth_invalidate(struct oauth *o, const char *token)
{
	if (o->token != NULL && token != NULL && strcmp(o->token, token) == 0)
		oauth_forget(o);
}

uint64_t
oauth_fetches(const struct oauth *o)
{
	return o->nfetch;
}

/* The form for the refresh grant (RFC 6749 §6), each value encoded.
 * Returns a new string to wipe, or NULL with the reason in <err>. */
static char *
oauth_form(struct oauth *o, char *err, size_t errsz)
{
	const struct conf_upstream	*up = o->up;
	char				*secret = NULL, *rt, *e[3], *form;
	size_t				 len, i;

	if (up->oauth_client_id[0] == '\0' ||
	    up->oauth_refresh_token_file[0] == '\0') {
		snprintf(err, errsz, "upstream.%s is not set",
		    up->oauth_client_id[0] == '\0' ? "oauth_client_id" :
		    "oauth_refresh_token_file");
		return NULL;
	}
	if (up->oauth_client_secret_file[0] != '\0' &&
	    (secret = sasl_read_password(up->oauth_client_secret_file, err,
	    errsz)) == NULL)
		return NULL;
	if (o->rt_mem != NULL)
		rt = xstrdup(o->rt_mem);
	else if ((rt = sasl_read_password(up->oauth_refresh_token_file, err,
	    errsz)) == NULL) {
		str_wipe_free(secret);
		return NULL;
	}
	e[0] = evhttp_uriencode(up->oauth_client_id, -1, 0);
	e[1] = evhttp_uriencode(secret ? secret : "", -1, 0);
	e[2] = evhttp_uriencode(rt, -1, 0);
	if (e[0] == NULL || e[1] == NULL || e[2] == NULL)
		fatalx("oauth: out of memory");
	len = strlen(e[0]) + strlen(e[1]) + strlen(e[2]) + 100;
	form = xmalloc(len);
	snprintf(form, len, "grant_type=refresh_token&client_id=%s%s%s"
	    "&refresh_token=%s", e[0], secret ? "&client_secret=" : "",
	    secret ? e[1] : "", e[2]);
	for (i = 0; i < nitems(e); i++)
		str_wipe_free(e[i]);
	str_wipe_free(secret);
	str_wipe_free(o->rt_sent);
	o->rt_sent = rt;
	return form;
}

/* A refresh token came back that differs from the one sent: keep it
 * (RFC 6749 §6: the old one may be revoked now). */
static void
oauth_rotate(struct oauth *o, const char *rt)
{
	const char	*path = o->up->oauth_refresh_token_file;
	char		 err[512];

	if (o->rt_sent != NULL && strcmp(rt, o->rt_sent) == 0)
		return;
	/* Rare (Google does not rotate by default): the fsyncs run on the
	 * loop, a few milliseconds once in a long while. */
	if (oauth_write_token(path, rt, err, sizeof(err)) == -1) {
		log_errx("oauth cannot save the new refresh token: %s; "
		    "keeping it in memory until a save succeeds", err);
		str_wipe_free(o->rt_mem);
		o->rt_mem = xstrdup(rt);
		return;
	}
	str_wipe_free(o->rt_mem);
	o->rt_mem = NULL;
	log_notice("oauth refresh token rotated upstream=%s file=%s",
	    o->up->name, path);
}

static void
oauth_fetched_cb(struct oauth_answer *a, void *arg)
{
	struct oauth	*o = arg;
	int64_t		 life = a->expires_in > 0 ? a->expires_in :
			    OAUTH_DEFAULT_LIFE;

	o->post = NULL;
	if (a->status == OAUTH_OK) {
		oauth_forget(o);
		o->token = xstrdup(a->access_token);
		o->expires_ms = time_mono_ms() + (uint64_t)life * 1000;
		o->early_ms = (uint64_t)life * 1000 / OAUTH_EARLY_DIV;
		if (o->early_ms > OAUTH_EARLY_MAX * 1000)
			o->early_ms = OAUTH_EARLY_MAX * 1000;
		log_info("oauth token obtained upstream=%s expires_in=%llds "
		    "length=%zu", o->up->name, (long long)life,
		    strlen(o->token));
		if (a->refresh_token != NULL)
			oauth_rotate(o, a->refresh_token);
	} else {
		log_debug("oauth token request failed upstream=%s "
		    "reason=\"%s\"", o->up->name, a->reason);
		/* A kept rotated token that is refused: back to the file. */
		if (a->status >= OAUTH_REJECTED) {
			str_wipe_free(o->rt_mem);
			o->rt_mem = NULL;
		}
	}
	str_wipe_free(o->rt_sent);
	o->rt_sent = NULL;
	oauth_fire(o, a->status, a->reason);
}

/* Starts the POST, or answers every waiter at once when the credential
 * files are unusable (a human must fix them: OAUTH_REJECTED). */
static void
oauth_fetch(struct oauth *o)
{
	char	err[512], *form;

	if ((form = oauth_form(o, err, sizeof(err))) == NULL) {
		log_debug("oauth credentials unusable upstream=%s",
		    o->up->name);
		oauth_fire(o, OAUTH_REJECTED, err);
		return;
	}
	o->nfetch++;
	log_debug("oauth requesting a token upstream=%s url=%s",
	    o->up->name, o->up->oauth_token_url);
	o->post = oauth_post_start(o->base, o->dns, o->up->oauth_token_url,
	    o->up->oauth_ca_file, form, oauth_fetched_cb, o);
	str_wipe_free(form);
}
