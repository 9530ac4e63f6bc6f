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

/* Reads the NUL-terminated kernel string `str` into the scratch key (NUL-padded, the
 * form of enrolled_paths' and enrolled_names' keys). Returns the key and sets `*len` to
 * the string's length, or NULL. */
static __always_inline struct il_cgroup_path *il_read_cgroup_key(const char *str, int *len)
{
	struct il_cgroup_path *key;
	__u32 zero = 0;
	long n;

	key = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!key)
		return NULL;
	/* The whole buffer is the key: clear what a longer earlier string left behind. */
	__builtin_memset(key->path, 0, sizeof(key->path));
	n = bpf_probe_read_kernel_str(key->path, sizeof(key->path), str);
	if (n <= 0)
		return NULL;
	*len = (int)n - 1;
	return key;
}

/* True when `name` (`len` bytes) is `p`'s prefix, anything, then its suffix. */
static __always_inline bool il_name_pattern_matches(const struct il_name_pattern *p,
						   const char *name, int len)
{
	__u32 pl = p->prefix_len, sl = p->suffix_len, j;

	if (pl >= IL_NAME_PATTERN_PART || sl >= IL_NAME_PATTERN_PART || (int)(pl + sl) > len)
		return false;
	for (j = 0; j < IL_NAME_PATTERN_PART && j < pl; j++) {
		if (name[j] != p->prefix[j])
			return false;
	}
	for (j = 0; j < IL_NAME_PATTERN_PART && j < sl; j++) {
		if (name[(len - sl + j) & (IL_CGROUP_PATH_MAX - 1)] != p->suffix[j])
			return false;
	}
	return true;
}

/* The enrollment of the first pattern `name` matches, or NULL. */
static __always_inline struct il_enrollment *il_match_name_patterns(const char *name, int len)
{
	struct il_name_pattern *p;
	__u32 i;

	for (i = 0; i < IL_MAX_NAME_PATTERNS; i++) {
		__u32 slot = i;

		p = bpf_map_lookup_elem(&enrolled_name_patterns, &slot);
		if (!p || !p->used)
			continue;
		if (il_name_pattern_matches(p, name, len))
			return &p->enrollment;
	}
	return NULL;
}

/* Enrolls `cgrp` when `path` is in enrolled_paths, or its own name (the last path
 * component: a systemd unit's or slice's name) is in enrolled_names or matches one of
 * enrolled_name_patterns. Returns 0 when it did, -ENOENT when nothing enrolls it, or the
 * map update's -errno. */
static __always_inline int il_cgroup_created(struct cgroup *cgrp, const char *path)
{
	struct il_enrollment *e = NULL;
	struct il_cgroup_path *key;
	__u32 stat = IL_STAT_ENROLLED_BY_PATH;
	int len = 0;
	__u64 id;
	int err;

	if (!il_cgroup_is_v2(cgrp))
		return -ENOENT;
	key = il_read_cgroup_key(path, &len);
	if (key)
		e = bpf_map_lookup_elem(&enrolled_paths, key);
	if (!e) {
		stat = IL_STAT_ENROLLED_BY_NAME;
		key = il_read_cgroup_key(BPF_CORE_READ(cgrp, kn, name), &len);
		if (key) {
			e = bpf_map_lookup_elem(&enrolled_names, key);
			if (!e)
				e = il_match_name_patterns(key->path, len);
		}
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
