#include "userspace/common/printable.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace interlock::common {
namespace {

// The code point of the valid, shortest-form UTF-8 sequence of 2..4 bytes at s[i], and its
// length; length 0 when the bytes there are not one.
size_t Utf8Sequence(absl::string_view s, size_t i, uint32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t c = 0, min = 0;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2, c = b0 & 0x1f, min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    n = 3, c = b0 & 0x0f, min = 0x800;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4, c = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    c = (c << 6) | (b & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  *cp = c;
  return n;
}

// Non-ASCII code points shown as themselves. Not the C1 controls (terminals act on some), and
// not the bidirectional overrides, isolates and marks, which make a terminal show text in
// another order than it was recorded (CVE-2021-42574, "Trojan Source").
bool PassesThrough(uint32_t c) {
  if (c < 0xa0) return false;
  if (c == 0x061c || c == 0x200e || c == 0x200f) return false;
  if (c >= 0x202a && c <= 0x202e) return false;
  if (c >= 0x2066 && c <= 0x2069) return false;
  return true;
}

}  // namespace

Printed Printable(absl::string_view s, size_t max_chars, bool keep_tabs) {
  Printed out;
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::string piece;
    size_t used = 1, width = 0;
    if (c >= 0x20 && c < 0x7f) {
      piece.assign(1, static_cast<char>(c));
    } else if (c == '\t' && keep_tabs) {
      piece = "\t";
    } else if (c == '\n') {
      piece = "\\n";
    } else if (c == '\r') {
      piece = "\\r";
    } else if (c == '\t') {
      piece = "\\t";
    } else if (uint32_t cp = 0; c >= 0x80 && (used = Utf8Sequence(s, i, &cp)) != 0) {
      if (PassesThrough(cp)) {
        piece = std::string(s.substr(i, used));
        width = 1;
      } else {
        piece = absl::StrFormat("\\u{%04x}", cp);
      }
    } else {
      used = 1;
      piece = absl::StrFormat("\\x%02x", c);
    }
    if (width == 0) width = piece.size();
    if (max_chars != 0 && out.chars + width > max_chars) {
      out.cut = true;
      break;
    }
    out.text.append(piece);
    out.chars += width;
    i += used;
  }
  return out;
}

std::string Visible(absl::string_view s) { return Printable(s, 0).text; }

}  // namespace interlock::common
