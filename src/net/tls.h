/*
 * tls.h - TLS for the relay client (one verifying client context, and
 * per-connection setup with SNI and host name checking) and for LAN
 * clients (a server context with the configured certificate).
 *
 * The one TLS policy: the relay and smartrelayctl use it directly; the
 * OAuth client (oauth.c) loads its CAs through tls_ctx_load_cas().
 * OpenSSL's headers stay in net/ (and the daemon's users.c for wiping
 * and session TLS).  Client policy: TLS 1.2 or newer,
 * peer verification against the system CAs or a configured file, the
 * certificate must match the configured name.  There is no option to
 * turn verification off.
 */
#ifndef TLS_H
#define TLS_H

#include <stdbool.h>
#include <stddef.h>

struct tls_client;		/* wraps an SSL_CTX */
struct event_base;
struct bufferevent;

/* Builds the client context: minimum TLS 1.2, SSL_VERIFY_PEER, CAs from
 * <ca_file> or, when it is NULL or "", the system default paths.
 * Returns NULL after logging (unreadable CA file, no CAs). */
struct tls_client *tls_client_new(const char *ca_file);

/* The client policy, for every TLS client we have (the relay here, the
 * OAuth token client): a context with TLS 1.2 or newer, peer
 * verification (with <verify_cb>, or NULL) and the CAs of <ca_file> or
 * the system store; and a connection that checks <name> (SNI and the
 * host name, or the IP address when <name> is one).  NULL on failure,
 * with OpenSSL's error queue set. */
struct ssl_ctx_st;
struct ssl_st;
struct x509_store_ctx_st;
struct ssl_ctx_st *tls_policy_ctx_new(const char *ca_file,
		    int (*verify_cb)(int, struct x509_store_ctx_st *));
struct ssl_st	*tls_policy_ssl_new(struct ssl_ctx_st *ctx, const char *name);

/* Loads the CAs a client context trusts: <ca_file> when set, else the
 * system store (its hashed directory when there is one: nothing is read
 * until a chain needs it).  Returns 0, or -1 with OpenSSL's error queue
 * set.  <ctx> is an SSL_CTX. */
struct ssl_ctx_st;
int		 tls_ctx_load_cas(struct ssl_ctx_st *ctx, const char *ca_file);
/* Reference counting, as for conf: a relay holds its context for its
 * whole life (STARTTLS comes after the connect); tls_client_free()
 * drops one reference and frees with the last.  NULL is a no-op. */
struct tls_client *tls_client_ref(struct tls_client *);
void		 tls_client_free(struct tls_client *);

/* Layers a TLS client filter over the connected plain bufferevent
 * <under> (at once for implicit TLS, after "220" to STARTTLS otherwise)
 * and starts the handshake.  The peer is verified against
 * <verify_name>, which is also sent as SNI.  The result owns <under>
 * (BEV_OPT_CLOSE_ON_FREE) and frees it.  The caller must have drained
 * <under>'s input first: nothing received in plaintext may be read as
 * if it came over TLS.  Returns NULL after logging. */
struct bufferevent *tls_client_wrap(struct tls_client *, struct event_base *,
		    struct bufferevent *under, const char *verify_name);

/* What kind of failure a handshake had (see tls_error_string()). */
enum tls_failure {
	TLS_FAIL_OTHER,		/* handshake failure, reset, ... */
	TLS_FAIL_NOT_TLS,	/* the peer does not speak TLS there */
	TLS_FAIL_CERT_NAME,	/* certificate for another name */
	TLS_FAIL_CERT_IP,	/* certificate does not name the address */
	TLS_FAIL_CERT,		/* untrusted, expired, ... */
};

/* After BEV_EVENT_ERROR on a TLS bufferevent: a one-line reason for the
 * log ("certificate verify failed: hostname mismatch", "handshake
 * failure", ...), written into <buf>, and its kind in *<kind> unless
 * NULL.  Drains OpenSSL's error queue. */
const char	*tls_error_string(struct bufferevent *, char *buf, size_t bufsz,
		    enum tls_failure *kind);

/*
 * The server side, for LAN clients: STARTTLS on the plain listeners and
 * implicit TLS on listen_tls.  Clients are not asked for certificates.
 */
struct tls_server;		/* wraps a server SSL_CTX */

/* Builds the server context from <cert_file> (PEM: the certificate,
 * then any intermediates) and <key_file> (PEM), and checks that the key
 * belongs to the certificate.  <min_version> is the oldest protocol
 * accepted: 10, 11, 12 or 13 (TLS 1.0 ... 1.3).  For 10 and 11,
 * OpenSSL's security level is lowered to 0 and the cipher list keeps
 * the SHA-1 CBC suites those versions need, so that old printers can
 * connect; 12 and 13 keep OpenSSL's defaults.  Returns NULL after
 * logging (unreadable file, mismatched pair, bad version). */
struct tls_server *tls_server_new(const char *cert_file, const char *key_file,
		    int min_version);
void		 tls_server_free(struct tls_server *);

/* A TLS server bufferevent in the accepting state on the connected,
 * non-blocking socket <fd>: at once for implicit TLS, or after "220
 * Ready to start TLS" went out in plaintext (STARTTLS), on a descriptor
 * whose plaintext bufferevent is gone, so that nothing the client sent
 * before the handshake is read as if it came over TLS (RFC 3207
 * section 4.2).  BEV_EVENT_CONNECTED reports the finished handshake.
 * The result owns <fd> (BEV_OPT_CLOSE_ON_FREE) and holds its own
 * reference to the SSL_CTX, so tls_server_free() may run while
 * connections live.  Returns NULL after logging; <fd> is then still
 * the caller's. */
struct bufferevent *tls_server_wrap(struct tls_server *, struct event_base *,
		    int fd);

/* True when application data has arrived and been decrypted, or sits
 * in OpenSSL's buffer, on the TLS bufferevent <bev> (for the
 * "talked before the greeting" check after an implicit handshake). */
bool		 tls_has_pending(struct bufferevent *);

/* "TLSv1.3" and "TLS_AES_256_GCM_SHA384" of an established connection,
 * static strings from OpenSSL ("" when there is no TLS). */
const char	*tls_version(struct bufferevent *);
const char	*tls_cipher(struct bufferevent *);

/* True once the handshake finished and the peer was verified. */
bool		 tls_is_verified(struct bufferevent *);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for the log, into <buf>. */
const char	*tls_describe(struct bufferevent *, char *buf, size_t bufsz);

#endif /* TLS_H */
