// The ring buffer section's native side: the producer (test/fixtures/
// ringprod.bpf.c's `produce`, run with BPF_PROG_TEST_RUN) and the C reference
// consumer (libbpf's ring_buffer__poll), each a process of its own so that
// each one's CPU time is its own.
//
//   ringbuf produce PROG_ID TOTAL RATE   emits TOTAL records into ring 0, RATE
//                                        per second (0: as fast as the ring
//                                        drains); waits while the ring is full.
//                                        Prints "emitted full_waits".
//   ringbuf consume MAP_ID TOTAL         prints "ready", consumes TOTAL records,
//                                        checking their sequence numbers, then
//                                        prints "records cpu_us wall_us errors".
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

// As in ringprod.bpf.c.
struct produce_args {
	__u32 count;
	__u32 ring;
	__u32 emitted;
};

struct record {
	__u64 seq;
	__u64 ring;
	__u8 fill[48];
};

#define CHUNK 4096

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long cpu_us(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "ringbuf: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static int produce(__u32 prog_id, long long total, long long rate)
{
	long long emitted = 0, full_waits = 0, start = now_us();
	int fd = bpf_prog_get_fd_by_id(prog_id);

	if (fd < 0)
		return fail("open producer program", errno);
	while (emitted < total) {
		long long want = total - emitted;
		struct produce_args args = { 0 };
		LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &args, .ctx_size_in = sizeof(args));

		if (rate > 0) {
			// Paced: no more than the rate allows by now.
			long long allowed = (now_us() - start) * rate / 1000000 - emitted;

			if (allowed <= 0) {
				usleep(200);
				continue;
			}
			if (want > allowed)
				want = allowed;
		}
		args.count = want < CHUNK ? want : CHUNK;
		if (bpf_prog_test_run_opts(fd, &opts))
			return fail("run producer program", errno);
		emitted += opts.retval;
		if (opts.retval < args.count) {
			// The ring is full: give the consumer time.
			full_waits++;
			usleep(50);
		}
	}
	printf("%lld %lld\n", emitted, full_waits);
	return 0;
}

struct consumer {
	long long records, errors;
	__u64 next_seq;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct consumer *c = ctx;
	const struct record *r = data;

	if (c->records == 0)
		c->next_seq = r->seq;
	if (size != sizeof(*r) || r->seq != c->next_seq)
		c->errors++;
	c->next_seq = r->seq + 1;
	c->records++;
	return 0;
}

static int consume(__u32 map_id, long long total)
{
	struct consumer c = { 0 };
	long long cpu0, wall0;
	struct ring_buffer *rb;
	int fd = bpf_map_get_fd_by_id(map_id);

	if (fd < 0)
		return fail("open ring buffer map", errno);
	rb = ring_buffer__new(fd, on_record, &c, NULL);
	if (!rb)
		return fail("ring_buffer__new", errno);
	printf("ready\n");
	fflush(stdout);
	cpu0 = cpu_us();
	wall0 = now_us();
	while (c.records < total) {
		int err = ring_buffer__poll(rb, 1000);

		if (err < 0 && err != -EINTR)
			return fail("ring_buffer__poll", err);
	}
	printf("%lld %lld %lld %lld\n", c.records, cpu_us() - cpu0, now_us() - wall0, c.errors);
	ring_buffer__free(rb);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "produce"))
		return produce(atoi(argv[2]), atoll(argv[3]), atoll(argv[4]));
	if (argc == 4 && !strcmp(argv[1], "consume"))
		return consume(atoi(argv[2]), atoll(argv[3]));
	fprintf(stderr, "usage: ringbuf produce PROG_ID TOTAL RATE | ringbuf consume MAP_ID TOTAL\n");
	return 2;
}
