/*
 * fuzz_command.c - libFuzzer harness for the command parsers of smtp.c.
 *
 * The input, NUL-terminated, is one command line.  It goes through
 * smtp_line_is_clean() and smtp_parse_verb(); the arguments then go
 * through smtp_parse_helo/mail/rcpt() whatever the verb (the whole line
 * when there is none), and the line through smtp_mailbox_is_valid().
 * Checked besides "no crash": the clean test matches its definition,
 * <args> stays inside the line, accepted results are well formed (a
 * mailbox, or a local part alone that the session qualifies) and
 * re-parse to themselves, with angle brackets and (when they hold none)
 * without, and every valid mailbox is accepted as a RCPT path.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"
#include "util.h"

#define FUZZ_MAX_SIZE	10485760	/* MAIL SIZE= limit */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Reports a broken invariant; libFuzzer saves the input on abort(). */
static void
fuzz_check(bool ok, const char *what, const char *line)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz_command: %s: \"%s\"\n", what, line);
	abort();
}

/* smtp_line_is_clean() as smtp.h defines it: printable ASCII, HTAB,
 * and well-formed UTF-8 for the rest. */
static bool
fuzz_is_clean(const uint8_t *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (p[i] < 0x80 && p[i] != '\t' && (p[i] < 0x20 ||
		    p[i] == 0x7f))
			return false;
	return str_is_utf8(p, len);
}

static void
fuzz_helo(const char *args)
{
	char	out[SMTP_DOMAIN_MAX + 1];
	size_t	i, len;

	if (smtp_parse_helo(args, out, sizeof(out)) != SMTP_OK)
		return;
	/* One word of printable ASCII, no blanks. */
	len = strlen(out);
	fuzz_check(len > 0 && len <= SMTP_DOMAIN_MAX, "helo length", args);
	for (i = 0; i < len; i++)
		fuzz_check(out[i] > 0x20 && out[i] < 0x7f, "helo byte", args);
}

/* What a MAIL or RCPT path may be once accepted. */
static bool
fuzz_path_is_valid(const char *path)
{
	return smtp_mailbox_is_valid(path) || smtp_local_is_valid(path);
}

/* A path without brackets or blanks outside quotes reads back the same
 * when sent bare ("FROM:a@b"): the tolerated form names the same
 * mailbox as the strict one. */
static bool
fuzz_bare_ok(const char *path)
{
	return strpbrk(path, "<>") == NULL;
}

static void
fuzz_mail(const char *args)
{
	struct smtp_mail	m, again;
	char			buf[SMTP_PATH_MAX + 8];

	if (smtp_parse_mail(args, FUZZ_MAX_SIZE, &m) != SMTP_OK)
		return;
	fuzz_check(m.path[0] == '\0' || fuzz_path_is_valid(m.path),
	    "mail path invalid", args);
	fuzz_check(strlen(m.path) + 2 <= SMTP_PATH_MAX, "mail path too long",
	    args);
	fuzz_check(m.size <= FUZZ_MAX_SIZE, "mail size over limit", args);
	fuzz_check(m.body <= SMTP_BODY_8BITMIME, "mail body", args);
	/* The path, written back as a bare MAIL FROM, gives itself. */
	snprintf(buf, sizeof(buf), "FROM:<%s>", m.path);
	fuzz_check(smtp_parse_mail(buf, FUZZ_MAX_SIZE, &again) == SMTP_OK &&
	    strcmp(again.path, m.path) == 0, "mail round trip", args);
	if (m.path[0] == '\0' || !fuzz_bare_ok(m.path))
		return;
	snprintf(buf, sizeof(buf), "FROM:%s", m.path);
	fuzz_check(smtp_parse_mail(buf, FUZZ_MAX_SIZE, &again) == SMTP_OK &&
	    strcmp(again.path, m.path) == 0, "bare mail round trip", args);
}

static void
fuzz_rcpt(const char *args)
{
	struct smtp_rcpt	r, again;
	char			buf[SMTP_PATH_MAX + 8];

	if (smtp_parse_rcpt(args, &r) != SMTP_OK)
		return;
	fuzz_check(fuzz_path_is_valid(r.path), "rcpt path invalid", args);
	snprintf(buf, sizeof(buf), "TO:<%s>", r.path);
	fuzz_check(smtp_parse_rcpt(buf, &again) == SMTP_OK &&
	    strcmp(again.path, r.path) == 0, "rcpt round trip", args);
	if (!fuzz_bare_ok(r.path))
		return;
	snprintf(buf, sizeof(buf), "TO:%s", r.path);
	fuzz_check(smtp_parse_rcpt(buf, &again) == SMTP_OK &&
	    strcmp(again.path, r.path) == 0, "bare rcpt round trip", args);
}

static void
fuzz_mailbox(const char *line)
{
	struct smtp_rcpt	r;
	char			buf[SMTP_PATH_MAX + 8];
	size_t			i, len = strlen(line);

	if (!smtp_mailbox_is_valid(line))
		return;
	/* local (64) "@" domain (255), no controls, UTF-8 (RFC 6531). */
	fuzz_check(len <= SMTP_LOCAL_MAX + 1 + SMTP_DOMAIN_MAX &&
	    strchr(line, '@') != NULL, "mailbox shape", line);
	for (i = 0; i < len; i++)
		fuzz_check((unsigned char)line[i] >= 0x20 && line[i] != 0x7f,
		    "mailbox byte", line);
	fuzz_check(str_is_utf8((const unsigned char *)line, len),
	    "mailbox not UTF-8", line);
	/* Any valid mailbox that fits in a path is a good recipient. */
	if (len + 2 > SMTP_PATH_MAX)
		return;
	snprintf(buf, sizeof(buf), "TO:<%s>", line);
	fuzz_check(smtp_parse_rcpt(buf, &r) == SMTP_OK &&
	    strcmp(r.path, line) == 0, "mailbox refused as rcpt", line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*line;
	const char	*args = NULL;
	enum smtp_verb	 verb;

	/* The session hands the parsers a NUL-terminated copy. */
	if ((line = malloc(size + 1)) == NULL)
		return 0;
	memcpy(line, data, size);
	line[size] = '\0';

	fuzz_check(smtp_line_is_clean(line, size) == fuzz_is_clean(data, size),
	    "smtp_line_is_clean", line);
	verb = smtp_parse_verb(line, &args);
	fuzz_check(args != NULL && args >= line && args <= line + strlen(line),
	    "args outside the line", line);
	fuzz_check(verb == SMTP_VERB_UNKNOWN || (*args != ' ' &&
	    *args != '\t'), "args start with a blank", line);

	/* Without a known verb, the whole line serves as arguments, so
	 * that mutations reach the parsers without finding a verb first. */
	if (verb == SMTP_VERB_UNKNOWN)
		args = line;
	fuzz_helo(args);
	fuzz_mail(args);
	fuzz_rcpt(args);
	fuzz_mailbox(line);
	free(line);
	return 0;
}
