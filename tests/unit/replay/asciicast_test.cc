// asciicast v2 export of an SSH channel: the header, "o"/"i"/"r" events at monotonic times,
// UTF-8 decoded per stream as asciinema does (split characters rejoined, invalid sequences
// replaced), every line valid JSON, and errors for what cannot be exported.
#include "userspace/replay/asciicast.h"

#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/unit/record/record_test_util.h"
#include "tests/unit/replay/ssh_recording.h"
#include "userspace/codec/json/tokenizer.h"
#include "userspace/common/file_util.h"

namespace interlock::replay {
namespace {

using test::kErr, test::kIn, test::kOut, test::kOwn, test::SshRecording;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

struct Event {
  double time;
  std::string code;
  std::string data;
  bool operator==(const Event&) const = default;
};
void PrintTo(const Event& e, std::ostream* os) { *os << "[" << e.time << ", " << e.code << ", \"" << e.data << "\"]"; }

struct Cast {
  google::protobuf::Struct header;
  std::vector<Event> events;
};

// Every line must be strict RFC 8259 JSON (the repo's tokenizer refuses invalid UTF-8 and raw
// control characters); the header an object, each event a [number, string, string] array.
Cast Parse(const std::string& text) {
  Cast cast;
  EXPECT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  for (size_t i = 0; i < lines.size(); ++i) {
    codec::json::JsonTokenizer tok;
    auto sink = [](const codec::json::JsonToken&) { return absl::OkStatus(); };
    absl::Status st = tok.Feed(lines[i], sink);
    if (st.ok()) st = tok.Finish(sink);
    EXPECT_TRUE(st.ok()) << "line " << i << ": " << st << "\n" << lines[i];
    if (i == 0) {
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(lines[i]), &cast.header).ok()) << lines[i];
      continue;
    }
    google::protobuf::ListValue event;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(std::string(lines[i]), &event).ok()) << lines[i];
    EXPECT_EQ(event.values_size(), 3) << lines[i];
    if (event.values_size() != 3) continue;
    EXPECT_TRUE(event.values(0).has_number_value()) << lines[i];
    cast.events.push_back({event.values(0).number_value(), event.values(1).string_value(),
                           event.values(2).string_value()});
  }
  return cast;
}

Cast Export(const std::vector<v1::Record>& records, const AsciicastOptions& options = {}) {
  absl::StatusOr<std::string> text = ExportAsciicast(records, options);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? Parse(*text) : Cast{};
}

const google::protobuf::Value& Field(const google::protobuf::Struct& s, const std::string& name) {
  static const google::protobuf::Value kNone;
  auto it = s.fields().find(name);
  return it == s.fields().end() ? kNone : it->second;
}

TEST(Asciicast, TheFirstTerminalChannelWithItsHeaderAndOutput) {
  SshRecording rec;  // starts at kStart + 250 ms
  rec.Open(0);
  rec.Request(0, "exec", "hostname", "allow");
  rec.Data(0, kOut, "not this channel\n");
  rec.Open(1);
  rec.Pty(1, "xterm-256color", 100, 30);
  rec.Request(1, "shell", "", "allow");
  rec.Advance(absl::Milliseconds(1500));
  rec.Data(1, kOut, "$ ");
  rec.Advance(absl::Milliseconds(500));
  rec.Data(1, kErr, "warn\r\n");
  rec.Data(1, kOwn, "interlock: session ends in 1 minute\r\n");
  rec.Exit(1, 0);
  const Cast cast = Export(rec.Finish());
  EXPECT_EQ(Field(cast.header, "version").number_value(), 2);
  EXPECT_EQ(Field(cast.header, "width").number_value(), 100);
  EXPECT_EQ(Field(cast.header, "height").number_value(), 30);
  EXPECT_EQ(Field(cast.header, "timestamp").number_value(), SshRecording::kStart);
  EXPECT_EQ(Field(Field(cast.header, "env").struct_value(), "TERM").string_value(), "xterm-256color");
  EXPECT_EQ(Field(cast.header, "title").string_value(), "build-host sess-ssh-1 channel 1");
  EXPECT_THAT(cast.events, ElementsAre(Event{1.5, "o", "$ "}, Event{2.0, "o", "warn\r\n"},
                                       Event{2.0, "o", "interlock: session ends in 1 minute\r\n"}));
}

TEST(Asciicast, InputEventsOnlyWithTheFlag) {
  SshRecording rec;
  rec.Open(0);
  rec.Pty(0, "xterm", 80, 24);
  rec.Data(0, kOut, "Password: ");
  rec.Advance(absl::Seconds(1));
  rec.Data(0, kIn, "hunter2\r");
  rec.Data(0, kOut, "\r\n");
  const std::vector<v1::Record> records = rec.Finish();
  EXPECT_THAT(Export(records).events, ElementsAre(Event{0, "o", "Password: "}, Event{1, "o", "\r\n"}));
  EXPECT_THAT(Export(records, {.input = true}).events,
              ElementsAre(Event{0, "o", "Password: "}, Event{1, "i", "hunter2\r"}, Event{1, "o", "\r\n"}));
}

TEST(Asciicast, WindowChangesAreResizeEvents) {
  SshRecording rec;
  rec.Open(0);
  rec.Pty(0, "xterm", 80, 24);
  rec.Advance(absl::Milliseconds(250));
  rec.Window(0, 132, 43);
  const Cast cast = Export(rec.Finish());
  EXPECT_THAT(cast.events, ElementsAre(Event{0.25, "r", "132x43"}));
}

TEST(Asciicast, AUtf8CharacterSplitAcrossRecordsIsCarriedToTheNextEventOfItsStream) {
  SshRecording rec;
  rec.Open(0);
  rec.Pty(0, "xterm", 80, 24);
  rec.Data(0, kOut, "caf\xc3");
  rec.Data(0, kOut, "\xa9 \xf0\x9f");
  rec.Data(0, kOut, "\x98");  // still incomplete: no event
  rec.Data(0, kOut, "\x80!\xe2\x82");
  rec.Data(0, kErr, "E");  // another stream does not complete it
  rec.Data(0, kOut, "\xac");
  const Cast cast = Export(rec.Finish());
  EXPECT_THAT(cast.events, ElementsAre(Event{0, "o", "caf"}, Event{0, "o", "\xc3\xa9 "},
                                       Event{0, "o", "\xf0\x9f\x98\x80!"}, Event{0, "o", "E"},
                                       Event{0, "o", "\xe2\x82\xac"}));
}

TEST(Asciicast, InvalidUtf8IsReplacedAsAsciinemaDoes) {
  SshRecording rec;
  rec.Open(0);
  rec.Pty(0, "xterm", 80, 24);
  // Python: b"...".decode("utf-8", "replace"): one U+FFFD per maximal invalid subpart.
  rec.Data(0, kOut, "\xff ok \xe2\x82X \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf ");
  rec.Data(0, kOut, "end \xf0\x9f\x98");  // cut at the channel's end
  const Cast cast = Export(rec.Finish());
  const std::string r = "\xef\xbf\xbd";
  EXPECT_THAT(cast.events, ElementsAre(Event{0, "o", absl::StrCat(r, " ok ", r, "X ", r, r, r, " ", r, r, r, r,
                                                                   " ", r, r, " ")},
                                       Event{0, "o", "end "}, Event{0, "o", r}));
}

TEST(Asciicast, ControlBytesAreJsonEscaped) {
  SshRecording rec;
  rec.Open(0);
  rec.Pty(0, "xterm", 80, 24);
  constexpr char kBytes[] = "\x1b[1;31mred\x1b[0m \"q\" \\ \x00\x7f\x07";
  const std::string bytes(kBytes, sizeof kBytes - 1);
  rec.Data(0, kOut, bytes);
  absl::StatusOr<std::string> text = ExportAsciicast(rec.Finish());
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_THAT(*text, HasSubstr(R"("\u001b[1;31mred\u001b[0m \"q\" \\ \u0000\u007f\u0007"])"));
  EXPECT_THAT(Parse(*text).events, ElementsAre(Event{0, "o", bytes}));
}

TEST(Asciicast, ACommandWithoutAPtyGetsTheDefaultSizeAndCrLf) {
  SshRecording rec;
  rec.Open(4);
  rec.Request(4, "exec", "ls", "allow");
  rec.Data(4, kOut, "a\nb\r\n");
  const Cast cast = Export(rec.Finish(), {.channel = 4});
  EXPECT_EQ(Field(cast.header, "width").number_value(), 80);
  EXPECT_EQ(Field(cast.header, "height").number_value(), 24);
  EXPECT_FALSE(cast.header.fields().contains("env"));
  EXPECT_THAT(cast.events, ElementsAre(Event{0, "o", "a\r\nb\r\n"}));
}

TEST(Asciicast, TimesNeverGoBackwards) {
  std::vector<v1::Record> records(4);
  records[0].set_time_unix_nanos(10'000'000'000);
  records[0].mutable_open()->set_session_id("s");
  records[0].mutable_open()->set_protocol("ssh");
  for (int i = 1; i < 4; ++i) {
    records[i].mutable_ssh()->mutable_data()->set_stream(kOut);
    records[i].mutable_ssh()->mutable_data()->set_payload(absl::StrCat(i));
  }
  records[1].set_time_unix_nanos(12'000'000'000);
  records[2].set_time_unix_nanos(11'000'000'000);  // older than the one before
  records[3].set_time_unix_nanos(9'000'000'000);   // older than the session
  const Cast cast = Export(records, {.channel = 0});
  EXPECT_THAT(cast.events, ElementsAre(Event{2, "o", "1"}, Event{2, "o", "2"}, Event{2, "o", "3"}));
}

TEST(Asciicast, WhatCannotBeExportedIsAnError) {
  SshRecording rec;
  rec.Open(0);
  rec.Request(0, "exec", "ls", "allow");
  rec.Open(3);
  const std::vector<v1::Record> records = rec.Finish();
  absl::StatusOr<std::string> none = ExportAsciicast(records, {.channel = 9});
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();
  EXPECT_THAT(none.status().message(), HasSubstr("no channel 9 (channels: 0, 3)"));
  absl::StatusOr<std::string> no_terminal = ExportAsciicast(records);
  EXPECT_TRUE(absl::IsNotFound(no_terminal.status())) << no_terminal.status();
  EXPECT_THAT(no_terminal.status().message(), HasSubstr("no channel with a shell or pty"));

  std::vector<v1::Record> pg(1);
  pg[0].mutable_open()->set_session_id("p");
  pg[0].mutable_open()->set_protocol("postgres");
  EXPECT_TRUE(absl::IsFailedPrecondition(ExportAsciicast(pg).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(ExportAsciicast({}).status()));
}

// asciinema itself reads the export (`asciinema cat` needs a terminal: script(1) gives it one).
TEST(Asciicast, AsciinemaCatPrintsTheOutput) {
  if (access("/usr/bin/asciinema", X_OK) != 0 || access("/usr/bin/script", X_OK) != 0) {
    GTEST_SKIP() << "asciinema or script(1) not installed";
  }
  SshRecording rec;
  rec.Open(0);
  rec.Pty(0, "xterm", 80, 24);
  rec.Data(0, kOut, "caf\xc3");
  rec.Data(0, kOut, "\xa9 ok\xff\r\n");
  absl::StatusOr<std::string> text = ExportAsciicast(rec.Finish());
  ASSERT_TRUE(text.ok()) << text.status();
  record::test::TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.File("s.cast"), *text, 0600).ok());
  const std::string cmd =
      absl::StrCat("timeout 60 /usr/bin/script -qec '/usr/bin/asciinema cat ", dir.File("s.cast"),
                   "' /dev/null </dev/null 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << out;
  EXPECT_THAT(out, HasSubstr("caf\xc3\xa9 ok\xef\xbf\xbd"));
  EXPECT_THAT(out, Not(HasSubstr("Traceback")));
}

}  // namespace
}  // namespace interlock::replay
