// PostgreSQL frontend/backend protocol 3.0 framing: where one message ends and the next
// begins. Pure and incremental: give it whatever bytes have arrived, it answers with a verdict
// in the spirit of pgbouncer's sbuf (need more data / one whole message / a bad length).
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::optional<Frame> f, PeekFrame(buffered, kMaxMessageBytes));
//   if (!f) return;                          // need more bytes; keep them and read again
//   Handle(f->type, f->body);                // body = the message contents after the length
//   buffered.remove_prefix(f->total_bytes);  // the next message starts here
//
// To relay a huge message (DataRow, CopyData) without buffering it whole, use PeekHeader and
// stream header->total_bytes through.
//
// Wire layout (PostgreSQL 15 docs, 55.7 "Message Formats" and 55.2 "Message Flow"):
//   startup phase (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest):
//       Int32 length (counts itself) | body
//   every other message:
//       Byte1 type | Int32 length (counts itself, not the type byte) | body
// Lengths are big-endian signed 32-bit on the wire; negative ones are reported as such.
//
// Errors are INVALID_ARGUMENT ("pg: startup: length 70000 > max 10000"): the peer does not
// speak this protocol or lost sync; the connection cannot be resynchronized and must be closed.
// Nothing here allocates; the returned views point into `buf`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::codec::pg {

// Largest startup-phase packet, length word included: PostgreSQL's MAX_STARTUP_PACKET_LENGTH
// (src/include/libpq/pqcomm.h). The server closes the connection on anything longer.
inline constexpr uint32_t kMaxStartupPacketBytes = 10000;
// Smallest startup-phase packet: the length word plus the Int32 request/protocol code.
inline constexpr uint32_t kMinStartupPacketBytes = 8;
// Default (and largest accepted) length of a typed message, length word included: 1 GiB - 1,
// PostgreSQL's MaxAllocSize, which also bounds what the server accepts as one message.
// Proxies should pass smaller per-direction limits to PeekFrame/PeekHeader.
inline constexpr uint32_t kMaxMessageBytes = (uint32_t{1} << 30) - 1;
// Smallest typed-message length: the length word alone (an empty body, e.g. Sync).
inline constexpr uint32_t kMinMessageLength = 4;
// Bytes before the body of a typed message: Byte1 type + Int32 length.
inline constexpr size_t kMessageHeaderBytes = 5;
// Bytes before the body of a startup-phase packet: Int32 length.
inline constexpr size_t kStartupHeaderBytes = 4;

// One whole message at the start of a buffer.
struct Frame {
  char type;               // 0 for startup-phase packets
  uint32_t length;         // as on the wire, incl. itself
  absl::string_view body;  // the `length - 4` bytes after the length word; a view into buf
  size_t total_bytes;      // type byte (if any) + length: where the next message starts
};

// The header of a typed message; the body may not have arrived yet.
struct FrameHeader {
  char type;
  uint32_t length;     // as on the wire, incl. itself
  size_t total_bytes;  // 1 (type byte) + length: the whole message
  size_t body_bytes() const { return length - kMinMessageLength; }
};

// Looks for one startup-phase packet (untyped: Int32 length incl. itself, then the body) at
// the start of `buf`. Returns nullopt while the packet is incomplete. Errors as soon as the
// length word is readable: length < kMinStartupPacketBytes or > kMaxStartupPacketBytes.
absl::StatusOr<std::optional<Frame>> PeekStartupFrame(absl::string_view buf);

// Looks for one typed message at the start of `buf`. Any type byte is accepted (the parse
// functions check contents). Returns nullopt while the header or body is incomplete. Errors as
// soon as the header is readable: length < kMinMessageLength or > min(max_len,
// kMaxMessageBytes).
absl::StatusOr<std::optional<Frame>> PeekFrame(absl::string_view buf, uint32_t max_len);

// Like PeekFrame but needs only the kMessageHeaderBytes header: lets a proxy forward a message
// it does not want to buffer whole. nullopt while fewer than kMessageHeaderBytes are buffered.
absl::StatusOr<std::optional<FrameHeader>> PeekHeader(absl::string_view buf, uint32_t max_len);

}  // namespace interlock::codec::pg
