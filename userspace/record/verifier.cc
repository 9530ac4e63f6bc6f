#include "userspace/record/verifier.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/io/coded_stream.h"
#include "interlock/v1/record.pb.h"
#include "userspace/common/file_util.h"
#include "userspace/common/status_macros.h"
#include "userspace/record/format.h"

namespace interlock::record {
namespace {

// Record field numbers: 1..3 header, >= 10 body (record.proto).
constexpr uint32_t kFirstBodyField = 10;
// Protobuf wire types (encoding spec "Message Structure").
constexpr uint32_t kWireVarint = 0, kWireFixed64 = 1, kWireLen = 2, kWireFixed32 = 5;

// Skips one field's value. False when the value runs past the end of the input, or for wire
// types no writer of this format produces (groups, 6, 7); `*truncated` says which.
bool SkipValue(google::protobuf::io::CodedInputStream& in, uint32_t wire_type, bool* truncated) {
  *truncated = true;
  uint64_t v = 0;
  uint32_t len = 0;
  switch (wire_type) {
    case kWireVarint:
      return in.ReadVarint64(&v);
    case kWireFixed64:
      return in.Skip(8);
    case kWireLen:
      return in.ReadVarint32(&len) && in.Skip(static_cast<int>(len));
    case kWireFixed32:
      return in.Skip(4);
  }
  *truncated = false;
  return false;
}

// Decides whether the `partial` bytes at the end of the file (a frame whose length runs past
// EOF) can be the start of the record the chain expects next, i.e. a torn write, rather than
// an altered length prefix. Writers serialize fields in number order: seq, prev_hash, time,
// then the body last. So the header must match what the chain predicts, and the body must
// itself be cut off: a complete body inside a frame that claims more bytes means the length
// was changed.
bool ConsistentTornTail(absl::string_view partial, uint64_t seq, absl::string_view prev_hash) {
  v1::Record head;
  head.set_seq(seq);
  head.set_prev_hash(std::string(prev_hash));
  const std::string expected = head.SerializeAsString();
  const size_t n = std::min(partial.size(), expected.size());
  if (partial.substr(0, n) != absl::string_view(expected).substr(0, n)) return false;
  if (partial.size() <= expected.size()) return true;

  absl::string_view rest = partial.substr(expected.size());
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(rest.data()),
                                            static_cast<int>(rest.size()));
  for (;;) {
    const int pos = in.CurrentPosition();
    const absl::string_view left = rest.substr(static_cast<size_t>(pos));
    if (left.empty()) return true;  // cut exactly between fields
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      // Garbage, or a multi-byte tag cut off by EOF (every byte left has its high bit set).
      for (char c : left) {
        if ((static_cast<unsigned char>(c) & 0x80) == 0) return false;
      }
      return true;
    }
    const uint32_t field = tag >> 3, wire_type = tag & 7;
    if (field >= kFirstBodyField && wire_type == kWireLen) {
      uint32_t len = 0;
      if (!in.ReadVarint32(&len)) return true;  // body length cut off
      return rest.size() - static_cast<size_t>(in.CurrentPosition()) < len;
    }
    if (field <= 2) return false;  // seq/prev_hash again: not what a writer produces
    bool truncated = false;
    if (!SkipValue(in, wire_type, &truncated)) return truncated;  // cut off by EOF, or garbage
  }
}

// The seal record is the one record no later hash covers, and its signature covers only
// session id, seq and prev_hash. So it must be exactly the canonical encoding of those fields,
// the close record's time and the seal body: no unknown fields, no alternative encodings.
bool CanonicalSeal(absl::string_view bytes, const v1::Record& parsed) {
  v1::Record canon;
  canon.set_seq(parsed.seq());
  canon.set_prev_hash(parsed.prev_hash());
  canon.set_time_unix_nanos(parsed.time_unix_nanos());
  canon.mutable_seal()->set_signature(parsed.seal().signature());
  canon.mutable_seal()->set_key_fingerprint(parsed.seal().key_fingerprint());
  return canon.SerializeAsString() == bytes;
}

const char* BodyName(v1::Record::BodyCase body) {
  switch (body) {
    case v1::Record::kOpen:
      return "open";
    case v1::Record::kData:
      return "data";
    case v1::Record::kEvent:
      return "event";
    case v1::Record::kClose:
      return "close";
    case v1::Record::kSeal:
      return "seal";
    case v1::Record::kSealed:
      return "sealed";
    case v1::Record::kSsh:
      return "ssh";
    case v1::Record::BODY_NOT_SET:
      break;
  }
  return "empty";
}

class Verification {
 public:
  Verification(absl::string_view file, const RecordingPublicKey& key) : file_(file), key_(key) {}

  VerifyReport Run() {
    size_t offset = 0;
    std::string prev_hash = ZeroHash();
    const std::string key_fp = key_.Fingerprint();
    std::string open_fp;
    bool keeps_originals = false;
    int64_t close_time = 0;
    v1::Record::BodyCase last_body = v1::Record::BODY_NOT_SET;

    while (offset < file_.size()) {
      const uint64_t seq = report_.records_ok;
      const FrameView f = DecodeFrame(file_.substr(offset));
      if (f.result == FrameView::Result::kBadLength) {
        return Tampered(absl::StrFormat("record %d at offset %d: length %d outside 1..%d", seq,
                                        offset, f.length, kMaxRecordBytes));
      }
      if (f.result == FrameView::Result::kTruncated) {
        const size_t have = file_.size() - offset;
        if (have >= kFrameHeaderBytes &&
            !ConsistentTornTail(file_.substr(offset + kFrameHeaderBytes), seq, prev_hash)) {
          return Tampered(absl::StrFormat(
              "record %d at offset %d: length %d runs past end of file but the frame is not "
              "a torn write",
              seq, offset, f.length));
        }
        return Incomplete(
            absl::StrFormat("file ends inside record %d at offset %d (%d of %d frame bytes)", seq,
                            offset, have,
                            f.length == 0 ? kFrameHeaderBytes : kFrameHeaderBytes + f.length),
            open_fp, key_fp);
      }

      v1::Record record;
      if (!record.ParseFromArray(f.record.data(), static_cast<int>(f.record.size()))) {
        return Tampered(absl::StrFormat("record %d at offset %d: %d bytes do not parse", seq,
                                        offset, f.length));
      }
      if (record.seq() != seq) {
        return Tampered(absl::StrFormat("record %d: seq is %d", seq, record.seq()));
      }
      if (record.prev_hash() != prev_hash) {
        return Tampered(absl::StrFormat("record %d: prev_hash does not match %s", seq,
                                        seq == 0 ? "zero hash" : absl::StrCat("record ", seq - 1)));
      }

      const auto body = record.body_case();
      if (seq == 0) {
        if (body != v1::Record::kOpen) {
          return Tampered(absl::StrCat("record 0: is ", BodyName(body), ", not open"));
        }
        report_.session_id = record.open().session_id();
        open_fp = record.open().key_fingerprint();
        keeps_originals = !record.open().sealed_originals_key().empty();
      } else if (body == v1::Record::BODY_NOT_SET || body == v1::Record::kOpen) {
        return Tampered(absl::StrFormat("record %d: unexpected %s record", seq, BodyName(body)));
      } else if (last_body == v1::Record::kClose && body != v1::Record::kSeal) {
        return Tampered(absl::StrFormat("record %d: %s after close", seq, BodyName(body)));
      } else if (body == v1::Record::kSealed && !keeps_originals) {
        // No writer seals originals without telling the reader the key in the open.
        return Tampered(absl::StrFormat(
            "record %d: sealed original, but the open names no sealed originals key", seq));
      }

      if (body == v1::Record::kSeal) {
        if (last_body != v1::Record::kClose) {
          return Tampered(absl::StrFormat("record %d: seal not preceded by close", seq));
        }
        if (!CanonicalSeal(f.record, record) || record.time_unix_nanos() != close_time) {
          return Tampered(absl::StrFormat("record %d: seal record is not in canonical form", seq));
        }
        if (record.seal().key_fingerprint() != key_fp) {
          return Tampered(absl::StrFormat("record %d: sealed by key %s, verifying with key %s", seq,
                                          record.seal().key_fingerprint(), key_fp));
        }
        if (open_fp != key_fp) {
          return Tampered(
              absl::StrFormat("record %d: open names key %s, seal key %s", seq, open_fp, key_fp));
        }
        if (!key_.Verify(SealMessage(report_.session_id, seq, prev_hash),
                         record.seal().signature())) {
          return Tampered(absl::StrFormat("record %d: seal signature does not verify", seq));
        }
        const size_t end = offset + f.frame_bytes;
        if (end != file_.size()) {
          return Tampered(
              absl::StrFormat("%d bytes after the seal (record %d)", file_.size() - end, seq));
        }
        Count(seq, HashRecord(f.record));
        report_.verdict = VerifyReport::kValid;
        report_.detail =
            absl::StrFormat("%d records, sealed by key %s", report_.records_ok, key_fp);
        return std::move(report_);
      }

      if (body == v1::Record::kClose) close_time = record.time_unix_nanos();
      last_body = body;
      prev_hash = HashRecord(f.record);
      offset += f.frame_bytes;
      Count(seq, prev_hash);
    }
    if (report_.records_ok == 0) return Incomplete("empty file", open_fp, key_fp);
    return Incomplete(
        absl::StrFormat("file ends after record %d without a seal", report_.last_good_seq), open_fp,
        key_fp);
  }

 private:
  void Count(uint64_t seq, const std::string& hash) {
    ++report_.records_ok;
    report_.last_good_seq = seq;
    report_.head_hash = hash;
  }
  VerifyReport Tampered(std::string detail) {
    report_.verdict = VerifyReport::kTampered;
    report_.detail = std::move(detail);
    return std::move(report_);
  }
  VerifyReport Incomplete(std::string detail, const std::string& open_fp,
                          const std::string& key_fp) {
    report_.verdict = VerifyReport::kIncomplete;
    report_.detail = std::move(detail);
    // Not tampering by itself (a crash after a key rotation looks like this), but worth saying.
    if (!open_fp.empty() && open_fp != key_fp) {
      absl::StrAppend(&report_.detail, "; open names key ", open_fp, ", not ", key_fp);
    }
    return std::move(report_);
  }

  absl::string_view file_;
  const RecordingPublicKey& key_;
  VerifyReport report_;
};

}  // namespace

const char* VerdictName(VerifyReport::Verdict verdict) {
  switch (verdict) {
    case VerifyReport::kValid:
      return "valid";
    case VerifyReport::kIncomplete:
      return "incomplete";
    case VerifyReport::kTampered:
      return "tampered";
  }
  return "unknown";
}

VerifyReport VerifyRecording(absl::string_view file_bytes, const RecordingPublicKey& key) {
  return Verification(file_bytes, key).Run();
}

absl::StatusOr<VerifyReport> VerifyFile(const std::string& path, const RecordingPublicKey& key) {
  auto bytes = ReadFile(path);
  if (!bytes.ok()) return Annotate(bytes.status(), "verify");
  return VerifyRecording(*bytes, key);
}

}  // namespace interlock::record
