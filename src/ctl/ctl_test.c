/*
 * ctl_test.c - "smartrelayctl test" (API in ctl_test.h): the local
 * checks, then one real connection to the first upstream, on an event
 * loop of its own, with the daemon's relay client; the relay's failure
 * code picks the hint that says in plain words how to fix it.
 */
#include "config.h"

#include "ctl_test.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "conf.h"
#include "ctl_out.h"
#include "log.h"
#include "oauth.h"
#include "relay.h"
#include "sasl.h"
#include "tls.h"
#include "util.h"

#define CTL_TEST_SECS	60	/* the whole test */

#define CTL_HINT_DNS	"check host for a typo, the network, and the DNS " \
	"servers in /etc/resolv.conf (try: getent hosts smtp.gmail.com)"
#define CTL_HINT_RECONSENT "the refresh token was revoked or has " \
	"expired (password change, access removed, or a consent screen in " \
	"Testing mode, whose tokens last 7 days): run smartrelayctl " \
	"oauth-setup on a machine with a browser, then smartrelayctl flush"
#define CTL_HINT_APPPW	"Gmail refused the password: use an App Password " \
	"(Google Account > Security > 2-Step Verification > App " \
	"passwords), not your normal password"

/* What each failure code means for the admin: the exit status and how
 * to fix it.  Chosen by the relay's code (relay.h), never by the words
 * of its reason, so rewording a log line cannot change the advice. */
static const struct ctl_hint {
	enum relay_why	 why;
	int		 exit;
	const char	*fix;
} ctl_hints[] = {
	{ RELAY_WHY_TOKEN_GRANT, EX_NOPERM, CTL_HINT_RECONSENT },
	{ RELAY_WHY_TOKEN_CLIENT, EX_CONFIG, "check oauth_client_id and the "
	    "client secret file against the Desktop app client in the Google "
	    "Cloud console (APIs & Services > Credentials)" },
	{ RELAY_WHY_OAUTH_CONF, EX_CONFIG, "check oauth_client_id, "
	    "oauth_refresh_token_file and oauth_client_secret_file (run "
	    "smartrelayctl oauth-setup if the refresh token is missing)" },
	{ RELAY_WHY_XOAUTH2_REFUSED, EX_NOPERM, "Gmail refused a fresh "
	    "access token: username must be the account that allowed access "
	    "in oauth-setup, with the scope https://mail.google.com/; if in "
	    "doubt, " CTL_HINT_RECONSENT },
	{ RELAY_WHY_TOKEN, EX_UNAVAILABLE, "the token endpoint "
	    "(oauth_token_url) could not be used: check the network, the "
	    "system clock, and the CA store or oauth_ca_file" },
	{ RELAY_WHY_NO_XOAUTH2, EX_NOPERM, "this server does not offer "
	    "XOAUTH2: auth = \"xoauth2\" works with smtp.gmail.com" },
	{ RELAY_WHY_AUTH_REJECTED, EX_NOPERM, CTL_HINT_APPPW },
	{ RELAY_WHY_AUTH_BLOCKED, EX_NOPERM, CTL_HINT_APPPW "; if Google "
	    "says the sign-in was blocked, enable 2-Step Verification, "
	    "create the App Password, and check the security alert in that "
	    "account" },
	{ RELAY_WHY_AUTH_NEEDS_TLS, EX_CONFIG, "the server requires STARTTLS "
	    "first: use tls = \"starttls\" on port 587 or "
	    "tls = \"implicit\" on port 465" },
	{ RELAY_WHY_NO_USERNAME, EX_CONFIG, "set username = "
	    "\"you@gmail.com\" in the upstream section" },
	{ RELAY_WHY_PASSWORD, EX_CONFIG, "check password_file: it must exist, "
	    "be readable by the daemon's user and by no one else (mode 0600), "
	    "and hold the App Password alone on one line" },
	{ RELAY_WHY_AUTH_NO_MECH, EX_NOPERM, "this server offers no AUTH "
	    "PLAIN or LOGIN: check that host is your provider's submission "
	    "server (smtp.gmail.com)" },
	{ RELAY_WHY_CERT_NAME, EX_UNAVAILABLE, "the certificate is for "
	    "another name: verify_name (or host) must be the name on the "
	    "certificate, such as smtp.gmail.com" },
	{ RELAY_WHY_CERT_IP, EX_UNAVAILABLE, "the certificate does not name "
	    "this address: verify_name (or host) must be the name on the "
	    "certificate" },
	{ RELAY_WHY_CERT, EX_UNAVAILABLE, "check the system clock (date) and "
	    "the CA store (apt install ca-certificates) or ca_file" },
	{ RELAY_WHY_TLS_PLAIN, EX_UNAVAILABLE, "this port does not speak TLS "
	    "at once: use tls = \"implicit\" only on port 465 and "
	    "tls = \"starttls\" on port 587" },
	{ RELAY_WHY_NO_STARTTLS, EX_UNAVAILABLE, "use tls = \"starttls\" on "
	    "port 587, or tls = \"implicit\" on port 465" },
	{ RELAY_WHY_TLS, EX_UNAVAILABLE, "the TLS handshake failed: check "
	    "tls (\"starttls\" on port 587, \"implicit\" on 465), the system "
	    "clock and the CA store" },
	{ RELAY_WHY_DNS, EX_UNAVAILABLE, CTL_HINT_DNS },
	{ RELAY_WHY_TIMEOUT, EX_UNAVAILABLE, "no answer: a firewall may "
	    "block outgoing port 587 (or 465); try the other port with the "
	    "matching tls setting, or ask your provider" },
	{ RELAY_WHY_REFUSED, EX_UNAVAILABLE, "nothing listens there: check "
	    "host and port (587 with tls = \"starttls\", 465 with "
	    "tls = \"implicit\") and any firewall" },
	{ RELAY_WHY_NETWORK, EX_UNAVAILABLE, "check the network, host and "
	    "port, and any firewall (587 or 465 must be open)" },
	{ RELAY_WHY_GREETING, EX_UNAVAILABLE, "the server refused the "
	    "connection in its greeting: check host and port, and try again "
	    "later" },
};

/* One "test" run: the loop, and what the callbacks report back. */
struct ctl_test {
	struct event_base	*base;
	const struct conf	*conf;
	struct evdns_base	*dns;
	struct tls_client	*tls;
	struct oauth		*oauth;		/* auth = "xoauth2" only */
	struct relay		*relay;
	int			 rc;
};

/* ready() comes only once the connection is up, the certificate
 * verified and the login accepted: every step passed. */
static void
ctl_test_ready_cb(struct relay *r, void *arg)
{
	struct ctl_test		*t = arg;
	const struct conf	*conf = t->conf;

	printf("connected to %s\n", relay_peer(r));
	printf("TLS ok: certificate verified for %s\n",
	    conf->upstream[0].verify_name);
	printf("authenticated as %s\n", conf->upstream[0].username);
	printf("OK: smartrelay can send through %s as %s\n",
	    conf->upstream[0].host, conf->upstream[0].username);
	relay_free(r);
	t->relay = NULL;
	t->rc = EX_OK;
	event_base_loopbreak(t->base);
}

/* We never hand the relay a message, so no transaction can end. */
static void
ctl_test_done_cb(struct relay *r, struct envelope *env,
    enum relay_status st, const char *reply, void *arg)
{
	(void)r;
	(void)env;
	(void)st;
	(void)reply;
	(void)arg;
	fatalx("smartrelayctl: a transaction finished without a message");
}

/* Says how far the connection got, what failed, and how to fix it. */
static void
ctl_test_closed_cb(struct relay *r, enum relay_status st,
    const struct relay_failure *f, void *arg)
{
	struct ctl_test		*t = arg;
	const struct ctl_hint	*h = NULL;
	size_t			 i;

	for (i = 0; i < nitems(ctl_hints) && h == NULL; i++)
		if (ctl_hints[i].why == f->why)
			h = &ctl_hints[i];
	if (f->stage >= RELAY_STAGE_TLS)
		printf("connected to %s\n", relay_peer(r));
	if (f->stage >= RELAY_STAGE_AUTH)
		printf("TLS ok: certificate verified for %s\n",
		    t->conf->upstream[0].verify_name);
	printf("FAILED: ");
	ctl_put(stdout, f->reason, false);
	printf("\n");
	if (h != NULL)
		printf("fix: %s\n", h->fix);
	t->rc = h != NULL ? h->exit :
	    st == RELAY_AUTH_FAILED ? EX_NOPERM : EX_UNAVAILABLE;
	t->relay = NULL;		/* freed when this returns */
	event_base_loopbreak(t->base);
}

/* The overall bound; the relay's own timeouts normally fire first. */
static void
ctl_test_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ctl_test	*t = arg;

	(void)fd;
	(void)what;
	printf("FAILED: no result within %d s\nfix: a firewall may drop "
	    "the connection: check that outgoing port %u is open\n",
	    CTL_TEST_SECS, t->conf->upstream[0].port);
	t->rc = EX_UNAVAILABLE;
	event_base_loopbreak(t->base);
}

/* Starts the one relay connection; its callbacks end the loop. */
static void
ctl_test_connect(struct ctl_test *t)
{
	static const struct relay_cbs	cbs = { ctl_test_ready_cb,
	    ctl_test_done_cb, ctl_test_closed_cb };

	printf("connecting to %s port %u (%s)\n", t->conf->upstream[0].host,
	    t->conf->upstream[0].port, t->conf->upstream[0].tls ==
	    CONF_TLS_IMPLICIT ? "implicit TLS" : "STARTTLS");
	fflush(stdout);
	t->relay = relay_new(t->base, t->dns, t->conf, &t->conf->upstream[0],
	    t->tls, &cbs, t);
	if (t->relay != NULL)
		relay_set_oauth(t->relay, t->oauth);
	if (t->relay == NULL) {
		t->rc = EX_OSERR;
		event_base_loopbreak(t->base);
	}
}

/* Resolution is a step of its own, so that a DNS problem is named as
 * such and the addresses are shown; the relay then resolves again
 * (from evdns's cache). */
static void
ctl_test_resolved_cb(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct ctl_test		*t = arg;
	struct evutil_addrinfo	*a;
	char			 addr[64];
	const void		*in;

	if (err != 0) {
		printf("FAILED: cannot resolve %s: %s\n",
		    t->conf->upstream[0].host, evutil_gai_strerror(err));
		printf("fix: %s\n", CTL_HINT_DNS);
		t->rc = EX_UNAVAILABLE;
		event_base_loopbreak(t->base);
		return;
	}
	printf("%s has address", t->conf->upstream[0].host);
	for (a = ai; a != NULL; a = a->ai_next) {
		in = a->ai_family == AF_INET6 ?
		    (const void *)&((struct sockaddr_in6 *)a->ai_addr)->
		    sin6_addr :
		    (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr;
		if (evutil_inet_ntop(a->ai_family, in, addr, sizeof(addr)))
			printf(" %s", addr);
	}
	printf("\n");
	evutil_freeaddrinfo(ai);
	ctl_test_connect(t);
}

/* auth = "xoauth2": the refresh token and client secret files. */
static int
ctl_test_oauth_files(const struct conf_upstream *up)
{
	const char	*paths[] = { up->oauth_refresh_token_file,
			    up->oauth_client_secret_file };
	char		 err[512], *pw;
	size_t		 i;

	for (i = 0; i < nitems(paths); i++) {
		if (paths[i][0] == '\0')
			continue;
		if (i == 0 && access(paths[i], F_OK) == -1 && errno == ENOENT) {
			printf("FAILED: no OAuth refresh token yet (%s does "
			    "not exist)\nfix: run smartrelayctl oauth-setup\n",
			    paths[i]);
			return EX_CONFIG;
		}
		if ((pw = sasl_read_password(paths[i], err, sizeof(err))) ==
		    NULL) {
			printf("FAILED: %s\nfix: run the test as root or as "
			    "the daemon's user; the file must be mode 0600\n",
			    err);
			return access(paths[i], R_OK) == -1 && errno == EACCES ?
			    EX_NOPERM : EX_CONFIG;
		}
		str_wipe_free(pw);
	}
	printf("credentials: user %s, OAuth client %s, refresh token file "
	    "%s\n", up->username, up->oauth_client_id,
	    up->oauth_refresh_token_file);
	return EX_OK;
}

/* Username and password file, checked as the daemon would.  Returns
 * EX_OK, or EX_CONFIG (EX_NOPERM when we may not read the file) after
 * saying how to fix it. */
static int
ctl_test_credentials(const struct conf *conf)
{
	const char	*path = conf->upstream[0].password_file;
	char		 err[512], *pw;

	if (conf->upstream[0].username[0] == '\0') {
		printf("FAILED: upstream.username is not set\nfix: set "
		    "username = \"you@gmail.com\" in the upstream section of "
		    "%s\n", conf->path);
		return EX_CONFIG;
	}
	if (conf->upstream[0].auth == CONF_AUTH_XOAUTH2)
		return ctl_test_oauth_files(&conf->upstream[0]);
	if (access(path, F_OK) == -1 && errno == ENOENT) {
		printf("FAILED: the password file %s does not exist\nfix: "
		    "create it private first, then write the app password "
		    "into it:\n  install -m 0600 -o smartrelay /dev/null %s\n"
		    "  printf '%%s\\n' 'your-app-password' > %s\n", path, path,
		    path);
		return EX_CONFIG;
	}
	if (access(path, R_OK) == -1 && errno == EACCES) {
		printf("FAILED: cannot read the password file %s: permission "
		    "denied\nfix: run the test as root or as the daemon's "
		    "user (sudo smartrelayctl test)\n", path);
		return EX_NOPERM;
	}
	if ((pw = sasl_read_password(path, err, sizeof(err))) == NULL) {
		printf("FAILED: %s\nfix: the file must be a regular file "
		    "holding only the app password, mode 0600 (or 0640 with "
		    "the daemon's group), e.g. chmod 0600 %s\n", err, path);
		return EX_CONFIG;
	}
	str_wipe_free(pw);
	printf("credentials: user %s, password file %s\n",
	    conf->upstream[0].username, path);
	return EX_OK;
}

/* "test": local checks first (no network needed to find a missing
 * password file), then resolve, connect, TLS, AUTH on the event loop,
 * exactly as the daemon's relay does.  Nothing is sent.  Returns the
 * exit status: 0, EX_CONFIG, EX_NOPERM or EX_UNAVAILABLE. */
int
ctl_test(const struct conf *conf)
{
	struct ctl_test		 t;
	struct evutil_addrinfo	 hints;
	struct event		*timer = NULL;
	struct timeval		 tv = { CTL_TEST_SECS, 0 };

	memset(&t, 0, sizeof(t));
	t.conf = conf;
	t.rc = EX_SOFTWARE;
	if ((t.rc = ctl_test_credentials(conf)) != EX_OK)
		return t.rc;
	if ((t.tls = tls_client_new(conf->upstream[0].ca_file)) == NULL) {
		printf("FAILED: cannot load the CA certificates%s%s\nfix: "
		    "check ca_file, or install the system CA store "
		    "(apt install ca-certificates)\n", conf->upstream[0].ca_file[0]
		    ? " from " : "", conf->upstream[0].ca_file);
		return EX_CONFIG;
	}
	if ((t.base = event_base_new()) == NULL ||
	    (timer = evtimer_new(t.base, ctl_test_timeout_cb, &t)) == NULL)
		fatalx("smartrelayctl: cannot set up the event loop");
	evtimer_add(timer, &tv);
	t.dns = evdns_base_new(t.base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (conf->upstream[0].auth == CONF_AUTH_XOAUTH2)
		t.oauth = oauth_new(t.base, t.dns, conf, &conf->upstream[0]);
	t.rc = EX_SOFTWARE;
	printf("resolving %s\n", conf->upstream[0].host);
	fflush(stdout);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (t.dns != NULL)
		evdns_getaddrinfo(t.dns, conf->upstream[0].host, NULL, &hints,
		    ctl_test_resolved_cb, &t);
	else
		ctl_test_connect(&t);
	event_base_dispatch(t.base);
	relay_free(t.relay);
	oauth_free(t.oauth);
	event_free(timer);
	if (t.dns != NULL)
		evdns_base_free(t.dns, 0);
	event_base_free(t.base);
	tls_client_free(t.tls);
	return t.rc;
}
