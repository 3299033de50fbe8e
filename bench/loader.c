// Reference loader for the benchmark: what a C program on libbpf does to
// produce the same two files as bpf-preload, and nothing more. It makes the
// same choices as the runner (map iterator by kfunc presence, dotted names
// pinned while the directory has no mode bits) so the two do the same work.
// Usage: loader OBJECT.bpf.o DIR
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int fail(const char *what, int err)
{
	fprintf(stderr, "loader: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 1;
}

static int pin(struct bpf_link *link, const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	// bpf_obj_pin directly: some libbpf pin helpers rewrite dots in paths.
	if (bpf_obj_pin(bpf_link__fd(link), path))
		return fail(path, errno);
	return chmod(path, 0400) ? fail(path, errno) : 0;
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "bpf_preload");
	struct bpf_program *map_prog, *prog_prog;
	struct bpf_link *map_link, *prog_link;
	struct bpf_object *obj;
	struct btf *vmlinux;
	struct stat st;
	int with_count, err;

	if (argc != 3) {
		fprintf(stderr, "usage: loader OBJECT DIR\n");
		return 2;
	}
	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return fail("load kernel BTF", errno);
	with_count = btf__find_by_name_kind(vmlinux, "bpf_map_sum_elem_count", BTF_KIND_FUNC) > 0;
	btf__free(vmlinux);

	obj = bpf_object__open_file(argv[1], &opts);
	if (!obj)
		return fail(argv[1], errno);
	map_prog = bpf_object__find_program_by_name(obj, with_count ? "dump_bpf_map" : "dump_bpf_map_compat");
	prog_prog = bpf_object__find_program_by_name(obj, "dump_bpf_prog");
	if (!map_prog || !prog_prog)
		return fail("iterator programs missing from object", ENOENT);
	bpf_program__set_autoload(bpf_object__find_program_by_name(obj, "dump_bpf_map"), with_count);
	bpf_program__set_autoload(bpf_object__find_program_by_name(obj, "dump_bpf_map_compat"), !with_count);
	if ((err = bpf_object__load(obj)))
		return fail("load object", err);
	map_link = bpf_program__attach_iter(map_prog, NULL);
	prog_link = bpf_program__attach_iter(prog_prog, NULL);
	if (!map_link || !prog_link)
		return fail("attach iterators", errno);

	// bpffs only accepts dotted names while the directory has no mode bits.
	if (stat(argv[2], &st) || chmod(argv[2], 0))
		return fail(argv[2], errno);
	err = pin(map_link, argv[2], "maps.debug") || pin(prog_link, argv[2], "progs.debug");
	if (chmod(argv[2], st.st_mode & 07777))
		err = fail(argv[2], errno);
	bpf_link__destroy(map_link);
	bpf_link__destroy(prog_link);
	bpf_object__close(obj);
	return err;
}
