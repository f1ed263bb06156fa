// Zero-copy encoding of the Submit stream's messages (docs/protocol.md,
// "The Submit stream"): SubmitBatch (client) and CompletionBatch (server)
// into a grpc::ByteBuffer whose large data fields are not copied.
//
// gRPC's protobuf serializer copies every byte of a message into its own
// slices. Here each request or completion is serialized without its data
// field (WriteRequest.data, Completion.data) when that field is at least
// kAliasMinBytes long; the field follows as a second occurrence of the
// enclosing message on the wire, whose bytes are a slice that owns the
// moved-out string. A protobuf parser merges repeated occurrences of an
// embedded message field, so any receiver parses the same message as from
// the plain serialization (tested in wire_encode_test.cc). Smaller fields
// are copied as usual.
//
// Thread-safety: the functions are pure; the returned buffer owns what it
// refers to (the strings live until gRPC drops the last slice).
#ifndef IOMAPD_CLIENT_WIRE_ENCODE_H_
#define IOMAPD_CLIENT_WIRE_ENCODE_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/support/byte_buffer.h"
#include "proto/iomapd.pb.h"

namespace client {
namespace codec {

// Data fields at least this long travel as their own slice.
constexpr size_t kAliasMinBytes = 32 << 10;

// Bytes shared with the caller, sent without a copy (AsyncStream::
// SubmitWrite).
using Payload = std::shared_ptr<const std::string>;

// Encodes `batch`, moving out its large write data. With `payloads`
// (one per request, or empty), a request whose payload is set is a write
// whose data is that payload: its own data field must be empty, and the
// buffer keeps a reference to the payload until gRPC is done with it.
grpc::ByteBuffer EncodeSubmitBatch(iomapd::v1::SubmitBatch* batch,
                                   const std::vector<Payload>& payloads = {});

// Encodes `batch`, moving out its large read data.
grpc::ByteBuffer EncodeCompletionBatch(iomapd::v1::CompletionBatch* batch);

// Parses a received message as gRPC's protobuf deserializer does, and
// clears `buffer` (false when the bytes are not a valid message).
bool Decode(grpc::ByteBuffer* buffer, google::protobuf::MessageLite* out);

}  // namespace codec
}  // namespace client

#endif  // IOMAPD_CLIENT_WIRE_ENCODE_H_
