/*
 * conf.c - the configuration file: one libconfuse option table, checked
 * values, an immutable struct conf.
 *
 * conf_opts[] holds every option name and default; conf_rules[] says how
 * each value is checked.  Values are checked while libconfuse reads them,
 * so each error carries its exact line; rules that tie options together
 * are checked afterwards.  libconfuse 3.3 counts three lines for every
 * one-line comment and rejects comments inside lists, so comments are
 * blanked out before the text reaches it.
 */
#include "config.h"
#include "conf.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <confuse.h>

#include "aliases.h"
#include "conftable.h"
#include "log.h"
#include "quota.h"
#include "smtp.h"
#include "util.h"

#define CONF_FILE_MAX		(1024 * 1024)		/* bytes */
#define CONF_DURATION_MAX	(365 * 86400ULL)	/* seconds */
#define CONF_NAME_MAX		253			/* RFC 1035 */
#define CONF_ERR_MAX		512
#define CONF_TEXT_MAX		100			/* names, suffix */

struct conf_ctx;
struct conf_rule;
static int	conf_int_cb(cfg_t *, cfg_opt_t *, const char *, void *);
static int	conf_listen_seen(struct conf_ctx *, const struct conf_rule *,
		    cfg_opt_t *, bool, int, const char *, const char *);
static int	conf_network_seen(struct conf_ctx *, cfg_opt_t *, int);

/* List defaults are parsed by libconfuse, hence writable arrays. */
static char	conf_listen_default[] = "{\"127.0.0.1:25\", \"[::1]:25\"}";
static char	conf_allow_default[] = "{\"127.0.0.0/8\", \"::1/128\"}";
static char	conf_exempt_default[] = "{\"127.0.0.0/8\", \"::1/128\"}";
static char	conf_listen_tls_default[] = "{}";
static char	conf_plaintext_default[] = "{}";

static cfg_opt_t conf_upstream_opts[] = {
	CFG_STR("host", "smtp.gmail.com", CFGF_NONE),
	CFG_INT_CB("port", 587, CFGF_NONE, conf_int_cb),
	CFG_STR("address_family", "any", CFGF_NONE),
	CFG_STR("tls", "starttls", CFGF_NONE),
	CFG_STR("verify_name", "", CFGF_NONE),
	CFG_STR("ca_file", "", CFGF_NONE),
	CFG_STR("username", "", CFGF_NONE),
	CFG_STR("password_file", "/etc/smartrelay/password", CFGF_NONE),
	CFG_INT_CB("connections", 2, CFGF_NONE, conf_int_cb),
	CFG_STR("name", "", CFGF_NONE),
	CFG_STR("auth", "auto", CFGF_NONE),
	CFG_STR("oauth_client_id", "", CFGF_NONE),
	CFG_STR("oauth_client_secret_file", "", CFGF_NONE),
	CFG_STR("oauth_refresh_token_file", "", CFGF_NONE),
	CFG_STR("oauth_token_url", "https://oauth2.googleapis.com/token",
	    CFGF_NONE),
	CFG_STR("oauth_ca_file", "", CFGF_NONE),
	CFG_STR("quota", "none", CFGF_NONE),
	CFG_STR("from_address", "", CFGF_NONE),
	CFG_BOOL("failover_on_reject", cfg_false, CFGF_NONE),
	CFG_END()
};

static cfg_opt_t conf_from_opts[] = {
	CFG_STR("rewrite", "keep", CFGF_NONE),
	CFG_STR("suffix", " via smartrelay", CFGF_NONE),
	CFG_END()
};

/* "network CIDR { ... }": titled, repeatable. */
static cfg_opt_t conf_network_opts[] = {
	CFG_STR("name", "", CFGF_NONE),
	CFG_STR("auth", "optional", CFGF_NONE),
	CFG_STR("bare_lf", "", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t conf_tls_opts[] = {
	CFG_STR("cert_file", "", CFGF_NONE),
	CFG_STR("key_file", "", CFGF_NONE),
	CFG_STR("min_version", "1.2", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t conf_auth_opts[] = {
	CFG_STR("users_file", "", CFGF_NONE),
	CFG_STR_LIST("plaintext", conf_plaintext_default, CFGF_NONE),
	CFG_END()
};

static cfg_opt_t conf_metrics_opts[] = {
	CFG_STR("listen", "", CFGF_NONE),
	CFG_END()
};

static cfg_opt_t conf_queue_opts[] = {
	CFG_STR("lifetime", "5d", CFGF_NONE),
	CFG_STR("retry_min", "1m", CFGF_NONE),
	CFG_STR("retry_max", "1h", CFGF_NONE),
	CFG_STR("bounce_to", "", CFGF_NONE),
	CFG_END()
};

/*
 * The whole schema.  These names are a public contract, documented in
 * smartrelay.conf(5) and etc/smartrelay.conf.  hostname has no default
 * here: conf_default_hostname() supplies it.  Integers go through
 * conf_int_cb(); durations are strings for str_parse_duration().
 */
static cfg_opt_t conf_opts[] = {
	CFG_STR("hostname", "", CFGF_NONE),
	CFG_STR_LIST("listen", conf_listen_default, CFGF_NONE),
	CFG_STR_LIST("allow", conf_allow_default, CFGF_NONE),
	CFG_STR("spool", "/var/spool/smartrelay", CFGF_NONE),
	CFG_STR("user", "smartrelay", CFGF_NONE),
	CFG_STR("control_socket", "/run/smartrelay/control.sock", CFGF_NONE),
	CFG_INT_CB("max_message_size", 26214400, CFGF_NONE, conf_int_cb),
	CFG_INT_CB("max_recipients", 100, CFGF_NONE, conf_int_cb),
	CFG_INT_CB("max_clients", 512, CFGF_NONE, conf_int_cb),
	CFG_INT_CB("max_clients_per_ip", 32, CFGF_NONE, conf_int_cb),
	CFG_STR_LIST("max_clients_per_ip_exempt", conf_exempt_default,
	    CFGF_NONE),
	CFG_STR("bare_lf", "normalize", CFGF_NONE),
	CFG_STR("command_timeout", "5m", CFGF_NONE),
	CFG_STR("data_timeout", "10m", CFGF_NONE),
	CFG_STR("log", "stderr", CFGF_NONE),
	CFG_STR("log_level", "info", CFGF_NONE),
	CFG_SEC("upstream", conf_upstream_opts, CFGF_MULTI),
	CFG_SEC("queue", conf_queue_opts, CFGF_NONE),
	CFG_SEC("metrics", conf_metrics_opts, CFGF_NONE),
	CFG_STR_LIST("listen_tls", conf_listen_tls_default, CFGF_NONE),
	CFG_SEC("from", conf_from_opts, CFGF_NONE),
	CFG_SEC("network", conf_network_opts,
	    CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_SEC("tls", conf_tls_opts, CFGF_NONE),
	CFG_SEC("auth", conf_auth_opts, CFGF_NONE),
	CFG_STR("domain", "", CFGF_NONE),
	CFG_STR("admin_address", "", CFGF_NONE),
	CFG_STR("aliases", "", CFGF_NONE),
	CFG_END()
};

enum conf_check {
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
	CONF_C_BOOL,		/* libconfuse checks true/false itself */
	CONF_C_TEXT,		/* no control characters, at most 100 */
	CONF_C_NETWORK,		/* a "network CIDR" section */
	CONF_C_QUOTA,		/* quota_parse() */
	CONF_C_ENDPOINT,	/* one numeric address:port, or "" */
	CONF_C_CIDR,		/* list entry for cidr_parse() */
	CONF_C_DOMAIN,		/* a mail domain (RFC 5321 Domain) */
};

/* Indexed by enum conf_bare_lf, enum conf_tls_mode, log_syslog and
 * enum conf_family. */
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

/* How each value is checked, by its libconfuse path. */
static const struct conf_rule {
	const char		*path;		/* "spool", "upstream|port" */
	enum conf_check		 check;
	bool			 empty_ok;
	long			 min, max;	/* CONF_C_INT */
	const char *const	*choices;	/* CONF_C_CHOICE */
} conf_rules[] = {
	{ "hostname",		CONF_C_NAME,	false, 0, 0, NULL },
	{ "listen",		CONF_C_LISTEN,	false, 0, 0, NULL },
	{ "allow",		CONF_C_ALLOW,	false, 0, 0, NULL },
	{ "spool",		CONF_C_PATH,	false, 0, 0, NULL },
	{ "user",		CONF_C_WORD,	true, 0, 0, NULL },
	{ "control_socket",	CONF_C_SOCKET,	false, 0, 0, NULL },
	{ "max_message_size",	CONF_C_INT,	false, 1, 1L << 30, NULL },
	{ "max_recipients",	CONF_C_INT,	false, 1, 10000, NULL },
	{ "max_clients",	CONF_C_INT,	false, 1, 65535, NULL },
	{ "max_clients_per_ip",	CONF_C_INT,	false, 1, 65535, NULL },
	{ "max_clients_per_ip_exempt", CONF_C_CIDR, false, 0, 0, NULL },
	{ "bare_lf",		CONF_C_CHOICE,	false, 0, 0, conf_lf_names },
	{ "command_timeout",	CONF_C_DURATION, false, 0, 0, NULL },
	{ "data_timeout",	CONF_C_DURATION, false, 0, 0, NULL },
	{ "log",		CONF_C_CHOICE,	false, 0, 0, conf_log_names },
	{ "log_level",		CONF_C_LOG_LEVEL, false, 0, 0, NULL },
	{ "upstream",		CONF_C_MULTI,	false, 0, 0, NULL },
	{ "upstream|host",	CONF_C_NAME,	false, 0, 0, NULL },
	{ "upstream|port",	CONF_C_INT,	false, 1, 65535, NULL },
	{ "upstream|address_family", CONF_C_CHOICE, false, 0, 0,
	    conf_family_names },
	{ "upstream|tls",	CONF_C_CHOICE,	false, 0, 0, conf_tls_names },
	{ "upstream|verify_name", CONF_C_NAME,	true, 0, 0, NULL },
	{ "upstream|ca_file",	CONF_C_PATH,	true, 0, 0, NULL },
	{ "upstream|username",	CONF_C_WORD,	true, 0, 0, NULL },
	{ "upstream|password_file", CONF_C_PATH, false, 0, 0, NULL },
	{ "upstream|connections", CONF_C_INT,	false, 1, 64, NULL },
	{ "upstream|name",	CONF_C_WORD,	true, 0, 0, NULL },
	{ "upstream|auth",	CONF_C_CHOICE,	false, 0, 0, conf_auth_names },
	{ "upstream|oauth_client_id", CONF_C_WORD, true, 0, 0, NULL },
	{ "upstream|oauth_client_secret_file", CONF_C_PATH, true, 0, 0, NULL },
	{ "upstream|oauth_refresh_token_file", CONF_C_PATH, true, 0, 0, NULL },
	{ "upstream|oauth_token_url", CONF_C_URL, false, 0, 0, NULL },
	{ "upstream|oauth_ca_file", CONF_C_PATH, true, 0, 0, NULL },
	{ "upstream|quota",	CONF_C_QUOTA,	true, 0, 0, NULL },
	{ "upstream|from_address", CONF_C_MAILBOX, true, 0, 0, NULL },
	{ "upstream|failover_on_reject", CONF_C_BOOL, false, 0, 0, NULL },
	{ "queue",		CONF_C_SECTION,	false, 0, 0, NULL },
	{ "queue|lifetime",	CONF_C_DURATION, false, 0, 0, NULL },
	{ "queue|retry_min",	CONF_C_DURATION, false, 0, 0, NULL },
	{ "queue|retry_max",	CONF_C_DURATION, false, 0, 0, NULL },
	{ "queue|bounce_to",	CONF_C_MAILBOX,	true, 0, 0, NULL },
	{ "metrics",		CONF_C_SECTION,	false, 0, 0, NULL },
	{ "metrics|listen",	CONF_C_ENDPOINT, true, 0, 0, NULL },
	{ "listen_tls",		CONF_C_LISTEN,	false, 0, 0, NULL },
	{ "from",		CONF_C_SECTION,	false, 0, 0, NULL },
	{ "from|rewrite",	CONF_C_CHOICE,	false, 0, 0, conf_from_names },
	{ "from|suffix",	CONF_C_TEXT,	true, 0, 0, NULL },
	{ "network",		CONF_C_NETWORK,	false, 0, 0, NULL },
	{ "network|name",	CONF_C_TEXT,	true, 0, 0, NULL },
	{ "network|auth",	CONF_C_CHOICE,	false, 0, 0,
	    conf_net_auth_names },
	{ "network|bare_lf",	CONF_C_CHOICE,	true, 0, 0, conf_lf_names },
	{ "tls",		CONF_C_SECTION,	false, 0, 0, NULL },
	{ "tls|cert_file",	CONF_C_PATH,	true, 0, 0, NULL },
	{ "tls|key_file",	CONF_C_PATH,	true, 0, 0, NULL },
	{ "tls|min_version",	CONF_C_CHOICE,	false, 0, 0,
	    conf_tls_version_names },
	{ "auth",		CONF_C_SECTION,	false, 0, 0, NULL },
	{ "auth|users_file",	CONF_C_PATH,	true, 0, 0, NULL },
	{ "auth|plaintext",	CONF_C_LISTEN,	false, 0, 0, NULL },
	{ "domain",		CONF_C_DOMAIN,	true, 0, 0, NULL },
	{ "admin_address",	CONF_C_MAILBOX,	true, 0, 0, NULL },
	{ "aliases",		CONF_C_PATH,	true, 0, 0, NULL },
};

/* One conf_load() in progress. */
struct conf_ctx {
	const char	*path;
	char		*errbuf;
	size_t		 errbufsz;
	size_t		 errlen;
	int		 nerrors;
	int		 line[nitems(conf_rules)]; /* last set there; 0: not */
	int		 nonlocal_line;		/* first non-loopback listen */
	int		 nonlocal_tls_line;	/* ... listen_tls */
	struct conftable_entry *clients; /* the "clients" table */
	size_t		 nclients;
};

/*
 * The load in progress.  libconfuse callbacks carry no user pointer, and
 * its scanner is a global flex scanner anyway, so loads never overlap.
 */
static struct conf_ctx	*conf_cur;

static void conf_verr(struct conf_ctx *, int, const char *, va_list)
    __attribute__((format(printf, 3, 0)));
static void conf_err(struct conf_ctx *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void conf_cfg_error_cb(cfg_t *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

/*
 * Appends "path:line: message" (or "path: message" when <line> is 0) to
 * errbuf, one error per line with no final newline, so that a single
 * error can be logged as it is.  Truncates silently when errbuf is full.
 */
static void
conf_verr(struct conf_ctx *ctx, int line, const char *fmt, va_list ap)
{
	char	where[16] = "", msg[CONF_ERR_MAX];

	ctx->nerrors++;
	if (ctx->errbufsz == 0 || ctx->errlen + 1 >= ctx->errbufsz)
		return;
	if (line > 0)
		snprintf(where, sizeof(where), ":%d", line);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(ctx->errbuf + ctx->errlen, ctx->errbufsz - ctx->errlen,
	    "%s%s%s: %s", ctx->errlen > 0 ? "\n" : "", ctx->path, where, msg);
	ctx->errlen += strlen(ctx->errbuf + ctx->errlen);
}

static void
conf_err(struct conf_ctx *ctx, int line, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	conf_verr(ctx, line, fmt, ap);
	va_end(ap);
}

/* Appends lines another file's reader wrote ("file:line: message"). */
static void
conf_err_lines(struct conf_ctx *ctx, const char *text)
{
	ctx->nerrors++;
	if (ctx->errbufsz == 0 || ctx->errlen + 1 >= ctx->errbufsz)
		return;
	snprintf(ctx->errbuf + ctx->errlen, ctx->errbufsz - ctx->errlen,
	    "%s%s", ctx->errlen > 0 ? "\n" : "", text);
	ctx->errlen += strlen(ctx->errbuf + ctx->errlen);
}

/*
 * libconfuse's own messages: syntax, unknown options and sections, wrong
 * types.  cfg is the section being parsed; its line is the current one.
 * They quote the file's tokens as they are, newlines and escape
 * sequences included, so they are escaped like our own quotes of values.
 */
static void
conf_cfg_error_cb(cfg_t *cfg, const char *fmt, va_list ap)
{
	char	msg[CONF_ERR_MAX], esc[CONF_ERR_MAX];

	if (conf_cur == NULL)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	conf_err(conf_cur, cfg != NULL ? cfg->line : 0, "%s",
	    str_log_escape(msg, strlen(msg), esc, sizeof(esc)));
}

/* The index in conf_rules[] of <path>, which must be there. */
static int
conf_rule_index(const char *path)
{
	size_t	i;

	for (i = 0; i < nitems(conf_rules); i++)
		if (strcmp(conf_rules[i].path, path) == 0)
			return (int)i;
	fatalx("conf: no rule for %s", path);
}

/* The rule index for <opt> as seen in section <cfg>, and its label as
 * users name it ("upstream.port") in <label>.  -1 (and the bare name in
 * <label>) when <opt> is not one of <cfg>'s own: libconfuse reads
 * "queue|lifetime = 1d" as a path into the section, and calls back with
 * the section being parsed. */
static int
conf_rule_find(cfg_t *cfg, cfg_opt_t *opt, char *label, size_t labelsz)
{
	char		 path[64], *bar;
	cfg_opt_t	*o;
	int		 k;

	for (o = cfg->opts; o->name != NULL && o != opt; o++)
		;
	if (o->name == NULL) {
		snprintf(label, labelsz, "%s", opt->name);
		return -1;
	}
	if (strcmp(cfg->name, "root") == 0)
		snprintf(path, sizeof(path), "%s", opt->name);
	else
		snprintf(path, sizeof(path), "%s|%s", cfg->name, opt->name);
	k = conf_rule_index(path);
	if ((bar = strchr(path, '|')) != NULL)
		*bar = '.';
	snprintf(label, labelsz, "%s", path);
	return k;
}

/* Decimal only: libconfuse's strtol(, 0) would read "010" as 8. */
static int
conf_int_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char		 label[64], esc[128];
	const char	*p = value;
	char		*end;
	long		 n;

	if (*p == '-')
		p++;
	errno = 0;
	n = strtol(value, &end, 10);
	if (!isdigit((unsigned char)*p) || *end != '\0' || errno == ERANGE) {
		conf_rule_find(cfg, opt, label, sizeof(label));
		if (conf_cur != NULL)
			conf_err(conf_cur, cfg->line,
			    "%s = \"%s\": not a decimal integer", label,
			    str_log_escape(value, strlen(value), esc,
			    sizeof(esc)));
		return -1;
	}
	*(long *)result = n;
	return 0;
}

/* A host name or numeric address: letters, digits, ".-_:". */
static bool
conf_name_is_valid(const char *s)
{
	size_t	i, len = strlen(s);

	if (len == 0 || len > CONF_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr(".-_:", s[i]) == NULL)
			return false;
	return true;
}

/* No control characters, which would end up in logs or protocol lines;
 * with <word>, no spaces and nothing outside ASCII either. */
static bool
conf_chars_are_valid(const char *s, bool word)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f ||
		    (word && ((unsigned char)*s == ' ' ||
		    (unsigned char)*s > 0x7f)))
			return false;
	return true;
}

/* Checks a listen entry and tells whether it reaches beyond this host. */
static bool
conf_listen_is_valid(const char *s, bool *nonlocal)
{
	char		host[INET6_ADDRSTRLEN + 8];
	struct in_addr	a4;
	struct in6_addr	a6;
	uint16_t	port;

	if (conf_split_hostport(s, host, sizeof(host), &port) == -1)
		return false;
	if (host[0] == '\0')
		*nonlocal = true;
	else if (inet_pton(AF_INET, host, &a4) == 1)
		*nonlocal = (ntohl(a4.s_addr) >> 24) != 127;
	else if (inet_pton(AF_INET6, host, &a6) == 1)
		*nonlocal = !IN6_IS_ADDR_LOOPBACK(&a6);
	else
		return false;
	return true;
}

/* "must be "a", "b" or "c"" into <buf>. */
static const char *
conf_choices_text(const char *const *choices, char *buf, size_t bufsz)
{
	size_t	i, len;

	snprintf(buf, bufsz, "must be");
	for (i = 0; choices[i] != NULL; i++) {
		len = strlen(buf);
		snprintf(buf + len, bufsz - len, "%s\"%s\"", i == 0 ? " " :
		    choices[i + 1] == NULL ? " or " : ", ", choices[i]);
	}
	return buf;
}

/* An https URL whose host part is a plausible name: the token endpoint
 * is reached with evhttp, which wants exactly this. */
static bool
conf_url_is_valid(const char *s)
{
	const char	*h = s + 8, *end;
	size_t		 hlen;

	if (strncmp(s, "https://", 8) != 0 || !conf_chars_are_valid(s, true))
		return false;
	end = h + strcspn(h, "/:?#");
	hlen = (size_t)(end - h);
	if (hlen == 0 || hlen > CONF_NAME_MAX)
		return false;
	return *end == '\0' || *end == '/' || *end == ':';
}

/* A domain that makes "name@domain" a valid mailbox. */
static bool
conf_domain_is_valid(const char *v)
{
	char	buf[SMTP_DOMAIN_MAX + 3];

	if (snprintf(buf, sizeof(buf), "x@%s", v) >= (int)sizeof(buf))
		return false;
	return smtp_mailbox_is_valid(buf) && v[0] != '[';
}

/* Why string value <v> breaks rule <r>, or NULL when it is fine.  The
 * reason may be written into <buf>. */
static const char *
conf_str_problem(const struct conf_rule *r, const char *v, bool *nonlocal,
    char *buf, size_t bufsz)
{
	struct sockaddr_un	 sun;
	struct cidr		 net;
	struct quota_limits	 limits;
	enum log_level		 level;
	uint64_t		 secs;
	size_t			 i;

	if (*v == '\0' && r->check != CONF_C_LISTEN &&
	    r->check != CONF_C_ALLOW && r->check != CONF_C_CIDR)
		return r->empty_ok ? NULL : "must not be empty";
	switch (r->check) {
	case CONF_C_NAME:
		return conf_name_is_valid(v) ? NULL :
		    "not a host name (letters, digits, \".-_:\")";
	case CONF_C_SOCKET:
		if (strlen(v) >= sizeof(sun.sun_path))
			return "too long for a unix socket path";
		/* FALLTHROUGH */
	case CONF_C_PATH:
		if (v[0] != '/')
			return "must be an absolute path";
		return conf_chars_are_valid(v, false) ? NULL :
		    "must not contain control characters";
	case CONF_C_WORD:
		return conf_chars_are_valid(v, true) ? NULL :
		    "must not contain spaces or control characters";
	case CONF_C_MAILBOX:
		if (!conf_chars_are_valid(v, true) || strchr(v, '<') != NULL ||
		    strchr(v, '>') != NULL || strchr(v, '@') == NULL ||
		    v[0] == '@' || v[strlen(v) - 1] == '@')
			return "not an address like postmaster@example.org";
		return NULL;
	case CONF_C_DURATION:
		if (str_parse_duration(v, &secs) == -1)
			return "not a duration (like 30s, 5m, 1h or 5d)";
		if (secs == 0 || secs > CONF_DURATION_MAX)
			return "must be between 1s and 365d";
		return NULL;
	case CONF_C_CHOICE:
		for (i = 0; r->choices[i] != NULL; i++)
			if (strcmp(v, r->choices[i]) == 0)
				return NULL;
		return conf_choices_text(r->choices, buf, bufsz);
	case CONF_C_TEXT:
		if (strlen(v) > CONF_TEXT_MAX)
			return "longer than 100 bytes";
		return conf_chars_are_valid(v, false) ? NULL :
		    "must not contain control characters";
	case CONF_C_QUOTA:
		return quota_parse(v, &limits, buf, bufsz) == 0 ? NULL : buf;
	case CONF_C_URL:
		return conf_url_is_valid(v) ? NULL :
		    "not a URL like https://host/path (https only)";
	case CONF_C_LOG_LEVEL:
		return log_level_parse(v, &level) == 0 ? NULL :
		    "must be err, warn, notice, info or debug";
	case CONF_C_LISTEN:
		return conf_listen_is_valid(v, nonlocal) ? NULL :
		    "not a numeric address:port, [v6]:port or *:port";
	case CONF_C_ENDPOINT:
		return conf_listen_is_valid(v, nonlocal) && v[0] != '*' ?
		    NULL : "not a numeric address:port or [v6]:port";
	case CONF_C_ALLOW:
		if (cidr_parse(v, &net) == -1)
			return "not a network like 192.168.1.0/24 or fd00::/8";
		return net.prefix == 0 ? "would make an open relay" : NULL;
	case CONF_C_CIDR:
		return cidr_parse(v, &net) == -1 ? "not a network like "
		    "192.168.1.0/24 or fd00::/8" : NULL;
	case CONF_C_DOMAIN:
		return conf_domain_is_valid(v) ? NULL : "not a mail domain "
		    "(letters, digits and hyphens, dot-separated)";
	default:
		fatalx("conf: bad check %d for %s", r->check, r->path);
	}
}

/*
 * Called by libconfuse after each value it stores, with cfg->line at that
 * value; for lists, after each entry and once more at the closing brace.
 * For sections, at the closing brace.
 */
static int
conf_validate_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	struct conf_ctx		*ctx = conf_cur;
	const struct conf_rule	*r;
	const char		*v, *why;
	char			 label[64], esc[128], buf[128];
	bool			 nonlocal = false;
	long			 n;
	int			 k;

	k = conf_rule_find(cfg, opt, label, sizeof(label));
	if (ctx == NULL || opt->nvalues == 0)
		return 0;
	if (k == -1) {
		conf_err(ctx, cfg->line, "\"%s\" given as \"section|option\": "
		    "set it inside its section", label);
		return -1;
	}
	r = &conf_rules[k];
	if (r->check == CONF_C_SECTION && ctx->line[k] != 0) {
		conf_err(ctx, cfg->line, "second '%s' section (only one is "
		    "allowed; the first ends on line %d)", label, ctx->line[k]);
		return -1;
	}
	ctx->line[k] = cfg->line;
	if (r->check == CONF_C_NETWORK)
		return conf_network_seen(ctx, opt, cfg->line);
	if (r->check == CONF_C_SECTION || r->check == CONF_C_MULTI ||
	    r->check == CONF_C_BOOL)
		return 0;
	/* Scalars hold one value; a list's newest entry is its last. */
	if (r->check == CONF_C_INT) {
		n = cfg_opt_getnint(opt, 0);
		if (n >= r->min && n <= r->max)
			return 0;
		conf_err(ctx, cfg->line, "%s = %ld: must be between %ld and "
		    "%ld", label, n, r->min, r->max);
		return -1;
	}
	v = cfg_opt_getnstr(opt, opt->nvalues - 1);
	if (v == NULL)
		v = "";
	why = conf_str_problem(r, v, &nonlocal, buf, sizeof(buf));
	if (why != NULL) {
		conf_err(ctx, cfg->line, "%s = \"%s\": %s", label,
		    str_log_escape(v, strlen(v), esc, sizeof(esc)), why);
		return -1;
	}
	if (r->check == CONF_C_LISTEN)
		return conf_listen_seen(ctx, r, opt, nonlocal, cfg->line, label,
		    v);
	return 0;
}

/*
 * Remembers the first non-loopback entry of listen and listen_tls (for
 * the allow-list rule) and refuses one in auth.plaintext: AUTH without
 * TLS never crosses a network.
 */
static int
conf_listen_seen(struct conf_ctx *ctx, const struct conf_rule *r,
    cfg_opt_t *opt, bool nonlocal, int line, const char *label,
    const char *v)
{
	int	*first;

	if (strcmp(r->path, "auth|plaintext") == 0) {
		if (!nonlocal && v[0] != '*')
			return 0;
		conf_err(ctx, line, "%s = \"%s\": must be a loopback "
		    "address", label, v);
		return -1;
	}
	first = strcmp(r->path, "listen") == 0 ? &ctx->nonlocal_line :
	    &ctx->nonlocal_tls_line;
	/* A first entry starts a new list ("=" replaces, "+=" appends),
	 * so an earlier list's finding is stale. */
	if (opt->nvalues == 1)
		*first = 0;
	if (nonlocal && *first == 0)
		*first = line;
	return 0;
}

/* At the end of a "network CIDR" section: the title must be a network. */
static int
conf_network_seen(struct conf_ctx *ctx, cfg_opt_t *opt, int line)
{
	const char	*title;
	struct cidr	 net;
	char		 esc[128];

	title = cfg_title(cfg_opt_getnsec(opt, opt->nvalues - 1));
	if (title != NULL && cidr_parse(title, &net) == 0)
		return 0;
	conf_err(ctx, line, "network \"%s\": not a network like "
	    "192.168.1.0/24 or fd00::/8", title == NULL ? "" :
	    str_log_escape(title, strlen(title), esc, sizeof(esc)));
	return -1;
}

/*
 * Reads the whole file into a NUL-terminated buffer (the caller frees it),
 * or returns NULL after reporting why.  The size cap keeps a wrong path
 * (a log, a device) from eating memory; a NUL byte would silently cut
 * the text short inside libconfuse's scanner.
 */
static char *
conf_read(struct conf_ctx *ctx, size_t *lenp)
{
	struct stat	 st;
	char		*buf = NULL, *nul;
	size_t		 len = 0, cap = 0;
	ssize_t		 n;
	int		 fd, line;

	if ((fd = open(ctx->path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		conf_err(ctx, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		conf_err(ctx, 0, "cannot open: %s", strerror(EISDIR));
		goto fail;
	}
	for (;;) {
		if (len > CONF_FILE_MAX) {
			conf_err(ctx, 0, "larger than %d bytes", CONF_FILE_MAX);
			goto fail;
		}
		if (len == cap) {
			cap = cap == 0 ? 8192 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		if ((n = read(fd, buf + len, cap - len)) == 0)
			break;
		if (n == -1 && errno != EINTR) {
			conf_err(ctx, 0, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (n > 0)
			len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if ((nul = memchr(buf, '\0', len)) != NULL) {
		for (line = 1; nul > buf; nul--)
			line += nul[-1] == '\n';
		conf_err(ctx, line, "NUL byte in the file");
		free(buf);
		return NULL;
	}
	*lenp = len;
	return buf;
fail:
	if (fd != -1)
		close(fd);
	free(buf);
	return NULL;
}

/*
 * Blanks out comments ("# ...", "// ..." and C-style), keeping newlines,
 * so libconfuse never sees one.  Quoted strings are left alone, and "//"
 * or "/" "*" start a comment only at the start of a token, as in
 * libconfuse's own scanner.  Fails on an unterminated C-style comment,
 * which would otherwise hide the rest of the file.
 */
static int
conf_strip_comments(struct conf_ctx *ctx, char *s, size_t len)
{
	enum { TEXT, DQUOTE, SQUOTE, LINE, BLOCK } st = TEXT;
	size_t	i;
	int	line = 1, start = 0;

	for (i = 0; i < len; line += s[i] == '\n', i++) {
		switch (st) {
		case TEXT:
			if (s[i] == '"' || s[i] == '\'')
				st = s[i] == '"' ? DQUOTE : SQUOTE;
			else if (s[i] == '#')
				st = LINE;
			else if (s[i] == '/' && (s[i + 1] == '/' ||
			    s[i + 1] == '*') && (i == 0 ||
			    strchr(" \t\r\n{}(),=+", s[i - 1]) != NULL)) {
				st = s[i + 1] == '/' ? LINE : BLOCK;
				start = line;
				s[i++] = ' ';
			}
			if (st == LINE || st == BLOCK)
				s[i] = ' ';
			break;
		case DQUOTE:
		case SQUOTE:
			if (s[i] == '\\' && i + 1 < len && s[i + 1] != '\n')
				i++;
			else if (s[i] == (st == DQUOTE ? '"' : '\''))
				st = TEXT;
			break;
		case LINE:
			if (s[i] == '\n')
				st = TEXT;
			else
				s[i] = ' ';
			break;
		case BLOCK:
			if (s[i] == '*' && s[i + 1] == '/') {
				s[i++] = ' ';
				st = TEXT;
			}
			if (s[i] != '\n')
				s[i] = ' ';
			break;
		}
	}
	if (st == BLOCK) {
		conf_err(ctx, start, "unterminated /* comment");
		return -1;
	}
	return 0;
}

/* The "clients" table, which libconfuse cannot read (conftable.h). */
static int
conf_take_clients(struct conf_ctx *ctx, char *text, size_t len)
{
	char	err[CONF_ERR_MAX];
	int	line = 0;

	if (conftable_take(text, len, &ctx->clients, &ctx->nclients, err,
	    sizeof(err), &line) == 0)
		return 0;
	conf_err(ctx, line, "%s", err);
	return -1;
}

/* Names not moved into the conf (after an error) go here. */
static void
conf_free_clients(struct conf_ctx *ctx)
{
	size_t	i;

	for (i = 0; i < ctx->nclients; i++)
		free(ctx->clients[i].name);
	free(ctx->clients);
	ctx->clients = NULL;
	ctx->nclients = 0;
}

/* A fresh libconfuse tree with defaults, its errors routed to errbuf and
 * every value checked by conf_validate_cb() as it is parsed. */
static cfg_t *
conf_cfg_new(void)
{
	cfg_t	*cfg;
	size_t	 i;

	/* cfg_init() copies the option tables, callbacks included. */
	for (i = 0; conf_upstream_opts[i].name != NULL; i++)
		conf_upstream_opts[i].validcb = conf_validate_cb;
	for (i = 0; conf_network_opts[i].name != NULL; i++)
		conf_network_opts[i].validcb = conf_validate_cb;
	if ((cfg = cfg_init(conf_opts, CFGF_NONE)) == NULL)
		fatalx("conf: cfg_init failed");
	cfg_set_error_function(cfg, conf_cfg_error_cb);
	for (i = 0; i < nitems(conf_rules); i++) {
		/* A repeatable section has no instance to reach by path
		 * yet: its template options were set up below. */
		if (strncmp(conf_rules[i].path, "upstream|", 9) == 0 ||
		    strncmp(conf_rules[i].path, "network|", 8) == 0)
			continue;
		if (cfg_getopt(cfg, conf_rules[i].path) == NULL)
			fatalx("conf: no option %s", conf_rules[i].path);
		cfg_set_validate_func(cfg, conf_rules[i].path,
		    conf_validate_cb);
	}
	return cfg;
}

/* Feeds the comment-free text to libconfuse.  An empty file is all
 * defaults (and fmemopen() refuses a zero-length buffer on old libcs). */
static int
conf_cfg_parse(struct conf_ctx *ctx, cfg_t *cfg, char *text, size_t len)
{
	FILE	*fp;
	int	 rc, before = ctx->nerrors;

	if (len == 0)
		return 0;
	if ((fp = fmemopen(text, len, "r")) == NULL)
		fatal("conf: fmemopen");
	rc = cfg_parse_fp(cfg, fp);
	fclose(fp);
	if (rc == CFG_SUCCESS)
		return 0;
	if (ctx->nerrors == before)
		conf_err(ctx, 0, "cannot parse");
	return -1;
}

/* Accessors by path, once every value has been checked. */
static char *
conf_dup(cfg_t *cfg, const char *path)
{
	const char	*v = cfg_getstr(cfg, path);

	return xstrdup(v != NULL ? v : "");
}

static uint64_t
conf_duration(cfg_t *cfg, const char *path)
{
	uint64_t	secs;

	if (str_parse_duration(cfg_getstr(cfg, path), &secs) == -1)
		fatalx("conf: %s was not checked", path);
	return secs;
}

/* The index of the value of <path> in the choices[] of rule <rule>. */
static int
conf_choice(cfg_t *cfg, const char *rule, const char *path)
{
	const char *const	*choices;
	const char		*v = cfg_getstr(cfg, path);
	int			 i;

	choices = conf_rules[conf_rule_index(rule)].choices;
	for (i = 0; choices[i] != NULL; i++)
		if (strcmp(choices[i], v) == 0)
			return i;
	fatalx("conf: %s was not checked", path);
}

/* Set in the file, rather than left at its default. */
static bool
conf_is_set(cfg_t *cfg, const char *path)
{
	cfg_opt_t	*opt = cfg_getopt(cfg, path);

	return opt != NULL && (opt->flags & CFGF_MODIFIED) != 0;
}

/*
 * The machine's fully qualified name: gethostname(), or its canonical
 * name from the resolver when it has no dot, or the plain name.
 */
static char *
conf_default_hostname(void)
{
	struct addrinfo	 hints, *res;
	char		 name[256], *fqdn = NULL;

	if (gethostname(name, sizeof(name)) == -1 || name[0] == '\0')
		return xstrdup("localhost");
	name[sizeof(name) - 1] = '\0';
	if (strchr(name, '.') != NULL)
		return xstrdup(name);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(name, NULL, &hints, &res) == 0) {
		if (res->ai_canonname != NULL &&
		    strchr(res->ai_canonname, '.') != NULL &&
		    conf_name_is_valid(res->ai_canonname))
			fqdn = xstrdup(res->ai_canonname);
		freeaddrinfo(res);
	}
	return fqdn != NULL ? fqdn : xstrdup(name);
}

/* Copies the checked values out of libconfuse, which keeps nothing. */
static void
conf_build_top(struct conf *c, cfg_t *cfg)
{
	unsigned int	i;

	c->hostname = conf_is_set(cfg, "hostname") ?
	    conf_dup(cfg, "hostname") : conf_default_hostname();
	c->listen = xcalloc(cfg_size(cfg, "listen"), sizeof(*c->listen));
	for (i = 0; i < cfg_size(cfg, "listen"); i++)
		c->listen[c->nlisten++] =
		    xstrdup(cfg_getnstr(cfg, "listen", i));
	c->allow = xcalloc(cfg_size(cfg, "allow"), sizeof(*c->allow));
	for (i = 0; i < cfg_size(cfg, "allow"); i++)
		if (cidr_parse(cfg_getnstr(cfg, "allow", i),
		    &c->allow[c->nallow++]) == -1)
			fatalx("conf: allow was not checked");
	c->spool = conf_dup(cfg, "spool");
	c->user = conf_dup(cfg, "user");
	c->control_socket = conf_dup(cfg, "control_socket");
	c->max_message_size = (uint64_t)cfg_getint(cfg, "max_message_size");
	c->max_recipients = (unsigned int)cfg_getint(cfg, "max_recipients");
	c->max_clients = (unsigned int)cfg_getint(cfg, "max_clients");
	c->max_clients_per_ip =
	    (unsigned int)cfg_getint(cfg, "max_clients_per_ip");
	c->per_ip_exempt = xcalloc(cfg_size(cfg, "max_clients_per_ip_exempt")
	    + 1, sizeof(*c->per_ip_exempt));
	for (i = 0; i < cfg_size(cfg, "max_clients_per_ip_exempt"); i++)
		if (cidr_parse(cfg_getnstr(cfg, "max_clients_per_ip_exempt", i),
		    &c->per_ip_exempt[c->nper_ip_exempt++]) == -1)
			fatalx("conf: max_clients_per_ip_exempt was not "
			    "checked");
	c->bare_lf = (enum conf_bare_lf)conf_choice(cfg, "bare_lf", "bare_lf");
	c->command_timeout = conf_duration(cfg, "command_timeout");
	c->data_timeout = conf_duration(cfg, "data_timeout");
	c->log_syslog = conf_choice(cfg, "log", "log") == 1;
	c->log_level = conf_dup(cfg, "log_level");
}

/* "host:port" ("[v6]:port"), an upstream's name unless it has one. */
static const char *
conf_upstream_default_name(const struct conf_upstream *up, char *buf,
    size_t bufsz)
{
	snprintf(buf, bufsz, strchr(up->host, ':') != NULL ? "[%s]:%u" :
	    "%s:%u", up->host, up->port);
	return buf;
}

/* Port 465 is the implicit TLS port (RFC 8314), unless the file says
 * otherwise; the certificate is checked against host unless told.
 * <sec> is one "upstream" section. */
static void
conf_build_upstream(struct conf_upstream *up, cfg_t *sec)
{
	char	name[300];

	up->host = conf_dup(sec, "host");
	up->tls = (enum conf_tls_mode)conf_choice(sec, "upstream|tls", "tls");
	up->port = (uint16_t)cfg_getint(sec, "port");
	up->address_family = (enum conf_family)conf_choice(sec,
	    "upstream|address_family", "address_family");
	if (up->tls == CONF_TLS_IMPLICIT && !conf_is_set(sec, "port"))
		up->port = 465;
	up->verify_name = conf_dup(sec, "verify_name");
	if (up->verify_name[0] == '\0') {
		free(up->verify_name);
		up->verify_name = xstrdup(up->host);
	}
	up->name = conf_dup(sec, "name");
	if (up->name[0] == '\0') {
		free(up->name);
		up->name = xstrdup(conf_upstream_default_name(up, name,
		    sizeof(name)));
	}
	up->ca_file = conf_dup(sec, "ca_file");
	up->username = conf_dup(sec, "username");
	up->password_file = conf_dup(sec, "password_file");
	up->connections = (unsigned int)cfg_getint(sec, "connections");
	up->auth = (enum conf_auth)conf_choice(sec, "upstream|auth", "auth");
	up->oauth_client_id = conf_dup(sec, "oauth_client_id");
	up->oauth_client_secret_file = conf_dup(sec,
	    "oauth_client_secret_file");
	up->oauth_refresh_token_file = conf_dup(sec,
	    "oauth_refresh_token_file");
	up->oauth_token_url = conf_dup(sec, "oauth_token_url");
	up->oauth_ca_file = conf_dup(sec, "oauth_ca_file");
	up->quota = conf_dup(sec, "quota");
	up->from_address = conf_dup(sec, "from_address");
	up->failover_on_reject = cfg_getbool(sec, "failover_on_reject");
}

static void
conf_free_upstream(struct conf_upstream *up)
{
	free(up->name);
	free(up->host);
	free(up->verify_name);
	free(up->ca_file);
	free(up->username);
	free(up->password_file);
	free(up->oauth_client_id);
	free(up->oauth_client_secret_file);
	free(up->oauth_refresh_token_file);
	free(up->oauth_token_url);
	free(up->oauth_ca_file);
	free(up->quota);
	free(up->from_address);
}

/* Names label log lines, stats and metric series, so they must differ:
 * a default "host:port" that an earlier section already has gets its
 * position ("smtp.gmail.com:587#2", two accounts on one server).
 * Duplicates the file sets itself are refused by conf_check(). */
static void
conf_unique_names(struct conf *c)
{
	char	name[320];
	size_t	i, j;

	for (i = 1; i < c->nupstream; i++)
		for (j = 0; j < i; j++) {
			if (strcmp(c->upstream[i].name, c->upstream[j].name)
			    != 0)
				continue;
			if (strcmp(conf_upstream_default_name(&c->upstream[i],
			    name, sizeof(name)), c->upstream[i].name) != 0)
				break;
			snprintf(name, sizeof(name), "%s#%zu",
			    c->upstream[i].name, i + 1);
			free(c->upstream[i].name);
			c->upstream[i].name = xstrdup(name);
			break;
		}
}

/* Upstream sections in the order written; without any, one with every
 * default (smtp.gmail.com, STARTTLS on 587). */
static void
conf_build_sections(struct conf *c, cfg_t *cfg)
{
	cfg_t		*def;
	unsigned int	 i, n = cfg_size(cfg, "upstream");

	c->upstream = xcalloc(n > 0 ? n : 1, sizeof(*c->upstream));
	if (n == 0) {
		if ((def = cfg_init(conf_upstream_opts, CFGF_NONE)) == NULL)
			fatalx("conf: cfg_init failed");
		conf_build_upstream(&c->upstream[0], def);
		cfg_free(def);
		c->nupstream = 1;
	}
	for (i = 0; i < n; i++)
		conf_build_upstream(&c->upstream[c->nupstream++],
		    cfg_getnsec(cfg, "upstream", i));
	conf_unique_names(c);
	c->queue.lifetime = conf_duration(cfg, "queue|lifetime");
	c->queue.retry_min = conf_duration(cfg, "queue|retry_min");
	c->queue.retry_max = conf_duration(cfg, "queue|retry_max");
	c->queue.bounce_to = conf_dup(cfg, "queue|bounce_to");
	c->metrics_listen = conf_dup(cfg, "metrics|listen");
}

/*
 * Local mail: the domain for bare names (the host name unless set), and
 * the admin address, else the first upstream's account when that is an
 * address (the Gmail account the relay sends as), else none.  An admin
 * address that is itself local would only come back here.
 */
static void
conf_build_local(struct conf *c, cfg_t *cfg)
{
	const char	*user = c->upstream[0].username;

	c->domain = conf_is_set(cfg, "domain") ? conf_dup(cfg, "domain") :
	    xstrdup(c->hostname);
	c->aliases_path = conf_dup(cfg, "aliases");
	c->route.domain = c->domain;
	c->route.hostname = c->hostname;
	c->route.admin = "";
	if (conf_is_set(cfg, "admin_address")) {
		c->admin_address = conf_dup(cfg, "admin_address");
		c->admin_from = CONF_ADMIN_SET;
	} else if (smtp_mailbox_is_valid(user) &&
	    strlen(user) + 2 <= SMTP_PATH_MAX &&
	    !route_is_local(&c->route, user)) {
		c->admin_address = xstrdup(user);
		c->admin_from = CONF_ADMIN_USERNAME;
	} else {
		c->admin_address = xstrdup("");
		c->admin_from = CONF_ADMIN_NONE;
	}
	c->route.admin = c->admin_address;
}

/* The bare_lf of a network section: its own, or the top-level one. */
static void
conf_build_network(struct conf_network *n, cfg_t *sec, enum conf_bare_lf lf)
{
	if (cidr_parse(cfg_title(sec), &n->net) == -1)
		fatalx("conf: network was not checked");
	n->name = conf_dup(sec, "name");
	n->auth = (enum conf_net_auth)conf_choice(sec, "network|auth", "auth");
	n->bare_lf = lf;
	if (cfg_getstr(sec, "bare_lf")[0] != '\0')
		n->bare_lf = (enum conf_bare_lf)conf_choice(sec,
		    "network|bare_lf", "bare_lf");
}

/* Same network, same prefix: one policy. */
static bool
conf_cidr_equal(const struct cidr *a, const struct cidr *b)
{
	return a->family == b->family && a->prefix == b->prefix &&
	    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* <out> becomes network <net> with the policy of the most specific of
 * the first <nsec> networks (the sections) that contains it, or the
 * defaults. */
static void
conf_inherit_policy(struct conf_network *out, const struct conf *c,
    size_t nsec, const struct cidr *net)
{
	const struct conf_network	*best = NULL;
	size_t				 i;

	for (i = 0; i < nsec; i++)
		if (cidr_contains(&c->networks[i].net, net) &&
		    (best == NULL || c->networks[i].net.prefix >
		    best->net.prefix))
			best = &c->networks[i];
	out->net = *net;
	out->auth = best != NULL ? best->auth : CONF_NET_AUTH_OPTIONAL;
	out->bare_lf = best != NULL ? best->bare_lf : c->bare_lf;
}

/*
 * Network sections, then the names of the "clients" table: a name for a
 * network that has a section joins it, any other becomes a network of
 * its own with the policy of the section around it (or the default).
 */
static void
conf_build_networks(struct conf_ctx *ctx, struct conf *c, cfg_t *cfg)
{
	unsigned int	 i, n = cfg_size(cfg, "network");
	size_t		 j, k;

	c->networks = xcalloc(n + ctx->nclients + 1, sizeof(*c->networks));
	for (i = 0; i < n; i++)
		conf_build_network(&c->networks[c->nnetworks++],
		    cfg_getnsec(cfg, "network", i), c->bare_lf);
	for (j = 0; j < ctx->nclients; j++) {
		for (k = 0; k < c->nnetworks; k++)
			if (conf_cidr_equal(&c->networks[k].net,
			    &ctx->clients[j].net))
				break;
		if (k == c->nnetworks) {
			/* A name changes no policy: take the enclosing
			 * section's, if any. */
			conf_inherit_policy(&c->networks[k], c, n,
			    &ctx->clients[j].net);
			c->networks[k].name = ctx->clients[j].name;
			c->nnetworks++;
		} else if (c->networks[k].name[0] != '\0') {
			conf_err(ctx, ctx->clients[j].line, "clients: this "
			    "network is already named \"%s\"",
			    c->networks[k].name);
			free(ctx->clients[j].name);
		} else {
			free(c->networks[k].name);
			c->networks[k].name = ctx->clients[j].name;
		}
		ctx->clients[j].name = NULL;
	}
}

static void
conf_build_lan(struct conf_ctx *ctx, struct conf *c, cfg_t *cfg)
{
	static const int	 versions[] = { 10, 11, 12, 13 };
	unsigned int		 i;

	c->from_rewrite = (enum conf_from_rewrite)conf_choice(cfg,
	    "from|rewrite", "from|rewrite");
	c->from_suffix = conf_dup(cfg, "from|suffix");
	conf_build_networks(ctx, c, cfg);
	c->listen_tls = xcalloc(cfg_size(cfg, "listen_tls") + 1,
	    sizeof(*c->listen_tls));
	for (i = 0; i < cfg_size(cfg, "listen_tls"); i++)
		c->listen_tls[c->nlisten_tls++] =
		    xstrdup(cfg_getnstr(cfg, "listen_tls", i));
	c->server_tls.cert_file = conf_dup(cfg, "tls|cert_file");
	c->server_tls.key_file = conf_dup(cfg, "tls|key_file");
	c->server_tls.min_version = versions[conf_choice(cfg,
	    "tls|min_version", "tls|min_version")];
	c->client_auth.users_file = conf_dup(cfg, "auth|users_file");
	c->client_auth.plaintext = xcalloc(cfg_size(cfg, "auth|plaintext") +
	    1, sizeof(*c->client_auth.plaintext));
	for (i = 0; i < cfg_size(cfg, "auth|plaintext"); i++)
		c->client_auth.plaintext[c->client_auth.nplaintext++] =
		    xstrdup(cfg_getnstr(cfg, "auth|plaintext", i));
}

/*
 * The line to blame when options <a> and <b> disagree: the later of the
 * two that the file sets, else the end of <a>'s section, else none (0).
 */
static int
conf_blame(const struct conf_ctx *ctx, const char *a, const char *b)
{
	int	la = ctx->line[conf_rule_index(a)];
	int	lb = ctx->line[conf_rule_index(b)];

	if (la == 0 && lb == 0 && strncmp(a, "queue|", 6) == 0)
		return ctx->line[conf_rule_index("queue")];
	return la > lb ? la : lb;
}

/* Inbound TLS needs both halves of the key pair; AUTH without TLS only
 * where a plain listener says so. */
static void
conf_check_lan(struct conf_ctx *ctx, const struct conf *c)
{
	const struct conf_server_tls	*t = &c->server_tls;
	size_t				 i, j;

	if ((t->cert_file[0] == '\0') != (t->key_file[0] == '\0'))
		conf_err(ctx, ctx->line[conf_rule_index("tls")], "tls: "
		    "cert_file and key_file must be set together");
	if (c->nlisten_tls > 0 && t->cert_file[0] == '\0')
		conf_err(ctx, ctx->line[conf_rule_index("listen_tls")],
		    "listen_tls needs tls.cert_file and tls.key_file");
	for (i = 0; i < c->client_auth.nplaintext; i++) {
		for (j = 0; j < c->nlisten; j++)
			if (strcmp(c->listen[j], c->client_auth.plaintext[i])
			    == 0)
				break;
		if (j == c->nlisten)
			conf_err(ctx, ctx->line[conf_rule_index(
			    "auth|plaintext")], "auth.plaintext = \"%s\": not "
			    "one of the listen addresses",
			    c->client_auth.plaintext[i]);
	}
}

/* The admin address must be a mailbox the relay can send to: one that
 * is local would only come back here. */
static void
conf_check_local(struct conf_ctx *ctx, const struct conf *c)
{
	int	line = ctx->line[conf_rule_index("admin_address")];

	if (c->admin_from != CONF_ADMIN_SET)
		return;
	if (!smtp_mailbox_is_valid(c->admin_address) ||
	    strlen(c->admin_address) + 2 > SMTP_PATH_MAX)
		conf_err(ctx, line, "admin_address = \"%s\": not an address "
		    "like you@example.org", c->admin_address);
	else if (route_is_local(&c->route, c->admin_address))
		conf_err(ctx, line, "admin_address = \"%s\": a local address "
		    "(its domain is this host's): mail to it would come back "
		    "here", c->admin_address);
}

/* Rules that tie options together.  Reports all broken ones. */
static int
conf_check(struct conf_ctx *ctx, const struct conf *c, cfg_t *cfg)
{
	const struct conf_queue	*q = &c->queue;
	char			 b1[32], b2[32];
	int			 before = ctx->nerrors;
	size_t			 i, j;

	if (c->nlisten == 0)
		conf_err(ctx, 0, "listen: at least one address is required");
	if (c->nallow == 0)
		conf_err(ctx, 0, "allow: at least one network is required");
	/* The default allow list covers loopback only; listening wider
	 * without saying who may relay is most likely a mistake. */
	if (c->nlisten > 0 && ctx->nonlocal_line != 0 &&
	    !conf_is_set(cfg, "allow"))
		conf_err(ctx, ctx->nonlocal_line, "listening on a non-loopback "
		    "address requires an explicit allow list");
	if (c->nlisten_tls > 0 && ctx->nonlocal_tls_line != 0 &&
	    !conf_is_set(cfg, "allow"))
		conf_err(ctx, ctx->nonlocal_tls_line, "listening on a "
		    "non-loopback address requires an explicit allow list");
	conf_check_lan(ctx, c);
	conf_check_local(ctx, c);
	for (i = 0; c->from_rewrite == CONF_FROM_ACCOUNT && i < c->nupstream;
	    i++)
		if (c->upstream[i].from_address[0] == '\0' &&
		    strchr(c->upstream[i].username, '@') == NULL)
			conf_err(ctx, ctx->line[conf_rule_index("from|rewrite")],
			    "from.rewrite = \"account\" needs an address: set "
			    "upstream.username (or from_address) of %s",
			    c->upstream[i].name);
	for (i = 1; i < c->nupstream; i++)
		for (j = 0; j < i; j++)
			if (strcmp(c->upstream[i].name, c->upstream[j].name)
			    == 0)
				conf_err(ctx, ctx->line[conf_rule_index(
				    "upstream")], "two upstream sections are "
				    "named %s: names must differ",
				    c->upstream[i].name);
	if (c->nupstream > CONF_UPSTREAM_MAX)
		conf_err(ctx, ctx->line[conf_rule_index("upstream")], "at "
		    "most %d upstream sections", CONF_UPSTREAM_MAX);
	if (c->max_clients_per_ip > c->max_clients)
		conf_err(ctx, conf_blame(ctx, "max_clients_per_ip",
		    "max_clients"), "max_clients_per_ip (%u) must not "
		    "exceed max_clients (%u)", c->max_clients_per_ip,
		    c->max_clients);
	if (q->retry_min > q->retry_max)
		conf_err(ctx, conf_blame(ctx, "queue|retry_min",
		    "queue|retry_max"), "queue.retry_min (%s) must not "
		    "exceed queue.retry_max (%s)",
		    str_fmt_duration(q->retry_min, b1, sizeof(b1)),
		    str_fmt_duration(q->retry_max, b2, sizeof(b2)));
	if (q->retry_max > q->lifetime)
		conf_err(ctx, conf_blame(ctx, "queue|retry_max",
		    "queue|lifetime"), "queue.retry_max (%s) must not "
		    "exceed queue.lifetime (%s)",
		    str_fmt_duration(q->retry_max, b1, sizeof(b1)),
		    str_fmt_duration(q->lifetime, b2, sizeof(b2)));
	return ctx->nerrors > before ? -1 : 0;
}

/*
 * The aliases file, once the rest is known to be good: its errors name
 * its own lines, and every name must route within bounds (route.h).
 */
static int
conf_load_aliases(struct conf_ctx *ctx, struct conf *c)
{
	char	err[2048], why[CONF_ERR_MAX];
	int	line = ctx->line[conf_rule_index("aliases")];

	if (c->aliases_path[0] == '\0')
		return 0;
	if ((c->aliases = aliases_load(c->aliases_path, err,
	    sizeof(err))) == NULL) {
		conf_err_lines(ctx, err);
		return -1;
	}
	c->route.aliases = c->aliases;
	if (route_check(&c->route, why, sizeof(why)) == -1) {
		conf_err(ctx, line, "aliases = \"%s\": %s", c->aliases_path,
		    why);
		return -1;
	}
	return 0;
}

/*
 * Read, blank comments, parse and check each value, copy into struct
 * conf, check the rules between options.  conf_cur is set only while
 * libconfuse may call back.
 */
struct conf *
conf_load(const char *path, char *errbuf, size_t errbufsz)
{
	struct conf_ctx	 ctx;
	struct conf	*c = NULL;
	cfg_t		*cfg = NULL;
	char		*text;
	size_t		 len;

	memset(&ctx, 0, sizeof(ctx));
	ctx.path = path;
	ctx.errbuf = errbuf;
	ctx.errbufsz = errbuf != NULL ? errbufsz : 0;
	if (ctx.errbufsz > 0)
		errbuf[0] = '\0';
	if ((text = conf_read(&ctx, &len)) == NULL)
		return NULL;
	conf_cur = &ctx;
	if (conf_strip_comments(&ctx, text, len) == -1 ||
	    conf_take_clients(&ctx, text, len) == -1)
		goto fail;
	cfg = conf_cfg_new();
	if (conf_cfg_parse(&ctx, cfg, text, len) == -1)
		goto fail;
	c = xcalloc(1, sizeof(*c));
	c->refs = 1;
	c->path = xstrdup(path);
	conf_build_top(c, cfg);
	conf_build_sections(c, cfg);
	conf_build_local(c, cfg);
	conf_build_lan(&ctx, c, cfg);
	if (conf_check(&ctx, c, cfg) == -1 || ctx.nerrors > 0 ||
	    conf_load_aliases(&ctx, c) == -1)
		goto fail;
	cfg_free(cfg);
	free(text);
	conf_free_clients(&ctx);
	conf_cur = NULL;
	return c;
fail:
	conf_free(c);
	if (cfg != NULL)
		cfg_free(cfg);
	free(text);
	conf_free_clients(&ctx);
	conf_cur = NULL;
	return NULL;
}

const struct conf *
conf_ref(const struct conf *cc)
{
	struct conf	*c = (struct conf *)cc;

	if (c != NULL)
		c->refs++;
	return cc;
}

void
conf_free(const struct conf *cc)
{
	struct conf	*c = (struct conf *)cc;
	size_t		 i;

	if (c == NULL || --c->refs > 0)
		return;
	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->listen);
	free(c->allow);
	free(c->path);
	free(c->hostname);
	free(c->domain);
	free(c->admin_address);
	free(c->aliases_path);
	aliases_free(c->aliases);
	free(c->per_ip_exempt);
	free(c->spool);
	free(c->user);
	free(c->control_socket);
	free(c->metrics_listen);
	free(c->log_level);
	for (i = 0; i < c->nupstream; i++)
		conf_free_upstream(&c->upstream[i]);
	free(c->upstream);
	free(c->from_suffix);
	for (i = 0; i < c->nnetworks; i++)
		free(c->networks[i].name);
	free(c->networks);
	for (i = 0; i < c->nlisten_tls; i++)
		free(c->listen_tls[i]);
	free(c->listen_tls);
	free(c->server_tls.cert_file);
	free(c->server_tls.key_file);
	free(c->client_auth.users_file);
	for (i = 0; i < c->client_auth.nplaintext; i++)
		free(c->client_auth.plaintext[i]);
	free(c->client_auth.plaintext);
	free(c->queue.bounce_to);
	free(c);
}

/* Host characters: "*" alone, or a name/IPv4 address, or inside
 * brackets an IPv6 address (with ':' and '%'). */
static bool
conf_host_is_valid(const char *h, size_t len, bool bracketed)
{
	size_t	i;

	if (len == 0)
		return false;
	if (!bracketed && len == 1 && h[0] == '*')
		return true;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)h[i]) &&
		    strchr(".-_", h[i]) == NULL &&
		    !(bracketed && (h[i] == ':' || h[i] == '%')))
			return false;
	return true;
}

int
conf_split_hostport(const char *s, char *host, size_t hostsz,
    uint16_t *port)
{
	const char	*h, *end, *p;
	size_t		 hlen;
	unsigned long	 n = 0;

	if (s[0] == '[') {
		h = s + 1;
		if ((end = strchr(h, ']')) == NULL || end[1] != ':')
			return -1;
		p = end + 2;
	} else {
		h = s;
		if ((end = strchr(s, ':')) == NULL)
			return -1;
		p = end + 1;
	}
	hlen = (size_t)(end - h);
	if (!conf_host_is_valid(h, hlen, s[0] == '['))
		return -1;
	/* Digits only: no sign, no spaces, no second ':' (an IPv6 address
	 * must be in brackets).  Port 0 asks the kernel for a free port. */
	if (*p == '\0' || strlen(p) > 5)
		return -1;
	for (; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		n = n * 10 + (unsigned long)(*p - '0');
	}
	if (n > 65535)
		return -1;
	if (s[0] != '[' && hlen == 1 && h[0] == '*')
		hlen = 0;
	if (hlen >= hostsz)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)n;
	return 0;
}

const struct conf_network *
conf_network_find(const struct conf *c, const struct sockaddr *addr)
{
	const struct conf_network	*best = NULL;
	size_t				 i;

	for (i = 0; i < c->nnetworks; i++)
		if (cidr_match_any(&c->networks[i].net, 1, addr) &&
		    (best == NULL || c->networks[i].net.prefix >
		    best->net.prefix))
			best = &c->networks[i];
	return best;
}

const char *
conf_default_path(void)
{
	if (access(CONF_DEFAULT_PATH, F_OK) == 0)
		return CONF_DEFAULT_PATH;
	return CONF_SYSTEM_PATH;
}
