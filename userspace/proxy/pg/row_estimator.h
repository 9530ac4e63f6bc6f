// RowEstimator: asks a PostgreSQL resource's planner how many rows a statement would touch,
// for the policy conditions `estimated_rows_gt: N` and `full_table` (which also asks for
// `SELECT * FROM <table>`: the whole table's estimate). interlockd keeps its own connection
// to the resource (never an agent's), logs in with the resource's configured credential, and
// runs `EXPLAIN (FORMAT JSON) <statement>` with the statement's parameters; the estimate is
// the top plan node's "Plan Rows". Only evaluated when a rule asks, so the connection is
// opened lazily on the first request and re-opened after any connection error.
//
//   INTERLOCK_ASSIGN_OR_RETURN(auto est, RowEstimator::Create({
//       .upstream = addr, .user = "app", .database = "appdb",
//       .password_ref = "file:/etc/interlock/app.pw", .sslmode = "verify-full",
//       .tls = tls_ctx.get()}, loop));
//   est->Estimate({.sql = "DELETE FROM accounts WHERE owner = $1",
//                  .params = {std::string("bob")}},
//                 [](absl::StatusOr<int64_t> rows) {   // on the loop thread, exactly once
//                   if (rows.ok() && *rows > 1000) Hold();
//                 });
//
// Threads. The loop never blocks: the connection lives on the estimator's own worker
// thread, which waits in poll(2) (with the request's deadline, and an eventfd that the
// destructor signals) instead of the loop. Create, Estimate and the destructor must be
// called on the loop thread; every `done` runs there too, through EventLoop::Post.
// Requests run in order; those waiting together are sent in one write (pipelined, each with
// its own Sync, so one rejected statement fails only itself).
//
// Safety of EXPLAIN. EXPLAIN without ANALYZE plans a statement and never executes it: an
// UPDATE, DELETE, INSERT or MERGE is estimated and nothing is changed (its row locks are not
// taken either; planning takes the same relation-level locks as the statement would, and
// waits for conflicting ones, bounded by statement_timeout). As a second fence the session
// starts with `default_transaction_read_only=on`, so anything planning might run (the
// planner evaluates immutable and stable functions while estimating) cannot write.
// Startup parameters: application_name=interlockd-estimator (visible in pg_stat_activity),
// default_transaction_read_only=on, statement_timeout=<query_timeout>, client_encoding=UTF8.
//
// One statement per request. The extended protocol runs exactly one statement per Parse
// (the server rejects "SELECT 1; SELECT 2" with 42601): for a multi-statement Query, the
// caller asks for each statement separately. Statements that EXPLAIN cannot explain
// (utility statements such as CREATE INDEX or VACUUM) are rejected by the server
// (INVALID_ARGUMENT, 42601).
//
// Errors passed to `done`:
//   UNAVAILABLE         no answer from the planner: cannot connect, TLS fails, the login is
//                       refused or its credential cannot be read, connect_timeout or
//                       query_timeout passed (the server's statement_timeout, 57014, too), the
//                       connection broke (a FATAL error too), or the planner could not run
//                       for reasons that are not the statement's (SQLSTATE classes 40, 53, 57,
//                       58, XX, and 55P03 lock_timeout). Messages name the upstream address
//                       and user, never the password.
//   INVALID_ARGUMENT    the server rejected the EXPLAIN: the message carries its SQLSTATE and
//                       message ("explain rejected: 42601: syntax error at or near ..."). This
//                       includes 42501 when the configured role may not read a table, and
//                       08P01 when the parameters do not match the statement; also requests
//                       that cannot be encoded (a NUL in `sql`, more than 65535 parameters,
//                       param_formats that is neither 0, 1 nor params.size() long).
//   RESOURCE_EXHAUSTED  max_queue requests were already waiting, or the EXPLAIN output was
//                       larger than kMaxExplainBytes.
//   INTERNAL            the output was not what EXPLAIN (FORMAT JSON) produces.
// A failed connection attempt fails every request waiting at that moment with the same
// error, so an unreachable server costs one connect_timeout, not one per request. A request
// that fails because a previously used connection turned out to be dead (the server was
// restarted, or closed an idle session) is retried once on a fresh connection, so the
// slowest answer takes query_timeout + connect_timeout + query_timeout (+ 2 s of grace),
// counted from the answer before it when requests went out together (the server's
// statement_timeout bounds each EXPLAIN on its own).
//
// Destruction stops the worker promptly (it interrupts a connect or query in flight) and
// joins it. Requests still queued or in flight are dropped: their `done` is NOT invoked
// after the destructor has started, not even when its result was already posted, and is
// destroyed on the destructor's thread (a posted one: on the loop thread).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/common/unique_fd.h"
#include "userspace/net/event_loop.h"
#include "userspace/net/socket.h"
#include "userspace/net/tls.h"

namespace interlock::proxy::pg {

// Largest EXPLAIN output (and any other server message) the estimator accepts; larger
// messages are read and discarded (RESOURCE_EXHAUSTED), and the connection stays usable.
inline constexpr size_t kMaxExplainBytes = 8 << 20;

struct RowEstimatorOptions {
  net::SockAddr upstream;
  std::string user;
  std::string database;  // empty: the user name, as PostgreSQL defaults it
  // "file:/abs/path" or "env:NAME" (auth::ResolveCredentialRef), read again for every new
  // connection so a rotated secret takes effect; empty when the server trusts us.
  std::string password_ref;
  // libpq sslmode, as in PgSession: disable and allow connect in plaintext; prefer sends
  // SSLRequest and falls back to plaintext when the server declines; require, verify-ca
  // and verify-full insist on TLS. Certificate checks are `tls`'s (net::TlsClientContext).
  std::string sslmode = "prefer";
  // The resource's allow_unverified_upstream: without it the password is sent only over
  // TLS with sslmode verify-ca or verify-full (see UpstreamLoginOptions).
  bool allow_unverified_upstream = false;
  // Owned by the caller and must outlive the estimator; used from the worker thread.
  // May be null only when sslmode is disable, allow or prefer (then: plaintext).
  net::TlsClientContext* tls = nullptr;
  // TCP connect + TLS + login, per connection attempt.
  absl::Duration connect_timeout = absl::Seconds(5);
  // Per EXPLAIN: the session's statement_timeout (the server cancels the EXPLAIN, 57014,
  // and the connection stays), and, plus 1 s, the worker's own deadline (the connection
  // is dropped). At least 1 ms.
  absl::Duration query_timeout = absl::Seconds(5);
  // Requests waiting behind the one in flight; more are refused (RESOURCE_EXHAUSTED).
  size_t max_queue = 256;
};

// One statement and its parameters, as the agent's Parse/Bind carried them.
struct EstimateRequest {
  std::string sql;                        // one statement, without "EXPLAIN"
  std::vector<uint32_t> param_type_oids;  // Parse: 0 or absent = let the server infer
  std::vector<int16_t> param_formats;     // Bind: none (all text), one (for all), or one each
  std::vector<std::optional<std::string>> params;  // Bind values; nullopt = NULL
};

// The estimate in the text of `EXPLAIN (FORMAT JSON)`: [0].Plan["Plan Rows"] — or, when the
// top node is a ModifyTable (INSERT, UPDATE, DELETE, MERGE; it reports 0 rows unless there
// is RETURNING), the "Plan Rows" of its input, the rows it would change. Data-modifying
// CTEs under another top node are not looked at. Clamped to INT64_MAX. Read with the strict
// streaming tokenizer (codec/json) after PruneJsonDepth(json, 5), building no tree (it was
// protobuf's JSON parser: a fifth of interlockd's CPU in pgbench's TPC-B-like run). Errors:
// RESOURCE_EXHAUSTED when `json` is larger than kMaxExplainBytes; INTERNAL when it is not
// that shape.
absl::StatusOr<int64_t> PlanRowsFromExplainJson(absl::string_view json);

// Copies `json`, replacing every array or object nested deeper than `keep_depth` (the
// outermost container is depth 1) with null. Only the top of a plan matters here, and
// the tokenizer refuses nesting deeper than 128 levels (a plan ~60 nodes deep).
// Malformed input stays malformed (string-aware, never validates).
std::string PruneJsonDepth(absl::string_view json, int keep_depth);

// Rows of a catalog query, in text format; nullopt = NULL.
using QueryRows = std::vector<std::vector<std::optional<std::string>>>;

class RowEstimator {
 public:
  using DoneFn = std::function<void(absl::StatusOr<int64_t> rows)>;
  using RowsFn = std::function<void(absl::StatusOr<QueryRows> rows)>;

  // Checks the options (INVALID_ARGUMENT: unknown sslmode, a TLS-only sslmode without
  // `tls`, no user, a non-positive timeout, a NUL in user or database) and starts the
  // worker thread; connects nothing yet. `loop` must outlive the estimator and have a
  // thread-safe clock (RealClock): the worker reads it for deadlines.
  static absl::StatusOr<std::unique_ptr<RowEstimator>> Create(RowEstimatorOptions options,
                                                              net::EventLoop* loop);
  ~RowEstimator();
  RowEstimator(const RowEstimator&) = delete;
  RowEstimator& operator=(const RowEstimator&) = delete;

  // Queues `req`. `done` is invoked exactly once, on the loop thread, from a later loop
  // iteration (never from inside Estimate), with the planner's estimate (>= 0, clamped to
  // INT64_MAX) or an error listed above — unless the estimator is destroyed first.
  void Estimate(EstimateRequest req, DoneFn done);

  // Runs `req.sql` itself (no EXPLAIN) on the same read-only connection and returns its
  // rows in text format — for catalog lookups (the masking work resolves result columns
  // to schema.table.column this way). Same threading, errors and limits as Estimate: the
  // rows together may hold at most kMaxExplainBytes.
  void Query(EstimateRequest req, RowsFn done);

 private:
  struct Pending {
    EstimateRequest req;
    DoneFn done;      // Estimate
    RowsFn rows_done;  // Query (then `done` is empty)
  };
  class Connection;

  RowEstimator(RowEstimatorOptions options, net::EventLoop* loop, UniqueFd stop_fd);
  void WorkerMain();
  // One server answer (up to its ReadyForQuery) as it arrives.
  struct Answer {
    QueryRows rows;
    size_t row_bytes = 0;
    std::optional<codec::pg::ErrorResponse> error;
    bool oversized = false;
  };
  // Requests the worker sends in one write when they are waiting together (pipelined,
  // each with its own Sync, answered in order).
  static constexpr size_t kMaxBatch = 16;
  static constexpr size_t kMaxBatchBytes = 1 << 20;
  // The request's messages (`explain`: the statement prefixed with EXPLAIN (FORMAT JSON)),
  // or INVALID_ARGUMENT when it cannot be sent.
  absl::StatusOr<std::string> Wire(const EstimateRequest& req, bool explain) const;
  // Reads one answer; a non-OK status is a transport failure (the connection is unusable).
  absl::Status ReadAnswer(absl::Duration deadline, Answer* a);
  absl::StatusOr<QueryRows> Outcome(Answer& a) const;
  // Runs `batch` on the worker thread, one result per request in order; `connect_error` is
  // set when no connection could be opened.
  std::vector<absl::StatusOr<QueryRows>> RunBatch(const std::vector<Pending>& batch, absl::Status* connect_error);
  absl::StatusOr<std::unique_ptr<Connection>> Connect();
  void Deliver(Pending& p, const absl::StatusOr<QueryRows>& rows);

  const RowEstimatorOptions options_;
  net::EventLoop* const loop_;
  // False from the start of the destructor: posted results check it before calling done.
  const std::shared_ptr<std::atomic<bool>> alive_;
  UniqueFd stop_fd_;  // eventfd, made readable by the destructor to interrupt poll(2)

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  bool stopping_ = false;      // guarded by mu_

  std::unique_ptr<Connection> conn_;  // worker thread only
  std::thread worker_;                // last: started after everything above exists
};

}  // namespace interlock::proxy::pg
