// The c-ares Resolver against a real DNS server on loopback: Postfix's status
// distinctions, the AD bit, TCP fallback, caps, hostile replies (always try_again,
// never a crash) and lifetime (destroy or cancel while a query waits).
#include "dns/resolver.hpp"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>

#include "dns_test_server.hpp"

namespace tlsrelay::dns {
namespace {

using namespace std::chrono_literals;
using boost::asio::awaitable;
using test::Bytes;
using test::ReceivedQuery;
using test::ReplyBuilder;
using test::Responder;

constexpr unsigned t_a = 1, t_cname = 5, t_mx = 15, t_aaaa = 28, t_rrsig = 46, t_tlsa = 52,
                   t_txt = 16;

std::vector<Bytes> one(const ReplyBuilder& b) {
    return {b.bytes()};
}

class ResolverTest : public ::testing::Test {
  protected:
    std::unique_ptr<Resolver> make(bool dnssec = false, std::chrono::milliseconds timeout = 300ms) {
        ResolverOptions options;
        options.servers = {server_.address()};
        options.dnssec = dnssec;
        options.timeout = timeout;
        options.tries = 1;
        std::string error;
        auto resolver = make_resolver(io_.get_executor(), options, error);
        EXPECT_TRUE(resolver) << error;
        return resolver;
    }

    // Runs one lookup to completion (the server coroutines never run out of work).
    template <typename T>
    T run(awaitable<T> lookup, std::chrono::seconds limit = 10s) {
        std::optional<T> result;
        boost::asio::co_spawn(io_, std::move(lookup), [&](std::exception_ptr e, T value) {
            if (e) std::rethrow_exception(e);
            result = std::move(value);
        });
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (!result && std::chrono::steady_clock::now() < deadline) io_.run_one_for(50ms);
        EXPECT_TRUE(result) << "lookup did not complete";
        return result ? std::move(*result) : T{};
    }

    MxResult mx(Resolver& r, std::string domain) { return run(r.mx(std::move(domain))); }

    boost::asio::io_context io_;
    test::DnsTestServer server_{io_};
};

TEST_F(ResolverTest, MxRecordsKeepTheirCaseAndAreStripped) {
    server_.respond([](const ReceivedQuery& q) {
        return one(ReplyBuilder(q)
                       .answer("", t_mx, test::mx_rdata(10, "MX1.Example.COM"))
                       .answer("", t_mx, test::mx_rdata(20, "mx2.example.com")));
    });
    auto r = mx(*make(), "Example.com.");
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.records.size(), 2u);
    EXPECT_EQ(r.records[0].preference, 10);
    EXPECT_EQ(r.records[0].host, "MX1.Example.COM");  // as Postfix logs it: relay=MX1.Example.COM[...]
    EXPECT_EQ(r.records[1].host, "mx2.example.com");
    EXPECT_FALSE(r.secure);
    EXPECT_FALSE(r.null_mx());
    ASSERT_EQ(server_.queries().size(), 1u);
    EXPECT_EQ(server_.queries()[0].name, "example.com");  // no search domain appended
    EXPECT_EQ(server_.queries()[0].type, t_mx);
}

struct SecureCase {
    bool dnssec, reply_ad, secure;
};

TEST_F(ResolverTest, SecureOnlyWithDnssecAndAd) {
    for (auto c : {SecureCase{true, true, true}, SecureCase{true, false, false},
                   SecureCase{false, true, false}, SecureCase{false, false, false}}) {
        server_.respond([c](const ReceivedQuery& q) {
            ReplyBuilder b(q);
            b.answer("", t_mx, test::mx_rdata(0, "mx.example.com"));
            b.answer("", t_rrsig, Bytes(40, 0x5a));  // what DO brings along
            return one(c.reply_ad ? b.ad() : b);
        });
        auto r = mx(*make(c.dnssec), "example.com");
        EXPECT_EQ(r.status, Status::ok);
        EXPECT_EQ(r.secure, c.secure) << c.dnssec << c.reply_ad;
        const auto& q = server_.queries().back();
        EXPECT_EQ(q.ad, c.dnssec);  // RFC 6840 §5.7
        EXPECT_EQ(q.do_bit, c.dnssec);
        EXPECT_TRUE(q.edns);
        EXPECT_TRUE(q.rd);
    }
}

TEST_F(ResolverTest, NullMx) {
    server_.respond([](const ReceivedQuery& q) {
        return one(ReplyBuilder(q).answer("", t_mx, test::mx_rdata(0, "")));
    });
    auto r = mx(*make(), "example.com");
    EXPECT_EQ(r.status, Status::ok);
    EXPECT_TRUE(r.null_mx());
}

TEST_F(ResolverTest, NullMxBesideARealHostIsKept) {
    server_.respond([](const ReceivedQuery& q) {
        return one(ReplyBuilder(q)
                       .answer("", t_mx, test::mx_rdata(10, "mx1.example.com"))
                       .answer("", t_mx, test::mx_rdata(20, "")));
    });
    auto r = mx(*make(), "example.com");
    EXPECT_EQ(r.status, Status::ok);
    EXPECT_EQ(r.records.size(), 2u);
    EXPECT_TRUE(r.null_mx());
}

TEST(MxResult, NullMxAmongOtherRecordsStillCounts) {
    MxResult r{Status::ok, false, {{0, ""}, {10, "mx1.example.com"}}};
    EXPECT_TRUE(r.null_mx());
    r.records = {{10, "mx1.example.com"}, {20, ""}};
    EXPECT_TRUE(r.null_mx());
    r.records = {{10, "mx1.example.com"}};
    EXPECT_FALSE(r.null_mx());
}

TEST_F(ResolverTest, ManyMxRecordsAreCappedAndFetchedOverTcp) {
    server_.respond([](const ReceivedQuery& q) {
        if (!q.tcp)  // too big for UDP: say so, c-ares retries over TCP
            return one(ReplyBuilder(q).tc());
        ReplyBuilder b(q);
        for (int i = 0; i < 200; ++i)
            b.answer("", t_mx, test::mx_rdata(i, "mx" + std::to_string(i) + ".example.com"));
        return one(b);
    });
    auto r = mx(*make(), "example.com");
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.records.size(), 100u);
    EXPECT_EQ(r.records[0].host, "mx0.example.com");
    EXPECT_TRUE(server_.queries().back().tcp);
}

// Replies that are errors or hostile, and what the MX lookup must report.
struct HostileCase {
    const char* what;
    std::function<std::vector<Bytes>(const ReceivedQuery&)> reply;
    Status expected;
};

std::vector<HostileCase> hostile_cases() {
    auto rcode = [](int rc) {
        return [rc](const ReceivedQuery& q) { return one(ReplyBuilder(q).rcode(rc)); };
    };
    auto mx_to = [](std::string host) {
        return [host](const ReceivedQuery& q) {
            return one(ReplyBuilder(q).answer("", t_mx, test::mx_rdata(10, host)));
        };
    };
    auto good = [](const ReceivedQuery& q) {
        return ReplyBuilder(q).answer("", t_mx, test::mx_rdata(10, "mx.example.com")).bytes();
    };
    return {
        {"nxdomain", rcode(3), Status::nxdomain},
        {"nodata", rcode(0), Status::nodata},
        {"servfail", rcode(2), Status::try_again},
        {"refused", rcode(5), Status::try_again},
        {"formerr", rcode(1), Status::failed},
        // c-ares 1.18 retries NOTIMP like SERVFAIL and then reports ECONNREFUSED.
        {"notimp", rcode(4), Status::try_again},
        {"cname only",
         [](const ReceivedQuery& q) {
             return one(ReplyBuilder(q).answer("", t_cname, test::name_bytes("other.example.com")));
         },
         Status::nodata},
        {"no reply", [](const ReceivedQuery&) { return std::vector<Bytes>{}; }, Status::try_again},
        {"wrong id",
         [](const ReceivedQuery& q) {
             return one(
                 ReplyBuilder(q).id(q.id ^ 0x5555).answer("", t_mx, test::mx_rdata(1, "a.b")));
         },
         Status::try_again},
        {"zero-length datagram", [](const ReceivedQuery&) { return std::vector<Bytes>{Bytes{}}; },
         Status::try_again},
        {"header only",
         [](const ReceivedQuery& q) {
             return std::vector<Bytes>{Bytes(q.raw.begin(), q.raw.begin() + 12)};
         },
         Status::try_again},
        {"cut inside the record",
         [good](const ReceivedQuery& q) {
             auto b = good(q);
             b.erase(b.end() - 5, b.end());
             return std::vector<Bytes>{b};
         },
         Status::try_again},
        {"huge answer count",
         [good](const ReceivedQuery& q) {
             auto b = good(q);
             b[6] = b[7] = 0xff;
             return std::vector<Bytes>{b};
         },
         Status::try_again},
        {"compression pointer loop",
         [](const ReceivedQuery& q) {
             ReplyBuilder b(q);
             auto self = b.size() + 2 + 10 + 2;  // owner pointer, fixed part, preference
             Bytes rdata{0, 10, static_cast<std::uint8_t>(0xc0 | self >> 8),
                         static_cast<std::uint8_t>(self)};
             return one(b.answer("", t_mx, rdata));
         },
         Status::try_again},
        {"pointer past the end",
         [](const ReceivedQuery& q) {
             return one(ReplyBuilder(q).answer("", t_mx, Bytes{0, 10, 0xc3, 0xff}));
         },
         Status::try_again},
        {"CR LF in target", mx_to("mx\r\nRCPT TO:<x>.example.com"), Status::try_again},
        {"angle bracket in target", mx_to("<evil>.example.com"), Status::try_again},
        {"space in target", mx_to("mx host.example.com"), Status::try_again},
        {"NUL in target", mx_to(std::string("mx\0x.example.com", 16)), Status::try_again},
        {"numeric target", mx_to("192.0.2.1"), Status::try_again},
        {"64-octet label", mx_to(std::string(64, 'a') + ".example.com"), Status::try_again},
        {"truncated over UDP and TCP",
         [](const ReceivedQuery& q) { return one(ReplyBuilder(q).tc()); }, Status::try_again},
        {"not a response",
         [good](const ReceivedQuery& q) {
             auto b = good(q);
             b[2] &= 0x7f;
             return std::vector<Bytes>{b};
         },
         Status::try_again},
        {"short rdata",
         [](const ReceivedQuery& q) { return one(ReplyBuilder(q).answer("", t_mx, Bytes{0})); },
         Status::try_again},
    };
}

TEST_F(ResolverTest, HostileAndErrorRepliesToMx) {
    for (const auto& c : hostile_cases()) {
        server_.respond(c.reply);
        auto r = mx(*make(), "example.com");
        EXPECT_EQ(r.status, c.expected) << c.what;
        if (c.expected != Status::ok) {
            EXPECT_TRUE(r.records.empty()) << c.what;
        }
    }
}

TEST_F(ResolverTest, InvalidQueryNamesAreNotFoundWithoutAQuery) {
    auto resolver = make();
    for (const std::string& name :
         std::vector<std::string>{"", ".", "exa mple.com", "a\r\nb.example", "-bad.example",
                                  "x_y.example", "1.2.3.4.5", std::string(300, 'a')}) {
        EXPECT_EQ(mx(*resolver, name).status, Status::nxdomain) << name;
        EXPECT_EQ(run(resolver->addresses(name)).status, Status::nxdomain) << name;
    }
    EXPECT_EQ(run(resolver->tlsa("_25._tcp.a\rb")).status, Status::nxdomain);
    EXPECT_TRUE(server_.queries().empty());
}

// Addresses: one answer per type, keyed by the query type.
Responder by_type(std::function<Bytes(const ReceivedQuery&)> a,
                  std::function<Bytes(const ReceivedQuery&)> aaaa) {
    return [a, aaaa](const ReceivedQuery& q) {
        return std::vector<Bytes>{q.type == t_a ? a(q) : aaaa(q)};
    };
}

Bytes addresses_of(const ReceivedQuery& q, std::vector<std::string> ips, unsigned type) {
    ReplyBuilder b(q);
    for (const auto& ip : ips) b.answer("", type, test::address_rdata(ip));
    return b.bytes();
}

Bytes with_rcode(const ReceivedQuery& q, int rc) {
    return ReplyBuilder(q).rcode(rc).bytes();
}

TEST_F(ResolverTest, AddressesMergeAThenAaaa) {
    server_.respond(by_type(
        [](auto& q) {
            return addresses_of(q, {"192.0.2.1", "192.0.2.2"}, t_a);
        },
        [](auto& q) { return addresses_of(q, {"2001:db8::1"}, t_aaaa); }));
    auto r = run(make()->addresses("mx.example.com"));
    ASSERT_EQ(r.status, Status::ok);
    ASSERT_EQ(r.addresses.size(), 3u);
    EXPECT_EQ(r.addresses[0].to_string(), "192.0.2.1");
    EXPECT_EQ(r.addresses[2].to_string(), "2001:db8::1");
}

struct MergeCase {
    int a_rcode, aaaa_rcode;  // -1: answer with one address
    Status expected;
};

TEST_F(ResolverTest, AddressStatusWhenFamiliesDisagree) {
    const MergeCase cases[] = {
        {-1, 0, Status::ok},       {0, -1, Status::ok},       {-1, 2, Status::ok},
        {3, 3, Status::nxdomain},  {0, 0, Status::nodata},    {3, 0, Status::nodata},
        {2, 0, Status::try_again}, {0, 2, Status::try_again}, {2, 3, Status::try_again},
        {1, 0, Status::failed},
    };
    for (auto c : cases) {
        auto answer = [](int rc, unsigned type, const char* ip) {
            return [=](const ReceivedQuery& q) {
                return rc < 0 ? addresses_of(q, {ip}, type) : with_rcode(q, rc);
            };
        };
        server_.respond(by_type(answer(c.a_rcode, t_a, "192.0.2.1"),
                                answer(c.aaaa_rcode, t_aaaa, "2001:db8::1")));
        auto r = run(make()->addresses("mx.example.com"));
        EXPECT_EQ(r.status, c.expected) << c.a_rcode << "/" << c.aaaa_rcode;
    }
}

TEST_F(ResolverTest, AddressLiteralNeedsNoDns) {
    auto resolver = make();
    for (std::string literal : {"192.0.2.7", "2001:db8::7"}) {
        auto r = run(resolver->addresses(literal));
        ASSERT_EQ(r.status, Status::ok);
        ASSERT_EQ(r.addresses.size(), 1u);
        EXPECT_EQ(r.addresses[0].to_string(), literal);
    }
    EXPECT_TRUE(server_.queries().empty());
}

TEST_F(ResolverTest, AddressesAreCappedAndFollowCname) {
    server_.respond(by_type(
        [](auto& q) {
            ReplyBuilder b(q);
            b.answer("", t_cname, test::name_bytes("real.example.com"));
            b.answer("", t_rrsig, Bytes(40, 0x5a));
            b.answer("real.example.com", t_rrsig, Bytes(40, 0x5a));
            for (int i = 0; i < 100; ++i)
                b.answer("real.example.com", t_a,
                         test::address_rdata("10.0.0." + std::to_string(i)));
            return b.bytes();
        },
        [](auto& q) { return with_rcode(q, 0); }));
    auto r = run(make()->addresses("alias.example.com"));
    ASSERT_EQ(r.status, Status::ok);
    EXPECT_EQ(r.addresses.size(), 64u);
}

TEST_F(ResolverTest, AddressReplyWithHostileCnameIsTryAgain) {
    server_.respond(by_type(
        [](auto& q) {
            return ReplyBuilder(q)
                .answer("", t_cname, test::name_bytes("evil\r\n<x>.example.com"))
                .answer("evil\r\n<x>.example.com", t_a, test::address_rdata("192.0.2.1"))
                .bytes();
        },
        [](auto& q) { return with_rcode(q, 0); }));
    auto r = run(make()->addresses("alias.example.com"));
    EXPECT_NE(r.status, Status::ok);
    EXPECT_TRUE(r.addresses.empty());
}

TEST_F(ResolverTest, TlsaRecordsThroughCnameAmongNoise) {
    const std::string alias = "_25._tcp.mx.example.com", target = "_25._tcp.mx.example.net";
    server_.respond([&](const ReceivedQuery& q) {
        ReplyBuilder b(q);
        b.answer("", t_cname, test::name_bytes(target));
        b.answer("", t_rrsig, Bytes(40, 0x5a));
        for (std::uint8_t usage = 0; usage < 4; ++usage)
            for (std::uint8_t selector = 0; selector < 2; ++selector)
                for (std::uint8_t matching = 0; matching < 3; ++matching)
                    b.answer(target, t_tlsa,
                             test::tlsa_rdata(usage, selector, matching,
                                              Bytes(matching == 2 ? 64 : 32, usage)));
        b.answer(target, t_rrsig, Bytes(60, 0xa5));
        b.answer("_25._tcp.elsewhere.example.org", t_tlsa, test::tlsa_rdata(3, 1, 1, Bytes(32, 9)));
        return one(b.ad());
    });
    auto r = run(make(true)->tlsa("_25._TCP.mx.example.com."));
    ASSERT_EQ(r.status, Status::ok);
    EXPECT_TRUE(r.secure);
    ASSERT_EQ(r.records.size(), 24u);
    EXPECT_EQ(server_.queries().back().name, alias);
    EXPECT_EQ(server_.queries().back().type, t_tlsa);
    std::size_t i = 0;
    for (std::uint8_t usage = 0; usage < 4; ++usage)
        for (std::uint8_t selector = 0; selector < 2; ++selector)
            for (std::uint8_t matching = 0; matching < 3; ++matching, ++i) {
                EXPECT_EQ(r.records[i].usage, usage);
                EXPECT_EQ(r.records[i].selector, selector);
                EXPECT_EQ(r.records[i].matching_type, matching);
                EXPECT_EQ(r.records[i].data, Bytes(matching == 2 ? 64 : 32, usage));
            }
}

TEST_F(ResolverTest, TlsaStatuses) {
    struct Case {
        const char* what;
        std::function<std::vector<Bytes>(const ReceivedQuery&)> reply;
        Status expected;
        bool secure;
    };
    const Case cases[] = {
        {"secure nodata", [](auto& q) { return one(ReplyBuilder(q).ad()); }, Status::nodata, true},
        {"insecure nxdomain", [](auto& q) { return one(ReplyBuilder(q).rcode(3)); },
         Status::nxdomain, false},
        {"rdata shorter than 3",
         [](auto& q) {
             return one(ReplyBuilder(q).answer("", t_tlsa, Bytes{3, 1}));
         },
         Status::try_again, false},
        {"owner with CR",
         [](auto& q) {
             return one(ReplyBuilder(q).answer("_25._tcp.m\rx.example.com", t_tlsa,
                                               test::tlsa_rdata(3, 1, 1, Bytes(32, 1))));
         },
         Status::try_again, false},
        {"servfail", [](auto& q) { return one(ReplyBuilder(q).rcode(2).ad()); }, Status::try_again,
         false},
        {"rdata past the end",
         [](auto& q) {
             ReplyBuilder b(q);
             b.answer("", t_tlsa, test::tlsa_rdata(3, 1, 1, Bytes(32, 1)));
             auto bytes = b.bytes();
             bytes[bytes.size() - 36] = 0x7f;  // rdlength low byte: now longer than the data
             return std::vector<Bytes>{bytes};
         },
         Status::try_again, false},
    };
    for (const auto& c : cases) {
        server_.respond(c.reply);
        auto r = run(make(true)->tlsa("_25._tcp.mx.example.com"));
        EXPECT_EQ(r.status, c.expected) << c.what;
        EXPECT_EQ(r.secure, c.secure) << c.what;
    }
}

// <character-string>s: a length octet, then the bytes.
Bytes txt_rdata(std::initializer_list<std::string_view> strings) {
    Bytes out;
    for (auto s : strings) {
        out.push_back(static_cast<std::uint8_t>(s.size()));
        out.insert(out.end(), s.begin(), s.end());
    }
    return out;
}

TEST_F(ResolverTest, TxtRecordsJoinTheirStringsAndFollowCname) {
    server_.respond([&](const ReceivedQuery& q) {
        ReplyBuilder b(q);
        b.answer("", t_cname, test::name_bytes("_mta-sts.example.net"));
        b.answer("_mta-sts.example.net", t_txt, txt_rdata({"v=STSv1; ", "id=2024;"}));
        b.answer("_mta-sts.example.net", t_rrsig, Bytes(40, 0x5a));
        b.answer("_mta-sts.example.net", t_txt, txt_rdata({"", "other"}));
        b.answer("_mta-sts.elsewhere.example", t_txt, txt_rdata({"v=STSv1; id=evil;"}));
        return one(b);
    });
    auto r = run(make()->txt("_MTA-STS.example.com."));
    ASSERT_EQ(r.status, Status::ok);
    EXPECT_EQ(server_.queries().back().name, "_mta-sts.example.com");
    EXPECT_EQ(server_.queries().back().type, t_txt);
    EXPECT_EQ(r.records, (std::vector<std::string>{"v=STSv1; id=2024;", "other"}));
}

TEST_F(ResolverTest, TxtStatusesAndHostileRecords) {
    struct Case {
        const char* what;
        std::function<std::vector<Bytes>(const ReceivedQuery&)> reply;
        Status expected;
        std::size_t records;
    };
    const Case cases[] = {
        {"nodata", [](auto& q) { return one(ReplyBuilder(q)); }, Status::nodata, 0},
        {"nxdomain", [](auto& q) { return one(ReplyBuilder(q).rcode(3)); }, Status::nxdomain, 0},
        {"servfail", [](auto& q) { return one(ReplyBuilder(q).rcode(2)); }, Status::try_again, 0},
        {"string longer than its record",
         [](auto& q) { return one(ReplyBuilder(q).answer("", t_txt, Bytes{5, 'a', 'b'})); },
         Status::try_again, 0},
        {"empty rdata is an empty text", [](auto& q) { return one(ReplyBuilder(q).answer("", t_txt, {})); },
         Status::ok, 1},
        {"only another type", [](auto& q) { return one(ReplyBuilder(q).answer("", t_a, Bytes{1, 2, 3, 4})); },
         Status::nodata, 0},
        {"too many records are capped",
         [](auto& q) {
             ReplyBuilder b(q);
             for (int i = 0; i < 40; ++i) b.answer("", t_txt, txt_rdata({"x"}));
             return one(b);
         },
         Status::ok, 32},
    };
    for (const auto& c : cases) {
        server_.respond(c.reply);
        auto r = run(make()->txt("_mta-sts.example.com"));
        EXPECT_EQ(r.status, c.expected) << c.what;
        EXPECT_EQ(r.records.size(), c.records) << c.what;
    }
    EXPECT_EQ(run(make()->txt("_mta-sts.exa mple.com")).status, Status::nxdomain);
}

TEST_F(ResolverTest, DestroyingTheResolverCompletesWaitingLookups) {
    server_.respond([](const ReceivedQuery&) { return std::vector<Bytes>{}; });
    auto resolver = make(false, 5000ms);
    std::optional<MxResult> mx_result;
    std::optional<AddressResult> address_result;
    boost::asio::co_spawn(io_, resolver->mx("example.com"),
                          [&](std::exception_ptr, MxResult r) { mx_result = r; });
    boost::asio::co_spawn(io_, resolver->addresses("example.com"),
                          [&](std::exception_ptr, AddressResult r) { address_result = r; });
    while (server_.queries().size() < 3) io_.run_one_for(50ms);
    resolver.reset();
    auto start = std::chrono::steady_clock::now();
    while ((!mx_result || !address_result) && std::chrono::steady_clock::now() - start < 2s)
        io_.run_one_for(50ms);
    ASSERT_TRUE(mx_result && address_result);
    EXPECT_EQ(mx_result->status, Status::try_again);
    EXPECT_EQ(address_result->status, Status::try_again);
}

TEST_F(ResolverTest, CancelledLookupReturnsAtOnce) {
    server_.respond([](const ReceivedQuery&) { return std::vector<Bytes>{}; });
    auto resolver = make(false, 5000ms);
    auto raced = [&]() -> awaitable<std::size_t> {
        using namespace boost::asio::experimental::awaitable_operators;
        boost::asio::steady_timer timer(io_, 100ms);
        auto winner =
            co_await (resolver->mx("example.com") || timer.async_wait(boost::asio::use_awaitable));
        co_return winner.index();
    };
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(run(raced()), 1u);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    // The abandoned c-ares query must not disturb the next lookup.
    server_.respond([](const ReceivedQuery& q) {
        return one(ReplyBuilder(q).answer("", t_mx, test::mx_rdata(5, "mx.example.com")));
    });
    EXPECT_EQ(mx(*resolver, "example.org").status, Status::ok);
}

TEST_F(ResolverTest, ManyConcurrentLookups) {
    server_.respond([](const ReceivedQuery& q) {
        return one(ReplyBuilder(q).answer("", t_mx, test::mx_rdata(1, "mx." + q.name)));
    });
    auto resolver = make(false, 2000ms);
    int done = 0;
    for (int i = 0; i < 50; ++i) {
        std::string domain = "d" + std::to_string(i) + ".example";
        boost::asio::co_spawn(io_, resolver->mx(domain),
                              [&, domain](std::exception_ptr, MxResult r) {
                                  EXPECT_EQ(r.status, Status::ok);
                                  ASSERT_EQ(r.records.size(), 1u);
                                  EXPECT_EQ(r.records[0].host, "mx." + domain);
                                  ++done;
                              });
    }
    auto start = std::chrono::steady_clock::now();
    while (done < 50 && std::chrono::steady_clock::now() - start < 10s) io_.run_one_for(50ms);
    EXPECT_EQ(done, 50);
}

TEST(Resolver, BadServerListIsAStartupError) {
    boost::asio::io_context io;
    ResolverOptions options;
    options.servers = {"not-an-address"};
    std::string error;
    EXPECT_FALSE(make_resolver(io.get_executor(), options, error));
    EXPECT_NE(error.find("not-an-address"), std::string::npos) << error;
}

TEST(Resolver, SystemConfigurationWhenNoServersGiven) {
    boost::asio::io_context io;
    std::string error;
    EXPECT_TRUE(make_resolver(io.get_executor(), ResolverOptions{}, error)) << error;
}

}  // namespace
}  // namespace tlsrelay::dns
