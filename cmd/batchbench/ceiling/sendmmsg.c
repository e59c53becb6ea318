// sendmmsg.c: the send ceiling in C, to check batchbench's raw-sendmmsg and
// raw-gso modes against. It does what a default batchbench round does, with
// nothing else: a loopback receiver socket (SO_RCVBUFFORCE 32 MiB) drained
// by a thread of its own with recvmmsg, and a sender thread sending batches
// of BATCH datagrams of size bytes for the round's time, by one of two
// ways, alternating round by round:
//
//	sendmmsg  one sendmmsg of BATCH prebuilt headers per batch (raw-sendmmsg)
//	gso       the batch as one contiguous buffer, sent as messages of at
//	          most 65507 bytes with a UDP_SEGMENT control message, all in
//	          one sendmmsg call (raw-gso)
//
// It loops over partial sends and waits in poll(2) on EAGAIN, as any correct
// sender must, and prints per way the median over rounds of the sending
// thread's CPU time per datagram (CLOCK_THREAD_CPUTIME_ID) and of the rate
// sent. Build and run (see cmd/batchbench's docs):
//
//	gcc -O2 -pthread -o /tmp/sendmmsg cmd/batchbench/ceiling/sendmmsg.c
//	/tmp/sendmmsg [rounds [milliseconds [size]]]   # defaults: 9 150 1200
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ceiling.h"

enum { BATCH = 64, MAXROUNDS = 1000 };

static int rx;
static atomic_ulong received;
static atomic_int stopping;

// drain reads whatever arrives until stopping is set.
static void *drain(void *arg) {
	(void)arg;
	static char bufs[BATCH][65536];
	struct iovec iovs[BATCH];
	struct mmsghdr hdrs[BATCH];
	for (int i = 0; i < BATCH; i++) {
		iovs[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof bufs[i]};
		hdrs[i].msg_hdr = (struct msghdr){.msg_iov = &iovs[i], .msg_iovlen = 1};
	}
	struct pollfd pfd = {.fd = rx, .events = POLLIN};
	while (!atomic_load(&stopping)) {
		int n = recvmmsg(rx, hdrs, BATCH, MSG_DONTWAIT, NULL);
		if (n > 0) {
			atomic_fetch_add(&received, n);
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			die("recvmmsg");
		} else {
			poll(&pfd, 1, 10);
		}
	}
	return NULL;
}

struct way {
	const char *name;
	struct mmsghdr hdrs[BATCH];
	struct iovec iovs[BATCH];
	char oob[BATCH][CMSG_SPACE(sizeof(unsigned short))];
	int nhdrs;
	double cpu[MAXROUNDS], rate[MAXROUNDS];
};

static void send_batch(int tx, struct way *w) {
	struct pollfd pfd = {.fd = tx, .events = POLLOUT};
	for (int off = 0; off < w->nhdrs;) {
		int n = sendmmsg(tx, w->hdrs + off, w->nhdrs - off, 0);
		if (n >= 0) {
			off += n;
		} else if (errno == EAGAIN) {
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				die("poll");
		} else if (errno != EINTR) {
			die("sendmmsg");
		}
	}
}

int main(int argc, char **argv) {
	int rounds = argc > 1 ? atoi(argv[1]) : 9;
	int ms = argc > 2 ? atoi(argv[2]) : 150;
	int size = argc > 3 ? atoi(argv[3]) : 1200;
	if (argc > 4 || rounds < 1 || rounds > MAXROUNDS || ms < 1 || ms > 60000 || size < 1 || size > 65507) {
		fprintf(stderr, "usage: sendmmsg [rounds (1-%d) [milliseconds (1-60000) [size (1-65507)]]]\n", MAXROUNDS);
		return 2;
	}

	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof addr;
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	int tx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (rx < 0 || tx < 0)
		die("socket");
	int big = 32 << 20;
	if (setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
		setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	if (bind(rx, (struct sockaddr *)&addr, sizeof addr) < 0 || getsockname(rx, (struct sockaddr *)&addr, &alen) < 0)
		die("bind");

	// The batch: BATCH datagrams in one contiguous buffer, so both ways
	// send the same bytes from the same memory.
	char *flat = calloc(BATCH, size);
	if (!flat)
		die("calloc");
	struct way ways[2] = {{.name = "sendmmsg"}, {.name = "gso"}};
	for (int i = 0; i < BATCH; i++) {
		struct way *w = &ways[0];
		w->iovs[i] = (struct iovec){.iov_base = flat + (size_t)i * size, .iov_len = size};
		w->hdrs[i].msg_hdr = (struct msghdr){.msg_name = &addr, .msg_namelen = sizeof addr, .msg_iov = &w->iovs[i], .msg_iovlen = 1};
	}
	ways[0].nhdrs = BATCH;
	int per = 65507 / size; // datagrams per GSO message
	if (per > BATCH)
		per = BATCH;
	for (int i = 0, k = 0; i < BATCH; i += per, k++) {
		struct way *w = &ways[1];
		int n = BATCH - i < per ? BATCH - i : per;
		w->iovs[k] = (struct iovec){.iov_base = flat + (size_t)i * size, .iov_len = (size_t)n * size};
		w->hdrs[k].msg_hdr = (struct msghdr){.msg_name = &addr, .msg_namelen = sizeof addr, .msg_iov = &w->iovs[k], .msg_iovlen = 1};
		if (n >= 2) {
			struct msghdr *h = &w->hdrs[k].msg_hdr;
			h->msg_control = w->oob[k];
			h->msg_controllen = sizeof w->oob[k];
			struct cmsghdr *c = CMSG_FIRSTHDR(h);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(unsigned short));
			unsigned short seg = size;
			memcpy(CMSG_DATA(c), &seg, sizeof seg);
		}
		w->nhdrs = k + 1;
	}

	pthread_t th;
	if (pthread_create(&th, NULL, drain, NULL) != 0)
		die("pthread_create");
	for (int r = 0; r < rounds; r++) {
		for (int j = 0; j < 2; j++) {
			struct way *w = &ways[(j + r) % 2]; // alternate which goes first
			send_batch(tx, w);                    // warm-up, not measured
			unsigned long batches = 0;
			double c0 = thread_cpu(), t0 = now(), t;
			do {
				send_batch(tx, w);
				batches++;
				t = now();
			} while (t - t0 < ms / 1e3);
			double cpu = thread_cpu() - c0;
			w->cpu[r] = cpu / (batches * BATCH) * 1e9;
			w->rate[r] = batches * BATCH / (t - t0);
		}
	}
	atomic_store(&stopping, 1);
	pthread_join(th, NULL);
	printf("sendmmsg ceiling, C: %d rounds of %d ms per way, batches of %d datagrams of %d bytes over loopback:\n", rounds, ms, BATCH, size);
	for (int j = 0; j < 2; j++) {
		struct way *w = &ways[j];
		qsort(w->cpu, rounds, sizeof w->cpu[0], cmp);
		qsort(w->rate, rounds, sizeof w->rate[0], cmp);
		printf("  %-8s median %.0f ns CPU/datagram (%.0f-%.0f), %.0fk datagrams/s, %d message(s) per sendmmsg\n", w->name,
		       w->cpu[rounds / 2], w->cpu[0], w->cpu[rounds - 1], w->rate[rounds / 2] / 1e3, w->nhdrs);
	}
	(void)received;
	return 0;
}
