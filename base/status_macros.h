// The two status macros of the project (CONVENTIONS.md, rule 5).
#ifndef IOMAPD_BASE_STATUS_MACROS_H_
#define IOMAPD_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                         \
  do {                                                \
    ::absl::Status iomapd_status_ = (expr);           \
    if (!iomapd_status_.ok()) return iomapd_status_;  \
  } while (0)

#define IOMAPD_CONCAT_INNER_(a, b) a##b
#define IOMAPD_CONCAT_(a, b) IOMAPD_CONCAT_INNER_(a, b)

// `lhs = value` of the absl::StatusOr `expr`, or return its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(IOMAPD_CONCAT_(iomapd_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#endif  // IOMAPD_BASE_STATUS_MACROS_H_
