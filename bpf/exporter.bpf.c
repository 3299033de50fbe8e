// SPDX-License-Identifier: GPL-2.0
// The kernel side of `bpf-preload exporter`: iterators that print, in one
// read each, what the exporter turns into metrics. One line per object,
// fields separated by tabs, numbers in decimal; the first field says what
// the line describes (src/exporter/records.ts parses them):
//
//   p  id type tag len jited_len verified_insns pages name attached
//   m  id type key_size value_size max_entries flags counted count name
//   l  id type prog_id attached
//   h  kind(p|m|l) id tgid comm (16 bytes as two native-endian hex u64s)
//
// Strings come last on a line: BTF names and kernel function names hold no
// tab or newline. A number the kernel does not have is printed as "-".
// Kernel structures are declared with only the fields we read, marked
// preserve_access_index, so libbpf relocates the offsets (CO-RE).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

typedef __s64 s64;

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_map {
	__u32 id;
	char name[16];
	enum bpf_map_type map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	// 6.6+: a per-CPU count the kernel keeps for the maps it can count
	// (the hash family); NULL for the others.
	s64 *elem_count;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
} __attribute__((preserve_access_index));

struct btf_type {
	__u32 name_off;
} __attribute__((preserve_access_index));

struct btf_header {
	__u32 str_len;
} __attribute__((preserve_access_index));

struct btf {
	const char *strings;
	struct btf_type **types;
	struct btf_header hdr;
} __attribute__((preserve_access_index));

struct bpf_prog;

struct bpf_prog_aux {
	__u32 id;
	char name[16];
	const char *attach_func_name;
	struct bpf_prog *dst_prog;
	struct bpf_func_info *func_info;
	struct btf *btf;
	__u32 verified_insns;
} __attribute__((preserve_access_index));

struct bpf_prog {
	__u16 pages;
	enum bpf_prog_type type;
	__u32 len;
	__u32 jited_len;
	__u8 tag[8];
	struct bpf_prog_aux *aux;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_prog {
	struct bpf_iter_meta *meta;
	struct bpf_prog *prog;
} __attribute__((preserve_access_index));

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

// The program's full name: the name of the BTF type its first func_info
// entry points at, as progs.debug prints it (aux->name is cut to 15
// characters; it is the fallback for programs without BTF).
static const char *full_name(struct bpf_prog_aux *aux)
{
	struct btf *btf = aux->btf;
	struct bpf_func_info *info = aux->func_info;
	struct btf_type *type = NULL;
	__u32 name_off;

	if (!btf || !info)
		return aux->name;
	bpf_probe_read_kernel(&type, sizeof(type), btf->types + info[0].type_id);
	if (!type)
		return aux->name;
	name_off = BPF_CORE_READ(type, name_off);
	if (name_off >= btf->hdr.str_len)
		return aux->name;
	return btf->strings + name_off;
}

// What a program is attached to, as progs.debug's "attached" column shows it
// (without its trailing blanks): the attach function, then the 16-byte name
// of the program it was loaded for, if any. Absent strings are left out of
// the format rather than passed as NULL (a NULL %s costs a fault each).
static void print_attached(struct seq_file *seq, struct bpf_prog_aux *aux)
{
	const char *attach = aux->attach_func_name;
	struct bpf_prog *dst = aux->dst_prog;

	if (dst && attach)
		BPF_SEQ_PRINTF(seq, "%s %s\n", attach, dst->aux->name);
	else if (dst)
		BPF_SEQ_PRINTF(seq, " %s\n", dst->aux->name);
	else if (attach)
		BPF_SEQ_PRINTF(seq, "%s\n", attach);
	else
		BPF_SEQ_PRINTF(seq, "\n");
}

SEC("iter/bpf_prog")
int exporter_progs(struct bpf_iter__bpf_prog *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_prog *prog = ctx->prog;
	struct bpf_prog_aux *aux;
	__u8 t[8];

	if (!prog)
		return 0;
	aux = prog->aux;
	__builtin_memcpy(t, prog->tag, sizeof(t));
	BPF_SEQ_PRINTF(seq, "p\t%u\t%u\t%02x%02x%02x%02x%02x%02x%02x%02x\t", aux->id, prog->type, t[0], t[1], t[2], t[3],
		       t[4], t[5], t[6], t[7]);
	BPF_SEQ_PRINTF(seq, "%u\t%u\t", prog->len, prog->jited_len);
	// verified_insns exists since 5.16.
	if (bpf_core_field_exists(aux->verified_insns))
		BPF_SEQ_PRINTF(seq, "%u\t", aux->verified_insns);
	else
		BPF_SEQ_PRINTF(seq, "-\t");
	BPF_SEQ_PRINTF(seq, "%u\t%s\t", prog->pages, full_name(aux));
	print_attached(seq, aux);
	return 0;
}

static void print_map_head(struct seq_file *seq, struct bpf_map *map)
{
	BPF_SEQ_PRINTF(seq, "m\t%u\t%u\t%u\t%u\t%u\t%u\t", map->id, map->map_type, map->key_size, map->value_size,
		       map->max_entries, map->map_flags);
}

// Kernels with the element count (6.6+): "1\tCOUNT" where the kernel keeps a
// count for this map, "0\t-" where it does not (arrays, ring buffers, ...).
SEC("iter/bpf_map")
int exporter_maps(struct bpf_iter__bpf_map *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_map *map = ctx->map;

	if (!map)
		return 0;
	print_map_head(seq, map);
	if (bpf_core_field_exists(map->elem_count) && map->elem_count)
		BPF_SEQ_PRINTF(seq, "1\t%lld\t%s\n", bpf_map_sum_elem_count(map), map->name);
	else
		BPF_SEQ_PRINTF(seq, "0\t-\t%s\n", map->name);
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
	print_map_head(seq, map);
	BPF_SEQ_PRINTF(seq, "0\t-\t%s\n", map->name);
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
		BPF_SEQ_PRINTF(seq, "l\t%u\t%u\t0\t\n", link->id, link->type);
		return 0;
	}
	BPF_SEQ_PRINTF(seq, "l\t%u\t%u\t%u\t", link->id, link->type, prog->aux->id);
	print_attached(seq, prog->aux);
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
