// PostgresApprovalStore: the approval store (store.h) in a PostgreSQL database shared by a
// fleet of interlockd instances (config approvals.store: postgres://...), through libpq.
//
// Sharing. Every change is one statement that also NOTIFYs channel "interlock_approvals"
// with "request <id>" or "grant <id>" (delivered at commit, so a listener never reads
// before the write is visible). Each instance LISTENs on its own connection and hands
// the changes other instances made to its owner (OnChange) on the owner's event loop; its
// own are filtered out by backend pid. After a reconnect it reports kReconnected, since
// notifications sent while it was away are lost: the owner re-reads what it waits for.
//
// Exactly once. Resolve() and Revoke() are conditional updates (WHERE state = PENDING /
// revoked_us = 0): of two instances deciding one request at once, one wins and the other
// gets FAILED_PRECONDITION naming the winner's decision.
//
// Bounded. The connection is non-blocking: each call (connect included) waits at most
// `timeout`, then the connection is dropped and the store reports UNAVAILABLE for
// `retry_after` without trying (so a store outage costs the event loop one timeout, not one
// per held statement); a timer reconnects in the background meanwhile. Host names in the
// URL are resolved by libpq synchronously: use an address (or hostaddr=) where DNS may hang.
//
// Trust. The store decides what runs on every host that shares it, so its connection must
// not be open to a man in the middle: sslmode defaults to verify-full, and a weaker sslmode
// is refused unless the server is on loopback or a unix socket. A password in the URL is
// refused (it belongs in a secret reference, passed here as `password`).
//
//   PostgresStoreOptions o{.url = "postgres://interlock@10.0.0.5/approvals", .password = pw};
//   INTERLOCK_ASSIGN_OR_RETURN(auto store, PostgresApprovalStore::Open(std::move(o), loop));
//   store->OnChange([&](const StoreChange& c) { ... });
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/approval/store.h"
#include "userspace/net/event_loop.h"

struct pg_conn;

namespace interlock::approval {

struct PostgresStoreOptions {
  // libpq URI without a password: postgres://user@host:port/database?param=value.
  std::string url;
  // The role's password ("" for certificate or peer authentication). Never logged.
  std::string password;
  absl::Duration timeout = absl::Seconds(2);
  absl::Duration retry_after = absl::Seconds(5);
};

// The pure URL check Open() applies: INVALID_ARGUMENT for a URL libpq cannot parse or
// that carries a password, FAILED_PRECONDITION for an sslmode weaker than verify-full to a
// server that is not on loopback or a unix socket. Returns the sslmode to add when the URL
// names none ("verify-full", or "" for a local server, where libpq's default applies).
absl::StatusOr<std::string> CheckStoreUrl(absl::string_view url);

class PostgresApprovalStore final : public ApprovalStore, private net::IoHandler {
 public:
  // The schema version this build writes (interlock_store_meta.schema_version).
  static constexpr int kSchemaVersion = 1;
  static constexpr char kChannel[] = "interlock_approvals";

  // Checks the URL (CheckStoreUrl; errors fail here) and connects, creating the tables
  // when missing. A store that cannot be reached now is not an error: the instance starts
  // with it unavailable (every call fails closed) and keeps reconnecting. A database whose
  // schema is newer than kSchemaVersion is FAILED_PRECONDITION, now or at a reconnect.
  // `loop` (may be null: no change notifications, no background reconnects) must outlive
  // the store.
  static absl::StatusOr<std::unique_ptr<PostgresApprovalStore>> Open(PostgresStoreOptions options,
                                                                     net::EventLoop* loop);
  ~PostgresApprovalStore() override;
  PostgresApprovalStore(const PostgresApprovalStore&) = delete;
  PostgresApprovalStore& operator=(const PostgresApprovalStore&) = delete;

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
  bool shared() const override { return true; }
  void OnChange(ChangeFn fn) override { on_change_ = std::move(fn); }

  // "connected to HOST:PORT/DB" or "unavailable: <last error>", for `interlock status`.
  std::string Describe() const;
  bool connected() const { return conn_ != nullptr; }

 private:
  class Result;
  struct Param {
    std::string value;
    bool binary = false;
  };
  struct ConnCloser {
    void operator()(pg_conn* conn) const;
  };

  PostgresApprovalStore(PostgresStoreOptions options, std::string default_sslmode, net::EventLoop* loop);

  // A live connection, (re)connecting when allowed; UNAVAILABLE while backing off.
  absl::Status Ready();
  absl::Status Connect();
  absl::Status Migrate();
  void Drop(const absl::Status& why);
  void ScheduleReconnect();
  // One statement with parameters, results in binary (or, with `script`, several
  // statements without parameters as one simple Query). Waits at most options_.timeout.
  absl::StatusOr<Result> Exec(const char* sql, const std::vector<Param>& params, bool script = false);
  // Moves notifications libpq has read into the owner's queue (delivered on the loop).
  void CollectNotifications();
  void Deliver();
  void OnIo(uint32_t events) override;
  absl::Duration Now() const;

  PostgresStoreOptions options_;
  std::string default_sslmode_;
  net::EventLoop* loop_;
  std::unique_ptr<pg_conn, ConnCloser> conn_;
  int watched_fd_ = -1;
  int backend_pid_ = 0;
  absl::Duration retry_at_ = absl::ZeroDuration();  // monotonic; no attempt before it
  std::string last_error_;
  net::EventLoop::TimerId reconnect_timer_ = 0;
  bool connected_once_ = false;
  std::vector<StoreChange> queued_;
  bool delivery_scheduled_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  ChangeFn on_change_;
};

}  // namespace interlock::approval
