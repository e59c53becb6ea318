// ceiling.h: what recvmmsg.c and sendmmsg.c share: the clocks they time
// with, a comparison for qsort, and how they fail.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

// thread_cpu is the calling thread's CPU time, user and system. Not
// getrusage(RUSAGE_THREAD): with tick-based accounting it counts in whole
// scheduler ticks (4 ms at HZ=250), coarse for a drain of a few ms;
// CLOCK_THREAD_CPUTIME_ID counts the scheduler's nanoseconds.
static double thread_cpu(void) {
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *what) {
	perror(what);
	exit(1);
}
