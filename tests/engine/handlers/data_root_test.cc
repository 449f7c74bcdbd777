#include "engine/handlers/data_root.h"
// The subject header comes first: that proves it is self-contained.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/engine/handlers/handlers_test_util.h"

namespace bmos::engine::handlers {
namespace {

using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers

class DataRootTest : public HandlerTest {};

TEST_F(DataRootTest, ResolvesPathsInsideTheRoot) {
  Result<fs::path> p = ws().root.Resolve("data/sales.csv", "data_source");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p, root() / "data" / "sales.csv");
  EXPECT_EQ(ws().root.Relative(*p), "data/sales.csv");
  EXPECT_TRUE(ws().root.Resolve("./a/./b.csv", "f").ok());
}

TEST_F(DataRootTest, RefusesPathsThatLeaveTheRoot) {
  const auto refused = [&](const std::string& path, const std::string& why) {
    Result<fs::path> p = ws().root.Resolve(path, "data_source");
    EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument) << path;
    EXPECT_THAT(p.status().message(), HasSubstr(why)) << path;
  };
  refused("../x", "leaves the data root");
  refused("a/../../x", "leaves the data root");
  refused("/etc/passwd", "is absolute");
  refused("", "empty path");
  refused(".", "the data root itself");
  refused(std::string("a\0b", 3), "NUL");
}

TEST_F(DataRootTest, RefusesSymbolicLinksPointingOutside) {
  Write("inside.csv", "a\n1\n");
  std::ofstream(base() / "outside.csv") << "secret\n";
  fs::create_directories(base() / "outdir");
  fs::create_symlink(base() / "outside.csv", root() / "link.csv");
  fs::create_directory_symlink(base() / "outdir", root() / "linkdir");
  fs::create_symlink(base() / "missing.csv", root() / "dangling.csv");
  fs::create_symlink(root() / "inside.csv", root() / "good_link.csv");
  for (const char* path : {"link.csv", "linkdir/x.csv", "dangling.csv"}) {
    Result<fs::path> p = ws().root.Resolve(path, "data_source");
    EXPECT_EQ(p.status().code(), Status::Code::kInvalidArgument) << path;
  }
  // A root whose name is a prefix of the target's folder is no container of it.
  fs::create_directories(base() / "rootx");
  fs::create_symlink(base() / "rootx", root() / "prefix");
  EXPECT_FALSE(ws().root.Resolve("prefix/f.csv", "f").ok());
  // A link that stays inside is fine; it resolves to its target.
  Result<fs::path> good = ws().root.Resolve("good_link.csv", "data_source");
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(*good, root() / "inside.csv");
}

TEST_F(DataRootTest, OpenCreatesTheRootAndRefusesAFile) {
  Result<DataRoot> created = DataRoot::Open(base() / "new" / "nested");
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(fs::is_directory(base() / "new" / "nested"));
  std::ofstream(base() / "plain") << "x";
  EXPECT_EQ(DataRoot::Open(base() / "plain").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(DataRoot::Open("").status().code(), Status::Code::kInvalidArgument);
}

TEST_F(DataRootTest, AtomicFileIsInvisibleUntilCommitted) {
  const fs::path target = root() / "out" / "result.csv";
  {
    Result<std::unique_ptr<AtomicFile>> f = AtomicFile::Create(target, "out/result.csv");
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Append("a,b\n").ok());
    EXPECT_FALSE(fs::exists(target));
    EXPECT_TRUE(IsTempFileName((*f)->temp_path().filename().string()));
    EXPECT_EQ(TempFiles().size(), 1u);
    ASSERT_TRUE((*f)->Commit().ok());
  }
  EXPECT_EQ(Read("out/result.csv"), "a,b\n");
  EXPECT_TRUE(TempFiles().empty());
}

TEST_F(DataRootTest, AnAbandonedAtomicFileLeavesNothing) {
  Write("keep.csv", "old\n");
  {
    Result<std::unique_ptr<AtomicFile>> f = AtomicFile::Create(root() / "keep.csv", "keep.csv");
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Append(std::string(1 << 17, 'x')).ok());  // past the buffer: on disk
  }
  EXPECT_EQ(Read("keep.csv"), "old\n");
  EXPECT_TRUE(TempFiles().empty());
}

TEST_F(DataRootTest, TempFileNames) {
  EXPECT_TRUE(IsTempFileName(".a.csv.bmos-tmp-0123456789abcdef"));
  EXPECT_FALSE(IsTempFileName("a.csv.bmos-tmp-0123456789abcdef"));  // not hidden
  EXPECT_FALSE(IsTempFileName(".a.csv.bmos-tmp-0123"));
  EXPECT_FALSE(IsTempFileName(".a.csv"));
}

TEST_F(DataRootTest, FingerprintHashesTheContent) {
  Write("f.csv", "a,b\n1,2\n");
  Result<FileFingerprint> fp = FingerprintFile(root() / "f.csv", "f.csv", nullptr);
  ASSERT_TRUE(fp.ok());
  Fnv1a64 h;
  h.Update("a,b\n1,2\n");
  EXPECT_EQ(fp->hash, h.ToString());
  EXPECT_EQ(fp->size, 8u);
  EXPECT_EQ(StatFile(root() / "nope", "nope").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(FingerprintFile(root() / "f.csv", "f.csv", [] { return true; }).status().code(),
            Status::Code::kCancelled);
}

}  // namespace
}  // namespace bmos::engine::handlers
