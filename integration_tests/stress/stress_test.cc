// The stress verifier itself: a correct in-memory file set passes; one that
// loses, tears or resurrects writes is caught.
#include "integration_tests/stress/stress.h"

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace stress {
namespace {

enum class Fault { kNone, kLoseWrite, kTearWrite, kIgnoreTruncate };

// Files in memory, one lock for all (linearizable), with an optional fault
// injected on every 50th operation of its kind.
struct MemFiles {
  explicit MemFiles(int n, Fault f) : files(n), fault(f) {}
  std::mutex mu;
  std::vector<std::string> files;
  Fault fault;
  int writes = 0, truncates = 0;
};

class MemEndpoint : public Endpoint {
 public:
  explicit MemEndpoint(MemFiles* m) : m_(m) {}
  int64_t Write(int f, int64_t off, const std::string& data) override {
    std::lock_guard<std::mutex> l(m_->mu);
    bool faulty = ++m_->writes % 50 == 0;
    if (faulty && m_->fault == Fault::kLoseWrite) return data.size();
    std::string& s = m_->files[f];
    size_t n = data.size();
    if (faulty && m_->fault == Fault::kTearWrite) n = kBlock / 2;
    if (s.size() < off + data.size()) s.resize(off + data.size());
    s.replace(off, n, data, 0, n);
    return data.size();
  }
  int64_t Read(int f, int64_t off, int64_t len, std::string* out) override {
    std::lock_guard<std::mutex> l(m_->mu);
    const std::string& s = m_->files[f];
    if (off >= static_cast<int64_t>(s.size())) {
      out->clear();
      return 0;
    }
    *out = s.substr(off, len);
    return out->size();
  }
  int Truncate(int f, int64_t size) override {
    std::lock_guard<std::mutex> l(m_->mu);
    bool faulty = ++m_->truncates % 50 == 0;
    if (faulty && m_->fault == Fault::kIgnoreTruncate) return 0;
    m_->files[f].resize(size);
    return 0;
  }
  int Fsync(int) override { return 0; }

 private:
  MemFiles* m_;
};

Result RunMem(Fault fault) {
  Options o;
  o.ops_per_client = 800;
  MemFiles m(o.files, fault);
  return Run(o, [&](int) { return std::make_unique<MemEndpoint>(&m); });
}

TEST(StressVerifierTest, CorrectFilesPass) {
  Result r = RunMem(Fault::kNone);
  EXPECT_TRUE(r.problems.empty()) << r.problems[0];
  EXPECT_EQ(r.ops, 8u * 800);
}

TEST(StressVerifierTest, LostWritesAreCaught) {
  EXPECT_FALSE(RunMem(Fault::kLoseWrite).problems.empty());
}

TEST(StressVerifierTest, TornWritesAreCaught) {
  EXPECT_FALSE(RunMem(Fault::kTearWrite).problems.empty());
}

TEST(StressVerifierTest, IgnoredTruncatesAreCaught) {
  EXPECT_FALSE(RunMem(Fault::kIgnoreTruncate).problems.empty());
}

}  // namespace
}  // namespace stress
