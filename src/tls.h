/*
 * tls.h - TLS for the relay client: one verifying client context, and
 * per-connection setup with SNI and host name checking.
 *
 * The only module that includes OpenSSL's headers (besides sasl.c for
 * base64).  Policy: TLS 1.2 or newer, peer verification against the
 * system CAs or a configured file, the certificate must match the
 * configured name.  There is no option to turn verification off.
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

/* After BEV_EVENT_ERROR on a TLS bufferevent: a one-line reason for the
 * log ("certificate verify failed: hostname mismatch", "handshake
 * failure", ...), written into <buf>.  Drains OpenSSL's error queue. */
const char	*tls_error_string(struct bufferevent *, char *buf, size_t bufsz);

/* True once the handshake finished and the peer was verified. */
bool		 tls_is_verified(struct bufferevent *);

/* "TLSv1.3 TLS_AES_256_GCM_SHA384" for the log, into <buf>. */
const char	*tls_describe(struct bufferevent *, char *buf, size_t bufsz);

#endif /* TLS_H */
