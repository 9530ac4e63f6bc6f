/* Enrollment by path: the tp_btf/cgroup_mkdir and cgroup_rmdir programs.
 *
 * Configuration enrolls cgroups by path, but the kernel map is keyed by cgroup id, and a
 * cgroup that is removed and created again (every reboot, every restart of a systemd
 * unit) has a new id. The kernel fires the cgroup_mkdir tracepoint from cgroup_mkdir()
 * after the cgroup is set up and before kernfs_activate() makes its directory visible,
 * so an enrollment written here is in place before any process can be moved into the
 * new cgroup, let alone connect from it. Only the cgroup2 hierarchy counts (its
 * hierarchy id is 0; cgroup v1 hierarchies have their own paths).
 */
#ifndef INTERLOCK_BPF_LIB_CGROUP_H_
#define INTERLOCK_BPF_LIB_CGROUP_H_

#include <bpf/bpf_tracing.h>

#include "bpf/lib/common.h"
#include "bpf/lib/maps.h"

static __always_inline bool il_cgroup_is_v2(const struct cgroup *cgrp)
{
	return BPF_CORE_READ(cgrp, root, hierarchy_id) == 0;
}

/* Enrolls `cgrp` when `path` is in enrolled_paths. Returns 0 when it did, -ENOENT when
 * the path is not enrolled, or the map update's -errno. */
static __always_inline int il_cgroup_created(struct cgroup *cgrp, const char *path)
{
	struct il_enrollment *e;
	struct il_cgroup_path *key;
	__u32 zero = 0;
	__u64 id;
	int err;

	if (!il_cgroup_is_v2(cgrp))
		return -ENOENT;
	key = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!key)
		return -ENOENT;
	/* The whole buffer is the key: clear what a longer earlier path left behind. */
	__builtin_memset(key->path, 0, sizeof(key->path));
	if (bpf_probe_read_kernel_str(key->path, sizeof(key->path), path) <= 0)
		return -ENOENT;
	e = bpf_map_lookup_elem(&enrolled_paths, key);
	if (!e)
		return -ENOENT;
	id = BPF_CORE_READ(cgrp, kn, id);
	err = bpf_map_update_elem(&enrolled_cgroups, &id, e, BPF_ANY);
	if (!err)
		il_count(IL_STAT_ENROLLED_BY_PATH);
	return err;
}

/* A removed cgroup's id is never used again: drop it from enrolled_cgroups. */
static __always_inline void il_cgroup_removed(struct cgroup *cgrp)
{
	__u64 id;

	if (!il_cgroup_is_v2(cgrp))
		return;
	id = BPF_CORE_READ(cgrp, kn, id);
	bpf_map_delete_elem(&enrolled_cgroups, &id);
}

#endif /* INTERLOCK_BPF_LIB_CGROUP_H_ */
