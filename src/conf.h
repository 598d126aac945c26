/*
 * conf.h - the configuration file, parsed once into an immutable
 * struct conf.
 *
 * conf.c owns the libconfuse option table: every name and default lives
 * there and nowhere else.  Callers read struct conf and never see cfg_t.
 * The whole schema is defined, including parts later modules use.
 */
#ifndef CONF_H
#define CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"

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

struct conf_upstream {
	char			*host;
	uint16_t		 port;
	enum conf_tls_mode	 tls;
	char			*verify_name;	/* never empty: defaults to host */
	char			*ca_file;	/* "" means the system CAs */
	char			*username;
	char			*password_file;
	unsigned int		 connections;
};

struct conf_queue {
	uint64_t		 lifetime;	/* seconds */
	uint64_t		 retry_min;	/* seconds */
	uint64_t		 retry_max;	/* seconds */
	char			*bounce_to;	/* "" means the envelope sender */
};

struct conf {
	char			*path;		/* the file this came from */
	char			*hostname;	/* never empty: defaults to FQDN */
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
	enum conf_bare_lf	 bare_lf;
	uint64_t		 command_timeout;	/* seconds */
	uint64_t		 data_timeout;		/* seconds */
	bool			 log_syslog;
	char			*log_level;	/* validated by log_level_parse */
	struct conf_upstream	 upstream;
	struct conf_queue	 queue;
	char			*metrics_listen; /* "" when disabled */
};

/* Parses and validates <path>.  On success returns a new conf the caller
 * owns (conf_free()).  On failure returns NULL and writes one or more
 * "file:line: message" lines to <errbuf> (always NUL-terminated). */
struct conf	*conf_load(const char *path, char *errbuf, size_t errbufsz);
void		 conf_free(struct conf *);

/* Splits a listen entry ("127.0.0.1:25", "[::1]:25", "*:25") into host
 * and port.  <host> gets "" for "*".  Returns 0 or -1 on bad syntax. */
int		 conf_split_hostport(const char *s, char *host, size_t hostsz,
		    uint16_t *port);

#endif /* CONF_H */
