// The small-record store beside the queue (MTA-STS cache): atomic replace, keys that
// cannot escape the folder, temp files of a crash removed, oversized files ignored.
#include "queue/record_store.hpp"

#include <fstream>

#include "queue_test_util.hpp"

namespace tlsrelay::queue {
namespace {

TEST(RecordStore, WritesReplacesAndReads) {
    test::TempDir spool;
    RecordStore store(spool.path, "mta-sts");
    EXPECT_FALSE(store.read("example.com"));
    ASSERT_FALSE(store.write("example.com", "first"));
    ASSERT_FALSE(store.write("example.com", "second"));
    EXPECT_EQ(store.read("example.com"), "second");
    EXPECT_EQ(test::files_in(spool.path / "mta-sts"), std::vector<std::string>{"example.com"});
}

TEST(RecordStore, ListsAndRemovesRecords) {
    test::TempDir spool;
    RecordStore store(spool.path, "tls-rpt");
    EXPECT_TRUE(store.keys().empty());  // no folder yet
    ASSERT_FALSE(store.write("2.example.com", "b"));
    ASSERT_FALSE(store.write("1.example.com", "a"));
    std::ofstream(spool.path / "tls-rpt" / ".tmp-1-0-x") << "half";
    EXPECT_EQ(store.keys(), (std::vector<std::string>{"1.example.com", "2.example.com"}));
    EXPECT_FALSE(store.remove("1.example.com"));
    EXPECT_FALSE(store.remove("1.example.com"));  // already gone: no error
    EXPECT_TRUE(store.remove("../queue"));
    EXPECT_EQ(store.keys(), std::vector<std::string>{"2.example.com"});
    EXPECT_FALSE(store.read("1.example.com"));
}

TEST(RecordStore, RefusesKeysThatAreNotDomainNames) {
    test::TempDir spool;
    RecordStore store(spool.path, "mta-sts");
    for (const char* key :
         {"", "..", ".hidden", "../queue", "a/b", "UPPER.example", "a b", "a\nb"}) {
        EXPECT_FALSE(RecordStore::valid_key(key)) << key;
        EXPECT_TRUE(store.write(key, "x")) << key;
        EXPECT_FALSE(store.read(key)) << key;
    }
    EXPECT_TRUE(RecordStore::valid_key("mx-1.example_test.com"));
    EXPECT_FALSE(RecordStore::valid_key(std::string(254, 'a')));
}

TEST(RecordStore, RemovesLeftoverTempFilesAndIgnoresHugeRecords) {
    test::TempDir spool;
    std::filesystem::create_directories(spool.path / "mta-sts");
    std::ofstream(spool.path / "mta-sts" / ".tmp-1-0-example.com") << "half";
    std::ofstream(spool.path / "mta-sts" / "big.example")
        << std::string(RecordStore::max_record_bytes + 1, 'x');
    RecordStore store(spool.path, "mta-sts");
    EXPECT_EQ(test::files_in(spool.path / "mta-sts"), std::vector<std::string>{"big.example"});
    EXPECT_FALSE(store.read("big.example"));
}

}  // namespace
}  // namespace tlsrelay::queue
