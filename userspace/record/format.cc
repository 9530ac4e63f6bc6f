#include "userspace/record/format.h"


#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "userspace/common/sha256.h"

namespace interlock::record {
namespace {

void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

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
