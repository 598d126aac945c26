/*
 * mimeign.c - preamble and epilogue lines made conformant (see
 * mimeign.h).
 */
#include "config.h"

#include "mimeign.h"

#define MIMEIGN_LINE_MAX	998	/* RFC 5322 2.1.1, without CRLF */

void
mimeign_start(struct mimeign *g, void (*cb)(void *, const char *, size_t),
    void *arg)
{
	g->col = 0;
	g->alt = false;
	g->cb = cb;
	g->arg = arg;
}

void
mimeign_data(struct mimeign *g, const char *p, size_t n)
{
	size_t	i = 0, k;

	while (i < n) {
		if (g->col == MIMEIGN_LINE_MAX) {
			g->cb(g->arg, "\r\n ", 3);	/* no delimiter, no
							 * dot */
			g->col = 1;
			g->alt = true;
		}
		for (k = 0; i + k < n && g->col + k < MIMEIGN_LINE_MAX &&
		    p[i + k] != '\r' && p[i + k] != '\n' && p[i + k] != '\0';
		    k++)
			;
		if (k > 0) {
			g->cb(g->arg, p + i, k);
			g->col += k;
			i += k;
		} else if (g->col < MIMEIGN_LINE_MAX) {
			g->cb(g->arg, " ", 1);
			g->col++;
			g->alt = true;
			i++;
		}
	}
}

void
mimeign_alter(struct mimeign *g)
{
	g->alt = true;
}

bool
mimeign_eol(struct mimeign *g)
{
	bool	alt = g->alt;

	g->cb(g->arg, "\r\n", 2);
	g->col = 0;
	g->alt = false;
	return alt;
}
