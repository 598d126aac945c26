/*
 * conf_clients.h - the "clients" table of the configuration file:
 *
 *	clients {
 *		"192.168.1.20/32" = "Office printer"
 *		"10.0.0.0/24" = "Cameras"
 *	}
 *
 * libconfuse reads it, as a section whose option names are the quoted
 * networks (CFGF_KEYSTRVAL); this module checks each entry and keeps
 * the list.  Pure code: no libconfuse, no files, no logging.
 */
#ifndef CONF_CLIENTS_H
#define CONF_CLIENTS_H

#include <stddef.h>

#include "cidr.h"

#define CONF_CLIENTS_NAME_MAX	100	/* octets of a client name */
#define CONF_CLIENTS_MAX	4096	/* networks named in all */

struct conf_client {
	struct cidr	 net;
	char		*name;		/* owned; never empty */
	int		 line;		/* where the entry is */
};

struct conf_clients {
	struct conf_client	*v;
	size_t			 n;
};

/*
 * Adds the entry <net> = <name> found at <line>.  Returns 0, or -1 with
 * the reason in <err> ("clients: ..."): <net> is not a network in CIDR
 * notation, <name> is empty, longer than CONF_CLIENTS_NAME_MAX or holds
 * a control character, or the table is full.
 */
int	conf_clients_add(struct conf_clients *, const char *net,
	    const char *name, int line, char *err, size_t errsz);

/* Frees the names left in the list (taken ones are NULL) and the list. */
void	conf_clients_free(struct conf_clients *);

#endif /* CONF_CLIENTS_H */
