/*
 * ehlo.c - what a server's EHLO reply offers (ehlo.h).
 */
#include "config.h"

#include "ehlo.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

void
ehlo_ext_reset(struct ehlo_ext *x)
{
	memset(x, 0, sizeof(*x));
}

/* Parses the EHLO keywords we care about from one reply line. */
const char *
ehlo_ext_line(struct ehlo_ext *r, const char *kw)
{
	unsigned long long	n;

	if (strcasecmp(kw, "STARTTLS") == 0)
		r->starttls = true;
	else if (strcasecmp(kw, "PIPELINING") == 0)
		r->pipelining = true;
	else if (strcasecmp(kw, "8BITMIME") == 0)
		r->eightbitmime = true;
	else if (strcasecmp(kw, "SMTPUTF8") == 0)
		r->smtputf8 = true;
	else if (str_has_prefix_ci(kw, "SIZE ") ||
	    strcasecmp(kw, "SIZE") == 0) {
		n = strtoull(kw + 4, NULL, 10);
		r->size = n;
	} else if (str_has_prefix_ci(kw, "AUTH ") ||
	    str_has_prefix_ci(kw, "AUTH=")) {
		return kw + 5;
	}
	return NULL;
}
