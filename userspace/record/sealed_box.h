// Sealed originals: encryption of the original upstream bytes that masking replaced, to an
// auditor's X25519 public key, so that the recording keeps them but only the auditor can read
// them (record.proto SealedData; `interlock replay --unseal KEYFILE`).
//
// Per session, a SealingStream makes an ephemeral X25519 key pair and derives one AES-256-GCM
// key:
//   shared = X25519(ephemeral private, auditor public)
//   key    = HKDF-SHA256(ikm = shared, salt = ephemeral public || auditor public,
//                        info = "interlock sealed originals v1")
// and forgets the ephemeral private key. Every Seal uses the nonce
//   4 zero bytes || u64 big-endian counter   (counter 0, 1, 2, ...; never reused)
// and returns ciphertext || 16-byte tag. The auditor's UnsealingStream derives the same key
// from its private key and the ephemeral public key stored in SessionOpen.
//
//   // interlockd, once at start and then per session:
//   INTERLOCK_ASSIGN_OR_RETURN(std::string auditor_pub, LoadAuditorPublicKey(path));
//   INTERLOCK_ASSIGN_OR_RETURN(std::unique_ptr<SealingStream> s,
//                              SealingStream::Create(auditor_pub));
//   open.set_sealed_originals_key(s->ephemeral_public_key());
//   INTERLOCK_ASSIGN_OR_RETURN(SealingStream::Sealed box, s->Seal(original, aad));
//
//   // the auditor:
//   INTERLOCK_ASSIGN_OR_RETURN(AuditorPrivateKey key, LoadAuditorPrivateKey("auditor.key"));
//   INTERLOCK_ASSIGN_OR_RETURN(std::unique_ptr<UnsealingStream> u,
//                              UnsealingStream::Create(key, open.sealed_originals_key()));
//   INTERLOCK_ASSIGN_OR_RETURN(std::string original, u->Open(box.counter, box.ciphertext, aad));
//
// Key files: the public key is SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"), the private key
// PKCS#8 PEM ("BEGIN PRIVATE KEY"), as `openssl genpkey -algorithm X25519` and
// `interlock auditor-keygen` write them. Pure crypto: no I/O besides reading key files.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "userspace/record/signing_key.h"

namespace interlock::record {

// Raw X25519 public and private key size.
inline constexpr size_t kX25519KeyBytes = 32;
// AES-256-GCM tag appended to every sealed box.
inline constexpr size_t kSealTagBytes = 16;
// HKDF info: binds the derived key to this use and version.
inline constexpr absl::string_view kSealedOriginalsInfo = "interlock sealed originals v1";

// The raw 32-byte X25519 public key of a SubjectPublicKeyInfo PEM. INVALID_ARGUMENT when it
// does not parse or is not X25519.
absl::StatusOr<std::string> AuditorPublicKeyFromPem(absl::string_view pem);
// Reads such a PEM file (no symlinks, regular file, at most 16 KiB); errors name the path.
absl::StatusOr<std::string> LoadAuditorPublicKey(const std::string& path);
// Hex SHA-256 of the raw 32-byte public key (SessionOpen.auditor_key_fingerprint).
std::string AuditorKeyFingerprint(absl::string_view raw_public_key);

// The auditor's X25519 key pair. Movable, not copyable.
class AuditorPrivateKey {
 public:
  // A fresh key pair (interlock auditor-keygen, tests). Aborts only if the RNG fails.
  static AuditorPrivateKey Generate();
  // PKCS#8 PEM. INVALID_ARGUMENT when it does not parse or is not an X25519 private key.
  static absl::StatusOr<AuditorPrivateKey> FromPem(absl::string_view pem);

  AuditorPrivateKey(AuditorPrivateKey&&) = default;
  AuditorPrivateKey& operator=(AuditorPrivateKey&&) = default;

  // The raw 32-byte public key.
  const std::string& public_key() const { return public_; }
  std::string Fingerprint() const { return AuditorKeyFingerprint(public_); }
  // PKCS#8 PEM of the private key. The caller should wipe it when done.
  std::string PrivatePem() const;
  // SubjectPublicKeyInfo PEM of the public key.
  std::string PublicPem() const;

 private:
  friend class UnsealingStream;
  AuditorPrivateKey(EvpPkeyPtr pkey, std::string raw_public);
  EvpPkeyPtr pkey_;
  std::string public_;
};

// Reads a PKCS#8 PEM file. PERMISSION_DENIED (naming the path) when group or other have any
// access to it; FAILED_PRECONDITION when not a regular file; INVALID_ARGUMENT when it is not an
// X25519 private key; errno codes for I/O.
absl::StatusOr<AuditorPrivateKey> LoadAuditorPrivateKey(const std::string& path);

// The AAD of a SealedData record: session_id || u64 big-endian seq (the record's own seq).
// session_id needs no length prefix: the tail is fixed-size.
std::string SealedDataAad(absl::string_view session_id, uint64_t seq);

// One session's sealing side. Not thread-safe; not copyable or movable (hold it by
// unique_ptr). The AES key is wiped when it is destroyed.
class SealingStream {
 public:
  struct Sealed {
    // The nonce counter used: store it next to the ciphertext (SealedData.counter).
    uint64_t counter = 0;
    // ciphertext || 16-byte tag; plaintext size + kSealTagBytes.
    std::string ciphertext;
  };

  // `auditor_public_key` is the raw 32-byte X25519 key. `first_counter` is the first nonce
  // counter (0; tests start near the end). INVALID_ARGUMENT for a bad key (wrong size, or a
  // low-order point whose shared secret would be zero); INTERNAL if OpenSSL fails.
  static absl::StatusOr<std::unique_ptr<SealingStream>> Create(
      absl::string_view auditor_public_key, uint64_t first_counter = 0);
  ~SealingStream();
  SealingStream(const SealingStream&) = delete;
  SealingStream& operator=(const SealingStream&) = delete;

  // Encrypts `plaintext` (which may be empty) authenticating `aad`, with the next counter.
  // RESOURCE_EXHAUSTED once counter 2^64-1 has been used; INVALID_ARGUMENT for a plaintext of
  // 2 GiB or more; INTERNAL if OpenSSL fails (the counter is consumed either way).
  absl::StatusOr<Sealed> Seal(absl::string_view plaintext, absl::string_view aad);

  // The raw 32-byte ephemeral public key (SessionOpen.sealed_originals_key).
  const std::string& ephemeral_public_key() const { return ephemeral_public_; }
  // Hex SHA-256 of the auditor public key (SessionOpen.auditor_key_fingerprint).
  const std::string& auditor_fingerprint() const { return auditor_fingerprint_; }
  // The counter the next Seal will use (meaningless once exhausted).
  uint64_t next_counter() const { return next_counter_; }

 private:
  SealingStream() = default;
  std::array<unsigned char, 32> key_{};
  std::string ephemeral_public_;
  std::string auditor_fingerprint_;
  uint64_t next_counter_ = 0;
  bool exhausted_ = false;
};

// The auditor's side for one session. Not copyable or movable; wipes its key when destroyed.
class UnsealingStream {
 public:
  // `ephemeral_public_key` is SessionOpen.sealed_originals_key. INVALID_ARGUMENT for a bad
  // key; INTERNAL if OpenSSL fails. A wrong auditor key is not detected here but by Open.
  static absl::StatusOr<std::unique_ptr<UnsealingStream>> Create(
      const AuditorPrivateKey& auditor_key, absl::string_view ephemeral_public_key);
  ~UnsealingStream();
  UnsealingStream(const UnsealingStream&) = delete;
  UnsealingStream& operator=(const UnsealingStream&) = delete;

  // The plaintext of a box made by Seal with this `counter` and `aad`. DATA_LOSS when it does
  // not authenticate: wrong auditor key, or the ciphertext, tag, counter or aad differ from
  // what was sealed. INTERNAL if OpenSSL fails.
  absl::StatusOr<std::string> Open(uint64_t counter, absl::string_view ciphertext_and_tag,
                                   absl::string_view aad) const;

 private:
  UnsealingStream() = default;
  std::array<unsigned char, 32> key_{};
};

}  // namespace interlock::record
