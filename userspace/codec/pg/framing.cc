#include "userspace/codec/pg/framing.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "userspace/codec/pg/wire.h"

namespace interlock::codec::pg {
namespace {

// Big-endian Int32 at p, kept signed: a length of 0xffffffff is reported as -1, as the server
// (which reads it with pq_getmsgint into an int32) would see it.
int32_t LoadLength(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<int32_t>((uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) |
                              (uint32_t{u[2]} << 8) | u[3]);
}

absl::Status BadLength(absl::string_view context, int32_t length, uint32_t min, uint32_t max) {
  if (length < 0 || static_cast<uint32_t>(length) < min) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": length ", length, " < min ", min));
  }
  return absl::InvalidArgumentError(absl::StrCat(context, ": length ", length, " > max ", max));
}

bool InRange(int32_t length, uint32_t min, uint32_t max) {
  return length >= 0 && static_cast<uint32_t>(length) >= min &&
         static_cast<uint32_t>(length) <= max;
}

}  // namespace

// PostgreSQL 15 docs, 55.2.1 "Start-up" and 55.7 (StartupMessage, SSLRequest, GSSENCRequest,
// CancelRequest): the only messages without a type byte. The server reads the length first
// and rejects it before reading the rest (ProcessStartupPacket), as we do.
absl::StatusOr<std::optional<Frame>> PeekStartupFrame(absl::string_view buf) {
  if (buf.size() < kStartupHeaderBytes) return std::optional<Frame>();
  int32_t length = LoadLength(buf.data());
  if (!InRange(length, kMinStartupPacketBytes, kMaxStartupPacketBytes)) {
    return BadLength("pg: startup", length, kMinStartupPacketBytes, kMaxStartupPacketBytes);
  }
  if (buf.size() < static_cast<size_t>(length)) return std::optional<Frame>();
  return Frame{
      .type = 0,
      .length = static_cast<uint32_t>(length),
      .body = buf.substr(kStartupHeaderBytes, static_cast<size_t>(length) - kStartupHeaderBytes),
      .total_bytes = static_cast<size_t>(length),
  };
}

absl::StatusOr<std::optional<FrameHeader>> PeekHeader(absl::string_view buf, uint32_t max_len) {
  if (buf.size() < kMessageHeaderBytes) return std::optional<FrameHeader>();
  const char type = buf[0];
  const int32_t length = LoadLength(buf.data() + 1);
  const uint32_t max = std::min(max_len, kMaxMessageBytes);
  if (!InRange(length, kMinMessageLength, max)) {
    return BadLength(absl::StrCat("pg: message ", internal::TypeForDisplay(type)), length,
                     kMinMessageLength, max);
  }
  return FrameHeader{
      .type = type,
      .length = static_cast<uint32_t>(length),
      .total_bytes = 1 + static_cast<size_t>(length),
  };
}

absl::StatusOr<std::optional<Frame>> PeekFrame(absl::string_view buf, uint32_t max_len) {
  absl::StatusOr<std::optional<FrameHeader>> header = PeekHeader(buf, max_len);
  if (!header.ok()) return header.status();
  if (!header->has_value() || buf.size() < (*header)->total_bytes) return std::optional<Frame>();
  const FrameHeader& h = **header;
  return Frame{
      .type = h.type,
      .length = h.length,
      .body = buf.substr(kMessageHeaderBytes, h.body_bytes()),
      .total_bytes = h.total_bytes,
  };
}

}  // namespace interlock::codec::pg
