// UTF-8 validity for text that must be UTF-8 (proto3 `string` fields, JSON) but comes from
// the outside: paths, user names, command lines, error details can hold any bytes.
//
//   std::string path = sftp_op.path;
//   MakeValidUtf8(path);      // each invalid byte becomes U+FFFD
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace interlock {

// Length of the valid UTF-8 sequence starting at s[i] (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 when there is none.
size_t Utf8SequenceLength(absl::string_view s, size_t i);

// proto3 `string` fields must hold UTF-8: protobuf serializes invalid text with only a log
// line but then refuses to parse it. Replaces each invalid byte with U+FFFD.
void MakeValidUtf8(std::string& s);

}  // namespace interlock
