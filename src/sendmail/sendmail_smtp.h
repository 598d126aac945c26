/*
 * sendmail_smtp.h - smartrelay-sendmail -bs: SMTP on stdin and stdout,
 * for programs that speak SMTP to a local sendmail.  The same server as
 * the daemon's, as far as a local program can tell: the same command
 * table and reply texts (smtpsrv.h), the same DATA decoder (smtp.h).
 * Lines may end in LF or CRLF (local programs).
 */
#ifndef SENDMAIL_SMTP_H
#define SENDMAIL_SMTP_H

struct sendmail;

/* Runs the session to QUIT or the end of the input.  Each message is
 * left in the maildrop when DATA ends.  Returns EX_OK, or EX_IOERR when
 * the replies could not be written. */
int	sendmail_smtp(const struct sendmail *sm);

#endif /* SENDMAIL_SMTP_H */
