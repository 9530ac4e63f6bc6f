// ApprovalStore: the durable record of approval requests (held statements) and
// just-in-time grants, in one SQLite database (<state_dir>/approvals.db).
//
// Each row keeps the whole v1 proto as a serialized blob — the source of truth — next to
// the few columns the queries need (id, state, session, workload, resource, fingerprint,
// deadline, approval window, grant expiry/revocation), all written from the proto in one
// place so they cannot disagree. The file is created 0600 (SQLite gives its -wal/-shm
// files the same mode), runs in WAL mode with a busy timeout, and carries its schema
// version in `PRAGMA user_version`; a file written by a newer interlockd is refused.
//
// The store never reads a clock and never makes ids: callers pass Unix-microsecond times
// (from their injected Clock) and ids ("apr-…", "grt-…"). Every statement is prepared
// with bound parameters, so ids and reasons are stored verbatim whatever they contain.
//
// Not thread-safe: one owner (interlockd's event loop) calls it. Calls are short
// synchronous SQLite transactions on a local file.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto store, ApprovalStore::Open(state_dir + "/approvals.db"));
//   INTERLOCK_ASSIGN_OR_RETURN(int expired,
//                              store->ExpireAllPending(now_us, "interlockd restarted"));
//   INTERLOCK_RETURN_IF_ERROR(store->InsertRequest(request));  // state PENDING
//   ...
//   INTERLOCK_ASSIGN_OR_RETURN(v1::ApprovalRequest done,
//       store->Resolve(id, v1::APPROVAL_STATE_APPROVED, approver, "ok", now_us,
//                      now_us + 3600 * 1000000LL));
//   INTERLOCK_ASSIGN_OR_RETURN(bool pass,
//       store->WindowAllows(workload, resource, fingerprint, now_us));
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/approval.pb.h"

struct sqlite3;

namespace interlock::approval {

class ApprovalStore {
 public:
  // The schema version this build writes (PRAGMA user_version).
  static constexpr int kSchemaVersion = 1;
  // How long a statement waits for another connection's lock before UNAVAILABLE.
  static constexpr int kBusyTimeoutMs = 5000;

  // Opens `path`, creating it (mode 0600; an existing file is tightened to 0600) and the
  // schema when missing. The directory must exist; symlinks are refused.
  // Errors: the errno mapping for open(2) (NOT_FOUND for a missing directory,
  // PERMISSION_DENIED, ...); DATA_LOSS when the file is not a SQLite database or is
  // corrupt; FAILED_PRECONDITION when its schema version is newer than kSchemaVersion.
  static absl::StatusOr<std::unique_ptr<ApprovalStore>> Open(const std::string& path);
  ~ApprovalStore();
  ApprovalStore(const ApprovalStore&) = delete;
  ApprovalStore& operator=(const ApprovalStore&) = delete;

  // ---- Approval requests ----

  // Stores a new request (normally PENDING). INVALID_ARGUMENT for an empty id,
  // ALREADY_EXISTS when the id is taken.
  absl::Status InsertRequest(const v1::ApprovalRequest& request);

  // NOT_FOUND when no request has `id`.
  absl::StatusOr<v1::ApprovalRequest> GetRequest(absl::string_view id);

  // Decides a PENDING request: sets state, approver, decision reason, decided_us and
  // (APPROVED only) window_until_us; returns the updated request. `state` must be
  // APPROVED, DENIED, TIMED_OUT or EXPIRED (INVALID_ARGUMENT otherwise, and for a
  // non-zero window on anything but APPROVED). NOT_FOUND for an unknown id;
  // FAILED_PRECONDITION ("already approved", "already denied", ...) when it is no longer
  // pending — a request is decided exactly once.
  absl::StatusOr<v1::ApprovalRequest> Resolve(absl::string_view id, v1::ApprovalState state,
                                              const v1::Approver& approver,
                                              absl::string_view reason, int64_t decided_us,
                                              int64_t window_until_us);

  // Newest first (created_us, then insertion order), at most `limit` (> 0, else
  // INVALID_ARGUMENT); only PENDING ones when `pending_only`.
  absl::StatusOr<std::vector<v1::ApprovalRequest>> ListRequests(bool pending_only, int limit);

  // Marks every PENDING request EXPIRED (decided_us = now_us, decision_reason = reason)
  // and returns how many. interlockd calls it at start: connections held before a restart
  // are gone, and a request is never approved after its connection is.
  absl::StatusOr<int> ExpireAllPending(int64_t now_us, absl::string_view reason);

  // True when an APPROVED request from the same workload (requester.workload) on the same
  // resource with the same statement fingerprint has window_until_us > now_us. Always
  // false for an empty workload or fingerprint: unenrolled clients and statements that
  // did not fingerprint never share a window.
  absl::StatusOr<bool> WindowAllows(absl::string_view workload, absl::string_view resource,
                                    absl::string_view fingerprint, int64_t now_us);

  // ---- Just-in-time grants ----

  // INVALID_ARGUMENT for an empty id, ALREADY_EXISTS when the id is taken.
  absl::Status InsertGrant(const v1::Grant& grant);

  // NOT_FOUND when no grant has `id`.
  absl::StatusOr<v1::Grant> GetGrant(absl::string_view id);

  // Newest first; with `active_only`, only unrevoked grants with expires_us > now_us.
  absl::StatusOr<std::vector<v1::Grant>> ListGrants(bool active_only, int64_t now_us);

  // Revokes an active grant (revoked_us = now_us, revoked_by = by) and returns it.
  // NOT_FOUND for an unknown id; FAILED_PRECONDITION when already revoked or expired.
  absl::StatusOr<v1::Grant> Revoke(absl::string_view id, const v1::Approver& by, int64_t now_us);

  // The unrevoked grant for (workload, resource) with the latest expires_us > now_us;
  // nullopt when there is none.
  absl::StatusOr<std::optional<v1::Grant>> ActiveGrant(absl::string_view workload,
                                                       absl::string_view resource, int64_t now_us);

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

  ApprovalStore(std::string path, DbPtr db) : path_(std::move(path)), db_(std::move(db)) {}

  std::string path_;
  DbPtr db_;
};

}  // namespace interlock::approval
