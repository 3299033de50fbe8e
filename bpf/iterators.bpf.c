// SPDX-License-Identifier: GPL-2.0
// The kernel side of bpf-preload: BPF iterators that print every BPF map and
// program the way the kernel's own preloaded maps.debug and progs.debug do,
// byte for byte. One object serves every kernel with BTF (5.10 onwards): the
// kernel structures it reads are declared, for CO-RE, in kernel_objects.h.
#include "kernel_objects.h"

// The runner recognises its own pins by this string in the .rodata map of
// the pinned link's program (every program here references .rodata through
// its format strings, so the map is always bound to it).
const char bpf_preload_marker[] __attribute__((used)) = "bpf-preload/iterators/v1";

// A string argument bpf_seq_printf cannot read (NULL included) prints as "".
// The kernel's iterator relies on that for the attached columns, but it is
// not cheap: the helper copies a NULL %s argument as a user address and takes
// a fault (about 1 us each on 6.18, where a whole row without them costs
// 0.15 us over the kernel's own iteration). So dump_bpf_prog leaves absent
// strings out of the format instead of passing NULL.

SEC("iter/bpf_map")
int dump_bpf_map(struct bpf_iter__bpf_map *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_map *map = ctx->map;

	if (!map)
		return 0;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "  id name             max_entries  cur_entries\n");
	BPF_SEQ_PRINTF(seq, "%4u %-16s  %10d   %10lld\n", map->id, map->name, map->max_entries,
		       bpf_map_sum_elem_count(map));
	return 0;
}

// The format of kernels before the element count existed.
SEC("iter/bpf_map")
int dump_bpf_map_compat(struct bpf_iter__bpf_map *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_map *map = ctx->map;

	if (!map)
		return 0;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "  id name             max_entries\n");
	BPF_SEQ_PRINTF(seq, "%4u %-16s%6d\n", map->id, map->name, map->max_entries);
	return 0;
}

SEC("iter/bpf_prog")
int dump_bpf_prog(struct bpf_iter__bpf_prog *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_prog *prog = ctx->prog;
	struct bpf_prog_aux *aux;
	struct bpf_prog *dst;
	const char *attach;

	if (!prog)
		return 0;
	aux = prog->aux;
	attach = aux->attach_func_name;
	// The program this one was loaded for (fentry, fexit, freplace). The
	// kernel prints that program's 16-byte aux->name, not its full name, and
	// clears dst_prog once the program is attached, so attached tracing
	// programs show only their attach function.
	dst = aux->dst_prog;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "  id name             attached\n");
	// Same bytes as "%4u %-16s %s %s\n" with "" for each absent string.
	// Separate calls rather than one with a chosen pointer: clang would merge
	// the two NULL tests into a pointer OR, which the verifier rejects.
	if (dst)
		BPF_SEQ_PRINTF(seq, "%4u %-16s %s %s\n", aux->id, full_name(aux), attach, dst->aux->name);
	else if (attach)
		BPF_SEQ_PRINTF(seq, "%4u %-16s %s \n", aux->id, full_name(aux), attach);
	else
		BPF_SEQ_PRINTF(seq, "%4u %-16s  \n", aux->id, full_name(aux));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
