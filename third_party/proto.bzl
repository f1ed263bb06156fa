"""cc_grpc_proto: C++ message and service code from a .proto, offline.

Runs Debian's /usr/bin/protoc with /usr/bin/grpc_cpp_plugin in a genrule and
wraps the four generated files in a cc_library named `name`.
"""

def cc_grpc_proto(name, src, visibility = None):
    base = src[:-len(".proto")]
    pkg = native.package_name()
    outs = [
        base + ".pb.h",
        base + ".pb.cc",
        base + ".grpc.pb.h",
        base + ".grpc.pb.cc",
    ]
    native.genrule(
        name = name + "_gen",
        srcs = [src],
        outs = outs,
        cmd = " ".join([
            "/usr/bin/protoc",
            "--proto_path=.",
            "--cpp_out=$(GENDIR)",
            "--grpc_out=$(GENDIR)",
            "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin",
            (pkg + "/" if pkg else "") + src,
        ]),
    )
    native.cc_library(
        name = name,
        srcs = [base + ".pb.cc", base + ".grpc.pb.cc"],
        hdrs = [base + ".pb.h", base + ".grpc.pb.h"],
        visibility = visibility,
        deps = [
            "//third_party:grpc++",
            "//third_party:protobuf",
        ],
    )
