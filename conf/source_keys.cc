#include "conf/source_keys.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#include "l4lb/net/source.h"

namespace l4lb::conf {

void ReadSourceKeys(Reader& reader, const Scope& scope, Server::Service* service) {
  if (const toml::node* node = reader.Find(scope, "source")) {
    // "10.0.0.5", "10.0.0.5,10.0.0.6" or ["10.0.0.5", "10.0.0.6"].
    std::string text;
    if (const auto* s = node->as_string()) {
      text = s->get();
    } else if (const toml::array* a = node->as_array()) {
      for (const toml::node& item : *a) {
        const auto* s = item.as_string();
        if (s == nullptr) {
          reader.Fail(item.source(), "source: want addresses as strings, e.g. [\"10.0.0.5\"]");
          text.clear();
          break;
        }
        absl::StrAppend(&text, text.empty() ? "" : ",", s->get());
      }
    } else {
      reader.Fail(node->source(), "source: want \"ADDRESS\" or [\"ADDRESS\", ...]");
    }
    if (!text.empty()) {
      absl::StatusOr<std::vector<net::SocketAddress>> parsed = net::ParseSourceList(text);
      if (parsed.ok()) {
        service->source = *std::move(parsed);
      } else {
        reader.Fail(node->source(), absl::StrCat("source: ", parsed.status().message()));
      }
    }
  }
  reader.ReadBool(scope, "transparent", &service->transparent);
  if (service->transparent && !service->source.empty()) {
    reader.Fail(reader.Find(scope, "transparent")->source(),
                "transparent: not with source (the client's address is the source)");
  }
}

}  // namespace l4lb::conf
