// The SSH replay decoder: per channel the request and interlockd's decision, then the
// channel's data as text (escaped), the exit and the end; odd records shown, never fatal.
#include "userspace/replay/ssh_replay.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/replay/ssh_recording.h"
#include "userspace/replay/timeline.h"

namespace interlock::replay {
namespace {

using test::kErr, test::kIn, test::kOut, test::kOwn, test::SshRecording;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(SshReplay, AnExecChannelShowsItsCommandDecisionOutputAndExit) {
  SshRecording rec;
  rec.Advance(absl::Milliseconds(1));
  rec.Open(0);
  rec.Request(0, "exec", "uptime -p", "allow", "ops-read", "read-only commands");
  rec.Advance(absl::Milliseconds(2));
  rec.Data(0, kOut, "up 3 days,\n");
  rec.Data(0, kOut, " 2 users\n");  // one block with the record before
  rec.Data(0, kErr, "warning: clock skew\n");
  rec.End(0, "eof_from_upstream");
  rec.Exit(0, 0);
  rec.End(0, "close");
  const std::string t = FormatSshTimeline(rec.Finish(), {});
  EXPECT_THAT(t, HasSubstr("protocol     ssh\n"));
  EXPECT_THAT(t, HasSubstr("channel 0\n"));
  EXPECT_THAT(t, HasSubstr("+1.000ms  open        session\n"));
  EXPECT_THAT(t, HasSubstr("exec        uptime -p  -> allow (rule ops-read: read-only commands)\n"));
  EXPECT_THAT(t, HasSubstr("+3.000ms  stdout      up 3 days,\n"
                           "                             2 users\n"
                           "      +3.000ms  stderr      warning: clock skew\n"));
  EXPECT_THAT(t, HasSubstr("eof         from upstream\n"));
  EXPECT_THAT(t, HasSubstr("exit        status 0\n"));
  EXPECT_THAT(t, HasSubstr("close\n"));
  EXPECT_THAT(t, HasSubstr("close  closed  0 bytes to upstream, 40 bytes to agent"));
  EXPECT_THAT(t, HasSubstr("seal   key "));
  EXPECT_THAT(t, Not(HasSubstr("no seal")));
}

TEST(SshReplay, ADeniedCommandShowsInterlockdsMessageAndItsExit) {
  SshRecording rec;
  rec.Open(1);
  rec.Request(1, "exec", "rm -rf /srv", "deny", "no-deletes", "destructive command");
  rec.Data(1, kOwn, "interlock: denied by rule no-deletes\r\n");
  rec.Exit(1, 126, "", /*by_interlock=*/true);
  const std::string t = FormatSshTimeline(rec.Finish(), {});
  EXPECT_THAT(t, HasSubstr("exec        rm -rf /srv  -> deny (rule no-deletes: destructive command)\n"));
  EXPECT_THAT(t, HasSubstr("interlockd  interlock: denied by rule no-deletes\n"));
  EXPECT_THAT(t, HasSubstr("exit        status 126  (set by interlockd)\n"));
}

TEST(SshReplay, AShellShowsItsTerminalTypedLinesWindowChangesAndSignal) {
  SshRecording rec;
  rec.Open(0);
  rec.Pty(0, "xterm-256color", 80, 24);
  rec.Request(0, "shell", "", "review");
  rec.Request(0, "shell", "", "approved", "", "approved by alice");
  rec.Data(0, kOut, "$ ");
  for (const char* key : {"l", "s", "\r"}) {
    rec.Advance(absl::Milliseconds(100));
    rec.Data(0, kIn, key);
    if (std::string(key) != "\r") rec.Data(0, kOut, key);  // the echo
  }
  rec.Data(0, kOut, "\r\nnotes.txt\treport.pdf\r\n$ ");
  rec.Window(0, 120, 40);
  rec.Data(0, kIn, "hunter2\n");
  rec.End(0, "eof_from_agent");
  rec.Exit(0, -1, "TERM");
  const std::string t = FormatSshTimeline(rec.Finish(), {});
  EXPECT_THAT(t, HasSubstr("pty-req     xterm-256color 80x24  -> forwarded\n"));
  EXPECT_THAT(t, HasSubstr("shell       interactive shell (TERM xterm-256color, 80x24)  -> review (held for "
                           "approval)\n"));
  EXPECT_THAT(t, HasSubstr("-> approved (approved by alice)\n"));
  // The echo so far, then the typed line, then what followed it.
  EXPECT_THAT(t, HasSubstr("stdout      $ ls\n"
                           "    +100.000ms  stdin       > ls\\r\n"
                           "    +300.000ms  stdout\n"
                           "                            notes.txt\treport.pdf\n"
                           "                            $ \n"));
  EXPECT_THAT(t, HasSubstr("window      120x40  -> forwarded\n"));
  EXPECT_THAT(t, HasSubstr("stdin       > hunter2\\n\n"));
  EXPECT_THAT(t, HasSubstr("eof         from agent\n"));
  EXPECT_THAT(t, HasSubstr("exit        signal TERM\n"));
}

TEST(SshReplay, RefusedAndOtherRequestsShowTheirDecision) {
  SshRecording rec;
  rec.Request(7, "direct-tcpip", "db.internal:5432", "refused", "", "port forwarding is not allowed");
  rec.Open(2);
  rec.Request(2, "env", "LC_SECRET", "ignored");
  rec.Request(2, "subsystem", "sftp", "allow", "files");
  rec.Request(2, "auth-agent-req@openssh.com", "", "refused");
  const std::string t = FormatSshTimeline(rec.Finish(), {});
  EXPECT_THAT(t, HasSubstr("channel 7  (no channel open recorded)\n"));
  EXPECT_THAT(t, HasSubstr("direct-tcpip  db.internal:5432  -> refused (port forwarding is not allowed)\n"));
  EXPECT_THAT(t, HasSubstr("env         LC_SECRET  -> ignored\n"));
  EXPECT_THAT(t, HasSubstr("subsystem   sftp  -> allow (rule files)\n"));
  EXPECT_THAT(t, HasSubstr("auth-agent-req@openssh.com  -> refused\n"));
  // Channels in order of first appearance.
  EXPECT_LT(t.find("channel 7"), t.find("channel 2"));
}

TEST(SshReplay, ControlBytesInDataAreEscapedButNewlinesAndTabsKept) {
  SshRecording rec;
  rec.Open(0);
  rec.Data(0, kOut, "\x1b[2J\x1b]0;pwned\x07ok\tdone\n\x9b\xe2\x80\xae!\rback\n");
  rec.Data(0, kIn, "\x1b[A\x03\n");
  rec.Request(0, "exec", "echo \x1b[31mred", "allow");
  const std::string t = FormatSshTimeline(rec.Finish(), {});
  EXPECT_THAT(t, Not(HasSubstr("\x1b")));
  EXPECT_THAT(t, Not(HasSubstr("\x07")));
  EXPECT_THAT(t, Not(HasSubstr("\x9b")));
  EXPECT_THAT(t, Not(HasSubstr("\xe2\x80\xae")));  // RIGHT-TO-LEFT OVERRIDE
  EXPECT_THAT(t, Not(HasSubstr("\x03")));
  EXPECT_THAT(t, HasSubstr("\\x1b[2J\\x1b]0;pwned\\x07ok\tdone\n"));
  EXPECT_THAT(t, HasSubstr("\\x9b\\u{202e}!\\rback\n"));
  EXPECT_THAT(t, HasSubstr("> \\x1b[A\\x03\\n\n"));
  EXPECT_THAT(t, HasSubstr("echo \\x1b[31mred"));
}

TEST(SshReplay, AUtf8CharacterSplitAcrossRecordsIsShownWhole) {
  SshRecording rec;
  rec.Open(0);
  rec.Data(0, kOut, "caf\xc3");
  rec.Data(0, kOut, "\xa9 \xe2\x82");
  rec.Data(0, kOut, "\xac\n");
  const std::string t = FormatSshTimeline(rec.Finish(), {});
  EXPECT_THAT(t, HasSubstr("stdout      caf\xc3\xa9 \xe2\x82\xac\n"));
}

TEST(SshReplay, DataPreviewsAreBounded) {
  SshRecording rec;
  rec.Open(0);
  rec.Data(0, kOut, std::string(100, 'a'));
  rec.Data(0, kIn, std::string(30, 'b') + "\n");
  SshTimelineOptions options;
  options.data_preview_bytes = 10;
  const std::string t = FormatSshTimeline(rec.Finish(), options);
  EXPECT_THAT(t, HasSubstr("stdout      aaaaaaaaaa\n"
                           "                            ... 90 more bytes\n"));
  EXPECT_THAT(t, HasSubstr("stdin       > bbbbbbbbbb\n"
                           "                            ... 21 more bytes\n"));
  EXPECT_THAT(t, Not(HasSubstr("aaaaaaaaaaa")));
}

TEST(SshReplay, WithHexdumpEveryBlockIsDumped) {
  SshRecording rec;
  rec.Open(0);
  rec.Data(0, kOut, "hi\n");
  record::TimelineOptions raw;
  raw.hexdump = true;
  const std::string t = FormatSshTimeline(rec.Finish(), {.raw = raw});
  EXPECT_THAT(t, HasSubstr("68 69 0a"));
}

TEST(SshReplay, AChannelNumberUsedAgainAfterItsCloseIsANewSection) {
  SshRecording rec;
  rec.Open(0);
  rec.Request(0, "exec", "first", "allow");
  rec.End(0, "close");
  rec.Open(0);
  rec.Request(0, "exec", "second", "allow");
  const std::vector<v1::Record> records = rec.Finish();
  const std::vector<SshChannelRecords> channels = SplitSshChannels(records);
  ASSERT_EQ(channels.size(), 2u);
  EXPECT_EQ(channels[0].channel, 0u);
  EXPECT_EQ(channels[1].channel, 0u);
  EXPECT_EQ(channels[0].records.size(), 3u);
  EXPECT_EQ(channels[1].records.size(), 2u);
  const std::string t = FormatSshTimeline(records, {});
  const size_t second = t.find("channel 0\n", t.find("channel 0\n") + 1);
  ASSERT_NE(second, std::string::npos) << t;
  EXPECT_LT(t.find("exec        first"), second);
  EXPECT_GT(t.find("exec        second"), second);
}

// Hand-made records, as a damaged or hand-edited file could hold them.
TEST(SshReplay, OddRecordsAreShownNotFatal) {
  std::vector<v1::Record> records(8);
  records[0].set_time_unix_nanos(1'000'000'000);
  records[0].mutable_open()->set_session_id("odd");
  records[0].mutable_open()->set_protocol("ssh");
  records[1].set_time_unix_nanos(1'005'000'000);
  records[1].mutable_ssh()->set_channel(3);
  records[1].mutable_ssh()->mutable_data()->set_stream(kOut);
  records[1].mutable_ssh()->mutable_data()->set_payload("before open\n");
  records[2].set_time_unix_nanos(999'000'000);  // older than the session's start
  records[2].mutable_ssh()->set_channel(3);
  records[2].mutable_ssh()->mutable_open()->set_type("session");
  records[3].set_time_unix_nanos(1'006'000'000);
  records[3].mutable_ssh()->set_channel(3);
  records[3].mutable_ssh()->mutable_data()->set_stream(static_cast<v1::SshStream>(9));
  records[3].mutable_ssh()->mutable_data()->set_payload("what\x01");
  records[4].mutable_ssh()->set_channel(3);  // no kind
  records[5].mutable_ssh()->set_channel(4);
  records[5].mutable_ssh()->mutable_end()->set_kind("\x1b[2Jweird");
  records[6].mutable_ssh()->set_channel(4);
  records[6].mutable_ssh()->mutable_request();  // an empty request
  records[7].mutable_event()->set_kind("upstream_error");
  const std::string t = FormatSshTimeline(records, {});
  EXPECT_THAT(t, HasSubstr("channel 3\n"));
  EXPECT_THAT(t, HasSubstr("+5.000ms  stdout      before open\n"));
  EXPECT_THAT(t, HasSubstr("-1.000ms  open        session\n"));
  EXPECT_THAT(t, HasSubstr("stream 9    what\\x01\n"));
  EXPECT_THAT(t, HasSubstr("(ssh event with no kind)"));
  EXPECT_THAT(t, HasSubstr("channel 4  (no channel open recorded)\n"));
  EXPECT_THAT(t, HasSubstr("end         \\x1b[2Jweird\n"));
  EXPECT_THAT(t, HasSubstr("event  upstream_error"));
  EXPECT_THAT(t, HasSubstr("(no seal: recording incomplete)"));
  EXPECT_EQ(FormatSshTimeline({}, {}), "(no records)\n");
  // Without an open record: a header saying so, the channels all the same.
  EXPECT_THAT(FormatSshTimeline({records[1]}, {}), HasSubstr("before open"));
}

TEST(SshReplay, TheSessionTimelineDecodesSshSessions) {
  SshRecording rec;
  rec.Open(0);
  rec.Request(0, "exec", "hostname", "allow");
  const std::vector<v1::Record> records = rec.Finish();
  EXPECT_EQ(RecordingProtocol(records), "ssh");
  EXPECT_TRUE(HasDecoder("ssh"));
  EXPECT_THAT(FormatSessionTimeline(records, {}), HasSubstr("exec        hostname  -> allow\n"));
  EXPECT_THAT(FormatSessionTimeline(records, {}, /*raw_view=*/true), HasSubstr("ssh    ch 0"));
}

}  // namespace
}  // namespace interlock::replay
