#include "userspace/approval/sqlite_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "userspace/common/errno_status.h"
#include "userspace/approval/store_rows.h"
#include "userspace/common/status_macros.h"
#include "userspace/common/unique_fd.h"

namespace interlock::approval {
namespace {

constexpr absl::string_view kPrefix = "approval store: ";

// Schema migrations: kMigrations[i] takes user_version i to i + 1 and ends by setting
// it. Append only; a shipped migration is never edited. The proto blob is the source of
// truth; every other column is derived from it by WriteRequest/WriteGrant below.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE requests (
  id TEXT PRIMARY KEY NOT NULL,
  state INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  deadline_us INTEGER NOT NULL,
  session_id TEXT NOT NULL,
  workload TEXT NOT NULL,
  resource TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  window_until_us INTEGER NOT NULL,
  proto BLOB NOT NULL
) STRICT;
CREATE INDEX requests_by_created ON requests(created_us);
CREATE INDEX requests_by_state ON requests(state, created_us);
CREATE INDEX requests_by_deadline ON requests(state, deadline_us);
CREATE INDEX requests_by_session ON requests(session_id);
CREATE INDEX requests_by_window ON requests(workload, resource, fingerprint, window_until_us);
CREATE TABLE grants (
  id TEXT PRIMARY KEY NOT NULL,
  workload TEXT NOT NULL,
  resource TEXT NOT NULL,
  created_us INTEGER NOT NULL,
  expires_us INTEGER NOT NULL,
  revoked_us INTEGER NOT NULL,
  proto BLOB NOT NULL
) STRICT;
CREATE INDEX grants_by_created ON grants(created_us);
CREATE INDEX grants_by_subject ON grants(workload, resource, expires_us);
PRAGMA user_version = 1;
)sql",
};
static_assert(std::size(kMigrations) == SqliteApprovalStore::kSchemaVersion,
              "one migration per schema version");

// The most specific canonical code for a SQLite result code.
absl::StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
      return absl::StatusCode::kUnavailable;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
    case SQLITE_CANTOPEN:
      return absl::StatusCode::kPermissionDenied;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      return absl::StatusCode::kInvalidArgument;
    case SQLITE_CONSTRAINT:
      return (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
                 ? absl::StatusCode::kAlreadyExists
                 : absl::StatusCode::kFailedPrecondition;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view context) {
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return absl::Status(CodeFor(rc), absl::StrCat(kPrefix, context, ": ", msg));
}

// One prepared statement; finalized on destruction. Bind errors are kept and reported
// by the next Step(), so call sites read as bind, bind, step.
class Statement {
 public:
  static absl::StatusOr<Statement> Prepare(sqlite3* db, const char* sql,
                                           absl::string_view context) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return SqliteError(db, rc, context);
    }
    return Statement(db, stmt, context);
  }
  Statement(Statement&& other) noexcept
      : db_(other.db_),
        stmt_(std::exchange(other.stmt_, nullptr)),
        context_(other.context_),
        bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  Statement(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // Parameters are 1-based, as in SQLite.
  void BindText(int index, absl::string_view text) {
    Keep(
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  void BindBlob(int index, absl::string_view bytes) {
    Keep(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
  }
  void BindInt(int index, int64_t value) { Keep(sqlite3_bind_int64(stmt_, index, value)); }

  // true: a row is ready; false: done.
  absl::StatusOr<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return SqliteError(db_, bind_rc_, context_);
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, context_);
  }
  // Steps a statement that returns no rows.
  absl::Status Run() {
    INTERLOCK_ASSIGN_OR_RETURN(bool row, Step());
    (void)row;
    return absl::OkStatus();
  }

  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  // Valid until the next Step().
  absl::string_view Bytes(int column) const {
    const void* data = sqlite3_column_blob(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr || size <= 0) return {};
    return absl::string_view(static_cast<const char*>(data), static_cast<size_t>(size));
  }

 private:
  Statement(sqlite3* db, sqlite3_stmt* stmt, absl::string_view context)
      : db_(db), stmt_(stmt), context_(context) {}
  void Keep(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  absl::string_view context_;  // a literal
  int bind_rc_ = SQLITE_OK;
};

// Runs fixed SQL text (no parameters): pragmas, migrations, BEGIN/COMMIT.
absl::Status Exec(sqlite3* db, const char* sql, absl::string_view context) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, context);
  return absl::OkStatus();
}

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed. IMMEDIATE
// takes the write lock up front, so a read-check-write sequence cannot interleave with
// another writer (interlock CLI tools open the same file).
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(sqlite3* db) {
    INTERLOCK_RETURN_IF_ERROR(Exec(db, "BEGIN IMMEDIATE", "begin"));
    return Transaction(db);
  }
  Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction() {
    if (db_ != nullptr) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  absl::Status Commit() {
    INTERLOCK_RETURN_IF_ERROR(Exec(db_, "COMMIT", "commit"));
    db_ = nullptr;
    return absl::OkStatus();
  }

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// The one place request columns are derived from the proto.
absl::Status WriteRequest(sqlite3* db, const v1::ApprovalRequest& r, bool insert) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string blob, rows::Serialize(r, kPrefix, "request"));
  const char* sql = insert
                        ? "INSERT INTO requests (id, state, created_us, deadline_us, session_id, "
                          "workload, resource, fingerprint, window_until_us, proto) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                        : "UPDATE requests SET state = ?2, created_us = ?3, deadline_us = ?4, "
                          "session_id = ?5, workload = ?6, resource = ?7, fingerprint = ?8, "
                          "window_until_us = ?9, proto = ?10 WHERE id = ?1";
  INTERLOCK_ASSIGN_OR_RETURN(
      Statement st, Statement::Prepare(db, sql, insert ? "insert request" : "update request"));
  st.BindText(1, r.id());
  st.BindInt(2, r.state());
  st.BindInt(3, r.created_us());
  st.BindInt(4, r.deadline_us());
  st.BindText(5, r.session_id());
  st.BindText(6, r.requester().workload());
  st.BindText(7, r.resource());
  st.BindText(8, r.fingerprint());
  st.BindInt(9, r.window_until_us());
  st.BindBlob(10, blob);
  return st.Run();
}

// The one place grant columns are derived from the proto.
absl::Status WriteGrant(sqlite3* db, const v1::Grant& g, bool insert) {
  INTERLOCK_ASSIGN_OR_RETURN(std::string blob, rows::Serialize(g, kPrefix, "grant"));
  const char* sql = insert ? "INSERT INTO grants (id, workload, resource, created_us, expires_us, "
                             "revoked_us, proto) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                           : "UPDATE grants SET workload = ?2, resource = ?3, created_us = ?4, "
                             "expires_us = ?5, revoked_us = ?6, proto = ?7 WHERE id = ?1";
  INTERLOCK_ASSIGN_OR_RETURN(Statement st,
                             Statement::Prepare(db, sql, insert ? "insert grant" : "update grant"));
  st.BindText(1, g.id());
  st.BindText(2, g.workload());
  st.BindText(3, g.resource());
  st.BindInt(4, g.created_us());
  st.BindInt(5, g.expires_us());
  st.BindInt(6, g.revoked_us());
  st.BindBlob(7, blob);
  return st.Run();
}

// Reads every row of `st` whose column 0 is a proto blob.
template <typename Message>
absl::StatusOr<std::vector<Message>> ReadAll(Statement& st, absl::string_view what) {
  std::vector<Message> out;
  while (true) {
    INTERLOCK_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    INTERLOCK_ASSIGN_OR_RETURN(Message m, rows::Parse<Message>(st.Bytes(0), kPrefix, what));
    out.push_back(std::move(m));
  }
  return out;
}

absl::StatusOr<v1::ApprovalRequest> ReadRequest(sqlite3* db, absl::string_view id) {
  INTERLOCK_ASSIGN_OR_RETURN(
      Statement st,
      Statement::Prepare(db, "SELECT proto FROM requests WHERE id = ?1", "get request"));
  st.BindText(1, id);
  INTERLOCK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return absl::NotFoundError(absl::StrCat(kPrefix, "no request ", id));
  return rows::Parse<v1::ApprovalRequest>(st.Bytes(0), kPrefix, absl::StrCat("request ", id));
}

absl::StatusOr<v1::Grant> ReadGrant(sqlite3* db, absl::string_view id) {
  INTERLOCK_ASSIGN_OR_RETURN(
      Statement st, Statement::Prepare(db, "SELECT proto FROM grants WHERE id = ?1", "get grant"));
  st.BindText(1, id);
  INTERLOCK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return absl::NotFoundError(absl::StrCat(kPrefix, "no grant ", id));
  return rows::Parse<v1::Grant>(st.Bytes(0), kPrefix, absl::StrCat("grant ", id));
}

absl::StatusOr<int64_t> UserVersion(sqlite3* db) {
  INTERLOCK_ASSIGN_OR_RETURN(Statement st,
                             Statement::Prepare(db, "PRAGMA user_version", "read schema version"));
  INTERLOCK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return absl::InternalError(absl::StrCat(kPrefix, "no schema version"));
  return st.Int(0);
}

// Creates or upgrades the schema. Each step re-reads the version inside its write
// transaction, so two processes opening a new file at once do not both migrate it.
absl::Status Migrate(sqlite3* db) {
  while (true) {
    INTERLOCK_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db));
    INTERLOCK_ASSIGN_OR_RETURN(int64_t version, UserVersion(db));
    if (version > SqliteApprovalStore::kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(kPrefix, "schema version ", version,
                                                        " is newer than this interlockd's (",
                                                        SqliteApprovalStore::kSchemaVersion, ")"));
    }
    if (version < 0) {
      return absl::DataLossError(absl::StrCat(kPrefix, "bad schema version ", version));
    }
    if (version == SqliteApprovalStore::kSchemaVersion) return txn.Commit();
    INTERLOCK_RETURN_IF_ERROR(
        Exec(db, kMigrations[version], absl::StrCat("migrate schema from version ", version)));
    INTERLOCK_RETURN_IF_ERROR(txn.Commit());
  }
}

// Creates `path` 0600 (or tightens an existing file to 0600) before SQLite opens it:
// SQLite would create it 0644, and it gives its -wal/-shm files the database's mode.
absl::Status PrepareFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return ErrnoStatus(errno, absl::StrCat(kPrefix, "open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat(kPrefix, "stat ", path));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(kPrefix, path, ": not a regular file"));
  }
  if ((st.st_mode & 07777) != 0600 && ::fchmod(fd.get(), 0600) != 0) {
    return ErrnoStatus(errno, absl::StrCat(kPrefix, "chmod 0600 ", path));
  }
  return absl::OkStatus();
}

}  // namespace

void SqliteApprovalStore::DbCloser::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

SqliteApprovalStore::~SqliteApprovalStore() = default;

absl::StatusOr<std::unique_ptr<SqliteApprovalStore>> SqliteApprovalStore::Open(const std::string& path) {
  INTERLOCK_RETURN_IF_ERROR(PrepareFile(path));
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, nullptr);
  DbPtr db(raw);  // sqlite3_open_v2 allocates a handle even when it fails
  if (rc != SQLITE_OK) return SqliteError(db.get(), rc, absl::StrCat("open ", path));
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  // Hardening: no writable_schema tricks or schema-defined functions from a tampered file.
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);

  // "approval store: <path>: <what failed>".
  auto annotate = [&path](const absl::Status& st) {
    absl::string_view message = st.message();
    absl::ConsumePrefix(&message, kPrefix);
    return absl::Status(st.code(), absl::StrCat(kPrefix, path, ": ", message));
  };
  // The first read of the file: a non-database fails here with DATA_LOSS.
  auto version = UserVersion(db.get());
  if (!version.ok()) return annotate(version.status());
  if (*version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(kPrefix, path, ": schema version ", *version,
                                                      " is newer than this interlockd's (",
                                                      kSchemaVersion, ")"));
  }
  {
    auto st = Statement::Prepare(db.get(), "PRAGMA journal_mode = WAL", "enable WAL");
    if (!st.ok()) return annotate(st.status());
    auto row = st->Step();
    if (!row.ok()) return annotate(row.status());
    if (!*row || st->Bytes(0) != "wal") {
      return absl::FailedPreconditionError(
          absl::StrCat(kPrefix, path, ": cannot switch to WAL journal mode"));
    }
  }
  // Decisions are rare and must survive a power cut once reported.
  absl::Status status = Exec(db.get(), "PRAGMA synchronous = FULL", "set synchronous");
  if (status.ok()) status = Migrate(db.get());
  if (!status.ok()) return annotate(status);
  return std::unique_ptr<SqliteApprovalStore>(new SqliteApprovalStore(path, std::move(db)));
}

absl::Status SqliteApprovalStore::InsertRequest(const v1::ApprovalRequest& request) {
  if (request.id().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "request without an id"));
  }
  absl::Status st = WriteRequest(db_.get(), request, /*insert=*/true);
  if (absl::IsAlreadyExists(st)) {
    return absl::AlreadyExistsError(
        absl::StrCat(kPrefix, "request ", request.id(), " already exists"));
  }
  return st;
}

absl::StatusOr<v1::ApprovalRequest> SqliteApprovalStore::GetRequest(absl::string_view id) {
  return ReadRequest(db_.get(), id);
}

absl::StatusOr<v1::ApprovalRequest> SqliteApprovalStore::Resolve(
    absl::string_view id, v1::ApprovalState state, const v1::Approver& approver,
    absl::string_view reason, int64_t decided_us, int64_t window_until_us) {
  INTERLOCK_RETURN_IF_ERROR(rows::CheckDecision(kPrefix, id, state, window_until_us));
  INTERLOCK_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
  INTERLOCK_ASSIGN_OR_RETURN(v1::ApprovalRequest r, ReadRequest(db_.get(), id));
  if (r.state() != v1::APPROVAL_STATE_PENDING) {
    return absl::FailedPreconditionError(
        absl::StrCat(kPrefix, "request ", id, ": already ", rows::StateWord(r.state())));
  }
  r.set_state(state);
  *r.mutable_approver() = approver;
  r.set_decision_reason(std::string(reason));
  r.set_decided_us(decided_us);
  r.set_window_until_us(window_until_us);
  INTERLOCK_RETURN_IF_ERROR(WriteRequest(db_.get(), r, /*insert=*/false));
  INTERLOCK_RETURN_IF_ERROR(txn.Commit());
  return r;
}

absl::StatusOr<std::vector<v1::ApprovalRequest>> SqliteApprovalStore::ListRequests(bool pending_only,
                                                                             int limit) {
  if (limit <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "list limit ", limit, " <= 0"));
  }
  const char* sql =
      pending_only ? "SELECT proto FROM requests WHERE state = ?1 "
                     "ORDER BY created_us DESC, rowid DESC LIMIT ?2"
                   : "SELECT proto FROM requests ORDER BY created_us DESC, rowid DESC LIMIT ?2";
  INTERLOCK_ASSIGN_OR_RETURN(Statement st, Statement::Prepare(db_.get(), sql, "list requests"));
  if (pending_only) st.BindInt(1, v1::APPROVAL_STATE_PENDING);
  st.BindInt(2, limit);
  return ReadAll<v1::ApprovalRequest>(st, "list requests");
}

absl::StatusOr<bool> SqliteApprovalStore::WindowAllows(absl::string_view workload,
                                                 absl::string_view resource,
                                                 absl::string_view fingerprint, int64_t now_us) {
  if (workload.empty() || fingerprint.empty()) return false;
  INTERLOCK_ASSIGN_OR_RETURN(
      Statement st,
      Statement::Prepare(db_.get(),
                         "SELECT 1 FROM requests WHERE workload = ?1 AND resource = ?2 "
                         "AND fingerprint = ?3 AND state = ?4 AND window_until_us > ?5 LIMIT 1",
                         "window lookup"));
  st.BindText(1, workload);
  st.BindText(2, resource);
  st.BindText(3, fingerprint);
  st.BindInt(4, v1::APPROVAL_STATE_APPROVED);
  st.BindInt(5, now_us);
  return st.Step();
}

absl::Status SqliteApprovalStore::InsertGrant(const v1::Grant& grant) {
  if (grant.id().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(kPrefix, "grant without an id"));
  }
  absl::Status st = WriteGrant(db_.get(), grant, /*insert=*/true);
  if (absl::IsAlreadyExists(st)) {
    return absl::AlreadyExistsError(absl::StrCat(kPrefix, "grant ", grant.id(), " already exists"));
  }
  return st;
}

absl::StatusOr<v1::Grant> SqliteApprovalStore::GetGrant(absl::string_view id) {
  return ReadGrant(db_.get(), id);
}

absl::StatusOr<std::vector<v1::Grant>> SqliteApprovalStore::ListGrants(bool active_only, int64_t now_us) {
  const char* sql = active_only
                        ? "SELECT proto FROM grants WHERE revoked_us = 0 AND expires_us > ?1 "
                          "ORDER BY created_us DESC, rowid DESC"
                        : "SELECT proto FROM grants ORDER BY created_us DESC, rowid DESC";
  INTERLOCK_ASSIGN_OR_RETURN(Statement st, Statement::Prepare(db_.get(), sql, "list grants"));
  if (active_only) st.BindInt(1, now_us);
  return ReadAll<v1::Grant>(st, "list grants");
}

absl::StatusOr<v1::Grant> SqliteApprovalStore::Revoke(absl::string_view id, const v1::Approver& by,
                                                int64_t now_us) {
  INTERLOCK_ASSIGN_OR_RETURN(Transaction txn, Transaction::Begin(db_.get()));
  INTERLOCK_ASSIGN_OR_RETURN(v1::Grant g, ReadGrant(db_.get(), id));
  if (g.revoked_us() != 0) {
    return absl::FailedPreconditionError(absl::StrCat(kPrefix, "grant ", id, ": already revoked"));
  }
  if (g.expires_us() <= now_us) {
    return absl::FailedPreconditionError(absl::StrCat(kPrefix, "grant ", id, ": already expired"));
  }
  g.set_revoked_us(now_us);
  *g.mutable_revoked_by() = by;
  INTERLOCK_RETURN_IF_ERROR(WriteGrant(db_.get(), g, /*insert=*/false));
  INTERLOCK_RETURN_IF_ERROR(txn.Commit());
  return g;
}

absl::StatusOr<std::optional<v1::Grant>> SqliteApprovalStore::ActiveGrant(absl::string_view workload,
                                                                    absl::string_view resource,
                                                                    int64_t now_us) {
  INTERLOCK_ASSIGN_OR_RETURN(
      Statement st,
      Statement::Prepare(db_.get(),
                         "SELECT proto FROM grants WHERE workload = ?1 AND resource = ?2 "
                         "AND revoked_us = 0 AND expires_us > ?3 "
                         "ORDER BY expires_us DESC, rowid DESC LIMIT 1",
                         "active grant"));
  st.BindText(1, workload);
  st.BindText(2, resource);
  st.BindInt(3, now_us);
  INTERLOCK_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<v1::Grant>();
  INTERLOCK_ASSIGN_OR_RETURN(v1::Grant g, rows::Parse<v1::Grant>(st.Bytes(0), kPrefix, "active grant"));
  return std::optional<v1::Grant>(std::move(g));
}

}  // namespace interlock::approval
