// The SCRAM-SHA-256 and MD5 clients against a real PostgreSQL 15 server on loopback.
//
// Each test starts a throwaway cluster (initdb -A scram-sha-256) in a temp dir, run as
// the unprivileged `postgres` user (initdb refuses root), listening on 127.0.0.1 on a free
// port and on a Unix socket in the temp dir only. Roles are created with psql; the login
// under test is done by hand over a blocking TCP socket with minimal protocol framing
// (PostgreSQL docs 55.7 "Message Formats"), so only userspace/auth computes the answers.
//
// Privileged: without root or without the server binaries the tests FAIL (never skip).
// The server is stopped by pid and the temp dir removed also when a test fails; the server
// also gets PR_SET_PDEATHSIG, so it dies with the test process if that crashes.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/privileged.h"
#include "userspace/auth/md5.h"
#include "userspace/auth/scram.h"
#include "userspace/common/unique_fd.h"

namespace interlock::auth {
namespace {

namespace t = ::interlock::testing;

constexpr char kPgBin[] = "/usr/lib/postgresql/15/bin";
constexpr char kSuperPassword[] = "super-Pw-4-initdb";
constexpr size_t kMaxTestMessageBytes = 1 << 20;

// ---- the throwaway server --------------------------------------------------------------

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class PgServer {
 public:
  PgServer() = default;
  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;
  ~PgServer() { Stop(); }

  // initdb + start + wait until it accepts connections. The error carries the logs.
  absl::Status Start() {
    struct passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) return absl::FailedPreconditionError("no `postgres` user");
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
    dir_ = t::MakeTempDir("interlock-auth-pg.");
    if (dir_.empty()) return absl::InternalError("mkdtemp failed");
    if (::chown(dir_.c_str(), uid_, gid_) != 0) return absl::InternalError("chown temp dir");

    const std::string pwfile = dir_ + "/pwfile";
    {
      std::ofstream out(pwfile);
      out << kSuperPassword << "\n";
    }
    ::chmod(pwfile.c_str(), 0600);
    if (::chown(pwfile.c_str(), uid_, gid_) != 0) return absl::InternalError("chown pwfile");

    // initdb, as postgres.
    const std::string initdb_log = dir_ + "/initdb.log";
    pid_t initdb = SpawnAsPostgres(
        {absl::StrCat(kPgBin, "/initdb"), "-D", data_dir(), "-U", "postgres", "--pwfile=" + pwfile,
         "-A", "scram-sha-256", "-E", "UTF8", "--no-locale", "-N"},
        initdb_log);
    if (initdb < 0) return absl::InternalError("fork initdb");
    int rc = t::WaitProcess(initdb, 120);
    if (rc == -1) t::KillProcess(initdb);
    if (rc != 0) {
      return absl::InternalError(absl::StrCat("initdb exited ", rc, ":\n", ReadText(initdb_log)));
    }

    // Authentication rules under test: SCRAM everywhere except md5_user (md5).
    {
      std::ofstream hba(data_dir() + "/pg_hba.conf", std::ios::trunc);
      hba << "local all all scram-sha-256\n"
          << "host all md5_user 127.0.0.1/32 md5\n"
          << "host all all 127.0.0.1/32 scram-sha-256\n";
    }

    port_ = t::FreePort();
    log_ = dir_ + "/postgres.log";
    pid_ = SpawnAsPostgres(
        {absl::StrCat(kPgBin, "/postgres"), "-D", data_dir(), "-p", std::to_string(port_), "-c",
         "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir_, "-c", "fsync=off",
         "-c", "max_connections=10", "-c", "log_connections=on"},
        log_);
    if (pid_ < 0) return absl::InternalError("fork postgres");

    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return absl::InternalError(absl::StrCat("postgres exited at start-up:\n", ReadText(log_)));
      }
      t::CommandResult r = t::RunCommand({absl::StrCat(kPgBin, "/pg_isready"), "-h", "127.0.0.1",
                                          "-p", std::to_string(port_), "-t", "1"},
                                         10);
      if (r.exit_code == 0) return absl::OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return absl::DeadlineExceededError(
        absl::StrCat("postgres not ready after 60 s:\n", ReadText(log_)));
  }

  // Runs SQL as the superuser through psql (libpq's own SCRAM client: an independent
  // check that the cluster is set up as intended).
  absl::Status Psql(const std::vector<std::string>& statements) {
    std::vector<std::string> argv = {
        absl::StrCat(kPgBin, "/psql"),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        absl::StrCat("host=127.0.0.1 port=", port_, " user=postgres dbname=postgres password=",
                     kSuperPassword, " client_encoding=UTF8 sslmode=disable")};
    for (const std::string& s : statements) {
      argv.push_back("-c");
      argv.push_back(s);
    }
    t::CommandResult r = t::RunCommand(argv, 60);
    if (r.exit_code != 0) {
      return absl::InternalError(absl::StrCat("psql exited ", r.exit_code, ": ", r.err));
    }
    return absl::OkStatus();
  }

  uint16_t port() const { return port_; }
  std::string log() const { return log_.empty() ? "" : ReadText(log_); }

 private:
  std::string data_dir() const { return dir_ + "/data"; }

  // fork + setgid/setuid(postgres) + exec, stdout/stderr to `log_path`.
  pid_t SpawnAsPostgres(std::vector<std::string> args, const std::string& log_path) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return -1;
    const pid_t parent = ::getpid();
    const std::string dir = dir_;
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      int null_fd = ::open("/dev/null", O_RDONLY);
      if (null_fd >= 0) ::dup2(null_fd, 0);
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid_) != 0 || ::setuid(uid_) != 0) {
        _exit(126);
      }
      // Set after setuid: a credential change clears it.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(125);
      if (::chdir(dir.c_str()) != 0) _exit(124);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    ::close(log_fd);
    return pid;
  }

  void Stop() {
    if (pid_ > 0) {
      // SIGINT: "fast shutdown" (ends sessions); SIGKILL if it takes too long.
      ::kill(pid_, SIGINT);
      if (t::WaitProcess(pid_, 20) == -1) t::KillProcess(pid_);
      pid_ = -1;
    }
    if (!dir_.empty()) t::RemoveTree(dir_);
    dir_.clear();
  }

  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::string dir_;
  std::string log_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// ---- minimal frontend framing (PostgreSQL docs 55.7) -----------------------------------

void PutInt32(std::string* out, uint32_t v) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)};
  out->append(b, 4);
}

uint32_t GetInt32(absl::string_view s, size_t off) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(s[off + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

std::string Message(char type, absl::string_view body) {
  std::string out(1, type);
  PutInt32(&out, static_cast<uint32_t>(body.size() + 4));
  out.append(body.data(), body.size());
  return out;
}

struct BackendMessage {
  char type = 0;
  std::string body;
};

class Connection {
 public:
  static absl::StatusOr<Connection> Open(uint16_t port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return absl::InternalError("socket");
    timeval tv{15, 0};  // never hang the test on a silent server
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(errno)));
    }
    return Connection(std::move(fd));
  }

  absl::Status Send(absl::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno)));
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  // StartupMessage: int32 length, int32 196608 (protocol 3.0), name/value pairs, NUL.
  absl::Status SendStartup(absl::string_view user) {
    std::string body;
    PutInt32(&body, 196608);
    for (absl::string_view s : {absl::string_view("user"), user, absl::string_view("database"),
                                absl::string_view("postgres")}) {
      body.append(s.data(), s.size());
      body.push_back('\0');
    }
    body.push_back('\0');
    std::string msg;
    PutInt32(&msg, static_cast<uint32_t>(body.size() + 4));
    return Send(msg + body);
  }

  absl::StatusOr<BackendMessage> Read() {
    std::string header;
    if (absl::Status st = ReadExactly(5, &header); !st.ok()) return st;
    uint32_t len = GetInt32(header, 1);
    if (len < 4 || len > kMaxTestMessageBytes) {
      return absl::DataLossError(absl::StrCat("message length ", len));
    }
    BackendMessage m;
    m.type = header[0];
    if (absl::Status st = ReadExactly(len - 4, &m.body); !st.ok()) return st;
    return m;
  }

 private:
  explicit Connection(UniqueFd fd) : fd_(std::move(fd)) {}

  absl::Status ReadExactly(size_t n, std::string* out) {
    out->resize(n);
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::recv(fd_.get(), out->data() + got, n - got, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) return absl::UnavailableError("server closed the connection");
      if (r < 0) return absl::UnavailableError(absl::StrCat("recv: ", std::strerror(errno)));
      got += static_cast<size_t>(r);
    }
    return absl::OkStatus();
  }

  UniqueFd fd_;
};

// What a login attempt ended with.
struct LoginResult {
  bool authenticated = false;    // AuthenticationOk, then ReadyForQuery
  bool server_verified = false;  // SCRAM: the server's signature checked out
  std::string sqlstate;          // from an ErrorResponse
  std::string message;
};

// ErrorResponse: (byte field type, cstring value)*, NUL.
LoginResult FromError(const std::string& body) {
  LoginResult r;
  size_t i = 0;
  while (i < body.size() && body[i] != '\0') {
    char field = body[i++];
    size_t end = body.find('\0', i);
    if (end == std::string::npos) break;
    std::string value = body.substr(i, end - i);
    if (field == 'C') r.sqlstate = value;
    if (field == 'M') r.message = value;
    i = end + 1;
  }
  return r;
}

// After AuthenticationOk: ParameterStatus/BackendKeyData until ReadyForQuery.
absl::StatusOr<LoginResult> FinishLogin(Connection& conn, LoginResult r) {
  for (;;) {
    absl::StatusOr<BackendMessage> m = conn.Read();
    if (!m.ok()) return m.status();
    if (m->type == 'E') return FromError(m->body);
    if (m->type == 'Z') break;
  }
  r.authenticated = true;
  (void)conn.Send(Message('X', ""));  // Terminate
  return r;
}

absl::StatusOr<uint32_t> AuthCode(const BackendMessage& m) {
  if (m.type != 'R' || m.body.size() < 4) {
    return absl::DataLossError(absl::StrCat("want Authentication*, got '", std::string(1, m.type),
                                            "' (", m.body.size(), " bytes)"));
  }
  return GetInt32(m.body, 0);
}

absl::StatusOr<LoginResult> ScramLogin(uint16_t port, absl::string_view user,
                                       absl::string_view password) {
  absl::StatusOr<Connection> conn = Connection::Open(port);
  if (!conn.ok()) return conn.status();
  if (absl::Status st = conn->SendStartup(user); !st.ok()) return st;

  // AuthenticationSASL (10): list of mechanism names, each NUL-terminated, then NUL.
  absl::StatusOr<BackendMessage> m = conn->Read();
  if (!m.ok()) return m.status();
  if (m->type == 'E') return FromError(m->body);
  absl::StatusOr<uint32_t> code = AuthCode(*m);
  if (!code.ok()) return code.status();
  if (*code != 10) return absl::DataLossError(absl::StrCat("want AuthenticationSASL, got ", *code));
  std::vector<std::string> mechanisms;
  for (size_t i = 4; i < m->body.size() && m->body[i] != '\0';) {
    size_t end = m->body.find('\0', i);
    if (end == std::string::npos) return absl::DataLossError("unterminated mechanism");
    mechanisms.push_back(m->body.substr(i, end - i));
    i = end + 1;
  }
  absl::StatusOr<ChannelBinding> cb = SelectMechanism(mechanisms, std::nullopt);
  if (!cb.ok()) return cb.status();
  absl::StatusOr<std::string> nonce = RandomNonce();
  if (!nonce.ok()) return nonce.status();
  absl::StatusOr<ScramClient> scram = ScramClient::Create(password, *cb, *nonce);
  if (!scram.ok()) return scram.status();

  // SASLInitialResponse: mechanism NUL, int32 length, client-first-message.
  std::string first = scram->ClientFirstMessage();
  std::string body(scram->mechanism());
  body.push_back('\0');
  PutInt32(&body, static_cast<uint32_t>(first.size()));
  body += first;
  if (absl::Status st = conn->Send(Message('p', body)); !st.ok()) return st;

  // AuthenticationSASLContinue (11): server-first-message.
  m = conn->Read();
  if (!m.ok()) return m.status();
  if (m->type == 'E') return FromError(m->body);
  code = AuthCode(*m);
  if (!code.ok()) return code.status();
  if (*code != 11) return absl::DataLossError(absl::StrCat("want SASLContinue, got ", *code));
  absl::StatusOr<std::string> final = scram->HandleServerFirst(m->body.substr(4));
  if (!final.ok()) return final.status();

  // SASLResponse: client-final-message.
  if (absl::Status st = conn->Send(Message('p', *final)); !st.ok()) return st;

  // AuthenticationSASLFinal (12): server-final-message; or ErrorResponse (wrong password).
  m = conn->Read();
  if (!m.ok()) return m.status();
  if (m->type == 'E') return FromError(m->body);
  code = AuthCode(*m);
  if (!code.ok()) return code.status();
  if (*code != 12) return absl::DataLossError(absl::StrCat("want SASLFinal, got ", *code));
  if (absl::Status st = scram->HandleServerFinal(m->body.substr(4)); !st.ok()) return st;
  LoginResult result;
  result.server_verified = true;

  // AuthenticationOk (0).
  m = conn->Read();
  if (!m.ok()) return m.status();
  if (m->type == 'E') return FromError(m->body);
  code = AuthCode(*m);
  if (!code.ok()) return code.status();
  if (*code != 0) return absl::DataLossError(absl::StrCat("want AuthenticationOk, got ", *code));
  return FinishLogin(*conn, result);
}

absl::StatusOr<LoginResult> Md5Login(uint16_t port, absl::string_view user,
                                     absl::string_view password) {
  absl::StatusOr<Connection> conn = Connection::Open(port);
  if (!conn.ok()) return conn.status();
  if (absl::Status st = conn->SendStartup(user); !st.ok()) return st;

  // AuthenticationMD5Password (5): 4 salt bytes.
  absl::StatusOr<BackendMessage> m = conn->Read();
  if (!m.ok()) return m.status();
  if (m->type == 'E') return FromError(m->body);
  absl::StatusOr<uint32_t> code = AuthCode(*m);
  if (!code.ok()) return code.status();
  if (*code != 5 || m->body.size() != 8) {
    return absl::DataLossError(absl::StrCat("want AuthenticationMD5Password, got ", *code));
  }
  Md5Salt salt;
  for (size_t i = 0; i < 4; ++i) salt[i] = static_cast<uint8_t>(m->body[4 + i]);

  // PasswordMessage: the response as a NUL-terminated string.
  absl::StatusOr<std::string> response = Md5PasswordResponse(user, password, salt);
  if (!response.ok()) return response.status();
  response->push_back('\0');
  if (absl::Status st = conn->Send(Message('p', *response)); !st.ok()) return st;

  m = conn->Read();
  if (!m.ok()) return m.status();
  if (m->type == 'E') return FromError(m->body);
  code = AuthCode(*m);
  if (!code.ok()) return code.status();
  if (*code != 0) return absl::DataLossError(absl::StrCat("want AuthenticationOk, got ", *code));
  return FinishLogin(*conn, LoginResult{});
}

// ---- tests -------------------------------------------------------------------------------

class PgAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    INTERLOCK_REQUIRE_ROOT();
    absl::Status st = server_.Start();
    ASSERT_TRUE(st.ok()) << "could not start PostgreSQL 15 (" << kPgBin
                         << "; this test must not be skipped): " << st;
  }

  // Expects a successful login; prints the server log otherwise.
  void ExpectLogin(const absl::StatusOr<LoginResult>& r, bool scram) {
    ASSERT_TRUE(r.ok()) << r.status() << "\n" << server_.log();
    EXPECT_TRUE(r->authenticated) << r->sqlstate << " " << r->message << "\n" << server_.log();
    if (scram) {
      EXPECT_TRUE(r->server_verified);
    }
  }

  // Expects ErrorResponse 28P01 (invalid_password).
  void ExpectWrongPassword(const absl::StatusOr<LoginResult>& r) {
    ASSERT_TRUE(r.ok()) << r.status() << "\n" << server_.log();
    EXPECT_FALSE(r->authenticated);
    EXPECT_EQ(r->sqlstate, "28P01") << r->message;
  }

  PgServer server_;
};

TEST_F(PgAuthTest, ScramSha256) {
  ASSERT_TRUE(server_.Psql({"CREATE ROLE scram_user LOGIN PASSWORD 'correct horse battery'"}).ok());
  ExpectLogin(ScramLogin(server_.port(), "scram_user", "correct horse battery"), true);
  ExpectWrongPassword(ScramLogin(server_.port(), "scram_user", "correct horse battery!"));
  // The superuser whose verifier initdb computed from --pwfile.
  ExpectLogin(ScramLogin(server_.port(), "postgres", kSuperPassword), true);
  ExpectWrongPassword(ScramLogin(server_.port(), "postgres", "super-pw-4-initdb"));
}

TEST_F(PgAuthTest, Md5) {
  absl::Status st = server_.Psql(
      {"SET password_encryption = 'md5'", "CREATE ROLE md5_user LOGIN PASSWORD 'md5 s3cret'"});
  ASSERT_TRUE(st.ok()) << st;
  ExpectLogin(Md5Login(server_.port(), "md5_user", "md5 s3cret"), false);
  ExpectWrongPassword(Md5Login(server_.port(), "md5_user", "md5 s3creT"));
}

// Non-ASCII passwords: the server SASLpreps the password given to CREATE ROLE before
// storing its verifier; the client must arrive at the same bytes.
TEST_F(PgAuthTest, SaslPrepMatchesServer) {
  // "pa<U+0308 combining diaeresis>ss<U+00AD soft hyphen>w<U+2168 roman nine>rd<U+3000>x"
  // -> mapping + NFKC -> "p<U+00E4>sswIXrd x".
  const std::string mapped_raw = "pa\u0308ss\u00ADw\u2168rd\u3000x";
  const std::string mapped_prepped = "p\u00E4sswIXrd x";
  // U+0340 is prohibited (C.8) before NFKC, allowed (U+0300) after: PostgreSQL checks
  // before, so it stores the raw bytes.
  const std::string prohibited_raw = "\u00E9\u0340abc";
  const std::string prohibited_nfkc = "\u00E9\u0300abc";
  // Hebrew alef, U+2122 TRADE MARK SIGN, alef: passes the bidi check before NFKC only,
  // so PostgreSQL stores the verifier of its NFKC form "<alef>TM<alef>".
  const std::string bidi_raw = "\u05D0\u2122\u05D0";
  const std::string bidi_prepped = "\u05D0TM\u05D0";
  // Alef, U+FB1D (R): its NFKC ends in U+05B4 (NSM, not R); checked before NFKC, it passes.
  const std::string bidi_last_raw = "\u05D0\uFB1D";
  const std::string bidi_last_prepped = "\u05D0\u05D9\u05B4";

  absl::Status st = server_.Psql({
      "CREATE ROLE mapped_user LOGIN PASSWORD '" + mapped_raw + "'",
      "CREATE ROLE prohibited_user LOGIN PASSWORD '" + prohibited_raw + "'",
      "CREATE ROLE bidi_user LOGIN PASSWORD '" + bidi_raw + "'",
      "CREATE ROLE bidi_last_user LOGIN PASSWORD '" + bidi_last_raw + "'",
  });
  ASSERT_TRUE(st.ok()) << st;

  ExpectLogin(ScramLogin(server_.port(), "mapped_user", mapped_raw), true);
  ExpectLogin(ScramLogin(server_.port(), "mapped_user", mapped_prepped), true);
  ExpectWrongPassword(ScramLogin(server_.port(), "mapped_user", "p\u00E4sswIXrdx"));

  ExpectLogin(ScramLogin(server_.port(), "prohibited_user", prohibited_raw), true);
  // An RFC-literal SASLprep (checks after NFKC, e.g. ICU's usprep) would hash this:
  ExpectWrongPassword(ScramLogin(server_.port(), "prohibited_user", prohibited_nfkc));

  ExpectLogin(ScramLogin(server_.port(), "bidi_user", bidi_raw), true);
  // The prepped form fails our bidi check (L inside R), so it is hashed raw: the same bytes.
  ExpectLogin(ScramLogin(server_.port(), "bidi_user", bidi_prepped), true);
  ExpectWrongPassword(ScramLogin(server_.port(), "bidi_user", "\u05D0T\u05D0"));

  ExpectLogin(ScramLogin(server_.port(), "bidi_last_user", bidi_last_raw), true);
  ExpectLogin(ScramLogin(server_.port(), "bidi_last_user", bidi_last_prepped), true);
}

}  // namespace
}  // namespace interlock::auth
