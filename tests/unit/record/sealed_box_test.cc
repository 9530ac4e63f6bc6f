#include "userspace/record/sealed_box.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/record/record_test_util.h"
#include "userspace/common/file_util.h"
#include "userspace/record/format.h"
#include "userspace/record/signing_key.h"

namespace interlock::record {
namespace {

using test::TempDir;
using ::testing::HasSubstr;

const std::string kAad = SealedDataAad("sess-0001", 7);

struct Pair {
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  std::unique_ptr<SealingStream> sealer;
  std::unique_ptr<UnsealingStream> unsealer;
  Pair() {
    auto s = SealingStream::Create(auditor.public_key());
    EXPECT_TRUE(s.ok()) << s.status();
    sealer = *std::move(s);
    auto u = UnsealingStream::Create(auditor, sealer->ephemeral_public_key());
    EXPECT_TRUE(u.ok()) << u.status();
    unsealer = *std::move(u);
  }
};

TEST(SealedBox, RoundTrip) {
  Pair p;
  for (const std::string& plain :
       {std::string(), std::string("D\0\0\0\x0b\0\x01\0\0\0\x01x", 12),
        std::string(100000, '\xab')}) {
    auto box = p.sealer->Seal(plain, kAad);
    ASSERT_TRUE(box.ok()) << box.status();
    EXPECT_EQ(box->ciphertext.size(), plain.size() + kSealTagBytes);
    if (!plain.empty()) {
      EXPECT_EQ(box->ciphertext.find(plain), std::string::npos);
    }
    auto opened = p.unsealer->Open(box->counter, box->ciphertext, kAad);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(*opened, plain);
  }
}

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, Free<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, Free<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>>;
using Bio = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;

const unsigned char* U8(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

TEST(SealedBox, ConstructionIsTheDocumentedOne) {
  // Re-derives the key with OpenSSL's other HKDF interface (EVP_PKEY_HKDF) from the inputs
  // record.proto documents, and decrypts with the documented nonce layout.
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  auto sealer = *SealingStream::Create(auditor.public_key(), /*first_counter=*/0x0102030405060708);
  auto box = *sealer->Seal("hello", "aad");
  EXPECT_EQ(box.counter, 0x0102030405060708u);

  const std::string priv_pem = auditor.PrivatePem();
  Bio bio(BIO_new_mem_buf(priv_pem.data(), static_cast<int>(priv_pem.size())));
  Pkey priv(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_NE(priv, nullptr);
  const std::string& eph = sealer->ephemeral_public_key();
  Pkey peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, U8(eph), eph.size()));
  ASSERT_NE(peer, nullptr);
  unsigned char shared[32];
  size_t shared_len = sizeof shared;
  PkeyCtx dctx(EVP_PKEY_CTX_new(priv.get(), nullptr));
  ASSERT_EQ(EVP_PKEY_derive_init(dctx.get()), 1);
  ASSERT_EQ(EVP_PKEY_derive_set_peer(dctx.get(), peer.get()), 1);
  ASSERT_EQ(EVP_PKEY_derive(dctx.get(), shared, &shared_len), 1);

  const std::string salt = eph + auditor.public_key();
  const std::string info = "interlock sealed originals v1";
  unsigned char key[32];
  size_t key_len = sizeof key;
  PkeyCtx hctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  ASSERT_EQ(EVP_PKEY_derive_init(hctx.get()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_hkdf_md(hctx.get(), EVP_sha256()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set1_hkdf_salt(hctx.get(), U8(salt), static_cast<int>(salt.size())), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set1_hkdf_key(hctx.get(), shared, static_cast<int>(shared_len)), 1);
  ASSERT_EQ(EVP_PKEY_CTX_add1_hkdf_info(hctx.get(), U8(info), static_cast<int>(info.size())), 1);
  ASSERT_EQ(EVP_PKEY_derive(hctx.get(), key, &key_len), 1);

  const unsigned char iv[12] = {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
  CipherCtx c(EVP_CIPHER_CTX_new());
  unsigned char out[5];
  int len = 0, fin = 0;
  ASSERT_EQ(EVP_DecryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, key, iv), 1);
  ASSERT_EQ(EVP_DecryptUpdate(c.get(), nullptr, &len, U8("aad"), 3), 1);
  ASSERT_EQ(EVP_DecryptUpdate(c.get(), out, &len, U8(box.ciphertext), 5), 1);
  ASSERT_EQ(EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG, 16, box.ciphertext.data() + 5), 1);
  EXPECT_EQ(EVP_DecryptFinal_ex(c.get(), out + len, &fin), 1);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), 5), "hello");
}

TEST(SealedBox, WrongPrivateKeyIsDataLoss) {
  Pair p;
  auto box = *p.sealer->Seal("secret row", kAad);
  AuditorPrivateKey other = AuditorPrivateKey::Generate();
  auto u = UnsealingStream::Create(other, p.sealer->ephemeral_public_key());
  ASSERT_TRUE(u.ok()) << u.status();
  auto opened = (*u)->Open(box.counter, box.ciphertext, kAad);
  EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(opened.status().message(), HasSubstr("does not authenticate"));
}

TEST(SealedBox, TamperingIsDataLoss) {
  Pair p;
  const std::string plain = "alice@example.com";
  auto box = *p.sealer->Seal(plain, kAad);
  auto expect_loss = [&](uint64_t counter, const std::string& ct, absl::string_view aad) {
    auto opened = p.unsealer->Open(counter, ct, aad);
    EXPECT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
  };
  std::string ct = box.ciphertext;
  ct[0] ^= 0x01;  // ciphertext
  expect_loss(box.counter, ct, kAad);
  ct = box.ciphertext;
  ct.back() ^= 0x80;  // tag
  expect_loss(box.counter, ct, kAad);
  expect_loss(box.counter, box.ciphertext, SealedDataAad("sess-0001", 8));  // another seq
  expect_loss(box.counter, box.ciphertext, SealedDataAad("sess-0002", 7));  // another session
  expect_loss(box.counter, box.ciphertext, "");
  expect_loss(box.counter + 1, box.ciphertext, kAad);  // another counter
  expect_loss(box.counter, box.ciphertext.substr(0, box.ciphertext.size() - 1), kAad);
  expect_loss(box.counter, box.ciphertext.substr(0, kSealTagBytes - 1), kAad);
  expect_loss(box.counter, box.ciphertext + "x", kAad);
  // Untouched, it still opens.
  EXPECT_EQ(*p.unsealer->Open(box.counter, box.ciphertext, kAad), plain);
}

TEST(SealedBox, NoncesNeverRepeat) {
  Pair p;
  std::set<uint64_t> counters;
  std::set<std::string> boxes;
  for (int i = 0; i < 100; ++i) {
    auto box = *p.sealer->Seal("same plaintext", kAad);
    EXPECT_EQ(box.counter, static_cast<uint64_t>(i));
    counters.insert(box.counter);
    boxes.insert(box.ciphertext);
  }
  EXPECT_EQ(counters.size(), 100u);
  EXPECT_EQ(boxes.size(), 100u);
  EXPECT_EQ(p.sealer->next_counter(), 100u);
  // Every session gets its own ephemeral key, hence its own AES key.
  auto other = *SealingStream::Create(p.auditor.public_key());
  EXPECT_NE(other->ephemeral_public_key(), p.sealer->ephemeral_public_key());
  auto other_box = *other->Seal("same plaintext", kAad);
  EXPECT_EQ(other_box.counter, 0u);
  EXPECT_EQ(boxes.count(other_box.ciphertext), 0u);
  EXPECT_EQ(p.unsealer->Open(0, other_box.ciphertext, kAad).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(SealedBox, CounterIsRefusedAfterTheLastOne) {
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  auto sealer = *SealingStream::Create(auditor.public_key(), UINT64_MAX - 1);
  EXPECT_EQ(sealer->Seal("a", "")->counter, UINT64_MAX - 1);
  auto last = sealer->Seal("b", "");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->counter, UINT64_MAX);
  auto u = *UnsealingStream::Create(auditor, sealer->ephemeral_public_key());
  EXPECT_EQ(*u->Open(UINT64_MAX, last->ciphertext, ""), "b");
  for (int i = 0; i < 2; ++i) {
    auto refused = sealer->Seal("c", "");
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  }
}

TEST(SealedBox, BadPublicKeysAreInvalidArgument) {
  EXPECT_EQ(SealingStream::Create("short").status().code(), absl::StatusCode::kInvalidArgument);
  // The all-zero point has low order: the shared secret would be zero.
  EXPECT_EQ(SealingStream::Create(std::string(32, '\0')).status().code(),
            absl::StatusCode::kInvalidArgument);
  AuditorPrivateKey auditor = AuditorPrivateKey::Generate();
  EXPECT_EQ(UnsealingStream::Create(auditor, std::string(31, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SealedBox, AadIsSessionIdThenBigEndianSeq) {
  EXPECT_EQ(SealedDataAad("s1", 0x0102), std::string("s1\0\0\0\0\0\0\x01\x02", 10));
}

TEST(AuditorKeys, FilesRoundTripAndFingerprint) {
  TempDir dir;
  AuditorPrivateKey key = AuditorPrivateKey::Generate();
  ASSERT_TRUE(WriteFileAtomic(dir.File("a.key"), key.PrivatePem(), 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("a.pub"), key.PublicPem(), 0644).ok());
  auto pub = LoadAuditorPublicKey(dir.File("a.pub"));
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(*pub, key.public_key());
  EXPECT_EQ(pub->size(), kX25519KeyBytes);
  auto priv = LoadAuditorPrivateKey(dir.File("a.key"));
  ASSERT_TRUE(priv.ok()) << priv.status();
  EXPECT_EQ(priv->public_key(), key.public_key());
  EXPECT_EQ(key.Fingerprint(), HexEncode(HashRecord(key.public_key())));
  EXPECT_EQ(AuditorKeyFingerprint(*pub), key.Fingerprint());
  // What one seals the loaded key opens.
  auto sealer = *SealingStream::Create(*pub);
  EXPECT_EQ(sealer->auditor_fingerprint(), key.Fingerprint());
  auto box = *sealer->Seal("x", "y");
  auto u = *UnsealingStream::Create(*priv, sealer->ephemeral_public_key());
  EXPECT_EQ(*u->Open(box.counter, box.ciphertext, "y"), "x");
}

TEST(AuditorKeys, PrivateKeyReadableByOthersIsRefused) {
  TempDir dir;
  AuditorPrivateKey key = AuditorPrivateKey::Generate();
  for (int mode : {0640, 0604, 0660, 0606, 0644}) {
    const std::string path = dir.File(absl::StrCat("k", mode, ".key"));
    ASSERT_TRUE(WriteFileAtomic(path, key.PrivatePem(), 0600).ok());
    ASSERT_EQ(::chmod(path.c_str(), static_cast<mode_t>(mode)), 0);
    auto loaded = LoadAuditorPrivateKey(path);
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kPermissionDenied) << mode;
    EXPECT_THAT(loaded.status().message(), HasSubstr(path));
  }
  // The public key may be world-readable.
  ASSERT_TRUE(WriteFileAtomic(dir.File("a.pub"), key.PublicPem(), 0644).ok());
  EXPECT_TRUE(LoadAuditorPublicKey(dir.File("a.pub")).ok());
}

TEST(AuditorKeys, OtherKeyTypesAndGarbageAreInvalidArgument) {
  TempDir dir;
  RecordingKey ed = RecordingKey::Generate();
  ASSERT_TRUE(WriteFileAtomic(dir.File("ed.key"), ed.ToPem(), 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("ed.pub"), ed.public_key().ToPem(), 0644).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File("junk"), "not a key", 0600).ok());
  auto priv = LoadAuditorPrivateKey(dir.File("ed.key"));
  EXPECT_EQ(priv.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(priv.status().message(), HasSubstr("x25519"));
  auto pub = LoadAuditorPublicKey(dir.File("ed.pub"));
  EXPECT_EQ(pub.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadAuditorPrivateKey(dir.File("junk")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadAuditorPublicKey(dir.File("junk")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadAuditorPublicKey(dir.File("missing")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace interlock::record
