#include "l4lb/admin/view.h"

namespace l4lb::admin {

const char* StateName(BackendState state) {
  switch (state) {
    case BackendState::kUp:
      return "UP";
    case BackendState::kDown:
      return "DOWN";
    case BackendState::kDrain:
      return "DRAIN";
    case BackendState::kMaint:
      return "MAINT";
  }
  return "UNKNOWN";
}

}  // namespace l4lb::admin
