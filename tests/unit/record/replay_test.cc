#include "userspace/record/replay.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"
#include "userspace/record/reader.h"
#include "userspace/record/recorder.h"
#include "userspace/record/sealed_box.h"

namespace interlock::record {
namespace {

using test::SampleOpen;
using test::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

std::string RecordSession(const TempDir& dir, const RecordingKey& key, bool close = true) {
  interlock::testing::FakeClock clock;
  auto rec = Recorder::Create(dir.File("s.rec"), SampleOpen(), key, clock);
  EXPECT_TRUE(rec.ok()) << rec.status();
  clock.Advance(absl::Microseconds(12345));
  EXPECT_TRUE(
      (*rec)->AppendData(v1::DIRECTION_TO_UPSTREAM, "GET / HTTP/1.1\r\nHost: orders\r\n\r\n").ok());
  clock.Advance(absl::Milliseconds(2));
  EXPECT_TRUE(
      (*rec)
          ->AppendData(v1::DIRECTION_TO_AGENT, std::string("HTTP/1.1 200 OK\r\n\r\n\x00\xfe", 21))
          .ok());
  EXPECT_TRUE((*rec)->AppendEvent("agent_half_close", "shutdown(SHUT_WR)").ok());
  clock.Advance(absl::Milliseconds(1));
  v1::SessionClose c;
  c.set_outcome("closed");
  if (close) {
    EXPECT_TRUE((*rec)->Close(c).ok());
  }
  rec->reset();
  return *ReadFile(dir.File("s.rec"));
}

TEST(RecordReplay, TimelineSmoke) {
  TempDir dir;
  RecordingKey key = RecordingKey::Generate();
  Recording rec = ReadRecording(RecordSession(dir, key));
  ASSERT_TRUE(rec.stop.ok());
  const std::string t = FormatTimeline(rec.records, {});
  EXPECT_THAT(t, HasSubstr("sess-0001"));
  EXPECT_THAT(t, HasSubstr("billing-agent"));
  EXPECT_THAT(t, HasSubstr("pid 31337"));
  EXPECT_THAT(t, HasSubstr("uid 1000 (alice)"));
  EXPECT_THAT(t, HasSubstr("/usr/bin/python3.11"));
  EXPECT_THAT(t, HasSubstr("orders-api"));
  EXPECT_THAT(t, HasSubstr("10.0.0.5:80"));
  EXPECT_THAT(t, HasSubstr("[::1]:8080"));
  EXPECT_THAT(t, HasSubstr("2026-01-01T00:00:00Z"));
  EXPECT_THAT(t, HasSubstr("+12.345ms  agent -> upstream"));
  EXPECT_THAT(t, HasSubstr("32 bytes  \"GET / HTTP/1.1\\r\\nHost: orders\\r\\n\\r\\n\""));
  EXPECT_THAT(t, HasSubstr("+14.345ms  upstream -> agent"));
  EXPECT_THAT(t, HasSubstr("21 bytes  \"HTTP/1.1 200 OK\\r\\n\\r\\n\\x00\\xfe\""));
  EXPECT_THAT(t, HasSubstr("event  agent_half_close  shutdown(SHUT_WR)"));
  EXPECT_THAT(
      t, HasSubstr("close  closed  32 bytes to upstream, 21 bytes to agent, duration 15.345ms"));
  EXPECT_THAT(t, HasSubstr("seal   key " + key.Fingerprint()));
  EXPECT_THAT(t, Not(HasSubstr("incomplete")));
}

TEST(RecordReplay, TimelineOfIncompleteRecordingSaysSo) {
  TempDir dir;
  RecordingKey key = RecordingKey::Generate();
  const std::string t = FormatTimeline(ReadRecording(RecordSession(dir, key, false)).records, {});
  EXPECT_THAT(t, HasSubstr("billing-agent"));
  EXPECT_THAT(t, HasSubstr("no seal"));
  EXPECT_EQ(FormatTimeline({}, {}), "(no records)\n");
}

TEST(RecordReplay, HexdumpOption) {
  TempDir dir;
  RecordingKey key = RecordingKey::Generate();
  Recording rec = ReadRecording(RecordSession(dir, key));
  const std::string t = FormatTimeline(rec.records, {.hexdump = true});
  EXPECT_THAT(
      t, HasSubstr("000000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  |GET / HTTP/1.1..|"));
  const std::string cut = FormatTimeline(rec.records, {.hexdump = true, .hexdump_max_bytes = 16});
  EXPECT_THAT(cut, HasSubstr("... 16 more bytes"));
}

TEST(RecordReplay, PreviewEscapesAndCaps) {
  EXPECT_EQ(EscapedPreview("a\"b\\c\t\x01", 64), "a\\\"b\\\\c\\t\\x01");
  const std::string long_text(200, 'z');
  const std::string p = EscapedPreview(long_text, 64);
  EXPECT_EQ(p, std::string(64, 'z') + "...");
  // Never cuts inside an escape.
  EXPECT_EQ(EscapedPreview("abc\x01", 5), "abc...");
  EXPECT_EQ(EscapedPreview("", 64), "");
}

TEST(RecordReplay, WriteRawDirectionsConcatenatesEachWay) {
  TempDir dir;
  RecordingKey key = RecordingKey::Generate();
  interlock::testing::FakeClock clock;
  {
    auto rec = Recorder::Create(dir.File("s.rec"), SampleOpen(), key, clock);
    ASSERT_TRUE(rec.ok());
    ASSERT_TRUE((*rec)->AppendData(v1::DIRECTION_TO_UPSTREAM, "one ").ok());
    ASSERT_TRUE((*rec)->AppendData(v1::DIRECTION_TO_AGENT, std::string("\0A", 2)).ok());
    ASSERT_TRUE((*rec)->AppendData(v1::DIRECTION_TO_UPSTREAM, "two").ok());
    ASSERT_TRUE((*rec)->AppendData(v1::DIRECTION_TO_AGENT, "B").ok());
    ASSERT_TRUE((*rec)->Close(v1::SessionClose()).ok());
  }
  Recording rec = ReadRecording(*ReadFile(dir.File("s.rec")));
  ASSERT_TRUE(WriteRawDirections(rec.records, dir.File("out/raw")).ok());
  EXPECT_EQ(*ReadFile(dir.File("out/raw/to_upstream.bin")), "one two");
  EXPECT_EQ(*ReadFile(dir.File("out/raw/to_agent.bin")), std::string("\0AB", 3));
}

TEST(RecordReader, StopsAtTruncatedFrameAndSaysSo) {
  TempDir dir;
  RecordingKey key = RecordingKey::Generate();
  const std::string file = RecordSession(dir, key);
  const Recording whole = ReadRecording(file);
  ASSERT_TRUE(whole.stop.ok());
  ASSERT_EQ(whole.records.size(), 6u);
  const Recording cut = ReadRecording(absl::string_view(file).substr(0, file.size() - 3));
  EXPECT_EQ(cut.records.size(), 5u);
  EXPECT_EQ(cut.stop.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(cut.stop.message(), HasSubstr("frame 5"));
  EXPECT_THAT(cut.stop.message(), HasSubstr("truncated"));
}

TEST(RecordReader, StopsAtGarbageFrame) {
  const std::string file = EncodeFrame(std::string("\xff\xff", 2));
  const Recording r = ReadRecording(file);
  EXPECT_TRUE(r.records.empty());
  EXPECT_THAT(r.stop.message(), HasSubstr("frame 0 at offset 0: 2 bytes do not parse"));
  EXPECT_EQ(ReadRecording(std::string("\0\0\0\0", 4)).stop.code(), absl::StatusCode::kDataLoss);
}

// ---- sealed originals ----

// A session whose masked answer carries its original in a sealed record; `auditor` null:
// originals are not kept.
std::string RecordSealedSession(const TempDir& dir, const AuditorPrivateKey* auditor) {
  interlock::testing::FakeClock clock;
  RecorderOptions options;
  if (auditor != nullptr) options.auditor_public_key = auditor->public_key();
  const RecordingKey key = RecordingKey::Generate();  // borrowed by the recorder
  auto rec = *Recorder::Create(dir.File("s.rec"), SampleOpen(), key, clock, options);
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(rec->AppendData(v1::DIRECTION_TO_AGENT, "card 4111-****-****-1111").ok());
  if (auditor != nullptr) {
    EXPECT_TRUE(rec->AppendSealed(v1::DIRECTION_TO_AGENT, "card 4111-1111-1111-1111").ok());
  }
  v1::SessionClose c;
  c.set_outcome("closed");
  EXPECT_TRUE(rec->Close(c).ok());
  rec.reset();
  return *ReadFile(dir.File("s.rec"));
}

TEST(RecordReplay, SealedOriginalIsShownBySizeWithoutTheKey) {
  TempDir dir;
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  Recording rec = ReadRecording(RecordSealedSession(dir, &auditor));
  const std::string t = FormatTimeline(rec.records, {});
  EXPECT_THAT(t, HasSubstr("sealed to auditor key " + auditor.Fingerprint()));
  EXPECT_THAT(t, HasSubstr("+1.000ms  upstream -> agent  [sealed original: 24 bytes]"));
  EXPECT_THAT(t, Not(HasSubstr("4111-1111")));
}

TEST(RecordReplay, UnsealedOriginalIsShownNextToTheMaskedData) {
  TempDir dir;
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  Recording rec = ReadRecording(RecordSealedSession(dir, &auditor));
  auto originals = UnsealOriginals(rec.records, auditor);
  ASSERT_TRUE(originals.ok()) << originals.status();
  ASSERT_EQ(originals->size(), 1u);
  EXPECT_EQ(originals->at(2), "card 4111-1111-1111-1111");
  const std::string t = FormatTimeline(rec.records, {.hexdump = true, .originals = &*originals});
  const size_t masked = t.find("\"card 4111-****-****-1111\"");
  const size_t original = t.find("24 bytes  original  \"card 4111-1111-1111-1111\"");
  ASSERT_NE(masked, std::string::npos) << t;
  ASSERT_NE(original, std::string::npos) << t;
  EXPECT_LT(masked, original);
  EXPECT_THAT(t, HasSubstr("|card 4111-1111-1|"));  // hexdump of the original
}

TEST(RecordReplay, UnsealWithTheWrongKeyIsAClearError) {
  TempDir dir;
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  AuditorPrivateKey other = AuditorPrivateKey::Generate();
  Recording rec = ReadRecording(RecordSealedSession(dir, &auditor));
  auto wrong = UnsealOriginals(rec.records, other);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr(auditor.Fingerprint()));
  EXPECT_THAT(wrong.status().message(), HasSubstr(other.Fingerprint()));
  // Without the fingerprint to compare, the boxes themselves refuse the key.
  rec.records[0].mutable_open()->clear_auditor_key_fingerprint();
  wrong = UnsealOriginals(rec.records, other);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(wrong.status().message(), HasSubstr("record 2"));
  // An altered box does not open either.
  std::string* ct = rec.records[2].mutable_sealed()->mutable_ciphertext();
  (*ct)[0] ^= 1;
  EXPECT_EQ(UnsealOriginals(rec.records, auditor).status().code(), absl::StatusCode::kDataLoss);
}

TEST(RecordReplay, UnsealOfASessionWithoutOriginalsIsFailedPrecondition) {
  TempDir dir;
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  Recording rec = ReadRecording(RecordSealedSession(dir, nullptr));
  EXPECT_EQ(UnsealOriginals(rec.records, auditor).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(UnsealOriginals({}, auditor).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace interlock::record
