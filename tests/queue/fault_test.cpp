// A failing write, fsync, close or rename at any point of a commit gives an error and
// leaves nothing of the message behind (spec 5.G items 55-56); a failing state update
// leaves the previous state whole. Faults come through the FileOps seam.
#include <cstdio>

#include "queue/format.hpp"
#include "queue_test_util.hpp"

namespace tlsrelay::queue::test {
namespace {

struct FaultCase {
    const char* name;
    Faults::Kind kind;
    int error;
    int min_calls;  // a commit of the test message makes at least this many calls
};

const FaultCase fault_cases[] = {
    {"write ENOSPC", Faults::write, ENOSPC, 4},
    {"write EIO", Faults::write, EIO, 4},
    {"fsync EIO", Faults::fsync, EIO, 2},  // the file, then messages/
    {"close EIO", Faults::close, EIO, 1},
    {"rename EIO", Faults::rename, EIO, 1},
    {"rename ENOSPC", Faults::rename, ENOSPC, 1},
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

TEST(Faults, FailureAtTheNthCallLeavesNothing) {
    const std::string content = binary_content(3 * format::chunk_size + 5000);
    for (const auto& c : fault_cases) {
        int n = 1;
        for (;; ++n) {
            SCOPED_TRACE(std::string(c.name) + " at call " + std::to_string(n));
            ASSERT_LT(n, 50);
            TempDir dir;
            Faults faults;
            auto r = open_spool(dir.path, faults.ops());
            ASSERT_TRUE(r.spool);
            faults.arm(c.kind, n, c.error);
            std::string id;
            std::error_code ec = try_commit(*r.spool, content, id);
            if (!ec) {
                EXPECT_EQ(r.spool->content(id), content);
                break;
            }
            EXPECT_EQ(ec.value(), c.error);
            EXPECT_TRUE(files_in(dir.path / "messages").empty());
            EXPECT_TRUE(files_in(dir.path / "tmp").empty());
            EXPECT_TRUE(r.spool->list().empty());
            auto again = open_ok(dir.path);
            EXPECT_TRUE(again.notes.empty());
            EXPECT_TRUE(again.spool->list().empty());
        }
        EXPECT_GT(n, c.min_calls) << c.name;
    }
}

TEST(Faults, RenameThatHappenedButReportedFailureIsUndone) {
    TempDir dir;
    FileOps ops = system_file_ops();
    FileOps real = ops;
    ops.rename = [real](const char* a, const char* b, bool noreplace) {
        real.rename(a, b, noreplace);
        errno = EIO;
        return -1;
    };
    auto r = open_spool(dir.path, ops);
    ASSERT_TRUE(r.spool);
    std::string id;
    EXPECT_EQ(try_commit(*r.spool, "x", id), std::errc::io_error);
    EXPECT_TRUE(files_in(dir.path / "messages").empty());
    EXPECT_TRUE(files_in(dir.path / "tmp").empty());
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
