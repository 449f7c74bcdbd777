#include "storage/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace bmos::storage {
namespace {

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kOk);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_EQ(s, Status::Ok());
}

TEST(Status, ToStringHasCodeAndMessage) {
  EXPECT_EQ(Status::NotFound("task x not found").ToString(), "NotFound: task x not found");
  EXPECT_EQ(Status::InvalidArgument("bad").ToString(), "InvalidArgument: bad");
  EXPECT_EQ(Status::Internal("").ToString(), "Internal");
}

TEST(Status, EveryFactorySetsItsCode) {
  struct Case {
    Status status;
    Status::Code code;
    std::string_view name;
  };
  const Case cases[] = {
      {Status::InvalidArgument("m"), Status::Code::kInvalidArgument, "InvalidArgument"},
      {Status::NotFound("m"), Status::Code::kNotFound, "NotFound"},
      {Status::FailedPrecondition("m"), Status::Code::kFailedPrecondition, "FailedPrecondition"},
      {Status::Unavailable("m"), Status::Code::kUnavailable, "Unavailable"},
      {Status::DeadlineExceeded("m"), Status::Code::kDeadlineExceeded, "DeadlineExceeded"},
      {Status::Cancelled("m"), Status::Code::kCancelled, "Cancelled"},
      {Status::IOError("m"), Status::Code::kIOError, "IOError"},
      {Status::Corruption("m"), Status::Code::kCorruption, "Corruption"},
      {Status::NotSupported("m"), Status::Code::kNotSupported, "NotSupported"},
      {Status::Internal("m"), Status::Code::kInternal, "Internal"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(c.status.ok());
    EXPECT_EQ(c.status.code(), c.code);
    EXPECT_EQ(c.status.message(), "m");
    EXPECT_EQ(CodeName(c.code), c.name);
    EXPECT_EQ(c.status.ToString(), std::string(c.name) + ": m");
  }
  EXPECT_EQ(CodeName(Status::Code::kOk), "OK");
}

TEST(Status, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(Status::NotFound("a"), Status::NotFound("a"));
  EXPECT_FALSE(Status::NotFound("a") == Status::NotFound("b"));
  EXPECT_FALSE(Status::NotFound("a") == Status::Internal("a"));
}

TEST(Result, HoldsValue) {
  Result<std::string> r(std::string("hello"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(*r, "hello");
  EXPECT_EQ(r->size(), 5u);
  std::string moved = std::move(r).value();
  EXPECT_EQ(moved, "hello");
}

TEST(Result, HoldsError) {
  Result<int> r(Status::NotFound("nope"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status(), Status::NotFound("nope"));
}

TEST(Result, HoldsMoveOnlyValue) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace bmos::storage
