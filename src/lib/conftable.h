/*
 * conftable.h - the "clients" table of the configuration file:
 *
 *	clients {
 *		"192.168.1.20/32" = "Office printer"
 *		"10.0.0.0/24" = "Cameras"
 *	}
 *
 * libconfuse names options with bare words only, so it cannot read keys
 * that are quoted networks.  conf.c hands the comment-free text to
 * conftable_take() first, which reads every top-level "clients" block
 * and blanks it out (newlines kept, so libconfuse's line numbers stay
 * right).  Pure code: no files, no logging.
 */
#ifndef CONFTABLE_H
#define CONFTABLE_H

#include <stddef.h>

#include "cidr.h"

#define CONFTABLE_NAME_MAX	100	/* octets of a client name */
#define CONFTABLE_ENTRIES_MAX	4096	/* networks named in all */

struct conftable_entry {
	struct cidr	 net;
	char		*name;		/* owned; never empty */
	int		 line;		/* where the entry starts */
};

/*
 * Reads and blanks the clients blocks in the NUL-terminated <text> of
 * <len> octets, appending entries to *entries / *n (the caller frees
 * each name and the array, also after an error).  Returns 0, or -1 with
 * a message in <err> and its line in *errline.
 */
int	conftable_take(char *text, size_t len, struct conftable_entry **entries,
	    size_t *n, char *err, size_t errsz, int *errline);

#endif /* CONFTABLE_H */
