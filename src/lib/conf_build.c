/*
 * conf_build.c - copies a checked libconfuse tree into struct conf, by
 * the schema's destinations, then checks the rules between keys.
 *
 * Every value was checked as libconfuse read it, so a value that fails
 * to convert here is a bug (fatalx).  Keys are reached by their position
 * in the option arrays (the schema's order), never by name.
 */
#include "config.h"
#include "conf_build.h"

#include <sys/socket.h>

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aliases.h"
#include "cidr.h"
#include "conf_value.h"
#include "log.h"
#include "route.h"
#include "smtp.h"
#include "util.h"

/* CONF_S_ENUM stores the index of a choice through an int. */
_Static_assert(sizeof(enum conf_bare_lf) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_tls_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_auth) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_family) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_from_rewrite) == sizeof(int), "enum size");
_Static_assert(sizeof(enum conf_net_auth) == sizeof(int), "enum size");

/* The option of key <k> in <sec>, an instance of section <s>. */
static cfg_opt_t *
conf_build_opt(cfg_t *sec, enum conf_sec_id s, enum conf_key_id k)
{
	return &sec->opts[k - conf_sections[s].first];
}

/* The instance of single section <k> (queue, tls...) of the top level. */
static cfg_t *
conf_build_sec(cfg_t *cfg, enum conf_key_id k)
{
	return cfg_opt_getnsec(conf_build_opt(cfg, CONF_SEC_ROOT, k), 0);
}

/* Set in the file, rather than left at its default. */
static bool
conf_build_is_set(cfg_t *sec, enum conf_sec_id s, enum conf_key_id k)
{
	return (conf_build_opt(sec, s, k)->flags & CFGF_MODIFIED) != 0;
}

static const char *
conf_build_str(cfg_t *sec, enum conf_sec_id s, enum conf_key_id k)
{
	const char	*v = cfg_opt_getnstr(conf_build_opt(sec, s, k), 0);

	return v != NULL ? v : "";
}

/* The index of the value of choice key <k>. */
static int
conf_build_choice(cfg_t *sec, enum conf_sec_id s, enum conf_key_id k)
{
	int	i;

	i = conf_value_choice(conf_schema[k].choices,
	    conf_build_str(sec, s, k));
	if (i == -1)
		fatalx("conf: %s was not checked", conf_schema[k].name);
	return i;
}

/* A list key into the array at <p> and its count at <n>. */
static void
conf_build_list(const struct conf_key *key, cfg_opt_t *opt, void *p,
    size_t *n)
{
	unsigned int	 i, size = cfg_opt_size(opt);
	char		**strs;
	struct cidr	*nets;

	if (key->store == CONF_S_STRS) {
		*(char ***)p = strs = xcalloc(size + 1, sizeof(*strs));
		for (i = 0; i < size; i++)
			strs[(*n)++] = xstrdup(cfg_opt_getnstr(opt, i));
		return;
	}
	*(struct cidr **)p = nets = xcalloc(size + 1, sizeof(*nets));
	for (i = 0; i < size; i++)
		if (cidr_parse(cfg_opt_getnstr(opt, i), &nets[(*n)++]) == -1)
			fatalx("conf: %s was not checked", key->name);
}

/* Copies the values of the keys of section <s> from its instance <sec>
 * to their fields in <base>. */
static void
conf_build_fields(void *base, cfg_t *sec, enum conf_sec_id s)
{
	const struct conf_key	*key;
	cfg_opt_t		*opt;
	char			*p;
	uint64_t		 secs;
	int			 k;

	for (k = conf_sections[s].first; k < (int)conf_sections[s].end; k++) {
		key = &conf_schema[k];
		opt = conf_build_opt(sec, s, (enum conf_key_id)k);
		p = (char *)base + key->off;
		switch (key->store) {
		case CONF_S_NONE:
			break;
		case CONF_S_STR:
			*(char **)p = xstrdup(conf_build_str(sec, s,
			    (enum conf_key_id)k));
			break;
		case CONF_S_UINT:
			*(unsigned int *)p = (unsigned int)cfg_opt_getnint(opt,
			    0);
			break;
		case CONF_S_U16:
			*(uint16_t *)p = (uint16_t)cfg_opt_getnint(opt, 0);
			break;
		case CONF_S_U64:
			*(uint64_t *)p = (uint64_t)cfg_opt_getnint(opt, 0);
			break;
		case CONF_S_SECS:
			if (str_parse_duration(cfg_opt_getnstr(opt, 0), &secs)
			    == -1)
				fatalx("conf: %s was not checked", key->name);
			*(uint64_t *)p = secs;
			break;
		case CONF_S_ENUM:
			*(int *)p = conf_build_choice(sec, s,
			    (enum conf_key_id)k);
			break;
		case CONF_S_BOOL:
			*(bool *)p = cfg_opt_getnbool(opt, 0) == cfg_true;
			break;
		case CONF_S_STRS:
		case CONF_S_CIDRS:
			conf_build_list(key, opt, p,
			    (size_t *)((char *)base + key->count));
			break;
		}
	}
}

void
conf_build_fields_free(void *base, enum conf_sec_id s)
{
	const struct conf_key	*key;
	char			*p, **strs;
	size_t			 i, n;
	int			 k;

	for (k = conf_sections[s].first; k < (int)conf_sections[s].end; k++) {
		key = &conf_schema[k];
		p = (char *)base + key->off;
		if (key->store == CONF_S_STR)
			free(*(char **)p);
		else if (key->store == CONF_S_CIDRS)
			free(*(struct cidr **)p);
		else if (key->store == CONF_S_STRS) {
			strs = *(char ***)p;
			n = *(size_t *)((char *)base + key->count);
			for (i = 0; i < n; i++)
				free(strs[i]);
			free(strs);
		}
	}
}

/*
 * The machine's fully qualified name: gethostname(), or its canonical
 * name from the resolver when it has no dot, or the plain name.
 */
static char *
conf_build_default_hostname(void)
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
		    conf_value_name_is_valid(res->ai_canonname))
			fqdn = xstrdup(res->ai_canonname);
		freeaddrinfo(res);
	}
	return fqdn != NULL ? fqdn : xstrdup(name);
}

/* The top level and its single sections. */
static void
conf_build_top(struct conf *c, cfg_t *cfg)
{
	static const enum conf_key_id	 single[] = { CONF_QUEUE, CONF_METRICS,
	    CONF_FROM, CONF_TLS, CONF_AUTH };
	size_t				 i;

	conf_build_fields(c, cfg, CONF_SEC_ROOT);
	for (i = 0; i < nitems(single); i++)
		conf_build_fields(c, conf_build_sec(cfg, single[i]),
		    conf_schema[single[i]].sec);
	if (!conf_build_is_set(cfg, CONF_SEC_ROOT, CONF_HOSTNAME)) {
		free(c->hostname);
		c->hostname = conf_build_default_hostname();
	}
	c->log_syslog = conf_build_choice(cfg, CONF_SEC_ROOT, CONF_LOG) == 1;
	c->server_tls.min_version = 10 + conf_build_choice(conf_build_sec(cfg,
	    CONF_TLS), CONF_SEC_TLS, CONF_TLS_MIN_VERSION);
}

/* "host:port" ("[v6]:port"), an upstream's name unless it has one. */
static const char *
conf_build_upstream_name(const struct conf_upstream *up, char *buf,
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

	conf_build_fields(up, sec, CONF_SEC_UPSTREAM);
	if (up->tls == CONF_TLS_IMPLICIT &&
	    !conf_build_is_set(sec, CONF_SEC_UPSTREAM, CONF_UP_PORT))
		up->port = 465;
	if (up->verify_name[0] == '\0') {
		free(up->verify_name);
		up->verify_name = xstrdup(up->host);
	}
	if (up->name[0] == '\0') {
		free(up->name);
		up->name = xstrdup(conf_build_upstream_name(up, name,
		    sizeof(name)));
	}
}

/* Names label log lines, stats and metric series, so they must differ:
 * a default "host:port" that an earlier section already has gets its
 * position ("smtp.gmail.com:587#2", two accounts on one server).
 * Duplicates the file sets itself are refused by conf_build_check(). */
static void
conf_build_unique_names(struct conf *c)
{
	char	name[320];
	size_t	i, j;

	for (i = 1; i < c->nupstream; i++)
		for (j = 0; j < i; j++) {
			if (strcmp(c->upstream[i].name, c->upstream[j].name)
			    != 0)
				continue;
			if (strcmp(conf_build_upstream_name(&c->upstream[i],
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
conf_build_upstreams(struct conf *c, cfg_t *cfg)
{
	static const struct conf_schema_cbs	 none;
	cfg_opt_t	*opt, *opts;
	cfg_t		*def;
	unsigned int	 i, n;

	opt = conf_build_opt(cfg, CONF_SEC_ROOT, CONF_UPSTREAM);
	n = cfg_opt_size(opt);

	c->upstream = xcalloc(n > 0 ? n : 1, sizeof(*c->upstream));
	if (n == 0) {
		opts = conf_schema_opts(CONF_SEC_UPSTREAM, &none);
		if ((def = cfg_init(opts, CFGF_NONE)) == NULL)
			fatalx("conf: cfg_init failed");
		conf_build_upstream(&c->upstream[0], def);
		cfg_free(def);
		conf_schema_opts_free(opts);
		c->nupstream = 1;
	}
	for (i = 0; i < n; i++)
		conf_build_upstream(&c->upstream[c->nupstream++],
		    cfg_opt_getnsec(opt, i));
	conf_build_unique_names(c);
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

	c->domain = xstrdup(conf_build_is_set(cfg, CONF_SEC_ROOT,
	    CONF_DOMAIN) ? conf_build_str(cfg, CONF_SEC_ROOT, CONF_DOMAIN) :
	    c->hostname);
	c->route.domain = c->domain;
	c->route.hostname = c->hostname;
	c->route.admin = "";
	if (conf_build_is_set(cfg, CONF_SEC_ROOT, CONF_ADMIN_ADDRESS)) {
		c->admin_address = xstrdup(conf_build_str(cfg, CONF_SEC_ROOT,
		    CONF_ADMIN_ADDRESS));
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

/* A network section: its policy, and its own bare_lf or the top-level
 * one. */
static void
conf_build_network(struct conf_network *n, cfg_t *sec, enum conf_bare_lf lf)
{
	if (cidr_parse(cfg_title(sec), &n->net) == -1)
		fatalx("conf: network was not checked");
	conf_build_fields(n, sec, CONF_SEC_NETWORK);
	n->bare_lf = lf;
	if (conf_build_str(sec, CONF_SEC_NETWORK, CONF_NET_BARE_LF)[0] != '\0')
		n->bare_lf = (enum conf_bare_lf)conf_build_choice(sec,
		    CONF_SEC_NETWORK, CONF_NET_BARE_LF);
}

/* Same network, same prefix: one policy. */
static bool
conf_build_cidr_equal(const struct cidr *a, const struct cidr *b)
{
	return a->family == b->family && a->prefix == b->prefix &&
	    memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

/* <out> becomes network <net> with the policy of the most specific of
 * the first <nsec> networks (the sections) that contains it, or the
 * defaults. */
static void
conf_build_inherit_policy(struct conf_network *out, const struct conf *c,
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
conf_build_networks(struct conf *c, cfg_t *cfg, struct conf_seen *seen,
    struct conf_errs *e)
{
	cfg_opt_t	*opt = conf_build_opt(cfg, CONF_SEC_ROOT, CONF_NETWORK);
	unsigned int	 i, n = cfg_opt_size(opt);
	size_t		 j, k;

	c->networks = xcalloc(n + seen->clients.n + 1, sizeof(*c->networks));
	for (i = 0; i < n; i++)
		conf_build_network(&c->networks[c->nnetworks++],
		    cfg_opt_getnsec(opt, i), c->bare_lf);
	for (j = 0; j < seen->clients.n; j++) {
		for (k = 0; k < c->nnetworks; k++)
			if (conf_build_cidr_equal(&c->networks[k].net,
			    &seen->clients.v[j].net))
				break;
		if (k == c->nnetworks) {
			/* A name changes no policy: take the enclosing
			 * section's, if any. */
			conf_build_inherit_policy(&c->networks[k], c, n,
			    &seen->clients.v[j].net);
			c->networks[k].name = seen->clients.v[j].name;
			c->nnetworks++;
		} else if (c->networks[k].name[0] != '\0') {
			conf_errs_add(e, seen->clients.v[j].line, "clients: "
			    "this network is already named \"%s\"",
			    c->networks[k].name);
			free(seen->clients.v[j].name);
		} else {
			free(c->networks[k].name);
			c->networks[k].name = seen->clients.v[j].name;
		}
		seen->clients.v[j].name = NULL;
	}
}

/*
 * The line to blame when keys <a> and <b> disagree: the later of the two
 * that the file sets, else the end of <sec>'s section when <sec> is not
 * the top level, else none (0).
 */
static int
conf_build_blame(const struct conf_seen *seen, enum conf_key_id a,
    enum conf_key_id b, enum conf_key_id sec)
{
	int	la = seen->line[a], lb = seen->line[b];

	if (la == 0 && lb == 0 && sec != CONF_NKEYS)
		return seen->line[sec];
	return la > lb ? la : lb;
}

/* Inbound TLS needs both halves of the key pair; AUTH without TLS only
 * where a plain listener says so. */
static void
conf_build_check_lan(const struct conf *c, const struct conf_seen *seen,
    struct conf_errs *e)
{
	const struct conf_server_tls	*t = &c->server_tls;
	size_t				 i, j;

	if ((t->cert_file[0] == '\0') != (t->key_file[0] == '\0'))
		conf_errs_add(e, seen->line[CONF_TLS], "tls: cert_file and "
		    "key_file must be set together");
	if (c->nlisten_tls > 0 && t->cert_file[0] == '\0')
		conf_errs_add(e, seen->line[CONF_LISTEN_TLS], "listen_tls "
		    "needs tls.cert_file and tls.key_file");
	for (i = 0; i < c->client_auth.nplaintext; i++) {
		for (j = 0; j < c->nlisten; j++)
			if (strcmp(c->listen[j], c->client_auth.plaintext[i])
			    == 0)
				break;
		if (j == c->nlisten)
			conf_errs_add(e, seen->line[CONF_AUTH_PLAINTEXT],
			    "auth.plaintext = \"%s\": not one of the listen "
			    "addresses", c->client_auth.plaintext[i]);
	}
}

/* The admin address must be a mailbox the relay can send to: one that
 * is local would only come back here. */
static void
conf_build_check_local(const struct conf *c, const struct conf_seen *seen,
    struct conf_errs *e)
{
	int	line = seen->line[CONF_ADMIN_ADDRESS];

	if (c->admin_from != CONF_ADMIN_SET)
		return;
	if (!smtp_mailbox_is_valid(c->admin_address) ||
	    strlen(c->admin_address) + 2 > SMTP_PATH_MAX)
		conf_errs_add(e, line, "admin_address = \"%s\": not an address "
		    "like you@example.org", c->admin_address);
	else if (route_is_local(&c->route, c->admin_address))
		conf_errs_add(e, line, "admin_address = \"%s\": a local "
		    "address (its domain is this host's): mail to it would "
		    "come back here", c->admin_address);
}

/* Listening beyond loopback needs an allow list (the default covers
 * loopback only, so it is most likely a mistake); upstreams need the
 * account's address for from.rewrite and names of their own. */
static void
conf_build_check_relay(const struct conf *c, cfg_t *cfg,
    const struct conf_seen *seen, struct conf_errs *e)
{
	bool	allow_set = conf_build_is_set(cfg, CONF_SEC_ROOT, CONF_ALLOW);
	size_t	i, j;

	if (c->nlisten == 0)
		conf_errs_add(e, 0, "listen: at least one address is required");
	if (c->nallow == 0)
		conf_errs_add(e, 0, "allow: at least one network is required");
	if (c->nlisten > 0 && seen->nonlocal_line != 0 && !allow_set)
		conf_errs_add(e, seen->nonlocal_line, "listening on a "
		    "non-loopback address requires an explicit allow list");
	if (c->nlisten_tls > 0 && seen->nonlocal_tls_line != 0 && !allow_set)
		conf_errs_add(e, seen->nonlocal_tls_line, "listening on a "
		    "non-loopback address requires an explicit allow list");
	conf_build_check_lan(c, seen, e);
	conf_build_check_local(c, seen, e);
	for (i = 0; c->from_rewrite == CONF_FROM_ACCOUNT && i < c->nupstream;
	    i++)
		if (c->upstream[i].from_address[0] == '\0' &&
		    strchr(c->upstream[i].username, '@') == NULL)
			conf_errs_add(e, seen->line[CONF_FROM_REWRITE],
			    "from.rewrite = \"account\" needs an address: set "
			    "upstream.username (or from_address) of %s",
			    c->upstream[i].name);
	for (i = 1; i < c->nupstream; i++)
		for (j = 0; j < i; j++)
			if (strcmp(c->upstream[i].name, c->upstream[j].name)
			    == 0)
				conf_errs_add(e, seen->line[CONF_UPSTREAM],
				    "two upstream sections are named %s: "
				    "names must differ", c->upstream[i].name);
	if (c->nupstream > CONF_UPSTREAM_MAX)
		conf_errs_add(e, seen->line[CONF_UPSTREAM], "at most %d "
		    "upstream sections", CONF_UPSTREAM_MAX);
}

/* Limits that must come in order. */
static void
conf_build_check_limits(const struct conf *c, const struct conf_seen *seen,
    struct conf_errs *e)
{
	const struct conf_queue	*q = &c->queue;
	char			 b1[32], b2[32];

	if (c->max_clients_per_ip > c->max_clients)
		conf_errs_add(e, conf_build_blame(seen, CONF_MAX_CLIENTS_PER_IP,
		    CONF_MAX_CLIENTS, CONF_NKEYS), "max_clients_per_ip (%u) "
		    "must not exceed max_clients (%u)", c->max_clients_per_ip,
		    c->max_clients);
	if (q->retry_min > q->retry_max)
		conf_errs_add(e, conf_build_blame(seen, CONF_QUEUE_RETRY_MIN,
		    CONF_QUEUE_RETRY_MAX, CONF_QUEUE), "queue.retry_min (%s) "
		    "must not exceed queue.retry_max (%s)",
		    str_fmt_duration(q->retry_min, b1, sizeof(b1)),
		    str_fmt_duration(q->retry_max, b2, sizeof(b2)));
	if (q->retry_max > q->lifetime)
		conf_errs_add(e, conf_build_blame(seen, CONF_QUEUE_RETRY_MAX,
		    CONF_QUEUE_LIFETIME, CONF_QUEUE), "queue.retry_max (%s) "
		    "must not exceed queue.lifetime (%s)",
		    str_fmt_duration(q->retry_max, b1, sizeof(b1)),
		    str_fmt_duration(q->lifetime, b2, sizeof(b2)));
}

/*
 * The aliases file, once the rest is known to be good: its errors name
 * its own lines, and every name must route within bounds (route.h).
 */
static int
conf_build_aliases(struct conf *c, const struct conf_seen *seen,
    struct conf_errs *e)
{
	char	err[2048], why[CONF_ERR_MAX];

	if (c->aliases_path[0] == '\0')
		return 0;
	if ((c->aliases = aliases_load(c->aliases_path, err,
	    sizeof(err))) == NULL) {
		conf_errs_add_lines(e, err);
		return -1;
	}
	c->route.aliases = c->aliases;
	if (route_check(&c->route, why, sizeof(why)) == -1) {
		conf_errs_add(e, seen->line[CONF_ALIASES], "aliases = \"%s\": "
		    "%s", c->aliases_path, why);
		return -1;
	}
	return 0;
}

struct conf *
conf_build(cfg_t *cfg, const char *path, struct conf_seen *seen,
    struct conf_errs *e)
{
	struct conf	*c;

	c = xcalloc(1, sizeof(*c));
	c->refs = 1;
	c->path = xstrdup(path);
	conf_build_top(c, cfg);
	conf_build_upstreams(c, cfg);
	conf_build_local(c, cfg);
	conf_build_networks(c, cfg, seen, e);
	conf_build_check_relay(c, cfg, seen, e);
	conf_build_check_limits(c, seen, e);
	if (e->n > 0 || conf_build_aliases(c, seen, e) == -1) {
		conf_free(c);
		return NULL;
	}
	return c;
}
