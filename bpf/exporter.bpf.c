// SPDX-License-Identifier: GPL-2.0
// The kernel side of `bpf-preload exporter`: iterators that write, in one
// read each, what the exporter turns into metrics.
//
// Programs and maps, many thousands on a busy host, go out as binary
// records (struct exporter_prog, struct exporter_map below, in this
// machine's byte order): bpf_seq_write of a struct costs a fraction of a
// bpf_seq_printf of the same numbers, and the exporter reads the numbers
// without parsing text. Each record has what changes while the object lives
// (run statistics, entries) right after its id, and everything after that
// never changes while it lives (but a program's attach strings, which the
// kernel clears on attach): the exporter compares those bytes with the last
// scrape's and decodes only a record that changed. skel/exporter.skel.ts
// carries both structs' layouts (gen skeleton reads them from this
// object's BTF), so src/exporter/records.ts never retypes an offset.
//
// Links and holders, a few per program at most, are tab-separated lines:
//
//   l  id type prog_id prog_name attached
//   h  kind(p|m|l) id tgid comm (16 bytes as two native-endian hex u64s)
//
// Strings come last on a line: BTF names and kernel function names hold no
// tab or newline.
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
	struct {
		__u64 cnt;
		__u64 nsecs;
		__u64 misses;
	} v;
	__u64 stats = 0, pptr = 0, cnt_off;
	__u32 zero = 0, cpu;
	void *slot;

	// Older layouts (plain u64 fields before 5.18, no misses before 5.12)
	// do not match ours: bpf_prog_info's sums serve there. The three
	// counters are read in one go, so they must lie next to each other.
	if (!bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_map_lookup_percpu_elem) ||
	    !bpf_core_field_exists(struct bpf_prog_stats, misses) || !bpf_core_field_exists(struct bpf_prog_stats, cnt))
		return 0;
	cnt_off = bpf_core_field_offset(struct bpf_prog_stats, cnt);
	if (bpf_core_field_offset(struct bpf_prog_stats, nsecs) != cnt_off + 8 ||
	    bpf_core_field_offset(struct bpf_prog_stats, misses) != cnt_off + 16)
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
		if (bpf_probe_read_kernel(&v, sizeof(v), (void *)(stats + (address_of(slot) - pptr) + cnt_off)))
			return 0;
		sums[0] += v.cnt;
		sums[1] += v.nsecs;
		sums[2] += v.misses;
	}
	return 1;
}

// What exporter_progs writes for each program: this struct, then its full
// name, its attach function and the name of the program it was loaded for
// (each without a NUL; the lengths say which are there).
struct exporter_prog {
	__u32 id;
	// 1 where runs, run_ns and misses are the sums over CPUs (5.19+);
	// 0 where the exporter asks bpf_prog_info instead.
	__u32 has_run_stats;
	__u64 runs;
	__u64 run_ns;
	__u64 misses;
	// Nothing from here to the end of the strings changes while the program
	// lives, but the attach strings (the kernel clears dst_prog on attach).
	__u32 type;
	__u32 len;
	__u32 jited_len;
	__u32 pages;
	__u32 verified_insns;
	// verified_insns exists since 5.16.
	__u32 has_verified_insns;
	__u8 tag[8];
	__u16 name_len;
	__u16 attach_func_len;
	__u16 dst_name_len;
	__u16 reserved;
};

// What exporter_maps and exporter_maps_compat write for each map.
struct exporter_map {
	__u32 id;
	// 1 where the kernel counts the map's elements (6.6+, the hash family).
	__u32 has_entries;
	__s64 entries;
	// Nothing from here on changes while the map lives.
	__u32 type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	char name[16];
	__u32 reserved;
};

// The longest kernel symbol or BTF name (KSYM_NAME_LEN, 512 since 6.1).
#define NAME_MAX_LEN 512

// Strings are copied here before they are written, as bpf_seq_write wants
// their length and the stack (512 bytes) cannot hold them.
struct strings {
	char name[NAME_MAX_LEN];
	char attach_func[NAME_MAX_LEN];
	char dst_name[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct strings);
} string_scratch SEC(".maps");

// Copies the string at `src` (NUL-terminated, at most `size` bytes with the
// NUL) into `dst`; returns its length without the NUL, 0 if unreadable.
static __u16 copy_string(char *dst, __u32 size, const char *src)
{
	long n;

	if (!src)
		return 0;
	n = bpf_probe_read_kernel_str(dst, size, src);
	return n > 1 ? n - 1 : 0;
}

// The writers are functions of their own (not inlined) so that the records'
// structs are in the object's BTF as their parameters' types: gen skeleton
// makes them record types, with their layouts, for src/exporter/records.ts.
// The strings come as a void pointer: struct strings is scratch space, not
// a record the exporter reads (it would get a record type of its own).
static __noinline int write_prog(struct seq_file *seq, const struct exporter_prog *r, const void *scratch)
{
	const struct strings *str = scratch;

	bpf_seq_write(seq, r, sizeof(*r));
	// The masks only tell the verifier what copy_string already ensures.
	bpf_seq_write(seq, str->name, r->name_len & (NAME_MAX_LEN - 1));
	bpf_seq_write(seq, str->attach_func, r->attach_func_len & (NAME_MAX_LEN - 1));
	bpf_seq_write(seq, str->dst_name, r->dst_name_len & 15);
	return 0;
}

static __noinline int write_map(struct seq_file *seq, const struct exporter_map *r)
{
	bpf_seq_write(seq, r, sizeof(*r));
	return 0;
}

SEC("iter/bpf_prog")
int exporter_progs(struct bpf_iter__bpf_prog *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_prog *prog = ctx->prog;
	struct exporter_prog r;
	struct bpf_prog_aux *aux;
	struct bpf_prog *dst;
	struct strings *str;
	__u64 sums[3] = {};
	__u32 zero = 0;

	if (!prog)
		return 0;
	str = bpf_map_lookup_elem(&string_scratch, &zero);
	if (!str)
		return 0;
	aux = prog->aux;
	__builtin_memset(&r, 0, sizeof(r));
	r.id = aux->id;
	if (run_stats(prog, sums)) {
		r.has_run_stats = 1;
		r.runs = sums[0];
		r.run_ns = sums[1];
		r.misses = sums[2];
	}
	r.type = prog->type;
	r.len = prog->len;
	r.jited_len = prog->jited_len;
	r.pages = prog->pages;
	if (bpf_core_field_exists(aux->verified_insns)) {
		r.verified_insns = aux->verified_insns;
		r.has_verified_insns = 1;
	}
	__builtin_memcpy(r.tag, prog->tag, sizeof(r.tag));
	r.name_len = copy_string(str->name, sizeof(str->name), full_name(aux));
	r.attach_func_len = copy_string(str->attach_func, sizeof(str->attach_func), aux->attach_func_name);
	dst = aux->dst_prog;
	if (dst)
		r.dst_name_len = copy_string(str->dst_name, sizeof(str->dst_name), dst->aux->name);
	return write_prog(seq, &r, str);
}

// A map's record, with its element count if `counted`.
static int map_record(struct seq_file *seq, struct bpf_map *map, int counted, __s64 entries)
{
	struct exporter_map r;

	__builtin_memset(&r, 0, sizeof(r));
	r.id = map->id;
	if (counted) {
		r.has_entries = 1;
		r.entries = entries;
	}
	r.type = map->map_type;
	r.key_size = map->key_size;
	r.value_size = map->value_size;
	r.max_entries = map->max_entries;
	r.map_flags = map->map_flags;
	__builtin_memcpy(r.name, map->name, sizeof(r.name));
	return write_map(seq, &r);
}

// Kernels with the element count (6.6+): the count where the kernel keeps
// one for this map, none where it does not (arrays, ring buffers, ...).
SEC("iter/bpf_map")
int exporter_maps(struct bpf_iter__bpf_map *ctx)
{
	struct bpf_map *map = ctx->map;

	if (!map)
		return 0;
	if (bpf_core_field_exists(map->elem_count) && map->elem_count)
		map_record(ctx->meta->seq, map, 1, bpf_map_sum_elem_count(map));
	else
		map_record(ctx->meta->seq, map, 0, 0);
	return 0;
}

// Kernels without bpf_map_sum_elem_count (before 6.6): no count at all.
SEC("iter/bpf_map")
int exporter_maps_compat(struct bpf_iter__bpf_map *ctx)
{
	struct bpf_map *map = ctx->map;

	if (!map)
		return 0;
	map_record(ctx->meta->seq, map, 0, 0);
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
