// Holds N BPF maps and N BPF programs loaded for the read-path benchmark.
// Reads target counts from stdin, one per line, grows to each (tiny array
// maps and two-instruction socket filters, named bench_mN / bench_pN) and
// answers "ready COUNT". On EOF or any signal it exits, and the kernel frees
// everything with its file descriptors: nothing is pinned.
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int main(void)
{
	// r0 = 0; exit: the smallest program the verifier accepts.
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct rlimit rl;
	char name[16], line[64];
	long have = 0, want;
	int fd;

	// Two fds per object: raise the limit as far as root may.
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		FILE *f = fopen("/proc/sys/fs/nr_open", "r");
		long nr_open = 0;

		if (f && fscanf(f, "%ld", &nr_open) == 1 && nr_open > 0)
			rl.rlim_cur = rl.rlim_max = nr_open;
		if (f)
			fclose(f);
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		want = strtol(line, NULL, 10);
		for (; have < want; have++) {
			snprintf(name, sizeof(name), "bench_m%ld", have);
			fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, 4, 4, 1, NULL);
			if (fd < 0) {
				fprintf(stderr, "objects: create map %s: %s\n", name, strerror(errno));
				return 1;
			}
			snprintf(name, sizeof(name), "bench_p%ld", have);
			LIBBPF_OPTS(bpf_prog_load_opts, opts);
			fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, name, "GPL", insns, 2, &opts);
			if (fd < 0) {
				fprintf(stderr, "objects: load program %s: %s\n", name, strerror(errno));
				return 1;
			}
		}
		printf("ready %ld\n", have);
	}
	return 0;
}
