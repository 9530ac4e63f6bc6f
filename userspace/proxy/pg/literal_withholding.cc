#include "userspace/proxy/pg/literal_withholding.h"

#include <utility>

#include "userspace/codec/pg/encode.h"
#include "userspace/codec/pg/framing.h"
#include "userspace/codec/pg/messages.h"
#include "userspace/sql/normalize.h"

namespace interlock::proxy::pg {

namespace cpg = ::interlock::codec::pg;
namespace fe = ::interlock::codec::pg::frontend;

namespace {

// Values emptied, NULLs kept.
void EmptyValues(std::vector<std::optional<absl::string_view>>& values) {
  for (auto& v : values) {
    if (v.has_value()) v = absl::string_view();
  }
}

}  // namespace

std::optional<std::string> WithholdLiterals(char type, absl::string_view raw,
                                            bool standard_conforming_strings) {
  if (type != fe::kQuery && type != fe::kParse && type != fe::kBind && type != fe::kFunctionCall &&
      type != fe::kCopyData) {
    return std::nullopt;
  }
  const absl::string_view body =
      raw.size() >= cpg::kMessageHeaderBytes ? raw.substr(cpg::kMessageHeaderBytes) : absl::string_view();
  switch (type) {
    case fe::kQuery:
      if (auto q = cpg::ParseQuery(body); q.ok()) {
        q->query = sql::NormalizeLiterals(q->query, standard_conforming_strings);
        return cpg::Encode(*q);
      }
      break;
    case fe::kParse:
      if (auto p = cpg::ParseParse(body); p.ok()) {
        p->query = sql::NormalizeLiterals(p->query, standard_conforming_strings);
        return cpg::Encode(*p);
      }
      break;
    case fe::kBind:
      if (auto b = cpg::ParseBind(body); b.ok()) {
        EmptyValues(b->params);
        return cpg::Encode(*b);
      }
      break;
    case fe::kFunctionCall:
      if (auto f = cpg::ParseFunctionCall(body); f.ok()) {
        EmptyValues(f->args);
        return cpg::Encode(*f);
      }
      break;
    case fe::kCopyData:
      return cpg::Encode(cpg::CopyData{});
  }
  return cpg::EncodeMessage(type, "");
}

}  // namespace interlock::proxy::pg
