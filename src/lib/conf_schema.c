/*
 * conf_schema.c - the table of every configuration key, and the
 * libconfuse option arrays built from it.
 *
 * These names are a public contract, documented in smartrelay.conf(5)
 * and etc/smartrelay.conf.  hostname has no default here: the builder
 * supplies the machine's name.  Integers are read by the int_parse
 * callback (decimal only); durations are strings for
 * str_parse_duration().  A table rather than X-macros: each row reads
 * as the key's whole contract, and a unit test walks the rows.
 */
#include "config.h"
#include "conf_schema.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "util.h"

/* Indexed by enum conf_bare_lf, conf_tls_mode, log_syslog,
 * conf_from_rewrite, conf_net_auth, the TLS version (10 + index),
 * conf_auth and conf_family. */
static const char *const conf_lf_names[] = { "normalize", "reject", NULL };
static const char *const conf_tls_names[] = { "starttls", "implicit", NULL };
static const char *const conf_log_names[] = { "stderr", "syslog", NULL };
static const char *const conf_from_names[] = { "keep", "account", NULL };
static const char *const conf_net_auth_names[] = { "optional", "required",
	NULL };
static const char *const conf_tls_version_names[] = { "1.0", "1.1", "1.2",
	"1.3", NULL };
static const char *const conf_auth_names[] = { "auto", "plain", "login",
	"xoauth2", NULL };
static const char *const conf_family_names[] = { "any", "ipv4", "ipv6",
	NULL };

/* A value's destination, in the struct its section fills. */
#define IN_CONF(f)	.off = offsetof(struct conf, f)
#define IN_UP(f)	.off = offsetof(struct conf_upstream, f)
#define IN_NET(f)	.off = offsetof(struct conf_network, f)
#define LIST_IN_CONF(f, n) \
	.off = offsetof(struct conf, f), .count = offsetof(struct conf, n)

/* Shapes that recur: a string, a string that may be empty, a choice. */
#define STR(d, c)	CONF_T_STR, .def = (d), .check = (c)
#define OPT(d, c)	CONF_T_STR, .def = (d), .check = (c), .empty_ok = true
#define CHOICE(d, ch)	CONF_T_STR, .def = (d), .check = CONF_C_CHOICE, \
			.choices = (ch)
#define INT(d, lo, hi)	CONF_T_INT, .idef = (d), .check = CONF_C_INT, \
			.min = (lo), .max = (hi)
#define LIST(d, c)	CONF_T_LIST, .def = (d), .check = (c)
#define SEC(s, c)	CONF_T_SEC, .sec = (s), .check = (c)

const struct conf_key conf_schema[CONF_NKEYS] = {
	[CONF_HOSTNAME] = { "hostname", STR("", CONF_C_NAME),
	    .store = CONF_S_STR, IN_CONF(hostname) },
	[CONF_LISTEN] = { "listen",
	    LIST("{\"127.0.0.1:25\", \"[::1]:25\"}", CONF_C_LISTEN),
	    .store = CONF_S_STRS, LIST_IN_CONF(listen, nlisten) },
	[CONF_ALLOW] = { "allow",
	    LIST("{\"127.0.0.0/8\", \"::1/128\"}", CONF_C_ALLOW),
	    .store = CONF_S_CIDRS, LIST_IN_CONF(allow, nallow) },
	[CONF_SPOOL] = { "spool", STR("/var/spool/smartrelay", CONF_C_PATH),
	    .store = CONF_S_STR, IN_CONF(spool) },
	[CONF_USER] = { "user", OPT("smartrelay", CONF_C_WORD),
	    .store = CONF_S_STR, IN_CONF(user) },
	[CONF_CONTROL_SOCKET] = { "control_socket",
	    STR("/run/smartrelay/control.sock", CONF_C_SOCKET),
	    .store = CONF_S_STR, IN_CONF(control_socket) },
	[CONF_MAX_MESSAGE_SIZE] = { "max_message_size",
	    INT(26214400, 1, 1L << 30), .store = CONF_S_U64,
	    IN_CONF(max_message_size) },
	[CONF_MAX_RECIPIENTS] = { "max_recipients", INT(100, 1, 10000),
	    .store = CONF_S_UINT, IN_CONF(max_recipients) },
	[CONF_MAX_CLIENTS] = { "max_clients", INT(512, 1, 65535),
	    .store = CONF_S_UINT, IN_CONF(max_clients) },
	[CONF_MAX_CLIENTS_PER_IP] = { "max_clients_per_ip", INT(32, 1, 65535),
	    .store = CONF_S_UINT, IN_CONF(max_clients_per_ip) },
	[CONF_MAX_CLIENTS_PER_IP_EXEMPT] = { "max_clients_per_ip_exempt",
	    LIST("{\"127.0.0.0/8\", \"::1/128\"}", CONF_C_CIDR),
	    .store = CONF_S_CIDRS,
	    LIST_IN_CONF(per_ip_exempt, nper_ip_exempt) },
	[CONF_BARE_LF] = { "bare_lf", CHOICE("normalize", conf_lf_names),
	    .store = CONF_S_ENUM, IN_CONF(bare_lf) },
	[CONF_COMMAND_TIMEOUT] = { "command_timeout", STR("5m",
	    CONF_C_DURATION), .store = CONF_S_SECS, IN_CONF(command_timeout) },
	[CONF_DATA_TIMEOUT] = { "data_timeout", STR("10m", CONF_C_DURATION),
	    .store = CONF_S_SECS, IN_CONF(data_timeout) },
	/* log_syslog is the index of the choice, set by the builder. */
	[CONF_LOG] = { "log", CHOICE("stderr", conf_log_names) },
	[CONF_LOG_LEVEL] = { "log_level", STR("info", CONF_C_LOG_LEVEL),
	    .store = CONF_S_STR, IN_CONF(log_level) },
	[CONF_UPSTREAM] = { "upstream", SEC(CONF_SEC_UPSTREAM, CONF_C_MULTI) },
	[CONF_QUEUE] = { "queue", SEC(CONF_SEC_QUEUE, CONF_C_SECTION) },
	[CONF_METRICS] = { "metrics", SEC(CONF_SEC_METRICS, CONF_C_SECTION) },
	[CONF_LISTEN_TLS] = { "listen_tls", LIST("{}", CONF_C_LISTEN),
	    .store = CONF_S_STRS, LIST_IN_CONF(listen_tls, nlisten_tls) },
	[CONF_FROM] = { "from", SEC(CONF_SEC_FROM, CONF_C_SECTION) },
	[CONF_NETWORK] = { "network", SEC(CONF_SEC_NETWORK, CONF_C_NETWORK) },
	[CONF_TLS] = { "tls", SEC(CONF_SEC_TLS, CONF_C_SECTION) },
	[CONF_AUTH] = { "auth", SEC(CONF_SEC_AUTH, CONF_C_SECTION) },
	/* domain and admin_address have defaults the builder works out. */
	[CONF_DOMAIN] = { "domain", OPT("", CONF_C_DOMAIN) },
	[CONF_ADMIN_ADDRESS] = { "admin_address", OPT("", CONF_C_MAILBOX) },
	[CONF_ALIASES] = { "aliases", OPT("", CONF_C_PATH),
	    .store = CONF_S_STR, IN_CONF(aliases_path) },
	[CONF_CLIENTS] = { "clients", SEC(CONF_SEC_CLIENTS, CONF_C_CLIENTS) },

	[CONF_UP_HOST] = { "host", STR("smtp.gmail.com", CONF_C_NAME),
	    .store = CONF_S_STR, IN_UP(host) },
	/* 465 when tls = implicit and the file sets no port. */
	[CONF_UP_PORT] = { "port", INT(587, 1, 65535),
	    .store = CONF_S_U16, IN_UP(port) },
	[CONF_UP_ADDRESS_FAMILY] = { "address_family",
	    CHOICE("any", conf_family_names),
	    .store = CONF_S_ENUM, IN_UP(address_family) },
	[CONF_UP_TLS] = { "tls", CHOICE("starttls", conf_tls_names),
	    .store = CONF_S_ENUM, IN_UP(tls) },
	/* "" means host. */
	[CONF_UP_VERIFY_NAME] = { "verify_name", OPT("", CONF_C_NAME),
	    .store = CONF_S_STR, IN_UP(verify_name) },
	[CONF_UP_CA_FILE] = { "ca_file", OPT("", CONF_C_PATH),
	    .store = CONF_S_STR, IN_UP(ca_file) },
	[CONF_UP_USERNAME] = { "username", OPT("", CONF_C_WORD),
	    .store = CONF_S_STR, IN_UP(username) },
	[CONF_UP_PASSWORD_FILE] = { "password_file",
	    STR("/etc/smartrelay/password", CONF_C_PATH),
	    .store = CONF_S_STR, IN_UP(password_file) },
	[CONF_UP_CONNECTIONS] = { "connections", INT(2, 1, 64),
	    .store = CONF_S_UINT, IN_UP(connections) },
	/* "" means "host:port". */
	[CONF_UP_NAME] = { "name", OPT("", CONF_C_WORD),
	    .store = CONF_S_STR, IN_UP(name) },
	[CONF_UP_AUTH] = { "auth", CHOICE("auto", conf_auth_names),
	    .store = CONF_S_ENUM, IN_UP(auth) },
	[CONF_UP_OAUTH_CLIENT_ID] = { "oauth_client_id", OPT("", CONF_C_WORD),
	    .store = CONF_S_STR, IN_UP(oauth_client_id) },
	[CONF_UP_OAUTH_CLIENT_SECRET_FILE] = { "oauth_client_secret_file",
	    OPT("", CONF_C_PATH), .store = CONF_S_STR,
	    IN_UP(oauth_client_secret_file) },
	[CONF_UP_OAUTH_REFRESH_TOKEN_FILE] = { "oauth_refresh_token_file",
	    OPT("", CONF_C_PATH), .store = CONF_S_STR,
	    IN_UP(oauth_refresh_token_file) },
	[CONF_UP_OAUTH_TOKEN_URL] = { "oauth_token_url",
	    STR("https://oauth2.googleapis.com/token", CONF_C_URL),
	    .store = CONF_S_STR, IN_UP(oauth_token_url) },
	[CONF_UP_OAUTH_CA_FILE] = { "oauth_ca_file", OPT("", CONF_C_PATH),
	    .store = CONF_S_STR, IN_UP(oauth_ca_file) },
	[CONF_UP_QUOTA] = { "quota", OPT("none", CONF_C_QUOTA),
	    .store = CONF_S_STR, IN_UP(quota) },
	[CONF_UP_FROM_ADDRESS] = { "from_address", OPT("", CONF_C_MAILBOX),
	    .store = CONF_S_STR, IN_UP(from_address) },
	[CONF_UP_FAILOVER_ON_REJECT] = { "failover_on_reject", CONF_T_BOOL,
	    .idef = 0, .store = CONF_S_BOOL, IN_UP(failover_on_reject) },

	[CONF_QUEUE_LIFETIME] = { "lifetime", STR("5d", CONF_C_DURATION),
	    .store = CONF_S_SECS, IN_CONF(queue.lifetime) },
	[CONF_QUEUE_RETRY_MIN] = { "retry_min", STR("1m", CONF_C_DURATION),
	    .store = CONF_S_SECS, IN_CONF(queue.retry_min) },
	[CONF_QUEUE_RETRY_MAX] = { "retry_max", STR("1h", CONF_C_DURATION),
	    .store = CONF_S_SECS, IN_CONF(queue.retry_max) },
	[CONF_QUEUE_BOUNCE_TO] = { "bounce_to", OPT("", CONF_C_MAILBOX),
	    .store = CONF_S_STR, IN_CONF(queue.bounce_to) },

	[CONF_METRICS_LISTEN] = { "listen", OPT("", CONF_C_ENDPOINT),
	    .store = CONF_S_STR, IN_CONF(metrics_listen) },

	[CONF_FROM_REWRITE] = { "rewrite", CHOICE("keep", conf_from_names),
	    .store = CONF_S_ENUM, IN_CONF(from_rewrite) },
	[CONF_FROM_SUFFIX] = { "suffix", OPT(" via smartrelay", CONF_C_TEXT),
	    .store = CONF_S_STR, IN_CONF(from_suffix) },

	[CONF_NET_NAME] = { "name", OPT("", CONF_C_TEXT),
	    .store = CONF_S_STR, IN_NET(name) },
	[CONF_NET_AUTH] = { "auth", CHOICE("optional", conf_net_auth_names),
	    .store = CONF_S_ENUM, IN_NET(auth) },
	/* "" means the top-level bare_lf: set by the builder. */
	[CONF_NET_BARE_LF] = { "bare_lf", CHOICE("", conf_lf_names),
	    .empty_ok = true },

	[CONF_TLS_CERT_FILE] = { "cert_file", OPT("", CONF_C_PATH),
	    .store = CONF_S_STR, IN_CONF(server_tls.cert_file) },
	[CONF_TLS_KEY_FILE] = { "key_file", OPT("", CONF_C_PATH),
	    .store = CONF_S_STR, IN_CONF(server_tls.key_file) },
	/* min_version is 10 + the index of the choice: set by the builder. */
	[CONF_TLS_MIN_VERSION] = { "min_version",
	    CHOICE("1.2", conf_tls_version_names) },

	[CONF_AUTH_USERS_FILE] = { "users_file", OPT("", CONF_C_PATH),
	    .store = CONF_S_STR, IN_CONF(client_auth.users_file) },
	[CONF_AUTH_PLAINTEXT] = { "plaintext", LIST("{}", CONF_C_LISTEN),
	    .store = CONF_S_STRS, LIST_IN_CONF(client_auth.plaintext,
	    client_auth.nplaintext) },
};

const struct conf_section conf_sections[CONF_NSECS] = {
	[CONF_SEC_ROOT] = { "", CONF_HOSTNAME, CONF_UP_HOST, CFGF_NONE },
	[CONF_SEC_UPSTREAM] = { "upstream", CONF_UP_HOST, CONF_QUEUE_LIFETIME,
	    CFGF_MULTI },
	[CONF_SEC_QUEUE] = { "queue", CONF_QUEUE_LIFETIME, CONF_METRICS_LISTEN,
	    CFGF_NONE },
	[CONF_SEC_METRICS] = { "metrics", CONF_METRICS_LISTEN,
	    CONF_FROM_REWRITE, CFGF_NONE },
	[CONF_SEC_FROM] = { "from", CONF_FROM_REWRITE, CONF_NET_NAME,
	    CFGF_NONE },
	[CONF_SEC_NETWORK] = { "network", CONF_NET_NAME, CONF_TLS_CERT_FILE,
	    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES },
	[CONF_SEC_TLS] = { "tls", CONF_TLS_CERT_FILE, CONF_AUTH_USERS_FILE,
	    CFGF_NONE },
	[CONF_SEC_AUTH] = { "auth", CONF_AUTH_USERS_FILE, CONF_NKEYS,
	    CFGF_NONE },
	[CONF_SEC_CLIENTS] = { "clients", CONF_NKEYS, CONF_NKEYS,
	    CFGF_MULTI | CFGF_KEYSTRVAL },
};

/* One option of the array, from key <k>. */
static void
conf_schema_opt(cfg_opt_t *o, enum conf_key_id k,
    const struct conf_schema_cbs *cbs, enum conf_sec_id sec)
{
	const struct conf_key	*key = &conf_schema[k];

	/* libconfuse copies the array and never writes the names or the
	 * defaults of the template, hence the casts. */
	o->name = (char *)(uintptr_t)key->name;
	o->validcb = cbs->validate[sec];
	switch (key->type) {
	case CONF_T_STR:
		o->type = CFGT_STR;
		o->def.string = key->def;
		break;
	case CONF_T_INT:
		o->type = CFGT_INT;
		o->def.number = key->idef;
		o->parsecb = cbs->int_parse;
		break;
	case CONF_T_BOOL:
		o->type = CFGT_BOOL;
		o->def.boolean = key->idef != 0 ? cfg_true : cfg_false;
		break;
	case CONF_T_LIST:
		o->type = CFGT_STR;
		o->flags = CFGF_LIST;
		o->def.parsed = (char *)(uintptr_t)key->def;
		break;
	case CONF_T_SEC:
		o->type = CFGT_SEC;
		o->flags = conf_sections[key->sec].flags;
		o->subopts = conf_schema_opts(key->sec, cbs);
		break;
	}
}

cfg_opt_t *
conf_schema_opts(enum conf_sec_id sec, const struct conf_schema_cbs *cbs)
{
	const struct conf_section	*s = &conf_sections[sec];
	cfg_opt_t			*opts;
	int				 k;

	/* calloc: the last element is CFG_END(), all zeroes. */
	opts = xcalloc((size_t)(s->end - s->first) + 1, sizeof(*opts));
	for (k = s->first; k < (int)s->end; k++)
		conf_schema_opt(&opts[k - s->first], (enum conf_key_id)k, cbs,
		    sec);
	return opts;
}

void
conf_schema_opts_free(cfg_opt_t *opts)
{
	size_t	i;

	if (opts == NULL)
		return;
	for (i = 0; opts[i].name != NULL; i++)
		conf_schema_opts_free(opts[i].subopts);
	free(opts);
}

int
conf_schema_key(enum conf_sec_id sec, cfg_t *cfg, cfg_opt_t *opt)
{
	const struct conf_section	*s = &conf_sections[sec];
	int				 i;

	for (i = 0; cfg->opts[i].name != NULL; i++)
		if (&cfg->opts[i] == opt)
			return i < (int)(s->end - s->first) ?
			    (int)s->first + i : -1;
	return -1;
}

const char *
conf_schema_label(enum conf_key_id k, char *buf, size_t bufsz)
{
	const struct conf_section	*s = &conf_sections[CONF_SEC_ROOT];
	int				 i;

	for (i = 0; i < CONF_NSECS; i++)
		if (k >= conf_sections[i].first && k < conf_sections[i].end)
			s = &conf_sections[i];
	snprintf(buf, bufsz, "%s%s%s", s->name, s->name[0] != '\0' ? "." : "",
	    conf_schema[k].name);
	return buf;
}
