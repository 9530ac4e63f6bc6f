// Content detectors: find sensitive values (SSNs, payment cards, IBANs, ABA routing
// numbers, email addresses, phone numbers, custom RE2 patterns) anywhere inside an
// arbitrary text value — a single column value, a whole JSON document from row_to_json,
// a string_agg of many values, a CSV line of COPY output.
//
// Every detector finds candidates with a hand-written scanner and then validates them
// (checksums, reserved ranges, word boundaries), so near-misses stay unmasked. Results
// are [begin, end) byte ranges, in increasing order, non-overlapping, leftmost-first.
// Only DETECTOR_CUSTOM uses RE2.
//
// Speed: the digit runs of a value are found once (an early-exit scan 8 bytes per step
// to the first digit, then a 64-byte bitmap per step: SSE2 on x86-64, SWAR elsewhere)
// and shared by the digit-based detectors, which only look at the bytes around each run;
// email jumps from '@' to '@' (memchr). A value without a digit or an '@' costs one fast
// scan (~20 ns for 200 bytes).
// MayContainCandidate() is that pre-scan for a whole set of detectors.
//
// Word boundaries (all digit-based detectors): a match is not preceded or followed by an
// ASCII letter or digit, and not by a '-' or '.' that continues a longer number
// ("1-078-05-1120", "123456789.50" are not SSNs; a space never joins numbers, so
// "078 05 1120 219 09 9999" holds two).
// Grouped card numbers are the one exception: a card followed by another digit group
// ("4111 1111 1111 1111 2024") is still a card.
//
// Usage:
//   INTERLOCK_ASSIGN_OR_RETURN(auto ssn, ContentDetector::Create(v1::DETECTOR_SSN));
//   SpanList spans;
//   ssn->FindAll(R"({"ssn":"078-05-1120"})", &spans);  // spans = {{8, 19}}
//
// Pure: no I/O, no global state; const methods are safe to call concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "interlock/v1/policy.pb.h"

namespace re2 {
class RE2;
}

namespace interlock::mask {

// A match: bytes [begin, end) of the scanned text. Trivial on purpose (no member
// initializers), so arrays of it cost nothing to declare.
struct Span {
  size_t begin;
  size_t end;
  bool operator==(const Span& o) const { return begin == o.begin && end == o.end; }
};

// Small on the stack; allocates only past 8 matches.
using SpanList = absl::InlinedVector<Span, 8>;

// The maximal runs of ASCII digits in a text, in order: computed once per value and
// shared by all digit-based detectors. On the stack; allocates only past 64 runs.
// (A minimal vector: absl::InlinedVector's out-of-line push_back cost a quarter of the
// time of a no-PII MaskText.)
class DigitRuns {
 public:
  DigitRuns() : data_(inline_) {}
  DigitRuns(const DigitRuns&) = delete;
  DigitRuns& operator=(const DigitRuns&) = delete;

  void push_back(const Span& s) {
    if (size_ == capacity_) Grow();
    data_[size_++] = s;
  }
  void clear() { size_ = 0; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const Span* begin() const { return data_; }
  const Span* end() const { return data_ + size_; }
  const Span& operator[](size_t i) const { return data_[i]; }

 private:
  friend void FindDigitRuns(absl::string_view text, DigitRuns* runs);
  static constexpr size_t kInline = 64;
  void Grow();

  Span inline_[kInline];
  std::unique_ptr<Span[]> heap_;
  Span* data_;
  size_t size_ = 0;
  size_t capacity_ = kInline;
};

// RE2 memory budget for one custom pattern (program + DFA cache). A pattern that needs
// more fails to compile (INVALID_ARGUMENT) instead of growing without bound.
inline constexpr int64_t kMaxCustomPatternMemory = 4 << 20;
// Longest custom pattern accepted, in bytes.
inline constexpr size_t kMaxCustomPatternLength = 4096;

// ---- Scanners: append every valid occurrence in `text` to *out (increasing order). ----

// US SSN: "078-05-1120", "078 05 1120" (one separator kind) or exactly 9 digits alone.
// Area 000, 666 and 900-999, group 00 and serial 0000 are rejected.
void FindSsns(absl::string_view text, SpanList* out);

// Payment cards: 13-19 digits, Luhn-valid, with a payment-card major industry identifier
// (first digit 2-6: Mastercard 2-series, Amex/Diners/JCB, Visa, Mastercard/Maestro,
// Discover/UnionPay; this keeps 13-digit epoch-millisecond timestamps and other long ids
// out). Either one run of digits, or groups separated by one kind of single ' ' or '-':
// 4-4-4-...-k (k = 1..4; 4-4-4-4, 4-4-4-1, 4-4-4-4-3) or 4-6-5 / 4-6-4 (Amex, Diners).
void FindCards(absl::string_view text, SpanList* out);

// IBAN (ISO 13616): 2 letters + 2 check digits + BBAN, either compact or with single
// spaces every 4 characters; case-insensitive; the length must match the country (see
// IbanLengthForCountry) and the ISO 7064 mod-97 remainder must be 1.
void FindIbans(absl::string_view text, SpanList* out);

// US ABA routing numbers: exactly 9 digits alone, prefix 00-12, 21-32, 61-72 or 80,
// 3-7-1 checksum. Note a 9-digit number can be both an SSN and an ABA number; the
// Masker applies detectors in profile order, and the first one to claim a range wins.
void FindAbaNumbers(absl::string_view text, SpanList* out);

// Email: local@domain, conservative: local part [A-Za-z0-9._%+-]{1,64} (no leading,
// trailing or doubled dot), domain of 2+ labels [A-Za-z0-9-] (no leading/trailing '-',
// at most 63 each, 253 in all) ending in a TLD of 2+ ASCII letters. UTF-8 is accepted in
// the local part when the whole local part stays within 64 bytes (josé.garcía@...;
// longer non-ASCII text glued to the left is surrounding text, as in CJK) and in domain
// labels other than the TLD; non-ASCII right after the TLD ends the address
// ("alice@example.com。"). Non-ASCII or punycode TLDs are not detected.
void FindEmails(absl::string_view text, SpanList* out);

// Phones: E.164 ("+" then 8-15 digits starting 1-9, single ' ' or '-' allowed between
// digit groups) and NANP: "(NXX) NXX-XXXX" (space after ')' optional), "NXX-NXX-XXXX",
// "NXX.NXX.XXXX", each with an optional leading "+1 ", "+1-", "1 " or "1-"; N = 2-9.
void FindPhones(absl::string_view text, SpanList* out);

// ---- Validators (exposed for tests and for callers that already have a candidate). ----

// `digits` is all ASCII digits.
bool LuhnValid(absl::string_view digits);
// Area/group/serial of an SSN (digits only, 3+2+4).
bool SsnValid(absl::string_view area, absl::string_view group, absl::string_view serial);
// Exactly 9 ASCII digits: prefix range and 3-7-1 checksum.
bool AbaValid(absl::string_view nine_digits);
// Compact IBAN (no spaces), either case: country, length, check digits, mod-97.
bool IbanValid(absl::string_view compact);
// Total IBAN length (without spaces) for an ISO 3166 country code in either case, or 0
// when unknown. The table covers every SEPA country (EU/EEA, GB, CH, MC, SM, VA, AD, GI)
// and the other registry countries in common use (AE, AL, AZ, BA, BH, BR, BY, CR, DO, EG,
// FO, GE, GL, GT, IL, IQ, JO, KW, KZ, LB, LC, LY, MD, ME, MK, MR, MU, PK, PS, QA, RS, SA,
// SC, SD, ST, SV, TL, TN, TR, UA, VG, XK).
int IbanLengthForCountry(absl::string_view country);

// Pointer to the first ASCII digit in [begin, end), or `end`. Eight bytes per step.
const char* FindAsciiDigit(const char* begin, const char* end);

// Appends the digit runs of `text` to *runs.
void FindDigitRuns(absl::string_view text, DigitRuns* runs);

// One compiled detector from a profile: a built-in scanner or an RE2 pattern.
class ContentDetector {
 public:
  // `pattern` only for DETECTOR_CUSTOM (required there). INVALID_ARGUMENT for
  // DETECTOR_UNSPECIFIED / unknown values, a missing, too long, empty-matching or
  // invalid pattern, or a pattern given to a built-in detector.
  static absl::StatusOr<std::unique_ptr<ContentDetector>> Create(v1::Detector kind,
                                                                 absl::string_view pattern = {});
  ~ContentDetector();

  v1::Detector kind() const { return kind_; }
  // Needs an ASCII digit / an '@' in a value to match anything (built-ins only).
  bool needs_digit() const { return needs_digit_; }
  bool needs_at() const { return needs_at_; }

  // Appends every occurrence in `text` (increasing, non-overlapping) to *out.
  void FindAll(absl::string_view text, SpanList* out) const;
  // The same with the digit runs of `text` already computed (FindDigitRuns); they are
  // ignored by detectors that do not need digits.
  void FindAll(absl::string_view text, const DigitRuns& runs, SpanList* out) const;

 private:
  ContentDetector(v1::Detector kind, std::unique_ptr<re2::RE2> re);

  v1::Detector kind_;
  std::unique_ptr<re2::RE2> re_;
  bool needs_digit_ = false;
  bool needs_at_ = false;
};

// The single pre-scan: false when `text` contains none of what the detectors need
// (digit and/or '@'), so none of them can match. Always true when `any_byte`
// (a custom detector is present).
bool MayContainCandidate(absl::string_view text, bool need_digit, bool need_at, bool any_byte);

}  // namespace interlock::mask
