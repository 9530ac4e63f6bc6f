// ResultMasker: rewrites the results of statements the policy decided to MASK, in flight
// and one message at a time, so sensitive values never reach the agent and memory stays
// bounded whatever the result size. Pure: it sees the frontend messages the session sends
// upstream and the backend messages before the agent does, and says what to do with each.
//
//   ResultMasker m(lookup);
//   send(m.OnFrontend('E', body, masker));          // may prepend a Describe of the portal
//   auto out = m.OnBackend('D', body);              // kPass, kReplace (new bytes), kDrop,
//                                                   // kNeedCatalog (resolve oids, retry), kFatal
//
// What gets masked, and how it is known:
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
//   - Binary-format values: text-like types (text, varchar, bpchar, name, json, jsonb,
//     unknown) are masked like text; any other type matched by a column mask becomes NULL.
//   - COPY ... TO STDOUT in binary format cannot be rewritten safely: the session is closed
//     (kFatal) rather than let values through.
//
// Responses are matched to requests as PostgreSQL sends them (docs 55.2.3): in order, one
// result per Query statement / Execute, and after an error everything up to Sync skipped.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
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

// Source of (table OID, attribute number): a value when cached (ColumnSource with empty
// names when the catalog has no such column), nullopt when the table is not cached yet.
using SourceLookup = std::function<std::optional<ColumnSource>(uint32_t table_oid, int16_t attnum)>;

// What one masked statement did, for its audit event (values are never kept).
struct MaskReport {
  std::string profile;
  std::string protocol;  // "simple" / "extended"
  uint64_t rows = 0;
  uint64_t values_masked = 0;
  mask::MaskCounts counts;
  std::vector<std::string> masked_columns;  // "public.customers.ssn -> x (ssn)"
};

class ResultMasker {
 public:
  explicit ResultMasker(SourceLookup lookup) : lookup_(std::move(lookup)) {}

  // Every frontend message, as sent upstream, in order. `masker` is the compiled profile
  // for a judged Query / Execute under ACTION_MASK (null otherwise) and must outlive the
  // statement. Returns bytes to send upstream *before* the message (a Describe of the
  // portal for a masked Execute), usually empty.
  std::string OnFrontend(char type, absl::string_view body, const mask::Masker* masker, const std::string& profile);

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

  // A masked result is being produced: DataRow and CopyData must be passed whole.
  bool active() const { return !queue_.empty() && queue_.front().masker != nullptr; }
  // Reports of masked statements completed since the last call.
  std::vector<MaskReport> TakeReports();

 private:
  enum class Kind { kQuery, kExecute, kDescribeOurs, kDescribeAgent, kSync, kFunctionCall };
  struct Column {
    bool text_like = false;
    int16_t format = 0;
    const mask::ColumnRule* rule = nullptr;
    std::string label;  // for the report
  };
  struct Entry {
    Kind kind;
    uint64_t batch = 0;
    const mask::Masker* masker = nullptr;
    std::string profile;
    std::vector<int16_t> formats;  // kExecute: the Bind's result formats
    bool copy = false;             // a COPY TO STDOUT is streaming
    std::vector<Column> plan;      // the current result's columns
    bool has_plan = false;
    MaskReport report;
    std::vector<uint64_t> column_hits;  // values masked per plan column
  };

  Out Plan(Entry& e, absl::string_view body, const std::vector<int16_t>* bound_formats);
  Out MaskRow(Entry& e, absl::string_view raw);
  Out MaskCopy(Entry& e, absl::string_view raw);
  void Report(Entry& e);
  void DropFailedBatch();

  SourceLookup lookup_;
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

}  // namespace interlock::proxy::pg
