/*
 * check_conf.c - unit tests for conf.c: defaults, every option, every
 * class of bad value with its "file:line:", the listen/allow safety rule,
 * conf_split_hostport(), and the shipped example configuration.
 *
 * Each test writes its configuration into a fresh mkdtemp() directory.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "conf.h"
#include "util.h"

#ifndef TEST_SRCDIR
#error "TEST_SRCDIR must be the absolute path of the tests/ directory"
#endif

static char	tmpdir[64];
static char	conf_path[128];
static char	errbuf[4096];

static void
setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_conf.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(conf_path, sizeof(conf_path), "%s/smartrelay.conf", tmpdir);
}

static void
teardown(void)
{
	unlink(conf_path);
	rmdir(tmpdir);
}

static void
write_conf(const char *text)
{
	FILE	*fp = fopen(conf_path, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ne(fputs(text, fp), EOF);
	ck_assert_int_eq(fclose(fp), 0);
}

static struct conf *
load_ok(const char *text)
{
	struct conf	*c;

	write_conf(text);
	c = conf_load(conf_path, errbuf, sizeof(errbuf));
	ck_assert_msg(c != NULL, "conf_load failed: %s", errbuf);
	return c;
}

/* The load fails, and the first error starts with "path:line: " (or
 * "path: " when <line> is 0) and contains <what>. */
static void
load_fails(const char *text, int line, const char *what)
{
	char	prefix[256];

	write_conf(text);
	ck_assert_ptr_null(conf_load(conf_path, errbuf, sizeof(errbuf)));
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", conf_path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", conf_path);
	ck_assert_msg(strncmp(errbuf, prefix, strlen(prefix)) == 0,
	    "config <%s>: want prefix <%s>, got <%s>", text, prefix, errbuf);
	ck_assert_msg(strstr(errbuf, what) != NULL,
	    "config <%s>: want <%s> in <%s>", text, what, errbuf);
}

START_TEST(test_defaults)
{
	struct conf	*c = load_ok("");
	size_t		 i;

	ck_assert_str_eq(c->path, conf_path);
	ck_assert_ptr_nonnull(c->hostname);
	ck_assert_uint_gt(strlen(c->hostname), 0);
	for (i = 0; c->hostname[i] != '\0'; i++)
		ck_assert_msg(c->hostname[i] > ' ', "hostname <%s>",
		    c->hostname);
	ck_assert_uint_eq(c->nlisten, 2);
	ck_assert_str_eq(c->listen[0], "127.0.0.1:25");
	ck_assert_str_eq(c->listen[1], "[::1]:25");
	ck_assert_uint_eq(c->nallow, 2);
	ck_assert_int_eq(c->allow[0].family, AF_INET);
	ck_assert_uint_eq(c->allow[0].prefix, 8);
	ck_assert_uint_eq(c->allow[0].addr[0], 127);
	ck_assert_int_eq(c->allow[1].family, AF_INET6);
	ck_assert_uint_eq(c->allow[1].prefix, 128);
	ck_assert_uint_eq(c->allow[1].addr[15], 1);
	ck_assert_str_eq(c->spool, "/var/spool/smartrelay");
	ck_assert_str_eq(c->user, "smartrelay");
	ck_assert_str_eq(c->control_socket, "/run/smartrelay/control.sock");
	ck_assert_uint_eq(c->max_message_size, 26214400);
	ck_assert_uint_eq(c->max_recipients, 100);
	ck_assert_uint_eq(c->max_clients, 512);
	ck_assert_uint_eq(c->max_clients_per_ip, 32);
	ck_assert_int_eq(c->bare_lf, CONF_BARE_LF_NORMALIZE);
	ck_assert_uint_eq(c->command_timeout, 300);
	ck_assert_uint_eq(c->data_timeout, 600);
	ck_assert(!c->log_syslog);
	ck_assert_str_eq(c->log_level, "info");
	ck_assert_str_eq(c->upstream[0].host, "smtp.gmail.com");
	ck_assert_uint_eq(c->upstream[0].port, 587);
	ck_assert_int_eq(c->upstream[0].address_family, CONF_FAMILY_ANY);
	ck_assert_int_eq(c->upstream[0].tls, CONF_TLS_STARTTLS);
	ck_assert_str_eq(c->upstream[0].verify_name, "smtp.gmail.com");
	ck_assert_str_eq(c->upstream[0].ca_file, "");
	ck_assert_str_eq(c->upstream[0].username, "");
	ck_assert_str_eq(c->upstream[0].password_file, "/etc/smartrelay/password");
	ck_assert_uint_eq(c->upstream[0].connections, 2);
	ck_assert_uint_eq(c->queue.lifetime, 5 * 86400);
	ck_assert_uint_eq(c->queue.retry_min, 60);
	ck_assert_uint_eq(c->queue.retry_max, 3600);
	ck_assert_str_eq(c->queue.bounce_to, "");
	/* Local mail: the host name, and no admin without a username. */
	ck_assert_str_eq(c->domain, c->hostname);
	ck_assert_str_eq(c->admin_address, "");
	ck_assert_int_eq(c->admin_from, CONF_ADMIN_NONE);
	ck_assert_str_eq(c->aliases_path, "");
	ck_assert_ptr_null(c->aliases);
	ck_assert_str_eq(c->route.domain, c->domain);
	ck_assert_str_eq(c->route.admin, "");
	ck_assert_uint_eq(c->nper_ip_exempt, 2);
	ck_assert_uint_eq(c->per_ip_exempt[0].prefix, 8);
	ck_assert_uint_eq(c->per_ip_exempt[0].addr[0], 127);
	ck_assert_int_eq(c->per_ip_exempt[1].family, AF_INET6);
	ck_assert_uint_eq(c->per_ip_exempt[1].prefix, 128);
	conf_free(c);
}
END_TEST

/* Every option set away from its default, in every syntax libconfuse
 * offers: quoted, unquoted, single quotes, comments inside lists. */
static const char conf_full[] =
    "# full configuration\n"
    "hostname = relay.example.lan\n"
    "listen = {\n"
    "  \"192.168.1.2:2525\",   # the LAN\n"
    "  \"[::1]:0\",            // loopback, any port\n"
    "  \"*:587\"               /* every address */\n"
    "}\n"
    "allow = { \"192.168.1.0/24\", 'fd00::/8' }\n"
    "spool = \"/srv/spool/smart relay\"\n"
    "user = \"\"\n"
    "control_socket = /tmp/ctl.sock\n"
    "max_message_size = 1048576\n"
    "max_recipients = 010\n"
    "max_clients = 64\n"
    "max_clients_per_ip = 64\n"
    "bare_lf = reject\n"
    "command_timeout = 30s\n"
    "data_timeout = \"2m\"\n"
    "log = syslog\n"
    "log_level = debug\n"
    "upstream {\n"
    "  host = \"mx.example.org\"\n"
    "  port = 2465\n"
    "  address_family = ipv6\n"
    "  tls = implicit\n"
    "  verify_name = \"smtp.example.org\"\n"
    "  ca_file = \"/etc/ssl/ca#1.pem\"\n"
    "  username = \"me@example.org\"\n"
    "  password_file = \"/run/credentials/pw\"\n"
    "  connections = 64\n"
    "}\n"
    "queue {\n"
    "  lifetime = 2d\n"
    "  retry_min = 30s\n"
    "  retry_max = 2d\n"
    "  bounce_to = \"postmaster@example.org\"\n"
    "}\n";

START_TEST(test_all_options)
{
	struct conf	*c = load_ok(conf_full);

	ck_assert_str_eq(c->hostname, "relay.example.lan");
	ck_assert_uint_eq(c->nlisten, 3);
	ck_assert_str_eq(c->listen[0], "192.168.1.2:2525");
	ck_assert_str_eq(c->listen[1], "[::1]:0");
	ck_assert_str_eq(c->listen[2], "*:587");
	ck_assert_uint_eq(c->nallow, 2);
	ck_assert_int_eq(c->allow[0].family, AF_INET);
	ck_assert_uint_eq(c->allow[0].prefix, 24);
	ck_assert_uint_eq(c->allow[0].addr[2], 1);
	ck_assert_int_eq(c->allow[1].family, AF_INET6);
	ck_assert_uint_eq(c->allow[1].prefix, 8);
	ck_assert_uint_eq(c->allow[1].addr[0], 0xfd);
	ck_assert_str_eq(c->spool, "/srv/spool/smart relay");
	ck_assert_str_eq(c->user, "");
	ck_assert_str_eq(c->control_socket, "/tmp/ctl.sock");
	ck_assert_uint_eq(c->max_message_size, 1048576);
	ck_assert_uint_eq(c->max_recipients, 10);	/* decimal, not octal */
	ck_assert_uint_eq(c->max_clients, 64);
	ck_assert_uint_eq(c->max_clients_per_ip, 64);
	ck_assert_int_eq(c->bare_lf, CONF_BARE_LF_REJECT);
	ck_assert_uint_eq(c->command_timeout, 30);
	ck_assert_uint_eq(c->data_timeout, 120);
	ck_assert(c->log_syslog);
	ck_assert_str_eq(c->log_level, "debug");
	ck_assert_str_eq(c->upstream[0].host, "mx.example.org");
	ck_assert_uint_eq(c->upstream[0].port, 2465);
	ck_assert_int_eq(c->upstream[0].address_family, CONF_FAMILY_IPV6);
	ck_assert_int_eq(c->upstream[0].tls, CONF_TLS_IMPLICIT);
	ck_assert_str_eq(c->upstream[0].verify_name, "smtp.example.org");
	ck_assert_str_eq(c->upstream[0].ca_file, "/etc/ssl/ca#1.pem");
	ck_assert_str_eq(c->upstream[0].username, "me@example.org");
	ck_assert_str_eq(c->upstream[0].password_file, "/run/credentials/pw");
	ck_assert_uint_eq(c->upstream[0].connections, 64);
	ck_assert_uint_eq(c->queue.lifetime, 2 * 86400);
	ck_assert_uint_eq(c->queue.retry_min, 30);
	ck_assert_uint_eq(c->queue.retry_max, 2 * 86400);
	ck_assert_str_eq(c->queue.bounce_to, "postmaster@example.org");
	conf_free(c);
}
END_TEST

static const struct {
	const char	*value;
	uint64_t	 secs;
} duration_cases[] = {
	{ "30s",	30 },
	{ "5m",		300 },
	{ "1h",		3600 },
	{ "5d",		432000 },
	{ "90",		90 },
	{ "\"45\"",	45 },
	{ "1s",		1 },
	{ "365d",	365 * 86400 },
};

START_TEST(test_durations)
{
	char		 text[128];
	struct conf	*c;

	snprintf(text, sizeof(text), "command_timeout = %s\n"
	    "queue {\n  retry_min = %s\n  retry_max = 365d\n"
	    "  lifetime = 365d\n}\n", duration_cases[_i].value,
	    duration_cases[_i].value);
	c = load_ok(text);
	ck_assert_uint_eq(c->command_timeout, duration_cases[_i].secs);
	ck_assert_uint_eq(c->queue.retry_min, duration_cases[_i].secs);
	conf_free(c);
}
END_TEST

/* Each bad configuration, the line its error must name, and a piece of
 * the message. */
static const struct {
	const char	*text;
	int		 line;		/* 0: the error names no line */
	const char	*what;
} bad_cases[] = {
	/* integers: range, sign, type, base */
	{ "max_message_size = 0\n", 1,
	    "max_message_size = 0: must be between 1 and" },
	{ "\n\nmax_recipients = -1\n", 3, "max_recipients = -1" },
	{ "max_clients = 65536\n", 1, "max_clients = 65536" },
	{ "max_clients_per_ip = 0\n", 1, "max_clients_per_ip = 0" },
	{ "max_clients = many\n", 1, "\"many\": not a decimal integer" },
	{ "max_clients = 1.5\n", 1, "not a decimal integer" },
	{ "max_clients = 0x10\n", 1, "not a decimal integer" },
	{ "max_clients = \"\"\n", 1, "not a decimal integer" },
	{ "max_clients = 10\n\nmax_clients_per_ip = 11\n", 3,
	    "max_clients_per_ip (11) must not exceed max_clients (10)" },
	{ "\nmax_clients = 16\n", 2, "must not exceed max_clients (16)" },
	{ "upstream {\n  port = 0\n}\n", 2, "upstream.port = 0" },
	{ "upstream {\n  port = 65536\n}\n", 2, "upstream.port = 65536" },
	{ "upstream {\n  port = smtp\n}\n", 2, "not a decimal integer" },
	{ "upstream {\n  connections = 0\n}\n", 2, "upstream.connections" },
	{ "upstream {\n  connections = 65\n}\n", 2, "between 1 and 64" },
	/* durations */
	{ "command_timeout = 0\n", 1, "must be between 1s and 365d" },
	{ "command_timeout = 5x\n", 1, "\"5x\": not a duration" },
	{ "command_timeout = 5.5m\n", 1, "not a duration" },
	{ "data_timeout = \"\"\n", 1, "must not be empty" },
	{ "data_timeout = \"-1m\"\n", 1, "not a duration" },
	{ "data_timeout = 1m30s\n", 1, "not a duration" },
	{ "data_timeout = 366d\n", 1, "between 1s and 365d" },
	{ "queue {\n  lifetime = 0s\n}\n", 2, "queue.lifetime = \"0s\"" },
	{ "queue {\n  retry_min = 2h\n}\n", 2,
	    "queue.retry_min (2h) must not exceed queue.retry_max (1h)" },
	{ "queue {\n  lifetime = 1h\n  retry_max = 2h\n}\n", 3,
	    "queue.retry_max (2h) must not exceed queue.lifetime (1h)" },
	{ "queue {\n  lifetime = 30m\n}\n", 2,
	    "must not exceed queue.lifetime (30m)" },
	/* words from a fixed list */
	{ "bare_lf = strip\n", 1,
	    "bare_lf = \"strip\": must be \"normalize\" or \"reject\"" },
	{ "log = file\n", 1, "must be \"stderr\" or \"syslog\"" },
	{ "log_level = verbose\n", 1, "log_level = \"verbose\"" },
	{ "log_level = INFO\n", 1, "log_level = \"INFO\"" },
	{ "upstream {\n  tls = ssl\n}\n", 2, "upstream.tls = \"ssl\"" },
	{ "upstream {\n  address_family = inet6\n}\n", 2,
	    "upstream.address_family = \"inet6\": must be \"any\", \"ipv4\" "
	    "or \"ipv6\"" },
	/* strings */
	{ "hostname = \"\"\n", 1, "hostname = \"\": must not be empty" },
	{ "hostname = \"relay example\"\n", 1, "not a host name" },
	{ "hostname = \"relay\\r\\nX\"\n", 1, "relay\\x0d\\x0aX" },
	{ "spool = var/spool\n", 1, "must be an absolute path" },
	{ "spool = \"\"\n", 1, "spool = \"\": must not be empty" },
	{ "user = \"smart relay\"\n", 1, "user = \"smart relay\"" },
	{ "control_socket = \"/run/0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "456789/s\"\n",
	    1, "too long for a unix socket path" },
	{ "upstream {\n  host = \"\"\n}\n", 2, "upstream.host" },
	{ "upstream {\n  verify_name = \"a b\"\n}\n", 2,
	    "upstream.verify_name" },
	{ "upstream {\n  password_file = password\n}\n", 2,
	    "upstream.password_file = \"password\": must be an absolute path" },
	{ "upstream {\n  ca_file = certs.pem\n}\n", 2, "upstream.ca_file" },
	{ "upstream {\n  username = \"me @gmail.com\"\n}\n", 2,
	    "upstream.username" },
	{ "queue {\n  bounce_to = postmaster\n}\n", 2, "queue.bounce_to" },
	{ "queue {\n  bounce_to = \"<a@b>\"\n}\n", 2, "queue.bounce_to" },
	/* listen and allow */
	{ "listen = {\"127.0.0.1\"}\n", 1, "listen = \"127.0.0.1\"" },
	{ "listen = {\n  \"127.0.0.1:25\",\n  \"[::1]:99999\"\n}\n", 3,
	    "listen = \"[::1]:99999\"" },
	{ "listen = {\"localhost:25\"}\n", 1, "listen = \"localhost:25\"" },
	{ "listen = {}\n", 0, "listen: at least one address is required" },
	{ "listen = {\"0.0.0.0:25\"}\n", 1,
	    "listening on a non-loopback address requires an explicit "
	    "allow list" },
	{ "\nlisten = {\"127.0.0.1:25\",\n  \"*:2525\"}\n", 3,
	    "requires an explicit allow list" },
	{ "listen = {\"[::]:25\"}\n", 1, "requires an explicit allow list" },
	{ "listen = \"192.168.1.2:25\"\n", 1, "requires an explicit allow" },
	{ "allow = {\"0.0.0.0/0\"}\n", 1,
	    "allow = \"0.0.0.0/0\": would make an open relay" },
	{ "allow = {\"10.0.0.0/8\",\n  \"::/0\"}\n", 2, "open relay" },
	{ "allow = {\"10.0.0.0/33\"}\n", 1, "allow = \"10.0.0.0/33\"" },
	{ "allow = {\"lan\"}\n", 1, "not a network" },
	{ "allow = {}\n", 0, "allow: at least one network is required" },
	/* structure and types */
	{ "bogus = 1\n", 1, "'bogus'" },
	{ "upstream {\n  host = a.example\n  bogus = 1\n}\n", 3, "'bogus'" },
	{ "# a comment\nmailer {\n}\n", 2, "'mailer'" },
	{ "upstream {\n  auth = cram\n}\n", 2,
	    "upstream.auth = \"cram\": must be \"auto\", \"plain\", "
	    "\"login\" or \"xoauth2\"" },
	{ "upstream {\n  oauth_token_url = \"http://a/token\"\n}\n", 2,
	    "upstream.oauth_token_url" },
	{ "upstream {\n}\nupstream {\n  port = 0\n}\n", 4,
	    "upstream.port = 0" },
	{ "queue {\n}\n\nqueue {\n}\n", 5, "second 'queue' section" },
	{ "hostname = {\"a\", \"b\"}\n", 1, "unexpected token" },
	{ "upstream = smtp.gmail.com\n", 1, "'upstream'" },
	{ "max_clients 5\n", 1, "max_clients" },
	{ "spool = '/var/spool\n", 2, "unterminated" },
	/* comments never shift line numbers (libconfuse 3.3 does) */
	{ "# one\n# two\n// three\n/* four\n   five */\nmax_clients = 0\n", 6,
	    "max_clients = 0" },
	{ "listen = {\n  \"127.0.0.1:25\", # loopback\n  \"[::1]:0x\"\n}\n", 3,
	    "listen = \"[::1]:0x\"" },
	{ "/* never closed\nmax_clients = 5\n", 1, "unterminated" },
	/* issue 7: networks, clients table, LAN TLS and AUTH, from */
	{ "network \"lan\" {\n}\n", 2, "network \"lan\": not a network" },
	{ "network \"10.0.0.0/8\" {\n  auth = maybe\n}\n", 2,
	    "network.auth = \"maybe\"" },
	{ "network \"10.0.0.0/8\" {\n}\nnetwork \"10.0.0.0/8\" {\n}\n", 3,
	    "10.0.0.0/8" },
	{ "clients {\n  \"10.0.0.1/32\" = \"A\"\n  \"nas\" = \"B\"\n}\n", 3,
	    "clients: \"nas\" is not a network" },
	{ "clients {\n  \"10.0.0.1/32\" \"A\"\n}\n", 2, "expected '='" },
	{ "clients {\n  \"10.0.0.1/32\" = \"A\"\n", 3, "missing '}'" },
	{ "clients = {\"a\"}\n", 1, "expected '{'" },
	{ "clients {\n  \"10.0.0.1/32\" = \"\"\n}\n", 2, "is empty" },
	{ "network \"10.0.0.1/32\" {\n  name = \"A\"\n}\n"
	    "clients {\n  \"10.0.0.1/32\" = \"B\"\n}\n", 5,
	    "already named \"A\"" },
	{ "from {\n  rewrite = always\n}\n", 2, "from.rewrite" },
	{ "from {\n  suffix = \"a\\tb\"\n}\n", 2, "from.suffix" },
	{ "tls {\n  cert_file = \"/c.pem\"\n}\n", 3,
	    "cert_file and key_file must be set together" },
	{ "tls {\n  min_version = \"1.4\"\n}\n", 2, "tls.min_version" },
	{ "listen_tls = {\"127.0.0.1:465\"}\n", 1,
	    "listen_tls needs tls.cert_file" },
	{ "tls {\n  cert_file = \"/c\"\n  key_file = \"/k\"\n}\n"
	    "listen_tls = {\"0.0.0.0:465\"}\n", 5,
	    "requires an explicit allow list" },
	{ "upstream {\n  quota = lots\n}\n", 2, "upstream.quota = \"lots\"" },
	{ "upstream {\n  name = a\n}\nupstream {\n  name = a\n}\n", 6,
	    "two upstream sections are named a" },
	{ "hostname = clients.example\nclients\n", 3, "premature end of file" },
	{ "upstream {\n  quota = \"10/0\"\n}\n", 2, "upstream.quota" },
	{ "from {\n  rewrite = account\n}\n", 2,
	    "needs an address: set upstream.username" },
	{ "auth {\n  plaintext = {\"192.168.1.1:25\"}\n}\n", 2,
	    "must be a loopback address" },
	{ "auth {\n  plaintext = {\"127.0.0.1:587\"}\n}\n", 2,
	    "not one of the listen addresses" },
	/* local mail */
	{ "domain = \"lan_example\"\n", 1, "domain = \"lan_example\": not a "
	    "mail domain" },
	{ "domain = \"lan.example.\"\n", 1, "not a mail domain" },
	{ "domain = \"[192.0.2.1]\"\n", 1, "not a mail domain" },
	{ "admin_address = \"you\"\n", 1, "admin_address = \"you\": not an "
	    "address" },
	{ "\nadmin_address = \"a b@x.example\"\n", 2, "admin_address" },
	{ "admin_address = \"a@x_y.example\"\n", 1, "admin_address = "
	    "\"a@x_y.example\": not an address like you@example.org" },
	{ "domain = lan.example\nadmin_address = \"root@LAN.example\"\n", 2,
	    "a local address (its domain is this host's)" },
	{ "admin_address = \"root@localhost\"\n", 1, "a local address" },
	{ "aliases = \"etc/aliases\"\n", 1, "must be an absolute path" },
	{ "max_clients_per_ip_exempt = {\"10.0.0.1/8\"}\n", 1,
	    "max_clients_per_ip_exempt = \"10.0.0.1/8\": not a network" },
	{ "max_clients_per_ip_exempt = {\"\"}\n", 1, "not a network" },
};

/* The local-mail keys, the admin from the username, and the aliases
 * file: loaded, and refused with its own file:line. */
START_TEST(test_local_mail)
{
	struct conf	*c;
	char		 aliases[192], text[512], want[256];
	FILE		*fp;

	c = load_ok("upstream { username = \"me@gmail.example\" }\n"
	    "max_clients_per_ip_exempt = {\"0.0.0.0/0\", \"fd00::/8\"}\n");
	ck_assert_str_eq(c->admin_address, "me@gmail.example");
	ck_assert_int_eq(c->admin_from, CONF_ADMIN_USERNAME);
	ck_assert_str_eq(c->route.admin, "me@gmail.example");
	ck_assert_uint_eq(c->nper_ip_exempt, 2);
	ck_assert_uint_eq(c->per_ip_exempt[0].prefix, 0);
	conf_free(c);
	/* A username that is no address, or a local one, is no admin. */
	c = load_ok("upstream { username = \"me\" }\n"
	    "max_clients_per_ip_exempt = {}\n");
	ck_assert_int_eq(c->admin_from, CONF_ADMIN_NONE);
	ck_assert_uint_eq(c->nper_ip_exempt, 0);
	conf_free(c);
	c = load_ok("hostname = relay.test\n"
	    "upstream { username = \"me@relay.test\" }\n");
	ck_assert_int_eq(c->admin_from, CONF_ADMIN_NONE);
	conf_free(c);

	snprintf(aliases, sizeof(aliases), "%s/aliases", tmpdir);
	ck_assert_ptr_nonnull(fp = fopen(aliases, "w"));
	fputs("# test\nroot: ops@x.test,\n\tdev@x.test\npostmaster: root\n",
	    fp);
	ck_assert_int_eq(fclose(fp), 0);
	snprintf(text, sizeof(text), "hostname = relay.test\n"
	    "domain = LAN.example\nadmin_address = \"you@gmail.example\"\n"
	    "aliases = \"%s\"\nupstream { username = \"me@gmail.example\" }\n",
	    aliases);
	c = load_ok(text);
	ck_assert_str_eq(c->domain, "LAN.example");
	ck_assert_str_eq(c->admin_address, "you@gmail.example");
	ck_assert_int_eq(c->admin_from, CONF_ADMIN_SET);
	ck_assert_str_eq(c->aliases_path, aliases);
	ck_assert_ptr_nonnull(c->aliases);
	ck_assert_ptr_eq(c->route.aliases, c->aliases);
	ck_assert_str_eq(c->route.hostname, "relay.test");
	conf_free(c);

	/* A bad aliases file: its own path and line come first. */
	ck_assert_ptr_nonnull(fp = fopen(aliases, "w"));
	fputs("root: ops@x.test\n\nops: :include:/etc/ops\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	write_conf(text);
	ck_assert_ptr_null(conf_load(conf_path, errbuf, sizeof(errbuf)));
	snprintf(want, sizeof(want), "%s:3: ops: \":include:/etc/ops\": "
	    ":include: files are not supported", aliases);
	ck_assert_msg(strncmp(errbuf, want, strlen(want)) == 0, "<%s>",
	    errbuf);
	/* Nested too deep: refused at load, blamed on the aliases line. */
	ck_assert_ptr_nonnull(fp = fopen(aliases, "w"));
	fputs("a0: a1\na1: a2\na2: a3\na3: a4\na4: a5\na5: a6\na6: a7\n"
	    "a7: a8\na8: a9\na9: a10\na10: a11\na11: x@y.example\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	snprintf(want, sizeof(want), "aliases = \"%s\": a0: aliases nested "
	    "more than 10 deep", aliases);
	load_fails(text, 4, want);
	unlink(aliases);
	snprintf(want, sizeof(want), "%s: cannot open: ", aliases);
	write_conf(text);
	ck_assert_ptr_null(conf_load(conf_path, errbuf, sizeof(errbuf)));
	ck_assert_msg(strncmp(errbuf, want, strlen(want)) == 0, "<%s>",
	    errbuf);
}
END_TEST

/* Every issue-7 option, and networks picked most specific first. */
START_TEST(test_issue7_options)
{
	struct conf			*c;
	const struct conf_network	*n;
	struct sockaddr_in		 sin;

	c = load_ok("listen = {\"127.0.0.1:2525\"}\n"
	    "listen_tls = {\"127.0.0.1:4650\"}\n"
	    "# clients { \"1.2.3.4\" = \"in a comment\" }\n"
	    "clients {\n"
	    "\t\"127.0.0.1/32\" = \"Office \\\"printer\\\"\"\n"
	    "\t\"10.0.0.0/8\" = \"Cameras\"\n\t\"192.168.1.0/24\" = \"LAN\"\n"
	    "}\n"
	    "network \"192.168.1.0/24\" { auth = \"required\" "
	    "bare_lf = \"reject\" }\n"
	    "network \"10.1.0.0/16\" { name = \"Ten\" }\n"
	    "from { rewrite = \"account\" }\n"
	    "tls { cert_file = \"/c.pem\" key_file = \"/k.pem\" "
	    "min_version = \"1.0\" }\n"
	    "auth { users_file = \"/u\" plaintext = {\"127.0.0.1:2525\"} }\n"
	    "upstream { host = \"a.example\" tls = implicit\n"
	    "  username = \"me@a.example\" }\n"
	    "upstream { host = \"b.example\" auth = xoauth2 quota = gmail\n"
	    "  failover_on_reject = true name = \"backup\"\n"
	    "  from_address = \"alias@b.example\" }\n");
	ck_assert_uint_eq(c->nupstream, 2);
	ck_assert_str_eq(c->upstream[0].name, "a.example:465");
	ck_assert_int_eq(c->upstream[0].auth, CONF_AUTH_AUTO);
	ck_assert(!c->upstream[0].failover_on_reject);
	ck_assert_str_eq(c->upstream[0].quota, "none");
	ck_assert_str_eq(c->upstream[0].oauth_token_url,
	    "https://oauth2.googleapis.com/token");
	ck_assert_str_eq(c->upstream[1].name, "backup");
	ck_assert_int_eq(c->upstream[1].auth, CONF_AUTH_XOAUTH2);
	ck_assert_str_eq(c->upstream[1].quota, "gmail");
	ck_assert(c->upstream[1].failover_on_reject);
	ck_assert_str_eq(c->upstream[1].from_address, "alias@b.example");
	ck_assert_int_eq(c->from_rewrite, CONF_FROM_ACCOUNT);
	ck_assert_str_eq(c->from_suffix, " via smartrelay");
	ck_assert_uint_eq(c->nlisten_tls, 1);
	ck_assert_str_eq(c->server_tls.key_file, "/k.pem");
	ck_assert_int_eq(c->server_tls.min_version, 10);
	ck_assert_str_eq(c->client_auth.users_file, "/u");
	ck_assert_uint_eq(c->client_auth.nplaintext, 1);
	ck_assert_uint_eq(c->nnetworks, 4);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0xc0a80114);	/* 192.168.1.20 */
	n = conf_network_find(c, (struct sockaddr *)&sin);
	ck_assert_ptr_nonnull(n);
	ck_assert_str_eq(n->name, "LAN");
	ck_assert_int_eq(n->auth, CONF_NET_AUTH_REQUIRED);
	ck_assert_int_eq(n->bare_lf, CONF_BARE_LF_REJECT);
	sin.sin_addr.s_addr = htonl(0x0a010203);	/* 10.1.2.3 */
	n = conf_network_find(c, (struct sockaddr *)&sin);
	ck_assert_str_eq(n->name, "Ten");
	ck_assert_int_eq(n->bare_lf, CONF_BARE_LF_NORMALIZE);
	sin.sin_addr.s_addr = htonl(0x0a020203);	/* 10.2.2.3 */
	ck_assert_str_eq(conf_network_find(c, (struct sockaddr *)&sin)->name,
	    "Cameras");
	sin.sin_addr.s_addr = htonl(0x7f000001);
	ck_assert_str_eq(conf_network_find(c, (struct sockaddr *)&sin)->name,
	    "Office \"printer\"");
	sin.sin_addr.s_addr = htonl(0x08080808);
	ck_assert_ptr_null(conf_network_find(c, (struct sockaddr *)&sin));
	conf_free(c);
}
END_TEST

/* A name from the clients table keeps the policy of the section around
 * it; values that merely contain the word "clients" are values; two
 * unnamed sections for one server get told apart. */
START_TEST(test_clients_and_names)
{
	struct conf			*c;
	const struct conf_network	*n;
	struct sockaddr_in		 sin;

	c = load_ok("spool = /srv/clients\n"
	    "hostname = clients.example\n"
	    "network \"127.0.0.0/29\" { auth = required bare_lf = reject }\n"
	    "clients {\n\t\"127.0.0.3/32\" = \"Printer\"\n}\n"
	    "upstream { username = \"a@x.example\" }\n"
	    "upstream { username = \"b@x.example\" }\n");
	ck_assert_str_eq(c->spool, "/srv/clients");
	ck_assert_str_eq(c->hostname, "clients.example");
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(0x7f000003);
	n = conf_network_find(c, (struct sockaddr *)&sin);
	ck_assert_str_eq(n->name, "Printer");
	ck_assert_int_eq(n->auth, CONF_NET_AUTH_REQUIRED);
	ck_assert_int_eq(n->bare_lf, CONF_BARE_LF_REJECT);
	ck_assert_str_eq(c->upstream[0].name, "smtp.gmail.com:587");
	ck_assert_str_eq(c->upstream[1].name, "smtp.gmail.com:587#2");
	conf_free(c);
}
END_TEST

START_TEST(test_bad_values)
{
	load_fails(bad_cases[_i].text, bad_cases[_i].line, bad_cases[_i].what);
}
END_TEST

/* Broken cross-option rules are all reported, one per line. */
START_TEST(test_several_errors)
{
	load_fails("max_clients = 16\nqueue {\n  retry_min = 2h\n}\n", 1,
	    "max_clients_per_ip");
	ck_assert_ptr_nonnull(strchr(errbuf, '\n'));
	ck_assert_ptr_nonnull(strstr(strchr(errbuf, '\n') + 1, ":3: queue"));
}
END_TEST

START_TEST(test_missing_file)
{
	char	want[256];

	ck_assert_ptr_null(conf_load(conf_path, errbuf, sizeof(errbuf)));
	snprintf(want, sizeof(want), "%s: cannot open: %s", conf_path,
	    strerror(ENOENT));
	ck_assert_str_eq(errbuf, want);
	ck_assert_ptr_null(conf_load(tmpdir, errbuf, sizeof(errbuf)));
	snprintf(want, sizeof(want), "%s: cannot open: %s", tmpdir,
	    strerror(EISDIR));
	ck_assert_str_eq(errbuf, want);
}
END_TEST

/* The message is cut to fit and always NUL-terminated. */
START_TEST(test_small_errbuf)
{
	char	small[16];

	write_conf("bogus = 1\n");
	memset(small, 'x', sizeof(small));
	ck_assert_ptr_null(conf_load(conf_path, small, sizeof(small)));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
	ck_assert_int_eq(strncmp(small, conf_path, sizeof(small) - 1), 0);
	ck_assert_ptr_null(conf_load(conf_path, NULL, 0));
	conf_free(NULL);
}
END_TEST

/* libconfuse quotes the file's own tokens in its messages: what they
 * hold is escaped, so that each error stays one "file:line:" line. */
START_TEST(test_error_one_line)
{
	load_fails("\n\"bad\nname\" = 1\n", 3,
	    "no such option 'bad\\x0aname'");
	ck_assert_ptr_null(strchr(errbuf, '\n'));
	load_fails("\"\x1b[2J\" = 1\n", 1, "no such option '\\x1b[2J'");
}
END_TEST

/* libconfuse reads "section|option" as a path into the section: such a
 * line is refused with its number, and is no internal error (which
 * ended the daemon on a SIGHUP reload). */
static const struct {
	const char	*text;
	const char	*what;
} path_cases[] = {
	{ "queue|lifetime = 1d\n",		"\"lifetime\"" },
	{ "from|rewrite = keep\n",		"\"rewrite\"" },
	{ "tls|min_version = \"1.3\"\n",	"\"min_version\"" },
	{ "auth|plaintext = {\"127.0.0.1:25\"}\n", "\"plaintext\"" },
	{ "metrics|listen = \"*:9100\"\n",	"\"listen\"" },
	{ "\nupstream|port = 25\n",		"'upstream'" },
};

START_TEST(test_section_path)
{
	char	text[128];

	snprintf(text, sizeof(text), "hostname = relay.example\n%s",
	    path_cases[_i].text);
	load_fails(text, path_cases[_i].text[0] == '\n' ? 3 : 2,
	    path_cases[_i].what);
}
END_TEST

START_TEST(test_upstream_port)
{
	struct conf	*c;

	c = load_ok("upstream {\n  tls = implicit\n}\n");
	ck_assert_uint_eq(c->upstream[0].port, 465);
	conf_free(c);
	/* Set in the file, even to the default value: kept. */
	c = load_ok("upstream {\n  tls = implicit\n  port = 587\n}\n");
	ck_assert_uint_eq(c->upstream[0].port, 587);
	conf_free(c);
	c = load_ok("upstream {\n  tls = starttls\n}\n");
	ck_assert_uint_eq(c->upstream[0].port, 587);
	conf_free(c);
	c = load_ok("upstream {\n  port = 25\n}\n");
	ck_assert_uint_eq(c->upstream[0].port, 25);
	ck_assert_int_eq(c->upstream[0].tls, CONF_TLS_STARTTLS);
	conf_free(c);
}
END_TEST

START_TEST(test_verify_name)
{
	struct conf	*c;

	c = load_ok("upstream {\n  host = smtp.example.org\n}\n");
	ck_assert_str_eq(c->upstream[0].verify_name, "smtp.example.org");
	conf_free(c);
	c = load_ok("upstream {\n  host = 192.0.2.7\n"
	    "  verify_name = \"\"\n}\n");
	ck_assert_str_eq(c->upstream[0].verify_name, "192.0.2.7");
	conf_free(c);
	c = load_ok("upstream {\n  host = 192.0.2.7\n"
	    "  verify_name = mx.example.org\n}\n");
	ck_assert_str_eq(c->upstream[0].verify_name, "mx.example.org");
	conf_free(c);
}
END_TEST

/* Loopback-only listeners need no allow list; others need one. */
START_TEST(test_listen_allow)
{
	struct conf	*c;

	c = load_ok("listen = {\"127.0.0.2:25\", \"[::1]:0\"}\n");
	ck_assert_uint_eq(c->nlisten, 2);
	ck_assert_uint_eq(c->nallow, 2);
	conf_free(c);
	c = load_ok("listen = {\"*:25\"}\nallow = {\"10.0.0.0/8\"}\n");
	ck_assert_uint_eq(c->nallow, 1);
	conf_free(c);
	/* Appending to the default allow list is setting it explicitly. */
	c = load_ok("allow += \"192.168.0.0/16\"\nlisten = \"[::]:25\"\n");
	ck_assert_uint_eq(c->nallow, 3);
	conf_free(c);
	/* A later list replaces an earlier, non-loopback one. */
	c = load_ok("listen = \"*:25\"\nlisten = \"127.0.0.1:25\"\n");
	ck_assert_uint_eq(c->nlisten, 1);
	conf_free(c);
}
END_TEST

/* The shipped example parses and matches the README quick start. */
START_TEST(test_example_config)
{
	struct conf	*c;

	c = conf_load(TEST_SRCDIR "/../etc/smartrelay.conf", errbuf,
	    sizeof(errbuf));
	ck_assert_msg(c != NULL, "%s", errbuf);
	ck_assert_uint_eq(c->nlisten, 2);
	ck_assert_str_eq(c->listen[0], "127.0.0.1:25");
	ck_assert_str_eq(c->listen[1], "[::1]:25");
	ck_assert_str_eq(c->spool, "/var/spool/smartrelay");
	ck_assert_str_eq(c->user, "smartrelay");
	ck_assert_str_eq(c->upstream[0].host, "smtp.gmail.com");
	ck_assert_str_eq(c->upstream[0].password_file, "/etc/smartrelay/password");
	ck_assert_str_eq(c->upstream[0].username, "");
	ck_assert_uint_eq(c->upstream[0].port, 587);
	ck_assert_int_eq(c->upstream[0].tls, CONF_TLS_STARTTLS);
	conf_free(c);
}
END_TEST

static const struct {
	const char	*s;
	int		 want;
	const char	*host;
	uint16_t	 port;
} hostport_cases[] = {
	{ "127.0.0.1:25",		0,	"127.0.0.1",	25 },
	{ "[::1]:25",			0,	"::1",		25 },
	{ "*:25",			0,	"",		25 },
	{ "*:0",			0,	"",		0 },
	{ "0.0.0.0:65535",		0,	"0.0.0.0",	65535 },
	{ "[fe80::1%eth0]:2525",	0,	"fe80::1%eth0",	2525 },
	{ "relay.example.lan:587",	0,	"relay.example.lan", 587 },
	{ "127.0.0.1:0025",		0,	"127.0.0.1",	25 },
	{ "[::1]",			-1,	NULL,		0 },
	{ "1.2.3.4",			-1,	NULL,		0 },
	{ ":25",			-1,	NULL,		0 },
	{ "[::1]:99999",		-1,	NULL,		0 },
	{ "host:port:extra",		-1,	NULL,		0 },
	{ "host:25:1",			-1,	NULL,		0 },
	{ "::1:25",			-1,	NULL,		0 },
	{ "[]:25",			-1,	NULL,		0 },
	{ "[::1]25",			-1,	NULL,		0 },
	{ "[::1:25",			-1,	NULL,		0 },
	{ "127.0.0.1:",			-1,	NULL,		0 },
	{ "127.0.0.1:65536",		-1,	NULL,		0 },
	{ "127.0.0.1:123456",		-1,	NULL,		0 },
	{ "127.0.0.1:-1",		-1,	NULL,		0 },
	{ "127.0.0.1:+25",		-1,	NULL,		0 },
	{ "127.0.0.1: 25",		-1,	NULL,		0 },
	{ "127.0.0.1:25 ",		-1,	NULL,		0 },
	{ "[::1]:25x",			-1,	NULL,		0 },
	{ "**:25",			-1,	NULL,		0 },
	{ "[*]:25",			-1,	NULL,		0 },
	{ "a b:25",			-1,	NULL,		0 },
	{ "",				-1,	NULL,		0 },
};

START_TEST(test_split_hostport)
{
	char		host[64];
	uint16_t	port = 1234;
	int		rc;

	rc = conf_split_hostport(hostport_cases[_i].s, host, sizeof(host),
	    &port);
	ck_assert_msg(rc == hostport_cases[_i].want, "<%s>: got %d",
	    hostport_cases[_i].s, rc);
	if (rc == 0) {
		ck_assert_str_eq(host, hostport_cases[_i].host);
		ck_assert_uint_eq(port, hostport_cases[_i].port);
	}
}
END_TEST

START_TEST(test_split_hostport_small)
{
	char		host[9];
	uint16_t	port;

	ck_assert_int_eq(conf_split_hostport("127.0.0.1:25", host,
	    sizeof(host), &port), -1);
	ck_assert_int_eq(conf_split_hostport("10.0.0.1:25", host,
	    sizeof(host), &port), 0);
	ck_assert_str_eq(host, "10.0.0.1");
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite	*s = suite_create("conf");
	TCase	*tc;

	tc = tcase_create("defaults");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	suite_add_tcase(s, tc);

	tc = tcase_create("all_options");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_all_options);
	suite_add_tcase(s, tc);

	tc = tcase_create("issue7_options");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_issue7_options);
	tcase_add_test(tc, test_local_mail);
	tcase_add_test(tc, test_clients_and_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("durations");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_durations, 0, nitems(duration_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("bad_values");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_bad_values, 0, nitems(bad_cases));
	tcase_add_test(tc, test_several_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("load_errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_small_errbuf);
	tcase_add_test(tc, test_error_one_line);
	tcase_add_loop_test(tc, test_section_path, 0, nitems(path_cases));
	suite_add_tcase(s, tc);

	tc = tcase_create("upstream");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_upstream_port);
	tcase_add_test(tc, test_verify_name);
	suite_add_tcase(s, tc);

	tc = tcase_create("listen_allow");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_listen_allow);
	suite_add_tcase(s, tc);

	tc = tcase_create("example");
	tcase_add_test(tc, test_example_config);
	suite_add_tcase(s, tc);

	tc = tcase_create("split_hostport");
	tcase_add_loop_test(tc, test_split_hostport, 0,
	    nitems(hostport_cases));
	tcase_add_test(tc, test_split_hostport_small);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner	*sr = srunner_create(conf_suite());
	int	 failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
