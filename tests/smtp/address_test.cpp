#include "smtp/address.hpp"

#include <gtest/gtest.h>

#include <string>

namespace tlsrelay::smtp {
namespace {

using namespace std::string_view_literals;

TEST(Address, Domains) {
    const std::string label63(63, 'a');
    const std::string domain_255 =
        label63 + "." + label63 + "." + label63 + "." + std::string(63, 'b');
    ASSERT_EQ(domain_255.size(), 255u);
    struct Case {
        std::string domain;
        bool valid;
    };
    const Case cases[] = {
        {"example.com", true},
        {"EXAMPLE.com", true},
        {"localhost", true},
        {"a-b.example", true},
        {"1.2.3.4", true},
        {"xn--bcher-kva.example", true},
        {"b\xc3\xbc"
         "cher.example",
         true},              // U-label: SMTPUTF8 is checked by the caller
        {domain_255, true},  // RFC 5321 §4.5.3.1.2
        {domain_255 + "c", false},
        {label63 + ".example", true},
        {label63 + "a.example", false},
        {"", false},
        {".", false},
        {"example.", false},
        {".example", false},
        {"a..b", false},
        {"-a.example", false},
        {"a-.example", false},
        {"a_b.example", false},
        {"a b.example", false},
        {"[192.0.2.1]", true},
        {"[0.0.0.0]", true},
        {"[255.255.255.255]", true},
        {"[256.1.1.1]", false},
        {"[999.1.1.1]", false},
        {"[1.2.3]", false},
        {"[1.2.3.4.5]", false},
        {"[1..2.3]", false},
        {"[1234.1.1.1]", false},
        {"[IPv6:2001:db8::1]", true},
        {"[ipv6:2001:DB8::1]", true},
        {"[IPv6:::1]", true},
        {"[IPv6:::ffff:192.0.2.1]", true},
        {"[IPv6:zz]", false},
        {"[IPv6:]", false},
        {"[IPv6:2001:db8::1%eth0]", false},
        {"[2001:db8::1]", false},
        {"[tag:content]", false},
        {"[stuff", false},
        {"[\"stuff]", false},
        {"[]", false},
        {"[192.0.2.1", false},
    };
    for (const auto& c : cases) EXPECT_EQ(valid_domain(c.domain), c.valid) << c.domain;
}

TEST(Address, Utf8) {
    struct Case {
        std::string_view text;
        bool valid;
    };
    const Case cases[] = {
        {"plain", true},
        {"\xc3\xb6", true},
        {"\xe2\x82\xac", true},
        {"\xf0\x9f\x93\xa7", true},
        {"\xc3", false},              // truncated
        {"\xe2\x82", false},          // truncated
        {"\xc0\xaf", false},          // overlong
        {"\xe0\x80\xaf", false},      // overlong
        {"\xed\xa0\x80", false},      // surrogate
        {"\xf4\x90\x80\x80", false},  // above U+10FFFF
        {"\x80", false},              // stray continuation
        {"\xff", false},
        {"a\xc3"
         "a",
         false},
    };
    for (const auto& c : cases) EXPECT_EQ(valid_utf8(c.text), c.valid) << c.text;
}

TEST(Address, ControlCharacters) {
    EXPECT_FALSE(has_control("a@b.example"));
    EXPECT_FALSE(has_control("\xc3\xb6"));
    EXPECT_TRUE(has_control("a\0b"sv));
    EXPECT_TRUE(has_control("a\rb"));
    EXPECT_TRUE(has_control("a\nb"));
    EXPECT_TRUE(has_control("\x7f"));
    EXPECT_TRUE(has_control("\x1f"));
}

TEST(Address, Mailbox) {
    const auto parsed = parse_mailbox("@r.example:\"Quoted Local\"@Mixed.Example", false);
    ASSERT_TRUE(std::holds_alternative<Address>(parsed));
    const auto& address = std::get<Address>(parsed);
    EXPECT_EQ(address.text, "\"Quoted Local\"@Mixed.Example");
    EXPECT_EQ(address.domain, "mixed.example");
    EXPECT_FALSE(address.utf8);

    EXPECT_EQ(std::get<AddressError>(parse_mailbox("postmaster", false)), AddressError::syntax);
    EXPECT_EQ(std::get<Address>(parse_mailbox("postmaster", true)).domain, "");
    EXPECT_EQ(std::get<AddressError>(parse_mailbox(std::string(65, 'l') + "@b.example", true)),
              AddressError::too_long);
    EXPECT_EQ(std::get<AddressError>(parse_mailbox("\xc3@b.example", true)),
              AddressError::bad_utf8);
    EXPECT_TRUE(std::get<Address>(parse_mailbox("\xc3\xb6@b.example", true)).utf8);
}

}  // namespace
}  // namespace tlsrelay::smtp
