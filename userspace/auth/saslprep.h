// SASLprep (RFC 4013) of a SCRAM password, exactly as PostgreSQL applies it.
//
// PostgreSQL (src/common/saslprep.c, pg_saslprep; used alike by libpq and by the server
// when it stores a SCRAM verifier) does not follow RFC 4013 to the letter. What both
// sides hash, and therefore what this function returns, is:
//
//   1. a pure-ASCII password: the bytes unchanged (no prohibited-character check, so
//      control characters pass through);
//   2. a password that is not valid UTF-8: the bytes unchanged;
//   3. otherwise map: non-ASCII spaces (RFC 3454 C.1.2) become U+0020, "commonly mapped
//      to nothing" characters (B.1) are removed;
//   4. if the mapped string is empty, or contains a prohibited character (C.1.2,
//      C.2.1-C.9) or one unassigned in Unicode 3.2 (A.1), or breaks the bidi rule
//      (RFC 3454 section 6): the original bytes unchanged. PostgreSQL runs these checks on
//      the mapped string *before* NFKC (RFC 3454 says after); so do we;
//   5. otherwise the NFKC normalization of the mapped string.
//
// So a prep failure is never an error: it only means "hash the raw bytes". The RFC 3454
// tables are generated from CPython's stringprep module (gen_saslprep_tables.py); NFKC
// comes from ICU (unorm2).
//
//   SaslPrepResult r = PgSaslPrep(password.reveal());
//   HashWith(r.password.reveal());
#pragma once

#include "absl/strings/string_view.h"
#include "userspace/auth/secret.h"

namespace interlock::auth {

enum class SaslPrepOutcome {
  kAscii,        // pure ASCII: used as is
  kPrepared,     // valid UTF-8 prepared by the RFC 4013 profile
  kInvalidUtf8,  // not valid UTF-8: raw bytes used
  kProhibited,   // prohibited/unassigned character, bidi violation or empty result: raw
};

struct SaslPrepResult {
  Secret password;  // the bytes to hash
  SaslPrepOutcome outcome = SaslPrepOutcome::kAscii;
};

// Never fails (see above). A broken ICU installation (no NFKC data) aborts the process:
// hashing something else than PostgreSQL would make every login fail mysteriously.
SaslPrepResult PgSaslPrep(absl::string_view password);

// Whether `bytes` is valid UTF-8 by PostgreSQL's rules (pg_utf8_islegal, RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(absl::string_view bytes);

}  // namespace interlock::auth
