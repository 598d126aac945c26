/*
 * conftable.c - reads the "clients" table out of the configuration text.
 *
 * The grammar is small: the bare word "clients" at the top level, "{",
 * then pairs of double-quoted strings joined by "=", separated by white
 * space or commas, then "}".  Inside strings, a backslash escapes the
 * next character.  Strings cannot span lines.
 */
#include "config.h"
#include "conftable.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define CONFTABLE_KEY_MAX	64	/* "ffff:...:ffff/128" fits */

/* A scan in progress over one block. */
struct ct_scan {
	char		*s;
	size_t		 len;
	size_t		 i;
	int		 line;
	char		*err;
	size_t		 errsz;
};

static int	ct_fail(struct ct_scan *, const char *, ...)
		    __attribute__((format(printf, 2, 3)));

static int
ct_fail(struct ct_scan *p, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errsz, fmt, ap);
	va_end(ap);
	return -1;
}

/* True when the word at <i> begins a statement: only blanks between it
 * and the start of the text, a line end or a '}' ("spool = /a/clients"
 * and "hostname = clients.example" are values, not tables). */
static bool
ct_starts_statement(const char *s, size_t i)
{
	while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
		i--;
	return i == 0 || s[i - 1] == '\n' || s[i - 1] == '}';
}

/* Skips white space, and commas when <commas>, counting lines. */
static void
ct_skip(struct ct_scan *p, bool commas)
{
	while (p->i < p->len && (isspace((unsigned char)p->s[p->i]) ||
	    (commas && p->s[p->i] == ','))) {
		if (p->s[p->i] == '\n')
			p->line++;
		p->i++;
	}
}

/* Reads a double-quoted string at p->i into <out>. */
static int
ct_string(struct ct_scan *p, char *out, size_t outsz, const char *what)
{
	size_t	n = 0;
	char	c;

	if (p->i >= p->len || p->s[p->i] != '"')
		return ct_fail(p, "clients: expected a quoted %s", what);
	for (p->i++; p->i < p->len && p->s[p->i] != '"'; p->i++) {
		c = p->s[p->i];
		if (c == '\\' && p->i + 1 < p->len && p->s[p->i + 1] != '\n')
			c = p->s[++p->i];
		if (c == '\n' || (unsigned char)c < 0x20 || c == 0x7f)
			return ct_fail(p, "clients: %s: unterminated string "
			    "or control character", what);
		if (n + 1 >= outsz)
			return ct_fail(p, "clients: %s longer than %zu bytes",
			    what, outsz - 1);
		out[n++] = c;
	}
	if (p->i >= p->len)
		return ct_fail(p, "clients: unterminated string");
	p->i++;
	out[n] = '\0';
	return 0;
}

/* One "network" = "name" pair. */
static int
ct_entry(struct ct_scan *p, struct conftable_entry **entries, size_t *n)
{
	char			 key[CONFTABLE_KEY_MAX + 1];
	char			 name[CONFTABLE_NAME_MAX + 1];
	struct conftable_entry	*e;
	int			 line = p->line;

	if (ct_string(p, key, sizeof(key), "network") == -1)
		return -1;
	ct_skip(p, false);
	if (p->i >= p->len || p->s[p->i] != '=')
		return ct_fail(p, "clients: expected '=' after \"%s\"", key);
	p->i++;
	ct_skip(p, false);
	if (ct_string(p, name, sizeof(name), "name") == -1)
		return -1;
	if (*n >= CONFTABLE_ENTRIES_MAX)
		return ct_fail(p, "clients: more than %d entries",
		    CONFTABLE_ENTRIES_MAX);
	*entries = xrealloc(*entries, (*n + 1) * sizeof(**entries));
	e = &(*entries)[*n];
	if (cidr_parse(key, &e->net) == -1)
		return ct_fail(p, "clients: \"%s\" is not a network like "
		    "192.168.1.20/32", key);
	if (name[0] == '\0')
		return ct_fail(p, "clients: the name of \"%s\" is empty", key);
	e->name = xstrdup(name);
	e->line = line;
	(*n)++;
	return 0;
}

/* The block whose "clients" word starts at p->i; blanks it on success. */
static int
ct_block(struct ct_scan *p, struct conftable_entry **entries, size_t *n)
{
	size_t	start = p->i, k;
	int	line = p->line;

	p->i += strlen("clients");
	ct_skip(p, false);
	if (p->i >= p->len || p->s[p->i] != '{') {
		p->line = line;
		return ct_fail(p, "clients: expected '{' (the table is "
		    "clients { \"192.168.1.20/32\" = \"Office printer\" })");
	}
	p->i++;
	for (;;) {
		ct_skip(p, true);
		if (p->i >= p->len)
			return ct_fail(p, "clients: missing '}'");
		if (p->s[p->i] == '}')
			break;
		if (ct_entry(p, entries, n) == -1)
			return -1;
	}
	p->i++;
	for (k = start; k < p->i; k++)
		if (p->s[k] != '\n')
			p->s[k] = ' ';
	return 0;
}

int
conftable_take(char *text, size_t len, struct conftable_entry **entries,
    size_t *n, char *err, size_t errsz, int *errline)
{
	struct ct_scan	 p = { text, len, 0, 1, err, errsz };
	char		 quote = '\0', c;
	int		 depth = 0;

	while (p.i < p.len) {
		c = text[p.i];
		if (quote != '\0') {
			if (c == '\\' && p.i + 1 < p.len && text[p.i + 1] !=
			    '\n')
				p.i++;
			else if (c == quote)
				quote = '\0';
			else if (c == '\n')
				p.line++;
			p.i++;
			continue;
		}
		if (c == '"' || c == '\'')
			quote = c;
		else if (c == '\n')
			p.line++;
		else if (c == '{')
			depth++;
		else if (c == '}')
			depth--;
		else if (depth == 0 && strncmp(text + p.i, "clients", 7) == 0 &&
		    ct_starts_statement(text, p.i) &&
		    (text[p.i + 7] == '{' ||
		    isspace((unsigned char)text[p.i + 7]))) {
			if (ct_block(&p, entries, n) == -1) {
				*errline = p.line;
				return -1;
			}
			continue;
		}
		p.i++;
	}
	return 0;
}
