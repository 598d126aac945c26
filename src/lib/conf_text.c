/*
 * conf_text.c - reads a configuration file and blanks its comments.
 *
 * Only the comment syntax is known here; libconfuse reads the rest.
 */
#include "config.h"
#include "conf_text.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define CONF_FILE_MAX		(1024 * 1024)		/* bytes */

char *
conf_text_read(struct conf_errs *e, size_t *lenp)
{
	struct stat	 st;
	char		*buf = NULL, *nul;
	size_t		 len = 0, cap = 0;
	ssize_t		 n;
	int		 fd, line;

	if ((fd = open(e->path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		conf_errs_add(e, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		conf_errs_add(e, 0, "cannot open: %s", strerror(EISDIR));
		goto fail;
	}
	for (;;) {
		if (len > CONF_FILE_MAX) {
			conf_errs_add(e, 0, "larger than %d bytes",
			    CONF_FILE_MAX);
			goto fail;
		}
		if (len == cap) {
			cap = cap == 0 ? 8192 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		if ((n = read(fd, buf + len, cap - len)) == 0)
			break;
		if (n == -1 && errno != EINTR) {
			conf_errs_add(e, 0, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (n > 0)
			len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if ((nul = memchr(buf, '\0', len)) != NULL) {
		for (line = 1; nul > buf; nul--)
			line += nul[-1] == '\n';
		conf_errs_add(e, line, "NUL byte in the file");
		free(buf);
		return NULL;
	}
	*lenp = len;
	return buf;
fail:
	if (fd != -1)
		close(fd);
	free(buf);
	return NULL;
}

int
conf_text_strip_comments(struct conf_errs *e, char *s, size_t len)
{
	enum { TEXT, DQUOTE, SQUOTE, LINE, BLOCK } st = TEXT;
	size_t	i, depth = 0;
	int	line = 1, start = 0, open = 0;

	for (i = 0; i < len; line += s[i] == '\n', i++) {
		switch (st) {
		case TEXT:
			if (s[i] == '"' || s[i] == '\'')
				st = s[i] == '"' ? DQUOTE : SQUOTE;
			else if (s[i] == '{' && depth++ == 0)
				open = line;
			else if (s[i] == '}' && depth > 0)
				depth--;
			else if (s[i] == '#')
				st = LINE;
			else if (s[i] == '/' && (s[i + 1] == '/' ||
			    s[i + 1] == '*') && (i == 0 ||
			    strchr(" \t\r\n{}(),=+", s[i - 1]) != NULL)) {
				st = s[i + 1] == '/' ? LINE : BLOCK;
				start = line;
				s[i++] = ' ';
			}
			if (st == LINE || st == BLOCK)
				s[i] = ' ';
			break;
		case DQUOTE:
		case SQUOTE:
			if (s[i] == '\\' && i + 1 < len && s[i + 1] != '\n')
				i++;
			else if (s[i] == (st == DQUOTE ? '"' : '\''))
				st = TEXT;
			break;
		case LINE:
			if (s[i] == '\n')
				st = TEXT;
			else
				s[i] = ' ';
			break;
		case BLOCK:
			if (s[i] == '*' && s[i + 1] == '/') {
				s[i++] = ' ';
				st = TEXT;
			}
			if (s[i] != '\n')
				s[i] = ' ';
			break;
		}
	}
	if (st == BLOCK) {
		conf_errs_add(e, start, "unterminated /* comment");
		return -1;
	}
	if (depth > 0) {
		conf_errs_add(e, line, "missing '}' (the '{' on line %d is "
		    "never closed)", open);
		return -1;
	}
	return 0;
}
