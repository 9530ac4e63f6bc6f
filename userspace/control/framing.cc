#include "userspace/control/framing.h"

#include "absl/strings/str_cat.h"

namespace interlock::control {

std::string EncodeFrame(const google::protobuf::MessageLite& message) {
  std::string body = message.SerializeAsString();
  uint32_t n = static_cast<uint32_t>(body.size());
  std::string out;
  out.reserve(4 + body.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out += body;
  return out;
}

absl::StatusOr<std::optional<std::string>> FrameDecoder::Next() {
  if (buffer_.size() < 4) return std::optional<std::string>();
  const auto* p = reinterpret_cast<const unsigned char*>(buffer_.data());
  uint32_t n = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  if (n > kMaxControlFrameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("control: frame length ", n, " > max ", kMaxControlFrameBytes));
  }
  if (buffer_.size() < 4 + size_t{n}) return std::optional<std::string>();
  std::string frame = buffer_.substr(4, n);
  buffer_.erase(0, 4 + size_t{n});
  return std::optional<std::string>(std::move(frame));
}

}  // namespace interlock::control
