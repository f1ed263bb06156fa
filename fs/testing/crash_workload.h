// CrashWorkload: the random workload of the crash tests (fs/crash_test.cc,
// docs/testing.md "Crash tests") over a mounted fs::Volume, with the models
// (fs/testing/crash_model.h) that say what a crash may leave, and the check
// of a volume remounted after the crash.
//
// Operations: create (O_EXCL, also of existing names), write (also O_SYNC
// and O_APPEND), stores through a shared mapping, fsync,
// truncate up and down, fallocate (allocate, KEEP_SIZE, punch, zero range,
// unshare), clone and dedupe ranges, hard links, unlink (also of open
// files, which then live on as orphans), rename (over existing names, between
// two links of one inode, and RENAME_EXCHANGE),
// close, checkpoints and flusher kicks. Names live in the root and in one
// subdirectory "d"; at most `max_inodes` files exist at once.
//
// `dead` tells whether the device has crashed (or will: the crash was
// triggered). An operation may fail only once the device is dead; an fsync
// counts as durable only if it succeeded with the device alive before and
// after it. Once dead, the workload stops.
//
// Failures are gtest failures at the caller's test (the caller adds the
// seed with SCOPED_TRACE).
//
// Thread-safety: thread-compatible (one test thread).
#ifndef IOMAPD_FS_TESTING_CRASH_WORKLOAD_H_
#define IOMAPD_FS_TESTING_CRASH_WORKLOAD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "fs/file.h"
#include "fs/testing/crash_model.h"
#include "fs/volume.h"

namespace fs {
namespace testing {

struct CrashWorkloadOptions {
  uint32_t block_size = 4096;
  int64_t max_file = 64 << 10;  // no file grows past this
  int max_inodes = 8;
};

class CrashWorkload {
 public:
  CrashWorkload(Volume* vol, const CrashWorkloadOptions& options, uint64_t seed,
                std::function<bool()> dead);
  ~CrashWorkload();

  // mkdir "d", three files, fsync: the starting state, durable. False
  // after a failure.
  bool Setup();
  // One random operation. False once the device is dead or an operation
  // failed (a gtest failure).
  bool Step();
  // Drops every open file (before the crashed volume goes away).
  void CloseAll();
  // Checks a volume mounted after the crash: the names equal a state the
  // namespace model allows, every file's size and bytes are legal.
  void Verify(Volume* vol);
  // One line per operation run, for failure messages.
  std::string History() const;
  // Operations run (Setup's included) and fsyncs that counted as durable.
  int ops() const { return static_cast<int>(history_.size()); }
  int durable_fsyncs() const { return durable_fsyncs_; }

 private:
  struct Inode {
    explicit Inode(int64_t max) : model(max) {}
    FileHandle h;
    FileModel model;
    std::unique_ptr<OpenFile> file;
    int links = 1;  // names in the current namespace
  };

  bool Ok(int64_t r, int64_t want, const std::string& what);
  void Note(const std::string& what);
  FileHandle DirOf(const std::string& path) const;
  static std::string NameOf(const std::string& path);
  std::string RandomPath();
  // An existing path, or "" when there is none.
  std::string ExistingPath();
  // A live inode, opened if needed; -1 when none.
  int PickFile();
  int OpenInode(int id);
  int64_t Below(int64_t n) {
    return n <= 0 ? 0 : static_cast<int64_t>(rng_() % n);
  }
  int Live() const;
  uint8_t NextValue();

  bool CreatePath(const std::string& path);
  bool Create();
  bool WriteOp();
  bool WriteData(int id, int64_t pos, const std::string& data,
                 unsigned flags = 0);
  bool MapWrite(int id, std::string data);
  bool Fsync();
  bool TruncateOp();
  bool FallocateOp();
  bool Clone();
  bool Dedupe();
  bool Link();
  bool Unlink();
  bool Rename();
  bool Close();
  bool CheckpointOp();
  void VerifyFile(Volume* vol, const std::string& path, const Inode& ino);
  void ReadTree(Volume* vol, NamespaceModel::State* got, bool* ok);

  Volume* vol_;
  const CrashWorkloadOptions opt_;
  std::mt19937_64 rng_;
  std::function<bool()> dead_;
  std::vector<std::unique_ptr<Inode>> inodes_;  // id -> inode (null: gone)
  NamespaceModel ns_;
  FileHandle root_, sub_;
  uint8_t next_value_ = 0;
  bool failed_ = false;
  int durable_fsyncs_ = 0;
  std::vector<std::string> history_;
};

}  // namespace testing
}  // namespace fs

#endif  // IOMAPD_FS_TESTING_CRASH_WORKLOAD_H_
