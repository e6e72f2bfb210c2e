// 8-bit MIME parts to a server without 8BITMIME, as Postfix's mime_state.c converts
// them (MIME_OPT_DOWNGRADE), and which messages count as 8-bit (cleanup_message.c).
#include <gtest/gtest.h>

#include "smtp/mime_downgrade.hpp"

namespace tlsrelay::smtp {
namespace {

const std::string mime_8bit =
    "From: <s@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\nSubject: hi\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n";

TEST(MimeDowngrade, EightBitPartBecomesQuotedPrintableWithItsHeaderLast) {
    EXPECT_EQ(downgrade_8bit(mime_8bit),
              "From: <s@example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
              "Subject: hi\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n");
}

TEST(MimeDowngrade, UndeclaredEightBitAndOtherEncodingsPassUnchanged) {
    const std::string cases[] = {
        "From: <s@example.test>\r\nSubject: hi\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n",  // no MIME headers
        "Content-Transfer-Encoding: base64\r\n\r\nR3LDvMOfZQ==\r\n",
        "Content-Transfer-Encoding: 7bit\r\n\r\nplain = text \r\n",
        "Content-Transfer-Encoding: x-unknown\r\n\r\nraw \xff\r\n",
        "Subject: no body\r\n",
        "",
    };
    for (const auto& c : cases) EXPECT_EQ(downgrade_8bit(c), c) << c;
}

TEST(MimeDowngrade, QuotedPrintableRulesOfPostfix) {
    auto body = [](const std::string& line) {
        std::string out = downgrade_8bit("Content-Transfer-Encoding: 8bit\r\n\r\n" + line + "\r\n");
        return out.substr(out.find("\r\n\r\n") + 4);
    };
    EXPECT_EQ(body("a=b\tc"), "a=3Db\tc\r\n");
    EXPECT_EQ(body("trailing "), "trailing=20\r\n");
    EXPECT_EQ(body("tab\t"), "tab=09\r\n");
    EXPECT_EQ(body(std::string("ctl\x01\x7f")), "ctl=01=7F\r\n");
    EXPECT_EQ(body(""), "\r\n");
    // a soft break once the output line holds more than 72 octets
    EXPECT_EQ(body(std::string(80, 'x')), std::string(73, 'x') + "=\r\n" + std::string(7, 'x') + "\r\n");
    EXPECT_EQ(body(std::string(73, 'x')), std::string(73, 'x') + "\r\n");
    EXPECT_EQ(body(std::string(72, 'x') + "\xe4\xe4"),
              std::string(72, 'x') + "=E4=\r\n=E4\r\n");
}

TEST(MimeDowngrade, MultipartPartsEachByTheirOwnHeaders) {
    const std::string in =
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"b1\"\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "preamble \xe4\r\n"
        "--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xe4=1\r\n"
        "--b1\r\nContent-Type: text/plain\r\n\r\n\xe4 7bit by default\r\n"
        "--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Subject: inner\r\nContent-Transfer-Encoding: binary\r\n\r\ninner \xe4\r\n"
        "--b1--\r\nepilogue \xe4\r\n";
    EXPECT_EQ(downgrade_8bit(in),
              "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"b1\"\r\n"
              "Content-Transfer-Encoding: 7bit\r\n\r\n"
              "preamble \xe4\r\n"
              "--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E4=3D1\r\n"
              "--b1\r\nContent-Type: text/plain\r\n\r\n\xe4 7bit by default\r\n"
              "--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
              "Subject: inner\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ninner =E4\r\n"
              "--b1--\r\nepilogue \xe4\r\n");
}

TEST(MimeDowngrade, EveryPrefixIsHandled) {
    // a message cut anywhere: no crash, and what is unchanged stays unchanged
    for (std::size_t n = 0; n <= mime_8bit.size(); ++n) {
        std::string cut = mime_8bit.substr(0, n);
        std::string out = downgrade_8bit(cut);
        EXPECT_FALSE(out.empty() && !cut.empty()) << n;
    }
}

TEST(Declares8bit, AnyHeaderBlockWithTheWholeValue8bitOrBinary) {
    EXPECT_TRUE(declares_8bit(mime_8bit));
    EXPECT_TRUE(declares_8bit("Content-Transfer-Encoding:   BINARY\r\n\r\nx\r\n"));
    EXPECT_TRUE(declares_8bit("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                              "Content-Transfer-Encoding: 8bit\r\n\r\nx\r\n--b--\r\n"));
    EXPECT_FALSE(declares_8bit("Subject: x\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n"));
    EXPECT_FALSE(declares_8bit("Content-Transfer-Encoding: 8bit (comment)\r\n\r\nx\r\n"));
    EXPECT_FALSE(declares_8bit("Subject: x\r\n\r\nContent-Transfer-Encoding: 8bit\r\n"));  // in the body
}

}  // namespace
}  // namespace tlsrelay::smtp
