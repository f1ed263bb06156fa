// crc32c (Castagnoli, the polynomial of iSCSI, ext4 and XFS metadata).
//
// Uses the SSE4.2 CRC32 instruction when the CPU has it and a table-driven
// software version otherwise; both give identical results. The values are
// the standard ones: Crc32c("123456789") == 0xE3069283.
//
// Thread-safety: pure functions, callable from any thread, including bio
// completion callbacks.
#ifndef IOMAPD_BASE_CRC32C_H_
#define IOMAPD_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace base {

// crc32c of `n` bytes at `data`.
uint32_t Crc32c(const void* data, size_t n);

// Continues a crc: Crc32cExtend(Crc32c(a), b) == Crc32c(a + b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

// The software path alone (for tests and for comparing the two paths).
uint32_t Crc32cExtendSoftware(uint32_t crc, const void* data, size_t n);

// True when Crc32c uses the SSE4.2 instruction.
bool Crc32cHardwareAvailable();

}  // namespace base

#endif  // IOMAPD_BASE_CRC32C_H_
