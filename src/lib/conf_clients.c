/*
 * conf_clients.c - the entries of the "clients" table, checked.
 */
#include "config.h"
#include "conf_clients.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int
conf_clients_add(struct conf_clients *t, const char *net, const char *name,
    int line, char *err, size_t errsz)
{
	struct conf_client	*e;
	struct cidr		 cidr;
	char			 esc[128];
	const char		*p;

	str_log_escape(net, strlen(net), esc, sizeof(esc));
	if (strlen(name) > CONF_CLIENTS_NAME_MAX) {
		snprintf(err, errsz, "clients: name longer than %d bytes",
		    CONF_CLIENTS_NAME_MAX);
		return -1;
	}
	for (p = name; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			snprintf(err, errsz, "clients: the name of \"%s\" "
			    "has a control character", esc);
			return -1;
		}
	if (t->n >= CONF_CLIENTS_MAX) {
		snprintf(err, errsz, "clients: more than %d entries",
		    CONF_CLIENTS_MAX);
		return -1;
	}
	if (cidr_parse(net, &cidr) == -1) {
		snprintf(err, errsz, "clients: \"%s\" is not a network like "
		    "192.168.1.20/32", esc);
		return -1;
	}
	if (name[0] == '\0') {
		snprintf(err, errsz, "clients: the name of \"%s\" is empty",
		    esc);
		return -1;
	}
	t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
	e = &t->v[t->n++];
	e->net = cidr;
	e->name = xstrdup(name);
	e->line = line;
	return 0;
}

void
conf_clients_free(struct conf_clients *t)
{
	size_t	i;

	for (i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	t->v = NULL;
	t->n = 0;
}
