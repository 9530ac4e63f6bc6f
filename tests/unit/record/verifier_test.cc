#include "userspace/record/verifier.h"

#include <openssl/rand.h>

#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"
#include "userspace/record/reader.h"
#include "userspace/record/recorder.h"
#include "userspace/record/sealed_box.h"

namespace interlock::record {
namespace {

using test::ChainBuilder;
using test::CloseRecord;
using test::DataRecord;
using test::OpenRecord;
using test::SampleOpen;
using test::TempDir;
using ::testing::HasSubstr;

// A closed recording of a few small records, plus each frame's start offset.
struct Sample {
  std::string bytes;
  std::vector<size_t> frame_starts;  // one per record, then the file size
};

Sample MakeSample(const RecordingKey& key, bool close = true) {
  TempDir dir;
  interlock::testing::FakeClock clock;
  Sample s;
  {
    auto rec = Recorder::Create(dir.File("s.rec"), SampleOpen(), key, clock);
    if (!rec.ok()) {
      ADD_FAILURE() << rec.status();
      return s;
    }
    clock.Advance(absl::Milliseconds(1));
    (void)(*rec)->AppendData(v1::DIRECTION_TO_UPSTREAM,
                             "GET /orders HTTP/1.1\r\nHost: api\r\n\r\n");
    clock.Advance(absl::Milliseconds(3));
    (void)(*rec)->AppendData(v1::DIRECTION_TO_AGENT,
                             std::string("HTTP/1.1 200 OK\r\n\r\n\x00\x01\xff", 22));
    (void)(*rec)->AppendEvent("agent_half_close", "shutdown(SHUT_WR)");
    (void)(*rec)->AppendData(v1::DIRECTION_TO_AGENT, "tail");
    clock.Advance(absl::Milliseconds(1));
    v1::SessionClose c;
    c.set_outcome("closed");
    if (close) {
      EXPECT_TRUE((*rec)->Close(c).ok());
    }
  }
  s.bytes = *ReadFile(dir.File("s.rec"));
  size_t off = 0;
  while (off < s.bytes.size()) {
    s.frame_starts.push_back(off);
    const FrameView f = DecodeFrame(absl::string_view(s.bytes).substr(off));
    if (f.result != FrameView::Result::kFrame) {
      ADD_FAILURE() << "bad sample";
      break;
    }
    off += f.frame_bytes;
  }
  s.frame_starts.push_back(s.bytes.size());
  return s;
}

class RecordChain : public ::testing::Test {
 protected:
  VerifyReport Verify(absl::string_view bytes) { return VerifyRecording(bytes, key_.public_key()); }
  RecordingKey key_ = RecordingKey::Generate();
};

TEST_F(RecordChain, RoundTripIsValid) {
  const Sample s = MakeSample(key_);
  const VerifyReport r = Verify(s.bytes);
  EXPECT_EQ(r.verdict, VerifyReport::kValid) << r.detail;
  EXPECT_EQ(r.records_ok, 7u);
  EXPECT_EQ(r.last_good_seq, 6u);
  EXPECT_EQ(r.session_id, "sess-0001");
  EXPECT_STREQ(VerdictName(r.verdict), "valid");
}

TEST_F(RecordChain, FlippedByteIsTampered) {
  const Sample s = MakeSample(key_);
  ASSERT_GT(s.bytes.size(), 500u);
  google::protobuf::LogSilencer quiet;  // flips in strings make protobuf log UTF-8 errors
  for (size_t pos = 0; pos < s.bytes.size(); ++pos) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string bad = s.bytes;
      bad[pos] = static_cast<char>(bad[pos] ^ mask);
      const VerifyReport r = Verify(bad);
      ASSERT_EQ(r.verdict, VerifyReport::kTampered) << "byte " << pos << " ^ " << int{mask} << ": "
                                                    << VerdictName(r.verdict) << ": " << r.detail;
    }
  }
}

TEST_F(RecordChain, TruncationIsIncompleteNeverValid) {
  const Sample s = MakeSample(key_);
  const size_t n_records = s.frame_starts.size() - 1;
  for (size_t len = 0; len < s.bytes.size(); ++len) {
    // Records wholly inside the first `len` bytes.
    uint64_t whole = 0;
    while (whole < n_records && s.frame_starts[whole + 1] <= len) ++whole;
    const VerifyReport r = Verify(absl::string_view(s.bytes).substr(0, len));
    ASSERT_EQ(r.verdict, VerifyReport::kIncomplete)
        << "len " << len << ": " << VerdictName(r.verdict) << ": " << r.detail;
    ASSERT_EQ(r.records_ok, whole) << "len " << len << ": " << r.detail;
    if (whole > 0) {
      ASSERT_EQ(r.last_good_seq, whole - 1);
    }
  }
}

TEST_F(RecordChain, TruncationDetailSaysWhere) {
  const Sample s = MakeSample(key_);
  const VerifyReport at_boundary = Verify(absl::string_view(s.bytes).substr(0, s.frame_starts[3]));
  EXPECT_THAT(at_boundary.detail, HasSubstr("after record 2 without a seal"));
  const VerifyReport mid = Verify(absl::string_view(s.bytes).substr(0, s.frame_starts[3] + 9));
  EXPECT_THAT(mid.detail, HasSubstr("inside record 3"));
  EXPECT_EQ(Verify("").verdict, VerifyReport::kIncomplete);
  EXPECT_EQ(Verify("").records_ok, 0u);
}

TEST_F(RecordChain, SwappedRecordsAreTampered) {
  const Sample s = MakeSample(key_);
  const size_t n = s.frame_starts.size() - 1;
  auto frame = [&](size_t i) {
    return s.bytes.substr(s.frame_starts[i], s.frame_starts[i + 1] - s.frame_starts[i]);
  };
  for (size_t a = 0; a + 1 < n; ++a) {
    std::string swapped;
    for (size_t i = 0; i < n; ++i) swapped += frame(i == a ? a + 1 : i == a + 1 ? a : i);
    const VerifyReport r = Verify(swapped);
    EXPECT_EQ(r.verdict, VerifyReport::kTampered) << "swap " << a << ": " << r.detail;
  }
}

TEST_F(RecordChain, DroppedRecordIsTampered) {
  const Sample s = MakeSample(key_);
  std::string dropped = s.bytes.substr(0, s.frame_starts[2]) + s.bytes.substr(s.frame_starts[3]);
  const VerifyReport r = Verify(dropped);
  EXPECT_EQ(r.verdict, VerifyReport::kTampered);
  EXPECT_EQ(r.records_ok, 2u);
  EXPECT_THAT(r.detail, HasSubstr("record 2: seq is 3"));
}

// Replaces the seal's signature, keeping everything else (and the frame length) intact.
std::string WithSignature(const Sample& s, const std::string& signature) {
  const size_t seal_start = s.frame_starts[s.frame_starts.size() - 2];
  v1::Record seal;
  EXPECT_TRUE(seal.ParseFromString(s.bytes.substr(seal_start + kFrameHeaderBytes)));
  seal.mutable_seal()->set_signature(signature);
  return s.bytes.substr(0, seal_start) + EncodeFrame(seal.SerializeAsString());
}

TEST_F(RecordChain, ForgedSignatureIsTampered) {
  const Sample s = MakeSample(key_);
  std::string random(64, '\0');
  ASSERT_EQ(RAND_bytes(reinterpret_cast<unsigned char*>(random.data()), 64), 1);
  VerifyReport r = Verify(WithSignature(s, random));
  EXPECT_EQ(r.verdict, VerifyReport::kTampered);
  EXPECT_THAT(r.detail, HasSubstr("signature does not verify"));
  EXPECT_EQ(r.records_ok, 6u);  // everything but the seal

  EXPECT_EQ(Verify(WithSignature(s, "")).verdict, VerifyReport::kTampered);
}

TEST_F(RecordChain, SealSignedByAnotherKeyIsTampered) {
  const Sample s = MakeSample(key_);
  Recording rec = ReadRecording(s.bytes);
  const v1::Record& seal = rec.records.back();
  RecordingKey other = RecordingKey::Generate();
  auto sig = other.Sign(SealMessage("sess-0001", seal.seq(), seal.prev_hash()));
  ASSERT_TRUE(sig.ok());
  const VerifyReport r = Verify(WithSignature(s, *sig));
  EXPECT_EQ(r.verdict, VerifyReport::kTampered);
  EXPECT_THAT(r.detail, HasSubstr("signature does not verify"));
}

TEST_F(RecordChain, WrongPublicKeyIsTampered) {
  const Sample s = MakeSample(key_);
  RecordingKey other = RecordingKey::Generate();
  const VerifyReport r = VerifyRecording(s.bytes, other.public_key());
  EXPECT_EQ(r.verdict, VerifyReport::kTampered);
  EXPECT_THAT(r.detail, HasSubstr("sealed by key"));
}

TEST_F(RecordChain, WholeRecordingForgedWithAnotherKeyIsTampered) {
  // An attacker rewrites the whole file and seals it with their own key but claims ours.
  RecordingKey other = RecordingKey::Generate();
  ChainBuilder b;
  b.Add(OpenRecord(key_));
  b.Add(DataRecord(v1::DIRECTION_TO_UPSTREAM, "forged"));
  b.Add(CloseRecord(3000));
  v1::Record seal;
  seal.set_time_unix_nanos(3000);
  seal.mutable_seal()->set_signature(*other.Sign(SealMessage("sess-0001", b.seq(), b.prev_hash())));
  seal.mutable_seal()->set_key_fingerprint(key_.Fingerprint());
  b.Add(seal);
  EXPECT_EQ(Verify(b.bytes()).verdict, VerifyReport::kTampered);
}

TEST_F(RecordChain, HandBuiltChainVerifies) {
  // Guards the builder the negative tests below rely on.
  ChainBuilder b;
  b.Add(OpenRecord(key_));
  b.Add(DataRecord(v1::DIRECTION_TO_UPSTREAM, "x"));
  b.Add(CloseRecord(3000));
  b.Seal(key_, "sess-0001", 3000);
  const VerifyReport r = Verify(b.bytes());
  EXPECT_EQ(r.verdict, VerifyReport::kValid) << r.detail;
}

TEST_F(RecordChain, RecordsAfterSealAreTampered) {
  const Sample s = MakeSample(key_);
  // A well-chained record after the seal.
  Recording rec = ReadRecording(s.bytes);
  v1::Record extra = DataRecord(v1::DIRECTION_TO_AGENT, "smuggled");
  extra.set_seq(rec.records.size());
  extra.set_prev_hash(HashRecord(rec.records.back().SerializeAsString()));
  VerifyReport r = Verify(s.bytes + EncodeFrame(extra.SerializeAsString()));
  EXPECT_EQ(r.verdict, VerifyReport::kTampered);
  EXPECT_THAT(r.detail, HasSubstr("after the seal"));
  // Or just stray bytes, or a second copy of the whole file.
  EXPECT_EQ(Verify(s.bytes + "x").verdict, VerifyReport::kTampered);
  EXPECT_EQ(Verify(s.bytes + s.bytes).verdict, VerifyReport::kTampered);
}

TEST_F(RecordChain, FirstRecordMustBeOpen) {
  ChainBuilder b;
  b.Add(DataRecord(v1::DIRECTION_TO_UPSTREAM, "x"));
  b.Add(CloseRecord(3000));
  b.Seal(key_, "", 3000);
  const VerifyReport r = Verify(b.bytes());
  EXPECT_EQ(r.verdict, VerifyReport::kTampered);
  EXPECT_THAT(r.detail, HasSubstr("record 0: is data, not open"));
}

TEST_F(RecordChain, SealWithoutCloseIsTampered) {
  ChainBuilder b;
  b.Add(OpenRecord(key_));
  b.Add(DataRecord(v1::DIRECTION_TO_UPSTREAM, "x", 3000));
  b.Seal(key_, "sess-0001", 3000);
  const VerifyReport r = Verify(b.bytes());
  EXPECT_EQ(r.verdict, VerifyReport::kTampered);
  EXPECT_THAT(r.detail, HasSubstr("not preceded by close"));
}

TEST_F(RecordChain, DataAfterCloseIsTampered) {
  ChainBuilder b;
  b.Add(OpenRecord(key_));
  b.Add(CloseRecord(3000));
  b.Add(DataRecord(v1::DIRECTION_TO_UPSTREAM, "late", 3000));
  b.Seal(key_, "sess-0001", 3000);
  EXPECT_EQ(Verify(b.bytes()).verdict, VerifyReport::kTampered);
}

TEST_F(RecordChain, SecondOpenIsTampered) {
  ChainBuilder b;
  b.Add(OpenRecord(key_));
  b.Add(OpenRecord(key_));
  EXPECT_EQ(Verify(b.bytes()).verdict, VerifyReport::kTampered);
}

TEST_F(RecordChain, SealTimeMustMatchClose) {
  ChainBuilder b;
  b.Add(OpenRecord(key_));
  b.Add(CloseRecord(3000));
  b.Seal(key_, "sess-0001", 3001);
  EXPECT_EQ(Verify(b.bytes()).verdict, VerifyReport::kTampered);
}

TEST_F(RecordChain, SealWithUnknownFieldsIsTampered) {
  ChainBuilder b;
  b.Add(OpenRecord(key_));
  b.Add(CloseRecord(3000));
  v1::Record seal;
  seal.set_seq(b.seq());
  seal.set_prev_hash(b.prev_hash());
  seal.set_time_unix_nanos(3000);
  seal.mutable_seal()->set_signature(*key_.Sign(SealMessage("sess-0001", b.seq(), b.prev_hash())));
  seal.mutable_seal()->set_key_fingerprint(key_.Fingerprint());
  // Unsigned extra bytes in the seal record: field 99, varint 1.
  std::string bytes = seal.SerializeAsString() + std::string("\x98\x06\x01", 3);
  const std::string file = b.bytes() + EncodeFrame(bytes);
  EXPECT_EQ(Verify(file).verdict, VerifyReport::kTampered);
}

TEST_F(RecordChain, IncompleteDoesNotDependOnKey) {
  const Sample s = MakeSample(key_, /*close=*/false);
  RecordingKey other = RecordingKey::Generate();
  const VerifyReport r = VerifyRecording(s.bytes, other.public_key());
  EXPECT_EQ(r.verdict, VerifyReport::kIncomplete);
  EXPECT_EQ(r.records_ok, 5u);
  EXPECT_THAT(r.detail, HasSubstr("open names key"));
}

TEST_F(RecordChain, BadLengthsAreTampered) {
  const Sample s = MakeSample(key_);
  const std::string head = s.bytes.substr(0, s.frame_starts[2]);
  EXPECT_EQ(Verify(head + std::string("\0\0\0\0", 4)).verdict, VerifyReport::kTampered);
  EXPECT_EQ(Verify(head + std::string("\x00\x20\x00\x01", 4) + "x").verdict,
            VerifyReport::kTampered);
  // A garbage frame in the middle.
  EXPECT_EQ(Verify(head + EncodeFrame("\xff\xff\xff") + s.bytes.substr(s.frame_starts[2])).verdict,
            VerifyReport::kTampered);
}

TEST_F(RecordChain, VerifyFileReadsFromDisk) {
  TempDir dir;
  const Sample s = MakeSample(key_);
  ASSERT_TRUE(WriteFileAtomic(dir.File("a.rec"), s.bytes, 0600).ok());
  auto r = VerifyFile(dir.File("a.rec"), key_.public_key());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->verdict, VerifyReport::kValid);
  EXPECT_EQ(VerifyFile(dir.File("missing.rec"), key_.public_key()).status().code(),
            absl::StatusCode::kNotFound);
}

// ---- sealed originals: chained and sealed like any other record ----

std::string SealedSample(const RecordingKey& key, const AuditorPrivateKey& auditor) {
  TempDir dir;
  interlock::testing::FakeClock clock;
  {
    auto rec = *Recorder::Create(dir.File("s.rec"), SampleOpen(), key, clock,
                                 {.auditor_public_key = auditor.public_key()});
    EXPECT_TRUE(rec->AppendData(v1::DIRECTION_TO_AGENT, "masked ***").ok());
    EXPECT_TRUE(rec->AppendSealed(v1::DIRECTION_TO_AGENT, "original secret").ok());
    EXPECT_TRUE(rec->AppendData(v1::DIRECTION_TO_AGENT, "tail").ok());
    v1::SessionClose c;
    c.set_outcome("closed");
    EXPECT_TRUE(rec->Close(c).ok());
  }
  return *ReadFile(dir.File("s.rec"));
}

TEST_F(RecordChain, SealedRecordsVerify) {
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  const VerifyReport r = Verify(SealedSample(key_, auditor));
  EXPECT_EQ(r.verdict, VerifyReport::kValid) << r.detail;
  EXPECT_EQ(r.records_ok, 6u);
}

TEST_F(RecordChain, TamperedSealedRecordIsDetected) {
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  const std::string good = SealedSample(key_, auditor);
  // Record 2 is the sealed one: every byte of its frame is covered by record 3's prev_hash.
  size_t off = 0;
  for (int i = 0; i < 2; ++i) off += DecodeFrame(absl::string_view(good).substr(off)).frame_bytes;
  const FrameView f = DecodeFrame(absl::string_view(good).substr(off));
  ASSERT_EQ(f.result, FrameView::Result::kFrame);
  v1::Record sealed;
  ASSERT_TRUE(sealed.ParseFromArray(f.record.data(), static_cast<int>(f.record.size())));
  ASSERT_TRUE(sealed.has_sealed());
  google::protobuf::LogSilencer quiet;
  for (size_t pos = off; pos < off + f.frame_bytes; ++pos) {
    std::string bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ 0x01);
    const VerifyReport r = Verify(bad);
    ASSERT_EQ(r.verdict, VerifyReport::kTampered) << "byte " << pos << ": " << r.detail;
  }
  // Dropping it breaks the chain too.
  std::string dropped = good;
  dropped.erase(off, f.frame_bytes);
  EXPECT_EQ(Verify(dropped).verdict, VerifyReport::kTampered);
}

TEST_F(RecordChain, SealedRecordWithoutOpenKeyIsTampered) {
  ChainBuilder b;
  b.Add(OpenRecord(key_));  // no sealed_originals_key
  v1::Record sealed;
  sealed.set_time_unix_nanos(2000);
  sealed.mutable_sealed()->set_direction(v1::DIRECTION_TO_AGENT);
  sealed.mutable_sealed()->set_ciphertext(std::string(20, 'c'));
  b.Add(sealed);
  b.Add(CloseRecord());
  b.Seal(key_, "sess-0001", 3000);
  const VerifyReport r = Verify(b.bytes());
  EXPECT_EQ(r.verdict, VerifyReport::kTampered);
  EXPECT_THAT(r.detail, HasSubstr("record 1: sealed original"));
}

}  // namespace
}  // namespace interlock::record

namespace interlock::record {
namespace {

// The session-end audit event carries Recorder::records() and head_hash(); the verifier
// must compute the same from the file, and less from a file cut short.
TEST(VerifierHead, RecordCountAndHeadMatchTheRecorder) {
  test::TempDir dir;
  interlock::testing::FakeClock clock;
  RecordingKey key = RecordingKey::Generate();
  auto rec = Recorder::Create(dir.File("h.rec"), test::SampleOpen(), key, clock);
  ASSERT_TRUE(rec.ok()) << rec.status();
  ASSERT_TRUE((*rec)->AppendData(v1::DIRECTION_TO_UPSTREAM, "SELECT 1").ok());
  const std::string head_before_close = (*rec)->head_hash();
  const uint64_t records_before_close = (*rec)->records();
  ASSERT_TRUE((*rec)->Close(v1::SessionClose()).ok());
  EXPECT_EQ((*rec)->head_hash().size(), 32u);
  EXPECT_NE((*rec)->head_hash(), head_before_close);
  EXPECT_EQ((*rec)->records(), records_before_close + 2) << "close and seal";

  const std::string bytes = *ReadFile(dir.File("h.rec"));
  VerifyReport r = VerifyRecording(bytes, key.public_key());
  ASSERT_EQ(r.verdict, VerifyReport::kValid) << r.detail;
  EXPECT_EQ(r.records_ok, (*rec)->records());
  EXPECT_EQ(r.head_hash, (*rec)->head_hash());

  // Cut after the close: the seal gone, the file looks like a crash...
  VerifyReport cut = VerifyRecording(bytes.substr(0, bytes.size() - 10), key.public_key());
  EXPECT_EQ(cut.verdict, VerifyReport::kIncomplete);
  EXPECT_EQ(cut.records_ok, (*rec)->records() - 1);
  EXPECT_NE(cut.head_hash, (*rec)->head_hash()) << "which only the audit log can tell";
}

}  // namespace
}  // namespace interlock::record
