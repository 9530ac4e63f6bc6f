// interlock assertion-key init | show: the ECDSA P-256 key interlockd signs
// identity assertions with (Interlock-Assertion,
// HttpResource.identity_headers), kept in the state dir
// (userspace/auth/jwt/assertion_key.h).
#include "userspace/auth/jwt/assertion_key.h"

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/interlock/cli.h"

namespace interlock::cli {

namespace {

constexpr char kAssertionKeyHelp[] =
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

struct AssertionKeyOptions {
  std::string state_dir;
  bool replace = false;
};

int AssertionKeyCommand(const Globals& g, const std::string& sub, AssertionKeyOptions o) {
  std::string& state_dir = o.state_dir;
  const bool replace = o.replace;
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

}  // namespace

void AddAssertionKeyCommand(CLI::App& root, const Globals& g, Commands* commands) {
  CLI::App* cmd = root.add_subcommand("assertion-key", "the key of Interlock-Assertion headers");
  cmd->require_subcommand(1);
  cmd->footer(kAssertionKeyHelp);
  auto o = std::make_shared<AssertionKeyOptions>();
  for (const char* name : {"init", "show"}) {
    CLI::App* sub = cmd->add_subcommand(
        name, std::string(name) == "init" ? "create the key" : "the public key, as PEM and as a JWK");
    sub->add_option("--state-dir", o->state_dir, "the key's directory (default: the state dir)")
        ->option_text("DIR");
    if (std::string(name) == "init") sub->add_flag("--replace", o->replace, "replace an existing key");
    sub->footer(kAssertionKeyHelp);
    commands->push_back({sub, [&g, o, sub_name = std::string(name)] { return AssertionKeyCommand(g, sub_name, *o); }});
  }
}

}  // namespace interlock::cli
