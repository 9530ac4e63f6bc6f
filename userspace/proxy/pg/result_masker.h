// ResultMasker: rewrites what the server sends the agent, in flight and one message at a
// time, so sensitive values never reach the agent and memory stays bounded whatever the
// result size. Pure: it sees the frontend messages the session sends upstream and the
// backend messages before the agent does, and says what to do with each.
//
//   ResultMasker m(lookup);
//   m.SetFloor(floor);                              // the session's floor profile, if any
//   send(m.OnFrontend('E', body, masker, profile)); // may prepend a Describe of the portal
//   auto out = m.OnBackend('D', body);              // kPass, kReplace (new bytes), kDrop,
//                                                   // kNeedCatalog (resolve oids, retry), kFatal
//
// Masking is a property of the data, not of one statement: a statement the policy decided
// to MASK is masked with its rule's profile; on a session with a *floor* (every mask
// profile that applies to the workload, policy::PolicyEvaluator::MaskProfilesFor) every
// other statement is masked with the floor — FETCH from a cursor, RETURNING, EXECUTE, COPY
// TO, a statement released by an approval — and so is every other message that can carry
// a value to the agent:
//   - DataRow and CopyData of any statement; a row outside any statement is fatal.
//   - ErrorResponse and NoticeResponse: every text field (message, detail, hint, where,
//     internal query, schema/table/column/constraint/type names; not severity, SQLSTATE,
//     positions, file/line/routine) through the detectors. A failed cast or a violated
//     constraint echoes the value: when the masker has column rules, a data exception or
//     integrity violation (SQLSTATE classes 22 and 23) also has its quoted value in the
//     message and detail (`for type integer: "Ada"`, `Key (name)=(Ada)`, `Failing row
//     contains (...)`) redacted, since a column rule's values need not look like anything
//     a detector knows. Residual: a column-rule value a detector does not recognise, in
//     any other error or notice shape (a RAISE's own text, a class-22/23 message quoting
//     it differently, a where/context line), reaches the agent; detector-shaped values
//     (SSNs, cards, IBANs, ...) never do.
//   - NotificationResponse (channel and payload), ParameterStatus (name and value),
//     FunctionCallResponse, and RowDescription's column names (SQL built from data can
//     name a column after a value), through the detectors.
//
// What gets masked in a result, and how it is known:
//   - Column masks need each result column's *source*: RowDescription gives the table OID
//     and attribute number, resolved to schema.table.column through the catalog
//     (`lookup`, answered from a cache the session fills on kNeedCatalog), so `ssn AS x`
//     is still the ssn column. Column globs also match the output name.
//   - A masked Execute needs its RowDescription with the formats actually bound: the
//     masker sends its own Describe of the portal right before the Execute and consumes the
//     answer (the agent never sees it). A simple Query's RowDescription comes with it.
//   - Every other value — expressions (`ssn || ''`, `upper(ssn)`, `row_to_json(c)`,
//     `string_agg`), views whose columns cannot be traced to a masked table column, COPY
//     output (which carries no description) — goes through the profile's content
//     detectors, which find and validate SSNs, card numbers, IBANs, routing numbers,
//     e-mail addresses, phone numbers and custom patterns anywhere inside the text.
//     Residual: a column rule's value that no detector recognises (a name, a free-text
//     note) is masked only where its column can be traced; in COPY output, and in
//     expressions the classifier does not yet follow, it passes.
//   - Binary-format values: text-like types are masked like text; any other type matched
//     by a column mask becomes NULL; the rest are decoded for the detectors or fail closed
//     (binary_values.h).
//   - COPY ... TO STDOUT in binary format cannot be rewritten safely: the session is closed
//     (kFatal) rather than let values through.
//
// Responses are matched to requests as PostgreSQL sends them (docs 55.2.3): in order, one
// result per Query statement / Execute, and after an error everything up to Sync skipped.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/sql.pb.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/mask/masker.h"

namespace interlock::proxy::pg {

// A table column by name, as a statement or a view definition names it ("" schema: any;
// "*" table: any; "*" column: every column of the table). See mask::Masker::MatchOrigin.
struct SourceName {
  std::string schema, table, column;
};

struct ColumnSource {
  std::string schema, table, column;
  // Other columns this one's values come from, whose rules apply too: for a view's column,
  // what its definition computes it from (through nested views, view_origins.h); for an
  // inheritance child's or a partition's column, the same column of every ancestor.
  std::vector<SourceName> origins;
  // The view computes the column with an expression: a rule found through `origins` masks
  // it redacted (Masker::Redacted).
  bool derived = false;
};

// The result columns of a message's result sets, in order, as the statements' text derives
// them (sql/derivation.h; one entry per statement of a Query, one for an Execute). The
// server's RowDescription traces a plain column to its table; for a computed column
// (`reverse(ssn)`, table OID 0) this says which table columns it comes from. nullopt: not
// known (a FETCH from a cursor not seen declared, a name prepared several times): every
// computed column is then taken as derived from anything (fail closed).
using ResultShapes = std::vector<std::optional<std::vector<v1::OutputColumn>>>;

// Source of (table OID, attribute number): a value when cached (ColumnSource with empty
// names when the catalog has no such column), nullopt when the table is not cached yet.
using SourceLookup = std::function<std::optional<ColumnSource>(uint32_t table_oid, int16_t attnum)>;

// What one masked statement did, for its audit event (values are never kept).
struct MaskReport {
  std::string profile;
  std::string protocol;  // "simple" / "extended" / "function_call" / "async" (outside a statement)
  uint64_t rows = 0;
  uint64_t values_masked = 0;
  mask::MaskCounts counts;
  std::vector<std::string> masked_columns;  // "public.customers.ssn -> x (ssn)"
};

class ResultMasker {
 public:
  explicit ResultMasker(SourceLookup lookup) : lookup_(std::move(lookup)) {}

  using MaskerPtr = std::shared_ptr<const mask::Masker>;

  // Every frontend message, as sent upstream, in order. `masker` is the compiled profile
  // for a Query / Execute / FunctionCall: its rule's profile under ACTION_MASK, otherwise
  // the session floor (null: results pass untouched, unless a floor is set by the time
  // they arrive). Kept with the statement until its result is done. `profile` names it in
  // reports (the masker's name when empty). Returns bytes to send upstream *before* the
  // message (a Describe of the portal for a masked Execute), usually empty.
  // `shapes`: for a Query or Execute, what its results' columns are derived from; empty:
  // not derived (computed columns then pass the detectors only).
  std::string OnFrontend(const codec::pg::FrontendMessage& m, MaskerPtr masker, const std::string& profile = "",
                         ResultShapes shapes = {});
  // The same, decoding the message first (a message of interlockd's own; tests).
  std::string OnFrontend(char type, absl::string_view body, MaskerPtr masker, const std::string& profile = "",
                         ResultShapes shapes = {});

  // The session floor (null: none): masks what belongs to no masked statement —
  // notices, notifications and parameter statuses between statements — and any statement
  // result that arrives without a masker of its own. Set again when the policy or the
  // subject changes; statements already sent keep theirs.
  void SetFloor(MaskerPtr floor) { floor_ = std::move(floor); }
  bool has_floor() const { return floor_ != nullptr; }

  enum class Verdict { kPass, kReplace, kDrop, kNeedCatalog, kFatal };
  struct Out {
    Verdict verdict = Verdict::kPass;
    absl::string_view view;        // kReplace: the whole message to send instead; valid
                                   // until the next OnBackend
    std::vector<uint32_t> oids;    // kNeedCatalog: tables to resolve
    std::string error;             // kFatal
  };
  // One whole backend message (header included in `raw`).
  Out OnBackend(char type, absl::string_view raw);

  // DataRow and CopyData must be passed whole (a masked result is being produced, or the
  // session has a floor: no row data passes unread).
  bool active() const { return floor_ != nullptr || (!queue_.empty() && queue_.front().masker != nullptr); }
  // Reports of masked statements completed since the last call.
  std::vector<MaskReport> TakeReports();

 private:
  enum class Kind { kQuery, kExecute, kDescribeOurs, kDescribeAgent, kSync, kFunctionCall };
  struct Column {
    bool text_like = false;
    uint32_t type_oid = 0;
    int16_t format = 0;
    const mask::ColumnRule* rule = nullptr;
    std::string label;  // for the report
  };
  struct Entry {
    Kind kind;
    uint64_t batch = 0;
    MaskerPtr masker;
    std::string profile;
    bool from_floor = false;  // not the statement's own MASK decision: reported only when it masked
    std::vector<int16_t> formats;  // kExecute: the Bind's result formats
    bool copy = false;             // a COPY TO STDOUT is streaming
    std::vector<Column> plan;      // the current result's columns
    bool has_plan = false;
    MaskReport report;
    std::vector<uint64_t> column_hits;  // values masked per plan column
    ResultShapes shapes;                // kQuery / kExecute
    size_t result_index = 0;            // kQuery: results completed so far
  };

  Out Plan(Entry& e, absl::string_view body, const std::vector<int16_t>* bound_formats);
  Out MaskRow(Entry& e, absl::string_view raw);
  Out MaskCopy(Entry& e, absl::string_view raw);
  // ErrorResponse / NoticeResponse: every text field through `m`; `echoed` also redacts
  // the quoted values of a data exception or integrity violation (see above).
  Out MaskFields(char type, absl::string_view raw, const mask::Masker& m, bool echoed, MaskReport* report);
  Out MaskNotification(absl::string_view raw, const mask::Masker& m, MaskReport* report);
  // RowDescription: the column names through the detectors.
  Out MaskFieldNames(absl::string_view raw, const mask::Masker& m);
  Out MaskParameterStatus(absl::string_view raw, const mask::Masker& m, MaskReport* report);
  // Each of `fields` through the detectors, in place; true when any changed.
  bool MaskTexts(std::initializer_list<std::string*> fields, const mask::Masker& m, MaskReport* report);
  // kReplace with `message` encoded into scratch_.
  template <typename Message>
  Out Reencoded(const Message& message);
  Out MaskFunctionResult(Entry& e, absl::string_view raw);
  // The masker for a message that is not row data: the front statement's, else the floor.
  const mask::Masker* TextMasker(Entry* front) const;
  // Counts for a masked message outside a statement (one report per message).
  void ReportAsync(const mask::Masker& m, MaskReport r);
  void Report(Entry& e);
  void DropFailedBatch();

  SourceLookup lookup_;
  MaskerPtr floor_;
  std::deque<Entry> queue_;
  // Result formats of bound portals (from Bind), by portal name.
  absl::flat_hash_map<std::string, std::vector<int16_t>> portal_formats_;
  uint64_t sent_batches_ = 0;
  uint64_t answered_batches_ = 0;
  std::vector<MaskReport> reports_;
  std::string scratch_;
  std::string text_scratch_;
};

// PostgreSQL types whose binary representation is their text (text, varchar, bpchar,
// name, unknown, json; jsonb after its version byte).
bool IsTextLikeType(uint32_t type_oid);

// `text` with the value a data exception or integrity violation echoes replaced by
// `token`: from the first to the last double quote, and from "=(" or "contains (" to the
// last ")". False (nothing written) when there is none. Exposed for tests.
bool RedactEchoedValues(absl::string_view text, absl::string_view token, std::string* out);

}  // namespace interlock::proxy::pg
