// recvmmsg.c: the receive ceiling in C, to check batchbench's raw-recvmmsg
// mode against. It does what a -recv drain round does, with nothing else:
// fill a fresh loopback socket (SO_RCVBUFFORCE 32 MiB) with datagrams sent
// SEGS per UDP GSO send, then drain it with recvmmsg of VLEN prebuilt
// headers (source address room included, as every batchbench mode gets)
// and print the draining thread's CPU time per datagram
// (CLOCK_THREAD_CPUTIME_ID)
// and the drain's rate. Build and run (see cmd/batchbench's docs):
//
//	gcc -O2 -o /tmp/recvmmsg cmd/batchbench/ceiling/recvmmsg.c
//	/tmp/recvmmsg [rounds [datagrams [size]]]   # defaults: 9 20000 1400
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ceiling.h"

enum { VLEN = 64, SEGS = 14 };

int main(int argc, char **argv) {
	int rounds = argc > 1 ? atoi(argv[1]) : 9;
	int fill = argc > 2 ? atoi(argv[2]) : 20000;
	int size = argc > 3 ? atoi(argv[3]) : 1400;
	if (rounds < 1 || fill < VLEN * 2 || size < 1 || size * SEGS > 65507) {
		fprintf(stderr, "usage: recvmmsg [rounds >= 1 [datagrams >= %d [size, at most %d]]]\n", VLEN * 2, 65507 / SEGS);
		return 2;
	}
	char *sendbuf = calloc(SEGS, size);
	char *bufs = malloc((size_t)VLEN * size);
	struct mmsghdr hdrs[VLEN];
	struct iovec iovs[VLEN];
	struct sockaddr_in6 names[VLEN];
	double *cpu = calloc(rounds, sizeof *cpu), *rate = calloc(rounds, sizeof *rate);
	if (!sendbuf || !bufs || !cpu || !rate)
		die("malloc");

	for (int r = 0; r < rounds; r++) {
		struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t alen = sizeof addr;
		int rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		int tx = socket(AF_INET, SOCK_DGRAM, 0);
		int big = 32 << 20, seg = size;
		if (rx < 0 || tx < 0)
			die("socket");
		if (setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
			setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
		if (bind(rx, (struct sockaddr *)&addr, sizeof addr) < 0 || getsockname(rx, (struct sockaddr *)&addr, &alen) < 0)
			die("bind");
		if (setsockopt(tx, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof seg) < 0)
			die("setsockopt UDP_SEGMENT");

		// Fill: SEGS datagrams per send, the last send cut to what is left.
		for (int sent = 0; sent < fill;) {
			int n = fill - sent < SEGS ? fill - sent : SEGS;
			if (sendto(tx, sendbuf, (size_t)n * size, 0, (struct sockaddr *)&addr, sizeof addr) < 0)
				die("sendto");
			sent += n;
		}
		close(tx);

		for (int i = 0; i < VLEN; i++) {
			iovs[i] = (struct iovec){.iov_base = bufs + (size_t)i * size, .iov_len = size};
			hdrs[i].msg_hdr = (struct msghdr){.msg_name = &names[i], .msg_namelen = sizeof names[i], .msg_iov = &iovs[i], .msg_iovlen = 1};
		}
		// One untimed call, as batchbench's warm-up, then the drain.
		int got = recvmmsg(rx, hdrs, VLEN, 0, NULL);
		if (got < 0)
			die("recvmmsg");
		int timed = 0;
		double c0 = thread_cpu(), t0 = now();
		while (got < fill) {
			int n = recvmmsg(rx, hdrs, VLEN, 0, NULL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "round %d: read %d of %d datagrams: %s\n", r, got, fill, strerror(errno));
				return 1;
			}
			got += n;
			timed += n;
		}
		double t1 = now(), c1 = thread_cpu();
		close(rx);
		cpu[r] = (c1 - c0) * 1e9 / timed;
		rate[r] = timed / (t1 - t0);
	}
	qsort(cpu, rounds, sizeof *cpu, cmp);
	qsort(rate, rounds, sizeof *rate, cmp);
	printf("recvmmsg drain, C: %d rounds of %d datagrams of %d bytes, %d per call: median %.0f ns CPU/datagram, %.2fM datagrams/s (CPU %.0f-%.0f ns)\n",
	       rounds, fill, size, VLEN, cpu[rounds / 2], rate[rounds / 2] / 1e6, cpu[0], cpu[rounds - 1]);
	return 0;
}
