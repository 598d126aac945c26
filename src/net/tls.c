/*
 * tls.c - the relay client's TLS (a verifying SSL_CTX and per-connection
 * filters with SNI and host name checks) and the server side for LAN
 * clients (the configured certificate, STARTTLS and implicit TLS).
 *
 * There is deliberately no knob to skip verification: a relay that
 * sends a Gmail password must know who it is talking to.  Names that
 * are IP literals are checked against the certificate's IP addresses
 * and not sent as SNI (RFC 6066 section 3).  The server side may go
 * down to TLS 1.0 when the admin asks (old printers); the client never
 * does.
 */
#include "config.h"

#include "tls.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
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
	SSL_CTX		*ctx;
	unsigned int	 refs;
};

/* True when <dir> holds OpenSSL's hashed names ("1a2b3c4d.0"), as
 * update-ca-certificates makes them. */
static bool
tls_dir_is_hashed(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	bool		 found = false;
	size_t		 i;

	if ((d = opendir(dir)) == NULL)
		return false;
	while (!found && (de = readdir(d)) != NULL) {
		for (i = 0; i < 8 && isxdigit((unsigned char)de->d_name[i]);
		    i++)
			;
		found = i == 8 && de->d_name[8] == '.' &&
		    isdigit((unsigned char)de->d_name[9]);
	}
	closedir(d);
	return found;
}

int
tls_ctx_load_cas(SSL_CTX *ctx, const char *ca_file)
{
	const char	*dir;

	if (ca_file != NULL && ca_file[0] != '\0')
		return SSL_CTX_load_verify_locations(ctx, ca_file, NULL) ==
		    1 ? 0 : -1;
	/* The system store as a hashed directory is read one certificate
	 * at a time, when a chain needs it; parsing the whole bundle file
	 * instead took 40 ms and 900 kB at every start.  SSL_CERT_FILE, or
	 * no hashed directory, means the bundle. */
	dir = getenv(X509_get_default_cert_dir_env());
	if (dir == NULL || dir[0] == '\0')
		dir = X509_get_default_cert_dir();
	if (getenv(X509_get_default_cert_file_env()) == NULL &&
	    tls_dir_is_hashed(dir))
		return SSL_CTX_load_verify_dir(ctx, dir) == 1 ? 0 : -1;
	return SSL_CTX_set_default_verify_paths(ctx) == 1 ? 0 : -1;
}

SSL_CTX *
tls_policy_ctx_new(const char *ca_file,
    int (*verify_cb)(int, X509_STORE_CTX *))
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	if (tls_ctx_load_cas(ctx, ca_file) != 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static bool
tls_name_is_ip(const char *name)
{
	unsigned char	buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, buf) == 1 ||
	    inet_pton(AF_INET6, name, buf) == 1;
}

SSL *
tls_policy_ssl_new(SSL_CTX *ctx, const char *name)
{
	X509_VERIFY_PARAM	*param;
	SSL			*ssl;
	int			 ok;

	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	param = SSL_get0_param(ssl);
	X509_VERIFY_PARAM_set_hostflags(param,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (tls_name_is_ip(name))
		ok = X509_VERIFY_PARAM_set1_ip_asc(param, name);
	else
		ok = SSL_set_tlsext_host_name(ssl, name) == 1 &&
		    SSL_set1_host(ssl, name) == 1;
	if (!ok) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

struct tls_client *
tls_client_new(const char *ca_file)
{
	struct tls_client	*tc;
	SSL_CTX			*ctx;
	char			 err[256];

	if ((ctx = tls_policy_ctx_new(ca_file, NULL)) == NULL) {
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		if (ca_file != NULL && ca_file[0] != '\0')
			log_warnx("tls cannot load CA file %s: %s", ca_file,
			    err);
		else
			log_warnx("tls cannot load the system CAs: %s", err);
		return NULL;
	}
	tc = xcalloc(1, sizeof(*tc));
	tc->ctx = ctx;
	tc->refs = 1;
	return tc;
}

struct tls_client *
tls_client_ref(struct tls_client *tc)
{
	if (tc != NULL)
		tc->refs++;
	return tc;
}

void
tls_client_free(struct tls_client *tc)
{
	if (tc == NULL || --tc->refs > 0)
		return;
	SSL_CTX_free(tc->ctx);
	free(tc);
}

struct bufferevent *
tls_client_wrap(struct tls_client *tc, struct event_base *base,
    struct bufferevent *under, const char *verify_name)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = tls_policy_ssl_new(tc->ctx, verify_name)) == NULL) {
		log_warnx("tls cannot set up a connection for \"%s\"",
		    verify_name);
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
tls_error_string(struct bufferevent *bev, char *buf, size_t bufsz,
    enum tls_failure *kind)
{
	SSL			*ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long		 e, first = 0;
	long			 vr;
	char			 lib[256];
	enum tls_failure	 k = TLS_FAIL_OTHER;

	while ((e = bufferevent_get_openssl_error(bev)) != 0)
		if (first == 0)
			first = e;
	ERR_clear_error();
	if (ssl != NULL && (vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		if (kind != NULL)
			*kind = vr == X509_V_ERR_HOSTNAME_MISMATCH ?
			    TLS_FAIL_CERT_NAME : vr ==
			    X509_V_ERR_IP_ADDRESS_MISMATCH ? TLS_FAIL_CERT_IP :
			    TLS_FAIL_CERT;
		snprintf(buf, bufsz, "certificate verify failed: %s",
		    X509_verify_cert_error_string(vr));
		return buf;
	}
	if (first != 0) {
		/* A plain SMTP greeting read as a TLS record. */
		if (ERR_GET_LIB(first) == ERR_LIB_SSL &&
		    (ERR_GET_REASON(first) == SSL_R_WRONG_VERSION_NUMBER ||
		    ERR_GET_REASON(first) == SSL_R_HTTP_REQUEST))
			k = TLS_FAIL_NOT_TLS;
		if (kind != NULL)
			*kind = k;
		ERR_error_string_n(first, lib, sizeof(lib));
		snprintf(buf, bufsz, "TLS error: %s", lib);
		return buf;
	}
	if (kind != NULL)
		*kind = k;
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

struct tls_server {
	SSL_CTX	*ctx;
};

/* Logs <what> with OpenSSL's first queued error, and clears the queue. */
static void
tls_log_ssl_error(const char *what, const char *path)
{
	char	err[256];

	ERR_error_string_n(ERR_peek_error(), err, sizeof(err));
	ERR_clear_error();
	log_warnx("tls %s %s: %s", what, path, err);
}

/* The protocol floor: OpenSSL's constant for 10, 11, 12 or 13. */
static int
tls_server_version(int min_version)
{
	switch (min_version) {
	case 10:
		return TLS1_VERSION;
	case 11:
		return TLS1_1_VERSION;
	case 12:
		return TLS1_2_VERSION;
	case 13:
		return TLS1_3_VERSION;
	default:
		return -1;
	}
}

struct tls_server *
tls_server_new(const char *cert_file, const char *key_file, int min_version)
{
	struct tls_server	*ts;
	SSL_CTX			*ctx;
	int			 v = tls_server_version(min_version);

	if (v == -1) {
		log_warnx("tls bad minimum version %d", min_version);
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_log_ssl_error("cannot create server context", "");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, v);
	/* Client-initiated renegotiation only costs us CPU. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* OpenSSL 3's default security level refuses TLS 1.0 and 1.1 (their
	 * handshake signs with SHA-1/MD5).  Only an admin who set
	 * min_version that low gets level 0, and the ciphers those
	 * versions have (AES-CBC with SHA-1); newer clients still get the
	 * default order, strongest first. */
	if (v < TLS1_2_VERSION) {
		SSL_CTX_set_security_level(ctx, 0);
		if (SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0") != 1) {
			tls_log_ssl_error("cannot set cipher list", "");
			goto fail;
		}
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		tls_log_ssl_error("cannot load certificate", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) !=
	    1) {
		tls_log_ssl_error("cannot load key", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		tls_log_ssl_error("key does not match the certificate",
		    key_file);
		goto fail;
	}
	ts = xcalloc(1, sizeof(*ts));
	ts->ctx = ctx;
	return ts;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void
tls_server_free(struct tls_server *ts)
{
	if (ts == NULL)
		return;
	SSL_CTX_free(ts->ctx);
	free(ts);
}

struct bufferevent *
tls_server_wrap(struct tls_server *ts, struct event_base *base, int fd)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	if ((ssl = SSL_new(ts->ctx)) == NULL) {
		tls_log_ssl_error("SSL_new failed", "");
		return NULL;
	}
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		log_warnx("tls cannot create server bufferevent");
		SSL_free(ssl);
		return NULL;
	}
	/* Many clients close without close_notify after QUIT. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

bool
tls_has_pending(struct bufferevent *bev)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(bev);

	return evbuffer_get_length(bufferevent_get_input(bev)) > 0 ||
	    (ssl != NULL && SSL_has_pending(ssl) == 1);
}

const char *
tls_version(struct bufferevent *bev)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(bev);

	return ssl != NULL ? SSL_get_version(ssl) : "";
}

const char *
tls_cipher(struct bufferevent *bev)
{
	SSL		*ssl = bufferevent_openssl_get_ssl(bev);
	const char	*c;

	if (ssl == NULL || (c = SSL_get_cipher_name(ssl)) == NULL)
		return "";
	return c;
}
