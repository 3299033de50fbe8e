// SPDX-License-Identifier: GPL-2.0
// What bpf/iterators.bpf.c and bpf/exporter.bpf.c both read of the kernel's
// BPF objects. Kernel structures are declared here with only the fields we
// read, marked preserve_access_index, so libbpf relocates the offsets at load
// time (CO-RE) and one object serves every kernel with BTF (5.10 onwards). A
// field declared here costs nothing in an object that does not read it.
#ifndef BPF_PRELOAD_KERNEL_OBJECTS_H
#define BPF_PRELOAD_KERNEL_OBJECTS_H

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
	// 5.16+
	__u32 verified_insns;
} __attribute__((preserve_access_index));

struct bpf_prog_stats;

struct bpf_prog {
	__u16 pages;
	enum bpf_prog_type type;
	__u32 len;
	__u32 jited_len;
	__u8 tag[8];
	// Per-CPU (a __percpu pointer the kernel's BTF does not mark as one).
	struct bpf_prog_stats *stats;
	struct bpf_prog_aux *aux;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_prog {
	struct bpf_iter_meta *meta;
	struct bpf_prog *prog;
} __attribute__((preserve_access_index));

// Element count of a map (6.6+). Weak, so the objects still open and load on
// older kernels, where the callers load a variant that does not call it.
extern s64 bpf_map_sum_elem_count(const struct bpf_map *map) __ksym __weak;

// The program's full name: the name of the BTF type its first func_info
// entry points at, as progs.debug prints it. aux->name is cut to 15
// characters; it is the fallback for programs without BTF or with a name
// offset outside the string section.
static const char *full_name(struct bpf_prog_aux *aux)
{
	struct btf *btf = aux->btf;
	struct bpf_func_info *info = aux->func_info;
	struct btf_type *type = NULL;
	__u32 name_off;

	if (!btf || !info)
		return aux->name;
	// btf->types is an array of pointers; the verifier does not follow a
	// pointer loaded from it, so the element is copied out first.
	bpf_probe_read_kernel(&type, sizeof(type), btf->types + info[0].type_id);
	if (!type)
		return aux->name;
	name_off = BPF_CORE_READ(type, name_off);
	if (name_off >= btf->hdr.str_len)
		return aux->name;
	return btf->strings + name_off;
}

#endif
