// Damaged queue files (truncated at every byte, bit-flipped anywhere, garbage, empty,
// misnamed) are moved to corrupt/ at open, reported, never returned, never deleted,
// and the rest of the queue is unaffected.
#include <fcntl.h>
#include <unistd.h>

#include "queue/format.hpp"
#include "queue_test_util.hpp"

namespace tlsrelay::queue::test {
namespace {

struct Golden {
    std::string id, bytes;        // the message that gets damaged
    std::string other_id, other;  // a good neighbour that must survive
};

Golden make_golden(std::size_t content_size) {
    TempDir dir;
    auto r = open_ok(dir.path);
    Golden g;
    g.id = commit_message(*r.spool, binary_content(content_size), sample_envelope({"a@x", "b@x"}));
    g.other_id = commit_message(*r.spool, "neighbour\r\n", sample_envelope());
    g.bytes = read_bytes(dir.path / "messages" / g.id);
    g.other = read_bytes(dir.path / "messages" / g.other_id);
    return g;
}

std::string region_of(const std::string& file, std::size_t offset) {
    std::size_t size = file.size();
    std::uint64_t envelope = 0;
    for (int i = 7; i >= 0; --i)
        envelope = (envelope << 8) | static_cast<unsigned char>(file[size - 72 + i]);
    if (offset < format::header_size) return "header";
    if (offset < envelope) return "content";
    if (offset < size - format::footer_size) return "envelope";
    if (offset < size - format::digest_size) return "end record";
    return "checksum";
}

// Puts `bytes` at messages/<name> beside the good neighbour and checks the outcome.
void expect_moved_to_corrupt(const Golden& g, const std::string& name, std::string_view bytes) {
    TempDir dir;
    open_ok(dir.path);
    write_bytes(dir.path / "messages" / name, bytes);
    write_bytes(dir.path / "messages" / g.other_id, g.other);
    auto r = open_ok(dir.path);
    ASSERT_EQ(r.notes.size(), 1u);
    EXPECT_EQ(r.notes[0].rfind(name + ": moved to corrupt/: ", 0), 0u) << r.notes[0];
    EXPECT_TRUE(read_bytes(dir.path / "corrupt" / name) == bytes);
    auto all = r.spool->list();
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].id, g.other_id);
    EXPECT_EQ(r.spool->content(g.other_id), "neighbour\r\n");
    EXPECT_FALSE(r.spool->envelope(name));
    EXPECT_FALSE(r.spool->content(name));
}

TEST(Corruption, TruncatedAtEveryByteOffset) {
    Golden g = make_golden(300);
    for (std::size_t cut = 0; cut < g.bytes.size(); ++cut) {
        SCOPED_TRACE("cut at " + std::to_string(cut) + " in " + region_of(g.bytes, cut));
        expect_moved_to_corrupt(g, g.id, std::string_view(g.bytes).substr(0, cut));
    }
}

TEST(Corruption, MultiChunkMessageTruncatedNearEveryRecordBoundary) {
    Golden g = make_golden(3 * format::chunk_size + 100);
    std::vector<std::size_t> cuts;
    for (std::size_t c = 0; c < g.bytes.size(); c += 4093) cuts.push_back(c);
    for (std::size_t chunk = 0; chunk <= 4; ++chunk) {
        std::size_t boundary = format::header_size + chunk * (format::chunk_size + 5);
        for (std::size_t d = boundary - 6; d <= boundary + 6 && d < g.bytes.size(); ++d)
            cuts.push_back(d);
    }
    for (std::size_t c = g.bytes.size() - 300; c < g.bytes.size(); ++c) cuts.push_back(c);
    for (std::size_t cut : cuts) {
        SCOPED_TRACE("cut at " + std::to_string(cut) + " in " + region_of(g.bytes, cut));
        expect_moved_to_corrupt(g, g.id, std::string_view(g.bytes).substr(0, cut));
    }
}

TEST(Corruption, BitFlipAnywhereIsDetected) {
    Golden g = make_golden(200);
    for (std::size_t i = 0; i < g.bytes.size(); ++i) {
        for (unsigned char mask : {0x01, 0x80}) {
            SCOPED_TRACE("flip " + std::to_string(mask) + " at " + std::to_string(i) + " in " +
                         region_of(g.bytes, i));
            std::string flipped = g.bytes;
            flipped[i] = static_cast<char>(flipped[i] ^ mask);
            expect_moved_to_corrupt(g, g.id, flipped);
        }
    }
}

TEST(Corruption, GarbageAndMisnamedFiles) {
    Golden g = make_golden(50);
    std::string header = format::file_header(format::message_magic);
    std::string next_version = g.bytes;
    next_version[8] = 2;
    std::string extra = g.bytes + "trailing";
    struct Case {
        const char* what;
        std::string name, bytes;
    } cases[] = {
        {"empty file", g.id, ""},
        {"garbage", g.id, binary_content(1000, 9)},
        {"text", g.id, "From: a@x\r\nSubject: hi\r\n\r\nbody\r\n"},
        {"magic only", g.id, "TLSRQMSG"},
        {"header only", g.id, header},
        {"header and zeros", g.id, header + std::string(200, '\0')},
        {"other version", g.id, next_version},
        {"trailing bytes", g.id, extra},
        {"doubled", g.id, g.bytes + g.bytes},
        {"valid file under another id", "0123456789ABCD", g.bytes},
        {"not a queue id", "not-an-id", g.bytes},
        {"lower-case id", "0123456789abcd", g.bytes},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        expect_moved_to_corrupt(g, c.name, c.bytes);
    }
}

TEST(Corruption, DirectoryInMessagesIsMovedAside) {
    TempDir dir;
    open_ok(dir.path);
    std::filesystem::create_directory(dir.path / "messages" / "0123456789ABCD");
    auto r = open_ok(dir.path);
    ASSERT_EQ(r.notes.size(), 1u);
    EXPECT_NE(r.notes[0].find("moved to corrupt/"), std::string::npos);
    EXPECT_TRUE(std::filesystem::is_directory(dir.path / "corrupt" / "0123456789ABCD"));
}

TEST(Corruption, CorruptNeverOverwritesEarlierEvidence) {
    TempDir dir;
    open_ok(dir.path);
    for (int i = 0; i < 3; ++i) {
        write_bytes(dir.path / "messages" / "0123456789ABCD", "bad " + std::to_string(i));
        open_ok(dir.path);
    }
    EXPECT_EQ(files_in(dir.path / "corrupt"),
              (std::vector<std::string>{"0123456789ABCD", "0123456789ABCD.1", "0123456789ABCD.2"}));
}

// A committed message whose content gets a flipped bit after the spool was opened.
std::string commit_then_damage_content(Spool& spool, const std::filesystem::path& dir) {
    std::string id = commit_message(spool, binary_content(1000), sample_envelope());
    std::string bytes = read_bytes(dir / "messages" / id);
    bytes[format::header_size + 100] ^= 0x04;  // in the content
    write_bytes(dir / "messages" / id, bytes);
    return id;
}

std::string commit_then_damage_envelope(Spool& spool, const std::filesystem::path& dir) {
    std::string id = commit_message(spool, "x", sample_envelope());
    std::string bytes = read_bytes(dir / "messages" / id);
    bytes[bytes.size() - format::footer_size - 3] ^= 0x04;  // in the last recipient
    write_bytes(dir / "messages" / id, bytes);
    return id;
}

TEST(Corruption, DamageAfterStartupIsCaughtWhenContentIsLoaded) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::string id = commit_then_damage_content(*r.spool, dir.path);
    EXPECT_TRUE(r.spool->envelope(id));  // the cheap read does not look at the content
    EXPECT_FALSE(r.spool->content(id));
    EXPECT_TRUE(files_in(dir.path / "messages").empty());
    EXPECT_EQ(files_in(dir.path / "corrupt"), std::vector<std::string>{id});
}

TEST(Corruption, LoadCatchesContentDamageLikeContent) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::string id = commit_then_damage_content(*r.spool, dir.path);
    auto loaded = r.spool->load(id);
    ASSERT_TRUE(loaded);  // the envelope is whole: the caller learns which message it was
    EXPECT_FALSE(loaded->content);
    EXPECT_TRUE(files_in(dir.path / "messages").empty());
    EXPECT_EQ(files_in(dir.path / "corrupt"), std::vector<std::string>{id});
    EXPECT_FALSE(r.spool->load(id));
}

TEST(Corruption, EnvelopeDamageAfterStartupHidesTheMessage) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::string id = commit_then_damage_envelope(*r.spool, dir.path);
    EXPECT_FALSE(r.spool->envelope(id));
    EXPECT_TRUE(r.spool->list().empty());
}

// load() validates the whole file first: a damaged envelope found there is set aside
// for a human like damaged content, instead of being read again on every attempt.
TEST(Corruption, LoadSetsAsideEnvelopeDamage) {
    TempDir dir;
    auto r = open_ok(dir.path);
    std::string id = commit_then_damage_envelope(*r.spool, dir.path);
    EXPECT_FALSE(r.spool->load(id));
    EXPECT_TRUE(files_in(dir.path / "messages").empty());
    EXPECT_EQ(files_in(dir.path / "corrupt"), std::vector<std::string>{id});
}

// The cheap envelope read takes a small file in one piece and a large one in three:
// either way every byte it relies on (header, envelope, end record up to the whole-file
// hash) is checked.
TEST(Corruption, CheapReadCatchesEnvelopeDamageInSmallAndLargeFiles) {
    for (std::size_t content_size : {std::size_t{10}, format::chunk_size * 2}) {
        Golden g = make_golden(content_size);
        TempDir dir;
        std::filesystem::path file = dir.path / "m";
        auto cheap_read = [&](const std::string& bytes) {
            write_bytes(file, bytes);
            int fd = ::open(file.c_str(), O_RDONLY);
            Envelope e;
            bool ok = format::read_envelope(fd, e).ok();
            ::close(fd);
            return ok;
        };
        ASSERT_TRUE(cheap_read(g.bytes)) << content_size;
        for (std::size_t offset = 0; offset < g.bytes.size() - format::digest_size; ++offset) {
            std::string where = region_of(g.bytes, offset);
            if (where == "content") continue;
            std::string damaged = g.bytes;
            damaged[offset] ^= 0x10;
            EXPECT_FALSE(cheap_read(damaged)) << content_size << " " << where << " " << offset;
        }
    }
}

}  // namespace
}  // namespace tlsrelay::queue::test
