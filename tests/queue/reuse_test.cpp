// Retired messages give their files to later ones (free/), so steady delivery does
// not allocate inodes; a reused file holds exactly the new message.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "queue_test_util.hpp"

namespace tlsrelay::queue::test {
namespace {

ino_t inode_of(const std::filesystem::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(Reuse, RetiredFileCarriesTheNextMessage) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::string big = binary_content(200000, 7);
    std::string first = commit_message(*r.spool, big, sample_envelope());
    ASSERT_FALSE(first.empty());
    ino_t inode = inode_of(dir.path / "messages" / first);
    ASSERT_FALSE(r.spool->retire(first));
    EXPECT_TRUE(files_in(dir.path / "messages").empty());
    EXPECT_EQ(files_in(dir.path / "free").size(), 1u);

    std::string second = commit_message(*r.spool, "short\r\n", sample_envelope());
    ASSERT_FALSE(second.empty());
    EXPECT_EQ(inode_of(dir.path / "messages" / second), inode) << "the spent file was reused";
    EXPECT_TRUE(files_in(dir.path / "free").empty());
    EXPECT_EQ(r.spool->content(second), "short\r\n");  // nothing of the old 200 kB remains

    auto reopened = open_ok(dir.path);  // a valid message, no notes, nothing corrupt
    EXPECT_TRUE(reopened.notes.empty());
    EXPECT_EQ(reopened.spool->list().size(), 1u);
}

TEST(Reuse, FreeFilesSurviveARestartAndAreNeverMessages) {
    TempDir dir;
    {
        auto r = open_ok(dir.path);
        std::vector<std::string> ids;
        for (int i = 0; i < 3; ++i) ids.push_back(commit_message(*r.spool, "x\r\n", sample_envelope()));
        for (const auto& id : ids) ASSERT_FALSE(r.spool->retire(id));
    }
    auto r = open_ok(dir.path);
    EXPECT_TRUE(r.spool->list().empty());
    EXPECT_EQ(files_in(dir.path / "free").size(), 3u);
    std::string id = commit_message(*r.spool, "y\r\n", sample_envelope());
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(files_in(dir.path / "free").size(), 2u);
    EXPECT_EQ(r.spool->content(id), "y\r\n");
}

TEST(Reuse, ASpentFileStillLockedIsLeftAndAFreshOneMade) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::string first = commit_message(*r.spool, "x\r\n", sample_envelope());
    ASSERT_FALSE(r.spool->retire(first));
    auto free_files = files_in(dir.path / "free");
    ASSERT_EQ(free_files.size(), 1u);
    int holder = ::open((dir.path / "free" / free_files[0]).c_str(), O_RDONLY);
    ASSERT_GE(holder, 0);
    ASSERT_EQ(::flock(holder, LOCK_EX), 0);  // e.g. a reader that has not let go yet
    std::string second = commit_message(*r.spool, "y\r\n", sample_envelope());
    ::close(holder);
    ASSERT_FALSE(second.empty()) << "the message must not fail because a spent file is busy";
    EXPECT_EQ(r.spool->content(second), "y\r\n");
    EXPECT_TRUE(files_in(dir.path / "tmp").empty());
}

}  // namespace
}  // namespace tlsrelay::queue::test

namespace tlsrelay::queue::test {
namespace {

// Run as root (as CI does): a state file written by root keeps the spool owner's uid.
TEST(Ownership, StateWrittenByRootBelongsToTheSpoolOwner) {
    if (::geteuid() != 0) GTEST_FAIL() << "this test needs root, as the test suite runs";
    TempDir dir;
    auto r = open_ok(dir.path);
    std::string id = commit_message(*r.spool, "x\r\n", sample_envelope());
    ASSERT_EQ(::chown((dir.path / "state").c_str(), 65534, 65534), 0);
    ASSERT_FALSE(r.spool->set_held(id, true));
    struct stat st {};
    ASSERT_EQ(::stat((dir.path / "state" / id).c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 65534u);
    EXPECT_EQ(st.st_gid, 65534u);
}

}  // namespace
}  // namespace tlsrelay::queue::test
