// Internal to interlock_codec_pg: bounds-checked readers and writers of the protocol's data
// types (PostgreSQL 15 docs, 55.6 "Message Data Types": IntN big-endian, String NUL-terminated,
// Byten raw). Not part of the public API; use messages.h and encode.h.
//
//   INTERLOCK_ASSIGN_OR_RETURN(Reader r, Reader::Create(body, "pg: bind"));
//   INTERLOCK_ASSIGN_OR_RETURN(std::string portal, r.String("portal"));
//   INTERLOCK_RETURN_IF_ERROR(r.End());   // "pg: bind: 3 trailing bytes"
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/codec/pg/framing.h"

namespace interlock::codec::pg::internal {

// Largest body of a typed message / of a startup-phase packet.
inline constexpr size_t kMaxMessageBodyBytes = kMaxMessageBytes - kMinMessageLength;
inline constexpr size_t kMaxStartupBodyBytes = kMaxStartupPacketBytes - kStartupHeaderBytes;

// Reads a message body front to back. Every error is INVALID_ARGUMENT and starts with the
// context given at construction; `what` names the item and `index` (when >= 0) its position,
// formatted only when an error is returned.
class Reader {
 public:
  // Fails if `body` is longer than `max_body` (by default what a kMaxMessageBytes message can
  // carry), so that every value parsed from it can be encoded again.
  static absl::StatusOr<Reader> Create(absl::string_view body, absl::string_view context,
                                       size_t max_body = kMaxMessageBodyBytes);
  Reader(absl::string_view body, absl::string_view context) : rest_(body), context_(context) {}

  size_t remaining() const { return rest_.size(); }

  absl::StatusOr<uint8_t> Byte(absl::string_view what, int index = -1);
  absl::StatusOr<int16_t> Int16(absl::string_view what, int index = -1);
  absl::StatusOr<int32_t> Int32(absl::string_view what, int index = -1);
  absl::StatusOr<uint32_t> Uint32(absl::string_view what, int index = -1);
  // An Int16 element count, read unsigned (0..65535) as PostgreSQL's pq_getmsgint(msg, 2)
  // and libpq's pqGetInt(.., 2) do. Fails unless count * min_element_bytes fit in what is
  // left, so callers may reserve() the count.
  absl::StatusOr<uint16_t> Count16(absl::string_view what, size_t min_element_bytes);
  // NUL-terminated; the terminator must lie within the body. Consumes it.
  absl::StatusOr<absl::string_view> String(absl::string_view what, int index = -1);
  absl::StatusOr<absl::string_view> Bytes(size_t n, absl::string_view what, int index = -1);
  // Int32 length then that many bytes; length -1 is NULL. Any other negative length, or one
  // past the end of the body, fails.
  absl::StatusOr<std::optional<absl::string_view>> NullableBytes(absl::string_view what,
                                                                 int index = -1);
  // Everything left (possibly empty).
  absl::string_view Rest();
  // Fails if bytes are left: PostgreSQL's pq_getmsgend rejects them too.
  absl::Status End() const;
  // An INVALID_ARGUMENT status "<context>: <message>".
  absl::Status Error(absl::string_view message) const;

 private:
  absl::Status Short(size_t need, absl::string_view what, int index) const;

  absl::string_view rest_;
  absl::string_view context_;
};

// Builds one message. Preconditions are caller bugs and abort (STYLE.md convention 4): a String
// with an embedded NUL, a count above 65535, or a message above its maximum length.
class Writer {
 public:
  // `type` 0 starts a startup-phase packet (no type byte, limit kMaxStartupPacketBytes).
  explicit Writer(char type);

  void Byte(uint8_t v);
  void Int16(int16_t v);
  void Int32(int32_t v);
  void Uint32(uint32_t v);
  void Count16(size_t n);
  void String(absl::string_view s);
  void Bytes(absl::string_view b);
  void NullableBytes(const std::optional<absl::string_view>& b);
  // The whole message with its length word filled in.
  std::string Finish() &&;

 private:
  std::string out_;
  size_t length_at_;
  uint32_t max_length_;
};

// printable: 'Q'; otherwise 0x00.
std::string TypeForDisplay(char type);

}  // namespace interlock::codec::pg::internal
