// Control API framing (pure): u32 big-endian length || serialized protobuf, as
// schemas/interlock/v1/control.proto specifies. The decoder rejects a length over
// kMaxControlFrameBytes before buffering it.
//
//   FrameDecoder dec;
//   dec.Append(bytes);
//   INTERLOCK_ASSIGN_OR_RETURN(std::optional<std::string> frame, dec.Next());
//   if (frame) request.ParseFromString(*frame);
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"

namespace interlock::control {

inline constexpr uint32_t kMaxControlFrameBytes = 1 << 20;

std::string EncodeFrame(const google::protobuf::MessageLite& message);

class FrameDecoder {
 public:
  void Append(absl::string_view bytes) { buffer_.append(bytes.data(), bytes.size()); }
  // A complete frame's payload (possibly empty: an all-default message), std::nullopt
  // when more bytes are needed, or INVALID_ARGUMENT for a length over the limit.
  absl::StatusOr<std::optional<std::string>> Next();
  size_t buffered() const { return buffer_.size(); }

 private:
  std::string buffer_;
};

}  // namespace interlock::control
