/*
 * startup.c - smartrelayd's process set-up before the loop runs: the
 * user to become and the directories it needs, the privilege drop, the
 * descriptor table, detaching from the terminal, and a first look at
 * the upstream credentials.  Each step logs what went wrong; main.c
 * decides the exit code.
 */
#include "config.h"

#include "startup.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "sasl.h"
#include "util.h"

/* The directory of the control socket (/run/smartrelay), made while
 * still root for the user the daemon becomes, as systemd's
 * RuntimeDirectory= would.  An existing directory is left as it is. */
static int
startup_prepare_rundir(const struct conf *conf, const struct passwd *pw)
{
	char	dir[sizeof(((struct sockaddr_un *)0)->sun_path)], *slash;

	if (snprintf(dir, sizeof(dir), "%s", conf->control_socket) >=
	    (int)sizeof(dir) || (slash = strrchr(dir, '/')) == NULL ||
	    slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0750) == -1) {
		if (errno == EEXIST)
			return 0;
		log_warn("smartrelayd cannot create %s", dir);
		return -1;
	}
	if (chown(dir, pw->pw_uid, pw->pw_gid) == -1) {
		log_warn("smartrelayd cannot chown %s", dir);
		return -1;
	}
	return 0;
}

/* When started as root with a user configured: prepare the spool for
 * that user, then (after binding) become it. */
int
startup_lookup_user(const struct conf *conf, struct passwd **pw)
{
	*pw = NULL;
	if (geteuid() != 0 || conf->user[0] == '\0')
		return 0;
	errno = 0;
	if ((*pw = getpwnam(conf->user)) == NULL) {
		log_errx("smartrelayd user \"%s\" does not exist: create it "
		    "(useradd --system %s) or set user = \"\"", conf->user,
		    conf->user);
		return -1;
	}
	if (mkdir(conf->spool, 0700) == -1 && errno != EEXIST) {
		log_warn("smartrelayd cannot create spool %s", conf->spool);
		return -1;
	}
	if (chown(conf->spool, (*pw)->pw_uid, (*pw)->pw_gid) == -1) {
		log_warn("smartrelayd cannot chown spool %s", conf->spool);
		return -1;
	}
	return startup_prepare_rundir(conf, *pw);
}

int
startup_drop_privileges(const struct passwd *pw)
{
	if (pw == NULL)
		return 0;
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1) {
		log_warn("smartrelayd cannot drop privileges to %s",
		    pw->pw_name);
		return -1;
	}
	if (setuid(0) != -1) {
		log_errx("smartrelayd privileges could be regained");
		return -1;
	}
	log_info("smartrelayd running as user=%s", pw->pw_name);
	return 0;
}

/* auth = "xoauth2": the refresh token file (missing: wait for
 * oauth-setup) and the client secret file, checked like a password. */
static int
startup_check_oauth(const struct conf_upstream *up)
{
	const char	*paths[] = { up->oauth_refresh_token_file,
			    up->oauth_client_secret_file };
	char		 err[512], *pw;
	size_t		 i;

	for (i = 0; i < nitems(paths); i++) {
		if (paths[i][0] == '\0' && i == 0)
			log_notice("relay waiting for credentials: set "
			    "upstream.oauth_refresh_token_file, then run "
			    "smartrelayctl oauth-setup");
		if (paths[i][0] == '\0')
			continue;
		if (i == 0 && access(paths[i], F_OK) == -1 && errno == ENOENT) {
			log_notice("relay waiting for credentials: no OAuth "
			    "refresh token in %s yet: run smartrelayctl "
			    "oauth-setup; mail is accepted and stays queued "
			    "meanwhile", paths[i]);
			continue;
		}
		if ((pw = sasl_read_password(paths[i], err, sizeof(err))) ==
		    NULL) {
			log_errx("smartrelayd refusing to start: %s", err);
			return -1;
		}
		str_wipe_free(pw);
	}
	return 0;
}

/* The relay needs credentials; say plainly what is missing.  A
 * password file that exists but is unsafe or unreadable is a
 * configuration error: refuse to start rather than run half-broken. */
int
startup_check_credentials(const struct conf *conf)
{
	const char	*path = conf->upstream[0].password_file;
	char		 err[512], *pw;

	/* XOAUTH2: the refresh token and client secret files instead. */
	if (conf->upstream[0].auth == CONF_AUTH_XOAUTH2)
		return startup_check_oauth(&conf->upstream[0]);
	if (access(path, F_OK) == -1 && errno == ENOENT) {
		log_notice("relay waiting for credentials: set "
		    "upstream.username to your Gmail address and put the app "
		    "password in %s (mode 0600, readable by the daemon's "
		    "user); mail is accepted and stays queued meanwhile",
		    path);
		return 0;
	}
	if ((pw = sasl_read_password(path, err, sizeof(err))) == NULL) {
		log_errx("smartrelayd refusing to start: %s", err);
		return -1;
	}
	str_wipe_free(pw);
	if (conf->upstream[0].username[0] == '\0')
		log_notice("relay waiting for credentials: set "
		    "upstream.username to your Gmail address");
	return 0;
}

/* Grows the descriptor table at once to what max_clients may need (a
 * socket and a spool file per client, plus room for the rest), within
 * RLIMIT_NOFILE.  Must run before the spool's threads exist: growing a
 * table that threads share waits for an RCU grace period, which
 * stalled accept4() on the event loop for 11-14 ms under load.  The
 * limit itself is the service manager's to set (the systemd unit sets
 * LimitNOFILE); a limit below the need is only logged. */
void
startup_grow_fds(const struct conf *conf)
{
	struct rlimit	rl;
	rlim_t		want = (rlim_t)conf->max_clients * 2 + 64;
	int		fd, high;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return;
	if (rl.rlim_cur < want) {
		log_warnx("smartrelayd open file limit %llu is below the %llu "
		    "that max_clients=%u may need", (unsigned long long)
		    rl.rlim_cur, (unsigned long long)want, conf->max_clients);
		want = rl.rlim_cur;
	}
	if (want > INT_MAX || (fd = open("/dev/null", O_RDONLY |
	    O_CLOEXEC)) == -1)
		return;
	if ((rlim_t)fd + 1 < want && (high = fcntl(fd, F_DUPFD_CLOEXEC,
	    (int)want - 1)) != -1)
		close(high);
	close(fd);
}

/* Detaches from the terminal unless -d was given. */
int
startup_daemonize(void)
{
	int	fd;

	if (daemon(0, 1) == -1)
		return -1;
	if ((fd = open("/dev/null", O_RDWR)) == -1)
		return -1;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}
