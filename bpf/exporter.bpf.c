// SPDX-License-Identifier: GPL-2.0
// The kernel side of `bpf-preload exporter`: iterators that print, in one
// read each, what the exporter turns into metrics. One line per object,
// fields separated by tabs, numbers in decimal; the first field says what
// the line describes (src/exporter/records.ts parses them):
//
//   p  id runs run_ns misses type tag len jited_len pages verified_insns name attached
//   m  id entries type key_size value_size max_entries flags name
//   l  id type prog_id prog_name attached
//   h  kind(p|m|l) id tgid comm (16 bytes as two native-endian hex u64s)
//
// What changes while the object lives (run statistics, entries) comes right
// after the id, so the exporter can recognise the rest of the line as
// unchanged since the last scrape and skip parsing it. Strings come last on
// a line: BTF names and kernel function names hold no tab or newline. A
// number the kernel does not have (or does not count for that map) is "-".
// Kernel structures are declared with only the fields we read, marked
// preserve_access_index, so libbpf relocates the offsets (CO-RE): those
// bpf/iterators.bpf.c reads too in kernel_objects.h, the others here.
#include "kernel_objects.h"

// A program's run-time statistics, one copy per CPU (5.18+ layout: each
// field a u64_stats_t, 8 bytes on 64-bit kernels).
typedef struct {
	__u64 v;
} u64_stats_t;

struct bpf_prog_stats {
	u64_stats_t cnt;
	u64_stats_t nsecs;
	u64_stats_t misses;
} __attribute__((preserve_access_index));

struct bpf_array {
	void *pptrs[0];
} __attribute__((preserve_access_index));

// Possible CPUs (libbpf_num_possible_cpus()), set by the exporter before load.
const volatile __u32 nr_cpus = 1;
// Bounds the per-CPU loop for the verifier (the kernel's NR_CPUS maximum).
#define MAX_CPUS 8192

// A per-CPU array of our own, for the kernel's per-CPU offsets: its slot's
// address on CPU c minus its per-CPU pointer is CPU c's offset, which turns
// prog->stats into that CPU's copy. The iterator cannot use bpf_per_cpu_ptr
// on prog->stats (the kernel's BTF lacks the percpu tag on the field), and
// __per_cpu_offset is not a symbol on kernels built without
// CONFIG_KALLSYMS_ALL.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_offset_probe SEC(".maps");

// A kernel address as a number: the verifier allows no arithmetic on a map
// pointer (nor unbounded arithmetic on a map value pointer), but a
// privileged program may store one in a global and read it back as a scalar.
__u64 address_scratch;

static __u64 address_of(const void *p)
{
	*(volatile __u64 *)&address_scratch = (__u64)p;
	return *(volatile __u64 *)&address_scratch;
}

struct bpf_link {
	__u32 id;
	enum bpf_link_type type;
	struct bpf_prog *prog;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_link {
	struct bpf_iter_meta *meta;
	struct bpf_link *link;
} __attribute__((preserve_access_index));

struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct qstr d_name;
} __attribute__((preserve_access_index));

struct path {
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct super_block {
	unsigned long s_magic;
} __attribute__((preserve_access_index));

struct inode {
	struct super_block *i_sb;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct task_struct {
	int tgid;
	char comm[16];
} __attribute__((preserve_access_index));

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

extern s64 bpf_map_sum_elem_count(const struct bpf_map *map) __ksym __weak;

// The full name, then what the program is attached to, as progs.debug's
// "attached" column shows it (without its trailing blanks): the attach
// function, then the 16-byte name of the program it was loaded for, if any.
// Absent strings are left out of the format rather than passed as NULL (a
// NULL %s costs a fault each).
static void print_names(struct seq_file *seq, struct bpf_prog_aux *aux)
{
	const char *attach = aux->attach_func_name;
	const char *name = full_name(aux);
	struct bpf_prog *dst = aux->dst_prog;

	if (dst && attach)
		BPF_SEQ_PRINTF(seq, "%s\t%s %s\n", name, attach, dst->aux->name);
	else if (dst)
		BPF_SEQ_PRINTF(seq, "%s\t %s\n", name, dst->aux->name);
	else if (attach)
		BPF_SEQ_PRINTF(seq, "%s\t%s\n", name, attach);
	else
		BPF_SEQ_PRINTF(seq, "%s\t\n", name);
}

// Sums a program's statistics over the possible CPUs, as bpf_prog_info
// does. Needs bpf_map_lookup_percpu_elem (5.19+); 0 without it, 1 with.
static int run_stats(struct bpf_prog *prog, __u64 sums[3])
{
	__u64 stats = 0, pptr = 0, v;
	__u32 zero = 0, cpu;
	void *slot;

	// Older layouts (plain u64 fields before 5.18, no misses before 5.12)
	// do not match ours: bpf_prog_info's sums serve there.
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_map_lookup_percpu_elem) ||
	    !bpf_core_field_exists(struct bpf_prog_stats, misses) || !bpf_core_field_exists(struct bpf_prog_stats, cnt))
		return 0;
	if (bpf_probe_read_kernel(&pptr, sizeof(pptr),
				  (void *)(address_of(&cpu_offset_probe) + bpf_core_field_offset(struct bpf_array, pptrs))))
		return 0;
	if (BPF_CORE_READ_INTO(&stats, prog, stats) || !stats)
		return 0;
	for (cpu = 0; cpu < MAX_CPUS && cpu < nr_cpus; cpu++) {
		slot = bpf_map_lookup_percpu_elem(&cpu_offset_probe, &zero, cpu);
		if (!slot)
			continue;
		__u64 mine = stats + (address_of(slot) - pptr);

		if (bpf_probe_read_kernel(&v, sizeof(v), (void *)(mine + bpf_core_field_offset(struct bpf_prog_stats, cnt))))
			return 0;
		sums[0] += v;
		if (bpf_probe_read_kernel(&v, sizeof(v), (void *)(mine + bpf_core_field_offset(struct bpf_prog_stats, nsecs))))
			return 0;
		sums[1] += v;
		if (bpf_probe_read_kernel(&v, sizeof(v), (void *)(mine + bpf_core_field_offset(struct bpf_prog_stats, misses))))
			return 0;
		sums[2] += v;
	}
	return 1;
}

// The tag's 8 bytes in memory order, as one number printed in hex.
static __u64 tag_number(const __u8 tag[8])
{
	__u64 v;

	__builtin_memcpy(&v, tag, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

SEC("iter/bpf_prog")
int exporter_progs(struct bpf_iter__bpf_prog *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_prog *prog = ctx->prog;
	struct bpf_prog_aux *aux;
	__u64 sums[3] = {};
	__u8 tag[8];

	if (!prog)
		return 0;
	aux = prog->aux;
	__builtin_memcpy(tag, prog->tag, sizeof(tag));
	// One call for every number (each bpf_seq_printf costs about as much as
	// the rest of a row): one format per combination of what the kernel has.
	// verified_insns exists since 5.16.
	if (run_stats(prog, sums)) {
		if (bpf_core_field_exists(aux->verified_insns))
			BPF_SEQ_PRINTF(seq, "p\t%u\t%llu\t%llu\t%llu\t%u\t%016llx\t%u\t%u\t%u\t%u\t", aux->id, sums[0], sums[1],
				       sums[2], prog->type, tag_number(tag), prog->len, prog->jited_len, prog->pages,
				       aux->verified_insns);
		else
			BPF_SEQ_PRINTF(seq, "p\t%u\t%llu\t%llu\t%llu\t%u\t%016llx\t%u\t%u\t%u\t-\t", aux->id, sums[0], sums[1],
				       sums[2], prog->type, tag_number(tag), prog->len, prog->jited_len, prog->pages);
	} else {
		if (bpf_core_field_exists(aux->verified_insns))
			BPF_SEQ_PRINTF(seq, "p\t%u\t-\t-\t-\t%u\t%016llx\t%u\t%u\t%u\t%u\t", aux->id, prog->type, tag_number(tag),
				       prog->len, prog->jited_len, prog->pages, aux->verified_insns);
		else
			BPF_SEQ_PRINTF(seq, "p\t%u\t-\t-\t-\t%u\t%016llx\t%u\t%u\t%u\t-\t", aux->id, prog->type, tag_number(tag),
				       prog->len, prog->jited_len, prog->pages);
	}
	print_names(seq, aux);
	return 0;
}


// A map line without an element count, in one call.
static void print_uncounted_map(struct seq_file *seq, struct bpf_map *map)
{
	BPF_SEQ_PRINTF(seq, "m\t%u\t-\t%u\t%u\t%u\t%u\t%u\t%s\n", map->id, map->map_type, map->key_size, map->value_size,
		       map->max_entries, map->map_flags, map->name);
}

// Kernels with the element count (6.6+): the count where the kernel keeps
// one for this map, "-" where it does not (arrays, ring buffers, ...).
SEC("iter/bpf_map")
int exporter_maps(struct bpf_iter__bpf_map *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_map *map = ctx->map;

	if (!map)
		return 0;
	if (bpf_core_field_exists(map->elem_count) && map->elem_count)
		BPF_SEQ_PRINTF(seq, "m\t%u\t%lld\t%u\t%u\t%u\t%u\t%u\t%s\n", map->id, bpf_map_sum_elem_count(map),
			       map->map_type, map->key_size, map->value_size, map->max_entries, map->map_flags, map->name);
	else
		print_uncounted_map(seq, map);
	return 0;
}

// Kernels without bpf_map_sum_elem_count (before 6.6): no count at all.
SEC("iter/bpf_map")
int exporter_maps_compat(struct bpf_iter__bpf_map *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_map *map = ctx->map;

	if (!map)
		return 0;
	print_uncounted_map(seq, map);
	return 0;
}

// Links (iter/bpf_link exists since 5.19): the attach target is the one
// progs.debug shows for the link's program.
SEC("iter/bpf_link")
int exporter_links(struct bpf_iter__bpf_link *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_link *link = ctx->link;
	struct bpf_prog *prog;

	if (!link)
		return 0;
	prog = link->prog;
	if (!prog) {
		BPF_SEQ_PRINTF(seq, "l\t%u\t%u\t0\t\t\n", link->id, link->type);
		return 0;
	}
	BPF_SEQ_PRINTF(seq, "l\t%u\t%u\t%u\t", link->id, link->type, prog->aux->id);
	print_names(seq, prog->aux);
	return 0;
}

#define ANON_INODE_FS_MAGIC 0x09041934

// Which BPF object an open file is, as bpftool's pid iterator finds out, but
// without the bpf_*_fops symbols (absent from kallsyms on kernels built
// without CONFIG_KALLSYMS_ALL, as this project's are): a file on the
// anonymous-inode file system whose name is the one the kernel gives
// programs ("bpf-prog"), maps ("bpf-map") or links ("bpf_link"). Returns
// 'p', 'm', 'l' or 0.
static char bpf_file_kind(struct file *file)
{
	char name[9] = {};
	struct inode *inode = file->f_inode;

	if (!inode || inode->i_sb->s_magic != ANON_INODE_FS_MAGIC)
		return 0;
	if (bpf_probe_read_kernel_str(name, sizeof(name), file->f_path.dentry->d_name.name) < 0)
		return 0;
	if (name[0] != 'b' || name[1] != 'p' || name[2] != 'f')
		return 0;
	if (name[3] == '-' && name[4] == 'p' && name[5] == 'r' && name[6] == 'o' && name[7] == 'g' && name[8] == 0)
		return 'p';
	if (name[3] == '-' && name[4] == 'm' && name[5] == 'a' && name[6] == 'p' && name[7] == 0)
		return 'm';
	if (name[3] == '_' && name[4] == 'l' && name[5] == 'i' && name[6] == 'n' && name[7] == 'k' && name[8] == 0)
		return 'l';
	return 0;
}

SEC("iter/task_file")
int exporter_holders(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	__u64 comm[2];
	__u32 id;
	char kind;

	if (!task || !file)
		return 0;
	kind = bpf_file_kind(file);
	if (kind == 'p')
		id = BPF_CORE_READ((struct bpf_prog *)file->private_data, aux, id);
	else if (kind == 'm')
		id = BPF_CORE_READ((struct bpf_map *)file->private_data, id);
	else if (kind == 'l')
		id = BPF_CORE_READ((struct bpf_link *)file->private_data, id);
	else
		return 0;
	// comm may hold any byte but NUL, tabs and newlines included: its 16
	// bytes go out as two hex words in this machine's byte order.
	__builtin_memcpy(comm, task->comm, sizeof(comm));
	BPF_SEQ_PRINTF(seq, "h\t%c\t%u\t%d\t%016llx%016llx\n", kind, id, task->tgid, comm[0], comm[1]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
