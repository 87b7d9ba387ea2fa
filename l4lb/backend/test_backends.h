#pragma once

#include <vector>

#include "l4lb/backend/backend_set.h"

namespace l4lb::backend {

// For tests: `n` backends "10.0.0.1:80" ... "10.0.0.n:80", weight 1, parsed as
// --backends would parse them. `n` from 1 to 254.
std::vector<BackendSpec> Backends(int n);

}  // namespace l4lb::backend
