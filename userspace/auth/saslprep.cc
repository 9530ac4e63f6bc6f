#include "userspace/auth/saslprep.h"

#include <openssl/crypto.h>
#include <unicode/unorm2.h>
#include <unicode/utypes.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace interlock::auth {
namespace {

struct CodePointRange {
  char32_t first;
  char32_t last;
};

#include "userspace/auth/saslprep_tables.inc"

template <size_t N>
bool InTable(char32_t cp, const CodePointRange (&table)[N]) {
  const CodePointRange* end = table + N;
  const CodePointRange* it = std::lower_bound(
      table, end, cp, [](const CodePointRange& r, char32_t c) { return r.last < c; });
  return it != end && it->first <= cp;
}

// A fixed-size buffer of password material, wiped on destruction. Sized once, never
// grown: growth would leave unwiped copies in freed memory.
template <typename T>
class WipedBuffer {
 public:
  explicit WipedBuffer(size_t n) : data_(n) {}
  ~WipedBuffer() { OPENSSL_cleanse(data_.data(), data_.size() * sizeof(T)); }
  WipedBuffer(const WipedBuffer&) = delete;
  WipedBuffer& operator=(const WipedBuffer&) = delete;
  T* data() { return data_.data(); }
  T& operator[](size_t i) { return data_[i]; }
  size_t capacity() const { return data_.size(); }

 private:
  std::vector<T> data_;
};

// Decodes one UTF-8 sequence at `s[i]` (RFC 3629; same acceptance as PostgreSQL's
// pg_utf8_islegal). Returns its length, or 0 when ill-formed.
size_t DecodeUtf8(absl::string_view s, size_t i, char32_t* out) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    *out = b0;
    return 1;
  }
  size_t len;
  char32_t cp;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // > U+10FFFF
  } else {
    return 0;  // continuation byte, C0/C1 (overlong) or F5..FF
  }
  if (s.size() - i < len) return 0;
  for (size_t k = 1; k < len; ++k) {
    unsigned char b = byte(i + k);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  *out = cp;
  return len;
}

// The NFKC normalization of code points [in, in + n), as UTF-8. ICU 72 implements Unicode
// 15 normalization, PostgreSQL 15 ships Unicode 14 tables: normalization is stable for
// assigned characters, and anything unassigned in Unicode 3.2 was refused before we get
// here, so the two agree on every input this sees.
Secret NormalizeNfkc(const char32_t* in, size_t n) {
  UErrorCode status = U_ZERO_ERROR;
  const UNormalizer2* nfkc = unorm2_getNFKCInstance(&status);
  if (U_FAILURE(status)) {
    std::fprintf(stderr, "auth: saslprep: icu nfkc unavailable: %s\n", u_errorName(status));
    std::abort();
  }
  WipedBuffer<UChar> utf16(2 * n);
  size_t len16 = 0;
  for (size_t i = 0; i < n; ++i) {
    char32_t cp = in[i];
    if (cp >= 0x10000) {
      utf16[len16++] = static_cast<UChar>(0xD800 + ((cp - 0x10000) >> 10));
      utf16[len16++] = static_cast<UChar>(0xDC00 + ((cp - 0x10000) & 0x3FF));
    } else {
      utf16[len16++] = static_cast<UChar>(cp);
    }
  }
  // Preflight for the exact size (NFKC can expand one character into 18).
  int32_t out_len =
      unorm2_normalize(nfkc, utf16.data(), static_cast<int32_t>(len16), nullptr, 0, &status);
  if (status != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(status)) {
    std::fprintf(stderr, "auth: saslprep: icu nfkc failed: %s\n", u_errorName(status));
    std::abort();
  }
  status = U_ZERO_ERROR;
  WipedBuffer<UChar> normalized(static_cast<size_t>(out_len) + 1);
  out_len = unorm2_normalize(nfkc, utf16.data(), static_cast<int32_t>(len16), normalized.data(),
                             static_cast<int32_t>(normalized.capacity()), &status);
  if (U_FAILURE(status)) {
    std::fprintf(stderr, "auth: saslprep: icu nfkc failed: %s\n", u_errorName(status));
    std::abort();
  }
  WipedBuffer<char> utf8(3 * static_cast<size_t>(out_len));  // a UTF-16 unit -> <= 3 bytes
  size_t len8 = 0;
  for (int32_t i = 0; i < out_len; ++i) {
    char32_t cp = normalized[i];
    if (cp >= 0xD800 && cp <= 0xDBFF && i + 1 < out_len) {
      cp = 0x10000 + ((cp - 0xD800) << 10) + (normalized[i + 1] - 0xDC00);
      ++i;
    }
    if (cp < 0x80) {
      utf8[len8++] = static_cast<char>(cp);
    } else if (cp < 0x800) {
      utf8[len8++] = static_cast<char>(0xC0 | (cp >> 6));
      utf8[len8++] = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      utf8[len8++] = static_cast<char>(0xE0 | (cp >> 12));
      utf8[len8++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      utf8[len8++] = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      utf8[len8++] = static_cast<char>(0xF0 | (cp >> 18));
      utf8[len8++] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      utf8[len8++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      utf8[len8++] = static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return Secret(absl::string_view(utf8.data(), len8));
}

}  // namespace

bool IsValidUtf8(absl::string_view bytes) {
  char32_t cp;
  for (size_t i = 0; i < bytes.size();) {
    size_t n = DecodeUtf8(bytes, i, &cp);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// Follows pg_saslprep (src/common/saslprep.c) step by step, including one quirk: the
// prohibited, unassigned and bidi checks run over the *mapped* code points, before NFKC,
// not over the normalized output as RFC 3454 says. It matters for e.g. U+0340 (prohibited,
// C.8, but NFKC maps it to the allowed U+0300) and for compatibility characters whose
// bidi class differs from their NFKC form's; matching the server is what counts.
SaslPrepResult PgSaslPrep(absl::string_view password) {
  bool ascii = std::all_of(password.begin(), password.end(),
                           [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return {Secret(password), SaslPrepOutcome::kAscii};
  if (!IsValidUtf8(password)) return {Secret(password), SaslPrepOutcome::kInvalidUtf8};

  // 1) Map: C.1.2 non-ASCII spaces to U+0020 (checked first: U+200B is in both tables),
  //    B.1 to nothing.
  WipedBuffer<char32_t> mapped(password.size());
  size_t n = 0;
  for (size_t i = 0; i < password.size();) {
    char32_t cp = 0;
    i += DecodeUtf8(password, i, &cp);
    if (InTable(cp, kNonAsciiSpace)) {
      mapped[n++] = U' ';
    } else if (!InTable(cp, kMappedToNothing)) {
      mapped[n++] = cp;
    }
  }
  if (n == 0) return {Secret(password), SaslPrepOutcome::kProhibited};  // empty after map

  // 3) Prohibit (over the mapped code points, as PostgreSQL does).
  for (size_t i = 0; i < n; ++i) {
    if (InTable(mapped[i], kProhibitedOutput) || InTable(mapped[i], kUnassigned)) {
      return {Secret(password), SaslPrepOutcome::kProhibited};
    }
  }
  // 4) Bidi (RFC 3454 section 6): with any RandALCat character, no LCat character, and
  //    RandALCat first and last.
  bool has_rand_al = false;
  for (size_t i = 0; i < n && !has_rand_al; ++i) has_rand_al = InTable(mapped[i], kRandALCat);
  if (has_rand_al) {
    for (size_t i = 0; i < n; ++i) {
      if (InTable(mapped[i], kLCat)) return {Secret(password), SaslPrepOutcome::kProhibited};
    }
    if (!InTable(mapped[0], kRandALCat) || !InTable(mapped[n - 1], kRandALCat)) {
      return {Secret(password), SaslPrepOutcome::kProhibited};
    }
  }
  // 2) Normalize. PostgreSQL normalizes before the checks above but discards the result
  //    when they fail; normalizing last gives the same answer with less work.
  return {NormalizeNfkc(mapped.data(), n), SaslPrepOutcome::kPrepared};
}

}  // namespace interlock::auth
