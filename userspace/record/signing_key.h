// The recording key: interlockd's Ed25519 key pair that seals session recordings, and the
// public half that `interlock verify` checks seals against.
//
//   INTERLOCK_ASSIGN_OR_RETURN(RecordingKey key, RecordingKey::LoadOrCreate("/var/lib/interlock"));
//   INTERLOCK_ASSIGN_OR_RETURN(std::string sig, key.Sign(message));
//
//   INTERLOCK_ASSIGN_OR_RETURN(RecordingPublicKey pub,
//                              RecordingKey::LoadPublic("/var/lib/interlock/keys/recording.pub"));
//   bool ok = pub.Verify(message, sig);
//   std::string fp = pub.Fingerprint();   // hex SHA-256 of the raw 32-byte public key
//
// Files, under <state_dir>/keys/ (directory created 0700):
//   recording.key  PKCS#8 PEM private key, mode 0600; refused if group/other have any access.
//   recording.pub  SubjectPublicKeyInfo PEM public key, mode 0644; rewritten from the private
//                  key when missing or different.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::record {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;

// An Ed25519 public key. Movable, not copyable (use Clone()).
class RecordingPublicKey {
 public:
  // SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"). INVALID_ARGUMENT when it does not parse
  // or is not Ed25519.
  static absl::StatusOr<RecordingPublicKey> FromPem(absl::string_view pem);
  // The raw 32-byte public key. INVALID_ARGUMENT on a wrong size.
  static absl::StatusOr<RecordingPublicKey> FromRaw(absl::string_view raw);

  RecordingPublicKey(RecordingPublicKey&&) = default;
  RecordingPublicKey& operator=(RecordingPublicKey&&) = default;

  // True when `signature` is a valid Ed25519 signature of `message` under this key.
  bool Verify(absl::string_view message, absl::string_view signature) const;
  // Hex SHA-256 of the raw 32-byte public key (record.proto key_fingerprint).
  std::string Fingerprint() const { return fingerprint_; }
  // The raw 32-byte key.
  const std::string& raw() const { return raw_; }
  // SubjectPublicKeyInfo PEM.
  std::string ToPem() const;
  RecordingPublicKey Clone() const;

 private:
  RecordingPublicKey(EvpPkeyPtr pkey, std::string raw);
  EvpPkeyPtr pkey_;
  std::string raw_;
  std::string fingerprint_;
};

// An Ed25519 key pair. Movable, not copyable.
class RecordingKey {
 public:
  // Loads <state_dir>/keys/recording.key, or generates and writes it (and recording.pub) on
  // first use. Errors: PERMISSION_DENIED (naming the path) when the key file is accessible
  // by group/other; INVALID_ARGUMENT when it is not an Ed25519 PKCS#8 PEM key; FAILED_PRECONDITION
  // when it is not a regular file; errno-derived codes for I/O.
  static absl::StatusOr<RecordingKey> LoadOrCreate(const std::string& state_dir);
  // A fresh in-memory key (tests, tools). Aborts only if the RNG fails.
  static RecordingKey Generate();
  // PKCS#8 PEM ("BEGIN PRIVATE KEY"). INVALID_ARGUMENT when not an Ed25519 private key.
  static absl::StatusOr<RecordingKey> FromPem(absl::string_view pem);
  // Reads a SubjectPublicKeyInfo PEM file, e.g. <state_dir>/keys/recording.pub.
  static absl::StatusOr<RecordingPublicKey> LoadPublic(const std::string& path);

  RecordingKey(RecordingKey&&) = default;
  RecordingKey& operator=(RecordingKey&&) = default;

  // Ed25519 signature (64 bytes) of `message`. INTERNAL only if OpenSSL fails.
  absl::StatusOr<std::string> Sign(absl::string_view message) const;
  const RecordingPublicKey& public_key() const { return public_; }
  std::string Fingerprint() const { return public_.Fingerprint(); }
  // PKCS#8 PEM of the private key. The caller should wipe it when done.
  std::string ToPem() const;

 private:
  RecordingKey(EvpPkeyPtr pkey, RecordingPublicKey pub);
  EvpPkeyPtr pkey_;
  RecordingPublicKey public_;
};

}  // namespace interlock::record
