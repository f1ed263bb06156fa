#include "client/wire_encode.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "grpcpp/support/proto_buffer_reader.h"

namespace client {
namespace codec {

namespace {

namespace v1 = ::iomapd::v1;

constexpr uint32_t kLengthDelimited = 2;
// Field numbers (proto/iomapd.proto).
constexpr uint32_t kBatchRequests = 1;      // SubmitBatch.requests
constexpr uint32_t kRequestWrite = 12;      // SubmitRequest.write
constexpr uint32_t kWriteData = 4;          // WriteRequest.data
constexpr uint32_t kCompletionsLimits = 1;  // CompletionBatch.limits
constexpr uint32_t kCompletions = 2;        // CompletionBatch.completions
constexpr uint32_t kCompletionData = 4;     // Completion.data

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

// Tag and length of a length-delimited field.
void AppendHeader(uint32_t field, uint64_t length, std::string* out) {
  AppendVarint((field << 3) | kLengthDelimited, out);
  AppendVarint(length, out);
}

size_t HeaderSize(uint32_t field, uint64_t length) {
  return VarintSize((field << 3) | kLengthDelimited) + VarintSize(length);
}

void DeleteString(void* p) { delete static_cast<std::string*>(p); }
void DropPayload(void* p) { delete static_cast<Payload*>(p); }

// Slices under construction: copied bytes accumulate in `small` and are
// cut into a slice before each owned one.
class SliceList {
 public:
  std::string* small() { return &small_; }

  // Appends `data` (moved out of a message) without copying its bytes.
  void AddOwned(std::string* data) {
    Cut();
    auto* owned = new std::string(std::move(*data));
    slices_.emplace_back(&(*owned)[0], owned->size(), DeleteString, owned);
  }

  // Appends a reference to shared bytes.
  void AddShared(const Payload& data) {
    if (data->empty()) return;
    Cut();
    auto* ref = new Payload(data);
    slices_.emplace_back(const_cast<char*>(data->data()), data->size(),
                         DropPayload, ref);
  }

  grpc::ByteBuffer Finish() {
    Cut();
    return grpc::ByteBuffer(slices_.data(), slices_.size());
  }

 private:
  void Cut() {
    if (small_.empty()) return;
    slices_.emplace_back(small_);
    small_.clear();
  }

  std::string small_;
  std::vector<grpc::Slice> slices_;
};

// Appends one element of a repeated message field `field`: `message`
// without its large data, then the header of the data field (`data_field`
// of the submessage `wrapper`, or of the message itself when wrapper is 0)
// for `n` bytes, which the caller appends next.
void AppendSplitHead(uint32_t field,
                     const google::protobuf::MessageLite& message,
                     uint32_t wrapper, uint32_t data_field, size_t n,
                     SliceList* out) {
  const size_t data_len = HeaderSize(data_field, n) + n;
  const size_t tail =
      wrapper != 0 ? HeaderSize(wrapper, data_len) + data_len : data_len;
  const size_t head = message.ByteSizeLong();
  std::string* s = out->small();
  AppendHeader(field, head + tail, s);
  message.AppendToString(s);
  if (wrapper != 0) AppendHeader(wrapper, data_len, s);
  AppendHeader(data_field, n, s);
}

void AppendWhole(uint32_t field, const google::protobuf::MessageLite& message,
                 SliceList* out) {
  std::string* s = out->small();
  AppendHeader(field, message.ByteSizeLong(), s);
  message.AppendToString(s);
}

}  // namespace

grpc::ByteBuffer EncodeSubmitBatch(v1::SubmitBatch* batch,
                                   const std::vector<Payload>& payloads) {
  SliceList out;
  for (int i = 0; i < batch->requests_size(); i++) {
    v1::SubmitRequest& q = *batch->mutable_requests(i);
    const Payload* shared =
        static_cast<size_t>(i) < payloads.size() && payloads[i] != nullptr
            ? &payloads[i]
            : nullptr;
    if (shared != nullptr) {
      AppendSplitHead(kBatchRequests, q, kRequestWrite, kWriteData,
                      (*shared)->size(), &out);
      out.AddShared(*shared);
    } else if (q.has_write() && q.write().data().size() >= kAliasMinBytes) {
      std::string data = std::move(*q.mutable_write()->mutable_data());
      q.mutable_write()->clear_data();
      AppendSplitHead(kBatchRequests, q, kRequestWrite, kWriteData, data.size(),
                      &out);
      out.AddOwned(&data);
    } else {
      AppendWhole(kBatchRequests, q, &out);
    }
  }
  return out.Finish();
}

grpc::ByteBuffer EncodeCompletionBatch(v1::CompletionBatch* batch) {
  SliceList out;
  if (batch->has_limits()) {
    AppendWhole(kCompletionsLimits, batch->limits(), &out);
  }
  for (v1::Completion& c : *batch->mutable_completions()) {
    if (c.data().size() >= kAliasMinBytes) {
      std::string data = std::move(*c.mutable_data());
      c.clear_data();
      AppendSplitHead(kCompletions, c, 0, kCompletionData, data.size(), &out);
      out.AddOwned(&data);
    } else {
      AppendWhole(kCompletions, c, &out);
    }
  }
  return out.Finish();
}

bool Decode(grpc::ByteBuffer* buffer, google::protobuf::MessageLite* out) {
  bool ok;
  {
    grpc::ProtoBufferReader reader(buffer);
    ok = reader.status().ok() && out->ParseFromZeroCopyStream(&reader);
  }
  buffer->Clear();
  return ok;
}

}  // namespace codec
}  // namespace client
