// ApprovalStore: the durable record of approval requests (held operations) and
// just-in-time grants. Two implementations:
//
//   SqliteApprovalStore   (sqlite_store.h)    <state_dir>/approvals.db, one host's own;
//   PostgresApprovalStore (postgres_store.h)  one database shared by a fleet of interlockd
//                                             instances, which hear each other's changes.
//
// Both keep each request and grant as its whole v1 proto (the source of truth) next to the
// few columns the queries need, and decide a request exactly once: Resolve() is a
// conditional update, so two approvers (or an approver and the holder's timeout) racing
// on one request cannot both win, whichever hosts they are on.
//
// Stores never read a clock for their data and never make ids: callers pass Unix-microsecond
// times (from their injected Clock) and ids ("apr-…", "grt-…").
//
// Not thread-safe: one owner (interlockd's event loop) calls it. Calls are synchronous;
// a shared store bounds each call (approvals.store_timeout_ms) and fails fast while its
// database is unreachable, so a store outage costs the data path at most one timeout.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto store, SqliteApprovalStore::Open(state_dir + "/approvals.db"));
//   INTERLOCK_RETURN_IF_ERROR(store->InsertRequest(request));  // state PENDING
//   INTERLOCK_ASSIGN_OR_RETURN(v1::ApprovalRequest done,
//       store->Resolve(id, v1::APPROVAL_STATE_APPROVED, approver, "ok", now_us,
//                      now_us + 3600 * 1000000LL));
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/approval.pb.h"

namespace interlock::approval {

// Something another instance sharing the store changed (or the store's own connection
// came back, when anything may have changed unheard).
struct StoreChange {
  enum class Kind { kRequest, kGrant, kReconnected };
  Kind kind = Kind::kRequest;
  std::string id;  // kRequest / kGrant
};

class ApprovalStore {
 public:
  using ChangeFn = std::function<void(const StoreChange&)>;

  virtual ~ApprovalStore() = default;

  // ---- Approval requests ----

  // Stores a new request (normally PENDING). INVALID_ARGUMENT for an empty id,
  // ALREADY_EXISTS when the id is taken.
  virtual absl::Status InsertRequest(const v1::ApprovalRequest& request) = 0;

  // NOT_FOUND when no request has `id`.
  virtual absl::StatusOr<v1::ApprovalRequest> GetRequest(absl::string_view id) = 0;

  // Decides a PENDING request: sets state, approver, decision reason, decided_us and
  // (APPROVED only) window_until_us; returns the updated request. `state` must be
  // APPROVED, DENIED, TIMED_OUT or EXPIRED (INVALID_ARGUMENT otherwise, and for a
  // non-zero window on anything but APPROVED). NOT_FOUND for an unknown id;
  // FAILED_PRECONDITION ("already approved", "already denied", ...) when it is no longer
  // pending — a request is decided exactly once.
  virtual absl::StatusOr<v1::ApprovalRequest> Resolve(absl::string_view id, v1::ApprovalState state,
                                                      const v1::Approver& approver, absl::string_view reason,
                                                      int64_t decided_us, int64_t window_until_us) = 0;

  // Newest first (created_us, then insertion order), at most `limit` (> 0, else
  // INVALID_ARGUMENT); only PENDING ones when `pending_only`.
  virtual absl::StatusOr<std::vector<v1::ApprovalRequest>> ListRequests(bool pending_only, int limit) = 0;

  // True when an APPROVED request from the same workload (requester.workload) on the same
  // resource with the same statement fingerprint has window_until_us > now_us. Always
  // false for an empty workload or fingerprint: unenrolled clients and statements that
  // did not fingerprint never share a window.
  virtual absl::StatusOr<bool> WindowAllows(absl::string_view workload, absl::string_view resource,
                                            absl::string_view fingerprint, int64_t now_us) = 0;

  // ---- Just-in-time grants ----

  // INVALID_ARGUMENT for an empty id, ALREADY_EXISTS when the id is taken.
  virtual absl::Status InsertGrant(const v1::Grant& grant) = 0;

  // NOT_FOUND when no grant has `id`.
  virtual absl::StatusOr<v1::Grant> GetGrant(absl::string_view id) = 0;

  // Newest first; with `active_only`, only unrevoked grants with expires_us > now_us.
  virtual absl::StatusOr<std::vector<v1::Grant>> ListGrants(bool active_only, int64_t now_us) = 0;

  // Revokes an active grant (revoked_us = now_us, revoked_by = by) and returns it.
  // NOT_FOUND for an unknown id; FAILED_PRECONDITION when already revoked or expired.
  virtual absl::StatusOr<v1::Grant> Revoke(absl::string_view id, const v1::Approver& by, int64_t now_us) = 0;

  // The unrevoked grant for (workload, resource) with the latest expires_us > now_us;
  // nullopt when there is none.
  virtual absl::StatusOr<std::optional<v1::Grant>> ActiveGrant(absl::string_view workload, absl::string_view resource,
                                                               int64_t now_us) = 0;

  // ---- Sharing ----

  // True when other instances may change the store: decisions may then arrive for this
  // host's requests that it did not make, and grants appear or end that it did not create.
  virtual bool shared() const { return false; }

  // `fn` is called (on the owner's thread) for every change another instance makes, and
  // after each reconnect. A store that is not shared never calls it.
  virtual void OnChange(ChangeFn fn) { (void)fn; }
};

}  // namespace interlock::approval
