// SPDX-License-Identifier: GPL-2.0
// exectrace's BPF side: one record per successful exec, sent through a ring
// buffer. The sched_process_exec tracepoint fires once the new program is in
// place, so comm is already the new one; tp_btf gives typed arguments that
// the program reads directly (CO-RE relocates the two fields it uses).
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define TASK_COMM_LEN 16
#define FILENAME_LEN 256

struct task_struct {
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename;
} __attribute__((preserve_access_index));

struct exec_event {
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	char comm[TASK_COMM_LEN];
	char filename[FILENAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

// .rodata, set by the tool before load: trace only execs by this user.
const volatile bool filter_uid = false;
const volatile __u32 target_uid = 0;

// .bss, read by the tool at the end.
__u64 execs_traced;
__u64 records_dropped;

// Fills one record. A function of its own (not inlined), so struct
// exec_event, its parameter's type, is in the object's BTF: gen skeleton
// makes the record's TypeScript type and decoder from it.
static __noinline int fill_event(struct exec_event *e, struct task_struct *task, struct linux_binprm *bprm, __u32 uid)
{
	e->pid = task->tgid;
	e->ppid = task->real_parent->tgid;
	e->uid = uid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), bprm->filename);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, int old_pid, struct linux_binprm *bprm)
{
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct exec_event *e;

	if (filter_uid && uid != target_uid)
		return 0;
	__sync_fetch_and_add(&execs_traced, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&records_dropped, 1);
		return 0;
	}
	fill_event(e, task, bprm, uid);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
