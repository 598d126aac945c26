/*
 * sendmail.c - smartrelay-sendmail, the /usr/sbin/sendmail of a host
 * that relays through smartrelayd: the command line, and main().
 *
 * Reads a message (stdin, or SMTP on stdin/stdout with -bs:
 * sendmail_smtp.h) and leaves it in the spool's maildrop directory
 * (sendmail_msg.h, maildrop.h), synced, for the daemon to pick up now or
 * when it next starts.  Exit 0 means the message is on stable storage;
 * anything else means it was not accepted.
 *
 * Not set-uid or set-gid, ever: it runs with its caller's rights, and the
 * maildrop's modes are what keep users apart.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "route.h"
#include "sendmail_msg.h"
#include "sendmail_smtp.h"
#include "smtp.h"
#include "util.h"

#define SENDMAIL_OPTS		"+:A:B:C:F:GIL:N:O:R:UV:X:" \
				"b:ce:f:h:imno:p:r:q:tvx"

/* The default mode: one message from stdin. */
static int
sendmail_enqueue(const struct sendmail *sm, char **args, int nargs)
{
	struct sendmail_msg	 m;
	char			 line[SENDMAIL_LINE_BUF];
	size_t			 len;
	bool			 more;
	int			 i, rc;

	sendmail_msg_init(&m, sm);
	sendmail_msg_sender(&m);
	for (i = 0; i < nargs && m.status == 0; i++)
		sendmail_msg_add_rcpts(&m, args[i], strlen(args[i]));
	if (m.status == 0 && !sm->extract && m.nrcpt == 0)
		sendmail_msg_fail(&m, EX_USAGE, "no recipients given");
	/* Stop at the first error: no need to read what will be refused. */
	while (m.status == 0 && sendmail_msg_read(line, sizeof(line), &len,
	    &more)) {
		if (sm->dot_ends && !m.midline &&
		    sendmail_msg_is_dot(line, len))
			break;
		sendmail_msg_line(&m, line, len, more);
	}
	if (m.status == 0 && ferror(stdin))
		sendmail_msg_fail(&m, EX_IOERR, "reading the message: %s",
		    strerror(errno));
	if ((rc = sendmail_msg_finish(&m)) != 0)
		sendmail_error(rc, "%s", m.errmsg);
	sendmail_msg_cleanup(&m);
	return rc;
}

/*
 * The other modes, options and main().
 */

/* -bp and -q: smartrelayctl, from the directory this program is in (so
 * a build tree runs its own), else from $PATH. */
static int
sendmail_exec_ctl(const struct sendmail *sm, const char *cmd,
    const char *arg)
{
	char		 self[PATH_MAX], path[PATH_MAX + 32], *slash;
	char		 name[] = "smartrelayctl";
	char		*argv[4];
	ssize_t		 n;

	argv[0] = name;
	argv[1] = (char *)cmd;
	argv[2] = (char *)arg;
	argv[3] = NULL;
	if (sm->conf_path != NULL &&
	    setenv("SMARTRELAY_CONFIG", sm->conf_path, 1) == -1)
		return sendmail_error(EX_OSERR, "setenv: %s", strerror(errno));
	fflush(NULL);
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			snprintf(path, sizeof(path), "%s/%s", self, name);
			execv(path, argv);
		}
	}
	execvp(name, argv);
	return sendmail_error(EX_UNAVAILABLE, "cannot run %s: %s", name,
	    strerror(errno));
}

/* One line of -bv: where mail to <addr> goes (route.h). */
static void
sendmail_verify_one(const struct sendmail *sm, const char *addr)
{
	const struct conf	*conf = sm->conf;
	struct route_result	 res;
	char			 err[256], list[1024];

	if (route_rcpt(&conf->route, addr, &res, err, sizeof(err)) == -1)
		printf("%s... undeliverable: %s\n", addr, err);
	else if (res.how == ROUTE_REMOTE)
		printf("%s... deliverable: relayed to %s\n", addr,
		    conf->upstream[0].host);
	else if (res.how == ROUTE_KEPT)
		printf("%s... deliverable: a local name, relayed to %s as it "
		    "is (no alias, no admin_address)\n", addr,
		    conf->upstream[0].host);
	else
		printf("%s... deliverable: a local name, relayed to %s for %s "
		    "(%s)\n", addr, conf->upstream[0].host,
		    route_result_fmt(&res, list, sizeof(list)),
		    res.how == ROUTE_ALIAS ? "aliases" :
		    conf->admin_from == CONF_ADMIN_SET ? "admin_address" :
		    "admin: the upstream username");
	route_result_cleanup(&res);
}

/* -bv: says what would happen to each address. */
static int
sendmail_verify(const struct sendmail *sm, char **args, int nargs)
{
	struct sendmail_msg	 m;
	size_t			 i;
	int			 j, rc;

	sendmail_msg_init(&m, sm);
	for (j = 0; j < nargs && m.status == 0; j++)
		sendmail_msg_add_rcpts(&m, args[j], strlen(args[j]));
	if (m.status == 0 && m.nrcpt == 0)
		sendmail_msg_fail(&m, EX_USAGE, "no recipients given");
	for (i = 0; i < m.nrcpt && m.status == 0; i++)
		sendmail_verify_one(sm, m.rcpts[i]);
	if ((rc = m.status) != 0)
		sendmail_error(rc, "%s", m.errmsg);
	sendmail_msg_cleanup(&m);
	return rc;
}

static int
sendmail_usage(void)
{
	fprintf(stderr, "usage: " SENDMAIL_NAME " [-i] [-t] [-f sender] "
	    "[-F name] [-C config] [recipient ...]\n"
	    "       " SENDMAIL_NAME " -bs | -bp | -q | -bv recipient ...\n");
	return EX_USAGE;
}

/* -b<mode>, as Postfix takes them. */
static int
sendmail_opt_b(struct sendmail *sm, const char *arg)
{
	switch (arg[0]) {
	case 'm':
		sm->mode = SENDMAIL_ENQUEUE;
		return 0;
	case 's':
		sm->mode = SENDMAIL_SMTP;
		return 0;
	case 'p':
		sm->mode = SENDMAIL_MAILQ;
		return 0;
	case 'i':
		sm->mode = SENDMAIL_NEWALIASES;
		return 0;
	case 'v':
		sm->mode = SENDMAIL_VERIFY;
		return 0;
	case 'h':
	case 'H':
		sm->mode = SENDMAIL_IGNORE;
		return 0;
	case 'd':
		return sendmail_error(EX_USAGE, "-bd: not a daemon: run "
		    "smartrelayd");
	default:
		return sendmail_error(EX_USAGE, "unsupported: -b%s", arg);
	}
}

/* -q (flush the queue), -qIid (flush one message), -q30m (a queue run
 * interval: the daemon has its own schedule). */
static int
sendmail_opt_q(struct sendmail *sm, const char *arg)
{
	if (arg == NULL)
		sm->mode = SENDMAIL_FLUSH;
	else if (arg[0] >= '0' && arg[0] <= '9')
		sm->mode = SENDMAIL_IGNORE;
	else if (arg[0] == 'I' && arg[1] != '\0') {
		sm->mode = SENDMAIL_FLUSH;
		sm->flush_id = arg + 1;
	} else
		return sendmail_error(EX_USAGE, "unsupported: -q%s", arg);
	return 0;
}

/* One option from getopt().  Returns 0 or an EX_* code. */
static int
sendmail_opt(struct sendmail *sm, int ch, const char *arg)
{
	switch (ch) {
	case 'B':
		if (strcmp(arg, "8BITMIME") != 0 && strcmp(arg, "7BIT") != 0)
			return sendmail_error(EX_USAGE, "-B needs 8BITMIME or "
			    "7BIT");
		return 0;
	case 'C':
		sm->conf_path = arg;
		return 0;
	case 'F':
		sm->fullname = arg;
		return 0;
	case 'I':
		sm->mode = SENDMAIL_NEWALIASES;
		return 0;
	case 'b':
		return sendmail_opt_b(sm, arg);
	case 'f':
	case 'r':
		sm->sender = arg;
		return 0;
	case 'i':
		sm->dot_ends = false;
		return 0;
	case 'n':
		return sendmail_error(EX_USAGE, "-n is not supported");
	case 'o':
		if (arg[0] == 'i')
			sm->dot_ends = false;
		return 0;
	case 'q':
		return sendmail_opt_q(sm, arg);
	case 't':
		sm->extract = true;
		return 0;
	case ':':
		return sendmail_error(EX_USAGE, "option -%c needs a value",
		    optopt);
	case '?':
		sendmail_error(EX_USAGE, "unknown option -%c", optopt);
		return sendmail_usage();
	default:		/* accepted and ignored */
		return 0;
	}
}

/*
 * Sendmail's options, as Postfix reads them: getopt() up to the first
 * recipient or "--", with a bare "-q" taken apart first (getopt() would
 * want a value for it).  Options with no meaning here are accepted and
 * ignored: -A -G -L -N -O -R -U -V -X -c -e -h -m -p -v -x, and -o
 * except -oi.
 */
static int
sendmail_parse_args(struct sendmail *sm, int argc, char *argv[])
{
	int	ch, rc = 0;

	opterr = 0;
	while (rc == 0 && optind < argc) {
		if (strcmp(argv[optind], "-q") == 0) {
			rc = sendmail_opt_q(sm, NULL);
			optind++;
		} else if ((ch = getopt(argc, argv, SENDMAIL_OPTS)) == -1)
			break;
		else
			rc = sendmail_opt(sm, ch, optarg);
	}
	if (rc == 0 && sm->extract && sm->mode != SENDMAIL_ENQUEUE)
		rc = sendmail_error(EX_USAGE, "-t can be used only in "
		    "delivery mode");
	return rc;
}

/* The caller's login name at the domain, or NULL if it is no address. */
static char *
sendmail_login(const struct conf *conf)
{
	struct passwd	*pw = getpwuid(getuid());
	char		 buf[SMTP_ADDR_BUFSZ];
	int		 n;

	if (pw != NULL)
		n = snprintf(buf, sizeof(buf), "%s@%s", pw->pw_name,
		    conf->domain);
	else
		n = snprintf(buf, sizeof(buf), "uid%lu@%s",
		    (unsigned long)getuid(), conf->domain);
	if (n < 0 || (size_t)n >= sizeof(buf) || !smtp_mailbox_is_valid(buf))
		return NULL;
	return xstrdup(buf);
}

/* Makes sure fds 0-2 are open: a caller that closed stderr must not
 * have our error messages written into the maildrop file. */
static void
sendmail_std_fds(void)
{
	struct stat	st;
	int		fd;

	for (fd = 0; fd <= 2; fd++)
		if (fstat(fd, &st) == -1 && errno == EBADF &&
		    open("/dev/null", O_RDWR) != fd)
			exit(EX_OSERR);
}

static int
sendmail_run(struct sendmail *sm, char **args, int nargs)
{
	struct conf	*conf;
	char		 errbuf[4096];
	const char	*path = sm->conf_path;
	int		 rc;

	if (path == NULL && (path = getenv("SMARTRELAY_CONFIG")) == NULL)
		path = conf_default_path();
	if ((conf = conf_load(path, errbuf, sizeof(errbuf))) == NULL) {
		fprintf(stderr, "%s", errbuf);
		if (errbuf[0] != '\0' && errbuf[strlen(errbuf) - 1] != '\n')
			fputc('\n', stderr);
		return sendmail_error(EX_CONFIG, "cannot use the "
		    "configuration %s", path);
	}
	sm->conf = conf;
	sm->login = sendmail_login(conf);
	if (sm->mode == SENDMAIL_SMTP)
		rc = nargs > 0 ? sendmail_error(EX_USAGE, "-bs takes no "
		    "recipients") : sendmail_smtp(sm);
	else if (sm->mode == SENDMAIL_VERIFY)
		rc = sendmail_verify(sm, args, nargs);
	else
		rc = sendmail_enqueue(sm, args, nargs);
	free(sm->login);
	conf_free(conf);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct sendmail	 sm;
	const char	*prog = strrchr(argv[0], '/');
	int		 rc;

	sendmail_std_fds();
	signal(SIGPIPE, SIG_IGN);
	memset(&sm, 0, sizeof(sm));
	sm.dot_ends = true;
	sm.fullname = getenv("NAME");
	prog = prog != NULL ? prog + 1 : argv[0];
	if (strcmp(prog, "mailq") == 0)
		sm.mode = SENDMAIL_MAILQ;
	else if (strcmp(prog, "newaliases") == 0)
		sm.mode = SENDMAIL_NEWALIASES;
	if ((rc = sendmail_parse_args(&sm, argc, argv)) != 0)
		return rc;
	if (sm.mode != SENDMAIL_ENQUEUE && sm.mode != SENDMAIL_SMTP &&
	    sm.mode != SENDMAIL_VERIFY && optind < argc)
		return sendmail_error(EX_USAGE, "this mode takes no "
		    "recipients");
	switch (sm.mode) {
	case SENDMAIL_MAILQ:
		return sendmail_exec_ctl(&sm, "queue", NULL);
	case SENDMAIL_FLUSH:
		return sendmail_exec_ctl(&sm, "flush", sm.flush_id);
	case SENDMAIL_NEWALIASES:	/* no aliases: nothing to rebuild */
	case SENDMAIL_IGNORE:
		return EX_OK;
	default:
		return sendmail_run(&sm, argv + optind, argc - optind);
	}
}
