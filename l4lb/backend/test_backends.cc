#include "l4lb/backend/test_backends.h"

#include <string>

namespace l4lb::backend {

std::vector<BackendSpec> Backends(int n) {
  std::string text;
  for (int i = 1; i <= n; ++i) text += (i > 1 ? "," : "") + ("10.0.0." + std::to_string(i) + ":80");
  return *ParseBackendList(text);
}

}  // namespace l4lb::backend
