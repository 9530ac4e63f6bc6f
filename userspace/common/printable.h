// Text that came from an agent, a token or a recording, made safe to show on a terminal:
// control bytes, invalid UTF-8 and code points that make a terminal act or reorder text
// (C1 controls, bidirectional overrides: CVE-2021-42574) are shown as escapes (\x1b,
// \u{202e}) instead of reaching the terminal. Used by every CLI view (replay, approvals,
// sessions).
//
//   std::printf("statement  %s\n", common::Visible(r.statement()).c_str());
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace interlock::common {

struct Printed {
  std::string text;
  size_t chars = 0;  // display width, counting one per code point
  bool cut = false;
};

// `s` with every control byte, invalid UTF-8 byte and unsafe code point escaped (\n \r \t
// \xNN, \u{NNNN}); tabs kept when `keep_tabs`. At most `max_chars` characters (0 = no cap),
// never cutting inside an escape; `cut` says whether anything was left out.
Printed Printable(absl::string_view s, size_t max_chars, bool keep_tabs = false);

// Printable(s, 0).text: all of `s`, escaped.
std::string Visible(absl::string_view s);

}  // namespace interlock::common
