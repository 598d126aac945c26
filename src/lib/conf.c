/*
 * conf.c - the configuration file: read it, let libconfuse parse it with
 * the options conf_schema.c describes, check each value as it is read,
 * then build an immutable struct conf (conf_build.c).
 *
 * Values are checked while libconfuse reads them, so each error carries
 * its exact line; the rules that tie keys together are checked once all
 * are read.  Comments are blanked out before the text reaches libconfuse
 * (conf_text.h says why).
 */
#include "config.h"
#include "conf.h"

#include <sys/socket.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <confuse.h>

#include "aliases.h"
#include "conf_build.h"
#include "conf_errs.h"
#include "conf_schema.h"
#include "conf_text.h"
#include "conf_value.h"
#include "log.h"
#include "util.h"

/* Where libconfuse 3.3 saw a key of a "clients" table first. */
struct conf_keyline {
	char			*key;
	int			 line;
};

/* One conf_load() in progress. */
struct conf_ctx {
	struct conf_errs	 errs;
	struct conf_seen	 seen;
	struct conf_keyline	*keylines;	/* of the table being read */
	size_t			 nkeylines;
};

/*
 * The load in progress.  libconfuse callbacks carry no user pointer, and
 * its scanner is a global flex scanner anyway, so loads never overlap.
 */
static struct conf_ctx	*conf_cur;

static void conf_cfg_error_cb(cfg_t *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));
static int conf_int_cb(cfg_t *, cfg_opt_t *, const char *, void *);

/* Forgets the lines of the keys of the table just read. */
static void
conf_keylines_clear(struct conf_ctx *ctx)
{
	size_t	i;

	for (i = 0; i < ctx->nkeylines; i++)
		free(ctx->keylines[i].key);
	free(ctx->keylines);
	ctx->keylines = NULL;
	ctx->nkeylines = 0;
}

/*
 * The messages of libconfuse about a "clients" table, where it is not
 * an error, or where the table's own words say it better.  Returns 1
 * when the message was handled.  <arg> is the message's one "%s".
 * libconfuse's formats are compared untranslated: none of our programs
 * calls setlocale(), so gettext leaves them as they are.
 */
static int
conf_clients_error(struct conf_ctx *ctx, cfg_t *cfg, const char *fmt,
    const char *arg)
{
	char	esc[CONF_ERR_MAX];

	str_log_escape(arg, strlen(arg), esc, sizeof(esc));
	if ((cfg->flags & CFGF_KEYSTRVAL) != 0 &&
	    strcmp(fmt, "no such option '%s'") == 0) {
		/* libconfuse 3.3 says so of each new key before it adds
		 * it (later versions do not): the key's line. */
		ctx->keylines = xrealloc(ctx->keylines,
		    (ctx->nkeylines + 1) * sizeof(*ctx->keylines));
		ctx->keylines[ctx->nkeylines].key = xstrdup(arg);
		ctx->keylines[ctx->nkeylines++].line = cfg->line;
		return 1;
	}
	if ((cfg->flags & CFGF_KEYSTRVAL) != 0 &&
	    strcmp(fmt, "missing equal sign after option '%s'") == 0) {
		conf_errs_add(&ctx->errs, cfg->line, "clients: expected '=' "
		    "after \"%s\"", esc);
		return 1;
	}
	if (strcmp(fmt, "missing opening brace for section '%s'") == 0 &&
	    strcmp(arg, conf_schema[CONF_CLIENTS].name) == 0) {
		conf_errs_add(&ctx->errs, cfg->line, "clients: expected '{' "
		    "(the table is clients { \"192.168.1.20/32\" = "
		    "\"Office printer\" })");
		return 1;
	}
	return 0;
}

/*
 * libconfuse's own messages: syntax, unknown options and sections, wrong
 * types.  cfg is the section being parsed; its line is the current one.
 * They quote the file's tokens as they are, newlines and escape
 * sequences included, so they are escaped like our own quotes of values.
 * Inside a "clients" table they start with "clients: ".
 */
static void
conf_cfg_error_cb(cfg_t *cfg, const char *fmt, va_list ap)
{
	char		 msg[CONF_ERR_MAX], esc[CONF_ERR_MAX];
	va_list		 copy;
	const char	*arg = NULL;

	if (conf_cur == NULL)
		return;
	if (cfg != NULL && strstr(fmt, "'%s'") != NULL &&
	    strchr(strchr(fmt, '%') + 1, '%') == NULL) {
		va_copy(copy, ap);
		arg = va_arg(copy, const char *);
		va_end(copy);
		if (conf_clients_error(conf_cur, cfg, fmt, arg) == 1)
			return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	conf_errs_add(&conf_cur->errs, cfg != NULL ? cfg->line : 0, "%s%s",
	    cfg != NULL && (cfg->flags & CFGF_KEYSTRVAL) != 0 ? "clients: " :
	    "", str_log_escape(msg, strlen(msg), esc, sizeof(esc)));
}

/*
 * At the end of a "clients" table: each key must be a network and each
 * value a name; the first entry that is not ends the table.  An entry's
 * line is where libconfuse 3.3 first saw its key, else the table's last
 * line.  Keys and their reports come in the same order, so one pass
 * pairs them.
 */
static int
conf_clients_seen(struct conf_ctx *ctx, cfg_opt_t *opt, int line)
{
	cfg_t		*sec = cfg_opt_getnsec(opt, opt->nvalues - 1);
	cfg_opt_t	*o;
	const char	*name;
	char		 err[CONF_ERR_MAX];
	unsigned int	 i;
	size_t		 j, next = 0;
	int		 at, rc = 0;

	for (i = 0; i < cfg_num(sec) && rc == 0; i++) {
		o = cfg_getnopt(sec, i);
		name = cfg_opt_getnstr(o, 0);
		at = line;
		for (j = next; j < ctx->nkeylines; j++)
			if (strcmp(ctx->keylines[j].key, o->name) == 0) {
				at = ctx->keylines[j].line;
				next = j + 1;
				break;
			}
		if (conf_clients_add(&ctx->seen.clients, o->name,
		    name != NULL ? name : "", at, err, sizeof(err)) == -1) {
			conf_errs_add(&ctx->errs, at, "%s", err);
			rc = -1;
		}
	}
	conf_keylines_clear(ctx);
	return rc;
}

/*
 * Remembers the first non-loopback entry of listen and listen_tls (for
 * the allow-list rule) and refuses one in auth.plaintext: AUTH without
 * TLS never crosses a network.
 */
static int
conf_listen_seen(struct conf_ctx *ctx, enum conf_key_id k, cfg_opt_t *opt,
    bool nonlocal, int line, const char *v)
{
	int	*first;

	if (k == CONF_AUTH_PLAINTEXT) {
		if (!nonlocal && v[0] != '*')
			return 0;
		conf_errs_add(&ctx->errs, line, "auth.plaintext = \"%s\": must "
		    "be a loopback address", v);
		return -1;
	}
	first = k == CONF_LISTEN ? &ctx->seen.nonlocal_line :
	    &ctx->seen.nonlocal_tls_line;
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
	conf_errs_add(&ctx->errs, line, "network \"%s\": not a network like "
	    "192.168.1.0/24 or fd00::/8", title == NULL ? "" :
	    str_log_escape(title, strlen(title), esc, sizeof(esc)));
	return -1;
}

/* A value of key <k> (a scalar's only one, a list's newest) is fine. */
static int
conf_value_seen(struct conf_ctx *ctx, enum conf_key_id k, cfg_opt_t *opt,
    int line)
{
	const struct conf_key	*key = &conf_schema[k];
	const char		*v, *why;
	char			 label[64], esc[128], buf[128];
	bool			 nonlocal = false;
	long			 n;

	conf_schema_label(k, label, sizeof(label));
	if (key->type == CONF_T_INT) {
		n = cfg_opt_getnint(opt, 0);
		if (n >= key->min && n <= key->max)
			return 0;
		conf_errs_add(&ctx->errs, line, "%s = %ld: must be between %ld "
		    "and %ld", label, n, key->min, key->max);
		return -1;
	}
	v = cfg_opt_getnstr(opt, opt->nvalues - 1);
	if (v == NULL)
		v = "";
	why = conf_value_problem(key, v, &nonlocal, buf, sizeof(buf));
	if (why != NULL) {
		conf_errs_add(&ctx->errs, line, "%s = \"%s\": %s", label,
		    str_log_escape(v, strlen(v), esc, sizeof(esc)), why);
		return -1;
	}
	if (key->check == CONF_C_LISTEN)
		return conf_listen_seen(ctx, k, opt, nonlocal, line, v);
	return 0;
}

/*
 * Called by libconfuse after each value it stores, with cfg->line at that
 * value; for lists, after each entry and once more at the closing brace.
 * For sections, at the closing brace.  <sec> is the section whose keys
 * include <opt>.
 */
static int
conf_validate(enum conf_sec_id sec, cfg_t *cfg, cfg_opt_t *opt)
{
	struct conf_ctx	*ctx = conf_cur;
	char		 label[64];
	int		 k;

	k = conf_schema_key(sec, cfg, opt);
	if (ctx == NULL || opt->nvalues == 0)
		return 0;
	if (k == -1) {
		conf_errs_add(&ctx->errs, cfg->line, "\"%s\" given as "
		    "\"section|option\": set it inside its section", opt->name);
		return -1;
	}
	if (conf_schema[k].check == CONF_C_SECTION && ctx->seen.line[k] != 0) {
		conf_errs_add(&ctx->errs, cfg->line, "second '%s' section "
		    "(only one is allowed; the first ends on line %d)",
		    conf_schema_label((enum conf_key_id)k, label,
		    sizeof(label)), ctx->seen.line[k]);
		return -1;
	}
	ctx->seen.line[k] = cfg->line;
	switch (conf_schema[k].check) {
	case CONF_C_NETWORK:
		return conf_network_seen(ctx, opt, cfg->line);
	case CONF_C_CLIENTS:
		return conf_clients_seen(ctx, opt, cfg->line);
	case CONF_C_NONE:
	case CONF_C_SECTION:
	case CONF_C_MULTI:
		return 0;
	default:
		return conf_value_seen(ctx, (enum conf_key_id)k, opt,
		    cfg->line);
	}
}

/* libconfuse's callbacks carry no user pointer: one per section tells
 * conf_validate() whose keys it is called for. */
static int
conf_root_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	return conf_validate(CONF_SEC_ROOT, cfg, opt);
}

static int
conf_upstream_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	return conf_validate(CONF_SEC_UPSTREAM, cfg, opt);
}

static int
conf_queue_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	return conf_validate(CONF_SEC_QUEUE, cfg, opt);
}

static int
conf_metrics_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	return conf_validate(CONF_SEC_METRICS, cfg, opt);
}

static int
conf_from_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	return conf_validate(CONF_SEC_FROM, cfg, opt);
}

static int
conf_network_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	return conf_validate(CONF_SEC_NETWORK, cfg, opt);
}

static int
conf_tls_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	return conf_validate(CONF_SEC_TLS, cfg, opt);
}

static int
conf_auth_cb(cfg_t *cfg, cfg_opt_t *opt)
{
	return conf_validate(CONF_SEC_AUTH, cfg, opt);
}

static const struct conf_schema_cbs conf_cbs = {
	.validate = {
		[CONF_SEC_ROOT] = conf_root_cb,
		[CONF_SEC_UPSTREAM] = conf_upstream_cb,
		[CONF_SEC_QUEUE] = conf_queue_cb,
		[CONF_SEC_METRICS] = conf_metrics_cb,
		[CONF_SEC_FROM] = conf_from_cb,
		[CONF_SEC_NETWORK] = conf_network_cb,
		[CONF_SEC_TLS] = conf_tls_cb,
		[CONF_SEC_AUTH] = conf_auth_cb,
	},
	.int_parse = conf_int_cb,
};

/* Decimal only: libconfuse's strtol(, 0) would read "010" as 8.  The
 * key's section is the one whose validating callback <opt> carries. */
static int
conf_int_cb(cfg_t *cfg, cfg_opt_t *opt, const char *value, void *result)
{
	char	label[64], esc[128];
	long	n;
	int	s, k = -1;

	if (conf_value_int(value, &n) == 0) {
		*(long *)result = n;
		return 0;
	}
	for (s = 0; s < CONF_NSECS && k == -1; s++)
		if (opt->validcb == conf_cbs.validate[s])
			k = conf_schema_key((enum conf_sec_id)s, cfg, opt);
	if (k != -1)
		conf_schema_label((enum conf_key_id)k, label, sizeof(label));
	else
		snprintf(label, sizeof(label), "%s", opt->name);
	if (conf_cur != NULL)
		conf_errs_add(&conf_cur->errs, cfg->line, "%s = \"%s\": not a "
		    "decimal integer", label, str_log_escape(value,
		    strlen(value), esc, sizeof(esc)));
	return -1;
}

/*
 * Parses the comment-free <text> with the schema's options, each value
 * checked by conf_validate() as it is read and libconfuse's own errors
 * routed to the context.  An empty file is all defaults (and fmemopen()
 * refuses a zero-length buffer on old libcs).  Returns the tree, or NULL
 * after adding the errors.
 */
static cfg_t *
conf_parse(struct conf_ctx *ctx, char *text, size_t len)
{
	cfg_opt_t	*opts;
	cfg_t		*cfg;
	FILE		*fp;
	int		 rc = CFG_SUCCESS, before = ctx->errs.n;

	opts = conf_schema_opts(CONF_SEC_ROOT, &conf_cbs);
	/* cfg_init() copies the option arrays, callbacks included. */
	if ((cfg = cfg_init(opts, CFGF_NONE)) == NULL)
		fatalx("conf: cfg_init failed");
	conf_schema_opts_free(opts);
	cfg_set_error_function(cfg, conf_cfg_error_cb);
	if (len > 0) {
		if ((fp = fmemopen(text, len, "r")) == NULL)
			fatal("conf: fmemopen");
		rc = cfg_parse_fp(cfg, fp);
		fclose(fp);
	}
	if (rc == CFG_SUCCESS)
		return cfg;
	if (ctx->errs.n == before)
		conf_errs_add(&ctx->errs, 0, "cannot parse");
	cfg_free(cfg);
	return NULL;
}

/*
 * Read, blank comments, parse and check each value, build struct conf
 * and check the rules between keys.  conf_cur is set only while
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
	conf_errs_init(&ctx.errs, path, errbuf, errbufsz);
	if ((text = conf_text_read(&ctx.errs, &len)) == NULL)
		return NULL;
	conf_cur = &ctx;
	if (conf_text_strip_comments(&ctx.errs, text, len) == 0 &&
	    (cfg = conf_parse(&ctx, text, len)) != NULL)
		c = conf_build(cfg, path, &ctx.seen, &ctx.errs);
	if (cfg != NULL)
		cfg_free(cfg);
	free(text);
	conf_clients_free(&ctx.seen.clients);
	conf_keylines_clear(&ctx);
	conf_cur = NULL;
	return c;
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
	static const enum conf_sec_id	 in_conf[] = { CONF_SEC_ROOT,
	    CONF_SEC_QUEUE, CONF_SEC_METRICS, CONF_SEC_FROM, CONF_SEC_TLS,
	    CONF_SEC_AUTH };
	struct conf			*c = (struct conf *)cc;
	size_t				 i;

	if (c == NULL || --c->refs > 0)
		return;
	for (i = 0; i < nitems(in_conf); i++)
		conf_build_fields_free(c, in_conf[i]);
	for (i = 0; i < c->nupstream; i++)
		conf_build_fields_free(&c->upstream[i], CONF_SEC_UPSTREAM);
	free(c->upstream);
	for (i = 0; i < c->nnetworks; i++)
		conf_build_fields_free(&c->networks[i], CONF_SEC_NETWORK);
	free(c->networks);
	free(c->path);
	free(c->domain);
	free(c->admin_address);
	aliases_free(c->aliases);
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
