// Reply parsing without sockets: name rules, every truncation and byte corruption
// of valid replies (try_again or a sane value, never a crash), merging, texts.
#include "dns/answer.hpp"

#include <ares.h>
#include <gtest/gtest.h>

#include "dns_test_server.hpp"

namespace tlsrelay::dns {
namespace {

using test::Bytes;
using test::ReceivedQuery;
using test::ReplyBuilder;

ReceivedQuery query_for(const std::string& name, int type) {
    unsigned char* buf = nullptr;
    int len = 0;
    EXPECT_EQ(ares_create_query(name.c_str(), 1, type, 0x1234, 1, &buf, &len, 0), ARES_SUCCESS);
    ReceivedQuery q;
    EXPECT_TRUE(test::parse_query(Bytes(buf, buf + len), q));
    ares_free_string(buf);
    return q;
}

TEST(NormalizeName, Table) {
    struct Case {
        std::string in;
        NameKind kind;
        std::optional<std::string> out;
    };
    const Case cases[] = {
        {"Mail.Example.COM.", NameKind::host, "mail.example.com"},
        {"a-b.c1", NameKind::host, "a-b.c1"},
        {"xn--bcher-kva.example", NameKind::host, "xn--bcher-kva.example"},
        {"_25._tcp.MX.example", NameKind::tlsa_owner, "_25._tcp.mx.example"},
        {"_25._tcp.mx.example", NameKind::host, std::nullopt},
        {"", NameKind::host, std::nullopt},
        {".", NameKind::host, std::nullopt},
        {"a..b", NameKind::host, std::nullopt},
        {"a.b..", NameKind::host, std::nullopt},
        {"-a.b", NameKind::host, std::nullopt},
        {"a-.b", NameKind::host, std::nullopt},
        {"a b.c", NameKind::host, std::nullopt},
        {"a\r\nb.c", NameKind::host, std::nullopt},
        {"<a>.c", NameKind::host, std::nullopt},
        {"a\\.b.c", NameKind::host, std::nullopt},
        {"1.2.3.4", NameKind::host, std::nullopt},
        {"1.2.3.com", NameKind::host, "1.2.3.com"},
        {std::string(63, 'a') + ".b", NameKind::host, std::string(63, 'a') + ".b"},
        {std::string(64, 'a') + ".b", NameKind::host, std::nullopt},
        {std::string(4 * 63 + 3, 'a').replace(63, 1, ".").replace(127, 1, ".").replace(191, 1, "."),
         NameKind::host, std::nullopt},  // 255 octets
    };
    for (const auto& c : cases) EXPECT_EQ(normalize_name(c.in, c.kind), c.out) << c.in;
}

TEST(StatusMapping, RcodesAndAresErrors) {
    EXPECT_EQ(status_from_rcode(0), Status::ok);
    EXPECT_EQ(status_from_rcode(1), Status::failed);
    EXPECT_EQ(status_from_rcode(2), Status::try_again);
    EXPECT_EQ(status_from_rcode(3), Status::nxdomain);
    EXPECT_EQ(status_from_rcode(4), Status::failed);
    EXPECT_EQ(status_from_rcode(5), Status::try_again);
    EXPECT_EQ(status_from_ares(ARES_ETIMEOUT), Status::try_again);
    EXPECT_EQ(status_from_ares(ARES_ECONNREFUSED), Status::try_again);
    EXPECT_EQ(status_from_ares(ARES_EDESTRUCTION), Status::try_again);
    EXPECT_EQ(status_from_ares(ARES_ENOTFOUND), Status::nxdomain);
    EXPECT_EQ(status_from_ares(ARES_ENODATA), Status::nodata);
    EXPECT_EQ(status_from_ares(ARES_ENOTIMP), Status::failed);
}

Bytes mx_reply() {
    auto q = query_for("example.com", type_mx);
    return ReplyBuilder(q)
        .answer("", type_mx, test::mx_rdata(10, "mx1.example.com"))
        .answer("", type_mx, test::mx_rdata(20, "mx2.example.com"))
        .ad()
        .bytes();
}

Bytes tlsa_reply() {
    auto q = query_for("_25._tcp.mx.example.com", type_tlsa);
    return ReplyBuilder(q)
        .answer("", type_cname, test::name_bytes("_25._tcp.mx.example.net"))
        .answer("_25._tcp.mx.example.net", type_tlsa, test::tlsa_rdata(3, 1, 1, Bytes(32, 7)))
        .answer("_25._tcp.mx.example.net", 46, Bytes(20, 1))
        .bytes();
}

Bytes a_reply() {
    auto q = query_for("mx.example.com", type_a);
    return ReplyBuilder(q).answer("", type_a, test::address_rdata("192.0.2.1")).bytes();
}

TEST(ParseReply, ValidRepliesParse) {
    auto mx = parse_mx_reply(mx_reply(), true);
    EXPECT_EQ(mx.status, Status::ok);
    EXPECT_TRUE(mx.secure);
    EXPECT_EQ(mx.records.size(), 2u);
    auto tlsa = parse_tlsa_reply(tlsa_reply(), "_25._tcp.mx.example.com", false);
    ASSERT_EQ(tlsa.status, Status::ok);
    ASSERT_EQ(tlsa.records.size(), 1u);
    EXPECT_EQ(tlsa.records[0].data, Bytes(32, 7));
    auto a = parse_address_reply(a_reply(), type_a, false);
    ASSERT_EQ(a.status, Status::ok);
    EXPECT_EQ(a.addresses.at(0).to_string(), "192.0.2.1");
}

// Every proper prefix of a valid reply is a truncated reply: never ok.
TEST(ParseReply, EveryTruncationIsTryAgain) {
    for (const auto& full : {mx_reply(), tlsa_reply(), a_reply()}) {
        for (std::size_t n = 0; n < full.size(); ++n) {
            std::vector<std::uint8_t> cut(full.begin(), full.begin() + static_cast<long>(n));
            EXPECT_NE(parse_mx_reply(cut, true).status, Status::ok) << n;
            EXPECT_NE(parse_tlsa_reply(cut, "_25._tcp.mx.example.com", true).status, Status::ok)
                << n;
            EXPECT_NE(parse_address_reply(cut, type_a, true).status, Status::ok) << n;
        }
    }
}

// Corrupt each byte in turn (with values that make pointers, huge lengths, control
// characters): whatever comes out must be a well-formed value with valid names.
TEST(ParseReply, EveryByteCorruptionIsSafe) {
    for (const auto& full : {mx_reply(), tlsa_reply(), a_reply()}) {
        for (std::size_t i = 0; i < full.size(); ++i) {
            for (std::uint8_t v : {0x00, 0x0d, 0x3c, 0x3f, 0xc0, 0xff}) {
                auto bad = full;
                bad[i] = v;
                for (const auto& r : parse_mx_reply(bad, true).records)
                    EXPECT_TRUE(r.host.empty() || normalize_name(r.host, NameKind::host)) << r.host;
                auto tlsa = parse_tlsa_reply(bad, "_25._tcp.mx.example.com", true);
                EXPECT_LE(tlsa.records.size(), max_tlsa_records);
                EXPECT_LE(parse_address_reply(bad, type_a, true).addresses.size(),
                          max_addresses_per_family);
            }
        }
    }
}

TEST(MergeAddresses, Table) {
    auto make = [](Status s, bool secure, int n) {
        AddressResult r{s, secure, {}};
        for (int i = 0; i < n; ++i)
            r.addresses.push_back(
                boost::asio::ip::make_address("192.0.2." + std::to_string(i + 1)));
        return r;
    };
    struct Case {
        AddressResult a, aaaa;
        Status status;
        bool secure;
        std::size_t count;
    };
    const Case cases[] = {
        {make(Status::ok, true, 1), make(Status::nodata, true, 0), Status::ok, true, 1},
        {make(Status::ok, true, 1), make(Status::ok, false, 2), Status::ok, false, 3},
        {make(Status::ok, true, 1), make(Status::try_again, false, 0), Status::ok, false, 1},
        {make(Status::nxdomain, true, 0), make(Status::nxdomain, true, 0), Status::nxdomain, true,
         0},
        {make(Status::nxdomain, false, 0), make(Status::nodata, false, 0), Status::nodata, false,
         0},
        {make(Status::try_again, false, 0), make(Status::nxdomain, false, 0), Status::try_again,
         false, 0},
        {make(Status::failed, false, 0), make(Status::nodata, false, 0), Status::failed, false, 0},
        {make(Status::failed, false, 0), make(Status::try_again, false, 0), Status::try_again,
         false, 0},
    };
    for (const auto& c : cases) {
        auto m = merge_addresses(c.a, c.aaaa);
        EXPECT_EQ(m.status, c.status);
        EXPECT_EQ(m.secure, c.secure);
        EXPECT_EQ(m.addresses.size(), c.count);
    }
}

TEST(PostfixText, MatchesPostfix) {
    EXPECT_EQ(postfix_text(Status::nxdomain), "Host not found");
    EXPECT_EQ(postfix_text(Status::nodata), "Host found but no data record of requested type");
    EXPECT_EQ(postfix_text(Status::try_again), "Host not found, try again");
    EXPECT_EQ(postfix_text(Status::failed), "Non-recoverable error");
}

}  // namespace
}  // namespace tlsrelay::dns

namespace tlsrelay::dns {
namespace {

TEST(MergeAddresses, ErrorTypeIsTheOneThatDecided) {
    auto make = [](Status s) { return AddressResult{s, false, {}}; };
    EXPECT_STREQ(merge_addresses(make(Status::try_again), make(Status::nodata)).error_type, "A");
    EXPECT_STREQ(merge_addresses(make(Status::nodata), make(Status::try_again)).error_type, "AAAA");
    EXPECT_STREQ(merge_addresses(make(Status::try_again), make(Status::try_again)).error_type, "AAAA");
    EXPECT_STREQ(merge_addresses(make(Status::nxdomain), make(Status::nxdomain)).error_type, "AAAA");
}

TEST(CnameTarget, EndOfTheChainOrEmpty) {
    auto q = query_for("mx.example.com", type_a);
    Bytes aliased = ReplyBuilder(q)
                        .answer("", type_cname, test::name_bytes("Relay.Example.NET"))
                        .answer("relay.example.net", type_cname, test::name_bytes("real.example.net"))
                        .answer("real.example.net", type_a, test::address_rdata("192.0.2.1"))
                        .bytes();
    EXPECT_EQ(cname_target(aliased, "mx.example.com"), "real.example.net");
    EXPECT_EQ(cname_target(a_reply(), "mx.example.com"), "");
    EXPECT_EQ(cname_target(Bytes(5, 0), "mx.example.com"), "");
}

// Postfix's separate CNAME query: the alias record itself and whether it was validated.
TEST(CnameReply, TheAliasRecordItselfAndItsSecurity) {
    auto q = query_for("mx.example.com", type_cname);
    auto secure = parse_cname_reply(
        ReplyBuilder(q).answer("", type_cname, test::name_bytes("Real.Example.NET")).ad().bytes(),
        "mx.example.com", true);
    EXPECT_EQ(secure.status, Status::ok);
    EXPECT_TRUE(secure.secure);
    EXPECT_EQ(secure.target, "real.example.net");
    auto insecure = parse_cname_reply(
        ReplyBuilder(q).answer("", type_cname, test::name_bytes("real.example.net")).bytes(), "mx.example.com",
        true);
    EXPECT_FALSE(insecure.secure);
    auto none = parse_cname_reply(ReplyBuilder(q).ad().bytes(), "mx.example.com", true);
    EXPECT_EQ(none.status, Status::nodata);
    EXPECT_EQ(none.target, "");
    EXPECT_EQ(parse_cname_reply(Bytes(5, 0), "mx.example.com", true).status, Status::try_again);
}

}  // namespace
}  // namespace tlsrelay::dns
