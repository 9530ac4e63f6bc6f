// Walking libpg_query's typed parse tree generically, through protobuf reflection: shared by
// the classifier (classify.cc) and the output-column derivation (derivation.cc), so that
// neither needs a rule for every one of the ~240 node types to see what is under them.
#pragma once

#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "pg_query/pg_query.pb.h"

namespace interlock::sql {

// Calls fn(child) for every set message-typed field of `m` (each element of repeated ones),
// except `skip`. A Node is a oneof over ~240 node types: only its set member is visited.
template <typename Fn>
void ForEachChild(const google::protobuf::Message& m, Fn&& fn,
                  const google::protobuf::FieldDescriptor* skip = nullptr) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const google::protobuf::Reflection* r = m.GetReflection();
  if (d == pg_query::Node::descriptor()) {
    const auto& node = static_cast<const pg_query::Node&>(m);
    if (node.node_case() == pg_query::Node::NODE_NOT_SET) return;
    fn(r->GetMessage(m, d->FindFieldByNumber(node.node_case())));
    return;
  }
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f == skip || f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int j = 0, n = r->FieldSize(m, f); j < n; ++j) fn(r->GetRepeatedMessage(m, f, j));
    } else if (r->HasField(m, f)) {
      fn(r->GetMessage(m, f));
    }
  }
}

}  // namespace interlock::sql
