// OpenSSL helpers shared inside userspace/net (tls.cc, interception_ca.cc, leaf_cache.cc):
// one RAII owner type per OpenSSL object, and the error-queue reader that turns OpenSSL's
// thread-local error queue into message text. Not a public API of the library.
//
//   X509Ptr cert(X509_new());
//   if (cert == nullptr) return absl::InternalError(StrCat("x509: ", TakeOpensslReason()));
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

namespace interlock::net {

// A deleter calling OpenSSL's `Free` (X509_free, EVP_PKEY_free, ...).
template <auto Free>
struct OpensslFree {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};

using BignumPtr = std::unique_ptr<BIGNUM, OpensslFree<BN_free>>;
using BioPtr = std::unique_ptr<BIO, OpensslFree<BIO_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpensslFree<EVP_PKEY_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OpensslFree<GENERAL_NAME_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OpensslFree<GENERAL_NAMES_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpensslFree<X509_EXTENSION_free>>;
using X509Ptr = std::unique_ptr<X509, OpensslFree<X509_free>>;
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, OpensslFree<BASIC_CONSTRAINTS_free>>;

// The reason text of the oldest queued OpenSSL error ("certificate verify failed", "no start
// line"), and clears the queue so it cannot be misattributed to a later call. The oldest
// entry is the cause; later ones are the layers that passed it up ("PEM lib").
std::string TakeOpensslReason();

// Keys must be unencrypted: passed as the password callback, it makes OpenSSL fail instead
// of prompting on the terminal.
int NoPassword(char* buf, int size, int rwflag, void* userdata);

}  // namespace interlock::net
