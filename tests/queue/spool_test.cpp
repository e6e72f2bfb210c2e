// The spool's contract: a committed message comes back exactly once, byte for byte,
// after a restart; drafts leave nothing; delivery state is durable and shared safely.
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "queue/format.hpp"
#include "queue_test_util.hpp"

namespace tlsrelay::queue::test {
namespace {

void expect_same_envelope(const Envelope& got, const Envelope& want) {
    EXPECT_EQ(got.sender, want.sender);
    EXPECT_EQ(got.client, want.client);
    EXPECT_EQ(got.helo, want.helo);
    EXPECT_EQ(got.smtputf8, want.smtputf8);
    EXPECT_EQ(got.eight_bit, want.eight_bit);
    EXPECT_EQ(got.held, want.held);
    ASSERT_EQ(got.recipients.size(), want.recipients.size());
    for (std::size_t i = 0; i < got.recipients.size(); ++i)
        EXPECT_EQ(got.recipients[i].address, want.recipients[i].address);
}

struct RoundTrip {
    const char* name;
    std::string content;
    std::size_t piece;
    Envelope envelope;
};

std::vector<RoundTrip> round_trips() {
    Envelope odd = sample_envelope({"a@x", "b\r\nRCPT TO:<evil@x>", std::string("c\0d@x", 5)});
    odd.sender = "";
    odd.helo = "bad\nhelo\0", odd.smtputf8 = true, odd.eight_bit = true, odd.held = true;
    odd.arrival_us = 1234567890123456;
    return {
        {"empty", "", 1000, sample_envelope()},
        {"one line", "Subject: hi\r\n\r\nhello\r\n", 1000, sample_envelope()},
        {"nul bytes", std::string("a\0b\0\0c\r\n", 8), 1, sample_envelope()},
        {"binary", binary_content(5000), 7, sample_envelope({"x@y", "z@w"})},
        {"exactly one chunk", binary_content(format::chunk_size, 2), 4096, sample_envelope()},
        {"several chunks", binary_content(3 * format::chunk_size + 17, 3), 65537, sample_envelope()},
        {"one big append", binary_content(200000, 4), 200000, sample_envelope()},
        {"odd envelope", "x", 1, odd},
    };
}

TEST(Spool, CommitThenReopenFindsMessageExactlyOnce) {
    for (const auto& c : round_trips()) {
        SCOPED_TRACE(c.name);
        TempDir dir;
        std::string id;
        {
            auto r = open_ok(dir.path);
            id = commit_message(*r.spool, c.content, c.envelope, c.piece);
            ASSERT_FALSE(id.empty());
        }
        auto r = open_ok(dir.path);
        EXPECT_TRUE(r.notes.empty());
        auto all = r.spool->list();
        ASSERT_EQ(all.size(), 1u);
        EXPECT_EQ(all[0].id, id);
        EXPECT_EQ(all[0].size, c.content.size());
        if (c.envelope.arrival_us) {
            EXPECT_EQ(all[0].arrival_us, c.envelope.arrival_us);
        }
        expect_same_envelope(all[0], c.envelope);
        auto content = r.spool->content(id);
        ASSERT_TRUE(content);
        EXPECT_TRUE(*content == c.content);
        EXPECT_TRUE(files_in(dir.path / "tmp").empty());
        EXPECT_TRUE(files_in(dir.path / "corrupt").empty());
    }
}

// A draft is an anonymous file (O_TMPFILE) where the file system and /proc allow it,
// else tmp/<ID>; either way nothing of it stays when it is dropped.
TEST(Spool, DestroyedDraftLeavesNothing) {
    for (bool named : {false, true}) {
        SCOPED_TRACE(named ? "named drafts" : "anonymous drafts");
        const bool in_tmp = named || !anonymous_files_work();
        TempDir dir;
        Faults faults;
        faults.named_drafts = named;
        auto r = open_spool(dir.path, faults.ops());
        ASSERT_TRUE(r.spool);
        for (std::size_t size : {0ul, 10ul, 300000ul}) {
            std::error_code ec;
            auto draft = r.spool->begin(ec);
            ASSERT_TRUE(draft) << ec.message();
            EXPECT_EQ(files_in(dir.path / "tmp").size(), in_tmp ? 1u : 0u);
            EXPECT_FALSE(draft->append(binary_content(size)));
            draft.reset();
            EXPECT_TRUE(files_in(dir.path / "tmp").empty());
            EXPECT_TRUE(files_in(dir.path / "messages").empty());
        }
    }
}

TEST(Spool, CommitNeedsARecipientAndHappensOnce) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::error_code ec;
    auto draft = r.spool->begin(ec);
    EXPECT_TRUE(draft->commit(Envelope{}));
    EXPECT_TRUE(files_in(dir.path / "tmp").empty());
    draft = r.spool->begin(ec);
    EXPECT_FALSE(draft->commit(sample_envelope()));
    EXPECT_TRUE(draft->commit(sample_envelope()));
    EXPECT_TRUE(draft->append("x"));
    EXPECT_EQ(r.spool->list().size(), 1u);
}

TEST(Spool, ReopenDeletesTmpLeftoversButNotLiveDrafts) {
    for (bool named : {false, true}) {
        SCOPED_TRACE(named ? "named draft" : "anonymous draft");
        const bool in_tmp = named || !anonymous_files_work();
        TempDir dir;
        Faults faults;
        faults.named_drafts = named;
        auto a = open_spool(dir.path, faults.ops());
        ASSERT_TRUE(a.spool);
        std::error_code ec;
        auto live = a.spool->begin(ec);
        ASSERT_TRUE(live);
        write_bytes(dir.path / "tmp" / "0123456789ABCD", "half a message");
        write_bytes(dir.path / "tmp" / "junk", "");
        auto b = open_ok(dir.path);  // e.g. the CLI while the daemon receives
        EXPECT_EQ(b.notes.size(), 2u);
        std::vector<std::string> drafts;
        if (in_tmp) drafts.push_back(live->id());
        EXPECT_EQ(files_in(dir.path / "tmp"), drafts);
        EXPECT_FALSE(live->append("still here\r\n"));
        EXPECT_FALSE(live->commit(sample_envelope()));
        EXPECT_EQ(b.spool->list().size(), 1u);
    }
}

TEST(Spool, UpdateRoundTripsRecipientStatesAndSurvivesReopen) {
    TempDir dir;
    std::string id;
    Envelope want;
    {
        auto r = open_ok(dir.path);
        id = commit_message(*r.spool, "body\r\n", sample_envelope({"a@x", "b@x", "c@x"}));
        want = *r.spool->envelope(id);
        for (const auto& rc : want.recipients) EXPECT_EQ(rc.state, RecipientState::pending);
        want.recipients[0] = {"a@x", RecipientState::sent, 1, 0, "2.0.0", "250 ok"};
        want.recipients[1] = {"b@x", RecipientState::deferred, 3, 1700000000, "4.7.5",
                              std::string("cert\r\nnot\0verified", 18)};
        want.recipients[2] = {"c@x", RecipientState::bounced, 2, 0, "5.1.1", "no such user"};
        ASSERT_FALSE(r.spool->update(want));
        EXPECT_EQ(files_in(dir.path / "state"), std::vector<std::string>{id});
    }
    auto r = open_ok(dir.path);
    EXPECT_TRUE(r.notes.empty());
    auto got = r.spool->envelope(id);
    ASSERT_TRUE(got);
    for (std::size_t i = 0; i < 3; ++i) {
        const auto &g = got->recipients[i], &w = want.recipients[i];
        EXPECT_EQ(g.state, w.state);
        EXPECT_EQ(g.attempts, w.attempts);
        EXPECT_EQ(g.next_attempt, w.next_attempt);
        EXPECT_EQ(g.last_dsn, w.last_dsn);
        EXPECT_EQ(g.last_reason, w.last_reason);
    }
    Envelope other = want;
    other.recipients.pop_back();
    EXPECT_EQ(r.spool->update(other), std::errc::invalid_argument);
    other = want;
    other.id = "0123456789ABCD";
    EXPECT_TRUE(r.spool->update(other));
}

TEST(Spool, CorruptStateFileFallsBackToEnvelope) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::string id = commit_message(*r.spool, "x", sample_envelope({"a@x", "b@x"}));
    std::string other = commit_message(*r.spool, "y", sample_envelope({"a@x"}));
    Envelope e = *r.spool->envelope(id);
    e.recipients[0].state = RecipientState::sent;
    ASSERT_FALSE(r.spool->update(e));
    ASSERT_FALSE(r.spool->set_held(other, true));
    std::string good = read_bytes(dir.path / "state" / id);
    std::vector<std::pair<std::string, std::string>> cases = {
        {"garbage", "garbage"},
        {"empty", ""},
        {"another message's state", read_bytes(dir.path / "state" / other)},
    };
    for (std::size_t cut = 0; cut < good.size(); ++cut)
        cases.push_back({"truncated at " + std::to_string(cut), good.substr(0, cut)});
    for (std::size_t i = 0; i < good.size(); ++i) {
        std::string flipped = good;
        flipped[i] ^= 0x10;
        cases.push_back({"bit flip at " + std::to_string(i), flipped});
    }
    for (const auto& [name, bytes] : cases) {
        SCOPED_TRACE(name);
        write_bytes(dir.path / "state" / id, bytes);
        auto got = r.spool->envelope(id);
        ASSERT_TRUE(got);
        EXPECT_EQ(got->recipients[0].state, RecipientState::pending);
        EXPECT_EQ(got->recipients.size(), 2u);
    }
    write_bytes(dir.path / "state" / id, good);
    EXPECT_EQ(r.spool->envelope(id)->recipients[0].state, RecipientState::sent);
}

TEST(Spool, ReopenRemovesOrphanStateFiles) {
    TempDir dir;
    open_ok(dir.path);
    write_bytes(dir.path / "state" / "0123456789ABCD", "no message");
    write_bytes(dir.path / "state" / "0123456789ABCD.tmp", "half");
    write_bytes(dir.path / "state" / "junk", "");
    auto r = open_ok(dir.path);
    EXPECT_EQ(r.notes.size(), 3u);
    EXPECT_TRUE(files_in(dir.path / "state").empty());
}

TEST(Spool, SetHeldAndRemove) {
    TempDir dir;
    std::string id;
    {
        auto r = open_ok(dir.path);
        id = commit_message(*r.spool, "x", sample_envelope());
        EXPECT_FALSE(r.spool->envelope(id)->held);
        ASSERT_FALSE(r.spool->set_held(id, true));
        Envelope e = *r.spool->envelope(id);
        EXPECT_TRUE(e.held);
        e.held = false;  // a delivery's update must not release a hold
        e.recipients[0].attempts = 1;
        ASSERT_FALSE(r.spool->update(e));
        EXPECT_TRUE(r.spool->envelope(id)->held);
    }
    auto r = open_ok(dir.path);
    EXPECT_TRUE(r.spool->envelope(id)->held);
    ASSERT_FALSE(r.spool->set_held(id, false));
    EXPECT_FALSE(r.spool->envelope(id)->held);
    ASSERT_FALSE(r.spool->remove(id));
    EXPECT_TRUE(r.spool->list().empty());
    EXPECT_FALSE(r.spool->envelope(id));
    EXPECT_FALSE(r.spool->content(id));
    EXPECT_TRUE(files_in(dir.path / "messages").empty());
    EXPECT_TRUE(files_in(dir.path / "state").empty());
    EXPECT_EQ(r.spool->remove(id), std::errc::no_such_file_or_directory);
    EXPECT_EQ(r.spool->set_held(id, true), std::errc::no_such_file_or_directory);
    EXPECT_EQ(r.spool->set_held("../../etc/passwd", true), std::errc::no_such_file_or_directory);
}

TEST(Spool, LoadGivesStateAndContentFromOneRead) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::string body = binary_content(3 * format::chunk_size + 5, 7);
    std::string id = commit_message(*r.spool, body, sample_envelope({"a@x", "b@x"}));
    Envelope e = *r.spool->envelope(id);
    e.recipients[1] = {"b@x", RecipientState::deferred, 2, 1700000000, "4.4.1", "refused"};
    ASSERT_FALSE(r.spool->update(e));
    auto loaded = r.spool->load(id);
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->envelope.id, id);
    EXPECT_EQ(loaded->envelope.recipients[0].state, RecipientState::pending);
    EXPECT_EQ(loaded->envelope.recipients[1].state, RecipientState::deferred);
    EXPECT_EQ(loaded->envelope.recipients[1].attempts, 2u);
    EXPECT_EQ(loaded->envelope.recipients[1].last_reason, "refused");
    ASSERT_TRUE(loaded->content);
    EXPECT_EQ(*loaded->content, body);
    ASSERT_FALSE(r.spool->set_held(id, true));
    loaded = r.spool->load(id);
    ASSERT_TRUE(loaded);
    EXPECT_TRUE(loaded->envelope.held);
    EXPECT_FALSE(loaded->content);  // held: not read
    ASSERT_FALSE(r.spool->remove(id));
    EXPECT_FALSE(r.spool->load(id));
    EXPECT_FALSE(r.spool->load("../../etc/passwd"));
}

TEST(Spool, ListIsSortedByArrival) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::vector<std::string> ids;
    for (std::int64_t arrival : {300, 100, 200}) {
        Envelope e = sample_envelope();
        e.arrival_us = arrival;
        ids.push_back(commit_message(*r.spool, "x", e));
    }
    auto all = r.spool->list();
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].id, ids[1]);
    EXPECT_EQ(all[1].id, ids[2]);
    EXPECT_EQ(all[2].id, ids[0]);
}

TEST(Spool, IdsAreUniqueAcross10000Drafts) {
    TempDir dir;
    auto a = open_ok(dir.path);
    auto b = open_ok(dir.path);  // a second spool object stands in for a second process
    std::set<std::string> ids;
    std::vector<std::unique_ptr<Draft>> live;  // in batches, to stay within the fd limit
    for (int i = 0; i < 10000; ++i) {
        std::error_code ec;
        auto draft = (i % 2 ? a : b).spool->begin(ec);
        ASSERT_TRUE(draft) << ec.message();
        EXPECT_TRUE(is_queue_id(draft->id())) << draft->id();
        EXPECT_TRUE(ids.insert(draft->id()).second) << draft->id();
        live.push_back(std::move(draft));
        if (live.size() == 1000) live.clear();
    }
    live.clear();
    EXPECT_TRUE(files_in(dir.path / "tmp").empty());
}

TEST(Spool, QueueIdSyntax) {
    EXPECT_TRUE(is_queue_id("0123456789ABCD"));
    for (const char* bad : {"", "0123456789ABC", "0123456789ABCDE", "0123456789abcd",
                            "0123456789ABC/", "../../x/ABCDEF"})
        EXPECT_FALSE(is_queue_id(bad)) << bad;
}

// The first delivery progress is written straight into state/<id> (no temp file, no
// rename); later updates replace it whole with temp + rename. A first state torn by a
// crash reads as no progress at all.
TEST(Spool, FirstStateIsWrittenInPlaceLaterOnesReplaceIt) {
    TempDir dir;
    Faults counting;  // nothing armed: counts the renames
    auto r = open_spool(dir.path, counting.ops());
    ASSERT_TRUE(r.spool);
    std::string id = commit_message(*r.spool, "body\r\n", sample_envelope({"a@x", "b@x"}));
    Envelope e = *r.spool->envelope(id);
    int renames = counting.calls[Faults::rename];
    e.recipients[0] = {"a@x", RecipientState::deferred, 1, 1700000000, "4.4.1", "refused"};
    ASSERT_FALSE(r.spool->update(e));
    EXPECT_EQ(counting.calls[Faults::rename], renames);
    EXPECT_EQ(files_in(dir.path / "state"), std::vector<std::string>{id});
    EXPECT_EQ(r.spool->envelope(id)->recipients[0].attempts, 1u);
    e.recipients[0].attempts = 2;
    ASSERT_FALSE(r.spool->update(e));
    EXPECT_EQ(counting.calls[Faults::rename], renames + 1);
    EXPECT_EQ(r.spool->envelope(id)->recipients[0].attempts, 2u);

    std::string other = commit_message(*r.spool, "x", sample_envelope({"c@x"}));
    write_bytes(dir.path / "state" / other, "TLSRQSTA");  // a first state cut short
    auto got = r.spool->envelope(other);
    ASSERT_TRUE(got);
    EXPECT_EQ(got->recipients[0].state, RecipientState::pending);
    EXPECT_EQ(got->recipients[0].attempts, 0u);
}

TEST(Spool, ConcurrentCommitsFrom8ThreadsAreAllDurable) {
    TempDir dir;
    Faults counting;  // nothing armed: counts the directory fsyncs
    std::map<std::string, std::string> committed;
    std::mutex mutex;
    {
        auto r = open_spool(dir.path, counting.ops());
        ASSERT_TRUE(r.spool);
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < 25; ++i) {
                    std::string content = binary_content(100 + 997 * i, t * 100 + i);
                    std::string id = commit_message(*r.spool, content, sample_envelope());
                    EXPECT_FALSE(id.empty());
                    std::lock_guard lock(mutex);
                    committed[id] = content;
                }
            });
        }
        for (auto& t : threads) t.join();
    }
    EXPECT_LE(counting.calls[Faults::fsync], 2 * 200);
    auto r = open_ok(dir.path);
    EXPECT_TRUE(r.notes.empty());
    auto all = r.spool->list();
    ASSERT_EQ(all.size(), 200u);
    ASSERT_EQ(committed.size(), 200u);
    for (const auto& e : all) EXPECT_TRUE(r.spool->content(e.id) == committed[e.id]) << e.id;
}

// Group commit: each commit returns only after a messages/ fsync that started after its
// own rename finished, and slow directory fsyncs get shared between threads.
TEST(Spool, DirectoryFsyncIsSharedButAlwaysFollowsTheRename) {
    struct Sync {
        std::uint64_t start, end;
    };
    static std::atomic<std::uint64_t> clock{0};
    static thread_local std::uint64_t renamed_at = 0;
    std::mutex mutex;
    std::vector<Sync> dir_syncs;
    FileOps ops = system_file_ops(), real = ops;
    ops.rename = [real](const char* a, const char* b, bool noreplace) {
        int rc = real.rename(a, b, noreplace);
        renamed_at = ++clock;
        return rc;
    };
    ops.link = [real](int fd, const char* to) {  // an anonymous draft gets its name
        int rc = real.link(fd, to);
        renamed_at = ++clock;
        return rc;
    };
    ops.fsync = [&, real](int fd) {
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) return real.fsync(fd);
        std::uint64_t start = ++clock;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        int rc = real.fsync(fd);
        std::lock_guard lock(mutex);
        dir_syncs.push_back({start, ++clock});
        return rc;
    };
    TempDir dir;
    auto r = open_spool(dir.path, ops);
    ASSERT_TRUE(r.spool);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 5; ++i) {
                ASSERT_FALSE(commit_message(*r.spool, "x", sample_envelope()).empty());
                std::uint64_t returned = ++clock;
                std::lock_guard lock(mutex);
                EXPECT_TRUE(std::any_of(dir_syncs.begin(), dir_syncs.end(), [&](const Sync& s) {
                    return s.start > renamed_at && s.end < returned;
                }));
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_LT(dir_syncs.size(), 40u);
    EXPECT_EQ(r.spool->list().size(), 40u);
}

// A commit that finds the directory fsync busy leaves its callback with the thread
// running it and returns at once; that thread runs a second fsync (one that started
// after the second message got its name) and calls the callback. The first fsync is
// held by the test until the second commit has returned: were that commit waiting for
// it, it would not return, and the test fails after 20 s instead of hanging.
TEST(Spool, CommitJoiningARunningDirectoryFsyncDoesNotWaitForIt) {
    TempDir dir;
    open_ok(dir.path);  // the layout exists: opening again fsyncs no directory
    std::promise<void> first_started, release;
    std::shared_future<void> released = release.get_future().share();
    std::atomic<int> dir_syncs{0};
    FileOps ops = system_file_ops(), real = ops;
    ops.fsync = [&, real](int fd) {
        struct stat st {};
        if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && ++dir_syncs == 1) {
            first_started.set_value();
            released.wait();
        }
        return real.fsync(fd);
    };
    auto r = open_spool(dir.path, ops);
    ASSERT_TRUE(r.spool);
    std::thread::id syncer;
    std::thread first([&] {
        syncer = std::this_thread::get_id();
        EXPECT_FALSE(commit_message(*r.spool, "first\r\n", sample_envelope()).empty());
    });
    first_started.get_future().wait();

    std::promise<std::pair<std::error_code, std::thread::id>> second_done;
    auto second_result = second_done.get_future();
    std::error_code ec;
    auto draft = r.spool->begin(ec);
    ASSERT_TRUE(draft);
    ASSERT_FALSE(draft->append("second\r\n"));
    auto returned = std::async(std::launch::async, [&] {
        draft->commit(sample_envelope(), [&](std::error_code result) {
            second_done.set_value({result, std::this_thread::get_id()});
        });
    });
    EXPECT_EQ(returned.wait_for(std::chrono::seconds(20)), std::future_status::ready)
        << "the second commit waited for the first one's directory fsync";
    EXPECT_EQ(second_result.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
        << "durable before any fsync that followed its link";
    release.set_value();
    first.join();
    auto [result, thread] = second_result.get();
    EXPECT_FALSE(result);
    EXPECT_EQ(thread, syncer);
    EXPECT_EQ(dir_syncs.load(), 2);
    EXPECT_EQ(r.spool->list().size(), 2u);
}

TEST(Spool, HoldFromAnotherProcessSurvivesConcurrentUpdates) {
    TempDir dir;
    auto daemon = open_ok(dir.path);
    auto cli = open_ok(dir.path);
    std::string id = commit_message(*daemon.spool, "x", sample_envelope({"a@x", "b@x"}));
    std::thread delivery([&] {
        Envelope e = *daemon.spool->envelope(id);
        for (int i = 0; i < 200; ++i) {
            e.recipients[1].attempts = static_cast<std::uint32_t>(i);
            EXPECT_FALSE(daemon.spool->update(e));
        }
    });
    for (int i = 0; i < 200; ++i) EXPECT_FALSE(cli.spool->set_held(id, i % 2 == 0));
    ASSERT_FALSE(cli.spool->set_held(id, true));
    delivery.join();
    auto e = daemon.spool->envelope(id);
    EXPECT_TRUE(e->held);
    EXPECT_EQ(e->recipients[1].attempts, 199u);
}

TEST(Spool, FreeBytesIsNonZero) {
    TempDir dir;
    auto r = open_ok(dir.path);
    EXPECT_GT(r.spool->free_bytes(), 0u);
}

TEST(Spool, OpenFailsCleanlyWhenTheDirectoryIsAFile) {
    TempDir dir;
    write_bytes(dir.path / "file", "x");
    auto r = open_spool(dir.path / "file");
    EXPECT_FALSE(r.spool);
    EXPECT_FALSE(r.error.empty());
}

}  // namespace
}  // namespace tlsrelay::queue::test
