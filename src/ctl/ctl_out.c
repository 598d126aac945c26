/*
 * ctl_out.c - smartrelayctl's one way to print text that came from
 * elsewhere (API in ctl_out.h).
 */
#include "config.h"

#include "ctl_out.h"

#include <string.h>

#include "json.h"

static void
ctl_put_file(void *arg, const void *p, size_t n)
{
	fwrite(p, 1, n, arg);
}

void
ctl_put(FILE *f, const char *s, bool lines)
{
	const unsigned char	*p = (const unsigned char *)(s ? s : "");

	for (; *p != '\0'; p++) {
		if (lines && p[0] == '\r' && p[1] == '\n')
			continue;
		if ((lines && *p == '\n') || *p == '\t')
			putc(*p, f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\x%02x", *p);
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			fprintf(f, "\\u%04x", p[1]);
			p++;
		} else
			putc(*p, f);
	}
}

void
ctl_put_json(FILE *f, const char *s)
{
	if (s == NULL)
		fputs("null", f);
	else
		json_put_str(ctl_put_file, f, s, strlen(s));
}
