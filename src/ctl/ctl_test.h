/*
 * ctl_test.h - "smartrelayctl test": can this configuration send?
 */
#ifndef CTL_TEST_H
#define CTL_TEST_H

struct conf;

/* Checks the first upstream's credentials locally (no network needed
 * to find a missing password file), then resolves, connects, verifies
 * TLS and logs in on an event loop, exactly as the daemon's relay does,
 * printing each step and, on failure, a "fix:" line.  Nothing is sent.
 * Returns the exit status: 0, EX_CONFIG, EX_NOPERM or EX_UNAVAILABLE. */
int	ctl_test(const struct conf *);

#endif /* CTL_TEST_H */
