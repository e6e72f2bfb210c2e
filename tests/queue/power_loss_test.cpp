// Crash consistency of the spool, simulated at its syscall seam (queue/file_ops.hpp):
// power loss after each acknowledged commit, in the way LazyFS's "forget unsynced data"
// models it (checklist item 54; dm-flakey and LazyFS are not usable here), and a
// process killed at every syscall of a recipient-status update (item 59).
#include <sys/stat.h>
#include <unistd.h>

#include <limits>
#include <map>
#include <set>

#include "queue_test_util.hpp"

namespace tlsrelay::queue::test {
namespace {

namespace fs = std::filesystem;

// What the disk holds for sure: a file's bytes as of its last fsync (by inode, so a
// rename carries them along) and a directory's entries as of its last fsync. Anything
// else (written, created or renamed but not yet synced) is lost at a power cut.
class DurableModel {
public:
    explicit DurableModel(fs::path root) : root_(std::move(root)) {
        for (const auto& e : fs::recursive_directory_iterator(root_))  // what open_spool left: synced
            if (e.is_directory()) snapshot_dir(e.path());
            else snapshot_file(e.path());
        snapshot_dir(root_);
    }

    FileOps ops() {
        FileOps real = system_file_ops(), ops = real;
        ops.fsync = [this, real](int fd) {
            int rc = real.fsync(fd);
            if (rc == 0) synced(fd);
            return rc;
        };
        return ops;
    }

    // The spool as a power cut now would leave it, built in `into`.
    void crash_copy(const fs::path& into) const { copy_dir(root_, into); }

private:
    struct Entry {
        ino_t inode;
        bool dir;
    };

    // By descriptor: a draft may be an anonymous file (O_TMPFILE) with no name yet.
    void synced(int fd) {
        fs::path self = "/proc/self/fd/" + std::to_string(fd);
        struct stat st {};
        ASSERT_EQ(::fstat(fd, &st), 0) << fd;
        if (!S_ISDIR(st.st_mode)) {
            data_[st.st_ino] = read_bytes(self);  // opens the file itself, named or not
            return;
        }
        std::error_code ec;
        fs::path path = fs::read_symlink(self, ec);
        ASSERT_FALSE(ec) << fd;
        snapshot_dir(path);
    }
    void snapshot_file(const fs::path& path) {
        struct stat st {};
        ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
        data_[st.st_ino] = read_bytes(path);
    }
    void snapshot_dir(const fs::path& path) {
        auto& entries = dirs_[path];
        entries.clear();
        for (const auto& e : fs::directory_iterator(path)) {
            struct stat st {};
            if (::lstat(e.path().c_str(), &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)))
                entries[e.path().filename()] = {st.st_ino, S_ISDIR(st.st_mode)};
        }
    }
    void copy_dir(const fs::path& from, const fs::path& to) const {
        fs::create_directories(to);
        auto it = dirs_.find(from);
        if (it == dirs_.end()) return;  // created but never synced: empty after the cut
        for (const auto& [name, entry] : it->second) {
            if (entry.dir) {
                copy_dir(from / name, to / name);
                continue;
            }
            auto bytes = data_.find(entry.inode);
            write_bytes(to / name, bytes == data_.end() ? std::string() : bytes->second);
        }
    }

    fs::path root_;
    std::map<ino_t, std::string> data_;
    std::map<fs::path, std::map<fs::path, Entry>> dirs_;
};

// After every 250 (a commit that returned), a power cut keeps every message
// acknowledged so far, whole; this is what a missing directory fsync would break.
// named: drafts are tmp/<ID> (linking refused), else anonymous files linked at the commit.
void every_acknowledged_message_survives(bool named) {
    TempDir dir;
    open_ok(dir.path);  // create the layout, then watch from a clean start
    DurableModel model(dir.path);
    FileOps ops = model.ops();
    if (named) {
        ops.link = [](int, const char*) {
            errno = EPERM;
            return -1;
        };
    }
    auto r = open_spool(dir.path, ops);
    ASSERT_TRUE(r.spool) << r.error;
    std::map<std::string, std::string> acknowledged;
    for (unsigned n = 0; n < 6; ++n) {
        std::string content = binary_content(n % 2 ? 300000 + n : 10 + n * 1000, n + 1);
        std::string id = commit_message(*r.spool, content, sample_envelope(), n % 3 ? 4096 : 100000);
        ASSERT_FALSE(id.empty());
        acknowledged[id] = content;
        TempDir after;
        model.crash_copy(after.path);
        auto reopened = open_ok(after.path);
        ASSERT_TRUE(reopened.spool);
        EXPECT_TRUE(files_in(after.path / "corrupt").empty()) << "after message " << n;
        auto listed = reopened.spool->list();
        EXPECT_EQ(listed.size(), acknowledged.size()) << "after message " << n;
        for (const auto& [aid, bytes] : acknowledged) {
            auto got = reopened.spool->content(aid);
            ASSERT_TRUE(got) << aid << " lost by a power cut after message " << n;
            EXPECT_TRUE(*got == bytes) << aid;
        }
    }
}

TEST(PowerLoss, EveryAcknowledgedMessageSurvivesLosingUnsyncedData) {
    every_acknowledged_message_survives(false);
}

TEST(PowerLoss, EveryAcknowledgedNamedDraftSurvivesLosingUnsyncedData) {
    every_acknowledged_message_survives(true);
}

// The model itself: data that was never fsynced is what a cut loses.
TEST(PowerLoss, ModelForgetsUnsyncedData) {
    TempDir dir;
    fs::create_directories(dir.path / "d");
    write_bytes(dir.path / "d" / "old", "synced");
    DurableModel model(dir.path);
    write_bytes(dir.path / "d" / "new", "never synced");
    write_bytes(dir.path / "d" / "old", "rewritten, not synced");
    TempDir after;
    model.crash_copy(after.path);
    EXPECT_EQ(files_in(after.path / "d"), std::vector<std::string>{"old"});
    EXPECT_EQ(read_bytes(after.path / "d" / "old"), "synced");
}

// A FileOps in which the process "dies" at call number `die_at`: that call and every
// later one does nothing (a write first puts half its bytes down), as after kill -9.
struct Killer {
    int calls = 0;
    int die_at = std::numeric_limits<int>::max();  // armed by the test
    bool died = false;
    bool dead() {
        if (++calls >= die_at) died = true;
        if (died) errno = EIO;
        return died;
    }
    FileOps ops() {
        FileOps real = system_file_ops(), ops;
        ops.write = [this, real](int fd, const void* p, std::size_t n) -> ssize_t {
            if (!dead()) return real.write(fd, p, n);
            if (calls == die_at && n > 1) real.write(fd, p, n / 2);
            return -1;
        };
        ops.fsync = [this, real](int fd) { return dead() ? -1 : real.fsync(fd); };
        ops.close = [this, real](int fd) {
            real.close(fd);  // the kernel closes a dead process's descriptors
            return dead() ? -1 : 0;
        };
        ops.rename = [this, real](const char* a, const char* b, bool nr) { return dead() ? -1 : real.rename(a, b, nr); };
        ops.link = [this, real](int fd, const char* to) { return dead() ? -1 : real.link(fd, to); };
        return ops;
    }
};

// kill -9 at each syscall of a status update in turn: the spool reopens clean and
// each recipient shows either its state before the update or after it.
TEST(KillDuringUpdate, EveryRecipientIsBeforeOrAfterAtEveryCall) {
    for (int die_at = 1;; ++die_at) {
        SCOPED_TRACE(die_at);
        TempDir dir;
        Killer killer;
        std::string id;
        {
            auto r = open_spool(dir.path, killer.ops());
            ASSERT_TRUE(r.spool);
            id = commit_message(*r.spool, "body\r\n", sample_envelope({"a@example.org", "b@example.org"}));
            ASSERT_FALSE(id.empty());
            Envelope e = *r.spool->envelope(id);
            killer.calls = 0;
            killer.die_at = die_at;
            e.recipients[0].state = RecipientState::sent;
            e.recipients[1].attempts = 3;
            r.spool->update(e);
        }
        auto reopened = open_ok(dir.path);
        EXPECT_TRUE(files_in(dir.path / "corrupt").empty());
        auto got = reopened.spool->envelope(id);
        ASSERT_TRUE(got) << "the message itself must survive";
        const bool before = got->recipients[0].state == RecipientState::pending && got->recipients[1].attempts == 0;
        const bool after = got->recipients[0].state == RecipientState::sent && got->recipients[1].attempts == 3;
        EXPECT_TRUE(before || after) << "a half-applied update";
        if (!killer.died) {  // the update ran to its end before call die_at: every point was hit
            EXPECT_TRUE(after);
            EXPECT_GT(die_at, 1);
            break;
        }
    }
}

}  // namespace
}  // namespace tlsrelay::queue::test
