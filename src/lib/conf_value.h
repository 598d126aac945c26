/*
 * conf_value.h - checks of one configuration value against its key.
 *
 * Pure functions over strings: no libconfuse, no files.  The checks
 * between keys are conf_build.c's.
 */
#ifndef CONF_VALUE_H
#define CONF_VALUE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf_schema.h"

/* Why string value <v> of key <key> is not acceptable, or NULL when it
 * is.  The reason is a static string or written into <buf>.  For listen
 * entries, *nonlocal tells whether <v> reaches beyond this host. */
const char	*conf_value_problem(const struct conf_key *key, const char *v,
		    bool *nonlocal, char *buf, size_t bufsz);

/* Reads a decimal integer (an optional '-', then digits only: no "010"
 * read as octal, no "0x10") into *n.  Returns 0, or -1. */
int		 conf_value_int(const char *s, long *n);

/* A host name or numeric address: letters, digits, ".-_:", at most 253
 * octets, not starting with '-' or '.'. */
bool		 conf_value_name_is_valid(const char *s);

/* The index of <v> in the NULL-ended <choices>, or -1. */
int		 conf_value_choice(const char *const *choices, const char *v);

#endif /* CONF_VALUE_H */
