// SshRecording: writes an SSH session's recording the way the proxy does (record::Recorder,
// AppendSsh) into a temp dir, and reads it back, for the SSH replay tests.
//
//   SshRecording rec;
//   rec.Open(0);
//   rec.Request(0, "exec", "uptime", "allow");
//   rec.Advance(absl::Milliseconds(5));
//   rec.Data(0, v1::SSH_STREAM_STDOUT, " 10:00:00 up 3 days\n");
//   const std::vector<v1::Record> records = rec.Finish();
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "interlock/v1/record.pb.h"
#include "tests/testing/fake_clock.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/record/reader.h"
#include "userspace/record/recorder.h"

namespace interlock::replay::test {

inline constexpr auto kIn = v1::SSH_STREAM_STDIN;
inline constexpr auto kOut = v1::SSH_STREAM_STDOUT;
inline constexpr auto kErr = v1::SSH_STREAM_STDERR;
inline constexpr auto kOwn = v1::SSH_STREAM_INTERLOCK;

class SshRecording {
 public:
  // The session starts at kStart (Unix seconds, and 250 ms).
  static constexpr int64_t kStart = 1767225600;

  explicit SshRecording(absl::string_view session_id = "sess-ssh-1") {
    v1::SessionOpen open = record::test::SampleOpen(session_id);
    open.set_protocol("ssh");
    open.set_resource("build-host");
    auto rec = record::Recorder::Create(dir_.File("s.rec"), open, key_, clock_);
    EXPECT_TRUE(rec.ok()) << rec.status();
    if (rec.ok()) recorder_ = *std::move(rec);
  }

  void Advance(absl::Duration d) { clock_.Advance(d); }

  void Add(const v1::SshEvent& e) {
    absl::Status st = recorder_->AppendSsh(e);
    EXPECT_TRUE(st.ok()) << st;
  }
  void Open(uint32_t channel) {
    v1::SshEvent e;
    e.set_channel(channel);
    e.mutable_open()->set_type("session");
    Add(e);
  }
  void Request(uint32_t channel, absl::string_view type, absl::string_view command, absl::string_view decision,
               absl::string_view rule_id = "", absl::string_view reason = "") {
    v1::SshEvent e;
    e.set_channel(channel);
    v1::SshRequest* q = e.mutable_request();
    q->set_type(std::string(type));
    q->set_command(std::string(command));
    q->set_decision(std::string(decision));
    q->set_rule_id(std::string(rule_id));
    q->set_reason(std::string(reason));
    Add(e);
  }
  void Pty(uint32_t channel, absl::string_view term, uint32_t cols, uint32_t rows) {
    v1::SshEvent e;
    e.set_channel(channel);
    v1::SshRequest* q = e.mutable_request();
    q->set_type("pty-req");
    q->set_term(std::string(term));
    q->set_cols(cols);
    q->set_rows(rows);
    q->set_decision("forwarded");
    Add(e);
  }
  void Window(uint32_t channel, uint32_t cols, uint32_t rows) {
    v1::SshEvent e;
    e.set_channel(channel);
    e.mutable_request()->set_type("window-change");
    e.mutable_request()->set_cols(cols);
    e.mutable_request()->set_rows(rows);
    e.mutable_request()->set_decision("forwarded");
    Add(e);
  }
  void Data(uint32_t channel, v1::SshStream stream, absl::string_view bytes) {
    v1::SshEvent e;
    e.set_channel(channel);
    e.mutable_data()->set_stream(stream);
    e.mutable_data()->set_payload(std::string(bytes));
    Add(e);
  }
  void Exit(uint32_t channel, int32_t status, absl::string_view signal = "", bool by_interlock = false) {
    v1::SshEvent e;
    e.set_channel(channel);
    e.mutable_exit()->set_status(status);
    e.mutable_exit()->set_signal(std::string(signal));
    e.mutable_exit()->set_by_interlock(by_interlock);
    Add(e);
  }
  void End(uint32_t channel, absl::string_view kind) {
    v1::SshEvent e;
    e.set_channel(channel);
    e.mutable_end()->set_kind(std::string(kind));
    Add(e);
  }

  // Closes and seals the recording and returns its records as read back from the file.
  std::vector<v1::Record> Finish() {
    v1::SessionClose close;
    close.set_outcome("closed");
    absl::Status st = recorder_->Close(close);
    EXPECT_TRUE(st.ok()) << st;
    auto read = record::ReadRecordingFile(dir_.File("s.rec"));
    EXPECT_TRUE(read.ok()) << read.status();
    if (!read.ok()) return {};
    EXPECT_TRUE(read->stop.ok()) << read->stop;
    return std::move(read->records);
  }

 private:
  record::test::TempDir dir_;
  record::RecordingKey key_ = record::RecordingKey::Generate();
  interlock::testing::FakeClock clock_{absl::FromUnixSeconds(kStart) + absl::Milliseconds(250)};
  std::unique_ptr<record::Recorder> recorder_;
};

}  // namespace interlock::replay::test
