/* Enrollment by path or name: the tp_btf/cgroup_mkdir and cgroup_rmdir programs.
 *
 * Configuration enrolls cgroups by path, and systemd units and slices by their cgroup's
 * name wherever it is, but the kernel map is keyed by cgroup id, and a cgroup that is removed and created again (every reboot, every restart of a systemd
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

/* Looks the NUL-terminated kernel string `str` up in `map` (enrolled_paths or
 * enrolled_names, keyed by a NUL-padded il_cgroup_path). */
static __always_inline struct il_enrollment *il_lookup_cgroup_key(void *map, const char *str)
{
	struct il_cgroup_path *key;
	__u32 zero = 0;

	key = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!key)
		return NULL;
	/* The whole buffer is the key: clear what a longer earlier string left behind. */
	__builtin_memset(key->path, 0, sizeof(key->path));
	if (bpf_probe_read_kernel_str(key->path, sizeof(key->path), str) <= 0)
		return NULL;
	return bpf_map_lookup_elem(map, key);
}

/* Enrolls `cgrp` when `path` is in enrolled_paths, or its own name (the last path
 * component: a systemd unit's or slice's name) is in enrolled_names. Returns 0 when it
 * did, -ENOENT when neither is enrolled, or the map update's -errno. */
static __always_inline int il_cgroup_created(struct cgroup *cgrp, const char *path)
{
	struct il_enrollment *e;
	__u32 stat = IL_STAT_ENROLLED_BY_PATH;
	__u64 id;
	int err;

	if (!il_cgroup_is_v2(cgrp))
		return -ENOENT;
	e = il_lookup_cgroup_key(&enrolled_paths, path);
	if (!e) {
		e = il_lookup_cgroup_key(&enrolled_names, BPF_CORE_READ(cgrp, kn, name));
		stat = IL_STAT_ENROLLED_BY_NAME;
	}
	if (!e)
		return -ENOENT;
	id = BPF_CORE_READ(cgrp, kn, id);
	err = bpf_map_update_elem(&enrolled_cgroups, &id, e, BPF_ANY);
	if (!err)
		il_count(stat);
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
