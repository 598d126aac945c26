/*
 * conf_value.c - checks of one configuration value against its key:
 * names, paths, addresses, durations, choices, networks.
 *
 * Every reason returned here ends up after "file:line: key = "value": "
 * in an error message, so each says what the value should look like.
 */
#include "config.h"
#include "conf_value.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "conf.h"
#include "log.h"
#include "quota.h"
#include "smtp.h"
#include "util.h"

#define CONF_NAME_MAX		253			/* RFC 1035 */

int
conf_value_int(const char *s, long *n)
{
	const char	*p = s;
	char		*end;

	if (*p == '-')
		p++;
	errno = 0;
	*n = strtol(s, &end, 10);
	if (!isdigit((unsigned char)*p) || *end != '\0' || errno == ERANGE)
		return -1;
	return 0;
}

bool
conf_value_name_is_valid(const char *s)
{
	size_t	i, len = strlen(s);

	if (len == 0 || len > CONF_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr(".-_:", s[i]) == NULL)
			return false;
	return true;
}

int
conf_value_choice(const char *const *choices, const char *v)
{
	int	i;

	for (i = 0; choices[i] != NULL; i++)
		if (strcmp(v, choices[i]) == 0)
			return i;
	return -1;
}

/* No control characters, which would end up in logs or protocol lines;
 * with <word>, no spaces and nothing outside ASCII either. */
static bool
conf_value_chars_are_valid(const char *s, bool word)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f ||
		    (word && ((unsigned char)*s == ' ' ||
		    (unsigned char)*s > 0x7f)))
			return false;
	return true;
}

/* Checks a listen entry and tells whether it reaches beyond this host. */
static bool
conf_value_listen_is_valid(const char *s, bool *nonlocal)
{
	char		host[INET6_ADDRSTRLEN + 8];
	struct in_addr	a4;
	struct in6_addr	a6;
	uint16_t	port;

	if (conf_split_hostport(s, host, sizeof(host), &port) == -1)
		return false;
	if (host[0] == '\0')
		*nonlocal = true;
	else if (inet_pton(AF_INET, host, &a4) == 1)
		*nonlocal = (ntohl(a4.s_addr) >> 24) != 127;
	else if (inet_pton(AF_INET6, host, &a6) == 1)
		*nonlocal = !IN6_IS_ADDR_LOOPBACK(&a6);
	else
		return false;
	return true;
}

/* "must be "a", "b" or "c"" into <buf>. */
static const char *
conf_value_choices_text(const char *const *choices, char *buf, size_t bufsz)
{
	size_t	i, len;

	snprintf(buf, bufsz, "must be");
	for (i = 0; choices[i] != NULL; i++) {
		len = strlen(buf);
		snprintf(buf + len, bufsz - len, "%s\"%s\"", i == 0 ? " " :
		    choices[i + 1] == NULL ? " or " : ", ", choices[i]);
	}
	return buf;
}

/* An https URL whose host part is a plausible name: the token endpoint
 * is reached with evhttp, which wants exactly this. */
static bool
conf_value_url_is_valid(const char *s)
{
	const char	*h = s + 8, *end;
	size_t		 hlen;

	if (strncmp(s, "https://", 8) != 0 ||
	    !conf_value_chars_are_valid(s, true))
		return false;
	end = h + strcspn(h, "/:?#");
	hlen = (size_t)(end - h);
	if (hlen == 0 || hlen > CONF_NAME_MAX)
		return false;
	return *end == '\0' || *end == '/' || *end == ':';
}

/* A domain that makes "name@domain" a valid mailbox. */
static bool
conf_value_domain_is_valid(const char *v)
{
	char	buf[SMTP_DOMAIN_MAX + 3];

	if (snprintf(buf, sizeof(buf), "x@%s", v) >= (int)sizeof(buf))
		return false;
	return smtp_mailbox_is_valid(buf) && v[0] != '[';
}

/* The checks of paths and free text. */
static const char *
conf_value_text_problem(enum conf_check check, const char *v)
{
	struct sockaddr_un	sun;

	switch (check) {
	case CONF_C_SOCKET:
		if (strlen(v) >= sizeof(sun.sun_path))
			return "too long for a unix socket path";
		/* FALLTHROUGH */
	case CONF_C_PATH:
		if (v[0] != '/')
			return "must be an absolute path";
		return conf_value_chars_are_valid(v, false) ? NULL :
		    "must not contain control characters";
	case CONF_C_WORD:
		return conf_value_chars_are_valid(v, true) ? NULL :
		    "must not contain spaces or control characters";
	case CONF_C_MAILBOX:
		if (!conf_value_chars_are_valid(v, true) ||
		    strchr(v, '<') != NULL || strchr(v, '>') != NULL ||
		    strchr(v, '@') == NULL || v[0] == '@' ||
		    v[strlen(v) - 1] == '@')
			return "not an address like postmaster@example.org";
		return NULL;
	case CONF_C_TEXT:
		if (strlen(v) > CONF_TEXT_MAX)
			return "longer than 100 bytes";
		return conf_value_chars_are_valid(v, false) ? NULL :
		    "must not contain control characters";
	default:
		fatalx("conf: bad text check %d", check);
	}
}

const char *
conf_value_problem(const struct conf_key *key, const char *v, bool *nonlocal,
    char *buf, size_t bufsz)
{
	struct cidr		 net;
	struct quota_limits	 limits;
	enum log_level		 level;
	uint64_t		 secs;

	if (*v == '\0' && key->check != CONF_C_LISTEN &&
	    key->check != CONF_C_ALLOW && key->check != CONF_C_CIDR)
		return key->empty_ok ? NULL : "must not be empty";
	switch (key->check) {
	case CONF_C_NAME:
		return conf_value_name_is_valid(v) ? NULL :
		    "not a host name (letters, digits, \".-_:\")";
	case CONF_C_SOCKET:
	case CONF_C_PATH:
	case CONF_C_WORD:
	case CONF_C_MAILBOX:
	case CONF_C_TEXT:
		return conf_value_text_problem(key->check, v);
	case CONF_C_DURATION:
		if (str_parse_duration(v, &secs) == -1)
			return "not a duration (like 30s, 5m, 1h or 5d)";
		if (secs == 0 || secs > CONF_DURATION_MAX)
			return "must be between 1s and 365d";
		return NULL;
	case CONF_C_CHOICE:
		return conf_value_choice(key->choices, v) != -1 ? NULL :
		    conf_value_choices_text(key->choices, buf, bufsz);
	case CONF_C_QUOTA:
		return quota_parse(v, &limits, buf, bufsz) == 0 ? NULL : buf;
	case CONF_C_URL:
		return conf_value_url_is_valid(v) ? NULL :
		    "not a URL like https://host/path (https only)";
	case CONF_C_LOG_LEVEL:
		return log_level_parse(v, &level) == 0 ? NULL :
		    "must be err, warn, notice, info or debug";
	case CONF_C_LISTEN:
		return conf_value_listen_is_valid(v, nonlocal) ? NULL :
		    "not a numeric address:port, [v6]:port or *:port";
	case CONF_C_ENDPOINT:
		return conf_value_listen_is_valid(v, nonlocal) && v[0] != '*' ?
		    NULL : "not a numeric address:port or [v6]:port";
	case CONF_C_ALLOW:
		if (cidr_parse(v, &net) == -1)
			return "not a network like 192.168.1.0/24 or fd00::/8";
		return net.prefix == 0 ? "would make an open relay" : NULL;
	case CONF_C_CIDR:
		return cidr_parse(v, &net) == -1 ? "not a network like "
		    "192.168.1.0/24 or fd00::/8" : NULL;
	case CONF_C_DOMAIN:
		return conf_value_domain_is_valid(v) ? NULL : "not a mail "
		    "domain (letters, digits and hyphens, dot-separated)";
	default:
		fatalx("conf: bad check %d for %s", key->check, key->name);
	}
}
