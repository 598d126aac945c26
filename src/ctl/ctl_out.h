/*
 * ctl_out.h - printing text from messages, clients and the upstream on
 * smartrelayctl's terminal: escaped so that none of it can drive the
 * terminal.
 */
#ifndef CTL_OUT_H
#define CTL_OUT_H

#include <stdbool.h>
#include <stdio.h>

/* Prints <s> (NULL: nothing) with control bytes as \xXX and C1
 * controls (U+0080..U+009F) as \uXXXX; a tab passes.  With <lines>,
 * CRLF and LF end lines. */
void	ctl_put(FILE *f, const char *s, bool lines);

/* Prints <s> (NULL: null) as a JSON string, escaped as the daemon's
 * answers are (json_put_str()). */
void	ctl_put_json(FILE *f, const char *s);

#endif /* CTL_OUT_H */
