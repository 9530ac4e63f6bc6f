/* Decision logic of the cgroup/bind4 and cgroup/bind6 hooks.
 *
 * The engine's listener port belongs to interlockd. Enrolled connects are redirected to
 * it, so a workload that could bind it (on any address, while interlockd is down or
 * restarting) would receive other workloads' redirected connections. Enrolled tasks
 * are refused that port (EPERM, counter, event); everything else binds as usual.
 */
#ifndef INTERLOCK_BPF_LIB_BIND_H_
#define INTERLOCK_BPF_LIB_BIND_H_

#include "bpf/lib/common.h"
#include "bpf/lib/connect.h"
#include "bpf/lib/events.h"
#include "bpf/lib/maps.h"

static __always_inline int il_bind(const struct il_dst *dst)
{
	const struct il_settings *s = il_settings_get();
	struct il_subject subject = {};

	if (!s || s->engine_port == 0 || dst->port != s->engine_port)
		return IL_VERDICT_ALLOW;
	if (il_find_enrollment(&subject))
		return IL_VERDICT_ALLOW; /* not enrolled: interlockd itself, or not ours */
	il_count(IL_STAT_DENIED);
	il_emit_event(IL_EVENT_DENIED, IL_REASON_ENGINE_PORT, dst, &subject, 0);
	return IL_VERDICT_DENY;
}

#endif /* INTERLOCK_BPF_LIB_BIND_H_ */
