// Masker: one compiled v1::MaskProfile (schemas/interlock/v1/policy.proto) — the pure
// core that decides which result values are sensitive and what replaces them.
//
//  * Column rules mask a whole value by its source column (resolved by the proxy from
//    RowDescription's table OID / attribute number) or its output name (alias).
//  * Content detectors (detectors.h) rewrite sensitive substrings inside any other text
//    value (expressions, row_to_json, string_agg, COPY output).
//
// Styles (MaskSpec): REDACT -> the token (default "[REDACTED]"); PARTIAL -> keep the last
// keep_last characters (default 4), every other ASCII letter or digit and every non-ASCII
// character becomes '*', ASCII punctuation and spaces stay ("4111-1111-1111-1234" ->
// "****-****-****-1234"); a value of keep_last characters or fewer is masked entirely,
// so PARTIAL never shows a whole value. KEYED_HASH -> "pii_" + the first 16 lower-hex
// digits of HMAC-SHA256(key, value) (stable: same key and value, same pseudonym; of the
// bytes as they are, no normalization). NULL -> SQL NULL for a column rule, "" inside text.
// A masked value is valid UTF-8 whenever the input was (PARTIAL counts characters).
//
// Usage:
//   INTERLOCK_ASSIGN_OR_RETURN(std::string key, LoadOrCreateMaskKey(state_dir));
//   INTERLOCK_ASSIGN_OR_RETURN(auto masker, Masker::Create(profile, key));
//   // Per RowDescription field:
//   const ColumnRule* rule = masker->MatchColumn("public", "customers", "ssn", "ssn");
//   // Per value:
//   MaskCounts counts;
//   if (rule != nullptr) {
//     std::optional<std::string> v = masker->MaskWhole(*rule, value, &counts);  // nullopt: NULL
//   } else if (std::string masked; masker->MaskText(value, &masked, &counts)) {
//     value = masked;
//   }
//
// Thread-compatible: const methods may run concurrently; no global state.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/policy.pb.h"
#include "userspace/mask/detectors.h"

namespace interlock::mask {

// Shortest HMAC key accepted when a profile uses KEYED_HASH, bytes.
inline constexpr size_t kMinHmacKeyBytes = 16;
// "pii_" + this many hex digits.
inline constexpr size_t kKeyedHashHexDigits = 16;

// A compiled MaskSpec with the defaults applied.
struct Replacement {
  v1::MaskStyle style = v1::MASK_STYLE_REDACT;  // UNSPECIFIED becomes REDACT
  uint32_t keep_last = 4;                       // PARTIAL
  std::string token = "[REDACTED]";             // REDACT
};

// A compiled ColumnMask.
struct ColumnRule {
  // As written in the profile ("public.customers.ssn", "customers.ssn", "*_ssn").
  std::string text;
  // Position in MaskProfile.columns.
  int index = 0;
  // Name parts: 3 = schema.table.column, 2 = table.column, 1 = a bare column glob.
  // Each part is an fnmatch glob; a part without glob characters is compared exactly.
  int parts = 1;
  std::string schema;
  std::string table;
  std::string column;
  Replacement mask;
};

// What was masked, for audit events: matches per detector name ("ssn", "card", "iban",
// "aba", "email", "phone", or a custom detector's name) and values per column rule text.
struct MaskCounts {
  std::map<std::string, uint64_t, std::less<>> detectors;
  std::map<std::string, uint64_t, std::less<>> columns;

  void AddDetector(absl::string_view name, uint64_t n = 1);
  void AddColumn(absl::string_view rule, uint64_t n = 1);
  void Merge(const MaskCounts& other);
  bool empty() const { return detectors.empty() && columns.empty(); }
  // Sum over both maps.
  uint64_t total() const;
};

class Masker {
 public:
  // Compiles `profile`. `hmac_key` is needed (>= kMinHmacKeyBytes) only when a rule or
  // detector uses KEYED_HASH. INVALID_ARGUMENT, naming the field, for: an empty or
  // malformed column ("columns[1].column \"a..b\": ..."), an unknown style
  // ("columns[0].mask.style"), an unspecified detector ("detectors[2].detector"), a
  // missing or invalid RE2 pattern or one given to a built-in detector
  // ("detectors[3].pattern"), or a short key with KEYED_HASH.
  static absl::StatusOr<std::unique_ptr<Masker>> Create(const v1::MaskProfile& profile,
                                                        std::string hmac_key);
  ~Masker();
  Masker(const Masker&) = delete;
  Masker& operator=(const Masker&) = delete;

  const std::string& name() const { return name_; }
  bool has_column_rules() const { return !rules_.empty(); }
  bool has_detectors() const { return !detectors_.empty(); }

  // The first rule in profile order that matches a result column, or nullptr.
  // "schema.table.column" matches the resolved source column; "table.column" one in any
  // schema; a bare glob the source column name or the output name (alias). Names are
  // compared as PostgreSQL stores them (case-sensitive). Empty schema/table/column
  // (an expression, or not resolved): only the output name, against bare globs.
  // The returned rule lives as long as the Masker.
  const ColumnRule* MatchColumn(absl::string_view schema, absl::string_view table,
                                absl::string_view column, absl::string_view output_name) const;

  // The first rule in profile order that may apply to a value computed from the table
  // column (schema, table, column) as a statement or a view definition names it, without
  // the catalog: an empty schema is any schema (search_path decides), table "*" any table,
  // column "*" every column of the table (a whole-row reference). Fail closed: when in
  // doubt, a rule matches. The returned rule lives as long as the Masker.
  const ColumnRule* MatchOrigin(absl::string_view schema, absl::string_view table,
                                absl::string_view column) const;

  // `rule` with style REDACT (NULL stays NULL): for values an expression computed from a
  // masked column (`reverse(ssn)`), where PARTIAL or KEYED_HASH of the computed text would
  // reveal the original or mean nothing. Lives as long as the Masker.
  const ColumnRule& Redacted(const ColumnRule& rule) const;

  // The masked form of a whole value under `rule`; nullopt means SQL NULL (style NULL).
  // Counts one value for rule.text when `counts` is given.
  // The same, appended to *out (no allocation when *out has room); false, with nothing
  // appended, when the column's style is NULL. Counts are the caller's.
  bool AppendWhole(const ColumnRule& rule, absl::string_view value, std::string* out) const {
    if (rule.mask.style == v1::MASK_STYLE_NULL) return false;
    AppendReplacement(rule.mask, value, out);
    return true;
  }
  std::optional<std::string> MaskWhole(const ColumnRule& rule, absl::string_view value,
                                       MaskCounts* counts = nullptr) const;

  // Runs the profile's detectors over `value`. False when nothing matched: *out is left
  // untouched and nothing is allocated (the common case). True: *out is `value` with
  // every match replaced, and `counts` (if given) gains one per match.
  // Detectors run in profile order; a later detector's match that overlaps a range
  // already claimed by an earlier one is dropped (put SSN before ABA to report a 9-digit
  // number valid as both as an SSN).
  bool MaskText(absl::string_view value, std::string* out, MaskCounts* counts) const;

  // "pii_" + 16 lower-hex digits of HMAC-SHA256(key, value). Requires a key.
  std::string KeyedHash(absl::string_view value) const;

 private:
  struct CompiledDetector {
    std::unique_ptr<ContentDetector> detector;
    std::string name;
    Replacement mask;
  };
  struct MacTemplate;

  Masker() = default;
  void AppendReplacement(const Replacement& r, absl::string_view value, std::string* out) const;
  void AppendKeyedHash(absl::string_view value, std::string* out) const;

  std::string name_;
  std::vector<ColumnRule> rules_;
  std::vector<ColumnRule> redacted_;  // by ColumnRule::index
  std::vector<CompiledDetector> detectors_;
  bool need_digit_ = false;
  bool need_at_ = false;
  bool need_any_ = false;
  std::unique_ptr<MacTemplate> mac_;
};

// One profile holding every column rule and detector of `profiles`, in their order, named
// "a+b": the session floor when several profiles apply to a workload
// (policy::PolicyEvaluator::MaskProfilesFor). A value two profiles' rules match takes the
// first one's style; a span two detectors find goes to the earlier one (MaskText).
v1::MaskProfile MergeProfiles(const std::vector<const v1::MaskProfile*>& profiles);

// PARTIAL on its own (exposed for tests): appends `value` with all but the last
// `keep_last` characters masked (see above) to *out.
void AppendPartial(absl::string_view value, uint32_t keep_last, std::string* out);

}  // namespace interlock::mask
