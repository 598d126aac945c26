/*
 * ctl_oauth.c - "smartrelayctl oauth-setup": the OAuth 2.0 installed-app
 * flow (RFC 8252 loopback redirect, RFC 7636 PKCE with S256) that gets
 * the first refresh token for auth = "xoauth2".
 *
 * It prints the consent URL, listens on 127.0.0.1 for the browser's
 * redirect (reachable over "ssh -L" from another machine) and, with
 * --manual, also takes the redirected URL pasted on stdin.  The code is
 * exchanged at oauth_token_url (oauth.c's POST, verified like the
 * daemon's) and the refresh token saved atomically, mode 0600.  Tokens
 * are never printed.
 */
#include "config.h"

#include "ctl_oauth.h"

#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "conf.h"
#include "log.h"
#include "oauth.h"
#include "sasl.h"
#include "util.h"

#define CTL_OAUTH_AUTH_URL	"https://accounts.google.com/o/oauth2/v2/auth"
#define CTL_OAUTH_SCOPE		"https://mail.google.com/"
#define CTL_OAUTH_WAIT		600	/* seconds for the user to consent */

struct ctl_oauth {
	struct event_base		*base;
	struct evdns_base		*dns;
	const struct conf_upstream	*up;
	struct evhttp			*http;
	struct oauth_post		*post;
	struct event			*stdin_ev;
	struct evbuffer			*pasted;
	char				*secret;	/* client secret */
	char				 verifier[64];	/* PKCE, secret */
	char				 state[32];
	char				 redirect[64];
	bool				 have_code;
	int				 rc;
};

/* base64url without padding (RFC 4648 §5, as RFC 7636 wants it). */
static void
ctl_oauth_b64url(const unsigned char *in, size_t n, char *out,
    size_t outsz)
{
	char	*p;

	if ((n + 2) / 3 * 4 + 1 > outsz)
		fatalx("ctl_oauth: buffer too small");
	EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	for (p = out; *p != '\0'; p++)
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	if ((p = strchr(out, '=')) != NULL)
		*p = '\0';
}

/* Verifier, its S256 challenge into <challenge>, and the state. */
static void
ctl_oauth_pkce(struct ctl_oauth *st, char *challenge, size_t chsz)
{
	unsigned char	rnd[32], md[SHA256_DIGEST_LENGTH];

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		fatalx("smartrelayctl: no random numbers");
	ctl_oauth_b64url(rnd, sizeof(rnd), st->verifier,
	    sizeof(st->verifier));
	SHA256((const unsigned char *)st->verifier, strlen(st->verifier), md);
	ctl_oauth_b64url(md, sizeof(md), challenge, chsz);
	if (RAND_bytes(rnd, 16) != 1)
		fatalx("smartrelayctl: no random numbers");
	ctl_oauth_b64url(rnd, 16, st->state, sizeof(st->state));
	OPENSSL_cleanse(rnd, sizeof(rnd));
}

/* Appends "&name=value" (or "?name=value" first), value encoded. */
static void
ctl_oauth_param(struct evbuffer *b, const char *name, const char *value)
{
	char	*e = evhttp_uriencode(value, -1, 0);

	if (e == NULL)
		fatalx("smartrelayctl: out of memory");
	evbuffer_add_printf(b, "%s%s=%s", evbuffer_get_length(b) ? "&" : "",
	    name, e);
	OPENSSL_cleanse(e, strlen(e));
	free(e);
}

/* Stops the run with status <rc>. */
static void
ctl_oauth_end(struct ctl_oauth *st, int rc)
{
	st->rc = rc;
	event_base_loopbreak(st->base);
}

static void
ctl_oauth_exchanged_cb(struct oauth_answer *a, void *arg)
{
	struct ctl_oauth	*st = arg;
	const char		*path = st->up->oauth_refresh_token_file;
	char			 err[512];

	st->post = NULL;
	if (a->status != OAUTH_OK) {
		printf("FAILED: the code exchange failed: %s\n", a->reason);
		ctl_oauth_end(st, a->status >= OAUTH_REJECTED ? EX_NOPERM :
		    EX_UNAVAILABLE);
		return;
	}
	if (a->refresh_token == NULL) {
		printf("FAILED: Google sent no refresh token (access was "
		    "granted before): remove smartrelay's access at "
		    "https://myaccount.google.com/permissions and run "
		    "oauth-setup again\n");
		ctl_oauth_end(st, EX_NOPERM);
		return;
	}
	if (oauth_write_token(path, a->refresh_token, err, sizeof(err)) ==
	    -1) {
		printf("FAILED: %s\nfix: run as root or as the daemon's user, "
		    "with oauth_refresh_token_file in a directory it may "
		    "write\n", err);
		ctl_oauth_end(st, EX_CANTCREAT);
		return;
	}
	printf("OK: refresh token saved to %s (mode 0600)\nThe daemon uses "
	    "it at its next attempt; \"smartrelayctl flush\" sends the queue "
	    "now, \"smartrelayctl test\" checks the login.\n", path);
	ctl_oauth_end(st, EX_OK);
}

/* The code came back: exchange it (RFC 6749 §4.1.3, RFC 7636 §4.5). */
static void
ctl_oauth_exchange(struct ctl_oauth *st, const char *code)
{
	struct evbuffer	*form = evbuffer_new();
	char		*text;
	size_t		 len;

	ctl_oauth_param(form, "grant_type", "authorization_code");
	ctl_oauth_param(form, "code", code);
	ctl_oauth_param(form, "client_id", st->up->oauth_client_id);
	if (st->secret != NULL)
		ctl_oauth_param(form, "client_secret", st->secret);
	ctl_oauth_param(form, "redirect_uri", st->redirect);
	ctl_oauth_param(form, "code_verifier", st->verifier);
	len = evbuffer_get_length(form);
	text = xmalloc(len + 1);
	evbuffer_remove(form, text, len);
	text[len] = '\0';
	evbuffer_free(form);
	printf("access granted; exchanging the code at %s\n",
	    st->up->oauth_token_url);
	fflush(stdout);
	st->post = oauth_post_start(st->base, st->dns,
	    st->up->oauth_token_url, st->up->oauth_ca_file, text,
	    ctl_oauth_exchanged_cb, st);
	OPENSSL_cleanse(text, len);
	free(text);
}

/* The query of the redirect: "state=...&code=..." or "error=...".
 * Returns NULL when accepted, else what to tell the browser. */
static const char *
ctl_oauth_answer(struct ctl_oauth *st, const char *query)
{
	struct evkeyvalq	 kv;
	const char		*code, *state, *error, *why = NULL;

	if (st->have_code)
		return "this run already has its answer";
	TAILQ_INIT(&kv);
	if (query == NULL || evhttp_parse_query_str(query, &kv) == -1) {
		evhttp_clear_headers(&kv);
		return "no OAuth answer in this address";
	}
	code = evhttp_find_header(&kv, "code");
	state = evhttp_find_header(&kv, "state");
	error = evhttp_find_header(&kv, "error");
	if (state == NULL || strcmp(state, st->state) != 0)
		why = "the answer does not belong to this run (state)";
	else if (error != NULL) {
		why = "consent refused";
		printf("FAILED: the consent screen answered \"%s\"\n", error);
		ctl_oauth_end(st, EX_NOPERM);
	} else if (code == NULL || code[0] == '\0')
		why = "no code in the answer";
	else {
		st->have_code = true;
		ctl_oauth_exchange(st, code);
	}
	evhttp_clear_headers(&kv);
	return why;
}

/* The loopback listener: the browser lands here after consent. */
static void
ctl_oauth_http_cb(struct evhttp_request *req, void *arg)
{
	struct ctl_oauth	*st = arg;
	const struct evhttp_uri	*u = evhttp_request_get_evhttp_uri(req);
	struct evbuffer		*b = evbuffer_new();
	const char		*why;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET ||
	    u == NULL || strcmp(evhttp_uri_get_path(u) ?
	    evhttp_uri_get_path(u) : "/", "/") != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		evbuffer_free(b);
		return;
	}
	why = ctl_oauth_answer(st, evhttp_uri_get_query(u));
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=utf-8");
	evbuffer_add_printf(b, "smartrelay: %s%s\n", why ? "FAILED: " :
	    "access granted, you may close this window", why ? why : "");
	evhttp_send_reply(req, why ? HTTP_BADREQUEST : HTTP_OK,
	    why ? "Bad Request" : "OK", b);
	evbuffer_free(b);
}

/* --manual: a line pasted on stdin, the address the browser showed. */
static void
ctl_oauth_stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_oauth	*st = arg;
	struct evhttp_uri	*u;
	const char		*why;
	char			*line;
	int			 n;

	(void)what;
	n = evbuffer_read(st->pasted, fd, 8192);
	if (n <= 0) {
		/* End of input: stop watching it (it would fire again and
		 * again), and take a last line that lacks its newline. */
		event_del(st->stdin_ev);
		if (evbuffer_get_length(st->pasted) > 0)
			evbuffer_add(st->pasted, "\n", 1);
	}
	while ((line = evbuffer_readln(st->pasted, NULL,
	    EVBUFFER_EOL_ANY)) != NULL) {
		u = evhttp_uri_parse(line);
		why = ctl_oauth_answer(st, u ? evhttp_uri_get_query(u) : NULL);
		if (why != NULL && !st->have_code)
			printf("that address was not accepted (%s): paste the "
			    "whole address from the browser\n", why);
		fflush(stdout);
		if (u != NULL)
			evhttp_uri_free(u);
		OPENSSL_cleanse(line, strlen(line));
		free(line);
	}
	if (n <= 0 && !st->have_code) {
		printf("FAILED: end of input before an address was "
		    "pasted\n");
		ctl_oauth_end(st, EX_NOINPUT);
	}
}

static void
ctl_oauth_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	printf("FAILED: no answer from the browser within %d minutes\n",
	    CTL_OAUTH_WAIT / 60);
	ctl_oauth_end(arg, EX_TEMPFAIL);
}

/* Binds 127.0.0.1:<port> (0: any free port) and sets st->redirect.
 * Returns 0 or -1 after saying why. */
static int
ctl_oauth_listen(struct ctl_oauth *st, unsigned int port)
{
	struct evhttp_bound_socket	*bs;
	struct sockaddr_in		 sin;
	socklen_t			 len = sizeof(sin);

	if ((st->http = evhttp_new(st->base)) == NULL)
		fatalx("smartrelayctl: cannot create the HTTP listener");
	evhttp_set_allowed_methods(st->http, EVHTTP_REQ_GET);
	evhttp_set_gencb(st->http, ctl_oauth_http_cb, st);
	bs = evhttp_bind_socket_with_handle(st->http, "127.0.0.1",
	    (unsigned short)port);
	if (bs == NULL || getsockname(evhttp_bound_socket_get_fd(bs),
	    (struct sockaddr *)&sin, &len) == -1) {
		printf("FAILED: cannot listen on 127.0.0.1 port %u: %s\n",
		    port, strerror(errno));
		return -1;
	}
	snprintf(st->redirect, sizeof(st->redirect), "http://127.0.0.1:%u/",
	    ntohs(sin.sin_port));
	return 0;
}

/* Prints the consent URL and what to do with it. */
static void
ctl_oauth_print_url(struct ctl_oauth *st, const char *auth_url,
    const char *challenge, bool manual)
{
	struct evbuffer	*q = evbuffer_new();

	ctl_oauth_param(q, "response_type", "code");
	ctl_oauth_param(q, "client_id", st->up->oauth_client_id);
	ctl_oauth_param(q, "redirect_uri", st->redirect);
	ctl_oauth_param(q, "scope", CTL_OAUTH_SCOPE);
	ctl_oauth_param(q, "code_challenge", challenge);
	ctl_oauth_param(q, "code_challenge_method", "S256");
	ctl_oauth_param(q, "state", st->state);
	ctl_oauth_param(q, "access_type", "offline");
	ctl_oauth_param(q, "prompt", "consent");
	if (st->up->username[0] != '\0')
		ctl_oauth_param(q, "login_hint", st->up->username);
	evbuffer_add(q, "", 1);
	printf("Open this address in a web browser, sign in as %s and allow "
	    "access:\n\n  %s%s%s\n\n", st->up->username[0] ?
	    st->up->username : "the sending account", auth_url,
	    strchr(auth_url, '?') ? "&" : "?",
	    (const char *)evbuffer_pullup(q, -1));
	if (manual)
		printf("The browser then goes to %s... and may show an error "
		    "page.  Copy the whole address from its address bar and "
		    "paste it here (or forward the port: ssh -L %s):\n",
		    st->redirect, st->redirect + strlen("http://127.0.0.1:"));
	else
		printf("Waiting for the browser to come back to %s (from "
		    "another machine: ssh -L PORT:127.0.0.1:PORT to this one "
		    "with the port above, or use --manual)\n", st->redirect);
	fflush(stdout);
	evbuffer_free(q);
}

/* The upstream to set up: the one named, else the first with auth =
 * "xoauth2".  NULL after saying why. */
static const struct conf_upstream *
ctl_oauth_upstream(const struct conf *conf, const char *name)
{
	const struct conf_upstream	*up;
	size_t				 i;

	for (i = 0; i < conf->nupstream; i++) {
		up = &conf->upstream[i];
		if (name != NULL ? strcmp(up->name, name) == 0 :
		    up->auth == CONF_AUTH_XOAUTH2)
			break;
	}
	if (i == conf->nupstream || conf->upstream[i].auth !=
	    CONF_AUTH_XOAUTH2) {
		printf("FAILED: %s%s%s has auth = \"xoauth2\" in %s\nfix: set "
		    "auth = \"xoauth2\", oauth_client_id, "
		    "oauth_client_secret_file and oauth_refresh_token_file in "
		    "the upstream section (see smartrelay.conf(5))\n",
		    name ? "upstream " : "no upstream", name ? name : "",
		    name ? " never" : "", conf->path);
		return NULL;
	}
	up = &conf->upstream[i];
	if (up->oauth_client_id[0] == '\0' ||
	    up->oauth_refresh_token_file[0] == '\0') {
		printf("FAILED: set oauth_client_id and "
		    "oauth_refresh_token_file in the upstream section of %s\n",
		    conf->path);
		return NULL;
	}
	return up;
}

/* Everything but the options: set up, print, wait, tear down. */
static int
ctl_oauth_run(struct ctl_oauth *st, const char *auth_url, unsigned int port,
    bool manual)
{
	struct timeval	 tv = { CTL_OAUTH_WAIT, 0 };
	struct event	*timer;
	char		 err[512], challenge[64];

	if (st->up->oauth_client_secret_file[0] != '\0' &&
	    (st->secret = sasl_read_password(st->up->oauth_client_secret_file,
	    err, sizeof(err))) == NULL) {
		printf("FAILED: %s\nfix: put the client secret from the Google "
		    "Cloud console in that file, mode 0600\n", err);
		return EX_CONFIG;
	}
	if ((st->base = event_base_new()) == NULL ||
	    (timer = evtimer_new(st->base, ctl_oauth_timeout_cb, st)) == NULL)
		fatalx("smartrelayctl: cannot set up the event loop");
	st->dns = evdns_base_new(st->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	st->rc = EX_SOFTWARE;
	ctl_oauth_pkce(st, challenge, sizeof(challenge));
	if (ctl_oauth_listen(st, port) == 0) {
		ctl_oauth_print_url(st, auth_url, challenge, manual);
		if (manual) {
			st->pasted = evbuffer_new();
			st->stdin_ev = event_new(st->base, STDIN_FILENO,
			    EV_READ | EV_PERSIST, ctl_oauth_stdin_cb, st);
			event_add(st->stdin_ev, NULL);
		}
		evtimer_add(timer, &tv);
		event_base_dispatch(st->base);
	} else
		st->rc = EX_UNAVAILABLE;
	oauth_post_cancel(st->post);
	if (st->stdin_ev != NULL)
		event_free(st->stdin_ev);
	if (st->pasted != NULL)
		evbuffer_free(st->pasted);
	if (st->http != NULL)
		evhttp_free(st->http);
	event_free(timer);
	if (st->dns != NULL)
		evdns_base_free(st->dns, 0);
	event_base_free(st->base);
	str_wipe_free(st->secret);
	OPENSSL_cleanse(st->verifier, sizeof(st->verifier));
	return st->rc;
}

bool
ctl_oauth_is_verb(int argc, char *argv[])
{
	int	i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return i + 1 < argc &&
			    strcmp(argv[i + 1], "oauth-setup") == 0;
		if (strcmp(argv[i], "-f") == 0 ||
		    strcmp(argv[i], "--file") == 0)
			i++;
		else if (argv[i][0] != '-')
			return strcmp(argv[i], "oauth-setup") == 0;
	}
	return false;
}

static void
ctl_oauth_usage(void)
{
	fprintf(stderr, "usage: smartrelayctl [-f file] [-v] oauth-setup "
	    "[--manual] [--port N]\n"
	    "                     [--auth-url URL] [--upstream NAME]\n");
	exit(EX_USAGE);
}

int
ctl_oauth_main(int argc, char *argv[])
{
	static const struct option	 longopts[] = {
		{ "file",	required_argument,	NULL, 'f' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "manual",	no_argument,		NULL, 'm' },
		{ "port",	required_argument,	NULL, 'p' },
		{ "auth-url",	required_argument,	NULL, 'a' },
		{ "upstream",	required_argument,	NULL, 'u' },
		{ NULL,		0,			NULL, 0 },
	};
	struct ctl_oauth	 st;
	const char		*path = getenv("SMARTRELAY_CONFIG");
	const char		*auth_url = CTL_OAUTH_AUTH_URL, *name = NULL;
	struct conf		*conf;
	char			 errbuf[4096], *end;
	unsigned long		 port = 0;
	bool			 manual = false, verbose = false;
	int			 ch, rc;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "f:v", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f':
			path = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		case 'm':
			manual = true;
			break;
		case 'p':
			port = strtoul(optarg, &end, 10);
			if (*end != '\0' || port > 65535)
				ctl_oauth_usage();
			break;
		case 'a':
			auth_url = optarg;
			break;
		case 'u':
			name = optarg;
			break;
		default:
			ctl_oauth_usage();
		}
	}
	if (optind + 1 != argc || strcmp(argv[optind], "oauth-setup") != 0)
		ctl_oauth_usage();
	if (path == NULL || path[0] == '\0')
		path = conf_default_path();
	log_init(false, verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
	    "smartrelayctl");
	if ((conf = conf_load(path, errbuf, sizeof(errbuf))) == NULL) {
		fprintf(stderr, "%s\n", errbuf);
		return EX_CONFIG;
	}
	memset(&st, 0, sizeof(st));
	rc = EX_CONFIG;
	if ((st.up = ctl_oauth_upstream(conf, name)) != NULL)
		rc = ctl_oauth_run(&st, auth_url, (unsigned int)port, manual);
	conf_free(conf);
	fflush(stdout);
	return rc;
}
