/*
 * oauth.h - OAuth 2.0 access tokens for XOAUTH2 (RFC 6749 §6, refresh
 * token grant), one token source per upstream.
 *
 * The source fetches a token over HTTPS (evhttp on a verifying
 * bufferevent_openssl), caches it with its expiry, fetches a new one
 * ahead of expiry or when the upstream refused it, and coalesces
 * concurrent requests into one POST.  The client secret and refresh
 * token are re-read from their files for every POST; a rotated refresh
 * token is written back atomically.  Tokens and secrets are never
 * logged and are wiped when dropped.
 */
#ifndef OAUTH_H
#define OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "oauth_answer.h"

struct conf;
struct conf_upstream;
struct event_base;
struct evdns_base;
struct oauth;
struct oauth_req;

/* <token> (OAUTH_OK) is borrowed for the call only; <reason> (a plain
 * sentence, never holding a secret) is set otherwise. */
typedef void	(*oauth_cb)(enum oauth_status, const char *token,
		    const char *reason, void *arg);

/* A token source for <up>, one of <conf>'s upstreams (auth must be
 * xoauth2); a reference to <conf> is held (conf_ref()) while the source
 * uses it.  Nothing happens until oauth_get().  Never NULL. */
struct oauth	*oauth_new(struct event_base *, struct evdns_base *,
		    const struct conf *conf, const struct conf_upstream *up);

/* After a configuration reload: <up> of <conf> replaces the upstream
 * (the old configuration's reference is dropped).  The cached token is
 * kept only when the client, the refresh token file, the endpoint and
 * its CAs are the same. */
void		 oauth_set_upstream(struct oauth *, const struct conf *conf,
		    const struct conf_upstream *up);

/* Cancels every pending request (their callbacks are not called) and
 * wipes the cached token.  NULL is a no-op. */
void		 oauth_free(struct oauth *);

/* Asks for a valid access token.  <cb> is called once, later, from the
 * loop (never from inside oauth_get()), unless the request is cancelled
 * first.  The handle is valid until <cb> is called or oauth_cancel(). */
struct oauth_req *oauth_get(struct oauth *, oauth_cb cb, void *arg);

/* Drops a pending request: its callback is never called.  NULL is a
 * no-op. */
void		 oauth_cancel(struct oauth_req *);

/* The upstream refused <token> (334/535 to AUTH XOAUTH2): if it is the
 * cached one, forget it, so the next oauth_get() fetches a new one. */
void		 oauth_invalidate(struct oauth *, const char *token);

/* Number of token POSTs started so far (for tests and stats). */
uint64_t	 oauth_fetches(const struct oauth *);

/*
 * One HTTPS POST of a form to a token endpoint, also used by
 * "smartrelayctl oauth-setup" for the authorization code exchange.
 */

typedef void	(*oauth_post_cb)(struct oauth_answer *, void *arg);
struct oauth_post;

/* POSTs <form> (application/x-www-form-urlencoded, borrowed) to the
 * https <url>, verifying the server against <ca_file> ("" or NULL: the
 * system CAs) and the URL's host name, TLS 1.2 or newer.  <cb> gets the
 * answer (borrowed for the call) once, later, from the loop, unless the
 * post is cancelled.  Never NULL. */
struct oauth_post *oauth_post_start(struct event_base *, struct evdns_base *,
		    const char *url, const char *ca_file, const char *form,
		    oauth_post_cb cb, void *arg);

/* Stops a post before its callback; NULL is a no-op. */
void		 oauth_post_cancel(struct oauth_post *);

#endif /* OAUTH_H */
