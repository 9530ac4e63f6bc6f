/* Common includes and constants for the Interlock BPF programs (bpf/<name>.bpf.c).
 *
 * Every BPF translation unit includes this first. vmlinux.h is generated at build time
 * from the running kernel's BTF (see bpf/CMakeLists.txt); it carries the kernel enums
 * (SOCK_STREAM, BPF_TCP_CLOSE, BPF_SOCK_OPS_*, ...) but not the AF_* macros.
 */
#ifndef INTERLOCK_BPF_LIB_COMMON_H_
#define INTERLOCK_BPF_LIB_COMMON_H_

#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bpf/include/interlock/datapath.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#ifndef EPERM
#define EPERM 1
#endif
#ifndef ENOENT
#define ENOENT 2
#endif
#ifndef ENOMEM
#define ENOMEM 12
#endif
#ifndef EACCES
#define EACCES 13
#endif
#ifndef EEXIST
#define EEXIST 17
#endif

/* Return values of cgroup sock_addr programs: 1 lets the syscall proceed, 0 makes it
 * fail with EPERM. */
#define IL_VERDICT_ALLOW 1
#define IL_VERDICT_DENY 0

/* The high 96 bits of an IPv4-mapped IPv6 address (::ffff:0:0/96), network order. */
#define IL_V4_MAPPED_PREFIX_WORD2 bpf_htonl(0x0000ffff)

static __always_inline void il_addr_set_v4_mapped(__u32 addr[4], __u32 ip4_be)
{
	addr[0] = 0;
	addr[1] = 0;
	addr[2] = IL_V4_MAPPED_PREFIX_WORD2;
	addr[3] = ip4_be;
}

static __always_inline bool il_addr_is_v4_mapped(const __u32 addr[4])
{
	return addr[0] == 0 && addr[1] == 0 && addr[2] == IL_V4_MAPPED_PREFIX_WORD2;
}

static __always_inline bool il_addr_is_zero(const __u32 addr[4])
{
	return (addr[0] | addr[1] | addr[2] | addr[3]) == 0;
}

static __always_inline bool il_addr_equal(const __u32 a[4], const __u32 b[4])
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

static __always_inline void il_addr_copy(__u32 dst[4], const __u32 src[4])
{
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
}

/* The same TCP connection seen from the other end. */
static __always_inline void il_tuple_swap(struct il_tuple *dst, const struct il_tuple *src)
{
	il_addr_copy(dst->local_ip, src->remote_ip);
	il_addr_copy(dst->remote_ip, src->local_ip);
	dst->local_port = src->remote_port;
	dst->remote_port = src->local_port;
	dst->netns_cookie = src->netns_cookie;
}

#endif /* INTERLOCK_BPF_LIB_COMMON_H_ */
