// UpstreamLogin: interlockd logging in to the real PostgreSQL server on the agent's
// behalf, with credentials the agent never sees (PostgreSQL docs 55.2.1 "Start-up",
// 55.3 "SASL Authentication"). Pure: it turns backend authentication messages into the
// bytes to answer with; the session does the I/O.
//
//   UpstreamLogin login({.user = "app", .database = "appdb"}, std::move(password), cb, nonce);
//   send(login.StartupMessage());
//   for each backend message m until Step.authenticated:
//     INTERLOCK_ASSIGN_OR_RETURN(auto step, login.OnMessage(m.type, m.body));
//     send(step.send);
//
// Methods: SCRAM-SHA-256 (SCRAM-SHA-256-PLUS with tls-server-end-point channel binding
// when TLS is on and the server offers it), md5, cleartext password, trust. GSS, SSPI and
// Kerberos are refused (UNIMPLEMENTED).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/auth/scram.h"
#include "userspace/auth/secret.h"

namespace interlock::proxy::pg {

struct UpstreamLoginOptions {
  std::string user;
  std::string database;
  // Other startup parameters forwarded from the agent (application_name, client_encoding,
  // DateStyle, options, ...). Never user, database or replication.
  std::vector<std::pair<std::string, std::string>> params;
  // Whether the server proved its identity: TLS with sslmode verify-ca or verify-full.
  bool upstream_verified = false;
  // The resource's allow_unverified_upstream: send the password to an unverified server.
  bool allow_unverified = false;
};

class UpstreamLogin {
 public:
  // `password`: nullopt when no credential is configured (the server must trust us).
  // `tls_cb_hash`: the tls-server-end-point hash of the server certificate when the
  // connection is TLS, empty otherwise. `client_nonce`: injected randomness for SCRAM.
  UpstreamLogin(UpstreamLoginOptions options, std::optional<auth::Secret> password,
                std::string tls_cb_hash, std::string client_nonce);
  ~UpstreamLogin();

  std::string StartupMessage() const;

  struct Step {
    std::string send;            // bytes for the server (may be empty)
    bool authenticated = false;  // AuthenticationOk arrived
  };
  // One backend message ('R' Authentication, 'E' ErrorResponse, 'v' NegotiateProtocolVersion,
  // 'N' NoticeResponse) before AuthenticationOk. Errors:
  //   PERMISSION_DENIED  the server refused the login (its SQLSTATE and message in the text),
  //                      or SCRAM verification of the server failed
  //   FAILED_PRECONDITION the server wants a password and none is configured, or offers
  //                      SCRAM-SHA-256-PLUS over a connection that is not TLS, or (message
  //                      "upstream_unverified: ...") wants the password while neither
  //                      upstream_verified nor allow_unverified is set — refused before
  //                      any byte derived from the password is produced (no cleartext,
  //                      no md5 hash, not even SCRAM's first message)
  //   UNIMPLEMENTED      GSS / SSPI / Kerberos
  //   INVALID_ARGUMENT   a malformed or unexpected message
  absl::StatusOr<Step> OnMessage(char type, absl::string_view body);

  // The method used: "trust", "password", "md5", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS".
  const std::string& method() const { return method_; }

 private:
  UpstreamLoginOptions options_;
  std::optional<auth::Secret> password_;
  std::string tls_cb_hash_;
  std::string client_nonce_;
  std::optional<auth::ScramClient> scram_;
  std::string method_ = "trust";
  bool scram_done_ = false;
};

}  // namespace interlock::proxy::pg
