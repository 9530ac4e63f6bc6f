// Binary-format result values through the content detectors. A client may ask for any
// result column in binary (Bind's result-format codes, PostgreSQL docs 55.2.3 and each
// type's *_send function); the detectors read text. This decodes what can carry a
// sensitive value back into something they can read, and fails closed where it cannot:
//
//   text-like (text, varchar, bpchar, name, unknown, json; jsonb after its version byte),
//   bytea, xml, char, and enums        the bytes are text: masked in place, as text is
//   int2, int4, int8, oid, money,      printed as PostgreSQL prints them (the digits a
//   float4, float8, numeric             text-format result would show); a detector match
//                                       makes the whole value NULL (a masked string cannot
//                                       be written back in a number's binary form)
//   bool, date/time types, uuid,        cannot carry one of the detectors' values as text:
//   inet/cidr/macaddr, geometric        left as they are
//   arrays, records (composite types)   decoded (array_send / record_send layouts carry each
//                                       element's type OID) and each element masked by its
//                                       own type; the value is re-encoded
//   anything else (an extension type,   its raw bytes are scanned (text inside a binary
//   a value that does not decode)       format is stored verbatim); a match makes the whole
//                                       value NULL
//
//   std::string out;
//   switch (MaskBinaryValue(masker, type_oid, value, &out, &counts)) {
//     case BinaryMask::kUnchanged: send value;
//     case BinaryMask::kRewritten: send out;
//     case BinaryMask::kNull:      send NULL;
//   }
//
// Pure; bounded: nesting deeper than kMaxBinaryDepth is not decoded (raw scan instead).
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "userspace/mask/masker.h"

namespace interlock::proxy::pg {

// Arrays of records of arrays...: deeper values are scanned raw, not decoded.
inline constexpr int kMaxBinaryDepth = 8;

enum class BinaryMask { kUnchanged, kRewritten, kNull };

// `type_oid`: the value's type from RowDescription (0: unknown). kRewritten: *out holds the
// whole new value. `counts` (may be null) gains one per detector match.
BinaryMask MaskBinaryValue(const mask::Masker& m, uint32_t type_oid, absl::string_view value, std::string* out,
                           mask::MaskCounts* counts);

// A bytea in text format (hex "\x3037..." or the escape format) decoded for the
// detectors: true when they found something, and *out is the masked bytes re-encoded in
// hex (what libpq's PQunescapeBytea reads whatever bytea_output says). False: nothing
// found, or not a bytea text.
bool MaskByteaText(const mask::Masker& m, absl::string_view text, std::string* out, mask::MaskCounts* counts);

// The text PostgreSQL prints for a binary numeric (numeric_send layout), or false when
// the bytes are not one. Exposed for tests.
bool NumericBinaryToText(absl::string_view value, std::string* out);

}  // namespace interlock::proxy::pg
