/* Decision logic of the unix-domain hooks: cgroup/connect_unix, getpeername_unix and
 * sendmsg_unix (Linux >= 6.7, with the kfunc bpf_sock_addr_set_sun_path).
 *
 * A protected unix socket path (unix_resources) reached by an enrolled connect() is
 * rewritten to interlockd's listener for that resource (one per resource, so getpeername
 * can map the listener's path back to the resource's: unix_listener_paths). interlockd
 * identifies the peer itself (SO_PEERCRED / SO_PEERPIDFD and the peer's cgroup), so
 * nothing is recorded per connection.
 * The path is judged as the agent spelled it (up to its first NUL, as the kernel reads
 * it): a symlink or a relative path to the same socket is another path (SECURITY.md).
 * Datagrams to a protected path are refused; a default-deny enrollment is refused every
 * path it has not been given and every abstract address.
 *
 * On an older kernel these programs are not loaded (userspace checks for the kfunc), so
 * the kfuncs are weak.
 */
#ifndef INTERLOCK_BPF_LIB_UNIX_H_
#define INTERLOCK_BPF_LIB_UNIX_H_

#include "bpf/lib/common.h"
#include "bpf/lib/connect.h"
#include "bpf/lib/events.h"
#include "bpf/lib/maps.h"

#ifndef AF_UNIX
#define AF_UNIX 1
#endif
#define IL_SUN_PATH_OFFSET 2 /* offsetof(struct sockaddr_un, sun_path) */

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;
extern int bpf_sock_addr_set_sun_path(struct bpf_sock_addr_kern *sa_kern, const __u8 *sun_path,
				      __u32 sun_path__sz) __ksym __weak;

/* Reads the hook's unix address into `key` as the kernel will read it: the bytes of
 * sun_path up to the first NUL (or the address length), NUL-padded. Sets *len to the
 * path's length. Returns 0, or -ENOENT for an unnamed or abstract address (no path). */
static __always_inline int il_unix_path_from_ctx(struct bpf_sock_addr *ctx,
						 struct il_unix_path *key, __u32 *len)
{
	struct bpf_sock_addr_kern *sa = bpf_cast_to_kern_ctx(ctx);
	__u64 src;
	__u32 n;
	bool end = false;
	__u32 i;

	n = sa->uaddrlen;
	if (n <= IL_SUN_PATH_OFFSET)
		return -ENOENT;
	n -= IL_SUN_PATH_OFFSET;
	/* The whole sun_path, always: uaddr is the kernel's sockaddr_storage copy, so the
	 * read stays inside it (a variable-size read would need a bound clang tends to
	 * fold away); bytes past the address length are dropped below. */
	src = (__u64)sa->uaddr + IL_SUN_PATH_OFFSET;
	if (bpf_probe_read_kernel(key->path, sizeof(key->path), (const void *)src))
		return -ENOENT;
	if (key->path[0] == 0)
		return -ENOENT; /* abstract */
	*len = n < IL_UNIX_PATH_MAX ? n : IL_UNIX_PATH_MAX;
#pragma unroll
	for (i = 0; i < IL_UNIX_PATH_MAX; i++) {
		if (end || i >= n) {
			key->path[i] = 0;
			if (!end) {
				end = true;
				*len = i;
			}
		} else if (key->path[i] == 0) {
			end = true;
			*len = i;
		}
	}
	return 0;
}

/* A unix destination as events carry it: no address, family AF_UNIX. */
static __always_inline void il_unix_dst(const struct bpf_sock_addr *ctx, struct il_dst *dst)
{
	dst->family = AF_UNIX;
	dst->type = ctx->type;
}

/* The verdict for an enrolled task's unix address that is not protected. */
static __always_inline int il_unix_unprotected(const struct il_dst *dst,
					       const struct il_subject *subject)
{
	if (subject->enrollment.flags & IL_ENROLL_DEFAULT_DENY)
		return il_deny(IL_REASON_DEFAULT_DENY, dst, subject, 0);
	return IL_VERDICT_ALLOW;
}

/* Rewrites the connect to the resource's listener.
 * Returns IL_REASON_NONE, or why the connection must be refused. */
static __always_inline __u32 il_unix_redirect(struct bpf_sock_addr *ctx,
					      const struct il_unix_resource *res)
{
	const struct il_settings *s = il_settings_get();
	__u32 engine_len = res->engine_len;

	if (!s || !(s->flags & IL_SETTINGS_ENGINE_ACCEPTING))
		return IL_REASON_ENGINE_DOWN;
	if (engine_len == 0 || engine_len > IL_UNIX_PATH_MAX)
		return IL_REASON_ENGINE_DOWN;
	if (bpf_sock_addr_set_sun_path(bpf_cast_to_kern_ctx(ctx), (const __u8 *)res->engine_path,
				       engine_len))
		return IL_REASON_ENGINE_DOWN;
	return IL_REASON_NONE;
}

/* What an enrolled task's unix address names, shared by connect and sendmsg.
 * Returns IL_UNIX_PROTECTED with *res set to the protected resource, or the verdict the
 * hook returns as it is: allowed (the task is not enrolled, or the path is not protected
 * under a default-allow enrollment) or denied (default-deny, or no scratch space). */
#define IL_UNIX_PROTECTED (-1)
static __always_inline int il_unix_resource_for(struct bpf_sock_addr *ctx,
						struct il_subject *subject, struct il_dst *dst,
						struct il_unix_resource **res)
{
	struct il_unix_path *key;
	__u32 zero = 0, len = 0;

	if (il_find_enrollment(subject))
		return IL_VERDICT_ALLOW;
	il_unix_dst(ctx, dst);
	key = bpf_map_lookup_elem(&unix_path_scratch, &zero);
	if (!key)
		return IL_VERDICT_DENY;
	if (il_unix_path_from_ctx(ctx, key, &len))
		return il_unix_unprotected(dst, subject);
	*res = bpf_map_lookup_elem(&unix_resources, key);
	if (!*res)
		return il_unix_unprotected(dst, subject);
	return IL_UNIX_PROTECTED;
}

/* The connect_unix and sendmsg_unix hooks (`send`: a datagram with an address): allow
 * untouched, redirect a stream connect to a protected path to interlockd, or deny with
 * EPERM — a datagram to a protected path always, and for a default-deny enrollment any
 * unix address it was not given. */
static __always_inline int il_unix_judge(struct bpf_sock_addr *ctx, bool send)
{
	struct il_subject subject = {};
	struct il_dst dst = {};
	struct il_unix_resource *res = NULL;
	__u32 reason;
	int verdict;

	verdict = il_unix_resource_for(ctx, &subject, &dst, &res);
	if (verdict != IL_UNIX_PROTECTED)
		return verdict;
	if (!res)
		return IL_VERDICT_DENY; /* set whenever protected; tells the verifier so */
	if (send || dst.type != IL_SOCK_STREAM)
		return il_deny(IL_REASON_NOT_STREAM, &dst, &subject, res->resource_id);
	reason = il_unix_redirect(ctx, res);
	if (reason != IL_REASON_NONE)
		return il_deny(reason, &dst, &subject, res->resource_id);
	il_count(IL_STAT_REDIRECTED);
	il_emit_event(IL_EVENT_REDIRECTED, IL_REASON_NONE, &dst, &subject, res->resource_id);
	return IL_VERDICT_ALLOW;
}

static __always_inline int il_unix_connect(struct bpf_sock_addr *ctx)
{
	return il_unix_judge(ctx, false);
}

static __always_inline int il_unix_sendmsg(struct bpf_sock_addr *ctx)
{
	return il_unix_judge(ctx, true);
}

/* The getpeername_unix hook. The kernel runs it for the *peer* socket (unix_getname()),
 * with the peer's address already in place: for an agent's redirected socket that is
 * interlockd's accepted socket, whose address is the listener's path. Every listener
 * serves one resource, so its path names what the agent asked for: show that instead. */
static __always_inline int il_unix_getpeername(struct bpf_sock_addr *ctx)
{
	struct il_unix_conn *shown;
	struct il_unix_path *key;
	__u32 zero = 0, len = 0;

	key = bpf_map_lookup_elem(&unix_path_scratch, &zero);
	if (!key || il_unix_path_from_ctx(ctx, key, &len))
		return 1;
	shown = bpf_map_lookup_elem(&unix_listener_paths, key);
	if (!shown)
		return 1;
	len = shown->len;
	if (len == 0 || len > IL_UNIX_PATH_MAX)
		return 1;
	bpf_sock_addr_set_sun_path(bpf_cast_to_kern_ctx(ctx), (const __u8 *)shown->path, len);
	return 1;
}

#endif /* INTERLOCK_BPF_LIB_UNIX_H_ */
