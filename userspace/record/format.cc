#include "userspace/record/format.h"


#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "userspace/common/sha256.h"

namespace interlock::record {
namespace {

void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Wire-format tags (field number << 3 | wire type) of record.proto.
constexpr char kTagSeq = (1 << 3) | 0;          // Record.seq, varint
constexpr char kTagPrevHash = (2 << 3) | 2;     // Record.prev_hash, bytes
constexpr char kTagTime = (3 << 3) | 0;         // Record.time_unix_nanos, varint
constexpr char kTagData = (11 << 3) | 2;        // Record.data
constexpr char kTagEvent = (12 << 3) | 2;       // Record.event
constexpr char kTagFirstVarint = (1 << 3) | 0;  // Data.direction
constexpr char kTagFirstBytes = (1 << 3) | 2;   // Event.kind
constexpr char kTagSecondBytes = (2 << 3) | 2;  // Data.payload, Event.detail

size_t BytesFieldSize(absl::string_view v) { return v.empty() ? 0 : 1 + VarintSize(v.size()) + v.size(); }

void PutBytesField(std::string& out, char tag, absl::string_view v) {
  if (v.empty()) return;
  out.push_back(tag);
  PutVarint(out, v.size());
  out.append(v.data(), v.size());
}

// Frame header and the fields every record starts with; `body_tag` and `body_size` the
// oneof member that follows. Returns the offset of the record bytes.
size_t BeginRecordFrame(std::string* out, uint64_t seq, absl::string_view prev_hash, int64_t time_unix_nanos,
                        char body_tag, size_t body_size) {
  const uint64_t time = static_cast<uint64_t>(time_unix_nanos);  // int64: two's complement varint
  const size_t record = (seq != 0 ? 1 + VarintSize(seq) : 0) + BytesFieldSize(prev_hash) +
                        (time != 0 ? 1 + VarintSize(time) : 0) + 1 + VarintSize(body_size) + body_size;
  if (record > kMaxRecordBytes) std::abort();
  out->reserve(out->size() + kFrameHeaderBytes + record);
  PutBigEndian(*out, record, kFrameHeaderBytes);
  const size_t start = out->size();
  if (seq != 0) {
    out->push_back(kTagSeq);
    PutVarint(*out, seq);
  }
  PutBytesField(*out, kTagPrevHash, prev_hash);
  if (time != 0) {
    out->push_back(kTagTime);
    PutVarint(*out, time);
  }
  out->push_back(body_tag);
  PutVarint(*out, body_size);
  return start;
}

}  // namespace

size_t AppendDataFrame(std::string* out, uint64_t seq, absl::string_view prev_hash, int64_t time_unix_nanos,
                       uint32_t direction, absl::string_view payload) {
  if (payload.size() > kMaxPayloadBytes) std::abort();
  const size_t body = (direction != 0 ? 1 + VarintSize(direction) : 0) + BytesFieldSize(payload);
  const size_t start = BeginRecordFrame(out, seq, prev_hash, time_unix_nanos, kTagData, body);
  if (direction != 0) {
    out->push_back(kTagFirstVarint);
    PutVarint(*out, direction);
  }
  PutBytesField(*out, kTagSecondBytes, payload);
  return start;
}

size_t AppendEventFrame(std::string* out, uint64_t seq, absl::string_view prev_hash, int64_t time_unix_nanos,
                        absl::string_view kind, absl::string_view detail) {
  const size_t body = BytesFieldSize(kind) + BytesFieldSize(detail);
  const size_t start = BeginRecordFrame(out, seq, prev_hash, time_unix_nanos, kTagEvent, body);
  PutBytesField(*out, kTagFirstBytes, kind);
  PutBytesField(*out, kTagSecondBytes, detail);
  return start;
}

std::string EncodeFrame(absl::string_view record_bytes) {
  if (record_bytes.empty() || record_bytes.size() > kMaxRecordBytes) std::abort();
  std::string out;
  out.reserve(kFrameHeaderBytes + record_bytes.size());
  PutBigEndian(out, record_bytes.size(), kFrameHeaderBytes);
  out.append(record_bytes.data(), record_bytes.size());
  return out;
}

FrameView DecodeFrame(absl::string_view buf) {
  FrameView f;
  if (buf.size() < kFrameHeaderBytes) return f;  // kTruncated, length unknown
  const auto* p = reinterpret_cast<const unsigned char*>(buf.data());
  f.length = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
  if (f.length == 0 || f.length > kMaxRecordBytes) {
    f.result = FrameView::Result::kBadLength;
    return f;
  }
  if (buf.size() - kFrameHeaderBytes < f.length) return f;  // kTruncated
  f.result = FrameView::Result::kFrame;
  f.frame_bytes = kFrameHeaderBytes + f.length;
  f.record = buf.substr(kFrameHeaderBytes, f.length);
  return f;
}

std::string HashRecord(absl::string_view record_bytes) {
  static_assert(kHashBytes == kSha256Bytes);
  Sha256Digest md = Sha256(record_bytes);
  return std::string(reinterpret_cast<const char*>(md.data()), md.size());
}

const std::string& ZeroHash() {
  static const std::string* zero = new std::string(kHashBytes, '\0');
  return *zero;
}

std::string SealMessage(absl::string_view session_id, uint64_t seal_seq,
                        absl::string_view prev_hash) {
  std::string out = absl::StrCat(kSealDomain, session_id);
  PutBigEndian(out, seal_seq, 8);
  out.append(prev_hash.data(), prev_hash.size());
  return out;
}

}  // namespace interlock::record
