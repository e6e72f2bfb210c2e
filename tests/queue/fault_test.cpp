// A failing write, fsync, close, rename or link at any point of a commit, of a named
// draft (tmp/<ID>) or an anonymous one (O_TMPFILE), gives an error and leaves nothing
// of the message behind (spec 5.G items 55-56); a failing state update
// leaves the previous state whole. Faults come through the FileOps seam.
#include <cstdio>
#include <utility>

#include "queue/format.hpp"
#include "queue_test_util.hpp"

namespace tlsrelay::queue::test {
namespace {

struct FaultCase {
    const char* name;
    Faults::Kind kind;
    int error;
    int min_calls;  // a commit of the test message makes at least this many calls
    enum Drafts { both, named, anonymous } drafts = both;
};

const FaultCase fault_cases[] = {
    {"write ENOSPC", Faults::write, ENOSPC, 4},
    {"write EIO", Faults::write, EIO, 4},
    {"fsync EIO", Faults::fsync, EIO, 2},  // the file, then messages/
    {"close EIO", Faults::close, EIO, 1},
    {"rename EIO", Faults::rename, EIO, 1, FaultCase::named},
    {"rename ENOSPC", Faults::rename, ENOSPC, 1, FaultCase::named},
    {"link EIO", Faults::link, EIO, 1, FaultCase::anonymous},
    {"link ENOSPC", Faults::link, ENOSPC, 1, FaultCase::anonymous},
};

// Appends and commits; returns the first error.
std::error_code try_commit(Spool& spool, const std::string& content, std::string& id) {
    std::error_code ec;
    auto draft = spool.begin(ec);
    if (!draft) return ec;
    for (std::size_t i = 0; i < content.size() && !ec; i += 1000)
        ec = draft->append(std::string_view(content).substr(i, 1000));
    if (!ec) ec = draft->commit(sample_envelope());
    if (!ec) id = draft->id();
    return ec;
}

// Arms the fault at call 1, 2, ... until the commit no longer reaches it; returns
// that call number.
int fail_each_call_in_turn(const FaultCase& c, bool named, const std::string& content) {
    for (int n = 1; n < 50; ++n) {
        SCOPED_TRACE(std::string(c.name) + (named ? " (named draft)" : " (anonymous draft)") +
                     " at call " + std::to_string(n));
        TempDir dir;
        Faults faults;
        faults.named_drafts = named;
        auto r = open_spool(dir.path, faults.ops());
        EXPECT_TRUE(r.spool);
        if (!r.spool) return 0;
        faults.arm(c.kind, n, c.error);
        std::string id;
        std::error_code ec = try_commit(*r.spool, content, id);
        if (!ec) {
            EXPECT_EQ(r.spool->content(id), content);
            return n;
        }
        EXPECT_EQ(ec.value(), c.error);
        EXPECT_TRUE(files_in(dir.path / "messages").empty());
        EXPECT_TRUE(files_in(dir.path / "tmp").empty());
        EXPECT_TRUE(r.spool->list().empty());
        auto again = open_ok(dir.path);
        EXPECT_TRUE(again.notes.empty());
        EXPECT_TRUE(again.spool->list().empty());
    }
    ADD_FAILURE() << c.name << ": still failing at call 50";
    return 0;
}

TEST(Faults, FailureAtTheNthCallLeavesNothing) {
    const std::string content = binary_content(3 * format::chunk_size + 5000);
    const bool anonymous = anonymous_files_work();  // else every draft is named
    for (const auto& c : fault_cases) {
        for (bool named : {false, true}) {
            if (c.drafts == (named ? FaultCase::anonymous : FaultCase::named)) continue;
            if (c.drafts == FaultCase::anonymous && !anonymous) continue;
            EXPECT_GT(fail_each_call_in_turn(c, named, content), c.min_calls)
                << c.name << (named ? " (named draft)" : " (anonymous draft)");
        }
    }
}

// The commit through ops fails with EIO and leaves no name in messages/ or tmp/.
void expect_failed_commit_undone(const FileOps& ops) {
    TempDir dir;
    auto r = open_spool(dir.path, ops);
    ASSERT_TRUE(r.spool);
    std::string id;
    EXPECT_EQ(try_commit(*r.spool, "x", id), std::errc::io_error);
    EXPECT_TRUE(files_in(dir.path / "messages").empty());
    EXPECT_TRUE(files_in(dir.path / "tmp").empty());
}

TEST(Faults, RenameThatHappenedButReportedFailureIsUndone) {
    FileOps ops = system_file_ops();
    FileOps real = ops;
    ops.rename = [real](const char* a, const char* b, bool noreplace) {
        real.rename(a, b, noreplace);
        errno = EIO;
        return -1;
    };
    ops.link = [](int, const char*) {  // named drafts
        errno = EPERM;
        return -1;
    };
    expect_failed_commit_undone(ops);
}

TEST(Faults, LinkThatHappenedButReportedFailureIsUndone) {
    if (!anonymous_files_work()) GTEST_SKIP() << "no O_TMPFILE or /proc here: drafts are named";
    FileOps ops = system_file_ops();
    FileOps real = ops;
    bool probed = false;  // the first link is the spool's probe at open
    ops.link = [real, &probed](int fd, const char* to) {
        real.link(fd, to);
        if (!std::exchange(probed, true)) return 0;
        errno = EIO;
        return -1;
    };
    expect_failed_commit_undone(ops);
}

// Where linking by descriptor is refused after the spool was opened (/proc gone, say),
// that one commit fails and the next drafts are named tmp/<ID>.
TEST(Faults, RefusedLinkFailsOneCommitAndLaterDraftsAreNamed) {
    if (!anonymous_files_work()) GTEST_SKIP() << "no O_TMPFILE or /proc here: drafts are named";
    TempDir dir;
    Faults faults;
    auto r = open_spool(dir.path, faults.ops());
    ASSERT_TRUE(r.spool);
    faults.named_drafts = true;
    std::string id;
    EXPECT_EQ(try_commit(*r.spool, "x", id), std::errc::operation_not_permitted);
    std::error_code ec;
    auto draft = r.spool->begin(ec);
    ASSERT_TRUE(draft);
    EXPECT_EQ(files_in(dir.path / "tmp"), std::vector<std::string>{draft->id()});
    EXPECT_FALSE(draft->commit(sample_envelope()));
    EXPECT_EQ(r.spool->list().size(), 1u);
}

TEST(Faults, ShortWritesAreCompleted) {
    TempDir dir;
    FileOps ops = system_file_ops();
    FileOps real = ops;
    ops.write = [real](int fd, const void* p, std::size_t n) {
        return real.write(fd, p, std::min<std::size_t>(n, 7));
    };
    auto r = open_spool(dir.path, ops);
    ASSERT_TRUE(r.spool);
    std::string content = binary_content(format::chunk_size + 10);
    std::string id;
    ASSERT_FALSE(try_commit(*r.spool, content, id));
    EXPECT_EQ(open_ok(dir.path).spool->content(id), content);
}

TEST(Faults, FailedStateUpdateKeepsThePreviousState) {
    // Delivery progress is not fsynced (queue.hpp), so only these calls can fail it.
    for (Faults::Kind kind : {Faults::write, Faults::close, Faults::rename}) {
        SCOPED_TRACE(kind);
        TempDir dir;
        Faults faults;
        auto r = open_spool(dir.path, faults.ops());
        std::string id = commit_message(*r.spool, "x", sample_envelope());
        Envelope e = *r.spool->envelope(id);
        e.recipients[0].attempts = 1;
        ASSERT_FALSE(r.spool->update(e));
        faults.arm(kind, 1, EIO);
        e.recipients[0].attempts = 2;
        EXPECT_EQ(r.spool->update(e), std::errc::io_error);
        EXPECT_FALSE(r.spool->set_held(id, true));  // the next update works again
        auto reopened = open_ok(dir.path);
        EXPECT_TRUE(reopened.notes.empty());
        auto got = reopened.spool->envelope(id);
        ASSERT_TRUE(got);
        EXPECT_EQ(got->recipients[0].attempts, 1u);
        EXPECT_TRUE(got->held);
        EXPECT_EQ(files_in(dir.path / "state"), std::vector<std::string>{id});
    }
}

}  // namespace
}  // namespace tlsrelay::queue::test
