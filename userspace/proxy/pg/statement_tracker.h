// StatementTracker: turns the messages of one PostgreSQL session (after login) into one
// audit record per statement — simple Query, extended-protocol Execute, FunctionCall —
// with its text, parameters (redacted unless allowed), command tags, rows, duration and
// SQLSTATE. Pure: it sees whole messages from both directions in wire order and never
// does I/O.
//
// Matching responses to requests follows PostgreSQL docs 55.2.3 "Extended Query": the
// backend answers every frontend message in order, except that after an error it skips
// everything up to the next Sync; simple Query ends at ReadyForQuery.
//
//   StatementTracker t({.database = "app", .user = "app_rw"}, clock);
//   t.OnFrontend('Q', body);      // from the agent
//   t.OnBackend('C', body);       // from the database
//   t.OnBackend('Z', body);
//   for (v1::StatementInfo& s : t.TakeCompleted()) audit(s);
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "interlock/v1/events.pb.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/common/clock.h"
#include "userspace/common/sha256.h"  // Sha256Hex
#include "userspace/sql/normalize.h"

namespace interlock::proxy::pg {

struct StatementTrackerOptions {
  std::string database;
  std::string user;
  bool audit_parameters = false;
  // Statement text in clear; by default its literals are replaced by $n (sql/normalize.h).
  bool audit_literals = false;
  // The server's standard_conforming_strings when the session starts (then followed from
  // ParameterStatus): how literals are told apart from the rest.
  bool standard_conforming_strings = true;
  uint32_t max_statement_bytes = 4096;
  // Cap on each parameter value kept in clear (audit_parameters).
  uint32_t max_parameter_bytes = 256;
  // Shared with the session's recording, which normalizes the same text (may be null);
  // must outlive the tracker.
  sql::NormalizeMemo* normalize_memo = nullptr;
};

// Prepared statements or portals one session may have at once before the tracker (and
// so the session) refuses more: a hostile agent must not grow interlockd's memory without
// bound.
inline constexpr size_t kMaxTrackedObjects = 10000;

class StatementTracker {
 public:
  StatementTracker(StatementTrackerOptions options, const Clock& clock);

  // A whole frontend message. INVALID_ARGUMENT for a malformed message of a type the
  // tracker reads (the caller answers with a protocol error and closes).
  absl::Status OnFrontend(const codec::pg::FrontendMessage& m);
  // The same, decoding the message first (tests).
  absl::Status OnFrontend(char type, absl::string_view body);
  // The session's standard_conforming_strings as the tracker follows it.
  bool standard_conforming_strings() const { return options_.standard_conforming_strings; }
  // A whole backend message. DataRow/CopyData bodies are not read and may be empty.
  absl::Status OnBackend(char type, absl::string_view body);

  // The policy decision for the statement just passed to OnFrontend (Query, Execute,
  // FunctionCall); carried in its StatementInfo.
  void AttachDecision(v1::PolicyDecision decision) {
    if (!pending_.empty() && pending_.back().audited) *pending_.back().info.mutable_decision() = std::move(decision);
  }

  // Statements completed since the last call, in completion order.
  std::vector<v1::StatementInfo> TakeCompleted();
  // Ends tracking: everything still pending completes with `status` ("incomplete").
  std::vector<v1::StatementInfo> Finish(absl::string_view status);

  // Pending requests awaiting a response (for tests and diagnostics).
  size_t pending() const { return pending_.size(); }

 private:
  enum class Kind { kQuery, kParse, kBind, kDescribe, kExecute, kClose, kSync, kFunctionCall };
  struct Pending {
    Kind kind;
    bool audited = false;  // kQuery, kExecute, kFunctionCall
    v1::StatementInfo info;
    absl::Duration started;
    uint64_t data_rows = 0;
    bool errored = false;
  };
  // A statement's text as kept between Parse and Execute: capped, with the digest of the
  // full text, so memory per prepared statement is bounded by max_statement_bytes.
  struct StatementText {
    std::string capped;
    bool truncated = false;
    std::string sha256;
  };
  struct Portal {
    std::string statement_name;
    StatementText text;
    std::vector<std::string> params;  // as recorded (clear or redacted)
    uint32_t param_count = 0;
    std::string params_sha256;
  };

  StatementText MakeText(absl::string_view full) const;
  v1::StatementInfo NewInfo(absl::string_view protocol, const StatementText& text);
  v1::StatementInfo NewInfo(absl::string_view protocol, absl::string_view text) {
    return NewInfo(protocol, MakeText(text));
  }
  void Complete(Pending& p, absl::string_view status);
  void SkipToSync(const v1::StatementInfo& cause_error);
  // A Parse/Bind/Close at the head of the queue completed (apply it) or was refused or
  // skipped (drop it and roll the projection back).
  void ConfirmChange(Kind kind);
  void DropChange(Kind kind);

  StatementTrackerOptions options_;
  const Clock& clock_;
  std::deque<Pending> pending_;
  // Prepared statements and portals twice over: as the server has confirmed them
  // (ParseComplete/BindComplete/CloseComplete), and as they will be if everything sent
  // so far succeeds. Execute reads the projection (it is sent before the completions
  // arrive); an error rolls the projection back to the confirmed state, because the
  // server skips the rest of the pipeline (a rejected Parse must not rename what a
  // later Execute runs in the audit).
  struct Objects {
    absl::flat_hash_map<std::string, StatementText> statements;  // prepared name -> text
    absl::flat_hash_map<std::string, Portal> portals;
  };
  Objects confirmed_;
  Objects projected_;
  // Per pending Parse/Bind/Close, in order: what to apply on its completion.
  struct Change {
    Kind kind;
    std::string name;
    StatementText text;  // kParse
    Portal portal;      // kBind
    bool statement = true;  // kClose: statement or portal
  };
  std::deque<Change> changes_;
  std::vector<v1::StatementInfo> completed_;
};

}  // namespace interlock::proxy::pg
