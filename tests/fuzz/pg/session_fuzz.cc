// Fuzz target for the policy point and the result masker of a PostgreSQL session
// (userspace/proxy/pg/guard.h, result_masker.h): a hostile agent's frontend messages and an
// arbitrary backend stream, interleaved, against a policy that denies, reviews and masks.
//
// Input: a sequence of frames, each one direction byte (even: frontend, odd: backend)
// followed by one protocol message (type byte, Int32 length, body). Bit 1 of the first
// direction byte gives the session a mask floor (every statement masked, and errors,
// notices, notifications, parameter statuses and function results outside them). Frontend messages go
// through StatementGuard::OnFrontend (with estimates when it asks, a denial when it holds)
// and ResultMasker::OnFrontend; backend messages through ResultMasker::OnBackend and
// StatementGuard::OnBackend; each frontend message also through WithholdLiterals (what the
// recording keeps). Every message any of them produces must itself be a well-formed frame;
// a violation aborts, which libFuzzer reports as a crash.
//
// With g++ this links into pg_session_fuzz_replay (ctest, over corpus_session/). With
// clang, configure the whole build with -DCMAKE_CXX_COMPILER=clang++ and
// -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined", then build
// pg_session_fuzz and run: ./pg_session_fuzz -max_len=8192 <scratch dir> corpus_session/
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "absl/strings/string_view.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/mask/masker.h"
#include "userspace/policy/loader.h"
#include "userspace/proxy/pg/guard.h"
#include "userspace/proxy/pg/literal_withholding.h"
#include "userspace/proxy/pg/result_masker.h"

namespace pg = interlock::proxy::pg;
namespace cpg = interlock::codec::pg;

namespace {

constexpr char kPolicy[] = R"YAML(
mask_profiles:
  - name: pii
    columns:
      - {column: public.customers.ssn, mask: {style: MASK_STYLE_REDACT}}
      - {column: "*card*", mask: {style: MASK_STYLE_PARTIAL}}
      - {column: account, mask: {style: MASK_STYLE_KEYED_HASH}}
      - {column: secret, mask: {style: MASK_STYLE_NULL}}
    detectors:
      - {detector: DETECTOR_SSN}
      - {detector: DETECTOR_CARD}
      - {detector: DETECTOR_IBAN, mask: {style: MASK_STYLE_KEYED_HASH}}
      - {detector: DETECTOR_EMAIL}
      - {detector: DETECTOR_PHONE, mask: {style: MASK_STYLE_PARTIAL}}
      - {detector: DETECTOR_CUSTOM, pattern: "EMP-[0-9]{4}"}
rules:
  - {id: reads, match: {kinds: [STATEMENT_KIND_SELECT]}, action: ACTION_MASK, mask_profile: pii}
  - {id: big, match: {kinds: [STATEMENT_KIND_SELECT], estimated_rows_gt: 10}, action: ACTION_REVIEW}
  - {id: writes, match: {kinds: [STATEMENT_KIND_INSERT, STATEMENT_KIND_UPDATE]}, action: ACTION_ALLOW}
  - {id: deletes, match: {kinds: [STATEMENT_KIND_DELETE]}, action: ACTION_REVIEW}
  - {id: ddl, match: {kinds: [STATEMENT_KIND_DDL]}, action: ACTION_DENY}
  - {id: tx, match: {kinds: [STATEMENT_KIND_TRANSACTION, STATEMENT_KIND_PREPARE]}, action: ACTION_ALLOW}
)YAML";

struct Fixture {
  std::shared_ptr<const interlock::policy::PolicyEvaluator> policy;
  std::shared_ptr<const interlock::mask::Masker> masker;
  Fixture() {
    auto e = interlock::policy::LoadPolicyText(kPolicy, "fuzz.yaml");
    if (!e.ok()) std::abort();
    policy = std::move(*e);
    auto m = interlock::mask::Masker::Create(policy->policy().mask_profiles(0), std::string(32, 'k'));
    if (!m.ok()) std::abort();
    masker = std::shared_ptr<const interlock::mask::Masker>(std::move(*m));
  }
};

// Anything handed on must be exactly one well-formed message (or several, for prefixes).
void CheckFrames(absl::string_view bytes) {
  while (!bytes.empty()) {
    auto f = cpg::PeekFrame(bytes, cpg::kMaxMessageBytes);
    if (!f.ok() || !f->has_value()) std::abort();
    bytes.remove_prefix((*f)->total_bytes);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fx = new Fixture();
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  pg::GuardOptions o;
  o.resource = "db";
  o.who.workload = "agent";
  o.nonce = "00000000deadbeef";
  pg::StatementGuard guard(o, &fx->policy);
  int lookups = 0;
  pg::ResultMasker rm([&lookups](uint32_t oid, int16_t attnum) -> std::optional<pg::ColumnSource> {
    // A small catalog; every third lookup of an unknown table says "not cached" once.
    if (oid % 3 == 0 && (lookups++ % 2) == 0) return std::nullopt;
    if (attnum == 1) return pg::ColumnSource{"public", "customers", "ssn"};
    if (attnum == 2) return pg::ColumnSource{"public", "customers", "card_number"};
    return pg::ColumnSource{"public", "t", "c"};
  });
  const bool floor = !in.empty() && (static_cast<unsigned char>(in[0]) & 2) != 0;
  if (floor) rm.SetFloor(fx->masker);
  int steps = 0;
  while (in.size() > 1 && ++steps < 256) {
    bool backend = (static_cast<unsigned char>(in[0]) & 1) != 0;
    in.remove_prefix(1);
    auto frame = cpg::PeekFrame(in, 1 << 16);
    if (!frame.ok() || !frame->has_value()) break;
    const char type = (*frame)->type;
    absl::string_view body = (*frame)->body;
    absl::string_view raw = in.substr(0, (*frame)->total_bytes);
    in.remove_prefix((*frame)->total_bytes);
    if (!backend) {
      // What the recording keeps of it: one well-formed frame of the same type.
      if (auto shown = pg::WithholdLiterals(type, raw, guard.settings().standard_conforming_strings)) {
        CheckFrames(*shown);
        if ((*shown)[0] != type) std::abort();
      }
      auto v = guard.OnFrontend(type, body);
      if (!v.ok()) continue;  // the session would answer 08P01 / 54000 and close
      if (v->kind == pg::GuardVerdict::kEstimate) {
        pg::RowEstimates est(16, interlock::policy::StatementEstimate{.rows = 1000});
        v = guard.OnFrontend(type, body, &est);
        if (!v.ok()) continue;
      }
      std::string sent(raw);
      std::shared_ptr<const interlock::mask::Masker> m = floor ? fx->masker : nullptr;
      std::string profile;  // the floor
      if (v->kind == pg::GuardVerdict::kReplace) {
        CheckFrames(v->replacement);
        sent = v->replacement;
      } else if (v->kind == pg::GuardVerdict::kHold) {
        sent = guard.DenyHeld(type, "denied", "by the fuzzer");
        CheckFrames(sent);
      } else if (v->decision.has_value() && v->decision->action == interlock::v1::ACTION_MASK) {
        m = fx->masker;
        profile = "pii";
      }
      if (v->kind == pg::GuardVerdict::kWait) continue;
      // The derived result columns, as the session passes them (computed columns follow
      // their origins' rules).
      std::string prefix = rm.OnFrontend(sent[0], absl::string_view(sent).substr(5), m, profile, std::move(v->shapes));
      CheckFrames(prefix);
    } else {
      pg::ResultMasker::Out out = rm.OnBackend(type, raw);
      if (out.verdict == pg::ResultMasker::Verdict::kReplace) CheckFrames(out.view);
      if (out.verdict == pg::ResultMasker::Verdict::kFatal) break;  // the session closes
      if (auto mine = guard.OnBackend(type, body)) CheckFrames(*mine);
      (void)rm.TakeReports();
    }
  }
  return 0;
}
