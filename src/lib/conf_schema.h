/*
 * conf_schema.h - the configuration schema: every key of the file, once.
 *
 * One table names each key with its libconfuse type and default, the
 * check its value must pass, and where the value goes in struct conf.
 * The libconfuse option arrays are built from it (conf_schema_opts()),
 * the parse callbacks find a key's entry by its position, and the
 * checks between keys name keys by their enum conf_key_id.  Nothing
 * matches names at run time.  Pure data, no parsing.
 */
#ifndef CONF_SCHEMA_H
#define CONF_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>

#include <confuse.h>

#define CONF_DURATION_MAX	(365 * 86400ULL)	/* seconds */
#define CONF_TEXT_MAX		100			/* names, suffix */

/* Every key, section by section, in the order of the libconfuse option
 * arrays (a section's keys are contiguous: see conf_sections[]). */
enum conf_key_id {
	/* the top level */
	CONF_HOSTNAME,
	CONF_LISTEN,
	CONF_ALLOW,
	CONF_SPOOL,
	CONF_USER,
	CONF_CONTROL_SOCKET,
	CONF_MAX_MESSAGE_SIZE,
	CONF_MAX_RECIPIENTS,
	CONF_MAX_CLIENTS,
	CONF_MAX_CLIENTS_PER_IP,
	CONF_MAX_CLIENTS_PER_IP_EXEMPT,
	CONF_BARE_LF,
	CONF_COMMAND_TIMEOUT,
	CONF_DATA_TIMEOUT,
	CONF_LOG,
	CONF_LOG_LEVEL,
	CONF_UPSTREAM,
	CONF_QUEUE,
	CONF_METRICS,
	CONF_LISTEN_TLS,
	CONF_FROM,
	CONF_NETWORK,
	CONF_TLS,
	CONF_AUTH,
	CONF_DOMAIN,
	CONF_ADMIN_ADDRESS,
	CONF_ALIASES,
	CONF_CLIENTS,
	/* upstream { } */
	CONF_UP_HOST,
	CONF_UP_PORT,
	CONF_UP_ADDRESS_FAMILY,
	CONF_UP_TLS,
	CONF_UP_VERIFY_NAME,
	CONF_UP_CA_FILE,
	CONF_UP_USERNAME,
	CONF_UP_PASSWORD_FILE,
	CONF_UP_CONNECTIONS,
	CONF_UP_NAME,
	CONF_UP_AUTH,
	CONF_UP_OAUTH_CLIENT_ID,
	CONF_UP_OAUTH_CLIENT_SECRET_FILE,
	CONF_UP_OAUTH_REFRESH_TOKEN_FILE,
	CONF_UP_OAUTH_TOKEN_URL,
	CONF_UP_OAUTH_CA_FILE,
	CONF_UP_QUOTA,
	CONF_UP_FROM_ADDRESS,
	CONF_UP_FAILOVER_ON_REJECT,
	/* queue { } */
	CONF_QUEUE_LIFETIME,
	CONF_QUEUE_RETRY_MIN,
	CONF_QUEUE_RETRY_MAX,
	CONF_QUEUE_BOUNCE_TO,
	/* metrics { } */
	CONF_METRICS_LISTEN,
	/* from { } */
	CONF_FROM_REWRITE,
	CONF_FROM_SUFFIX,
	/* network "CIDR" { } */
	CONF_NET_NAME,
	CONF_NET_AUTH,
	CONF_NET_BARE_LF,
	/* tls { } */
	CONF_TLS_CERT_FILE,
	CONF_TLS_KEY_FILE,
	CONF_TLS_MIN_VERSION,
	/* auth { } */
	CONF_AUTH_USERS_FILE,
	CONF_AUTH_PLAINTEXT,
	CONF_NKEYS
};

/* The sections, the top level first. */
enum conf_sec_id {
	CONF_SEC_ROOT,
	CONF_SEC_UPSTREAM,
	CONF_SEC_QUEUE,
	CONF_SEC_METRICS,
	CONF_SEC_FROM,
	CONF_SEC_NETWORK,
	CONF_SEC_TLS,
	CONF_SEC_AUTH,
	CONF_SEC_CLIENTS,		/* no keys of its own: see below */
	CONF_NSECS
};

/* The libconfuse type of a key. */
enum conf_type {
	CONF_T_STR,
	CONF_T_INT,			/* decimal only, see conf_value_int() */
	CONF_T_BOOL,
	CONF_T_LIST,			/* a list of strings */
	CONF_T_SEC,			/* a section: see sec */
};

/* What a value must be (conf_value_problem() says why it is not). */
enum conf_check {
	CONF_C_NONE,		/* libconfuse checks it (a bool) */
	CONF_C_NAME,		/* host name or numeric address */
	CONF_C_PATH,		/* absolute path */
	CONF_C_SOCKET,		/* absolute path that fits in sun_path */
	CONF_C_WORD,		/* printable ASCII, no spaces */
	CONF_C_MAILBOX,		/* local@domain */
	CONF_C_INT,		/* decimal integer in [min, max] */
	CONF_C_DURATION,	/* str_parse_duration(), 1s to 365d */
	CONF_C_CHOICE,		/* one of choices[] */
	CONF_C_LOG_LEVEL,	/* log_level_parse() */
	CONF_C_LISTEN,		/* list entry for conf_split_hostport() */
	CONF_C_ALLOW,		/* list entry for cidr_parse(), never /0 */
	CONF_C_SECTION,		/* a section that may appear once */
	CONF_C_MULTI,		/* a section that may appear many times */
	CONF_C_URL,		/* https://host[:port]/path */
	CONF_C_TEXT,		/* no control characters, at most 100 */
	CONF_C_NETWORK,		/* a "network CIDR" section */
	CONF_C_QUOTA,		/* quota_parse() */
	CONF_C_ENDPOINT,	/* one numeric address:port, or "" */
	CONF_C_CIDR,		/* list entry for cidr_parse() */
	CONF_C_DOMAIN,		/* a mail domain (RFC 5321 Domain) */
	CONF_C_CLIENTS,		/* a "clients" table, see conf_clients.h */
};

/* Where a checked value is copied: a field of struct conf (top level
 * and single sections), struct conf_upstream or struct conf_network, at
 * offset off.  CONF_S_NONE: the builder handles the key itself. */
enum conf_store {
	CONF_S_NONE,
	CONF_S_STR,			/* char *, owned */
	CONF_S_UINT,			/* unsigned int */
	CONF_S_U16,			/* uint16_t */
	CONF_S_U64,			/* uint64_t */
	CONF_S_SECS,			/* uint64_t, from a duration */
	CONF_S_ENUM,			/* an enum: the index in choices[] */
	CONF_S_BOOL,			/* bool */
	CONF_S_STRS,			/* char **, and a size_t at count */
	CONF_S_CIDRS,			/* struct cidr *, size_t at count */
};

struct conf_key {
	const char		*name;		/* as written in the file */
	enum conf_type		 type;
	const char		*def;		/* STR; LIST as "{...}" text */
	long			 idef;		/* INT; BOOL (0 or 1) */
	enum conf_check		 check;
	bool			 empty_ok;	/* "" is a valid value */
	long			 min, max;	/* CONF_C_INT */
	const char *const	*choices;	/* CONF_C_CHOICE, NULL-ended */
	enum conf_sec_id	 sec;		/* CONF_T_SEC: its keys */
	enum conf_store		 store;
	size_t			 off;		/* of the field */
	size_t			 count;		/* of the size_t, for lists */
};

/* A section and its keys.  "clients" has none: its keys are the
 * quoted networks, which libconfuse adds as it reads them
 * (CFGF_KEYSTRVAL). */
struct conf_section {
	const char		*name;		/* "" for the top level */
	enum conf_key_id	 first, end;	/* its keys: [first, end) */
	int			 flags;		/* CFGF_* of the section */
};

extern const struct conf_key		conf_schema[CONF_NKEYS];
extern const struct conf_section	conf_sections[CONF_NSECS];

/* Key <k> as users name it in messages ("upstream.port") in <buf>. */
const char	*conf_schema_label(enum conf_key_id k, char *buf,
		    size_t bufsz);

/* The callbacks a parse wants on each option: <validate[s]> on the keys
 * of section s, <int_parse> on every integer. */
struct conf_schema_cbs {
	cfg_validate_callback_t	 validate[CONF_NSECS];
	cfg_callback_t		 int_parse;
};

/* The libconfuse option array of section <sec>, its sections built too,
 * each option with the callbacks of <cbs>.  The caller frees it with
 * conf_schema_opts_free() (after cfg_init(), which copies it). */
cfg_opt_t	*conf_schema_opts(enum conf_sec_id sec,
		    const struct conf_schema_cbs *cbs);
void		 conf_schema_opts_free(cfg_opt_t *);

/* The key of option <opt> of a section instance <cfg> of section <sec>
 * (libconfuse keeps the schema's order), or -1 when <opt> is not one of
 * <cfg>'s own: libconfuse reads "queue|lifetime = 1d" at the top level
 * as a path into the section. */
int		 conf_schema_key(enum conf_sec_id sec, cfg_t *cfg,
		    cfg_opt_t *opt);

#endif /* CONF_SCHEMA_H */
