#include "userspace/approval/postgres_store.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "userspace/approval/store_rows.h"
#include "userspace/common/log.h"
#include "userspace/common/status_macros.h"

namespace interlock::approval {
namespace {

constexpr absl::string_view kPrefix = "approval store (postgres): ";

// Schema migrations: kMigrations[i] takes schema_version i to i + 1. Append only; a shipped
// migration is never edited. The proto column is the source of truth; every other column
// is derived from it in one place (RequestColumns / GrantColumns below). `seq` orders rows
// inserted in the same microsecond, as SQLite's rowid does.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE interlock_approval_requests (
  id text PRIMARY KEY,
  state integer NOT NULL,
  created_us bigint NOT NULL,
  deadline_us bigint NOT NULL,
  host text NOT NULL,
  session_id text NOT NULL,
  workload text NOT NULL,
  resource text NOT NULL,
  fingerprint text NOT NULL,
  window_until_us bigint NOT NULL,
  seq bigserial NOT NULL,
  proto bytea NOT NULL
);
CREATE INDEX interlock_requests_by_created ON interlock_approval_requests (created_us, seq);
CREATE INDEX interlock_requests_by_state ON interlock_approval_requests (state, created_us);
CREATE INDEX interlock_requests_by_host ON interlock_approval_requests (host, state);
CREATE INDEX interlock_requests_by_window
  ON interlock_approval_requests (workload, resource, fingerprint, window_until_us);
CREATE TABLE interlock_grants (
  id text PRIMARY KEY,
  workload text NOT NULL,
  resource text NOT NULL,
  created_us bigint NOT NULL,
  expires_us bigint NOT NULL,
  revoked_us bigint NOT NULL,
  seq bigserial NOT NULL,
  proto bytea NOT NULL
);
CREATE INDEX interlock_grants_by_created ON interlock_grants (created_us, seq);
CREATE INDEX interlock_grants_by_subject ON interlock_grants (workload, resource, expires_us);
)sql",
};
static_assert(std::size(kMigrations) == PostgresApprovalStore::kSchemaVersion, "one migration per schema version");

// Serialises schema creation between instances starting at once (any constant).
constexpr const char* kMigrationLock = "7160428831209157";

// The most specific canonical code for a SQLSTATE.
absl::StatusCode CodeFor(absl::string_view sqlstate) {
  if (sqlstate == "23505") return absl::StatusCode::kAlreadyExists;  // unique_violation
  if (absl::StartsWith(sqlstate, "08") || absl::StartsWith(sqlstate, "57P") || sqlstate == "53300") {
    return absl::StatusCode::kUnavailable;  // connection exceptions, shutdown, too many connections
  }
  if (absl::StartsWith(sqlstate, "22")) return absl::StatusCode::kInvalidArgument;  // data exception
  if (absl::StartsWith(sqlstate, "28") || sqlstate == "42501") return absl::StatusCode::kPermissionDenied;
  if (absl::StartsWith(sqlstate, "53")) return absl::StatusCode::kResourceExhausted;
  if (absl::StartsWith(sqlstate, "40")) return absl::StatusCode::kAborted;  // serialization, deadlock
  return absl::StatusCode::kInternal;
}

// libpq's messages end with a newline (and sometimes hold several lines).
std::string OneLine(absl::string_view message) {
  std::string out(absl::StripAsciiWhitespace(message));
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

// Every way of not reaching the store reads the same to an operator.
absl::Status Unavailable(absl::string_view why) {
  return absl::UnavailableError(absl::StrCat(kPrefix, "unavailable: ", why));
}

bool IsLocalHost(absl::string_view host) {
  if (host.empty() || absl::StartsWith(host, "/") || absl::StartsWith(host, "@")) return true;  // unix socket
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "::1") return true;
  in_addr v4;
  std::string h(host);
  return ::inet_pton(AF_INET, h.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

}  // namespace

absl::StatusOr<std::string> CheckStoreUrl(absl::string_view url) {
  std::string u(url);
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(u.c_str(), &err);
  if (options == nullptr) {
    std::string why = err != nullptr ? OneLine(err) : "out of memory";
    PQfreemem(err);
    return absl::InvalidArgumentError(absl::StrCat("approvals.store: not a PostgreSQL URL: ", why));
  }
  std::string host, hostaddr, sslmode;
  bool has_password = false;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    absl::string_view k = o->keyword;
    if (k == "host") host = o->val;
    if (k == "hostaddr") hostaddr = o->val;
    if (k == "sslmode") sslmode = o->val;
    if (k == "password" && o->val[0] != '\0') has_password = true;
  }
  PQconninfoFree(options);
  if (has_password) {
    return absl::InvalidArgumentError(
        "approvals.store: the URL carries a password; put it in approvals.store_password_ref");
  }
  // Every host of a multi-host URL must be local for a local exception.
  bool local = true;
  for (absl::string_view list : {absl::string_view(host), absl::string_view(hostaddr)}) {
    size_t start = 0;
    while (start <= list.size()) {
      size_t comma = list.find(',', start);
      absl::string_view h = list.substr(start, comma == absl::string_view::npos ? list.npos : comma - start);
      if (!(h.empty() && list.empty()) && !IsLocalHost(h)) local = false;
      if (comma == absl::string_view::npos) break;
      start = comma + 1;
    }
  }
  if (sslmode.empty()) return std::string(local ? "" : "verify-full");
  if (sslmode != "verify-full" && !local) {
    return absl::FailedPreconditionError(
        absl::StrCat("approvals.store: sslmode=", sslmode,
                     " does not verify the server, and the store decides what runs on every host that shares it; use "
                     "sslmode=verify-full (with sslrootcert=...), or a server on loopback or a unix socket"));
  }
  return std::string();
}

// A PGresult, cleared on destruction.
class PostgresApprovalStore::Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Result& operator=(Result&&) = delete;
  ~Result() { PQclear(r_); }
  int rows() const { return PQntuples(r_); }
  absl::string_view Bytes(int row, int col) const {
    return absl::string_view(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
  }
  // A binary int4 or int8.
  int64_t Int(int row, int col) const {
    absl::string_view b = Bytes(row, col);
    uint64_t v = 0;
    for (unsigned char c : b) v = (v << 8) | c;
    if (b.size() == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
    return static_cast<int64_t>(v);
  }

 private:
  PGresult* r_;
};

void PostgresApprovalStore::ConnCloser::operator()(pg_conn* conn) const { PQfinish(conn); }

PostgresApprovalStore::PostgresApprovalStore(PostgresStoreOptions options, std::string default_sslmode,
                                             net::EventLoop* loop)
    : options_(std::move(options)), default_sslmode_(std::move(default_sslmode)), loop_(loop) {}

PostgresApprovalStore::~PostgresApprovalStore() {
  *alive_ = false;
  if (reconnect_timer_ != 0 && loop_ != nullptr) loop_->Cancel(reconnect_timer_);
  if (watched_fd_ >= 0 && loop_ != nullptr) loop_->Remove(watched_fd_);
}

absl::StatusOr<std::unique_ptr<PostgresApprovalStore>> PostgresApprovalStore::Open(PostgresStoreOptions options,
                                                                                   net::EventLoop* loop) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string sslmode, CheckStoreUrl(options.url));
  std::unique_ptr<PostgresApprovalStore> s(new PostgresApprovalStore(std::move(options), std::move(sslmode), loop));
  absl::Status st = s->Connect();
  if (absl::IsFailedPrecondition(st) || absl::IsInvalidArgument(st)) return st;  // a newer schema, a bad URL
  if (!st.ok()) {
    INTERLOCK_LOG(kWarning, "approvals: store unavailable, holds fail closed until it answers: %s", st.message());
    s->Drop(st);
  }
  return s;
}

absl::Duration PostgresApprovalStore::Now() const {
  return loop_ != nullptr ? loop_->clock().Monotonic() : absl::Now() - absl::UnixEpoch();
}

std::string PostgresApprovalStore::Describe() const {
  if (conn_ == nullptr) return absl::StrCat("unavailable: ", last_error_.empty() ? "not connected" : last_error_);
  return absl::StrCat("connected to ", PQhost(conn_.get()), ":", PQport(conn_.get()), "/", PQdb(conn_.get()));
}

absl::Status PostgresApprovalStore::Ready() {
  if (conn_ != nullptr) return absl::OkStatus();
  if (Now() < retry_at_) {
    return Unavailable(absl::StrCat(last_error_, " (retrying)"));
  }
  absl::Status st = Connect();
  if (!st.ok()) Drop(st);
  return st;
}

absl::Status PostgresApprovalStore::Connect() {
  const absl::Duration deadline = Now() + options_.timeout;
  std::vector<const char*> keys = {"dbname", "application_name", "connect_timeout"};
  std::string timeout_s =
      absl::StrCat(std::max<int64_t>(2, absl::ToInt64Seconds(absl::Ceil(options_.timeout, absl::Seconds(1)))));
  std::vector<const char*> values = {options_.url.c_str(), "interlockd", timeout_s.c_str()};
  if (!options_.password.empty()) {
    keys.push_back("password");
    values.push_back(options_.password.c_str());
  }
  if (!default_sslmode_.empty()) {
    keys.push_back("sslmode");
    values.push_back(default_sslmode_.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  std::unique_ptr<pg_conn, ConnCloser> conn(PQconnectStartParams(keys.data(), values.data(), /*expand_dbname=*/1));
  if (conn == nullptr) return absl::ResourceExhaustedError(absl::StrCat(kPrefix, "out of memory"));
  if (PQstatus(conn.get()) == CONNECTION_BAD) {
    return Unavailable(OneLine(PQerrorMessage(conn.get())));
  }
  PostgresPollingStatusType poll_status = PGRES_POLLING_WRITING;
  while (poll_status != PGRES_POLLING_OK) {
    if (poll_status == PGRES_POLLING_FAILED) {
      return Unavailable(OneLine(PQerrorMessage(conn.get())));
    }
    absl::Duration left = deadline - Now();
    if (left <= absl::ZeroDuration()) {
      return Unavailable(absl::StrCat("connect timed out after ", absl::FormatDuration(options_.timeout)));
    }
    pollfd p{PQsocket(conn.get()), static_cast<short>(poll_status == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left))));
    if (n < 0 && errno != EINTR) return Unavailable(absl::StrCat("poll: ", std::strerror(errno)));
    if (n > 0) poll_status = PQconnectPoll(conn.get());
  }
  if (PQsetnonblocking(conn.get(), 1) != 0) {
    return Unavailable(OneLine(PQerrorMessage(conn.get())));
  }
  conn_ = std::move(conn);
  backend_pid_ = PQbackendPID(conn_.get());
  absl::Status st = Migrate();
  if (st.ok()) st = Exec(absl::StrCat("LISTEN ", kChannel).c_str(), {}).status();
  if (!st.ok()) {
    conn_.reset();
    return st;
  }
  if (loop_ != nullptr) {
    watched_fd_ = PQsocket(conn_.get());
    absl::Status added = loop_->Add(watched_fd_, EPOLLIN, this);
    if (!added.ok()) {
      watched_fd_ = -1;
      conn_.reset();
      return Unavailable(absl::StrCat("watch: ", added.message()));
    }
  }
  last_error_.clear();
  if (connected_once_) {
    queued_.push_back({StoreChange::Kind::kReconnected, ""});
    Deliver();
  }
  connected_once_ = true;
  INTERLOCK_LOG(kInfo, "approvals: %s", Describe());
  return absl::OkStatus();
}

absl::Status PostgresApprovalStore::Migrate() {
  INTERLOCK_RETURN_IF_ERROR(Exec("BEGIN", {}).status());
  auto rollback = [this](absl::Status st) {
    if (conn_ != nullptr) (void)Exec("ROLLBACK", {});
    return st;
  };
  absl::Status st = Exec(absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLock, ")").c_str(), {}).status();
  if (st.ok()) {
    st = Exec(
             "CREATE TABLE IF NOT EXISTS interlock_store_meta ("
             "singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton), schema_version integer NOT NULL)",
             {})
             .status();
  }
  if (!st.ok()) return rollback(st);
  auto version = Exec("SELECT schema_version FROM interlock_store_meta", {});
  if (!version.ok()) return rollback(version.status());
  int64_t v = version->rows() == 0 ? 0 : version->Int(0, 0);
  if (v > kSchemaVersion) {
    return rollback(absl::FailedPreconditionError(
        absl::StrCat(kPrefix, "schema version ", v, " is newer than this interlockd's (", kSchemaVersion, ")")));
  }
  for (; v < kSchemaVersion; ++v) {
    st = Exec(kMigrations[v], {}, /*script=*/true).status();
    if (!st.ok()) return rollback(st);
  }
  st = Exec(
           "INSERT INTO interlock_store_meta (schema_version) VALUES ($1) "
           "ON CONFLICT (singleton) DO UPDATE SET schema_version = EXCLUDED.schema_version",
           {{absl::StrCat(kSchemaVersion)}})
           .status();
  if (!st.ok()) return rollback(st);
  return Exec("COMMIT", {}).status();
}

void PostgresApprovalStore::Drop(const absl::Status& why) {
  if (watched_fd_ >= 0 && loop_ != nullptr) loop_->Remove(watched_fd_);  // before libpq closes it
  watched_fd_ = -1;
  conn_.reset();
  absl::string_view message = why.message();
  absl::ConsumePrefix(&message, kPrefix);
  absl::ConsumePrefix(&message, "unavailable: ");
  last_error_ = std::string(message);
  retry_at_ = Now() + options_.retry_after;
  ScheduleReconnect();
}

void PostgresApprovalStore::ScheduleReconnect() {
  if (loop_ == nullptr || reconnect_timer_ != 0) return;
  reconnect_timer_ = loop_->RunAfter(options_.retry_after, [this] {
    reconnect_timer_ = 0;
    if (conn_ != nullptr) return;
    absl::Status st = Connect();
    if (!st.ok()) Drop(st);
  });
}

absl::StatusOr<PostgresApprovalStore::Result> PostgresApprovalStore::Exec(const char* sql,
                                                                          const std::vector<Param>& params,
                                                                          bool script) {
  if (conn_ == nullptr) return Unavailable("not connected");
  PGconn* c = conn_.get();
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
  for (const Param& p : params) {
    values.push_back(p.value.data());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  // A connection-level failure drops the connection: the next call reconnects (or waits).
  auto lost = [this, c](absl::string_view what) {
    absl::Status st = Unavailable(absl::StrCat(what, ": ", OneLine(PQerrorMessage(c))));
    Drop(st);
    return st;
  };
  // A script (several statements, no parameters, text results) goes as a simple Query.
  int sent = script ? PQsendQuery(c, sql)
                    : PQsendQueryParams(c, sql, static_cast<int>(params.size()), nullptr, values.data(), lengths.data(),
                                        formats.data(), /*resultFormat=*/1);
  if (sent != 1) return lost("send");
  const absl::Duration deadline = Now() + options_.timeout;
  // Flush what libpq buffered, then read until the whole result is in.
  while (true) {
    int flushed = PQflush(c);
    if (flushed < 0) return lost("send");
    bool busy = flushed == 1;
    if (!busy) {
      if (PQconsumeInput(c) != 1) return lost("receive");
      if (!PQisBusy(c)) break;
    }
    absl::Duration left = deadline - Now();
    if (left <= absl::ZeroDuration()) {
      absl::Status st = Unavailable(absl::StrCat("no answer within ", absl::FormatDuration(options_.timeout)));
      Drop(st);
      return st;
    }
    pollfd p{PQsocket(c), static_cast<short>(POLLIN | (busy ? POLLOUT : 0)), 0};
    int n = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left))));
    if (n < 0 && errno != EINTR) return lost("poll");
  }
  PGresult* last = nullptr;
  while (PGresult* r = PQgetResult(c)) {
    PQclear(last);
    last = r;
  }
  CollectNotifications();
  Result result(last);
  if (last == nullptr) return lost("no result");
  ExecStatusType status = PQresultStatus(last);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
  const char* sqlstate = PQresultErrorField(last, PG_DIAG_SQLSTATE);
  absl::string_view state = sqlstate != nullptr ? sqlstate : "";
  // A connection the server ended (a shutdown, a crash) is unavailable, whatever it said.
  const bool gone = PQstatus(c) == CONNECTION_BAD;
  absl::Status st = gone || CodeFor(state) == absl::StatusCode::kUnavailable
                        ? Unavailable(OneLine(PQresultErrorMessage(last)))
                        : absl::Status(CodeFor(state), absl::StrCat(kPrefix, OneLine(PQresultErrorMessage(last))));
  if (gone || absl::IsUnavailable(st)) Drop(st);
  return st;
}

void PostgresApprovalStore::CollectNotifications() {
  if (conn_ == nullptr) return;
  bool any = false;
  while (PGnotify* n = PQnotifies(conn_.get())) {
    absl::string_view payload = n->extra != nullptr ? n->extra : "";
    if (n->be_pid != backend_pid_) {
      StoreChange change;
      if (absl::ConsumePrefix(&payload, "request ")) {
        change.kind = StoreChange::Kind::kRequest;
      } else if (absl::ConsumePrefix(&payload, "grant ")) {
        change.kind = StoreChange::Kind::kGrant;
      } else {
        PQfreemem(n);
        continue;  // not ours to read
      }
      change.id = std::string(payload);
      queued_.push_back(std::move(change));
      any = true;
    }
    PQfreemem(n);
  }
  if (any) Deliver();
}

// Changes reach the owner on a fresh loop turn, never inside one of its own store calls.
void PostgresApprovalStore::Deliver() {
  if (loop_ == nullptr || delivery_scheduled_ || queued_.empty()) return;
  delivery_scheduled_ = true;
  loop_->Defer([this, alive = alive_] {
    if (!*alive) return;
    delivery_scheduled_ = false;
    std::vector<StoreChange> changes = std::move(queued_);
    queued_.clear();
    for (const StoreChange& c : changes) {
      if (on_change_) on_change_(c);
    }
  });
}

void PostgresApprovalStore::OnIo(uint32_t events) {
  (void)events;
  if (conn_ == nullptr) return;
  if (PQconsumeInput(conn_.get()) != 1) {
    Drop(Unavailable(OneLine(PQerrorMessage(conn_.get()))));
    return;
  }
  CollectNotifications();
}

// ---- Requests ----

namespace {

// The one place request columns are derived from the proto: $1 id, $2 state, $3
// created_us, $4 deadline_us, $5 host, $6 session_id, $7 workload, $8 resource,
// $9 fingerprint, $10 window_until_us, $11 proto.
absl::StatusOr<std::vector<std::string>> RequestColumns(const v1::ApprovalRequest& r) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string blob, rows::Serialize(r, kPrefix, "request"));
  return std::vector<std::string>{r.id(),
                                  absl::StrCat(r.state()),
                                  absl::StrCat(r.created_us()),
                                  absl::StrCat(r.deadline_us()),
                                  r.host(),
                                  r.session_id(),
                                  r.requester().workload(),
                                  r.resource(),
                                  r.fingerprint(),
                                  absl::StrCat(r.window_until_us()),
                                  std::move(blob)};
}

absl::StatusOr<std::vector<std::string>> GrantColumns(const v1::Grant& g) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string blob, rows::Serialize(g, kPrefix, "grant"));
  return std::vector<std::string>{g.id(),
                                  g.workload(),
                                  g.resource(),
                                  absl::StrCat(g.created_us()),
                                  absl::StrCat(g.expires_us()),
                                  absl::StrCat(g.revoked_us()),
                                  std::move(blob)};
}

}  // namespace

absl::Status PostgresApprovalStore::InsertRequest(const v1::ApprovalRequest& request) {
  if (request.id().empty()) return absl::InvalidArgumentError(absl::StrCat(kPrefix, "request without an id"));
  INTERLOCK_ASSIGN_OR_RETURN(std::vector<std::string> cols, RequestColumns(request));
  INTERLOCK_RETURN_IF_ERROR(Ready());
  std::vector<Param> params;
  for (size_t i = 0; i < cols.size(); ++i) params.push_back({std::move(cols[i]), i + 1 == cols.size()});
  auto r = Exec(
      "INSERT INTO interlock_approval_requests (id, state, created_us, deadline_us, host, session_id, workload, "
      "resource, fingerprint, window_until_us, proto) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      params);
  if (absl::IsAlreadyExists(r.status())) {
    return absl::AlreadyExistsError(absl::StrCat(kPrefix, "request ", request.id(), " already exists"));
  }
  return r.status();
}

absl::StatusOr<v1::ApprovalRequest> PostgresApprovalStore::GetRequest(absl::string_view id) {
  INTERLOCK_RETURN_IF_ERROR(Ready());
  INTERLOCK_ASSIGN_OR_RETURN(Result r,
                             Exec("SELECT proto FROM interlock_approval_requests WHERE id = $1", {{std::string(id)}}));
  if (r.rows() == 0) return absl::NotFoundError(absl::StrCat(kPrefix, "no request ", id));
  return rows::Parse<v1::ApprovalRequest>(r.Bytes(0, 0), kPrefix, absl::StrCat("request ", id));
}

absl::StatusOr<v1::ApprovalRequest> PostgresApprovalStore::Resolve(absl::string_view id, v1::ApprovalState state,
                                                                   const v1::Approver& approver,
                                                                   absl::string_view reason, int64_t decided_us,
                                                                   int64_t window_until_us) {
  INTERLOCK_RETURN_IF_ERROR(rows::CheckDecision(kPrefix, id, state, window_until_us));
  INTERLOCK_ASSIGN_OR_RETURN(v1::ApprovalRequest r, GetRequest(id));
  if (r.state() != v1::APPROVAL_STATE_PENDING) {
    return absl::FailedPreconditionError(
        absl::StrCat(kPrefix, "request ", id, ": already ", rows::StateWord(r.state())));
  }
  r.set_state(state);
  *r.mutable_approver() = approver;
  r.set_decision_reason(std::string(reason));
  r.set_decided_us(decided_us);
  r.set_window_until_us(window_until_us);
  INTERLOCK_ASSIGN_OR_RETURN(std::vector<std::string> cols, RequestColumns(r));
  // Only a row still pending is decided (whoever else is deciding it right now), and the
  // decision is announced in the same statement, so at its commit.
  INTERLOCK_ASSIGN_OR_RETURN(
      Result done,
      Exec("WITH d AS (UPDATE interlock_approval_requests SET state = $2, window_until_us = $3, proto = $4 "
           "WHERE id = $1 AND state = $5 RETURNING id) "
           "SELECT pg_notify('interlock_approvals', 'request ' || id) FROM d",
           {{r.id()},
            {cols[1]},
            {cols[9]},
            {cols[10], true},
            {absl::StrCat(static_cast<int>(v1::APPROVAL_STATE_PENDING))}}));
  if (done.rows() == 0) {
    INTERLOCK_ASSIGN_OR_RETURN(v1::ApprovalRequest now, GetRequest(id));
    return absl::FailedPreconditionError(
        absl::StrCat(kPrefix, "request ", id, ": already ", rows::StateWord(now.state())));
  }
  return r;
}

absl::StatusOr<std::vector<v1::ApprovalRequest>> PostgresApprovalStore::ListRequests(bool pending_only, int limit) {
  if (limit <= 0) return absl::InvalidArgumentError(absl::StrCat(kPrefix, "list limit ", limit, " <= 0"));
  INTERLOCK_RETURN_IF_ERROR(Ready());
  INTERLOCK_ASSIGN_OR_RETURN(
      Result r, pending_only
                    ? Exec("SELECT proto FROM interlock_approval_requests WHERE state = $1 "
                           "ORDER BY created_us DESC, seq DESC LIMIT $2",
                           {{absl::StrCat(static_cast<int>(v1::APPROVAL_STATE_PENDING))}, {absl::StrCat(limit)}})
                    : Exec("SELECT proto FROM interlock_approval_requests ORDER BY created_us DESC, seq DESC LIMIT $1",
                           {{absl::StrCat(limit)}}));
  std::vector<v1::ApprovalRequest> out;
  for (int i = 0; i < r.rows(); ++i) {
    INTERLOCK_ASSIGN_OR_RETURN(v1::ApprovalRequest m,
                               rows::Parse<v1::ApprovalRequest>(r.Bytes(i, 0), kPrefix, "list requests"));
    out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<bool> PostgresApprovalStore::WindowAllows(absl::string_view workload, absl::string_view resource,
                                                         absl::string_view fingerprint, int64_t now_us) {
  if (workload.empty() || fingerprint.empty()) return false;
  INTERLOCK_RETURN_IF_ERROR(Ready());
  INTERLOCK_ASSIGN_OR_RETURN(Result r,
                             Exec("SELECT 1 FROM interlock_approval_requests WHERE workload = $1 AND resource = $2 "
                                  "AND fingerprint = $3 AND state = $4 AND window_until_us > $5 LIMIT 1",
                                  {{std::string(workload)},
                                   {std::string(resource)},
                                   {std::string(fingerprint)},
                                   {absl::StrCat(static_cast<int>(v1::APPROVAL_STATE_APPROVED))},
                                   {absl::StrCat(now_us)}}));
  return r.rows() > 0;
}

// ---- Grants ----

absl::Status PostgresApprovalStore::InsertGrant(const v1::Grant& grant) {
  if (grant.id().empty()) return absl::InvalidArgumentError(absl::StrCat(kPrefix, "grant without an id"));
  INTERLOCK_ASSIGN_OR_RETURN(std::vector<std::string> cols, GrantColumns(grant));
  INTERLOCK_RETURN_IF_ERROR(Ready());
  std::vector<Param> params;
  for (size_t i = 0; i < cols.size(); ++i) params.push_back({std::move(cols[i]), i + 1 == cols.size()});
  auto r = Exec(
      "WITH g AS (INSERT INTO interlock_grants (id, workload, resource, created_us, expires_us, revoked_us, proto) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id) "
      "SELECT pg_notify('interlock_approvals', 'grant ' || id) FROM g",
      params);
  if (absl::IsAlreadyExists(r.status())) {
    return absl::AlreadyExistsError(absl::StrCat(kPrefix, "grant ", grant.id(), " already exists"));
  }
  return r.status();
}

absl::StatusOr<v1::Grant> PostgresApprovalStore::GetGrant(absl::string_view id) {
  INTERLOCK_RETURN_IF_ERROR(Ready());
  INTERLOCK_ASSIGN_OR_RETURN(Result r, Exec("SELECT proto FROM interlock_grants WHERE id = $1", {{std::string(id)}}));
  if (r.rows() == 0) return absl::NotFoundError(absl::StrCat(kPrefix, "no grant ", id));
  return rows::Parse<v1::Grant>(r.Bytes(0, 0), kPrefix, absl::StrCat("grant ", id));
}

absl::StatusOr<std::vector<v1::Grant>> PostgresApprovalStore::ListGrants(bool active_only, int64_t now_us) {
  INTERLOCK_RETURN_IF_ERROR(Ready());
  INTERLOCK_ASSIGN_OR_RETURN(
      Result r, active_only ? Exec("SELECT proto FROM interlock_grants WHERE revoked_us = 0 AND expires_us > $1 "
                                   "ORDER BY created_us DESC, seq DESC",
                                   {{absl::StrCat(now_us)}})
                            : Exec("SELECT proto FROM interlock_grants ORDER BY created_us DESC, seq DESC", {}));
  std::vector<v1::Grant> out;
  for (int i = 0; i < r.rows(); ++i) {
    INTERLOCK_ASSIGN_OR_RETURN(v1::Grant g, rows::Parse<v1::Grant>(r.Bytes(i, 0), kPrefix, "list grants"));
    out.push_back(std::move(g));
  }
  return out;
}

absl::StatusOr<v1::Grant> PostgresApprovalStore::Revoke(absl::string_view id, const v1::Approver& by, int64_t now_us) {
  INTERLOCK_ASSIGN_OR_RETURN(v1::Grant g, GetGrant(id));
  if (g.revoked_us() != 0)
    return absl::FailedPreconditionError(absl::StrCat(kPrefix, "grant ", id, ": already revoked"));
  if (g.expires_us() <= now_us) {
    return absl::FailedPreconditionError(absl::StrCat(kPrefix, "grant ", id, ": already expired"));
  }
  g.set_revoked_us(now_us);
  *g.mutable_revoked_by() = by;
  INTERLOCK_ASSIGN_OR_RETURN(std::vector<std::string> cols, GrantColumns(g));
  INTERLOCK_ASSIGN_OR_RETURN(Result done, Exec("WITH r AS (UPDATE interlock_grants SET revoked_us = $2, proto = $3 "
                                               "WHERE id = $1 AND revoked_us = 0 RETURNING id) "
                                               "SELECT pg_notify('interlock_approvals', 'grant ' || id) FROM r",
                                               {{g.id()}, {cols[5]}, {cols[6], true}}));
  if (done.rows() == 0) return absl::FailedPreconditionError(absl::StrCat(kPrefix, "grant ", id, ": already revoked"));
  return g;
}

absl::StatusOr<std::optional<v1::Grant>> PostgresApprovalStore::ActiveGrant(absl::string_view workload,
                                                                            absl::string_view resource,
                                                                            int64_t now_us) {
  INTERLOCK_RETURN_IF_ERROR(Ready());
  INTERLOCK_ASSIGN_OR_RETURN(Result r,
                             Exec("SELECT proto FROM interlock_grants WHERE workload = $1 AND resource = $2 "
                                  "AND revoked_us = 0 AND expires_us > $3 ORDER BY expires_us DESC, seq DESC LIMIT 1",
                                  {{std::string(workload)}, {std::string(resource)}, {absl::StrCat(now_us)}}));
  if (r.rows() == 0) return std::optional<v1::Grant>();
  INTERLOCK_ASSIGN_OR_RETURN(v1::Grant g, rows::Parse<v1::Grant>(r.Bytes(0, 0), kPrefix, "active grant"));
  return std::optional<v1::Grant>(std::move(g));
}

}  // namespace interlock::approval
