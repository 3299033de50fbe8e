// Boot-test fixture: a program to attach to, an fentry program attached to it
// (so progs.debug's `attached` column names another BPF program), and a hash
// map whose element count the guest sets (for maps.debug's cur_entries), and
// a map and a program whose names take all 15 characters the kernel keeps.
// The host kernel here refuses fentry, so this only runs in the qemu guests.
//
// Kernel behaviour the checks rely on: while the tracer is loaded but not
// attached, its row reads "boot_target boot_target" (attach function, then the
// target's 16-byte aux->name); attaching drops the kernel's reference to the
// target program, after which only the attach function remains.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 7);
	__type(key, __u32);
	__type(value, __u64);
} boot_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} boot_15char_map SEC(".maps");

SEC("socket")
int boot_15char_prg(struct __sk_buff *skb)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&boot_15char_map, &key) ? 0 : 1;
}

SEC("xdp")
int boot_target(struct xdp_md *ctx)
{
	return XDP_PASS;
}

// The target is set at load time (bpf_program__set_attach_target), as the
// section can only name a kernel function.
SEC("fentry/boot_target")
int boot_fentry_with_long_name(unsigned long long *ctx)
{
	__u32 key = 0;
	__u64 *hits = bpf_map_lookup_elem(&boot_hash, &key);

	if (hits)
		__sync_fetch_and_add(hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
