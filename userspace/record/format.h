// Framing and hash-chain primitives of the recording format, shared by the Recorder (writer)
// and the verifier/reader so that both sides build exactly the same bytes. The format itself
// is specified in schemas/interlock/v1/record.proto; this file is its executable form.
//
//   std::string frame = EncodeFrame(record_bytes);          // u32 BE length || bytes
//   FrameView f = DecodeFrame(file_bytes.substr(offset));   // pure, bounded
//   std::string hash = HashRecord(f.record);                // next record's prev_hash
//   std::string msg = SealMessage(session_id, seq, prev);    // what the Seal signs
//
// Everything here is pure: no I/O, no clock, no allocation beyond the returned strings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace interlock::record {

// u32 big-endian length prefix of every frame.
inline constexpr size_t kFrameHeaderBytes = 4;
// Largest serialized Record a frame may carry. Readers reject bigger lengths before
// allocating anything; writers never produce them.
inline constexpr size_t kMaxRecordBytes = 2 * 1024 * 1024;
// Largest Data payload in one record; the Recorder splits bigger writes. Leaves room under
// kMaxRecordBytes for the record header.
inline constexpr size_t kMaxPayloadBytes = 1024 * 1024;
// SHA-256 output size: every prev_hash.
inline constexpr size_t kHashBytes = 32;
// Ed25519 signature size.
inline constexpr size_t kSignatureBytes = 64;
// Domain-separation prefix of the signed seal message.
inline constexpr absl::string_view kSealDomain = "interlock.v1.seal";

// u32 big-endian length || record_bytes. `record_bytes` must be 1..kMaxRecordBytes long
// (a broken invariant aborts).
std::string EncodeFrame(absl::string_view record_bytes);

// The outcome of looking at the start of `buf` for one frame.
struct FrameView {
  enum class Result {
    // A whole frame: `record` holds its bytes, `frame_bytes` = header + record.
    kFrame,
    // `buf` ends before the frame does (header or body incomplete). `length` is valid
    // once the header is complete (have >= kFrameHeaderBytes), else 0.
    kTruncated,
    // The length prefix is 0 or > kMaxRecordBytes: not a frame this format produces.
    kBadLength,
  };
  Result result = Result::kTruncated;
  uint32_t length = 0;
  size_t frame_bytes = 0;
  absl::string_view record;
};
FrameView DecodeFrame(absl::string_view buf);

// The recorder's hot path: appends to *out one frame holding a Data (or Event) record,
//   Record{seq, prev_hash, time_unix_nanos, data{direction, payload}}
//   Record{seq, prev_hash, time_unix_nanos, event{kind, detail}}
// encoded by hand, byte for byte what v1::Record::SerializeToString gives (fields in number
// order, proto3 defaults omitted; record_format_test compares them), without building a
// message: the payload is copied once. Returns where the record's bytes start in *out (they
// run to its end). The record must fit kMaxRecordBytes (payload <= kMaxPayloadBytes, texts
// short) and `kind`/`detail` must be valid UTF-8; a broken invariant aborts.
size_t AppendDataFrame(std::string* out, uint64_t seq, absl::string_view prev_hash, int64_t time_unix_nanos,
                       uint32_t direction, absl::string_view payload);
size_t AppendEventFrame(std::string* out, uint64_t seq, absl::string_view prev_hash, int64_t time_unix_nanos,
                        absl::string_view kind, absl::string_view detail);

// SHA-256 of a serialized record: the prev_hash of the record after it.
std::string HashRecord(absl::string_view record_bytes);

// 32 zero bytes: the prev_hash of record 0.
const std::string& ZeroHash();

// The exact message a Seal signs (record.proto file comment):
//   "interlock.v1.seal" || session_id || u64 big-endian seal_seq || prev_hash
// `seal_seq` is the seq of the Seal record itself; `prev_hash` is the hash of the record
// before it (the chain head). session_id needs no length prefix: the tail is fixed-size.
std::string SealMessage(absl::string_view session_id, uint64_t seal_seq,
                        absl::string_view prev_hash);

}  // namespace interlock::record
