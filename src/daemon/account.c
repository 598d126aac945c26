/*
 * account.c - one quota per upstream account, shared by its sections.
 *
 * The counters themselves (a rolling 24-hour window, its file) are
 * quota.c's; here they are found by username, re-limited on reload, and
 * asked with the transactions in flight added, so that parallel
 * connections never send past a limit between them.
 */
#include "config.h"

#include "account.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "util.h"

#define ACCOUNT_MAX	CONF_UPSTREAM_MAX	/* one per section at most */

struct account {
	char			*name;		/* the username */
	struct quota		*qt;
	bool			 seen;		/* limits set in this reload */
	unsigned int		 inflight_msgs;	/* dispatched, not done */
	unsigned long		 inflight_rcpts;
};

struct account_list {
	char			*spool;
	struct account		 accounts[ACCOUNT_MAX];
	unsigned int		 n;
};

struct account_list *
account_list_new(const char *spool_dir)
{
	struct account_list	*al;

	al = xcalloc(1, sizeof(*al));
	al->spool = xstrdup(spool_dir);
	return al;
}

void
account_list_free(struct account_list *al)
{
	unsigned int	i;

	if (al == NULL)
		return;
	for (i = 0; i < al->n; i++) {
		quota_sync(al->accounts[i].qt);
		quota_free(al->accounts[i].qt);
		free(al->accounts[i].name);
	}
	free(al->spool);
	free(al);
}

void
account_list_reload(struct account_list *al)
{
	unsigned int	i;

	for (i = 0; i < al->n; i++)
		al->accounts[i].seen = false;
}

struct account *
account_list_get(struct account_list *al, const struct conf_upstream *cu)
{
	struct account		*a;
	struct quota_limits	 lim;
	char			 path[1200], name[300];
	unsigned int		 i;
	size_t			 k;

	if (quota_parse(cu->quota, &lim, NULL, 0) == -1 ||
	    (lim.messages == 0 && lim.recipients == 0))
		return NULL;
	for (i = 0; i < al->n; i++) {
		a = &al->accounts[i];
		if (strcmp(a->name, cu->username) != 0)
			continue;
		/* A reload may have changed the limits. */
		if (!a->seen)
			quota_set_limits(a->qt, &lim);
		a->seen = true;
		return a;
	}
	if (al->n == ACCOUNT_MAX)
		return NULL;
	/* The file name keeps the account readable but safe. */
	snprintf(name, sizeof(name), "%s", cu->username[0] != '\0' ?
	    cu->username : "-");
	for (k = 0; name[k] != '\0'; k++)
		if (!isalnum((unsigned char)name[k]) &&
		    strchr("@.-_+", name[k]) == NULL)
			name[k] = '_';
	snprintf(path, sizeof(path), "%s/quota.%s", al->spool, name);
	a = &al->accounts[al->n++];
	a->name = xstrdup(cu->username);
	a->qt = quota_new(&lim, path);
	a->seen = true;
	quota_load(a->qt, time_wall());
	return a;
}

enum account_verdict
account_check(const struct account *a, unsigned int n, int64_t now,
    int64_t *at, char *why, size_t whysz)
{
	struct quota_status	st;
	char			when[40];

	quota_status(a->qt, now, &st);
	/* Transactions in flight are not counted yet: wait for them
	 * rather than send past the limit on parallel connections. */
	if (a->inflight_msgs > 0 && ((st.limits.messages != 0 &&
	    st.messages + a->inflight_msgs + 1 > st.limits.messages) ||
	    (st.limits.recipients != 0 && st.recipients +
	    a->inflight_rcpts + n > st.limits.recipients)))
		return ACCOUNT_WAIT;
	if ((*at = quota_next_send(a->qt, now, n)) == 0)
		return ACCOUNT_SEND;
	if ((st.limits.messages != 0 && st.messages + 1 > st.limits.messages) ||
	    (st.limits.recipients != 0 && st.recipients > 0 &&
	    st.recipients + n > st.limits.recipients)) {
		time_fmt(*at, TIME_ISO_UTC, when, sizeof(when));
		snprintf(why, whysz, "sending limit reached: %llu of %u "
		    "messages, %llu of %u recipients in 24 h; resumes %s",
		    (unsigned long long)st.messages, st.limits.messages,
		    (unsigned long long)st.recipients, st.limits.recipients,
		    when);
		return ACCOUNT_LIMIT;
	}
	return ACCOUNT_PACE;
}

void
account_hold(struct account *a, unsigned int nrcpt)
{
	a->inflight_msgs++;
	a->inflight_rcpts += nrcpt;
}

void
account_done(struct account *a, unsigned int nrcpt, unsigned int nsent,
    int64_t now)
{
	if (nsent > 0)
		quota_record(a->qt, now, nsent);
	a->inflight_msgs--;
	a->inflight_rcpts -= nrcpt;
}

void
account_status(const struct account *a, int64_t now, struct quota_status *st)
{
	quota_status(a->qt, now, st);
}
