// StatementGuard: the policy point of a PostgreSQL session. It sees every frontend message
// before it is relayed and every backend message before the agent does, and turns policy
// decisions into the actions the session carries out (STYLE.md 3): forward, replace (deny),
// hold (review), or wait (for the upstream to settle). No I/O, no clock: the session does
// the sending, holding and auditing.
//
//   StatementGuard guard(options, &policy);
//   GuardVerdict v = guard.OnFrontend('Q', body);
//   switch (v.kind) {
//     case GuardVerdict::kForward: send(raw); break;
//     case GuardVerdict::kReplace: send(v.replacement); break;   // denied
//     case GuardVerdict::kHold:    hold(raw, v.review); break;    // later: Release/Deny
//     case GuardVerdict::kWait:    retry after backend progress; break;
//   }
//   ... backend 'E': if (auto mine = guard.OnBackend('E', body)) forward(*mine) else forward(raw)
//
// How a denial reaches the agent. A denied message is not dropped: it is *replaced* by one
// that the server is certain to reject — a simple Query or Parse of the bare identifier
// `interlock_denied_<nonce>_<n>` (a syntax error), or an Execute of a portal of that name
// (no such portal) — and the resulting ErrorResponse, recognised by the marker, is rewritten
// into interlockd's own (SQLSTATE 42501 and the rule's reason). Because the server itself
// fails the statement, everything PostgreSQL does after an error happens for real and in
// order: an explicit transaction becomes aborted (the agent's later COMMIT rolls back), an
// extended-protocol batch is skipped to its Sync and its implicit transaction rolls back,
// and the response order of pipelined messages is kept. The connection stays usable. The
// nonce is random per session and never sent to the agent.
//
// What a prepared statement runs. Policy is decided on the SQL text, which arrives in Parse
// (or SQL PREPARE); Bind and Execute only name it. The guard keeps what each name and portal
// will hold if everything sent so far succeeds (the projection) and what the server has
// confirmed (ParseComplete, BindComplete, CloseComplete). Inside one Sync batch the
// projection is exact, because after any error the server skips the rest of the batch. A
// Bind or Execute sent while an *earlier* batch still has unconfirmed Parse/Bind/Close
// messages gets kWait until that batch is answered, so a pipelined Parse that the server
// rejects can never make the guard judge one statement while the server runs another. SQL
// `EXECUTE name` is judged as the strictest of every statement ever prepared under that
// name in the session (PREPARE/DEALLOCATE in simple queries are not confirmed one by one).
//
// What the server's parser will read. PostgreSQL lexes a message with the settings it has
// when it reads it: standard_conforming_strings (a backslash in '...' escapes a quote when
// off) and client_encoding (in a client-only encoding such as SJIS a multi-byte character
// can end in the byte 0x5c). The guard knows them from ParameterStatus, which the server
// sends only just before ReadyForQuery. A message the agent pipelined behind others that
// are not yet answered — any of which may change a setting, by SET, set_config, RESET ALL,
// DISCARD ALL, a function, a trigger or a ROLLBACK that reverts a SET — is classified under
// every setting the server may have by then: if it reads the same (no backslash that
// matters, no non-ASCII byte before a backslash) it is judged at once; otherwise it waits
// (kWait) for the earlier batches' ReadyForQuery, or, when an Execute of its own Sync batch
// came before it (the server answers only at that batch's Sync), it is refused. A simple
// Query string is lexed as a whole before any statement in it runs (exec_simple_query), so
// `SET standard_conforming_strings = off; <more>` in one Query reads `<more>` with the
// setting at its start, as the guard does. In a client-only client_encoding, ASCII-only
// text reads the same and is judged; anything else is refused.
//
// Role changes by any route. SET ROLE / SESSION AUTHORIZATION are STATEMENT_KIND_ROLE from
// the classifier; a call of set_config() whose parameter is role or session_authorization,
// or is not a string constant, makes its statement STATEMENT_KIND_ROLE too (kind_detail
// "set_config(role)"), and so does a fast-path FunctionCall of set_config.
//
// Approval windows are keyed on what will run: the fingerprint of a statement that runs a
// prepared statement (SQL EXECUTE, or a portal of a name prepared several times) combines
// the fingerprints of every statement the name may hold, so re-preparing a name is a new
// shape for `interlock approve --for`.
//
// Decisions at each message:
//   Query      classify the string; judge it (EXECUTE replaced by what it runs);
//              DENY -> replace, REVIEW -> hold, ALLOW/MASK -> forward.
//   Parse      classify; DENY -> replace (the statement never exists upstream); otherwise
//              forward and remember the classification under the statement name.
//   Bind       forward; remember portal -> statement and the parameters' hash.
//   Execute    judge the portal's statement with the current policy: DENY -> replace,
//              REVIEW -> hold (the pipeline behind it waits up to and past its Sync).
//   FunctionCall  judged as a statement of kind OTHER calling the function (large-object
//              functions by name, others as "oid:N").
//   others     forward.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/events.pb.h"
#include "interlock/v1/sql.pb.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/policy/evaluator.h"
#include "userspace/proxy/pg/result_masker.h"
#include "userspace/sql/classify.h"
#include "userspace/sql/normalize.h"

namespace interlock::proxy::pg {

// Text kept per prepared statement for approvals and audit is bounded per session by this
// many bytes in all; beyond it the session refuses new statements (54000).
inline constexpr size_t kMaxGuardBytes = size_t{64} << 20;
// SQL cursors whose result columns the guard remembers for FETCH; beyond, a FETCH of a new
// one is of unknown shape (masked as derived from anything).
inline constexpr size_t kMaxTrackedCursors = 1024;

struct GuardOptions {
  std::string resource;
  policy::SubjectFacts who;
  // Random, [0-9a-f]{16}: the marker of replaced messages.
  std::string nonce;
  // The session's lexer memo (borrowed; outlives the guard), shared with its statement
  // tracker, so a statement's shape and its normalized text come from one lexing. Null: the
  // guard lexes on its own.
  sql::NormalizeMemo* lexer_memo = nullptr;
};

// What a review hold needs: the exact statement, its hashes, and the decision.
struct ReviewInfo {
  std::string statement;          // full text
  std::string statement_sha256;   // hex
  std::string parameters_sha256;  // "" for a simple Query / FunctionCall without args
  std::string fingerprint;
  std::string protocol;  // "simple", "extended", "function_call"
  // Extended protocol: the bound parameter values and their formats (when the portal kept
  // them: within the guard's memory bounds), for the approver to see, masked.
  std::vector<std::optional<std::string>> params;
  std::vector<int16_t> param_formats;
};

// A whole table whose planner estimate a full_table rule compares a statement with.
struct TableEstimateNeed {
  std::string name;  // as the statement wrote it (key of StatementEstimate::table_rows)
  std::string sql;   // "SELECT * FROM <name, every part quoted>", to EXPLAIN
};

// A statement whose planner row estimate a rule needs (estimated_rows_gt, full_table).
struct EstimateNeed {
  int statement_index = 0;
  std::string sql;  // that one statement; "" when it cannot be explained (no estimate)
  std::vector<uint32_t> param_type_oids;
  std::vector<int16_t> param_formats;
  std::vector<std::optional<std::string>> params;
  // full_table: the tables to estimate whole, each with its own EXPLAIN (no parameters).
  std::vector<TableEstimateNeed> tables;
};

// Per statement of the judged string, the planner's estimates (rows nullopt: not asked).
// Estimates that could not be obtained are passed as policy::kEstimateFailed: the rule
// applies (fail closed).
using RowEstimates = policy::StatementEstimates;

struct GuardVerdict {
  // kEstimate: a rule needs planner estimates for `estimates`; get them and call
  // OnFrontend again with the same message and the estimates (nothing changed meanwhile).
  enum Kind { kForward, kReplace, kHold, kWait, kEstimate };
  Kind kind = kForward;
  std::vector<EstimateNeed> estimates;
  // kReplace: the bytes to send upstream instead of the agent's message.
  std::string replacement;
  // The decision for a judged message (Query, Execute, FunctionCall, and a denied Parse);
  // unset for messages that are only bookkeeping.
  std::optional<policy::Decision> decision;
  v1::PolicyDecision audit;  // the decision as audited (set with `decision`)
  ReviewInfo review;         // kHold
  // Query / Execute: the result columns each of its result sets will have, as derived from
  // the statements that run (sql/derivation.h) — through EXECUTE to what was prepared,
  // through FETCH to what was declared. For the result masker (ResultShapes).
  ResultShapes shapes;
};

class StatementGuard {
 public:
  // `policy` points at the engine's current evaluator (replaced on reload, between loop
  // turns); it is read at each decision and must outlive the guard.
  StatementGuard(GuardOptions options, const std::shared_ptr<const policy::PolicyEvaluator>* policy);

  // A whole frontend message, before it is relayed. RESOURCE_EXHAUSTED past the guard's
  // memory bounds; INVALID_ARGUMENT for a malformed message (the session closes).
  absl::StatusOr<GuardVerdict> OnFrontend(const codec::pg::FrontendMessage& m,
                                          const RowEstimates* estimates = nullptr);
  // The same, decoding the message first (tests, fuzzing).
  absl::StatusOr<GuardVerdict> OnFrontend(char type, absl::string_view body,
                                          const RowEstimates* estimates = nullptr);

  // A whole backend message, before the agent sees it (DataRow/CopyData need not be
  // passed). For an ErrorResponse caused by a replaced message, returns the ErrorResponse
  // to send instead. Tracks ParameterStatus (standard_conforming_strings, client_encoding)
  // and the confirmations of Parse/Bind/Close.
  std::optional<std::string> OnBackend(char type, absl::string_view body);

  // A held message whose review was denied or timed out: the replacement to send upstream,
  // and the error the agent will get (SQLSTATE 42501, `message`, `detail`).
  std::string DenyHeld(char type, absl::string_view message, absl::string_view detail,
                       absl::string_view sqlstate = "42501");

  // The requester's facts changed (a renewed token): later decisions use them.
  void SetSubject(policy::SubjectFacts who) { options_.who = std::move(who); }

  // Whether what was sent before the statement last judged (the one held) may still be
  // running on the server: an earlier batch not answered yet, or an Execute earlier in its
  // own batch. A cancel that withdraws the hold goes to the server only then.
  bool EarlierWorkInFlight() const { return answered_batches_ < held_batch_ || held_behind_execute_; }

  // For tests and diagnostics.
  const sql::SessionSettings& settings() const { return settings_; }

 private:
  // Classifications are shared, never copied: the recent-text and shape memories, a
  // prepared statement and the statement being judged may all hold one reading.
  using ClassificationPtr = std::shared_ptr<const v1::SqlClassification>;
  // A classified statement text; its bytes count against the session's budget while any
  // map still refers to it.
  struct Prepared {
    ClassificationPtr classification;
    std::string text;  // "" for SQL PREPARE (judged from the classification alone)
    size_t cost = 0;
    size_t* budget = nullptr;
    ~Prepared() {
      if (budget != nullptr) *budget -= cost;
    }
  };
  using PreparedPtr = std::shared_ptr<const Prepared>;
  struct PortalInfo {
    // What the portal may run: empty for an unknown statement name (the server refuses),
    // several when a SQL-prepared name was reused.
    std::vector<PreparedPtr> statements;
    std::string statement_name;
    std::string parameters_sha256;
    // Kept for planner estimates (EXPLAIN with the same parameters) when they are small.
    std::vector<uint32_t> param_type_oids;
    std::vector<int16_t> param_formats;
    std::vector<std::optional<std::string>> params;
    bool params_kept = false;
  };
  struct Objects {
    absl::flat_hash_map<std::string, PreparedPtr> statements;
    absl::flat_hash_map<std::string, PortalInfo> portals;
  };
  enum class ChangeKind { kParse, kBind, kCloseStatement, kClosePortal };
  struct Change {
    ChangeKind kind;
    std::string name;
    PreparedPtr statement;
    PortalInfo portal;
    uint64_t batch = 0;
  };
  struct Replacement {
    std::string sqlstate;
    std::string message;
    std::string detail;
    uint64_t batch = 0;
  };

  const policy::PolicyEvaluator* evaluator() const { return policy_->get(); }
  policy::Decision Judge(const v1::SqlClassification& c, const RowEstimates* estimates = nullptr) const;
  v1::PolicyDecision AuditOf(const policy::Decision& d, const v1::SqlClassification& c, bool full) const;
  // `c` with its EXECUTE statements replaced by what they run (strictest candidate set);
  // nullopt when it has none (`c` stands as it is).
  std::optional<v1::SqlClassification> ResolveExecutes(const v1::SqlClassification& c) const;
  std::string Marker(uint64_t n) const;
  std::string AddReplacement(std::string sqlstate, std::string message, std::string detail);
  // Classify `text` as the server would with `s` (ASCII text in a client-only encoding is
  // read as ASCII; set_config of role marks its statement STATEMENT_KIND_ROLE).
  // The session's last few distinct texts and shapes are answered from memory (recent_,
  // shapes_).
  ClassificationPtr ClassifyText(absl::string_view text, const sql::SessionSettings& s) const;
  // `holds_for_shape` (may be null): whether the reading holds for every text of its shape.
  v1::SqlClassification ClassifyUncached(absl::string_view text, const sql::SessionSettings& s,
                                         bool* holds_for_shape) const;
  // Whether a setting the server may have by now, other than the reported ones, could
  // make it read `text` differently from `c`.
  bool ReadsDifferently(absl::string_view text, const v1::SqlClassification& c) const;
  // A text the guard cannot read in the session's client_encoding: the refusal.
  // Messages sent that the server has not answered with a ReadyForQuery yet, or an
  // Execute in the open batch: settings may be changing.
  bool Unsettled() const { return answered_batches_ < sent_batches_ || executed_in_batch_; }
  // A text the guard cannot read in the session's client_encoding: the refusal.
  std::optional<policy::Decision> EncodingRefusal(absl::string_view text) const;
  std::string CombinedFingerprint(const std::string& base, const std::vector<PreparedPtr>& candidates) const;
  absl::StatusOr<GuardVerdict> OnQuery(const codec::pg::Query& q, const RowEstimates* estimates);
  absl::StatusOr<GuardVerdict> OnParse(const codec::pg::Parse& p);
  absl::StatusOr<GuardVerdict> OnBind(const codec::pg::Bind& b);
  absl::StatusOr<GuardVerdict> OnExecute(const codec::pg::Execute& e, const RowEstimates* estimates);
  absl::StatusOr<GuardVerdict> OnClose(const codec::pg::Close& c);
  absl::StatusOr<GuardVerdict> OnFunctionCall(const codec::pg::FunctionCall& f);
  void DenyVerdict(GuardVerdict& v, char type, const std::string& query_or_portal_name);
  void Confirm();
  void DropBatch();
  void Reproject();
  bool EarlierBatchUnsettled() const;

  GuardOptions options_;
  const std::shared_ptr<const policy::PolicyEvaluator>* policy_;
  sql::SessionSettings settings_;
  // Declared before the maps: Prepared's destructor updates it while they are destroyed.
  size_t bytes_ = 0;
  Objects confirmed_, projected_;
  std::deque<Change> changes_;
  // Sync batches: the number of Sync/Query/FunctionCall messages sent (each ends with one
  // ReadyForQuery) and answered.
  uint64_t sent_batches_ = 0;
  uint64_t answered_batches_ = 0;
  // SQL PREPARE name -> every statement prepared under it (strictest wins at EXECUTE).
  absl::flat_hash_map<std::string, std::vector<PreparedPtr>> sql_prepared_;
  // SQL cursors declared in this session: their query's result columns (for FETCH).
  absl::flat_hash_map<std::string, std::vector<v1::OutputColumn>> cursor_shapes_;
  // The result shapes of a judged Query string `c` (statement by statement), and of a
  // portal's statements; nullopt where it cannot be known.
  ResultShapes ShapesOf(const v1::SqlClassification& c);
  static std::optional<std::vector<v1::OutputColumn>> ShapeOfCandidates(const std::vector<PreparedPtr>& candidates);
  // ClassifyText's results for this session's most recent distinct texts (most recent
  // first): the same text read with the same settings classifies the same (Classify is a
  // pure function of both), so BEGIN, COMMIT and an unnamed Parse an ORM sends again are
  // parsed once. Per session, not shared: whether a text was seen before must not be
  // observable across sessions (timing). Bounded: kRecentTexts entries of at most
  // kRecentTextBytes of text.
  struct Recent {
    std::string text;
    sql::SessionSettings settings;
    ClassificationPtr classification;
  };
  static constexpr size_t kRecentTexts = 8;
  static constexpr size_t kRecentTextBytes = 2048;
  mutable std::deque<Recent> recent_;
  // And by shape (sql/normalize.h ShapeKey: the text but for its literals' values): pgbench
  // and an agent's loop send one shape with new literals each time. Only readings that
  // sql::ClassifyShaped says hold for the whole shape (texts of at most kRecentTextBytes),
  // and not those whose set_config arguments the guard reads itself; per session like
  // recent_, kRecentShapes of them (a sign is part of a shape: pgbench's TPC-B-like script
  // alone sends nine).
  static constexpr size_t kRecentShapes = 16;
  struct Shape {
    std::string key;
    sql::SessionSettings settings;
    ClassificationPtr classification;  // as read from a text of text_size bytes
    size_t text_size;
  };
  mutable std::deque<Shape> shapes_;
  std::map<uint64_t, Replacement> replacements_;
  uint64_t next_replacement_ = 1;
  // Extended-protocol messages sent since the last Sync.
  bool batch_open_ = false;
  // An Execute was sent since the last Sync.
  bool executed_in_batch_ = false;
  // The batch of the last judged Query/Execute/FunctionCall (for DenyHeld).
  uint64_t held_batch_ = 0;
  // An Execute went upstream earlier in held_batch_ (EarlierWorkInFlight).
  bool held_behind_execute_ = false;
};

// One line per statement for audit: "DELETE w:public.customers no_where".
std::string SummarizeStatement(const v1::SqlStatement& s);

// Large-object functions that libpq calls over the FunctionCall message, by their fixed
// pg_proc OIDs; "oid:N" for others.
std::string FunctionNameForOid(uint32_t oid);

}  // namespace interlock::proxy::pg
