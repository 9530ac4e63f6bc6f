// SftpTracker: table-driven sessions built with the encoder of sftp_check.h, every
// chunking of them, malformed input, and a session of the real OpenSSH sftp client with
// the real sftp-server, captured by a tee between them.
#include "userspace/codec/sftp/sftp_tracker.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/codec/sftp/sftp_check.h"

namespace interlock::codec::sftp {

void PrintTo(const FileOp& op, std::ostream* os) { *os << testing::Describe(op); }

namespace {

using ::testing::HasSubstr;
using testing::Packet;
using testing::Session;
using testing::Str;
using testing::U32;
using testing::U64;

// Packets of a session, named after their SSH_FXP_* type.
std::string Init() { return Packet(kFxpInit, U32(3)); }
std::string Version() {
  return Packet(kFxpVersion, U32(3) + Str("posix-rename@openssh.com") + Str("1") +
                                 Str("hardlink@openssh.com") + Str("1"));
}
std::string Open(uint32_t id, absl::string_view path, uint32_t pflags) {
  return Packet(kFxpOpen, U32(id) + Str(path) + U32(pflags) + U32(0));
}
std::string Close(uint32_t id, absl::string_view h) { return Packet(kFxpClose, U32(id) + Str(h)); }
std::string Read(uint32_t id, absl::string_view h, uint64_t off, uint32_t len) {
  return Packet(kFxpRead, U32(id) + Str(h) + U64(off) + U32(len));
}
std::string Write(uint32_t id, absl::string_view h, uint64_t off, absl::string_view data) {
  return Packet(kFxpWrite, U32(id) + Str(h) + U64(off) + Str(data));
}
std::string PathReq(uint8_t type, uint32_t id, absl::string_view path) {
  return Packet(type, U32(id) + Str(path));
}
std::string PathAttrsReq(uint8_t type, uint32_t id, absl::string_view path) {
  return Packet(type, U32(id) + Str(path) + U32(0));
}
std::string TwoPathReq(uint8_t type, uint32_t id, absl::string_view a, absl::string_view b) {
  return Packet(type, U32(id) + Str(a) + Str(b));
}
std::string Extended(uint32_t id, absl::string_view name, absl::string_view fields) {
  return Packet(kFxpExtended, U32(id) + Str(name) + std::string(fields));
}
std::string Status(uint32_t id, uint32_t code, absl::string_view msg = "") {
  return Packet(kFxpStatus, U32(id) + U32(code) + Str(msg) + Str(""));
}
std::string HandleResp(uint32_t id, absl::string_view h) {
  return Packet(kFxpHandle, U32(id) + Str(h));
}
std::string Data(uint32_t id, size_t n) {
  return Packet(kFxpData, U32(id) + Str(std::string(n, 'd')));
}
std::string Name(uint32_t id, absl::string_view file) {
  return Packet(kFxpName, U32(id) + U32(1) + Str(file) + Str(file) + U32(0));
}
std::string Attrs(uint32_t id) { return Packet(kFxpAttrs, U32(id) + U32(4) + U32(0644)); }

constexpr uint32_t kRd = 1, kWr = 2, kAppend = 4, kCreat = 8, kTrunc = 0x10, kExcl = 0x20;

testing::Step C(std::string b) { return {true, std::move(b)}; }
testing::Step S(std::string b) { return {false, std::move(b)}; }

Session WithHandshake(Session s) {
  s.insert(s.begin(), {C(Init()), S(Version())});
  return s;
}

FileOp Op(std::string op, std::string path, std::string status, std::string target = "") {
  FileOp f;
  f.op = std::move(op);
  f.path = std::move(path);
  f.target = std::move(target);
  f.status = std::move(status);
  return f;
}
FileOp OpenOp(std::string path, std::vector<std::string> flags, uint64_t r, uint64_t w,
              std::string status) {
  FileOp f = Op("open", std::move(path), std::move(status));
  f.flags = std::move(flags);
  f.bytes_read = r;
  f.bytes_written = w;
  return f;
}

struct Case {
  std::string name;
  Session session;
  std::vector<FileOp> want;
  uint64_t metadata = 0;
};

std::vector<Case> Cases() {
  return {
      {"open write close counts bytes and flags",
       WithHandshake({C(Open(1, "/srv/a.txt", kWr | kCreat | kTrunc)), S(HandleResp(1, "h0")),
                      C(Write(2, "h0", 0, std::string(1000, 'x'))),
                      C(Write(3, "h0", 1000, std::string(24, 'y'))), S(Status(2, 0)),
                      S(Status(3, 0)), C(Close(4, "h0")), S(Status(4, 0))}),
       {OpenOp("/srv/a.txt", {"write", "create", "truncate"}, 0, 1024, "ok")}},
      {"all pflags as words",
       WithHandshake({C(Open(1, "/f", kRd | kWr | kAppend | kCreat | kTrunc | kExcl)),
                      S(HandleResp(1, "h")), C(Close(2, "h")), S(Status(2, 0))}),
       {OpenOp("/f", {"read", "write", "append", "create", "truncate", "exclusive"}, 0, 0, "ok")}},
      {"open that fails reports the open's status",
       WithHandshake({C(Open(7, "/etc/shadow", kRd)), S(Status(7, 3, "Permission denied"))}),
       {OpenOp("/etc/shadow", {"read"}, 0, 0, "permission_denied: Permission denied")}},
      {"read until eof",
       WithHandshake({C(Open(1, "/data.bin", kRd)), S(HandleResp(1, "H")),
                      C(Read(2, "H", 0, 32768)), C(Read(3, "H", 32768, 32768)), S(Data(2, 32768)),
                      S(Data(3, 5000)), C(Read(4, "H", 37768, 32768)),
                      S(Status(4, 1, "End of file")), C(Close(5, "H")), S(Status(5, 0))}),
       {OpenOp("/data.bin", {"read"}, 37768, 0, "ok")}},
      {"rename, v3 and posix-rename",
       WithHandshake({C(TwoPathReq(kFxpRename, 1, "/a", "/b")), S(Status(1, 0)),
                      C(Extended(2, "posix-rename@openssh.com", Str("/b") + Str("/c"))),
                      S(Status(2, 4, "Failure"))}),
       {Op("rename", "/a", "ok", "/b"), Op("rename", "/b", "failure: Failure", "/c")}},
      {"remove mkdir rmdir setstat symlink hardlink lsetstat",
       WithHandshake(
           {C(PathReq(kFxpRemove, 1, "/x")), S(Status(1, 2, "No such file")),
            C(PathAttrsReq(kFxpMkdir, 2, "/d")), S(Status(2, 0)), C(PathReq(kFxpRmdir, 3, "/d")),
            S(Status(3, 0)), C(PathAttrsReq(kFxpSetstat, 4, "/y")), S(Status(4, 0)),
            C(TwoPathReq(kFxpSymlink, 5, "/target", "/link")), S(Status(5, 0)),
            C(Extended(6, "hardlink@openssh.com", Str("/old") + Str("/new"))), S(Status(6, 0)),
            C(Extended(7, "lsetstat@openssh.com", Str("/l") + U32(0))), S(Status(7, 0))}),
       {Op("remove", "/x", "no_such_file: No such file"), Op("mkdir", "/d", "ok"),
        Op("rmdir", "/d", "ok"), Op("setstat", "/y", "ok"), Op("symlink", "/target", "ok", "/link"),
        Op("link", "/old", "ok", "/new"), Op("setstat", "/l", "ok")}},
      {"fsetstat uses the handle's path",
       WithHandshake({C(Open(1, "/f", kWr)), S(HandleResp(1, "h")),
                      C(Packet(kFxpFsetstat, U32(2) + Str("h") + U32(0))), S(Status(2, 0)),
                      C(Close(3, "h")), S(Status(3, 0))}),
       {Op("setstat", "/f", "ok"), OpenOp("/f", {"write"}, 0, 0, "ok")}},
      {"opendir readdir close is one opendir",
       WithHandshake({C(PathReq(kFxpOpendir, 1, "/srv")), S(HandleResp(1, "D")),
                      C(PathReq(kFxpReaddir, 2, "D")), S(Name(2, "a.txt")),
                      C(PathReq(kFxpReaddir, 3, "D")), S(Status(3, 1, "eof")), C(Close(4, "D")),
                      S(Status(4, 0))}),
       {Op("opendir", "/srv", "ok")}},
      {"metadata is counted, not reported",
       WithHandshake({C(PathReq(kFxpStat, 1, "/a")),
                      S(Attrs(1)),
                      C(PathReq(kFxpLstat, 2, "/b")),
                      S(Status(2, 2)),
                      C(PathReq(kFxpRealpath, 3, ".")),
                      S(Name(3, "/home")),
                      C(PathReq(kFxpReadlink, 4, "/l")),
                      S(Name(4, "/t")),
                      C(Extended(5, "statvfs@openssh.com", Str("/"))),
                      S(Packet(kFxpExtendedReply, U32(5) + std::string(88, '\0'))),
                      C(Extended(6, "limits@openssh.com", "")),
                      S(Packet(kFxpExtendedReply, U32(6) + U64(1) + U64(2) + U64(3) + U64(4))),
                      C(Open(7, "/f", kRd)),
                      S(HandleResp(7, "h")),
                      C(PathReq(kFxpFstat, 8, "h")),
                      S(Attrs(8)),
                      C(Extended(9, "fsync@openssh.com", Str("h"))),
                      S(Status(9, 0)),
                      C(Close(10, "h")),
                      S(Status(10, 0))}),
       {OpenOp("/f", {"read"}, 0, 0, "ok")},
       8},
      {"copy-data and an unknown extended request",
       WithHandshake(
           {C(Open(1, "/src", kRd)), S(HandleResp(1, "r")), C(Open(2, "/dst", kWr)),
            S(HandleResp(2, "w")),
            C(Extended(3, "copy-data", Str("r") + U64(0) + U64(4096) + Str("w") + U64(0))),
            S(Status(3, 0)), C(Extended(4, "frobnicate@example.com", "xyz")),
            S(Status(4, 8, "Operation unsupported")), C(Close(5, "r")), S(Status(5, 0)),
            C(Close(6, "w")), S(Status(6, 0))}),
       {[] {
          FileOp f = Op("copy-data", "/src", "ok", "/dst");
          f.bytes_written = 4096;
          return f;
        }(),
        Op("extended:frobnicate@example.com", "", "op_unsupported: Operation unsupported"),
        OpenOp("/src", {"read"}, 0, 0, "ok"), OpenOp("/dst", {"write"}, 0, 0, "ok")}},
      {"out-of-order responses",
       WithHandshake({C(PathReq(kFxpRemove, 10, "/one")), C(PathAttrsReq(kFxpMkdir, 11, "/two")),
                      C(PathReq(kFxpRmdir, 12, "/three")), S(Status(12, 0)), S(Status(10, 0)),
                      S(Status(11, 4, "Failure"))}),
       {Op("rmdir", "/three", "ok"), Op("remove", "/one", "ok"),
        Op("mkdir", "/two", "failure: Failure")}},
      {"truncated stream: Finish reports open files and unanswered changes",
       WithHandshake({C(Open(1, "/w", kWr | kCreat)), S(HandleResp(1, "a")),
                      C(Write(2, "a", 0, "hello")), S(Status(2, 0)), C(Open(3, "/r", kRd)),
                      S(HandleResp(3, "b")), C(Read(4, "b", 0, 100)), S(Data(4, 7)),
                      C(PathReq(kFxpRemove, 5, "/gone")),
                      C(Write(6, "a", 5, "world").substr(0, 20))}),
       {OpenOp("/w", {"write", "create"}, 0, 5, "not_closed"),
        OpenOp("/r", {"read"}, 7, 0, "not_closed"), Op("remove", "/gone", "no_response")}},
      {"non-utf8 path bytes are kept",
       WithHandshake({C(PathReq(kFxpRemove, 1, std::string("/a\xff\x00z", 5))), S(Status(1, 0))}),
       {Op("remove", std::string("/a\xff\x00z", 5), "ok")}},
      {"a reused handle reports the unclosed file",
       WithHandshake({C(Open(1, "/one", kRd)), S(HandleResp(1, "h")), C(Open(2, "/two", kRd)),
                      S(HandleResp(2, "h")), C(Close(3, "h")), S(Status(3, 0))}),
       {OpenOp("/one", {"read"}, 0, 0, "not_closed"), OpenOp("/two", {"read"}, 0, 0, "ok")}},
  };
}

std::vector<FileOp> RunWhole(const Session& s, SftpTracker& t) {
  std::vector<FileOp> ops;
  for (const testing::Step& step : s) {
    step.client ? t.FromClient(step.bytes) : t.FromServer(step.bytes);
    for (FileOp& op : t.TakeOps()) ops.push_back(std::move(op));
  }
  for (FileOp& op : t.Finish()) ops.push_back(std::move(op));
  return ops;
}

// Set INTERLOCK_SFTP_CORPUS=<dir> to write each case (and the real session below) there as
// fuzz seeds (tests/fuzz/sftp/corpus).
void WriteSeed(const std::string& name, const Session& s) {
  const char* corpus = std::getenv("INTERLOCK_SFTP_CORPUS");
  if (corpus == nullptr) return;
  std::string file = name;
  for (char& ch : file) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  std::ofstream(std::filesystem::path(corpus) / file, std::ios::binary) << testing::Records(s);
}

TEST(SftpTracker, ReportsFileOperations) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    WriteSeed(c.name, c.session);
    SftpTracker t;
    EXPECT_EQ(RunWhole(c.session, t), c.want);
    EXPECT_TRUE(t.status().ok()) << t.status();
    EXPECT_EQ(t.metadata_requests(), c.metadata);
  }
}

TEST(SftpTracker, OneByteAtATimeAndEverySplitGiveTheSameOps) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const std::string whole = testing::Run(c.session, testing::Whole);
    EXPECT_EQ(testing::Run(c.session, testing::Bytes), whole);
    size_t longest = 0;
    for (const auto& step : c.session) longest = std::max(longest, step.bytes.size());
    for (size_t at = 0; at <= std::min<size_t>(longest, 300); ++at) {
      const auto split = [at](absl::string_view b) {
        const size_t k = std::min(at, b.size());
        return std::vector<absl::string_view>{b.substr(0, k), b.substr(k)};
      };
      ASSERT_EQ(testing::Run(c.session, split), whole) << "split at " << at;
    }
  }
}

TEST(SftpTracker, SeveralPacketsInOneChunk) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    // Consecutive steps of one direction joined into one piece.
    Session joined;
    for (const auto& step : c.session) {
      if (!joined.empty() && joined.back().client == step.client) {
        joined.back().bytes += step.bytes;
      } else {
        joined.push_back(step);
      }
    }
    EXPECT_EQ(testing::Run(joined, testing::Whole), testing::Run(c.session, testing::Whole));
  }
}

TEST(SftpTracker, MalformedInputStopsTracking) {
  struct Bad {
    std::string name;
    Session session;
    absl::StatusCode code;
    std::string why;
  } cases[] = {
      {"length 0", WithHandshake({C(U32(0))}), absl::StatusCode::kInvalidArgument,
       "sftp: client: packet length 0"},
      {"client length over the limit", WithHandshake({C(U32(kMaxPacketLength + 1) + "x")}),
       absl::StatusCode::kResourceExhausted, "packet length 262158 > max 262157"},
      {"server length over the limit", WithHandshake({S(U32(0x7fffffff))}),
       absl::StatusCode::kResourceExhausted, "sftp: server: packet length"},
      {"string length past the packet end",
       WithHandshake({C(Packet(kFxpRemove, U32(1) + U32(100) + "/x"))}),
       absl::StatusCode::kInvalidArgument, "path: string length 100 past packet end"},
      {"write data past the packet end",
       WithHandshake({C(Packet(kFxpWrite, U32(1) + Str("h") + U64(0) + U32(50) + "abc"))}),
       absl::StatusCode::kInvalidArgument, "write: data length 50 past packet end"},
      {"handle over 256 bytes", WithHandshake({C(Close(1, std::string(257, 'h')))}),
       absl::StatusCode::kResourceExhausted, "handle: length 257 > max 256"},
      {"unknown response id", WithHandshake({C(PathReq(kFxpRemove, 1, "/x")), S(Status(2, 0))}),
       absl::StatusCode::kInvalidArgument, "unknown request id 2"},
      {"request id reused while outstanding",
       WithHandshake({C(PathReq(kFxpRemove, 1, "/x")), C(PathReq(kFxpRemove, 1, "/y"))}),
       absl::StatusCode::kInvalidArgument, "request id 1 reused"},
      {"unexpected response type",
       WithHandshake({C(PathReq(kFxpRemove, 1, "/x")), S(HandleResp(1, "h"))}),
       absl::StatusCode::kInvalidArgument, "response type 102 to request type 13"},
      {"unknown request type", WithHandshake({C(Packet(99, U32(1)))}),
       absl::StatusCode::kInvalidArgument, "unexpected packet type 99"},
      {"no init first",
       {C(PathReq(kFxpRemove, 1, "/x"))},
       absl::StatusCode::kInvalidArgument,
       "first packet type 13, not init"},
      {"version other than 3",
       {C(Init()), S(Packet(kFxpVersion, U32(6)))},
       absl::StatusCode::kFailedPrecondition,
       "version 6, not 3"},
      {"garbage",
       {C(std::string("\x00\x00\x00\x05garbage", 11))},
       absl::StatusCode::kInvalidArgument,
       "first packet type 103"},
  };
  for (const Bad& c : cases) {
    SCOPED_TRACE(c.name);
    Session s = c.session;
    // After the error, a valid operation is ignored.
    s.push_back(C(PathReq(kFxpRemove, 77, "/after")));
    s.push_back(S(Status(77, 0)));
    SftpTracker t;
    EXPECT_THAT(RunWhole(s, t), ::testing::IsEmpty());
    EXPECT_EQ(t.status().code(), c.code) << t.status();
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.why));
  }
}

TEST(SftpTracker, OpsBeforeAnErrorAreKeptAndNothingAfter) {
  SftpTracker t;
  std::vector<FileOp> ops =
      RunWhole(WithHandshake({C(PathReq(kFxpRemove, 1, "/x")), S(Status(1, 0)),
                              C(Open(2, "/f", kRd)), S(HandleResp(2, "h")), S(Status(9, 0))}),
               t);
  EXPECT_EQ(ops, std::vector<FileOp>{Op("remove", "/x", "ok")});
  EXPECT_FALSE(t.status().ok());
}

TEST(SftpTracker, OutstandingRequestsAndHandlesAreBounded) {
  {
    Session s = WithHandshake({});
    for (uint32_t id = 0; id <= kMaxOutstandingRequests; ++id) {
      s.push_back(C(PathReq(kFxpStat, id, "/a")));
    }
    SftpTracker t;
    RunWhole(s, t);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kResourceExhausted) << t.status();
    EXPECT_THAT(std::string(t.status().message()), HasSubstr("outstanding requests"));
  }
  {
    Session s = WithHandshake({});
    for (uint32_t id = 0; id <= kMaxOpenHandles; ++id) {
      s.push_back(C(Open(id, "/a", kRd)));
      s.push_back(S(HandleResp(id, absl::StrCat("h", id))));
    }
    SftpTracker t;
    EXPECT_THAT(RunWhole(s, t), ::testing::IsEmpty());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kResourceExhausted) << t.status();
    EXPECT_THAT(std::string(t.status().message()), HasSubstr("open handles"));
  }
}

// --- The real thing: OpenSSH's sftp client and sftp-server, with a tee between them. ---

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(SftpTracker, MatchesARealSftpSession) {
  const char* kServer = "/usr/lib/openssh/sftp-server";
  if (access("/usr/bin/sftp", X_OK) != 0 || access(kServer, X_OK) != 0) {
    GTEST_SKIP() << "needs /usr/bin/sftp and " << kServer;
  }
  char tmpl[] = "/tmp/sftp_tracker_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::filesystem::path dir = tmpl;
  struct Cleanup {
    std::filesystem::path d;
    ~Cleanup() { std::filesystem::remove_all(d); }
  } cleanup{dir};
  const std::string d = dir.string();
  std::filesystem::create_directory(dir / "remote");
  constexpr size_t kSize = 70001;  // not a multiple of sftp's 32 KiB requests
  {
    std::string content(kSize, '\0');
    for (size_t i = 0; i < kSize; ++i) content[i] = static_cast<char>(i * 131 + 7);
    std::ofstream(dir / "a.bin", std::ios::binary) << content;
    std::ofstream tee(dir / "tee.sh");
    tee << "#!/bin/sh\ntee '" << d << "/c2s' | " << kServer << " | tee '" << d << "/s2c'\n";
    std::ofstream batch(dir / "batch");
    batch << "put " << d << "/a.bin " << d << "/remote/a.bin\n"
          << "get " << d << "/remote/a.bin " << d << "/b.bin\n"
          << "rename " << d << "/remote/a.bin " << d << "/remote/c.bin\n"
          << "mkdir " << d << "/remote/d\n"
          << "rmdir " << d << "/remote/d\n"
          << "chmod 600 " << d << "/remote/c.bin\n"
          << "symlink " << d << "/remote/c.bin " << d << "/remote/s\n"
          << "ln " << d << "/remote/c.bin " << d << "/remote/h\n"
          << "ls " << d << "/remote\n"
          << "rm " << d << "/remote/s\n"
          << "rm " << d << "/remote/h\n"
          << "rm " << d << "/remote/c.bin\n"
          << "-rm " << d << "/remote/missing\n";
  }
  std::filesystem::permissions(dir / "tee.sh", std::filesystem::perms::owner_all);
  const std::string cmd = absl::StrCat("sftp -q -b '", d, "/batch' -D '", d, "/tee.sh' > '", d,
                                       "/out' 2>&1 < /dev/null");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << ReadAll(dir / "out");
  ASSERT_EQ(ReadAll(dir / "b.bin"), ReadAll(dir / "a.bin"));

  const Session session = testing::Alternate(ReadAll(dir / "c2s"), ReadAll(dir / "s2c"));
  WriteSeed("openssh put get rename rm", session);
  SftpTracker t;
  const std::vector<FileOp> ops = RunWhole(session, t);
  ASSERT_TRUE(t.status().ok()) << t.status();
  const std::vector<FileOp> want = {
      OpenOp(d + "/remote/a.bin", {"write", "create", "truncate"}, 0, kSize, "ok"),
      OpenOp(d + "/remote/a.bin", {"read"}, kSize, 0, "ok"),
      Op("rename", d + "/remote/a.bin", "ok", d + "/remote/c.bin"),
      Op("mkdir", d + "/remote/d", "ok"),
      Op("rmdir", d + "/remote/d", "ok"),
      Op("setstat", d + "/remote/c.bin", "ok"),
      Op("symlink", d + "/remote/c.bin", "ok", d + "/remote/s"),
      Op("link", d + "/remote/c.bin", "ok", d + "/remote/h"),
      Op("opendir", d + "/remote/", "ok"),  // sftp lists "dir/"
      Op("remove", d + "/remote/s", "ok"),
      Op("remove", d + "/remote/h", "ok"),
      Op("remove", d + "/remote/c.bin", "ok"),
      Op("remove", d + "/remote/missing", "no_such_file: No such file"),
  };
  EXPECT_EQ(ops, want);
  EXPECT_GT(t.metadata_requests(), 0u);
  EXPECT_EQ(testing::Run(session, testing::Bytes), testing::Run(session, testing::Whole));
}

}  // namespace
}  // namespace interlock::codec::sftp
