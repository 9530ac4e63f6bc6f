// interlock assertion-key init | show: the ECDSA P-256 key interlockd signs
// identity assertions with (Interlock-Assertion,
// HttpResource.identity_headers), kept in the state dir
// (userspace/auth/jwt/assertion_key.h).
#include "userspace/auth/jwt/assertion_key.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/interlock/cli.h"

namespace interlock::cli {

namespace {

constexpr char kAssertionKeyHelp[] =
    "usage: interlock assertion-key init [--state-dir DIR] [--replace]\n"
    "       interlock assertion-key show [--state-dir DIR]\n"
    "\n"
    "The key interlockd signs Interlock-Assertion headers with (resources "
    "with\n"
    "http.identity_headers). Kept in the state dir (--state-dir, else the "
    "configuration's\n"
    "state_dir): assertion-key.pem (0600). interlockd refuses to start without "
    "it when a\n"
    "resource asks for identity headers.\n"
    "\n"
    "  init    create the key; refused when one exists, unless --replace "
    "(upstreams must then\n"
    "          trust the new public key)\n"
    "  show    the public key, as PEM and as a JWK; its kid (the RFC 7638 "
    "thumbprint) is the\n"
    "          kid of every assertion's header. Give either to the upstream "
    "that verifies\n"
    "\n"
    "Exit status: 0; 1 when the operation fails; 2 for bad arguments or "
    "configuration.\n";

}  // namespace

int CmdAssertionKey(const Globals& g, const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::fputs(kAssertionKeyHelp, stdout);
    return 0;
  }
  if (args.empty())
    return Fail(2,
                "assertion-key: which one: init or show (interlock "
                "assertion-key --help)");
  const std::string sub = args[0];
  if (sub != "init" && sub != "show") {
    return Fail(2, absl::StrCat("assertion-key: unknown subcommand \"", sub, "\" (init, show)"));
  }
  std::string state_dir;
  bool replace = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--state-dir" && i + 1 < args.size()) {
      state_dir = args[++i];
    } else if (args[i] == "--replace" && sub == "init") {
      replace = true;
    } else {
      return Fail(2, absl::StrCat("assertion-key ", sub, ": unexpected argument \"", args[i], "\""));
    }
  }
  if (state_dir.empty()) {
    auto cfg = LoadCliConfig(g);
    if (!cfg.ok()) return Fail(2, std::string(cfg.status().message()));
    state_dir = cfg->state_dir;
  }
  absl::StatusOr<std::unique_ptr<auth::jwt::AssertionKey>> key;
  if (sub == "init") {
    key = auth::jwt::AssertionKey::Init(state_dir, replace);
    if (absl::IsAlreadyExists(key.status())) {
      return Fail(1, absl::StrCat("assertion-key init: a key exists in ", state_dir,
                                  " (--replace makes a new one; upstreams must then trust it)"));
    }
  } else {
    key = auth::jwt::AssertionKey::Load(state_dir);
    if (absl::IsNotFound(key.status())) {
      return Fail(1, absl::StrCat("assertion-key show: no key in ", state_dir,
                                  " (create one with `interlock assertion-key init`)"));
    }
  }
  if (!key.ok()) return Fail(1, absl::StrCat("assertion-key ", sub, ": ", key.status().message()));
  if (sub == "init") std::printf("created a new assertion key\n");
  std::printf("key  %s\nkid  %s\njwk  %s\n%s", (*key)->file().c_str(), (*key)->kid().c_str(),
              (*key)->public_jwk().c_str(), (*key)->public_pem().c_str());
  return 0;
}

}  // namespace interlock::cli
