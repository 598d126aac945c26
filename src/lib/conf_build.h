/*
 * conf_build.h - struct conf from a parsed and checked libconfuse tree,
 * and the rules between keys.
 */
#ifndef CONF_BUILD_H
#define CONF_BUILD_H

#include <stddef.h>

#include <confuse.h>

#include "conf.h"
#include "conf_errs.h"
#include "conf_schema.h"
#include "conf_clients.h"

/* What the parse saw besides the values: where keys were set, for the
 * messages of the rules between keys. */
struct conf_seen {
	int			 line[CONF_NKEYS]; /* last set there; 0: not */
	int			 nonlocal_line;	/* first non-loopback listen */
	int			 nonlocal_tls_line; /* ... listen_tls */
	struct conf_clients	 clients;	/* the "clients" tables */
};

/*
 * Copies every value of <cfg>, each already checked, into a new conf
 * read from <path>, works out the defaults that depend on other keys,
 * checks the rules between keys, then loads the aliases file.  Returns
 * the conf (one reference), or NULL after adding the errors to <e>.
 * Takes the names of seen->clients (leaving NULL behind).
 */
struct conf	*conf_build(cfg_t *cfg, const char *path,
		    struct conf_seen *seen, struct conf_errs *e);

/* Frees what the keys of section <sec> put into <base> (a struct conf,
 * conf_upstream or conf_network), leaving the struct itself. */
void		 conf_build_fields_free(void *base, enum conf_sec_id sec);

#endif /* CONF_BUILD_H */
