// ApprovalBroker: interlockd's approvals and just-in-time grants. Sessions submit holds
// (proxy::ApprovalGate) and ask about grants (proxy::GrantLookup); approvers decide through
// the control API. Requests and grants live in the approval store (approval/store.h:
// SQLite, or PostgreSQL shared by a fleet) so they survive a restart — where a pending
// request's connection is gone, so it is marked EXPIRED at start, never approved.
//
// A fleet. With a shared store each request names the instance holding its connection
// (`host`). An approver on any instance decides it in the store (Decide); the holder hears
// of it (StoreChange) and releases or refuses the operation, auditing the decision with the
// approver's identity and host, while the deciding instance audits that it decided. The
// holder's own timeout races such a decision in the store, and whichever is first stands.
// Grants made or revoked on any instance apply on all: each arms expiry timers for every
// active grant, ends its sessions on a revocation it hears of, and only the instance a
// grant was made on audits its expiry. While the store is unreachable nothing is approved:
// new holds and grant lookups fail closed, and held statements time out as they would. New requests are POSTed to the approvers' webhook (approval/webhook.h).
//
// Who may decide: the caller of the control API (root or admin_group, never a process in
// an enrolled cgroup — control/server.h) and, here, never the requester itself: not a
// process in the requesting workload's cgroup (or below it), and not the same uid unless
// the configuration allows it.
//
// The same rule guards grants: the operator of `interlock grant` (recorded in the grant as
// granted_by: uid, user, pid, cgroup) must not be the workload itself — not inside one of
// its cgroups, and not one of the uids it runs as (GrantSubject) unless
// approvals.allow_same_uid. A refused grant is audited (AUDIT_KIND_GRANT, outcome
// "granter_refused") and never stored.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto broker, ApprovalBroker::Create(opts, loop, audit, clock));
//   broker->OnGrantEnded([&](const v1::Grant& g, const std::string& why) { close sessions });
//   session env: .approvals = broker.get(), .grants = broker.get()
//   control: broker->Decide(id, /*approve=*/true, approver, "ok", absl::Minutes(15));
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "interlock/v1/approval.pb.h"
#include "interlock/v1/events.pb.h"
#include "userspace/approval/store.h"
#include "userspace/approval/webhook.h"
#include "userspace/audit/audit_log.h"
#include "userspace/common/clock.h"
#include "userspace/config/config.h"
#include "userspace/net/event_loop.h"
#include "userspace/proxy/core/approval_gate.h"

namespace interlock::daemon {

struct ApprovalBrokerOptions {
  std::string db_path;  // <state_dir>/approvals.db (the SQLite store)
  // This instance's name: approvals.instance_name, default the host name.
  std::string host;
  config::ApprovalsConfig approvals;
  // Longest grant, and the CLI name used in the webhook's suggested commands.
  absl::Duration max_grant = absl::Hours(24 * 7);
};

// What interlockd knows about the workload a grant is for, gathered by the caller: the
// uids it runs as (the owners of the processes in its cgroups, the uids of its live
// sessions — the uid an approval's requester is judged by) and its cgroups.
struct GrantSubject {
  std::set<uint32_t> uids;
  std::vector<std::string> cgroup_paths;  // relative to the cgroup2 mount
};

class ApprovalBroker final : public proxy::ApprovalGate, public proxy::GrantLookup {
 public:
  using GrantEndedFn = std::function<void(const v1::Grant&, const std::string& why)>;

  // Opens the store, expires requests left pending by a previous run (audited), starts
  // the webhook notifier when configured, and arms expiry timers for active grants.
  static absl::StatusOr<std::unique_ptr<ApprovalBroker>> Create(ApprovalBrokerOptions options,
                                                                net::EventLoop* loop, audit::AuditLog* audit,
                                                                const Clock* clock);
  // The same with a store the caller opened (tests).
  static absl::StatusOr<std::unique_ptr<ApprovalBroker>> Create(ApprovalBrokerOptions options,
                                                                std::unique_ptr<approval::ApprovalStore> store,
                                                                net::EventLoop* loop, audit::AuditLog* audit,
                                                                const Clock* clock);
  ~ApprovalBroker() override;

  // proxy::ApprovalGate
  absl::StatusOr<v1::ApprovalRequest> Submit(v1::ApprovalRequest request, absl::Duration timeout,
                                             ResolvedFn on_resolved) override;
  void Abandon(const std::string& id, const std::string& why) override;
  // proxy::GrantLookup
  std::optional<v1::Grant> ActiveGrant(absl::string_view workload, absl::string_view resource) override;

  // Control API. PERMISSION_DENIED when `approver` is the requester; FAILED_PRECONDITION
  // when already decided; NOT_FOUND; INVALID_ARGUMENT for a window over the maximum or a
  // deny without a reason.
  absl::StatusOr<v1::ApprovalRequest> Decide(const std::string& id, bool approve, const v1::Approver& approver,
                                             const std::string& reason, absl::Duration window);
  absl::StatusOr<std::vector<v1::ApprovalRequest>> List(bool all, int limit);
  // PERMISSION_DENIED when `by` is the workload itself (CheckGranter with `subject`),
  // INVALID_ARGUMENT for a missing reason or a duration out of range.
  absl::StatusOr<v1::Grant> CreateGrant(const std::string& workload, const std::string& resource,
                                        absl::Duration duration, const std::string& reason,
                                        const v1::Approver& by, const GrantSubject& subject = {});
  absl::StatusOr<std::vector<v1::Grant>> ListGrants(bool all);
  absl::StatusOr<v1::Grant> RevokeGrant(const std::string& id, const v1::Approver& by);

  // Called when a grant expires or is revoked (on the loop).
  void OnGrantEnded(GrantEndedFn fn) { grant_ended_ = std::move(fn); }

  // Pending requests with a live hold (for status).
  size_t pending() const { return pending_.size(); }
  // This instance's name in the store, and the store as `interlock status` shows it.
  const std::string& instance_name() const { return options_.host; }
  std::string DescribeStore() const;

 private:
  struct Pending {
    ResolvedFn on_resolved;
    net::EventLoop::TimerId timer = 0;
    v1::ApprovalRequest request;  // as submitted: what is audited if the store cannot record the end
  };

  ApprovalBroker(ApprovalBrokerOptions options, net::EventLoop* loop, audit::AuditLog* audit, const Clock* clock,
                 std::unique_ptr<approval::ApprovalStore> store);
  int64_t NowUs() const;
  std::string NewId(absl::string_view prefix) const;
  void Finish(const std::string& id, v1::ApprovalState state, const v1::Approver& who, const std::string& reason,
              int64_t window_until_us);
  void AuditApproval(const v1::ApprovalRequest& r, const std::string& outcome, const std::string& detail = "");
  // Whether this instance holds `r`'s connection (always, with a store that is not shared).
  bool Ours(const v1::ApprovalRequest& r) const;
  // Expires this host's pending requests that have no live hold here.
  absl::Status ExpireStale(bool startup);
  // Another instance sharing the store changed something.
  void OnStoreChange(const approval::StoreChange& c);
  void SyncGrant(const v1::Grant& g);
  // Hands a decision made elsewhere to the held session (and audits it here).
  void Release(const v1::ApprovalRequest& r);
  void AuditGrant(const v1::Grant& g, const std::string& outcome, const std::string& detail);
  void ArmGrantTimer(const v1::Grant& g);
  void Notify(const v1::ApprovalRequest& r);

  ApprovalBrokerOptions options_;
  net::EventLoop* loop_;
  audit::AuditLog* audit_;
  const Clock* clock_;
  std::unique_ptr<approval::ApprovalStore> store_;
  std::unique_ptr<approval::WebhookNotifier> webhook_;
  absl::flat_hash_map<std::string, Pending> pending_;
  absl::flat_hash_map<std::string, net::EventLoop::TimerId> grant_timers_;
  GrantEndedFn grant_ended_;
  bool stale_expired_ = false;
};

// The pure self-approval rule: PERMISSION_DENIED (with why) when `approver` is, or runs
// inside the workload of, the requester.
absl::Status CheckApprover(const v1::Approver& approver, const v1::WorkloadIdentity& requester,
                           bool allow_same_uid);

// The pure self-grant rule, mirroring CheckApprover: PERMISSION_DENIED (with why) when the
// operator `by` runs inside one of the workload's cgroups, or has one of its uids and
// `allow_same_uid` is false.
absl::Status CheckGranter(const v1::Approver& by, absl::string_view workload, const GrantSubject& subject,
                          bool allow_same_uid);

}  // namespace interlock::daemon
