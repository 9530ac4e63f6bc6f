// PostgresServer: a real, throwaway PostgreSQL 15 server for integration tests —
// Debian's postgresql-15 binaries, initdb in a temp dir as the unprivileged `postgres`
// user, SCRAM authentication over TCP on a loopback address and port of the test's
// choosing, optional TLS. Stopped by pid and removed in the destructor, also when the
// test failed half-way.
//
//   PostgresServer pg({.address = "127.0.0.43"});
//   ASSERT_TRUE(pg.Start().ok()) << pg.Log();
//   ASSERT_TRUE(pg.Psql("CREATE ROLE app LOGIN PASSWORD 'secret'").ok());
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace interlock::testing {

struct PostgresOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: a free port
  // pg_hba method for TCP connections: scram-sha-256, md5, password or trust.
  std::string auth_method = "scram-sha-256";
  // password_encryption for roles created by Psql().
  std::string password_encryption = "scram-sha-256";
  // TLS: server certificate and key PEM files (copied and chowned for the server).
  std::string ssl_cert_file;
  std::string ssl_key_file;
  std::vector<std::string> extra_conf;  // lines appended to postgresql.conf
};

class PostgresServer {
 public:
  explicit PostgresServer(PostgresOptions options);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // initdb (once) and start; waits until the server accepts connections (30 s).
  absl::Status Start();
  // Fast shutdown (SIGINT) and wait.
  void Stop();

  // Runs SQL as the superuser over the server's unix socket; returns psql's stdout
  // (unaligned, tuples only). INTERNAL with psql's stderr on failure.
  absl::StatusOr<std::string> Psql(const std::string& sql, const std::string& database = "postgres");

  const std::string& address() const { return options_.address; }
  uint16_t port() const { return options_.port; }
  const std::string& socket_dir() const { return socket_dir_; }
  std::string Log() const;

 private:
  PostgresOptions options_;
  std::string dir_;         // temp root, owned by postgres
  std::string data_dir_;
  std::string socket_dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  bool initialized_ = false;
};

// Path of a PostgreSQL 15 server binary (initdb, postgres, pg_ctl).
std::string PgBin(const std::string& name);

}  // namespace interlock::testing
