/*
 * fsync_ceiling.c - what the spool's file system allows: commits per
 * second of the pattern the spool uses (create in tmp/, write, fsync,
 * rename into queue/, fsync queue/), by one thread and by several.
 *
 * Every accept-throughput figure should be read against this one.
 *
 * usage: fsync_ceiling DIR [seconds] [threads] [size]
 * prints one JSON object per run on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct worker {
	pthread_t	 tid;
	int		 n;
	int		 tmpfd;
	int		 queuefd;
	double		 until;
	size_t		 size;
	long		 done;
};

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
worker_run(void *arg)
{
	struct worker	*w = arg;
	char		 name[64], *buf;
	int		 fd;

	buf = malloc(w->size);
	memset(buf, 'x', w->size);
	while (now() < w->until) {
		snprintf(name, sizeof(name), "w%d-%ld", w->n, w->done);
		fd = openat(w->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (fd == -1 || write(fd, buf, w->size) != (ssize_t)w->size ||
		    fsync(fd) == -1 || close(fd) == -1 ||
		    renameat(w->tmpfd, name, w->queuefd, name) == -1 ||
		    fsync(w->queuefd) == -1) {
			perror("fsync_ceiling");
			exit(1);
		}
		w->done++;
	}
	free(buf);
	return NULL;
}

int
main(int argc, char *argv[])
{
	struct worker	*w;
	char		 path[4096];
	double		 secs = argc > 2 ? atof(argv[2]) : 3, t0;
	int		 nthreads = argc > 3 ? atoi(argv[3]) : 1, i, tmpfd;
	int		 queuefd;
	size_t		 size = argc > 4 ? (size_t)atol(argv[4]) : 1024;
	long		 total = 0;

	if (argc < 2 || nthreads < 1) {
		fprintf(stderr, "usage: fsync_ceiling DIR [seconds] [threads] "
		    "[size]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/tmp", argv[1]);
	mkdir(argv[1], 0700);
	mkdir(path, 0700);
	tmpfd = open(path, O_RDONLY | O_DIRECTORY);
	snprintf(path, sizeof(path), "%s/queue", argv[1]);
	mkdir(path, 0700);
	queuefd = open(path, O_RDONLY | O_DIRECTORY);
	if (tmpfd == -1 || queuefd == -1) {
		perror(argv[1]);
		return 1;
	}
	w = calloc((size_t)nthreads, sizeof(*w));
	t0 = now();
	for (i = 0; i < nthreads; i++) {
		w[i].n = i;
		w[i].tmpfd = tmpfd;
		w[i].queuefd = queuefd;
		w[i].until = t0 + secs;
		w[i].size = size;
		pthread_create(&w[i].tid, NULL, worker_run, &w[i]);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(w[i].tid, NULL);
		total += w[i].done;
	}
	printf("{\"threads\": %d, \"size\": %zu, \"seconds\": %.2f, "
	    "\"commits\": %ld, \"commits_per_s\": %.1f}\n", nthreads, size,
	    now() - t0, total, (double)total / (now() - t0));
	return 0;
}
