/*
 * conf_errs.c - the error messages of one configuration load, gathered
 * into the caller's buffer.
 */
#include "config.h"
#include "conf_errs.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void
conf_errs_init(struct conf_errs *e, const char *path, char *buf,
    size_t bufsz)
{
	memset(e, 0, sizeof(*e));
	e->path = path;
	e->buf = buf;
	e->bufsz = buf != NULL ? bufsz : 0;
	if (e->bufsz > 0)
		buf[0] = '\0';
}

/* Whether another line fits (the count goes up either way). */
static bool
conf_errs_room(struct conf_errs *e)
{
	e->n++;
	return e->bufsz > 0 && e->len + 1 < e->bufsz;
}

void
conf_errs_addv(struct conf_errs *e, int line, const char *fmt, va_list ap)
{
	char	where[16] = "", msg[CONF_ERR_MAX];

	if (!conf_errs_room(e))
		return;
	if (line > 0)
		snprintf(where, sizeof(where), ":%d", line);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(e->buf + e->len, e->bufsz - e->len, "%s%s%s: %s",
	    e->len > 0 ? "\n" : "", e->path, where, msg);
	e->len += strlen(e->buf + e->len);
}

void
conf_errs_add(struct conf_errs *e, int line, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	conf_errs_addv(e, line, fmt, ap);
	va_end(ap);
}

void
conf_errs_add_lines(struct conf_errs *e, const char *text)
{
	if (!conf_errs_room(e))
		return;
	snprintf(e->buf + e->len, e->bufsz - e->len, "%s%s",
	    e->len > 0 ? "\n" : "", text);
	e->len += strlen(e->buf + e->len);
}
