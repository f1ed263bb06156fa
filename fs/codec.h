// Little-endian encoding of metadata into byte strings and back.
//
// Encoder appends to a std::string it does not own. Decoder reads from a view
// it does not own; a read past the end marks it failed (ok() false) and
// returns zeroes, so a caller checks ok() once after a run of reads.
// Thread-safety: none; one thread per object.
#ifndef IOMAPD_FS_CODEC_H_
#define IOMAPD_FS_CODEC_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"

namespace fs {

inline void PutLe(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t GetLe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
inline void Put16(uint8_t* p, uint16_t v) { PutLe(p, v, 2); }
inline void Put32(uint8_t* p, uint32_t v) { PutLe(p, v, 4); }
inline void Put64(uint8_t* p, uint64_t v) { PutLe(p, v, 8); }
inline uint16_t Get16(const uint8_t* p) { return GetLe(p, 2); }
inline uint32_t Get32(const uint8_t* p) { return GetLe(p, 4); }
inline uint64_t Get64(const uint8_t* p) { return GetLe(p, 8); }

class Encoder {
 public:
  explicit Encoder(std::string* out) : out_(out) {}
  void U16(uint16_t v) { Append(v, 2); }
  void U32(uint32_t v) { Append(v, 4); }
  void U64(uint64_t v) { Append(v, 8); }
  void I64(int64_t v) { Append(static_cast<uint64_t>(v), 8); }
  void Bytes(absl::string_view s) { out_->append(s.data(), s.size()); }
  // u16 length then the bytes. REQUIRES: s.size() < 65536.
  void Name(absl::string_view s) {
    U16(static_cast<uint16_t>(s.size()));
    Bytes(s);
  }
  std::string* out() { return out_; }

 private:
  void Append(uint64_t v, int bytes) {
    uint8_t b[8];
    PutLe(b, v, bytes);
    out_->append(reinterpret_cast<char*>(b), bytes);
  }
  std::string* out_;
};

class Decoder {
 public:
  explicit Decoder(absl::string_view in) : in_(in) {}
  uint16_t U16() { return Take(2); }
  uint32_t U32() { return Take(4); }
  uint64_t U64() { return Take(8); }
  int64_t I64() { return static_cast<int64_t>(Take(8)); }
  absl::string_view Bytes(size_t n) {
    if (!ok_ || n > in_.size() - pos_) return Fail();
    absl::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  absl::string_view Name() { return Bytes(U16()); }
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  uint64_t Take(int bytes) {
    if (!ok_ || static_cast<size_t>(bytes) > in_.size() - pos_) {
      Fail();
      return 0;
    }
    uint64_t v =
        GetLe(reinterpret_cast<const uint8_t*>(in_.data()) + pos_, bytes);
    pos_ += bytes;
    return v;
  }
  absl::string_view Fail() {
    ok_ = false;
    return absl::string_view();
  }
  absl::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace fs

#endif  // IOMAPD_FS_CODEC_H_
