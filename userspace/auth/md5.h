// PostgreSQL's legacy MD5 password authentication, client side (PostgreSQL docs 55.3
// "AuthenticationMD5Password"): the PasswordMessage payload answering a 4-byte salt.
//
//   INTERLOCK_ASSIGN_OR_RETURN(std::string reply,
//                              Md5PasswordResponse(user, password.reveal(), salt));
//   Send(PasswordMessage(reply));  // the codec adds the terminating NUL
//
// No SASLprep here: PostgreSQL hashes the raw bytes. The inner hash md5(password + user)
// is exactly what the server stores and is enough to log in, so it is wiped after use;
// the returned response is only good for this salt.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace interlock::auth {

using Md5Salt = std::array<uint8_t, 4>;

// "md5" + hex(md5(hex(md5(password + user)) + salt)): 35 characters. FAILED_PRECONDITION
// when this OpenSSL refuses MD5 (FIPS mode): the upstream chose md5, so this must not
// abort the daemon.
absl::StatusOr<std::string> Md5PasswordResponse(absl::string_view user, absl::string_view password,
                                                const Md5Salt& salt);

}  // namespace interlock::auth
