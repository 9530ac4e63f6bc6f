// SqliteApprovalStore: the approval store (store.h) in one SQLite database,
// <state_dir>/approvals.db — the embedded default, one host's own.
//
// Each row keeps the whole v1 proto as a serialized blob — the source of truth — next to
// the few columns the queries need (id, state, session, workload, resource, fingerprint,
// deadline, approval window, grant expiry/revocation), all written from the proto in one
// place so they cannot disagree. The file is created 0600 (SQLite gives its -wal/-shm
// files the same mode), runs in WAL mode with a busy timeout, and carries its schema
// version in `PRAGMA user_version`; a file written by a newer interlockd is refused.
// Every statement is prepared with bound parameters, so ids and reasons are stored
// verbatim whatever they contain. Calls are short synchronous transactions on a local file.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto store, SqliteApprovalStore::Open(state_dir + "/approvals.db"));
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
#include "userspace/approval/store.h"

struct sqlite3;

namespace interlock::approval {

class SqliteApprovalStore final : public ApprovalStore {
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
  static absl::StatusOr<std::unique_ptr<SqliteApprovalStore>> Open(const std::string& path);
  ~SqliteApprovalStore() override;
  SqliteApprovalStore(const SqliteApprovalStore&) = delete;
  SqliteApprovalStore& operator=(const SqliteApprovalStore&) = delete;

  // ---- ApprovalStore ----
  absl::Status InsertRequest(const v1::ApprovalRequest& request) override;
  absl::StatusOr<v1::ApprovalRequest> GetRequest(absl::string_view id) override;
  absl::StatusOr<v1::ApprovalRequest> Resolve(absl::string_view id, v1::ApprovalState state,
                                              const v1::Approver& approver, absl::string_view reason,
                                              int64_t decided_us, int64_t window_until_us) override;
  absl::StatusOr<std::vector<v1::ApprovalRequest>> ListRequests(bool pending_only, int limit) override;
  absl::StatusOr<bool> WindowAllows(absl::string_view workload, absl::string_view resource,
                                    absl::string_view fingerprint, int64_t now_us) override;
  absl::Status InsertGrant(const v1::Grant& grant) override;
  absl::StatusOr<v1::Grant> GetGrant(absl::string_view id) override;
  absl::StatusOr<std::vector<v1::Grant>> ListGrants(bool active_only, int64_t now_us) override;
  absl::StatusOr<v1::Grant> Revoke(absl::string_view id, const v1::Approver& by, int64_t now_us) override;
  absl::StatusOr<std::optional<v1::Grant>> ActiveGrant(absl::string_view workload, absl::string_view resource,
                                                       int64_t now_us) override;

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

  SqliteApprovalStore(std::string path, DbPtr db) : path_(std::move(path)), db_(std::move(db)) {}

  std::string path_;
  DbPtr db_;
};

}  // namespace interlock::approval
