// Holds N BPF maps and N BPF programs loaded for the read-path benchmark.
// Reads target counts from stdin, one per line, grows to each (tiny array
// maps and two-instruction socket filters, named bench_mN / bench_pN) and
// answers "ready COUNT". On EOF or any signal it exits, and the kernel frees
// everything with its file descriptors: nothing is pinned.
//
// 10,000 of each would need 20,000 fds, more than RLIMIT_NOFILE allows here
// (and root may lack CAP_SYS_RESOURCE to raise it). So fds are closed right
// away and references hold the objects instead: each program refers to its
// own map (which keeps the map alive as long as the program), and a prog
// array per batch keeps the programs. An array of maps would hold maps
// directly, but every update of one waits for an RCU grace period.
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int die(const char *what, const char *name)
{
	fprintf(stderr, "objects: %s %s: %s\n", what, name, strerror(errno));
	exit(1);
}

int main(void)
{
	// r1 = &map (two instructions, the map fd patched in below); r0 = 0; exit.
	struct bpf_insn insns[] = {
		{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_1, .src_reg = BPF_PSEUDO_MAP_FD },
		{ 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	char name[16], line[64];
	long have = 0, want;
	int map_fd, prog_fd, holder = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		__u32 slot;

		want = strtol(line, NULL, 10);
		if (want > have) {
			// One holder per batch; its fd stays open until we exit.
			holder = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "bench_hold", 4, 4, want - have, NULL);
			if (holder < 0)
				die("create map", "bench_hold");
		}
		for (slot = 0; have < want; have++, slot++) {
			LIBBPF_OPTS(bpf_prog_load_opts, opts);

			snprintf(name, sizeof(name), "bench_m%ld", have);
			map_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, name, 4, 4, 1, NULL);
			if (map_fd < 0)
				die("create map", name);
			insns[0].imm = map_fd;
			snprintf(name, sizeof(name), "bench_p%ld", have);
			prog_fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, name, "GPL", insns, 4, &opts);
			if (prog_fd < 0)
				die("load program", name);
			if (bpf_map_update_elem(holder, &slot, &prog_fd, BPF_ANY))
				die("hold program", name);
			close(prog_fd);
			close(map_fd);
		}
		printf("ready %ld\n", have);
	}
	return 0;
}
