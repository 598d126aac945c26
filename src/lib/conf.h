/*
 * conf.h - the configuration file, parsed once into an immutable
 * struct conf.
 *
 * conf_schema.c holds the schema: every key's name, default, limits
 * and place in struct conf live there and nowhere else; conf.c reads the
 * file with libconfuse, and conf_build.c fills struct conf.  Callers read
 * struct conf and never see cfg_t.
 */
#ifndef CONF_H
#define CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "route.h"

#define CONF_DEFAULT_PATH	SYSCONFDIR "/smartrelay/smartrelay.conf"
#define CONF_SYSTEM_PATH	"/etc/smartrelay/smartrelay.conf"

/* The configuration file to use when none is given: the build's
 * CONF_DEFAULT_PATH when it exists, else CONF_SYSTEM_PATH (where the
 * tools look even when built with another prefix).  Static string. */
const char	*conf_default_path(void);

enum conf_bare_lf {
	CONF_BARE_LF_NORMALIZE,		/* accept, store as CRLF */
	CONF_BARE_LF_REJECT,		/* 554 5.6.0 after end of DATA */
};

enum conf_tls_mode {
	CONF_TLS_STARTTLS,		/* EHLO, STARTTLS, EHLO (port 587) */
	CONF_TLS_IMPLICIT,		/* TLS from the first byte (port 465) */
};

/* How the relay authenticates to an upstream. */
enum conf_auth {
	CONF_AUTH_AUTO,			/* PLAIN or LOGIN, password_file */
	CONF_AUTH_PLAIN,
	CONF_AUTH_LOGIN,
	CONF_AUTH_XOAUTH2,		/* OAuth 2.0 access token */
};

/* Which addresses of an upstream's host the relay connects to. */
enum conf_family {
	CONF_FAMILY_ANY,		/* IPv6 and IPv4, interleaved */
	CONF_FAMILY_IPV4,
	CONF_FAMILY_IPV6,
};

#define CONF_UPSTREAM_MAX	8

/* One "upstream" section.  Several are tried in the order written. */
struct conf_upstream {
	char			*name;		/* for logs: "host:port" unless
						 * the section sets name */
	char			*host;
	uint16_t		 port;
	enum conf_family	 address_family;
	enum conf_tls_mode	 tls;
	char			*verify_name;	/* never empty: defaults to host */
	char			*ca_file;	/* "" means the system CAs */
	char			*username;
	char			*password_file;
	unsigned int		 connections;
	enum conf_auth		 auth;
	char			*oauth_client_id;
	char			*oauth_client_secret_file;
	char			*oauth_refresh_token_file;
	char			*oauth_token_url;	/* https://... */
	char			*oauth_ca_file;	/* "" means the system CAs */
	char			*quota;		/* checked by quota_parse() */
	char			*from_address;	/* alias for From rewriting;
						 * "" means username */
	bool			 failover_on_reject; /* 5xx here: try the
						 * next upstream instead */
};

struct conf_queue {
	uint64_t		 lifetime;	/* seconds */
	uint64_t		 retry_min;	/* seconds */
	uint64_t		 retry_max;	/* seconds */
	char			*bounce_to;	/* "" means the envelope sender */
};

/* What happens to the From: header on relay. */
enum conf_from_rewrite {
	CONF_FROM_KEEP,			/* leave the message alone */
	CONF_FROM_ACCOUNT,		/* From: the account, original kept in
					 * Reply-To: and X-Original-From: */
};

/* Whether clients of a network must authenticate before MAIL. */
enum conf_net_auth {
	CONF_NET_AUTH_OPTIONAL,
	CONF_NET_AUTH_REQUIRED,
};

/* Policy for the clients of one network ("network" sections and the
 * "clients" name table).  The most specific matching network applies;
 * clients outside every network get the top-level settings. */
struct conf_network {
	struct cidr		 net;
	char			*name;		/* "" when unnamed */
	enum conf_net_auth	 auth;
	enum conf_bare_lf	 bare_lf;
};

/* TLS for LAN clients: STARTTLS on the listen addresses and implicit
 * TLS on listen_tls, once cert_file and key_file are set. */
struct conf_server_tls {
	char			*cert_file;	/* "" disables inbound TLS */
	char			*key_file;
	int			 min_version;	/* 10, 11, 12 or 13 */
};

/* AUTH for LAN clients: offered once users_file is set. */
struct conf_client_auth {
	char			*users_file;	/* "user:crypt-hash" lines */
	char			**plaintext;	/* loopback listen addresses
						 * that allow AUTH without TLS */
	size_t			 nplaintext;
};

/* Where the admin address came from (for the line logged at start). */
enum conf_admin_from {
	CONF_ADMIN_NONE,		/* neither: local names stay local */
	CONF_ADMIN_SET,			/* admin_address */
	CONF_ADMIN_USERNAME,		/* the first upstream's username */
};

struct aliases;

struct conf {
	char			*path;		/* the file this came from */
	char			*hostname;	/* never empty: defaults to FQDN */
	char			*domain;	/* never empty: defaults to
						 * hostname */
	char			*admin_address;	/* "" when there is none */
	enum conf_admin_from	 admin_from;
	char			*aliases_path;	/* "" when there is none */
	struct aliases		*aliases;	/* loaded from aliases_path */
	struct route		 route;		/* the four above, for
						 * route_rcpt() */
	char			**listen;	/* "host:port" / "[v6]:port" */
	size_t			 nlisten;
	struct cidr		*allow;
	size_t			 nallow;
	char			*spool;
	char			*user;		/* "" keeps the current user */
	char			*control_socket;
	uint64_t		 max_message_size;	/* bytes */
	unsigned int		 max_recipients;
	unsigned int		 max_clients;
	unsigned int		 max_clients_per_ip;
	struct cidr		*per_ip_exempt;	/* not counted per address */
	size_t			 nper_ip_exempt;
	enum conf_bare_lf	 bare_lf;
	uint64_t		 command_timeout;	/* seconds */
	uint64_t		 data_timeout;		/* seconds */
	bool			 log_syslog;
	char			*log_level;	/* validated by log_level_parse */
	struct conf_upstream	*upstream;	/* in failover order */
	size_t			 nupstream;	/* at least 1 */
	struct conf_queue	 queue;
	char			*metrics_listen; /* "" when disabled */
	enum conf_from_rewrite	 from_rewrite;
	char			*from_suffix;	/* after the display name:
						 * " via smartrelay" */
	struct conf_network	*networks;
	size_t			 nnetworks;
	char			**listen_tls;	/* implicit TLS listeners */
	size_t			 nlisten_tls;
	struct conf_server_tls	 server_tls;
	struct conf_client_auth	 client_auth;
	unsigned int		 refs;		/* conf_ref() / conf_free() */
};

/* The policy for a client at <addr> (sockaddr_in or sockaddr_in6), or
 * NULL when no network section covers it. */
struct sockaddr;
const struct conf_network *conf_network_find(const struct conf *,
		    const struct sockaddr *addr);

/* Parses and validates <path>.  On success returns a new conf the caller
 * owns (conf_free()).  On failure returns NULL and writes one or more
 * "file:line: message" lines to <errbuf> (always NUL-terminated). */
struct conf	*conf_load(const char *path, char *errbuf, size_t errbufsz);

/* Reference counting: every holder that may outlive a reload (a
 * session, a relay) takes a reference; conf_free() drops one and frees
 * the conf with the last.  conf_ref() returns its argument (the const
 * is the holder's promise not to write; the count is not content).
 * NULL is a no-op for both. */
const struct conf *conf_ref(const struct conf *);
void		 conf_free(const struct conf *);

/* Splits a listen entry ("127.0.0.1:25", "[::1]:25", "*:25") into host
 * and port.  <host> gets "" for "*".  Returns 0 or -1 on bad syntax. */
int		 conf_split_hostport(const char *s, char *host, size_t hostsz,
		    uint16_t *port);

#endif /* CONF_H */
