// The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it
// (PostgreSQL docs 55.3.1 "SCRAM-SHA-256 Authentication"): interlockd logs in upstream
// with a password the agent never sees. Pure: bytes in, bytes out; no sockets. The SASL
// framing (AuthenticationSASL / SASLInitialResponse / SASLResponse ...) is the PostgreSQL
// codec's job; this class only builds and checks the SCRAM payloads.
//
//   // AuthenticationSASL listed `offered`; `tls_hash` is nullopt on a plain TCP upstream,
//   // else TlsServerEndPointHash(server certificate).
//   INTERLOCK_ASSIGN_OR_RETURN(ChannelBinding cb, SelectMechanism(offered, tls_hash));
//   INTERLOCK_ASSIGN_OR_RETURN(std::string nonce, RandomNonce());
//   INTERLOCK_ASSIGN_OR_RETURN(ScramClient scram,
//                              ScramClient::Create(password.reveal(), cb, nonce));
//   Send(SASLInitialResponse(scram.mechanism(), scram.ClientFirstMessage()));
//   INTERLOCK_ASSIGN_OR_RETURN(std::string final, scram.HandleServerFirst(continue_data));
//   Send(SASLResponse(final));
//   INTERLOCK_RETURN_IF_ERROR(scram.HandleServerFinal(final_data));  // server proved itself
//
// Like libpq, the client-first message carries an empty user name ("n=,"): PostgreSQL
// takes the user from the startup packet. The password goes through PgSaslPrep
// (saslprep.h) first. Keys derived from the password are wiped as soon as they are used.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/auth/saslprep.h"
#include "userspace/auth/secret.h"

namespace interlock::auth {

inline constexpr absl::string_view kScramSha256 = "SCRAM-SHA-256";
inline constexpr absl::string_view kScramSha256Plus = "SCRAM-SHA-256-PLUS";

// Bounds on what a server may send. PostgreSQL's messages are ~100 bytes; its default
// iteration count is 4096 (scram_iterations). The iteration bound caps the CPU a hostile
// server can make us burn in PBKDF2 (10M iterations is a few seconds).
inline constexpr size_t kMaxScramMessageBytes = 4096;
inline constexpr uint32_t kMinScramIterations = 1;
inline constexpr uint32_t kMaxScramIterations = 10'000'000;
// Client nonces: printable ASCII except ','; RandomNonce() makes 32 characters.
inline constexpr size_t kMaxClientNonceBytes = 256;

// libpq's channel_binding connection option.
enum class ChannelBindingPolicy {
  kDisable,  // never bind; plain SCRAM-SHA-256, gs2 flag 'n'
  kPrefer,   // bind when the server offers SCRAM-SHA-256-PLUS over TLS (libpq's default)
  kRequire,  // fail unless SCRAM-SHA-256-PLUS can be used
};

// The negotiated mechanism and its GS2 channel-binding header (RFC 5802 section 7).
class ChannelBinding {
 public:
  // "n,,": the client does not support binding (plain TCP upstream, or disabled).
  static ChannelBinding None();
  // "y,,": the client supports binding but the server did not offer -PLUS. The server
  // rejects this if it did offer -PLUS, which defeats a stripped mechanism list.
  static ChannelBinding NotOfferedByServer();
  // "p=tls-server-end-point,,": SCRAM-SHA-256-PLUS, binding to `cert_hash`, the
  // TlsServerEndPointHash of the server's certificate.
  static ChannelBinding TlsServerEndPoint(std::string cert_hash);

  // kScramSha256Plus for TlsServerEndPoint, else kScramSha256.
  absl::string_view mechanism() const;
  // "n,,", "y,," or "p=tls-server-end-point,,".
  absl::string_view gs2_header() const;
  // The channel binding data sent (base64, after the header) in c=; empty unless 'p'.
  absl::string_view data() const { return data_; }

 private:
  enum class Flag { kN, kY, kP };
  ChannelBinding(Flag flag, std::string data) : flag_(flag), data_(std::move(data)) {}
  Flag flag_;
  std::string data_;
};

// Picks the mechanism from the server's AuthenticationSASL list, as libpq's pg_SASL_init
// does. `tls_server_end_point` is nullopt on a non-TLS upstream, else the server
// certificate's TlsServerEndPointHash. Errors:
//   INVALID_ARGUMENT     `tls_server_end_point` holds an empty hash
//   FAILED_PRECONDITION  -PLUS offered over a non-TLS connection (TLS stripped on the
//                        way?); binding required (kRequire) but not possible
//   UNIMPLEMENTED        neither SCRAM-SHA-256 nor usable SCRAM-SHA-256-PLUS offered
absl::StatusOr<ChannelBinding> SelectMechanism(
    const std::vector<std::string>& offered, std::optional<std::string> tls_server_end_point,
    ChannelBindingPolicy policy = ChannelBindingPolicy::kPrefer);

// One SCRAM-SHA-256 exchange. Movable, not copyable; single use: after an error every
// further call fails.
class ScramClient {
 public:
  // `client_nonce` is injected (RandomNonce() in production; fixed in tests). `username`
  // only exists for RFC test vectors: PostgreSQL ignores it and libpq sends "".
  // INVALID_ARGUMENT when the nonce is empty, longer than kMaxClientNonceBytes, or has a
  // byte outside 0x21..0x7E or a ','; or the user name contains NUL.
  static absl::StatusOr<ScramClient> Create(absl::string_view password, ChannelBinding cb,
                                            std::string client_nonce,
                                            absl::string_view username = "");
  ~ScramClient();
  ScramClient(ScramClient&&) = default;
  ScramClient& operator=(ScramClient&&) = default;
  ScramClient(const ScramClient&) = delete;
  ScramClient& operator=(const ScramClient&) = delete;

  // The SASL mechanism name for SASLInitialResponse.
  absl::string_view mechanism() const { return cb_.mechanism(); }
  // What SASLprep did to the password (for diagnostics; never the password).
  SaslPrepOutcome saslprep_outcome() const { return saslprep_outcome_; }

  // client-first-message: gs2 header + "n=<user>,r=<client nonce>".
  std::string ClientFirstMessage() const;

  // Consumes server-first-message ("r=<nonce>,s=<salt>,i=<iterations>"), derives the
  // keys and returns client-final-message ("c=...,r=...,p=<proof>"). INVALID_ARGUMENT
  // when it is malformed (oversized, non-printable, attributes missing, out of order or
  // extra, mandatory extension m=, bad base64 or empty salt, iteration count outside
  // [kMinScramIterations, kMaxScramIterations]) or its nonce does not strictly extend
  // ours; FAILED_PRECONDITION when called out of order.
  absl::StatusOr<std::string> HandleServerFirst(absl::string_view server_first);

  // Consumes server-final-message. OK only when "v=<signature>" matches the signature
  // expected from the server (compared in constant time): the server knows the verifier.
  // PERMISSION_DENIED for "e=<error>" (the server's error is quoted, sanitized);
  // UNAUTHENTICATED for a wrong signature; INVALID_ARGUMENT when malformed;
  // FAILED_PRECONDITION when called out of order.
  absl::Status HandleServerFinal(absl::string_view server_final);

 private:
  enum class State { kStart, kWaitServerFinal, kDone, kFailed };
  ScramClient(Secret password, SaslPrepOutcome outcome, ChannelBinding cb, std::string client_nonce,
              std::string username);

  Secret password_;  // SASLprep'ed; wiped once the keys are derived
  SaslPrepOutcome saslprep_outcome_;
  ChannelBinding cb_;
  std::string client_nonce_;
  std::string client_first_bare_;
  std::array<uint8_t, 32> server_signature_{};  // expected; wiped on destruction
  State state_ = State::kStart;
};

// 24 random bytes (RAND_bytes), base64: 32 printable characters. INTERNAL if the CSPRNG
// fails.
absl::StatusOr<std::string> RandomNonce();

// tls-server-end-point channel binding data (RFC 5929 section 4.1): the hash of the DER
// certificate `der_cert` with the hash function of its signature algorithm
// `signature_nid` (X509_get_signature_nid), MD5 and SHA-1 replaced by SHA-256.
// INVALID_ARGUMENT when the algorithm has no single hash (Ed25519, RSA-PSS): the binding
// is then undefined, and PostgreSQL 15's server cannot compute it either.
absl::StatusOr<std::string> TlsServerEndPointHash(absl::string_view der_cert, int signature_nid);

}  // namespace interlock::auth
