/*
 * aliases.c - reads an aliases(5) file into a table sorted by name.
 *
 * The text is read as sendmail and Postfix read it: a line that starts
 * with a blank continues the entry above it, '#' at the start of a line
 * is a comment, and targets are separated by commas outside double
 * quotes.  Every problem is reported with its line, and any problem
 * refuses the whole file: a half-read aliases file would send some of
 * root's mail to the wrong place without anyone noticing.
 */
#include "config.h"

#include "aliases.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtp.h"
#include "util.h"

#define ALIASES_ERRORS_MAX	10	/* reported, then the rest counted */

struct aliases_entry {
	char	 *name;			/* lower case */
	char	**targets;
	size_t	  ntargets;
	int	  line;			/* where the entry starts */
};

struct aliases {
	struct aliases_entry	*v;
	size_t			 n;
};

/* One parse in progress. */
struct aliases_ctx {
	const char		*path;
	char			*err;
	size_t			 errsz;
	size_t			 errlen;
	int			 nerrors;
	struct aliases		*a;
	size_t			 cap;
};

static void aliases_err(struct aliases_ctx *, int, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends "path:line: message" as one more line of ctx->err. */
static void
aliases_err(struct aliases_ctx *ctx, int line, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;
	int	n;

	if (++ctx->nerrors > ALIASES_ERRORS_MAX || ctx->errsz == 0 ||
	    ctx->errlen + 1 >= ctx->errsz)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = snprintf(ctx->err + ctx->errlen, ctx->errsz - ctx->errlen,
	    "%s%s:%d: %s", ctx->errlen > 0 ? "\n" : "", ctx->path, line, msg);
	if (n > 0)
		ctx->errlen += strlen(ctx->err + ctx->errlen);
}

static bool
aliases_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* True when the <len> octets at <p> are all blanks. */
static bool
aliases_is_all_blank(const char *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (!aliases_is_blank(p[i]))
			return false;
	return true;
}

/* <p>/<len> without the blanks around it. */
static void
aliases_trim(const char **p, size_t *len)
{
	while (*len > 0 && aliases_is_blank(**p)) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && aliases_is_blank((*p)[*len - 1]))
		(*len)--;
}

/* Quotes <p>/<len> for a message: escaped, shortened when long. */
static const char *
aliases_quote(const char *p, size_t len, char *buf, size_t bufsz)
{
	return str_log_escape(p, len, buf, bufsz);
}

/* Why target <t> (trimmed, NUL-terminated) cannot be used, or NULL.  A
 * fully quoted target is looked at inside its quotes, as sendmail
 * does: "|cmd" is a pipe whether quoted or not. */
static const char *
aliases_target_problem(const char *t)
{
	const char	*in = t;
	size_t		 len = strlen(t);

	if (len >= 2 && t[0] == '"' && t[len - 1] == '"' &&
	    memchr(t + 1, '"', len - 2) == NULL)
		in = t + 1;
	if (str_has_prefix_ci(in, ":include:"))
		return ":include: files are not supported: list the "
		    "addresses here";
	if (in[0] == '|')
		return "delivery to a command is not supported: smartrelay "
		    "delivers no mail locally, give an address";
	if (in[0] == '/')
		return "delivery to a file is not supported: smartrelay "
		    "delivers no mail locally, give an address";
	if (len > SMTP_PATH_MAX - 2)
		return "too long for an address";
	if (strchr(t, '@') != NULL ? smtp_mailbox_is_valid(t) :
	    smtp_local_is_valid(t))
		return NULL;
	if (in == t && strpbrk(t, " \t") != NULL)
		return "not an address (like you@example.org) or a local "
		    "name; separate addresses with commas";
	return "not an address (like you@example.org) or a local name";
}

/* Adds target <p>/<len> of the entry <e> unless it is empty (as
 * between two commas) or bad (reported). */
static void
aliases_add_target(struct aliases_ctx *ctx, struct aliases_entry *e,
    const char *p, size_t len)
{
	char		*t, q[128];
	const char	*why;

	aliases_trim(&p, &len);
	if (len >= 2 && p[0] == '<' && p[len - 1] == '>') {
		p++;
		len -= 2;
		aliases_trim(&p, &len);
	}
	if (len == 0)
		return;
	t = xmalloc(len + 1);
	memcpy(t, p, len);
	t[len] = '\0';
	if ((why = aliases_target_problem(t)) != NULL) {
		aliases_err(ctx, e->line, "%s: \"%s\": %s", e->name,
		    aliases_quote(t, len, q, sizeof(q)), why);
		free(t);
		return;
	}
	e->targets = xrealloc(e->targets, (e->ntargets + 1) *
	    sizeof(*e->targets));
	e->targets[e->ntargets++] = t;
}

static void
aliases_entry_cleanup(struct aliases_entry *e)
{
	size_t	i;

	for (i = 0; i < e->ntargets; i++)
		free(e->targets[i]);
	free(e->targets);
	free(e->name);
	memset(e, 0, sizeof(*e));
}

/* One logical entry: the text of its line and continuation lines
 * (joined by spaces), which starts on line <line>. */
static void
aliases_entry(struct aliases_ctx *ctx, const char *text, size_t len,
    int line)
{
	struct aliases_entry	 e;
	const char		*colon, *name = text, *p, *start;
	size_t			 nlen, i;
	bool			 quoted = false;
	char			 q[128];
	int			 before = ctx->nerrors;

	memset(&e, 0, sizeof(e));
	e.line = line;
	if ((colon = memchr(text, ':', len)) == NULL) {
		aliases_err(ctx, line, "\"%s\": no ':' after the name",
		    aliases_quote(text, len, q, sizeof(q)));
		return;
	}
	nlen = (size_t)(colon - text);
	aliases_trim(&name, &nlen);
	e.name = xmalloc(nlen + 1);
	for (i = 0; i < nlen; i++)
		e.name[i] = (name[i] >= 'A' && name[i] <= 'Z') ?
		    (char)(name[i] - 'A' + 'a') : name[i];
	e.name[nlen] = '\0';
	/* A dot-atom: a quoted name could not be written as a key. */
	if (nlen == 0 || name[0] == '"' || !smtp_local_is_valid(e.name)) {
		aliases_err(ctx, line, "\"%s\": not a name (letters, digits, "
		    "\".-_+\" and the like, at most 64 octets)",
		    aliases_quote(name, nlen, q, sizeof(q)));
		aliases_entry_cleanup(&e);
		return;
	}
	start = colon + 1;
	for (p = start; p < text + len; p++) {
		if (*p == '\\' && quoted && p + 1 < text + len)
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == ',' && !quoted) {
			aliases_add_target(ctx, &e, start, (size_t)(p - start));
			start = p + 1;
		}
	}
	aliases_add_target(ctx, &e, start, (size_t)(text + len - start));
	if (e.ntargets == 0 && ctx->nerrors == before)
		aliases_err(ctx, line, "%s: no address after the ':'", e.name);
	if (e.ntargets == 0) {
		aliases_entry_cleanup(&e);
		return;
	}
	if (ctx->a->n == ctx->cap) {
		ctx->cap = ctx->cap == 0 ? 16 : ctx->cap * 2;
		ctx->a->v = xrealloc(ctx->a->v, ctx->cap * sizeof(*ctx->a->v));
	}
	ctx->a->v[ctx->a->n++] = e;
}

static int
aliases_cmp(const void *x, const void *y)
{
	const struct aliases_entry	*a = x, *b = y;
	int				 c = strcmp(a->name, b->name);

	if (c != 0)
		return c;
	return a->line < b->line ? -1 : a->line > b->line;
}

/* Sorts the entries for lookups and refuses a name given twice: which
 * of the two was meant is anyone's guess. */
static void
aliases_sort(struct aliases_ctx *ctx)
{
	struct aliases	*a = ctx->a;
	size_t		 i;

	if (a->n > 1)
		qsort(a->v, a->n, sizeof(*a->v), aliases_cmp);
	for (i = 1; i < a->n; i++)
		if (strcmp(a->v[i - 1].name, a->v[i].name) == 0)
			aliases_err(ctx, a->v[i].line, "%s: a second entry "
			    "for this name (the first is on line %d)",
			    a->v[i].name, a->v[i - 1].line);
}

/* Splits the text into entries: a line and the continuation lines
 * (starting with a blank) after it, comment lines skipped. */
static void
aliases_read_lines(struct aliases_ctx *ctx, const char *text, size_t len)
{
	const char	*p = text, *end = text + len, *lf;
	char		*buf;
	size_t		 blen = 0, llen;
	int		 line = 0, start = 0;

	/* The buffer holds one entry; no entry is longer than the text. */
	buf = xmalloc(len + 1);
	for (; p < end; p = lf + 1) {
		line++;
		if ((lf = memchr(p, '\n', (size_t)(end - p))) == NULL)
			lf = end;
		llen = (size_t)(lf - p);
		if (llen > 0 && p[llen - 1] == '\r')
			llen--;
		if (memchr(p, '\0', llen) != NULL) {
			aliases_err(ctx, line, "NUL byte in the file");
			continue;
		}
		if (llen > 0 && p[0] == '#')
			continue;
		if (llen > 0 && aliases_is_blank(p[0])) {
			/* A blank line ends nothing; text continues. */
			if (blen > 0) {
				buf[blen++] = ' ';
				memcpy(buf + blen, p, llen);
				blen += llen;
			} else if (!aliases_is_all_blank(p, llen))
				aliases_err(ctx, line, "a continuation line "
				    "(it starts with a blank) without an entry "
				    "above it");
			continue;
		}
		if (blen > 0)
			aliases_entry(ctx, buf, blen, start);
		blen = 0;
		if (llen == 0)
			continue;
		memcpy(buf, p, llen);
		blen = llen;
		start = line;
	}
	if (blen > 0)
		aliases_entry(ctx, buf, blen, start);
	free(buf);
}

struct aliases *
aliases_parse(const char *text, size_t len, const char *path, char *err,
    size_t errsz)
{
	struct aliases_ctx	 ctx;

	memset(&ctx, 0, sizeof(ctx));
	ctx.path = path;
	ctx.err = err;
	ctx.errsz = err != NULL ? errsz : 0;
	if (ctx.errsz > 0)
		err[0] = '\0';
	ctx.a = xcalloc(1, sizeof(*ctx.a));
	aliases_read_lines(&ctx, text, len);
	aliases_sort(&ctx);
	if (ctx.nerrors > ALIASES_ERRORS_MAX && ctx.errsz > 0 &&
	    ctx.errlen + 1 < ctx.errsz)
		snprintf(ctx.err + ctx.errlen, ctx.errsz - ctx.errlen,
		    "\n%s: %d more errors", path,
		    ctx.nerrors - ALIASES_ERRORS_MAX);
	if (ctx.nerrors > 0) {
		aliases_free(ctx.a);
		return NULL;
	}
	return ctx.a;
}

struct aliases *
aliases_load(const char *path, char *err, size_t errsz)
{
	struct aliases	*a = NULL;
	struct stat	 st;
	char		*buf = NULL;
	size_t		 got = 0;
	ssize_t		 n;
	int		 fd;

	/* O_NONBLOCK: a FIFO put there must not hang a reload. */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		snprintf(err, errsz, "%s: cannot open: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s: not a regular file", path);
		goto out;
	}
	/* One octet more than allowed tells a file that grew since. */
	buf = xmalloc(ALIASES_FILE_MAX + 1);
	while (got < ALIASES_FILE_MAX + 1) {
		n = read(fd, buf + got, ALIASES_FILE_MAX + 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errsz, "%s: cannot read: %s", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > ALIASES_FILE_MAX)
		snprintf(err, errsz, "%s: larger than %d octets", path,
		    ALIASES_FILE_MAX);
	else
		a = aliases_parse(buf, got, path, err, errsz);
out:
	free(buf);
	close(fd);
	return a;
}

void
aliases_free(struct aliases *a)
{
	size_t	i;

	if (a == NULL)
		return;
	for (i = 0; i < a->n; i++)
		aliases_entry_cleanup(&a->v[i]);
	free(a->v);
	free(a);
}

size_t
aliases_count(const struct aliases *a)
{
	return a != NULL ? a->n : 0;
}

const char *
aliases_name(const struct aliases *a, size_t i)
{
	return a->v[i].name;
}

/* ASCII case-insensitive strcmp() against a lower-case <name>. */
static int
aliases_key_cmp(const char *key, const char *name)
{
	unsigned char	c;

	for (;; key++, name++) {
		c = (unsigned char)*key;
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (c != (unsigned char)*name)
			return c < (unsigned char)*name ? -1 : 1;
		if (c == '\0')
			return 0;
	}
}

const char *const *
aliases_get(const struct aliases *a, const char *name, size_t *n, int *line)
{
	size_t	lo = 0, hi, mid;
	int	c;

	if (a == NULL)
		return NULL;
	hi = a->n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = aliases_key_cmp(name, a->v[mid].name)) == 0) {
			if (n != NULL)
				*n = a->v[mid].ntargets;
			if (line != NULL)
				*line = a->v[mid].line;
			return (const char *const *)a->v[mid].targets;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
