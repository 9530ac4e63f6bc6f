// What the recording keeps of a frontend message when statement literals are withheld (the
// default; `audit_literals: true` records them in clear): the values an agent wrote into a
// statement (a card number in a WHERE clause, a bound parameter, a function-call argument)
// must not sit in clear in the recording any more than in the SIEM (PCI DSS 3.5.1). The
// session records the rewritten message in place of the original and seals the original to
// the auditor key when one is configured (record.proto SealedData; `interlock replay
// --unseal`), exactly as masked rows are kept.
//
//   if (auto shown = WithholdLiterals(type, raw, scs)) {
//     record(*shown);                    // Query/Parse text with literals as $n,
//     seal(raw);                         // Bind/FunctionCall values emptied
//   } else {
//     record(raw);                       // no literals in it
//   }
//
// Pure: bytes in, bytes out. The rewritten message is well formed (its own length word), so
// the recording still decodes message by message.
#pragma once

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/sql/normalize.h"

namespace interlock::proxy::pg {

// `raw` is one whole frontend message (type byte, length word, body). Returns the message
// to record instead, or nullopt when `type` carries no literal values (Sync, Execute,
// Describe, ...). Rewrites:
//   Query, Parse   the statement text through sql::NormalizeLiterals (every literal becomes
//                  $n; unreadable text becomes a description of it);
//   Bind           every non-NULL parameter value becomes empty (NULLs stay NULL: whether a
//                  value was given is not the value); formats and names are kept;
//   FunctionCall   every non-NULL argument likewise;
//   CopyData       the data becomes empty (rows an agent loads with COPY FROM STDIN).
// A message of those types that does not parse (the session refuses it anyway) is recorded
// with an empty body, never in clear.
// `memo` (may be null): the session's, shared with its StatementTracker, which has
// normalized the same text for the audit event.
std::optional<std::string> WithholdLiterals(const codec::pg::FrontendMessage& m, bool standard_conforming_strings,
                                            sql::NormalizeMemo* memo = nullptr);
// The same for a whole message (`raw`: type byte, length, body), decoding it first; a
// message of one of those types that does not decode is withheld whole (an empty body).
std::optional<std::string> WithholdLiterals(char type, absl::string_view raw,
                                            bool standard_conforming_strings);

}  // namespace interlock::proxy::pg
