/*
 * tls.c - the relay client's TLS: a verifying SSL_CTX and per-connection
 * filters with SNI and host name checks.
 *
 * There is deliberately no knob to skip verification: a relay that
 * sends a Gmail password must know who it is talking to.  Names that
 * are IP literals are checked against the certificate's IP addresses
 * and not sent as SNI (RFC 6066 section 3).
 */
#include "config.h"

#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "util.h"

#define TLS_UNDER_LOW	(64 * 1024)	/* socket buffer: resume below */
#define TLS_UNDER_HIGH	(256 * 1024)	/* ... stop encrypting above */

struct tls_client {
	SSL_CTX	*ctx;
};

struct tls_client *
tls_client_new(const char *ca_file)
{
	struct tls_client	*tc;
	SSL_CTX			*ctx;
	char			 err[256];

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		log_warnx("tls cannot create context: %s", err);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file != NULL && ca_file[0] != '\0') {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			ERR_error_string_n(ERR_get_error(), err, sizeof(err));
			log_warnx("tls cannot load CA file %s: %s", ca_file,
			    err);
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		log_warnx("tls cannot load the system CAs: %s", err);
		SSL_CTX_free(ctx);
		return NULL;
	}
	tc = xcalloc(1, sizeof(*tc));
	tc->ctx = ctx;
	return tc;
}

void
tls_client_free(struct tls_client *tc)
{
	if (tc == NULL)
		return;
	SSL_CTX_free(tc->ctx);
	free(tc);
}

static bool
tls_name_is_ip(const char *name)
{
	unsigned char	buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, buf) == 1 ||
	    inet_pton(AF_INET6, name, buf) == 1;
}

struct bufferevent *
tls_client_wrap(struct tls_client *tc, struct event_base *base,
    struct bufferevent *under, const char *verify_name)
{
	struct bufferevent	*bev;
	X509_VERIFY_PARAM	*param;
	SSL			*ssl;
	int			 ok;

	if ((ssl = SSL_new(tc->ctx)) == NULL) {
		log_warnx("tls SSL_new failed");
		return NULL;
	}
	param = SSL_get0_param(ssl);
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (tls_name_is_ip(verify_name))
		ok = X509_VERIFY_PARAM_set1_ip_asc(param, verify_name);
	else
		ok = SSL_set_tlsext_host_name(ssl, verify_name) == 1 &&
		    SSL_set1_host(ssl, verify_name) == 1;
	if (!ok) {
		log_warnx("tls cannot set peer name \"%s\"", verify_name);
		SSL_free(ssl);
		return NULL;
	}
	bev = bufferevent_openssl_filter_new(base, under, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		log_warnx("tls cannot create filter");
		SSL_free(ssl);
		return NULL;
	}
	/* Servers often close without close_notify after QUIT. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	/* Without a limit below, the filter moves everything the caller
	 * writes into the socket's buffer at once, and a 25 MB message sits
	 * in memory whole: the caller's backpressure needs this one. */
	bufferevent_setwatermark(under, EV_WRITE, TLS_UNDER_LOW, TLS_UNDER_HIGH);
	return bev;
}

const char *
tls_error_string(struct bufferevent *bev, char *buf, size_t bufsz)
{
	SSL		*ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long	 e, first = 0;
	long		 vr;
	char		 lib[256];

	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (first == 0)
			first = e;
	ERR_clear_error();
	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		snprintf(buf, bufsz, "certificate verify failed: %s",
		    X509_verify_cert_error_string(vr));
		return buf;
	}
	if (first != 0) {
		ERR_error_string_n(first, lib, sizeof(lib));
		snprintf(buf, bufsz, "TLS error: %s", lib);
		return buf;
	}
	snprintf(buf, bufsz, "TLS connection failed");
	return buf;
}

bool
tls_is_verified(struct bufferevent *bev)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(bev);
	X509	*peer;

	if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	if ((peer = SSL_get1_peer_certificate(ssl)) == NULL)
		return false;
	X509_free(peer);
	return true;
}

const char *
tls_describe(struct bufferevent *bev, char *buf, size_t bufsz)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(bev);

	if (ssl == NULL)
		snprintf(buf, bufsz, "none");
	else
		snprintf(buf, bufsz, "%s %s", SSL_get_version(ssl),
		    SSL_get_cipher_name(ssl));
	return buf;
}
