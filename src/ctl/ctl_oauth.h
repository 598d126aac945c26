/*
 * ctl_oauth.h - "smartrelayctl oauth-setup": gets the first OAuth
 * refresh token for auth = "xoauth2" with the installed-app flow
 * (RFC 8252, PKCE RFC 7636) and writes it to oauth_refresh_token_file.
 */
#ifndef CTL_OAUTH_H
#define CTL_OAUTH_H

#include <stdbool.h>

/* True when the verb on the command line <argv> is "oauth-setup" (the
 * global options -f/--file FILE may come before or after it). */
bool	ctl_oauth_is_verb(int argc, char *argv[]);

/* Runs "smartrelayctl [-f FILE] [-v] oauth-setup [--manual]
 * [--port N] [--auth-url URL] [--upstream NAME]": prints the consent
 * URL, waits for the browser's redirect on 127.0.0.1 (or, with
 * --manual, for the redirected URL pasted on stdin), exchanges the code
 * and saves the refresh token atomically, mode 0600.  Returns the exit
 * status (sysexits). */
int	ctl_oauth_main(int argc, char *argv[]);

#endif /* CTL_OAUTH_H */
