// ApprovalGate and GrantLookup: what a session sees of approvals and just-in-time grants.
// The daemon implements both (userspace/daemon/approval_broker.h: approval store, control API,
// webhook); sessions only submit holds and ask about grants, so tests can drive a session
// with an in-memory gate.
//
//   auto r = gate->Submit(request, absl::Minutes(5), [this](const v1::ApprovalRequest& done) {
//     done.state() == v1::APPROVAL_STATE_APPROVED ? Release() : DenyHeld(done);
//   });
//   if (r.ok() && r->state() == v1::APPROVAL_STATE_APPROVED) Release();  // approval window
//   ...
//   gate->Abandon(r->id(), "connection ended");   // session ended first: the request expires, never approves
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "interlock/v1/approval.pb.h"

namespace interlock::proxy {

class ApprovalGate {
 public:
  using ResolvedFn = std::function<void(const v1::ApprovalRequest&)>;
  virtual ~ApprovalGate() = default;

  // Stores `request` (the gate assigns id, state and times) and notifies approvers. Returns
  // it PENDING — `on_resolved` then runs exactly once, later, on the event loop, with the
  // final state (APPROVED, DENIED, TIMED_OUT after `timeout`) — or already APPROVED when
  // an approval window covers the same workload, resource and fingerprint (`on_resolved`
  // is then never called). An error means no approval is possible: fail closed.
  virtual absl::StatusOr<v1::ApprovalRequest> Submit(v1::ApprovalRequest request, absl::Duration timeout,
                                                     ResolvedFn on_resolved) = 0;
  // The session is gone, or the agent withdrew the statement (a CancelRequest), while `id`
  // is pending: it becomes EXPIRED with `why` as the decision reason; `on_resolved` is
  // dropped.
  virtual void Abandon(const std::string& id, const std::string& why) = 0;
};

class GrantLookup {
 public:
  virtual ~GrantLookup() = default;
  // The unrevoked, unexpired grant letting `workload` use `resource`, if any.
  virtual std::optional<v1::Grant> ActiveGrant(absl::string_view workload, absl::string_view resource) = 0;
};

}  // namespace interlock::proxy
