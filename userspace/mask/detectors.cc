#include "userspace/mask/detectors.h"

#include <re2/re2.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <array>
#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace interlock::mask {
namespace {

inline bool IsDigit(char c) { return static_cast<unsigned char>(c - '0') < 10; }
inline bool IsAlpha(char c) { return static_cast<unsigned char>((c | 0x20) - 'a') < 26; }
inline bool IsAlnum(char c) { return IsDigit(c) || IsAlpha(c); }
inline int DigitValue(char c) { return c - '0'; }

// End of the digit run starting at `i`.
inline size_t RunEnd(absl::string_view t, size_t i) {
  while (i < t.size() && IsDigit(t[i])) ++i;
  return i;
}

// Connectors that continue a number across a match boundary: '-' and '.'
// ("1-078-05-1120", "123456789.50"). A space does not: values joined by spaces
// (string_agg(ssn, ' ')) must still be found.
inline bool IsConnector(char c) { return c == '-' || c == '.'; }

// The byte before `pos` does not extend a number that starts at `pos`.
inline bool CleanBefore(absl::string_view t, size_t pos) {
  if (pos == 0) return true;
  char c = t[pos - 1];
  if (IsAlnum(c)) return false;
  return !(IsConnector(c) && pos >= 2 && IsDigit(t[pos - 2]));
}

// The byte at `pos` does not extend a number that ends at `pos`.
inline bool CleanAfter(absl::string_view t, size_t pos) {
  if (pos >= t.size()) return true;
  char c = t[pos];
  if (IsAlnum(c)) return false;
  return !(IsConnector(c) && pos + 1 < t.size() && IsDigit(t[pos + 1]));
}

inline bool AlnumAt(absl::string_view t, size_t pos) { return pos < t.size() && IsAlnum(t[pos]); }

// Calls `f(begin, end)` for each digit run; `f` returns where to resume (at least `end`,
// never inside a later run: every match ends at a run end or at a non-digit).
template <typename F>
inline void ForEachDigitRun(const DigitRuns& runs, F f) {
  size_t resume = 0;
  for (const Span& r : runs) {
    if (r.begin < resume) continue;
    resume = f(r.begin, r.end);
  }
}

// ---- SSN ----

void ScanSsns(absl::string_view t, const DigitRuns& runs, SpanList* out) {
  ForEachDigitRun(runs, [&](size_t i, size_t e) -> size_t {
    size_t len = e - i;
    if (len == 9) {
      if (CleanBefore(t, i) && CleanAfter(t, e) &&
          SsnValid(t.substr(i, 3), t.substr(i + 3, 2), t.substr(i + 5, 4))) {
        out->push_back({i, e});
      }
      return e;
    }
    if (len != 3 || e + 1 >= t.size() || (t[e] != '-' && t[e] != ' ')) return e;
    char sep = t[e];
    size_t g = e + 1;
    size_t ge = RunEnd(t, g);
    if (ge - g != 2 || ge >= t.size() || t[ge] != sep) return e;
    size_t s = ge + 1;
    size_t se = RunEnd(t, s);
    if (se - s != 4 || !CleanBefore(t, i) || !CleanAfter(t, se) ||
        !SsnValid(t.substr(i, 3), t.substr(g, 2), t.substr(s, 4))) {
      return e;
    }
    out->push_back({i, se});
    return se;
  });
}

// ---- Card ----

// First digit: the major industry identifiers used by payment cards.
inline bool CardMii(char first) { return first >= '2' && first <= '6'; }

// Group lengths of a grouped card number: 4-4-...-k (k = 1..4, 4+ groups) or 4-6-5 / 4-6-4.
bool CardGroupsOk(const int* g, int m) {
  int total = 0;
  for (int k = 0; k < m; ++k) total += g[k];
  if (total < 13 || total > 19 || g[0] != 4) return false;
  if (m == 3) return g[1] == 6 && (g[2] == 4 || g[2] == 5);
  if (m < 4) return false;
  for (int k = 1; k < m - 1; ++k) {
    if (g[k] != 4) return false;
  }
  return g[m - 1] >= 1 && g[m - 1] <= 4;
}

void ScanCards(absl::string_view t, const DigitRuns& runs, SpanList* out) {
  ForEachDigitRun(runs, [&](size_t i, size_t e) -> size_t {
    size_t len = e - i;
    if (len >= 13 && len <= 19) {
      if (CardMii(t[i]) && CleanBefore(t, i) && CleanAfter(t, e) && LuhnValid(t.substr(i, len))) {
        out->push_back({i, e});
      }
      return e;
    }
    if (len != 4 || !CardMii(t[i]) || e + 1 >= t.size() || (t[e] != ' ' && t[e] != '-') ||
        !IsDigit(t[e + 1]) || (i > 0 && IsAlnum(t[i - 1]))) {
      return e;
    }
    // Grouped: collect up to 5 groups with one separator kind, then take the longest
    // prefix of groups that is a card layout and passes Luhn. A following group does
    // not disqualify ("4111 1111 1111 1111 2024" is still a card).
    const char sep = t[e];
    int glen[5] = {4};
    size_t gend[5] = {e};
    int k = 1;
    size_t p = e;
    while (k < 5 && p + 1 < t.size() && t[p] == sep && IsDigit(t[p + 1])) {
      size_t ge = RunEnd(t, p + 1);
      glen[k] = static_cast<int>(ge - (p + 1));
      gend[k] = ge;
      ++k;
      p = ge;
      if (glen[k - 1] > 6) break;
    }
    for (int m = k; m >= 3; --m) {
      if (!CardGroupsOk(glen, m) || AlnumAt(t, gend[m - 1])) continue;
      char digits[19];
      size_t n = 0;
      for (size_t q = i; q < gend[m - 1]; ++q) {
        if (IsDigit(t[q])) digits[n++] = t[q];
      }
      if (LuhnValid(absl::string_view(digits, n))) {
        out->push_back({i, gend[m - 1]});
        return gend[m - 1];
      }
    }
    return e;
  });
}

// ---- IBAN ----

struct IbanCountry {
  char code[3];
  uint8_t length;
};

// ISO 13616 IBAN registry (SWIFT), total lengths.
constexpr IbanCountry kIbanCountries[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22},
    {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27},
    {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28},
    {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20},
    {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20}, {"LV", 21}, {"LY", 25}, {"MC", 27},
    {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30}, {"NL", 18}, {"NO", 15},
    {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24},
    {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28},
    {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
};
constexpr size_t kMaxIbanLength = 34;

constexpr std::array<uint8_t, 26 * 26> MakeIbanLengthTable() {
  std::array<uint8_t, 26 * 26> table{};
  for (const IbanCountry& c : kIbanCountries) {
    table[(c.code[0] - 'A') * 26 + (c.code[1] - 'A')] = c.length;
  }
  return table;
}
constexpr std::array<uint8_t, 26 * 26> kIbanLength = MakeIbanLengthTable();

inline int UpperIndex(char c) { return (c | 0x20) - 'a'; }

void ScanIbans(absl::string_view t, const DigitRuns& runs, SpanList* out) {
  ForEachDigitRun(runs, [&](size_t i, size_t e) -> size_t {
    // The check digits follow the two-letter country code at a word start.
    if (i < 2 || e - i < 2 || !IsAlpha(t[i - 1]) || !IsAlpha(t[i - 2]) ||
        (i > 2 && IsAlnum(t[i - 3]))) {
      return e;
    }
    const size_t b = i - 2;
    const size_t want = kIbanLength[UpperIndex(t[b]) * 26 + UpperIndex(t[b + 1])];
    if (want == 0) return e;
    char buf[kMaxIbanLength];
    size_t have = 4;
    std::memcpy(buf, t.data() + b, 4);
    size_t p = i + 2;
    if (p < t.size() && t[p] == ' ') {
      // Printed form: groups of four separated by one space, the last group shorter.
      while (have < want && p + 1 < t.size() && t[p] == ' ' && IsAlnum(t[p + 1])) {
        ++p;
        size_t g = 0;
        while (p < t.size() && IsAlnum(t[p]) && g < 4 && have < want) {
          buf[have++] = t[p++];
          ++g;
        }
        if (g < 4 && have < want) break;
      }
    } else {
      while (p < t.size() && IsAlnum(t[p]) && have < want) buf[have++] = t[p++];
    }
    if (have != want || AlnumAt(t, p) || !IbanValid(absl::string_view(buf, have))) return e;
    out->push_back({b, p});
    return p;
  });
}

// ---- ABA ----

void ScanAbaNumbers(absl::string_view t, const DigitRuns& runs, SpanList* out) {
  ForEachDigitRun(runs, [&](size_t i, size_t e) -> size_t {
    if (e - i == 9 && CleanBefore(t, i) && CleanAfter(t, e) && AbaValid(t.substr(i, 9))) {
      out->push_back({i, e});
    }
    return e;
  });
}

// ---- Email ----

inline bool IsNonAscii(char c) { return static_cast<unsigned char>(c) >= 0x80; }
// Conservative RFC 5321 dot-atom subset.
inline bool IsAsciiLocalChar(char c) {
  return IsAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
inline bool IsLocalChar(char c) { return IsAsciiLocalChar(c) || IsNonAscii(c); }
inline bool IsLabelChar(char c) {
  return IsAlnum(c) || c == '-' || static_cast<unsigned char>(c) >= 0x80;
}

constexpr size_t kMaxEmailLocal = 64;
constexpr size_t kMaxEmailLabel = 63;
constexpr size_t kMaxEmailDomain = 253;

void ScanEmails(absl::string_view t, SpanList* out) {
  const char* base = t.data();
  const size_t n = t.size();
  size_t floor = 0;  // matches never overlap: the local part cannot reach back past this
  size_t pos = 0;
  while (pos < n) {
    const void* hit = std::memchr(base + pos, '@', n - pos);
    if (hit == nullptr) return;
    const size_t at = static_cast<size_t>(static_cast<const char*>(hit) - base);
    pos = at + 1;
    // Local part. ASCII first; if non-ASCII text is glued on the left, it belongs to the
    // address when the whole is a plausible RFC 6531 local part (josé.garcía@...), else
    // it is surrounding text (CJK without spaces) and only the ASCII part is taken.
    auto expand = [&](size_t j, bool utf8) {
      while (j > floor && (utf8 ? IsLocalChar(t[j - 1]) : IsAsciiLocalChar(t[j - 1])) &&
             !(t[j - 1] == '.' && t[j] == '.')) {
        --j;
      }
      return j;
    };
    size_t j = expand(at, false);
    if (at - j > kMaxEmailLocal) continue;
    if (j > floor && IsNonAscii(t[j - 1])) {
      const size_t wide = expand(j, true);
      if (at - wide <= kMaxEmailLocal) j = wide;
    }
    while (j < at && t[j] == '.') ++j;
    if (j == at || t[at - 1] == '.') continue;
    // Domain: labels separated by single dots; stop before a label that is not valid.
    size_t p = at + 1;
    size_t end = 0;
    size_t last_label = 0;
    int labels = 0;
    while (true) {
      size_t ls = p;
      while (p < n && IsLabelChar(t[p])) ++p;
      size_t len = p - ls;
      if (len == 0 || len > kMaxEmailLabel || t[ls] == '-' || t[p - 1] == '-') break;
      ++labels;
      end = p;
      last_label = ls;
      if (p + 1 < n && t[p] == '.' && IsLabelChar(t[p + 1])) {
        ++p;
        continue;
      }
      break;
    }
    if (labels < 2 || end - (at + 1) > kMaxEmailDomain) continue;
    // The TLD: 2+ ASCII letters. Non-ASCII right after it is surrounding text
    // ("alice@example.com。"), anything else ("c0m", "com-x") is not an address.
    size_t tld_end = last_label;
    while (tld_end < end && IsAlpha(t[tld_end])) ++tld_end;
    if (tld_end - last_label < 2 || (tld_end != end && !IsNonAscii(t[tld_end]))) continue;
    end = tld_end;
    out->push_back({j, end});
    floor = end;
    pos = end;
  }
}

// ---- Phone ----

constexpr int kMinE164Digits = 8;
constexpr int kMaxE164Digits = 15;

// "+" at b, then digit groups; sets *end. The first digit is 1-9.
bool MatchE164(absl::string_view t, size_t b, size_t* end) {
  size_t p = b + 1;
  if (p >= t.size() || !IsDigit(t[p]) || t[p] == '0') return false;
  int digits = 0;
  size_t e = p;
  while (true) {
    size_t r = RunEnd(t, p);
    int len = static_cast<int>(r - p);
    if (digits + len > kMaxE164Digits) {
      if (digits == 0) return false;  // one run longer than any phone number
      break;                          // the next group belongs to something else
    }
    digits += len;
    e = r;
    if (r + 1 < t.size() && (t[r] == ' ' || t[r] == '-') && IsDigit(t[r + 1])) {
      p = r + 1;
      continue;
    }
    break;
  }
  if (digits < kMinE164Digits || AlnumAt(t, e)) return false;
  *end = e;
  return true;
}

// Exactly `len` digits at p (a whole run), first digit 2-9 when `n_digit`.
inline bool DigitsAt(absl::string_view t, size_t p, size_t len, bool n_digit) {
  if (p + len > t.size() || RunEnd(t, p) != p + len) return false;
  return !n_digit || t[p] >= '2';
}

// NANP without the country prefix at p: "(NXX) NXX-XXXX" or NXX-NXX-XXXX / NXX.NXX.XXXX.
bool MatchNanpCore(absl::string_view t, size_t p, size_t* end) {
  const size_t n = t.size();
  char sep;
  size_t q;
  if (p < n && t[p] == '(') {
    if (!DigitsAt(t, p + 1, 3, true) || p + 4 >= n || t[p + 4] != ')') return false;
    q = p + 5;
    if (q < n && t[q] == ' ') ++q;
    if (!DigitsAt(t, q, 3, true) || q + 3 >= n) return false;
    sep = t[q + 3];
    if (sep != '-' && sep != '.' && sep != ' ') return false;
  } else {
    if (!DigitsAt(t, p, 3, true) || p + 3 >= n) return false;
    sep = t[p + 3];
    if (sep != '-' && sep != '.') return false;
    q = p + 4;
    if (!DigitsAt(t, q, 3, true) || q + 3 >= n || t[q + 3] != sep) return false;
  }
  size_t s = q + 4;
  if (!DigitsAt(t, s, 4, false) || !CleanAfter(t, s + 4)) return false;
  *end = s + 4;
  return true;
}

// NANP with an optional "1 " / "1-" prefix, starting at the digit run at i.
bool MatchNanp(absl::string_view t, size_t i, size_t run_end, size_t* end) {
  if (run_end == i + 1 && t[i] == '1' && i + 2 < t.size() && (t[i + 1] == ' ' || t[i + 1] == '-')) {
    return MatchNanpCore(t, i + 2, end);
  }
  return MatchNanpCore(t, i, end);
}

void ScanPhones(absl::string_view t, const DigitRuns& runs, SpanList* out) {
  ForEachDigitRun(runs, [&](size_t i, size_t e) -> size_t {
    // Every form starts with '+', '(' + 3 digits, "1" + separator, or 3 digits.
    const size_t len = e - i;
    const bool plus = i >= 1 && t[i - 1] == '+';
    if (len != 3 && !plus && !(len == 1 && t[i] == '1')) return e;
    size_t end = 0;
    if (plus && !(i >= 2 && IsAlnum(t[i - 2]))) {
      // "+1 (415) 555-2671", "+1-415-555-2671" (NANP) or E.164; the longer one wins.
      size_t best = 0;
      if (t[i] == '1' && e == i + 1 && MatchNanp(t, i, e, &end)) best = end;
      if (MatchE164(t, i - 1, &end) && end > best) best = end;
      if (best != 0) {
        out->push_back({i - 1, best});
        return best;
      }
    }
    if (i >= 1 && t[i - 1] == '(' && !(i >= 2 && IsAlnum(t[i - 2])) &&
        MatchNanpCore(t, i - 1, &end)) {
      out->push_back({i - 1, end});
      return end;
    }
    if (CleanBefore(t, i) && MatchNanp(t, i, e, &end)) {
      out->push_back({i, end});
      return end;
    }
    return e;
  });
}

}  // namespace

// ---- Public scanners and validators ----

void FindSsns(absl::string_view text, SpanList* out) {
  DigitRuns runs;
  FindDigitRuns(text, &runs);
  ScanSsns(text, runs, out);
}
void FindCards(absl::string_view text, SpanList* out) {
  DigitRuns runs;
  FindDigitRuns(text, &runs);
  ScanCards(text, runs, out);
}
void FindIbans(absl::string_view text, SpanList* out) {
  DigitRuns runs;
  FindDigitRuns(text, &runs);
  ScanIbans(text, runs, out);
}
void FindAbaNumbers(absl::string_view text, SpanList* out) {
  DigitRuns runs;
  FindDigitRuns(text, &runs);
  ScanAbaNumbers(text, runs, out);
}
void FindEmails(absl::string_view text, SpanList* out) { ScanEmails(text, out); }
void FindPhones(absl::string_view text, SpanList* out) {
  DigitRuns runs;
  FindDigitRuns(text, &runs);
  ScanPhones(text, runs, out);
}

bool LuhnValid(absl::string_view digits) {
  if (digits.empty()) return false;
  int sum = 0;
  bool twice = false;
  for (size_t k = digits.size(); k-- > 0;) {
    if (!IsDigit(digits[k])) return false;
    int d = DigitValue(digits[k]);
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return sum % 10 == 0;
}

bool SsnValid(absl::string_view area, absl::string_view group, absl::string_view serial) {
  if (area.size() != 3 || group.size() != 2 || serial.size() != 4) return false;
  if (area == "000" || area == "666" || area[0] == '9') return false;
  return group != "00" && serial != "0000";
}

bool AbaValid(absl::string_view d) {
  if (d.size() != 9) return false;
  int v[9];
  bool all_zero = true;
  for (int k = 0; k < 9; ++k) {
    if (!IsDigit(d[k])) return false;
    v[k] = DigitValue(d[k]);
    all_zero = all_zero && v[k] == 0;
  }
  if (all_zero) return false;
  // Federal Reserve routing symbol: 00-12 (banks; 00 US government), 21-32 (thrifts),
  // 61-72 (electronic), 80 (traveler's cheques).
  int prefix = v[0] * 10 + v[1];
  if (!((prefix <= 12) || (prefix >= 21 && prefix <= 32) || (prefix >= 61 && prefix <= 72) ||
        prefix == 80)) {
    return false;
  }
  int sum = 3 * (v[0] + v[3] + v[6]) + 7 * (v[1] + v[4] + v[7]) + (v[2] + v[5] + v[8]);
  return sum % 10 == 0;
}

int IbanLengthForCountry(absl::string_view country) {
  if (country.size() != 2 || !IsAlpha(country[0]) || !IsAlpha(country[1])) return 0;
  return kIbanLength[UpperIndex(country[0]) * 26 + UpperIndex(country[1])];
}

bool IbanValid(absl::string_view s) {
  const int want = IbanLengthForCountry(s.substr(0, 2));
  if (want == 0 || s.size() != static_cast<size_t>(want)) return false;
  if (!IsDigit(s[2]) || !IsDigit(s[3])) return false;
  // Check digits are 02-98 (98 - remainder); 00, 01 and 99 would also pass mod-97.
  int check = DigitValue(s[2]) * 10 + DigitValue(s[3]);
  if (check < 2 || check > 98) return false;
  // ISO 7064 MOD 97-10: BBAN, then country and check digits; letters are 10..35.
  // The number has up to 34 * 2 digits: accumulate, reducing only when the next step
  // could overflow (acc < 10^16, so acc * 100 + 99 < 2^64).
  uint64_t r = 0;
  auto feed = [&r](char c) {
    if (r >= 10'000'000'000'000'000ULL) r %= 97;
    if (IsDigit(c)) {
      r = r * 10 + DigitValue(c);
    } else if (IsAlpha(c)) {
      r = r * 100 + UpperIndex(c) + 10;
    } else {
      return false;
    }
    return true;
  };
  for (size_t k = 4; k < s.size(); ++k) {
    if (!feed(s[k])) return false;
  }
  for (size_t k = 0; k < 4; ++k) {
    if (!feed(s[k])) return false;
  }
  return r % 97 == 1;
}

namespace {

// SWAR "has byte between 0x2f and 0x3a" (exact per byte, no carries across bytes): the
// top bit of each byte of the result is set iff that byte of `x` is an ASCII digit.
inline uint64_t DigitBytes(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  const uint64_t y = x & kLow7;
  return (kOnes * (127 + 0x3a) - y) & ~x & (y + kOnes * (127 - 0x2f)) & kHigh;
}

// Up to eight bytes at p (the rest read as NUL, which is not a digit) in memory order:
// byte k of the text is bits 8k..8k+7.
inline uint64_t LoadWord(const char* p) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  if constexpr (std::endian::native == std::endian::big) x = __builtin_bswap64(x);
  return x;
}
inline uint64_t LoadPartialWord(const char* p, size_t len) {
  uint64_t x = 0;
  for (size_t k = 0; k < len; ++k) x |= uint64_t{static_cast<unsigned char>(p[k])} << (8 * k);
  return x;
}

// Bit k set iff p[k] is an ASCII digit, for k < len <= 64. The multiply gathers the eight
// per-byte flags (bits 0, 8, ..., 56 after the shift) into bits 56..63 without carries.
inline uint64_t DigitBitmap(const char* p, size_t len) {
  uint64_t mask = 0;
  size_t w = 0;
  for (; w + 8 <= len; w += 8) {
    const uint64_t flags = DigitBytes(LoadWord(p + w)) >> 7;
    mask |= ((flags * 0x0102040810204080ULL) >> 56) << w;
  }
  if (w < len) {
    const uint64_t flags = DigitBytes(LoadPartialWord(p + w, len - w)) >> 7;
    mask |= ((flags * 0x0102040810204080ULL) >> 56) << w;
  }
  return mask;
}

// A full 64-byte block: SSE2 (always present on x86-64) when available.
inline uint64_t DigitBitmap64(const char* p) {
#if defined(__SSE2__)
  // Bias so the digits become the 10 smallest signed bytes, then one signed compare.
  const __m128i bias = _mm_set1_epi8(static_cast<char>(0x80 - '0'));
  const __m128i limit = _mm_set1_epi8(static_cast<char>(0x80 + 10));
  uint64_t mask = 0;
  for (int k = 0; k < 4; ++k) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, bias), limit);
    mask |= uint64_t{static_cast<uint16_t>(_mm_movemask_epi8(digit))} << (16 * k);
  }
  return mask;
#else
  return DigitBitmap(p, 64);
#endif
}

}  // namespace

void DigitRuns::Grow() {
  auto bigger = std::make_unique<Span[]>(capacity_ * 2);
  std::memcpy(bigger.get(), data_, size_ * sizeof(Span));
  heap_ = std::move(bigger);
  data_ = heap_.get();
  capacity_ *= 2;
}

const char* FindAsciiDigit(const char* p, const char* end) {
  while (end - p >= 8) {
    const uint64_t hit = DigitBytes(LoadWord(p));
    if (hit != 0) return p + (std::countr_zero(hit) >> 3);
    p += 8;
  }
  for (; p < end; ++p) {
    if (IsDigit(*p)) return p;
  }
  return end;
}

void FindDigitRuns(absl::string_view text, DigitRuns* runs) {
  // 64 bytes at a time as a bitmap; runs start at its 0->1 edges and end at its 1->0
  // edges. In a short last block the bits past the end are 0, so a run reaching the end
  // of the text ends at the edge just past it.
  const char* base = text.data();
  const size_t n = text.size();
  // The vector's fields live in locals: stores through data_ could alias them otherwise,
  // and reloading them per run cost a quarter of this function.
  Span* data = runs->data_;
  size_t size = runs->size_;
  size_t capacity = runs->capacity_;
  auto push = [&](size_t b, size_t e) {
    if (size == capacity) {
      runs->size_ = size;
      runs->Grow();
      data = runs->data_;
      capacity = runs->capacity_;
    }
    data[size++] = Span{b, e};
  };
  // Bytes before the first digit go 8 at a time with an early exit (most values have
  // no digit at all); the bitmap starts there.
  const size_t first = static_cast<size_t>(FindAsciiDigit(base, base + n) - base);
  uint64_t carry = 0;  // the last byte of the previous block is a digit
  size_t begin = 0;
  for (size_t off = first; off < n; off += 64) {
    const size_t len = n - off < 64 ? n - off : 64;
    const uint64_t mask = len == 64 ? DigitBitmap64(base + off) : DigitBitmap(base + off, len);
    const uint64_t prev = (mask << 1) | carry;
    uint64_t starts = mask & ~prev;
    uint64_t ends = ~mask & prev;
    if (carry != 0 && ends != 0) {  // the run open from the previous block ends here
      push(begin, off + std::countr_zero(ends));
      ends &= ends - 1;
    }
    while (starts != 0) {  // the k-th start pairs with the k-th remaining end
      begin = off + std::countr_zero(starts);
      starts &= starts - 1;
      if (ends == 0) break;  // open: continues into the next block
      push(begin, off + std::countr_zero(ends));
      ends &= ends - 1;
    }
    carry = mask >> 63;
  }
  if (carry != 0) push(begin, n);
  runs->size_ = size;
}

bool MayContainCandidate(absl::string_view text, bool need_digit, bool need_at, bool any_byte) {
  if (any_byte) return true;
  if (need_at && std::memchr(text.data(), '@', text.size()) != nullptr) return true;
  return need_digit &&
         FindAsciiDigit(text.data(), text.data() + text.size()) != text.data() + text.size();
}

// ---- ContentDetector ----

ContentDetector::ContentDetector(v1::Detector kind, std::unique_ptr<re2::RE2> re)
    : kind_(kind), re_(std::move(re)) {
  needs_at_ = kind == v1::DETECTOR_EMAIL;
  needs_digit_ = kind != v1::DETECTOR_EMAIL && kind != v1::DETECTOR_CUSTOM;
}

ContentDetector::~ContentDetector() = default;

absl::StatusOr<std::unique_ptr<ContentDetector>> ContentDetector::Create(
    v1::Detector kind, absl::string_view pattern) {
  switch (kind) {
    case v1::DETECTOR_SSN:
    case v1::DETECTOR_CARD:
    case v1::DETECTOR_IBAN:
    case v1::DETECTOR_ABA:
    case v1::DETECTOR_EMAIL:
    case v1::DETECTOR_PHONE:
      if (!pattern.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("pattern is only for DETECTOR_CUSTOM, not ", v1::Detector_Name(kind)));
      }
      return std::unique_ptr<ContentDetector>(new ContentDetector(kind, nullptr));
    case v1::DETECTOR_CUSTOM:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("detector ", static_cast<int>(kind), " is unspecified or unknown"));
  }
  if (pattern.empty()) return absl::InvalidArgumentError("DETECTOR_CUSTOM needs a pattern");
  if (pattern.size() > kMaxCustomPatternLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("pattern is ", pattern.size(), " bytes > max ", kMaxCustomPatternLength));
  }
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(kMaxCustomPatternMemory);
  auto re = std::make_unique<re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) return absl::InvalidArgumentError(absl::StrCat("invalid RE2: ", re->error()));
  if (RE2::PartialMatch("", *re)) {
    return absl::InvalidArgumentError("pattern matches the empty string");
  }
  return std::unique_ptr<ContentDetector>(new ContentDetector(kind, std::move(re)));
}

void ContentDetector::FindAll(absl::string_view text, SpanList* out) const {
  if (!needs_digit_) return FindAll(text, DigitRuns(), out);
  DigitRuns runs;
  FindDigitRuns(text, &runs);
  FindAll(text, runs, out);
}

void ContentDetector::FindAll(absl::string_view text, const DigitRuns& runs, SpanList* out) const {
  switch (kind_) {
    case v1::DETECTOR_SSN:
      return ScanSsns(text, runs, out);
    case v1::DETECTOR_CARD:
      return ScanCards(text, runs, out);
    case v1::DETECTOR_IBAN:
      return ScanIbans(text, runs, out);
    case v1::DETECTOR_ABA:
      return ScanAbaNumbers(text, runs, out);
    case v1::DETECTOR_EMAIL:
      return ScanEmails(text, out);
    case v1::DETECTOR_PHONE:
      return ScanPhones(text, runs, out);
    default:
      break;
  }
  const re2::StringPiece input(text.data(), text.size());
  re2::StringPiece m;
  size_t pos = 0;
  while (pos < text.size() && re_->Match(input, pos, text.size(), RE2::UNANCHORED, &m, 1)) {
    size_t b = static_cast<size_t>(m.data() - text.data());
    size_t e = b + m.size();
    if (e == b) {
      // An assertion-only match (\b): step over one UTF-8 character.
      pos = b + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xc0) == 0x80) ++pos;
      continue;
    }
    out->push_back({b, e});
    pos = e;
  }
}

}  // namespace interlock::mask
