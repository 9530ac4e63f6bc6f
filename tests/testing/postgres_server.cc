#include "tests/testing/postgres_server.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/testing/privileged.h"
#include "userspace/common/file_util.h"

namespace interlock::testing {

namespace {

struct PgUser {
  uid_t uid;
  gid_t gid;
};

PgUser LookupPostgres() {
  passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) return {0, 0};
  return {pw->pw_uid, pw->pw_gid};
}

// Runs argv as the postgres user; returns the exit code. Output to `log`.
pid_t SpawnAsPostgres(const std::vector<std::string>& argv_in, const std::string& log,
                      bool wait_for_exit, int* exit_code) {
  PgUser u = LookupPostgres();
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::setsid();
    if (::setgroups(0, nullptr) != 0 || ::setgid(u.gid) != 0 || ::setuid(u.uid) != 0) _exit(126);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  if (wait_for_exit) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return pid;
}

}  // namespace

std::string PgBin(const std::string& name) {
  return absl::StrCat("/usr/lib/postgresql/15/bin/", name);
}

PostgresServer::PostgresServer(PostgresOptions options) : options_(std::move(options)) {
  if (options_.port == 0) options_.port = FreePort(options_.address);
  dir_ = MakeTempDir("interlock-pg-");
  data_dir_ = absl::StrCat(dir_, "/data");
  socket_dir_ = absl::StrCat(dir_, "/sock");
  log_path_ = absl::StrCat(dir_, "/postgres.log");
}

PostgresServer::~PostgresServer() {
  Stop();
  RemoveTree(dir_);
}

absl::Status PostgresServer::Start() {
  PgUser u = LookupPostgres();
  if (u.uid == 0) return absl::FailedPreconditionError("no `postgres` user (install postgresql-15)");
  if (!initialized_) {
    ::chmod(dir_.c_str(), 0755);
    ::mkdir(socket_dir_.c_str(), 0755);
    if (::chown(dir_.c_str(), u.uid, u.gid) != 0 || ::chown(socket_dir_.c_str(), u.uid, u.gid) != 0) {
      return absl::InternalError("chown test dirs to postgres failed");
    }
    std::string pwfile = absl::StrCat(dir_, "/superuser.pw");
    std::ofstream(pwfile) << "superpass\n";
    ::chown(pwfile.c_str(), u.uid, u.gid);
    int rc = 0;
    SpawnAsPostgres({PgBin("initdb"), "-D", data_dir_, "-U", "postgres", "--pwfile", pwfile,
                     "-A", "trust", "--auth-host", options_.auth_method, "--no-sync", "-E", "UTF8",
                     "--locale", "C"},
                    log_path_, true, &rc);
    if (rc != 0) return absl::InternalError(absl::StrCat("initdb failed (", rc, "):\n", Log()));
    std::vector<std::string> conf = {
        absl::StrCat("listen_addresses = '", options_.address, "'"),
        absl::StrCat("port = ", options_.port),
        absl::StrCat("unix_socket_directories = '", socket_dir_, "'"),
        absl::StrCat("password_encryption = '", options_.password_encryption, "'"),
        "fsync = off", "synchronous_commit = off", "full_page_writes = off",
        "max_connections = 300", "shared_buffers = 64MB"};
    if (!options_.ssl_cert_file.empty()) {
      std::string cert = absl::StrCat(dir_, "/server.crt");
      std::string key = absl::StrCat(dir_, "/server.key");
      auto c = ReadFile(options_.ssl_cert_file);
      auto k = ReadFile(options_.ssl_key_file);
      if (!c.ok() || !k.ok()) return absl::InvalidArgumentError("cannot read TLS cert/key");
      std::ofstream(cert) << *c;
      std::ofstream(key) << *k;
      ::chmod(key.c_str(), 0600);
      ::chown(cert.c_str(), u.uid, u.gid);
      ::chown(key.c_str(), u.uid, u.gid);
      conf.push_back("ssl = on");
      conf.push_back(absl::StrCat("ssl_cert_file = '", cert, "'"));
      conf.push_back(absl::StrCat("ssl_key_file = '", key, "'"));
    }
    for (const auto& l : options_.extra_conf) conf.push_back(l);
    std::ofstream(absl::StrCat(data_dir_, "/postgresql.conf"), std::ios::app)
        << absl::StrJoin(conf, "\n") << "\n";
    // TCP clients must authenticate (the agent's side of Interlock never holds the
    // password); the unix socket stays trust for the test's own setup SQL.
    std::ofstream(absl::StrCat(data_dir_, "/pg_hba.conf"))
        << "local all all trust\n"
        << "host all all 127.0.0.0/8 " << options_.auth_method << "\n"
        << "host all all ::1/128 " << options_.auth_method << "\n";
    initialized_ = true;
  }
  int unused = 0;
  pid_ = SpawnAsPostgres({PgBin("postgres"), "-D", data_dir_}, log_path_, false, &unused);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("postgres exited during start-up:\n", Log()));
    }
    CommandResult r = RunCommand({"/usr/bin/psql", "-h", socket_dir_, "-p",
                                  absl::StrCat(options_.port), "-U", "postgres", "-d",
                                  "postgres", "-Atqc", "SELECT 1"},
                                 10);
    if (r.exit_code == 0) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("postgres did not come up:\n", Log()));
}

void PostgresServer::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGINT);  // fast shutdown
  if (WaitProcess(pid_, 30) < 0) KillProcess(pid_);
  pid_ = -1;
}

absl::StatusOr<std::string> PostgresServer::Psql(const std::string& sql, const std::string& database) {
  CommandResult r = RunCommand({"/usr/bin/psql", "-h", socket_dir_, "-p", absl::StrCat(options_.port),
                                "-U", "postgres", "-d", database, "-v", "ON_ERROR_STOP=1", "-Atqc",
                                sql},
                               120);
  if (r.exit_code != 0) return absl::InternalError(absl::StrCat("psql: ", r.err));
  return r.out;
}

std::string PostgresServer::Log() const {
  auto text = ReadFile(log_path_);
  return text.ok() ? *text : "(no postgres log)";
}

}  // namespace interlock::testing
